// `kodama check-result` against real in-process agents with TTL checks: the push reaches the
// named node (by default the node of the agent the CLI talks to) through the real
// `kodama-check-result` query, the node records it exactly once (agent.checkRecords() is the
// witness), and refusals / silence come back as exit 1 with the reason.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import type { Agent, AgentOptions } from '../../src/index.ts';
import { parseCheckSpecs } from '../../src/checks/config.ts';
import { runCli } from '../../src/cli/main.ts';
import { interpretAnswer } from '../../src/cli/check-result.ts';
import { recordIo } from './helpers.ts';

function agent(name: string, checks: unknown[], extra: Partial<AgentOptions> = {}): Agent {
  return createAgent({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logSink: () => {},
    leavePropagateDelayMs: 200,
    broadcastTimeoutMs: 2000,
    ...(checks.length > 0 ? { checks: parseCheckSpecs(checks, name) } : {}),
    ...extra,
  });
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

let t1: Agent;
let t2: Agent;
let t3: Agent;
let rpc = '';

before(async () => {
  t1 = agent('t1', [{ name: 'heartbeat', ttl: '30s' }], { rpcAddr: '127.0.0.1:0' });
  t2 = agent('t2', [{ name: 'backup', ttl: '30s' }]);
  t3 = agent('t3', []);
  for (const a of [t1, t2, t3]) await a.start();
  rpc = `127.0.0.1:${t1.rpcAddress!.port}`;
  for (const a of [t2, t3]) await a.join([`127.0.0.1:${t1.bindAddress.port}`]);
  await until('t1 sees three alive members', 20_000, () => t1.members().filter((m) => m.status === 'alive').length === 3);
});

after(async () => {
  await Promise.all([t1, t2, t3].map((a) => a?.stop().catch(() => {})));
});

async function kodama(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = recordIo({ KODAMA_RPC_ADDR: rpc });
  const code = await runCli(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

const record = (a: Agent, check: string) => a.checkRecords().find((r) => r.name === check);

test('default node is the local agent: the result is recorded once', async () => {
  const r = await kodama(['check-result', '-check', 'heartbeat', '-status', '2', '-output', 'backup job is late']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Node t1 accepted heartbeat=2\n');
  const rec = record(t1, 'heartbeat');
  assert.equal(rec?.status, 2);
  assert.equal(rec?.output, 'backup job is late');
  // resends only go to a node that did not acknowledge: never a second copy
  await new Promise((res) => setTimeout(res, 1500));
  assert.deepEqual(record(t1, 'heartbeat')?.history, [2]);
});

test('-node pushes to another node through the cluster', async () => {
  const r = await kodama(['check-result', '-node=t2', '-check=backup', '-status=0', '-output=done in 3m']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Node t2 accepted backup=0\n');
  assert.equal(record(t2, 'backup')?.status, 0);
  assert.equal(record(t2, 'backup')?.output, 'done in 3m');
  assert.equal(record(t1, 'backup'), undefined);
});

test('refused: unknown check, node without checks; no answer: unknown node', async () => {
  const u = await kodama(['check-result', '-check=nosuch', '-status=0']);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /^Node t1 refused the result for nosuch: .*nosuch/);
  const n = await kodama(['check-result', '-node=t3', '-check=x', '-status=1']);
  assert.equal(n.code, 1);
  assert.equal(n.stderr, 'Node t3 refused the result for x: no checks are configured on this node\n');
  const g = await kodama(['check-result', '-node=nobody', '-check=x', '-status=1', '-timeout=1s']);
  assert.equal(g.code, 1);
  assert.match(g.stderr, /^No answer from node nobody: is it alive and named so\? \(see "kodama members"\)\n$/);
});

test('usage errors and help', async () => {
  for (const [args, msg] of [
    [['-status=0'], /-check is required/],
    [['-check=x'], /-status is required: 0 passing, 1 warning, 2 critical, 3 unknown/],
    [['-check=x', '-status=4'], /Invalid -status "4"/],
    [['-check=no spaces', '-status=0'], /Invalid check name "no spaces"/],
    [['-check=x', '-status=0', '-timeout=-1s'], /invalid duration|must be positive/],
    [['-check=x', '-status=0', 'extra'], /unexpected argument: extra/],
  ] as const) {
    const r = await kodama(['check-result', ...args]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, msg);
    assert.match(r.stderr, /Usage: kodama check-result/);
  }
  const h = await kodama(['check-result', '-h']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage: kodama check-result \[options\]/);
  assert.match(h.stdout, /Exit status: 0 when the node accepted the result; 1 when it refused/);
});

test('answers: kodama text and JSON forms', () => {
  assert.deepEqual(interpretAnswer('ok'), { ok: true, message: '' });
  assert.deepEqual(interpretAnswer('error: no check named x'), { ok: false, message: 'no check named x' });
  assert.deepEqual(interpretAnswer('{"ok":false,"error":"nope"}'), { ok: false, message: 'nope' });
  assert.deepEqual(interpretAnswer('{"ok":true}'), { ok: true, message: '{"ok":true}' });
  assert.equal(interpretAnswer('whatever').ok, false);
});
