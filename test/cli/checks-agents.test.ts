// `kodama checks` over agents that run real checks (command checks through the CheckRunner; the
// agents answer `kodama-checks` themselves and gossip their `chk` tags) and a real `serf agent`:
// the command returns as soon as every node with checks answered, shows each check's real state,
// a node without checks and the serf node as "no checks", works through the serf agent's RPC as
// well, and the checks of a node that left gracefully disappear.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { createAgent } from '../../src/index.ts';
import type { Agent, AgentOptions } from '../../src/index.ts';
import { parseCheckSpecs } from '../../src/checks/config.ts';
import { runCli } from '../../src/cli/main.ts';
import { recordIo } from './helpers.ts';
import { startSerf, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

function agent(name: string, role: string, checks: unknown[], extra: Partial<AgentOptions> = {}): Agent {
  return createAgent({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    tags: { role },
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

const cmd = (name: string, command: string): Record<string, unknown> => ({ name, command, interval: '200ms', subscriptions: ['role=web', 'role=db'] });

let webA: Agent;
let webB: Agent;
let dbA: Agent;
let plain: Agent;
let gone: Agent;
let serf: AgentProcess;
let rpc = '';

before(async () => {
  webA = agent('web-a', 'web', [cmd('disk', 'echo "DISK OK - 40% free"; exit 0')], { rpcAddr: '127.0.0.1:0' });
  webB = agent('web-b', 'web', [cmd('disk', 'echo "DISK CRITICAL - 3% free"; exit 2')]);
  dbA = agent('db-a', 'db', [cmd('pg', 'echo "PG WARNING - 80 connections"; exit 1')]);
  plain = agent('plain', 'web', []);
  gone = agent('gone', 'web', [cmd('disk', 'echo "DISK OK"; exit 0')]);
  for (const a of [webA, webB, dbA, plain, gone]) await a.start();
  rpc = `127.0.0.1:${webA.rpcAddress!.port}`;
  for (const a of [webB, dbA, plain, gone]) await a.join([`127.0.0.1:${webA.bindAddress.port}`]);
  serf = await startSerf('s1', { tags: { role: 'web' }, join: [`127.0.0.1:${webA.bindAddress.port}`] });
  // every node with checks has run them and gossiped its chk tag: a count of checks with a
  // result first, so "0" (the tag a node starts with, before its first check ran) is not enough
  await until('chk tags of the four checked nodes with a result each, web-b critical', 20_000, () => {
    const tags = new Map(webA.members().filter((m) => m.status === 'alive').map((m) => [m.name, m.tags['chk']]));
    return tags.size === 6 && ['web-a', 'web-b', 'db-a', 'gone'].every((n) => /^[1-9]/.test(tags.get(n) ?? '')) && /disk=c/.test(tags.get('web-b') ?? '');
  });
});

after(async () => {
  await stopAll();
  await Promise.all([webA, webB, dbA, plain, gone].map((a) => a?.stop().catch(() => {})));
});

async function kodama(args: string[], addr = rpc): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const io = recordIo({ KODAMA_RPC_ADDR: addr });
  const t0 = Date.now();
  const code = await runCli(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join(''), ms: Date.now() - t0 };
}

test('real checks: states and outputs by role and node; returns once every checked node answered; exit 2', async () => {
  const r = await kodama(['checks', '-timeout=20s']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms with a 20 s timeout: it should not wait for "plain", which runs no checks`);
  assert.match(r.stdout, /^role db\n {2}db-a\n {4}pg +warning +\d+x +w+ +\d+s ago +PG WARNING - 80 connections$/m);
  assert.match(r.stdout, /^ {2}web-a\n {4}disk +passing +\d+x +\.+ +\d+s ago +DISK OK - 40% free$/m);
  assert.match(r.stdout, /^ {2}web-b\n {4}disk +critical +\d+x +x+ +\d+s ago +DISK CRITICAL - 3% free$/m);
  assert.match(r.stdout, /^ {2}plain {2}no checks$/m);
  assert.match(r.stdout, /^ {2}s1 {2}no checks$/m);
  assert.match(r.stdout, /^ {2}gone\n/m);
});

test('through a real serf agent RPC: serf relays the query and the answers', async () => {
  const r = await kodama(['checks', '-role=web', '-state=critical', '-timeout=20s'], serf.rpcAddr);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /^role web\n {2}web-b\n {4}disk +critical +\d+x +x+ +\d+s ago +DISK CRITICAL - 3% free\n$/);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('real metrics: -aggregate sums the memory of the role nodes that answered', async () => {
  const r = await kodama(['checks', '-role=web', '-aggregate', '-format=json', '-timeout=20s']);
  assert.equal(r.code, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    roles: { role: string; nodes: number; answered: number; counts: Record<string, number>; memory: { total_bytes: number; percent: number }; load1: { avg: number; max: number }; cpu_percent: { avg: number; max: number } }[];
  };
  assert.equal(doc.roles.length, 1);
  const web = doc.roles[0]!;
  assert.deepEqual([web.role, web.nodes, web.answered], ['web', 5, 3]); // plain and s1 run no checks
  assert.deepEqual(web.counts, { passing: 2, warning: 0, critical: 1, unknown: 0 });
  // the three nodes share this machine
  assert.equal(web.memory.total_bytes, 3 * totalmem());
  assert.ok(web.memory.percent > 0 && web.memory.percent < 100);
  assert.ok(web.load1.max >= web.load1.avg && web.cpu_percent.max >= web.cpu_percent.avg);
});

test('a node that leaves gracefully: its checks disappear from kodama checks', async () => {
  await gone.leave();
  await until('web-a sees gone left', 20_000, () => webA.members().find((m) => m.name === 'gone')?.status === 'left');
  const r = await kodama(['checks', '-timeout=20s', '-format=json']);
  const doc = JSON.parse(r.stdout) as { nodes: { node: string; answered: boolean }[] };
  assert.deepEqual(doc.nodes.map((n) => [n.node, n.answered]), [
    ['db-a', true],
    ['plain', false],
    ['s1', false],
    ['web-a', true],
    ['web-b', true],
  ]);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});
