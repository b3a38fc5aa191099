// The embedded proxy in TCP mode, end to end with echo servers that name themselves.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createEmbeddedBalancer } from '../../src/balancer/embedded/index.ts';
import type { EmbeddedBalancer } from '../../src/balancer/embedded/index.ts';
import type { Backend } from '../../src/discovery/types.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Echo server: first line out is `<node>\n`, then every byte back; ends when the client ends. */
async function startEcho(t: TestContext, node: string): Promise<{ id: string; port: number; connections: number; kill(): void }> {
  const state = { connections: 0 };
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write(`${node}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kill = (): void => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  t.after(kill);
  return {
    kill,
    id: node,
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
  };
}

const be = (e: { id: string; port: number }, weight = 100, state: Backend['state'] = 'ready'): Backend => ({
  id: e.id,
  host: '127.0.0.1',
  port: e.port,
  weight,
  state,
});

async function startTcpProxy(t: TestContext): Promise<{ lb: EmbeddedBalancer; port: number }> {
  const lb = createEmbeddedBalancer({ closeGraceMs: 500 });
  await lb.start([{ service: 'echo', mode: 'tcp', bind: { host: '127.0.0.1', port: 0 } }]);
  t.after(() => lb.stop());
  return { lb, port: lb.boundPort('echo') ?? 0 };
}

/** Connect, send `payload`, half-close, collect everything until the proxy closes. */
function roundTrip(port: number, payload: string): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let error: string | undefined;
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve(error === undefined ? { text } : { text, error }));
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.end(payload);
  });
}

/** An open session through the proxy: which backend answered, and a way to talk. */
function openSession(port: number): Promise<{ node: string; socket: Socket; say(x: string): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.setEncoding('utf8');
    let buf = '';
    let waiter: ((x: string) => void) | undefined;
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (waiter === undefined) {
        resolve({
          node: line,
          socket: s,
          say(x: string) {
            return new Promise((r) => {
              waiter = r;
              s.write(`${x}\n`);
            });
          },
        });
      } else waiter(line);
    });
  });
}

test('TCP mode end to end: bytes both ways, half-close honoured, round-robin over backends', async (t) => {
  const a = await startEcho(t, 'a');
  const b = await startEcho(t, 'b');
  const { lb, port } = await startTcpProxy(t);
  await lb.setBackends('echo', [be(a), be(b)]);
  const big = 'z'.repeat(300_000);
  const seen: Record<string, number> = {};
  for (let i = 0; i < 10; i++) {
    const r = await roundTrip(port, i === 0 ? big : `ping ${i}`);
    assert.equal(r.error, undefined);
    const [node, ...rest] = r.text.split('\n');
    assert.equal(rest.join('\n'), i === 0 ? big : `ping ${i}`, 'the whole payload came back after our half-close');
    seen[node ?? '?'] = (seen[node ?? '?'] ?? 0) + 1;
  }
  assert.deepEqual(seen, { a: 5, b: 5 });
  await waitFor('sessions closed', async () => (await lb.stats('echo')).every((s) => s.activeSessions === 0));
  const stats = await lb.stats('echo');
  assert.deepEqual(
    stats.map((s) => [s.id, s.totalSessions]),
    [
      ['a', 5],
      ['b', 5],
    ],
  );
  assert.equal(lb.counters().connections, 10);
});

test('TCP: a dead backend is routed around; no backend closes the connection; drain keeps open sessions', async (t) => {
  const a = await startEcho(t, 'a');
  const dead = { id: 'dead', port: 0 };
  {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    dead.port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
  }
  const { lb, port } = await startTcpProxy(t);
  const empty = await roundTrip(port, 'hello');
  assert.equal(empty.text, '', 'no backend: closed without a byte');
  assert.equal(lb.counters().no_backend, 1);

  await lb.setBackends('echo', [be(dead, 200), be(a, 1)]);
  for (let i = 0; i < 5; i++) {
    const r = await roundTrip(port, 'x');
    assert.equal(r.text, 'a\nx');
  }
  assert.ok(lb.counters().connect_failures >= 1 && lb.counters().retries >= 1);

  // An open session survives its backend being drained and even removed; new ones go elsewhere.
  const b = await startEcho(t, 'b');
  await lb.setBackends('echo', [be(a), be(b)]);
  const sessions = await Promise.all([openSession(port), openSession(port)]);
  const onA = sessions.find((s) => s.node === 'a');
  assert.ok(onA !== undefined, `one session on a: ${sessions.map((s) => s.node).join(',')}`);
  await lb.setBackends('echo', [be(a, 100, 'drain'), be(b)]);
  assert.equal(await onA.say('still there?'), 'still there?');
  const next = await roundTrip(port, 'y');
  assert.equal(next.text, 'b\ny', 'new connections avoid the drained backend');
  assert.equal((await lb.stats('echo')).find((s) => s.id === 'a')?.activeSessions, 1);
  await lb.setBackends('echo', [be(b)]);
  assert.equal(await onA.say('and now?'), 'and now?');
  for (const s of sessions) s.socket.destroy();
});

test('TCP: a backend that dies mid-session closes its clients; new connections go to the others', async (t) => {
  const a = await startEcho(t, 'a');
  const b = await startEcho(t, 'b');
  const { lb, port } = await startTcpProxy(t);
  await lb.setBackends('echo', [be(a), be(b)]);
  const sessions = await Promise.all([openSession(port), openSession(port)]);
  const onB = sessions.find((s) => s.node === 'b');
  assert.ok(onB !== undefined);
  const closed = new Promise<void>((r) => onB.socket.once('close', () => r()));
  onB.socket.on('error', () => {});
  b.kill();
  await closed;
  for (let i = 0; i < 4; i++) assert.equal((await roundTrip(port, 'q')).text, 'a\nq', 'the dead backend is routed around');
  await waitFor('b released', async () => (await lb.stats('echo')).find((s) => s.id === 'b')?.activeSessions === 0, 2000);
  const onA = sessions.find((s) => s.node === 'a');
  assert.equal(await onA?.say('alive'), 'alive', 'the session on the other backend is untouched');
  for (const s of sessions) s.socket.destroy();
});
