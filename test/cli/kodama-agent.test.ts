// The kodama CLI driving kodama agents in a mixed cluster (two `kodama agent`s and one real
// `serf agent`, encrypted, on 127.0.0.1): the same commands that work against serf (see
// serf-agent.test.ts) work against kodama's RPC, and act on the whole mixed cluster. Handlers
// on every node are the witnesses; serf's own CLI is the reference for the output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main.ts';
import { runSerf } from '../rpc/helpers.ts';
import { waitFor } from '../interop/harness.ts';
import { recordIo } from './helpers.ts';
import { startKodama, startSerf, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

const KEY_A = 'T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=';
const KEY_B = 'HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=';

const dir = mkdtempSync(join(tmpdir(), 'kodama-cli-k-'));
let k1: AgentProcess;
let k2: AgentProcess;
let s1: AgentProcess;

function handlers(name: string): string[] {
  return ['-event-handler', `user:deploy=cat >> ${join(dir, `${name}.events`)}`, '-event-handler', 'query:load=echo hi-from-$SERF_SELF_NAME'];
}

before(async () => {
  [k1, k2, s1] = await Promise.all([
    startKodama('k1', { encrypt: KEY_A, tags: { role: 'web' }, args: handlers('k1'), startTimeoutMs: 40_000 }),
    startKodama('k2', { encrypt: KEY_A, tags: { role: 'db' }, args: handlers('k2'), startTimeoutMs: 40_000 }),
    startSerf('s1', { encrypt: KEY_A, tags: { role: 'web' }, args: handlers('s1') }),
  ]);
});

after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function kodama(args: string[]): Promise<Out> {
  const io = recordIo();
  const code = await runCli(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

const sortedLines = (s: string): string[] => s.trimEnd().split('\n').sort();
const context = (): string => `${k1.output().slice(-1500)}\n--- k2 ---\n${k2.output().slice(-1500)}`;

async function statuses(rpcAddr: string): Promise<Record<string, string>> {
  const r = await kodama(['members', `-rpc-addr=${rpcAddr}`, '-format=json']);
  const ms = (JSON.parse(r.stdout) as { members: { name: string; status: string }[] }).members;
  return Object.fromEntries(ms.map((m) => [m.name, m.status]));
}

function sees(rpcAddr: string, want: Record<string, string>, timeoutMs = 30_000): Promise<true> {
  return waitFor(
    `${rpcAddr} to see ${JSON.stringify(want)}`,
    timeoutMs,
    async () => {
      const got = await statuses(rpcAddr);
      return Object.entries(want).every(([n, s]) => got[n] === s) ? true : undefined;
    },
    context,
  );
}

function fileHas(name: string, text: string): boolean {
  try {
    return readFileSync(join(dir, `${name}.events`), 'utf8').includes(text);
  } catch {
    return false;
  }
}

test('join through a kodama agent and a serf agent; members as serf prints them', { timeout: 90_000 }, async () => {
  const j = await kodama(['join', `-rpc-addr=${k2.rpcAddr}`, `127.0.0.1:${k1.port}`]);
  assert.deepEqual([j.code, j.stdout], [0, 'Successfully joined cluster by contacting 1 nodes.\n'], j.stderr + context());
  const js = await kodama(['join', `-rpc-addr=${s1.rpcAddr}`, `127.0.0.1:${k1.port}`]);
  assert.equal(js.code, 0, js.stderr);
  const all = { k1: 'alive', k2: 'alive', s1: 'alive' };
  await Promise.all([sees(k1.rpcAddr, all), sees(k2.rpcAddr, all), sees(s1.rpcAddr, all)]);
  const k = await kodama(['members', `-rpc-addr=${k1.rpcAddr}`]);
  const s = await runSerf(['members', `-rpc-addr=${k1.rpcAddr}`]);
  assert.deepEqual(sortedLines(k.stdout), sortedLines(s.stdout));
});

test('event sent to a kodama agent runs handlers on kodama and serf nodes', { timeout: 60_000 }, async () => {
  const r = await kodama(['event', `-rpc-addr=${k1.rpcAddr}`, 'deploy', 'v7']);
  assert.deepEqual([r.code, r.stdout], [0, "Event 'deploy' dispatched! Coalescing enabled: true\n"], r.stderr);
  for (const n of ['k1', 'k2', 's1']) await waitFor(`${n}'s deploy handler`, 30_000, () => (fileHas(n, 'v7') ? true : undefined), context);
});

test('query through a kodama agent: every node answers; -node and -tag filter', { timeout: 60_000 }, async () => {
  const all = await kodama(['query', `-rpc-addr=${k1.rpcAddr}`, '-timeout=5s', '-format=json', 'load']);
  assert.equal(all.code, 0, all.stderr);
  const j = JSON.parse(all.stdout) as { Acks: string[]; Responses: Record<string, string> };
  assert.deepEqual([...j.Acks].sort(), ['k1', 'k2', 's1']);
  assert.deepEqual(j.Responses, { k1: 'hi-from-k1\n', k2: 'hi-from-k2\n', s1: 'hi-from-s1\n' });
  const byNode = await kodama(['query', `-rpc-addr=${k1.rpcAddr}`, '-timeout=5s', '-node', 's1', '-format=json', 'load']);
  assert.deepEqual(JSON.parse(byNode.stdout), { Acks: ['s1'], Responses: { s1: 'hi-from-s1\n' } });
  const byTag = await kodama(['query', `-rpc-addr=${k2.rpcAddr}`, '-timeout=5s', '-tag', 'role=db', '-no-ack', 'load']);
  assert.equal(byTag.stdout, "Query 'load' dispatched\nResponse from 'k2': hi-from-k2\nTotal Responses: 1\n");
});

test('tags set through a kodama agent reach the serf node', { timeout: 60_000 }, async () => {
  const r = await kodama(['tags', `-rpc-addr=${k2.rpcAddr}`, '-set', 'zone=z2', '-delete', 'role']);
  assert.deepEqual([r.code, r.stdout], [0, 'Successfully updated agent tags\n'], r.stderr);
  await waitFor('s1 to see k2 tags', 30_000, async () => {
    const m = await runSerf(['members', `-rpc-addr=${s1.rpcAddr}`, '-name=k2']);
    return /^k2\s+\S+\s+alive\s+zone=z2$/m.test(m.stdout) ? true : undefined;
  });
});

test('keys through a kodama agent rotate the mixed cluster with no partition', { timeout: 90_000 }, async () => {
  const inst = await kodama(['keys', `-rpc-addr=${k1.rpcAddr}`, '-install', KEY_B]);
  assert.deepEqual([inst.code, inst.stdout], [0, '==> Installing key on all members...\n==> Successfully installed key!\n'], inst.stderr + context());
  const k = await kodama(['keys', `-rpc-addr=${k1.rpcAddr}`, '-list']);
  const s = await runSerf(['keys', `-rpc-addr=${s1.rpcAddr}`, '-list']);
  assert.equal(k.code, 0, k.stderr);
  assert.deepEqual(sortedLines(k.stdout), sortedLines(s.stdout));
  assert.match(k.stdout, /\[3\/3\]\n[\s\S]*\[3\/3\]\n$/);
  assert.equal((await kodama(['keys', `-rpc-addr=${k2.rpcAddr}`, '-use', KEY_B])).code, 0);
  const rm = await kodama(['keys', `-rpc-addr=${k1.rpcAddr}`, '-remove', KEY_A]);
  assert.equal(rm.code, 0, rm.stdout + rm.stderr);
  const list = await kodama(['keys', `-rpc-addr=${k1.rpcAddr}`, '-list']);
  assert.equal(list.stdout.trimEnd().split('\n').pop(), `${KEY_B}  [3/3]`);
  const all = { k1: 'alive', k2: 'alive', s1: 'alive' };
  await Promise.all([sees(k1.rpcAddr, all), sees(s1.rpcAddr, all)]);
  // and gossip still flows everywhere under the new key
  const ev = await kodama(['event', `-rpc-addr=${s1.rpcAddr}`, 'deploy', 'after-rotation']);
  assert.equal(ev.code, 0);
  for (const n of ['k1', 'k2', 's1']) await waitFor(`${n} after rotation`, 30_000, () => (fileHas(n, 'after-rotation') ? true : undefined), context);
});

// serf's RPC lets exactly `_serf_ping` with no payload through (agent.go Query); so does kodama's
// agent, so the reachability report works against it as against serf.
test('reachability against a kodama agent', { timeout: 60_000 }, async () => {
  const r = await kodama(['reachability', `-rpc-addr=${k1.rpcAddr}`]);
  assert.equal(r.stdout, 'Total members: 3, live members: 3\nStarting reachability test...\nSuccessfully contacted all live nodes\n', r.stderr);
});

test('info and monitor against a kodama agent', { timeout: 60_000 }, async () => {
  const info = JSON.parse((await kodama(['info', `-rpc-addr=${k1.rpcAddr}`, '-format=json'])).stdout) as Record<string, Record<string, string>>;
  assert.equal(info['agent']?.['name'], 'k1');

  const ctl = new AbortController();
  const io = { ...recordIo(), interrupt: () => ctl.signal };
  const done = runCli(['monitor', `-rpc-addr=${k1.rpcAddr}`, '-log-level=debug'], io);
  const out = (): string => io.out.join('');
  await waitFor('recent log lines', 15_000, () => (/\[(DEBUG|INFO)\]/.test(out()) ? true : undefined));
  await waitFor(
    'a live event',
    30_000,
    async () => {
      await kodama(['event', `-rpc-addr=${s1.rpcAddr}`, 'deploy', 'mon']);
      return /Event Info:\n(\t.*\n)*\tName: "deploy"/.test(out()) ? true : undefined;
    },
    undefined,
    1000,
  );
  ctl.abort();
  assert.equal(await done, 0);
});

test('leave through kodama: the kodama agent leaves gracefully and exits', { timeout: 60_000 }, async () => {
  const lv = await kodama(['leave', `-rpc-addr=${k2.rpcAddr}`]);
  assert.deepEqual([lv.code, lv.stdout], [0, 'Graceful leave complete\n'], lv.stderr);
  await sees(s1.rpcAddr, { k2: 'left' });
  await waitFor('k2 to exit', 20_000, () => (k2.child.exitCode !== null ? true : undefined), context);
  // force-leave of a node that is gone (left): accepted, and it stays left
  const fl = await kodama(['force-leave', `-rpc-addr=${k1.rpcAddr}`, '-prune', 'k2']);
  assert.equal(fl.code, 0, fl.stderr);
  await waitFor('k2 pruned from k1', 30_000, async () => (!('k2' in (await statuses(k1.rpcAddr))) ? true : undefined), context);
});
