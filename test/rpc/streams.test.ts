// Streaming by Seq (`stream`, `monitor`, `stop`) and the pass-through commands (`event`, `tags`,
// `force-leave`), checked with the real serf CLI and with RpcClient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { RpcClient, RpcError, startRpcServer, type RpcBackend, type RpcEvent, type RpcServer, type RpcStreamEvent } from '../../src/rpc/index.ts';
import { MEMBERS, runSerf, SERF, sleep } from './helpers.ts';

/** A backend with live event and log feeds the test drives by hand. */
function feedBackend() {
  const eventSinks = new Set<(e: RpcEvent) => void>();
  const logSinks = new Set<(l: string) => void>();
  const calls: unknown[][] = [];
  const recent = ['2026/11/24 21:00:00 [DEBUG] memberlist: old debug', '2026/11/24 21:00:01 [INFO] serf: old info'];
  const backend: RpcBackend = {
    members: () => MEMBERS,
    userEvent: async (name, payload, coalesce) => {
      if (name === 'too-big') throw new Error('user event exceeds configured limit of 512 bytes before encoding');
      calls.push(['event', name, Buffer.from(payload).toString(), coalesce]);
    },
    forceLeave: async (node, prune) => {
      calls.push(['force-leave', node, prune]);
    },
    setTags: async (tags, del) => {
      calls.push(['tags', tags, del]);
    },
    subscribeEvents: (sink) => {
      eventSinks.add(sink);
      return () => eventSinks.delete(sink);
    },
    subscribeLogs: (sink) => {
      for (const l of recent) sink(l);
      logSinks.add(sink);
      return () => logSinks.delete(sink);
    },
  };
  return {
    backend,
    calls,
    eventSinks,
    logSinks,
    emit: (e: RpcEvent) => eventSinks.forEach((s) => s(e)),
    log: (l: string) => logSinks.forEach((s) => s(l)),
  };
}

async function withServer(fn: (srv: RpcServer, f: ReturnType<typeof feedBackend>) => Promise<void>): Promise<void> {
  const f = feedBackend();
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, f.backend);
  try {
    await fn(srv, f);
  } finally {
    await srv.close();
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(20);
  assert.ok(cond(), 'condition not reached in time');
}

test('serf event / tags / force-leave reach the backend; backend errors reach the user', async () => {
  await withServer(async (srv, f) => {
    const a = `127.0.0.1:${srv.address.port}`;
    assert.equal((await runSerf(['event', '-rpc-addr', a, 'deploy', 'v1.2'])).code, 0);
    assert.equal((await runSerf(['event', '-rpc-addr', a, '-coalesce=false', 'restart'])).code, 0);
    const big = await runSerf(['event', '-rpc-addr', a, 'too-big', 'x']);
    assert.equal(big.code, 1);
    assert.match(big.stderr + big.stdout, /user event exceeds configured limit of 512 bytes/);
    assert.equal((await runSerf(['tags', '-rpc-addr', a, '-set', 'role=web', '-set', 'dc=x1', '-delete', 'old'])).code, 0);
    assert.equal((await runSerf(['force-leave', '-rpc-addr', a, 'web-2'])).code, 0);
    assert.equal((await runSerf(['force-leave', '-rpc-addr', a, '-prune', 'web-2'])).code, 0);
    assert.deepEqual(f.calls, [
      ['event', 'deploy', 'v1.2', true],
      ['event', 'restart', '', false],
      ['tags', { role: 'web', dc: 'x1' }, ['old']],
      ['force-leave', 'web-2', false],
      ['force-leave', 'web-2', true],
    ]);
  });
});

test('serf monitor shows recent and live log lines at its level and the event stream; disconnect unsubscribes', async () => {
  await withServer(async (srv, f) => {
    const child = spawn(SERF, ['monitor', '-rpc-addr', `127.0.0.1:${srv.address.port}`, '-log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => f.logSinks.size === 1 && f.eventSinks.size === 1);
      f.log('2026/11/24 21:00:02 [DEBUG] agent: live debug');
      f.log('2026/11/24 21:00:03 [WARN] agent: live warn');
      f.emit({ type: 'user', name: 'deploy', payload: Buffer.from('p'), ltime: 7, coalesce: true });
      f.emit({ type: 'member-join', members: [MEMBERS[2]!] });
      await until(() => out.includes('live warn') && out.includes('member-join'));
      assert.match(out, /\[INFO\] serf: old info/);
      assert.doesNotMatch(out, /debug/);
      // serf prints each record's fields with Go's %#v
      assert.match(out, /\tEvent: "user"\n/);
      assert.match(out, /\tName: "deploy"\n/);
      assert.match(out, /\tLTime: 7\n/);
      assert.match(out, /\tPayload: \[\]byte\{0x70\}\n/);
      assert.match(out, /\tEvent: "member-join"\n/);
      // Go decodes the record into interface{}: Addr as bytes, Port 8000 as a uint16 (0x1f40)
      assert.match(out, /"Addr":\[\]uint8\{0xc0, 0xa8, 0x0, 0x9\}/);
      assert.match(out, /"Name":"db-1", "Port":0x1f40,.*"Status":"alive", "Tags":map\[interface \{\}\]interface \{\}\{"role":"db"\}/);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // the connection is gone: both subscriptions were ended
    await until(() => f.logSinks.size === 0 && f.eventSinks.size === 0);
  });
});

test('RpcClient stream: filter, records by Seq, stop ends delivery; errors for bad filter/level/duplicates', async () => {
  await withServer(async (srv, f) => {
    const c = await RpcClient.connect(`127.0.0.1:${srv.address.port}`);
    try {
      const got: RpcStreamEvent[] = [];
      const sub = await c.stream('member-failed,user:deploy', (e) => got.push(e));
      const lines: string[] = [];
      const mon = await c.monitor('warn', (l) => lines.push(l));
      f.emit({ type: 'user', name: 'other', payload: Buffer.from('x'), ltime: 1, coalesce: false });
      f.emit({ type: 'user', name: 'deploy', payload: Buffer.from('go'), ltime: 2, coalesce: true });
      f.emit({ type: 'member-join', members: [MEMBERS[0]!] });
      f.emit({ type: 'member-failed', members: [MEMBERS[1]!] });
      f.log('2026/11/24 21:00:04 [ERR] agent: boom');
      f.log('2026/11/24 21:00:05 [INFO] agent: quiet');
      await until(() => got.length === 2 && lines.length === 1);
      const [u, m] = got;
      assert.ok(u?.type === 'user');
      assert.deepEqual([u.name, Buffer.from(u.payload).toString(), u.ltime, u.coalesce], ['deploy', 'go', 2, true]);
      assert.ok(m?.type === 'member-failed');
      assert.deepEqual(m.members.map((x) => [x.name, x.status, [...x.addr].join('.')]), [['web-2', 'failed', '10.1.2.3']]);
      assert.deepEqual(lines, ['2026/11/24 21:00:04 [ERR] agent: boom']);

      await assert.rejects(c.monitor('info', () => {}), (e: unknown) => e instanceof RpcError && e.message === 'Monitor already exists');
      await assert.rejects(c.monitor('loud', () => {}), (e: unknown) => e instanceof RpcError && e.message === 'Unknown log level: LOUD');
      await assert.rejects(c.stream('member-join,bogus', () => {}), (e: unknown) => e instanceof RpcError && e.message === 'Invalid event filter');

      await sub.stop();
      await mon.stop();
      assert.equal(f.eventSinks.size, 0);
      assert.equal(f.logSinks.size, 0);
      f.emit({ type: 'member-failed', members: [MEMBERS[1]!] });
      // the connection is still in step after stop
      assert.equal((await c.members()).length, MEMBERS.length);
      assert.equal(got.length, 2);
    } finally {
      c.close();
    }
  });
});

test('a client that does not read loses records, not the agent: drops are counted', async () => {
  const f = feedBackend();
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, f.backend, { maxPendingWriteBytes: 64 * 1024 });
  try {
    const c = await RpcClient.connect(`127.0.0.1:${srv.address.port}`);
    try {
      await c.stream('*', () => {});
      // pause our side: the kernel buffers fill, then the server's write queue
      (c as unknown as { socket: { pause(): void } }).socket.pause();
      const big = { type: 'user' as const, name: 'flood', payload: new Uint8Array(16 * 1024), ltime: 1, coalesce: false };
      for (let i = 0; i < 2000 && (srv.counters()['recordsDropped'] ?? 0) === 0; i++) {
        f.emit(big);
        if (i % 50 === 0) await sleep(5);
      }
      assert.ok((srv.counters()['recordsDropped'] ?? 0) > 0, 'records were dropped');
    } finally {
      c.close();
    }
    // other clients are unaffected
    const d = await RpcClient.connect(`127.0.0.1:${srv.address.port}`);
    assert.equal((await d.members()).length, MEMBERS.length);
    d.close();
  } finally {
    await srv.close();
  }
});
