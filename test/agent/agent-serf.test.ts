// The Serf layer through the embeddable Agent: user events reach every node (and its
// `user:NAME` handler), queries gather responses from handlers and from in-process responders
// with node and tag filters honoured, key rotation across the cluster, force-leave, and a
// `-snapshot` restart that rejoins without join(). Real sockets on 127.0.0.1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/index.ts';
import type { AgentOptions, UserEvent } from '../../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-agent-serf-'));
const running: Agent[] = [];
after(async () => {
  for (const a of running) await a.stop();
  rmSync(dir, { recursive: true, force: true });
});

function make(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'ERR',
    logSink: () => {},
    leavePropagateDelayMs: 200,
    coalescePeriodMs: 200,
    quiescentPeriodMs: 100,
    ...extra,
  });
  running.push(a);
  return a;
}

async function until<T>(what: string, timeoutMs: number, cond: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const text = (b: Uint8Array): string => Buffer.from(b).toString();
const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');

async function cluster(prefix: string, specs: { tags: Record<string, string>; handlers?: string[] }[], extra: Partial<AgentOptions> = {}): Promise<Agent[]> {
  const agents = specs.map((s, i) => make(`${prefix}-${i}`, { tags: s.tags, eventHandlers: s.handlers ?? [], ...extra }));
  for (const a of agents) await a.start();
  for (const a of agents.slice(1)) await a.join([`127.0.0.1:${agents[0]!.bindAddress.port}`]);
  await until(`${prefix}: everyone sees ${agents.length} alive`, 15_000, () =>
    agents.every((a) => a.members().filter((m) => m.status === 'alive').length === agents.length));
  return agents;
}

test('user events reach every node and its user:NAME handler; queries honour node and tag filters', { timeout: 60_000 }, async () => {
  const deployLog = join(dir, 'deploy.log');
  const [a, b] = await cluster('ev', [
    { tags: { role: 'web' } },
    { tags: { role: 'db' } },
    {
      tags: { role: 'db', zone: 'z2' },
      handlers: [`user:deploy=cat >> '${deployLog}'; echo " $SERF_USER_EVENT" >> '${deployLog}'`, `query:load=printf 'load-of-%s' "$SERF_SELF_NAME"`],
    },
  ]);
  const seen: UserEvent[] = [];
  b!.on('user', (e) => seen.push(e));
  b!.on('query', (q) => {
    if (q.name === 'load') q.respond(new TextEncoder().encode('in-process-b'));
  });

  a!.userEvent('deploy', 'v42', false);
  await until('b got the user event', 10_000, () => seen.find((e) => e.name === 'deploy'));
  assert.equal(text(seen[0]!.payload), 'v42');
  await until('c ran its user:deploy handler', 10_000, () => read(deployLog).includes('v42\n deploy'));
  assert.throws(() => a!.userEvent('big', new Uint8Array(600)), /user event exceeds configured limit of 512 bytes/);

  const all = await a!.query({ name: 'load', payload: new Uint8Array(0), requestAck: true, timeoutMs: 3000 });
  assert.deepEqual([...all.responses.keys()].sort(), ['ev-1', 'ev-2']);
  assert.equal(text(all.responses.get('ev-1')!), 'in-process-b');
  assert.equal(text(all.responses.get('ev-2')!), 'load-of-ev-2');
  assert.deepEqual(all.acks.sort(), ['ev-0', 'ev-1', 'ev-2']);

  const byNode = await a!.query({ name: 'load', payload: new Uint8Array(0), filterNodes: ['ev-2'], timeoutMs: 2000 });
  assert.deepEqual([...byNode.responses.keys()], ['ev-2']);
  const byTag = await a!.query({ name: 'load', payload: new Uint8Array(0), filterTags: { zone: 'z.' }, timeoutMs: 2000 });
  assert.deepEqual([...byTag.responses.keys()], ['ev-2']);
  await assert.rejects(a!.query({ name: '_serf_ping', payload: new Uint8Array(1) }), /_serf_/);
  await assert.rejects(a!.query({ name: '_serf_list-keys', payload: new Uint8Array(0) }), /_serf_/);
  // serf reachability's ping (no payload) is allowed, and every node acks it
  const ping = await a!.query({ name: '_serf_ping', payload: new Uint8Array(0), requestAck: true, timeoutMs: 1500 });
  assert.deepEqual(ping.acks.sort(), ['ev-0', 'ev-1', 'ev-2']);
});

test('key rotation from one node reaches all; list-keys counts them', { timeout: 60_000 }, async () => {
  const k1 = Buffer.alloc(32, 1).toString('base64');
  const k2 = Buffer.alloc(32, 2).toString('base64');
  const [a, b, c] = await cluster('key', [{ tags: {} }, { tags: {} }, { tags: {} }], { encrypt: k1 });
  const installed = await a!.installKey(k2);
  assert.equal(installed.error, '', JSON.stringify(installed));
  assert.equal(installed.numResp, 3);
  assert.equal((await b!.useKey(k2)).error, '');
  const removed = await c!.removeKey(k1);
  assert.equal(removed.error, '', JSON.stringify(removed));
  const listed = await a!.listKeys();
  assert.deepEqual(listed.keys, { [k2]: 3 });
  // still one cluster on the new key: a user event still reaches everyone
  const got: string[] = [];
  c!.on('user', (e) => got.push(e.name));
  a!.userEvent('after-rotation', '');
  await until('c got the event sent after rotation', 10_000, () => got.includes('after-rotation'));
});

test('snapshot: a restarted agent rejoins its old peers without join(); force-leave marks a failed node left', { timeout: 60_000 }, async () => {
  const snap = join(dir, 'x.snapshot');
  const y = make('snap-y');
  await y.start();
  const x1 = make('snap-x', { snapshotPath: snap });
  await x1.start();
  await x1.join([`127.0.0.1:${y.bindAddress.port}`]);
  await until('y sees x', 10_000, () => y.members().find((m) => m.name === 'snap-x')?.status === 'alive');
  await new Promise((r) => setTimeout(r, 700)); // the snapshot flushes every 500 ms
  const xPort = x1.bindAddress.port;
  await x1.stop(); // no leave: as if the process was killed
  assert.match(read(snap), /alive: snap-y 127\.0\.0\.1:\d+/);
  await until('y sees x failed', 20_000, () => y.members().find((m) => m.name === 'snap-x')?.status === 'failed');

  // same address, as a restarted serf agent has (memberlist refuses a known name at a new address)
  const x2 = make('snap-x', { snapshotPath: snap, bind: `127.0.0.1:${xPort}` });
  await x2.start(); // no join()
  await until('restarted x rejoined y', 15_000, () =>
    x2.members().find((m) => m.name === 'snap-y')?.status === 'alive' && y.members().find((m) => m.name === 'snap-x')?.status === 'alive');
  await x2.stop();
  await until('y sees x failed again', 20_000, () => y.members().find((m) => m.name === 'snap-x')?.status === 'failed');
  y.forceLeave('snap-x', true);
  await until('force-leave -prune erased x', 10_000, () => y.members().find((m) => m.name === 'snap-x') === undefined);
});

test('join(…, replay): a replaying joiner receives past user events, a plain joiner does not', { timeout: 40_000 }, async () => {
  const [a] = await cluster('rp', [{ tags: {} }, { tags: {} }]);
  a!.userEvent('before-join', 'old', false);
  await new Promise((r) => setTimeout(r, 300));
  const replaying = make('rp-replay');
  const plain = make('rp-plain');
  const got = { replay: [] as string[], plain: [] as string[] };
  replaying.on('user', (e) => got.replay.push(e.name));
  plain.on('user', (e) => got.plain.push(e.name));
  await replaying.start();
  await plain.start();
  await replaying.join([`127.0.0.1:${a!.bindAddress.port}`], true);
  await plain.join([`127.0.0.1:${a!.bindAddress.port}`], false);
  await until('the replaying joiner got the old event', 10_000, () => got.replay.includes('before-join'));
  a!.userEvent('after-join', 'new', false);
  await until('both get a new event (gossip, else the 15 s push/pull repairs)', 25_000, () => got.plain.includes('after-join') && got.replay.includes('after-join'));
  assert.deepEqual(got.plain, ['after-join']);
});

test('reconnect: a failed member that comes back at its address is re-joined by the cluster', { timeout: 60_000 }, async () => {
  const x = make('rc-x', { reconnectIntervalMs: 500 });
  const y1 = make('rc-y');
  await x.start();
  await y1.start();
  await y1.join([`127.0.0.1:${x.bindAddress.port}`]);
  await until('x sees y', 10_000, () => x.members().find((m) => m.name === 'rc-y')?.status === 'alive');
  const yPort = y1.bindAddress.port;
  await y1.stop(); // no leave
  await until('x sees y failed', 20_000, () => x.members().find((m) => m.name === 'rc-y')?.status === 'failed');
  const y2 = make('rc-y', { bind: `127.0.0.1:${yPort}` });
  await y2.start(); // knows nobody, joins nobody: x's reconnect loop must find it
  await until('x re-joined y', 20_000, () =>
    x.members().find((m) => m.name === 'rc-y')?.status === 'alive' && y2.members().find((m) => m.name === 'rc-x')?.status === 'alive');
});

test('name conflict: a second node with a taken name loses the vote and shuts down', { timeout: 60_000 }, async () => {
  const [, c] = await cluster('nc', [{ tags: {} }, { tags: {} }]);
  const original = running.find((a) => a.nodeName === 'nc-0')!;
  const impostor = make('nc-0');
  let shutdown = false;
  impostor.on('shutdown', () => (shutdown = true));
  await impostor.start();
  await impostor.join([`127.0.0.1:${c!.bindAddress.port}`]);
  await until('the impostor shut itself down', 30_000, () => shutdown);
  // the original keeps its name and its place
  assert.equal(c!.members().find((m) => m.name === 'nc-0')?.addr.port, original.bindAddress.port);
  assert.equal(original.members().find((m) => m.name === 'nc-0')?.status, 'alive');
});
