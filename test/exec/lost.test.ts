// A node that dies mid-run is reported lost (after the caller's bounded silence), its output so
// far kept; the others finish normally. Its agent's stop kills the run's process group.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent, RpcClient } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { resolveTargets, runOnNodes } from '../../src/exec/client.ts';
import type { ExecNodeResult } from '../../src/exec/types.ts';

const TOKEN = 'lost-token';
const dir = mkdtempSync(join(tmpdir(), 'kodama-exec-lost-'));
const agents: Agent[] = [];

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

before(async () => {
  const key = randomBytes(16).toString('base64');
  for (const name of ['n1', 'n2', 'n3']) {
    const a = createAgent({
      nodeName: name, bind: '127.0.0.1:0', rpcAddr: name === 'n1' ? '127.0.0.1:0' : null, profile: 'local', tags: { role: 'app' },
      encrypt: key, logSink: () => {}, exec: { enabled: true, token: TOKEN, allow: [], timeoutMs: 30_000, maxOutputBytes: 1 << 20 },
    });
    await a.start();
    agents.push(a);
    if (agents.length > 1) await a.join([`127.0.0.1:${agents[0]!.bindAddress.port}`]);
  }
  await until('3 alive', 20_000, () => agents[0]!.members().filter((m) => m.status === 'alive').length === 3);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  rmSync(dir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a node stopped mid-run is lost after the bounded silence; the others finish; its process group is killed', { timeout: 40_000 }, async (t) => {
  const client = await RpcClient.connect(`${agents[0]!.rpcAddress!.host}:${agents[0]!.rpcAddress!.port}`);
  t.after(() => client.close());
  const targets = await resolveTargets(client, { role: 'app' });
  assert.deepEqual(targets.alive, ['n1', 'n2', 'n3']);
  const seen = new Map<string, string>();
  const t0 = Date.now();
  let stoppedAt = 0;
  const results: ExecNodeResult[] = await runOnNodes(client, targets, {
    token: TOKEN,
    command: `echo $$ > ${dir}/$KODAMA_NODE.pid; echo started; sleep 3; echo finished`,
    lostAfterMs: 2500,
    onOutput: (node, b) => {
      seen.set(node, (seen.get(node) ?? '') + Buffer.from(b).toString());
      if (node === 'n3' && stoppedAt === 0 && /started/.test(seen.get(node) ?? '')) {
        stoppedAt = Date.now();
        void agents[2]!.stop(); // no leave: the cluster finds it failed later
      }
    },
  });
  const ms = Date.now() - t0;
  const by = Object.fromEntries(results.map((r) => [r.node, r]));
  t.diagnostic(`n3 stopped ${stoppedAt - t0} ms in; run over after ${ms} ms; n3: ${JSON.stringify({ lost: by['n3']?.lost, output: by['n3']?.output })}`);
  assert.ok(stoppedAt > 0, 'n3 started the command');
  assert.equal(by['n3']?.lost, true);
  assert.equal(by['n3']?.exitCode, null);
  assert.match(by['n3']?.output ?? '', /^started\n$/);
  for (const n of ['n1', 'n2']) {
    assert.equal(by[n]?.exitCode, 0);
    assert.equal(by[n]?.output, 'started\nfinished\n');
  }
  assert.ok(ms < 12_000, `bounded: ${ms} ms`);
  const pid = Number(readFileSync(join(dir, 'n3.pid'), 'utf8'));
  await until('n3 shell gone', 5000, () => !alive(pid));
});
