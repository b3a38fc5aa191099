// The Agent as an embedder uses it (through src/index.ts): lifecycle, typed events, join by DNS
// name, tags, graceful leave, RPC backend. Real sockets on 127.0.0.1, ports picked by the OS.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, AgentError, RpcClient } from '../../src/index.ts';
import type { AgentOptions, SerfEvent } from '../../src/index.ts';

const running: Agent[] = [];
after(async () => {
  for (const a of running) await a.stop();
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
    ...extra,
  });
  running.push(a);
  return a;
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const status = (a: Agent, name: string): string | undefined => a.members().find((m) => m.name === name)?.status;

test('create validates without binding; start twice and join before start are refused', async () => {
  assert.throws(() => Agent.create({ nodeName: '' }), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG');
  assert.throws(() => Agent.create({ nodeName: 'x', encrypt: 'short' }), /Invalid encryption key/);
  assert.throws(() => Agent.create({ nodeName: 'x', protocol: 1 }), /protocol version 1/);
  const a = make('solo');
  await assert.rejects(a.join(['127.0.0.1:1']), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_STATE');
  await a.start();
  await assert.rejects(a.start(), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_STATE');
  assert.deepEqual(a.members().map((m) => [m.name, m.status]), [['solo', 'alive']]);
  // leaving alone does not wait for a broadcast nobody would receive
  const t0 = Date.now();
  await a.leave();
  assert.ok(Date.now() - t0 < 3000, `lone leave took ${Date.now() - t0} ms`);
  await a.stop();
  await assert.rejects(a.join(['127.0.0.1:1']), /can't Join after Leave or Shutdown/);
});

test('two agents: join by DNS name, typed events, tag updates, graceful leave → left', { timeout: 40_000 }, async () => {
  const a = make('a', { tags: { role: 'web' } });
  const b = make('b', { tags: { role: 'db' } });
  const aEvents: SerfEvent[] = [];
  const all: string[] = [];
  a.on('member-join', (e) => aEvents.push(e));
  a.on('member-update', (e) => aEvents.push(e));
  a.on('member-leave', (e) => aEvents.push(e));
  a.on('member', (e) => all.push(`${e.type}:${e.members.map((m) => m.name).join()}`));
  // registered before start: the local join event is seen too
  await a.start();
  await b.start();
  assert.ok(all.includes('member-join:a'));

  const r = await b.join([`localhost:${a.bindAddress.port}`]);
  assert.ok(r.num >= 1, `joined via localhost: ${JSON.stringify(r)}`);
  await until('a sees b alive', 10_000, () => status(a, 'b') === 'alive' && status(b, 'a') === 'alive');
  const joinB = aEvents.find((e) => e.type === 'member-join' && e.members[0]?.name === 'b');
  assert.deepEqual(joinB?.members[0]?.tags, { role: 'db' });
  assert.equal(joinB?.members[0]?.addr.port, b.bindAddress.port);

  b.setTags({ role: 'db', version: '2' });
  await until('a sees b tag update', 10_000, () => a.members().find((m) => m.name === 'b')?.tags['version'] === '2');
  assert.ok(aEvents.some((e) => e.type === 'member-update' && e.members[0]?.tags['version'] === '2'));

  await b.leave();
  await until('a sees b left', 10_000, () => status(a, 'b') === 'left');
  assert.ok(aEvents.some((e) => e.type === 'member-leave' && e.members[0]?.name === 'b'));
  assert.ok(!all.includes('member-failed:b'), 'a graceful leave is never reported as a failure');
  await b.stop();
});

test('join reports unreachable and unresolvable seeds without throwing', { timeout: 20_000 }, async () => {
  const a = make('lonely', { lookup: async () => { throw new Error('getaddrinfo ENOTFOUND nx.invalid'); } });
  await a.start();
  const r = await a.join(['nx.invalid:7946']);
  assert.equal(r.num, 0);
  assert.match(r.errors[0] ?? '', /Failed to resolve nx\.invalid:7946: .*ENOTFOUND/);
  // a port nobody listens on: connection refused
  const gone = make('gone');
  await gone.start();
  const port = gone.bindAddress.port;
  await gone.stop();
  const r2 = await a.join([`127.0.0.1:${port}`]);
  assert.equal(r2.num, 0);
  assert.equal(r2.errors.length, 1);
});

test('RPC backend: members, join, stats with dropped counters, leave shuts the agent down', { timeout: 30_000 }, async () => {
  const a = make('rpc-a', { rpcAddr: '127.0.0.1:0', tags: { k: 'v' } });
  const b = make('rpc-b');
  let shutdown = false;
  a.on('shutdown', () => (shutdown = true));
  await a.start();
  await b.start();
  const addr = `127.0.0.1:${a.rpcAddress?.port}`;
  const c = await RpcClient.connect(addr);
  try {
    assert.equal(await c.join([`127.0.0.1:${b.bindAddress.port}`], false), 1);
    await until('b alive at a', 10_000, () => status(a, 'rpc-b') === 'alive');
    const ms = await c.members();
    const self = ms.find((m) => m.name === 'rpc-a');
    assert.deepEqual(self && [[...self.addr], self.port, self.tags, self.status, self.delegateCur, self.protocolCur], [
      [127, 0, 0, 1],
      a.bindAddress.port,
      { k: 'v' },
      'alive',
      5,
      2,
    ]);
    const stats = await c.stats();
    assert.equal(stats['agent']?.['name'], 'rpc-a');
    assert.equal(stats['serf']?.['members'], '2');
    assert.equal(stats['serf']?.['encrypted'], 'false');
    assert.deepEqual(stats['tags'], { k: 'v' });
    assert.ok(stats['dropped']?.['total'] !== undefined);
    await c.leave();
  } finally {
    c.close();
  }
  await until('a shut down after RPC leave', 10_000, () => shutdown);
  await until('b sees a left', 10_000, () => status(b, 'rpc-a') === 'left');
});

test('packets under the wrong key (or none) are dropped, counted and logged once per window', { timeout: 20_000 }, async () => {
  const { createSocket } = await import('node:dgram');
  const { Keyring, encodeMessage, encodePacket } = await import('../../src/wire/index.ts');
  const lines: string[] = [];
  const a = make('keyed', {
    encrypt: '96baQhxYGbNO7JlYstJKyeSchjQhZXkd+YHzSYShNaw=',
    logLevel: 'WARN',
    logSink: (l) => lines.push(l),
  });
  await a.start();
  const wrong = Keyring.fromBase64(['AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=']);
  const ping = encodeMessage({ type: 'ping', seqNo: 1, node: 'keyed' });
  const sealed = encodePacket([ping], { compress: false, crc: false, keyring: wrong, randomBytes: (n) => new Uint8Array(n) });
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    for (let i = 0; i < 40; i++) {
      await new Promise<void>((r) => sock.send(i % 2 === 0 ? sealed : ping, a.bindAddress.port, '127.0.0.1', () => r()));
    }
    await until('40 drops counted', 5000, () => Object.values(a.droppedCounters()).reduce((x, y) => x + y, 0) >= 40);
  } finally {
    sock.close();
  }
  const warn = lines.filter((l) => l.includes('[WARN] memberlist: dropped input from 127.0.0.1:'));
  // one reason (packet-decrypt: wrong key or not encrypted) from one peer → one line, not forty
  assert.equal(warn.length, 1, warn.join('\n'));
  assert.equal(a.droppedCounters()['packet-decrypt'], 40);
  assert.ok(warn.every((l) => l.includes("check that -encrypt matches the cluster's key")), warn.join('\n'));
});

test('RPC tags, stream and monitor reach the agent (serf tags / monitor / stream work against kodama)', { timeout: 30_000 }, async () => {
  const a = make('rpc-s', { rpcAddr: '127.0.0.1:0', tags: { keep: '1', drop: 'x' }, logLevel: 'ERR' });
  await a.start();
  const c = await RpcClient.connect(`127.0.0.1:${a.rpcAddress?.port}`);
  const events: string[] = [];
  const lines: string[] = [];
  try {
    const sub = await c.stream('*', (e) => {
      if (e.type !== 'user' && 'members' in e) events.push(`${e.type} ${e.members.map((m) => m.name).join()}`);
    });
    const mon = await c.monitor('DEBUG', (l) => lines.push(l));
    await c.updateTags({ added: 'y' }, ['drop']);
    assert.deepEqual(a.members().find((m) => m.name === 'rpc-s')?.tags, { keep: '1', added: 'y' });
    const b = make('rpc-s-peer');
    await b.start();
    await b.join([`127.0.0.1:${a.bindAddress.port}`]);
    await until('stream delivers the join', 10_000, () => events.includes('member-join rpc-s-peer'));
    // monitor replays recent lines (the agent logs at ERR, monitor still sees INFO)
    await until('monitor sees the join line', 10_000, () => lines.some((l) => /\[INFO\] serf: EventMemberJoin: rpc-s-peer 127\.0\.0\.1/.test(l)));
    await sub.stop();
    await mon.stop();
    // tags over the limit are refused with an error, and the old tags stay
    await assert.rejects(c.updateTags({ big: 'v'.repeat(600) }, []), /over the limit/);
    assert.equal(a.members().find((m) => m.name === 'rpc-s')?.tags['big'], undefined);
  } finally {
    c.close();
  }
});
