// runRolling against a scripted cluster (no network): real executors behind fake agents, and a
// balancer whose reports are as truncated as they get — every idle ready backend left out (a
// big fleet's answer to kodama-backends). A batch must still be seen out of rotation (listed as
// `drain`) before it runs, its health then comes from the node's own tag, and never more than
// one batch is out at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentQuery } from '../../src/agent/agent.ts';
import type { RpcClient } from '../../src/rpc/index.ts';
import type { MsgValue } from '../../src/wire/index.ts';
import { encodeServiceTag } from '../../src/discovery/advertise.ts';
import { startExecutor } from '../../src/exec/executor.ts';
import type { Executor } from '../../src/exec/executor.ts';
import { runRolling } from '../../src/exec/rolling.ts';
import { EXEC_QUERY } from '../../src/exec/types.ts';
import { BACKENDS_QUERY } from '../../src/deploy/types.ts';
import type { BalancerReport, BackendReport } from '../../src/deploy/types.ts';

const TOKEN = 'tok';
const WEB = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5', 'web-6'];

function fakeCluster(): { client: RpcClient; stop(): Promise<void>; events: string[]; maxOut: number; ranWhileServing: string[] } {
  const draining = new Map<string, boolean>(WEB.map((n) => [n, false]));
  /** Reports since a node was drained: the balancer sees the tag change only 3 reports later (gossip). */
  const sinceDrain = new Map<string, number>();
  /** Balancer state per node: ready, drain (listed once drained, until the next report), gone. */
  const lbState = new Map<string, 'ready' | 'drain' | 'gone'>(WEB.map((n) => [n, 'ready']));
  const handlers = new Map<string, (q: AgentQuery) => void>();
  const executors: Executor[] = [];
  const state = { events: [] as string[], maxOut: 0, ranWhileServing: [] as string[] };
  for (const n of WEB) {
    executors.push(startExecutor({
      nodeName: n,
      logger: { log: (_l, msg) => {
        // A run starting on a node the balancer still had ready would be the failure to catch.
        if (/ started /.test(msg) && lbState.get(n) === 'ready') state.ranWhileServing.push(n);
      } },
      on: (_t, fn) => (handlers.set(n, fn), () => handlers.delete(n)),
      isEncrypted: () => true,
      setServicesDraining: (d) => {
        draining.set(n, d);
        sinceDrain.set(n, 0);
        state.events.push(`${d ? 'drain' : 'undrain'} ${n}`);
        if (!d) lbState.set(n, 'ready'); // the balancer adds a healthy, undrained backend at once
        state.maxOut = Math.max(state.maxOut, [...draining.values()].filter(Boolean).length);
      },
    }, { enabled: true, token: TOKEN, allow: [], timeoutMs: 10_000, maxOutputBytes: 1 << 16 }));
  }
  const report = (): BalancerReport => {
    const backends: BackendReport[] = [];
    let truncated = 0;
    for (const n of WEB) {
      sinceDrain.set(n, (sinceDrain.get(n) ?? 0) + 1);
      if (draining.get(n) === true && lbState.get(n) === 'ready' && (sinceDrain.get(n) ?? 0) > 3) lbState.set(n, 'drain');
      else if (lbState.get(n) === 'drain') lbState.set(n, 'gone');
      const st = lbState.get(n);
      if (st === 'drain') backends.push({ id: n, state: 'drain', weight: 100, active: 0, requests: 1, errors: 0 });
      else if (st === 'ready') truncated++; // idle ready backends are what a full answer leaves out first
    }
    return { node: 'lb-1', driver: 'embedded', services: { web: { routeLTime: 0, backends, truncated } } };
  };
  const client = {
    members: async () => [
      { name: 'lb-1', status: 'alive', tags: { lb: 'web' } },
      ...WEB.map((n) => ({ name: n, status: 'alive', tags: { role: 'web', 's:web': encodeServiceTag({ port: 8080, protocol: 'http', weight: 100, draining: draining.get(n) === true }) } })),
    ],
    subscribe: async (_cmd: string, body: Record<string, MsgValue>, onRecord: (v: MsgValue) => void) => {
      const name = body['Name'] as string;
      const payload = body['Payload'] as Uint8Array;
      const nodes = (body['FilterNodes'] as string[] | null) ?? [];
      for (const n of nodes) {
        let answer: Uint8Array | undefined;
        if (name === BACKENDS_QUERY && n === 'lb-1') answer = new TextEncoder().encode(JSON.stringify(report()));
        if (name === EXEC_QUERY) {
          handlers.get(n)?.({ type: 'query', id: 1, name, payload, ltime: 1, deadlineMs: 0, sourceNode: 'lb-1', respond: (p) => (answer = p) });
        }
        if (answer !== undefined) {
          const a = answer;
          setTimeout(() => onRecord({ Type: 'response', From: n, Payload: a }), 2);
        }
      }
      setTimeout(() => onRecord({ Type: 'done', From: '', Payload: null }), Math.min(50, Number(body['Timeout']) / 1e6));
      return { seq: 1, stop: async () => {} };
    },
  } as unknown as RpcClient;
  return { client, stop: async () => void (await Promise.all(executors.map((e) => e.stop()))), ...state, get events() { return state.events; }, get maxOut() { return state.maxOut; }, get ranWhileServing() { return state.ranWhileServing; } };
}

test('rolling with truncated balancer reports: each batch seen drained before it runs, health from tags, one batch out at a time', { timeout: 30_000 }, async (t) => {
  const c = fakeCluster();
  t.after(() => c.stop());
  const lines: string[] = [];
  const r = await runRolling(c.client, {
    role: 'web', service: 'web', batch: 2, token: TOKEN, command: 'echo ok', drainTimeoutMs: 5000, healthTimeoutMs: 5000, watchEveryMs: 20,
    say: (l) => lines.push(l),
  });
  t.diagnostic(lines.join(' | '));
  assert.equal(r.failure, undefined, JSON.stringify(r.failure));
  assert.equal(r.completed, 3);
  assert.equal(r.results.filter((x) => x.exitCode === 0 && x.output === 'ok\n').length, 6);
  assert.deepEqual(c.ranWhileServing, [], 'no command started while its node was still ready on the balancer');
  assert.equal(c.maxOut, 2, 'one batch of 2 out at a time');
  assert.deepEqual(c.events, ['drain web-1', 'drain web-2', 'undrain web-1', 'undrain web-2', 'drain web-3', 'drain web-4', 'undrain web-3', 'undrain web-4', 'drain web-5', 'drain web-6', 'undrain web-5', 'undrain web-6']);
});
