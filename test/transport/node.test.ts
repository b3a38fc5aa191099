// The real UDP+TCP transport: the shared compliance suite in real time, plus what only real
// sockets can show (chunked arrival, idle timeout, connection cap, malformed input, binding).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Address } from '../../src/wire/types.ts';
import { listenNodeTransport } from '../../src/transport/node-transport.ts';
import type { NodeTransportOptions } from '../../src/transport/node-transport.ts';
import type { Transport } from '../../src/transport/transport.ts';
import { TransportError } from '../../src/transport/errors.ts';
import { transportCompliance, pingStream, pushPullStream } from './compliance.ts';
import type { ComplianceEnv } from './compliance.ts';

const LOCALHOST = '127.0.0.1';

/** A port nothing listens on: bound by us, then released. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen({ host: LOCALHOST, port: 0 }, resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function closeTransport(t: Transport): Promise<void> {
  return new Promise((resolve) => t.close(resolve));
}

async function makeEnv(): Promise<ComplianceEnv> {
  const made: Transport[] = [];
  const dead: Address = { ip: LOCALHOST, port: await deadPort() };
  return {
    async create(opts) {
      const t = await listenNodeTransport({ ip: LOCALHOST, port: 0 }, opts);
      made.push(t);
      return t;
    },
    settle: (ms) => sleep(ms),
    deadAddress: () => dead,
    async cleanup() {
      await Promise.all(made.map(closeTransport));
    },
  };
}

transportCompliance('node UDP+TCP', makeEnv);

// ---------------------------------------------------------------------------------------------

/** Bounded wait on a real condition. */
async function waitFor(cond: () => boolean, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond() && Date.now() < deadline) await sleep(5);
}

interface Seen {
  streams: Uint8Array[];
  dropped: string[];
  packets: number;
}

async function listen(opts: NodeTransportOptions, reply: Uint8Array | null | 'never'): Promise<{ t: Transport; seen: Seen }> {
  const t = await listenNodeTransport({ ip: LOCALHOST, port: 0 }, opts);
  const seen: Seen = { streams: [], dropped: [], packets: 0 };
  t.setHandlers({
    packet: () => seen.packets++,
    stream: (_from, req, r) => {
      seen.streams.push(Uint8Array.from(req));
      if (reply !== 'never') r(reply);
    },
    dropped: (reason) => seen.dropped.push(reason),
  });
  return { t, seen };
}

/** A raw TCP client that records what it reads and when the server closes. */
function rawClient(to: Address): { sock: net.Socket; data: Buffer[]; closed: () => boolean; connected: Promise<void> } {
  const sock = net.connect({ host: to.ip, port: to.port });
  const data: Buffer[] = [];
  let isClosed = false;
  sock.on('data', (c: Buffer) => data.push(c));
  sock.on('error', () => {});
  sock.on('close', () => {
    isClosed = true;
  });
  const connected = new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  return { sock, data, closed: () => isClosed, connected };
}

test('node: UDP and TCP share the resolved port', async () => {
  const { t, seen } = await listen({}, null);
  try {
    assert.ok(t.localAddress.port > 0);
    assert.equal(t.localAddress.ip, LOCALHOST);
    const c = rawClient(t.localAddress);
    await c.connected; // TCP answers on it
    c.sock.destroy();
    const u = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => u.send(Uint8Array.of(7), t.localAddress.port, LOCALHOST, () => resolve()));
    await waitFor(() => seen.packets > 0, 2000);
    u.close();
    assert.equal(seen.packets, 1);
  } finally {
    await closeTransport(t);
  }
});

test('node: a stream request dribbled in tiny chunks is framed once, then answered', async () => {
  const response = pushPullStream(50, 4);
  const { t, seen } = await listen({}, response);
  try {
    const request = pushPullStream(120, 5);
    const c = rawClient(t.localAddress);
    await c.connected;
    // 37-byte pieces with pauses: the frame end must be found by parsing, not by EOF.
    for (let off = 0, i = 0; off < request.length; off += 37, i++) {
      c.sock.write(request.subarray(off, off + 37));
      if (i % 40 === 0) await sleep(2);
    }
    await waitFor(() => Buffer.concat(c.data).length >= response.length, 5000);
    assert.equal(seen.streams.length, 1);
    assert.deepEqual(seen.streams[0], request);
    assert.deepEqual(new Uint8Array(Buffer.concat(c.data)), response);
    await waitFor(c.closed, 2000); // reply then close: we closed our side
    c.sock.destroy();
    assert.deepEqual(seen.dropped, []);
  } finally {
    await closeTransport(t);
  }
});

test('node: a 3 MB push/pull and its 3 MB reply cross intact and promptly', { timeout: 30_000 }, async () => {
  const request = pushPullStream(30_000, 11);
  const response = pushPullStream(30_000, 12);
  const { t: b, seen } = await listen({}, response);
  const a = await listenNodeTransport({ ip: LOCALHOST, port: 0 });
  a.setHandlers({ packet: () => undefined, stream: (_f, _r, reply) => reply(null) });
  try {
    assert.ok(request.length > 2_500_000, `${request.length} bytes`);
    const started = Date.now();
    const got = await new Promise<[string | null, Uint8Array | null]>((resolve) =>
      a.openStream(b.localAddress, request, 20_000, true, (e, r) => resolve([e, r])));
    const tookMs = Date.now() - started;
    assert.equal(got[0], null);
    assert.deepEqual(got[1], response);
    assert.deepEqual(seen.streams[0], request);
    assert.ok(tookMs < 10_000, `took ${tookMs} ms`);
  } finally {
    await closeTransport(a);
    await closeTransport(b);
  }
});

test('node: malformed, truncated and idle inbound streams are dropped and closed', async () => {
  const { t, seen } = await listen({ streamIdleTimeoutMs: 300 }, null);
  try {
    // Unknown message type byte.
    const bad = rawClient(t.localAddress);
    await bad.connected;
    bad.sock.write(Uint8Array.of(0x7f, 1, 2, 3));
    await waitFor(bad.closed, 2000);
    assert.ok(bad.closed(), 'malformed stream left open');
    assert.ok(seen.dropped.includes('stream-malformed'), `dropped: ${seen.dropped.join(',')}`);

    // Half a ping, then EOF.
    const trunc = rawClient(t.localAddress);
    await trunc.connected;
    const ping = pingStream(9, 'x');
    trunc.sock.end(ping.subarray(0, ping.length - 3));
    await waitFor(() => seen.dropped.includes('stream-truncated'), 2000);
    assert.ok(seen.dropped.includes('stream-truncated'), `dropped: ${seen.dropped.join(',')}`);

    // Half a ping, then silence: the idle timeout closes it.
    const idle = rawClient(t.localAddress);
    await idle.connected;
    const started = Date.now();
    idle.sock.write(ping.subarray(0, 4));
    await waitFor(idle.closed, 3000);
    const tookMs = Date.now() - started;
    assert.ok(idle.closed(), 'idle stream left open');
    assert.ok(tookMs >= 250 && tookMs < 2500, `idle close after ${tookMs} ms`);
    assert.ok(seen.dropped.includes('stream-idle-timeout'), `dropped: ${seen.dropped.join(',')}`);
    assert.equal(seen.streams.length, 0);
  } finally {
    await closeTransport(t);
  }
});

test('node: connections above maxInboundStreams are closed and reported', async () => {
  const { t, seen } = await listen({ maxInboundStreams: 2 }, 'never');
  const clients: ReturnType<typeof rawClient>[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = rawClient(t.localAddress);
      clients.push(c);
      await c.connected;
    }
    await sleep(50); // let the server accept both
    const extra = rawClient(t.localAddress);
    clients.push(extra);
    await waitFor(extra.closed, 2000);
    assert.ok(extra.closed(), 'the third connection must be closed');
    assert.deepEqual(seen.dropped, ['stream-too-many']);
    assert.ok(!clients[0]?.closed() && !clients[1]?.closed(), 'the first two stay open');
    // Once one closes, a new stream is accepted again.
    clients[0]?.sock.destroy();
    await sleep(50);
    const again = rawClient(t.localAddress);
    clients.push(again);
    await again.connected;
    again.sock.write(pingStream(1, 'y'));
    await waitFor(() => seen.streams.length > 0, 2000);
    assert.equal(seen.streams.length, 1);
  } finally {
    for (const c of clients) c.sock.destroy();
    await closeTransport(t);
  }
});

test('node: empty datagrams are reported, not delivered', async () => {
  const { t, seen } = await listen({}, null);
  const u = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => u.send(new Uint8Array(0), t.localAddress.port, LOCALHOST, () => resolve()));
    await waitFor(() => seen.dropped.length > 0, 2000);
    assert.deepEqual(seen.dropped, ['udp-empty']);
    assert.equal(seen.packets, 0);
  } finally {
    u.close();
    await closeTransport(t);
  }
});

test('node: outbound failure reasons are stable strings', async () => {
  const { t } = await listen({}, null);
  try {
    const refused = await new Promise<string | null>((resolve) =>
      t.openStream({ ip: LOCALHOST, port: 1 }, pingStream(1, 'z'), 2000, true, (e) => resolve(e)));
    // Port 1 is privileged and closed on a test machine.
    assert.equal(refused, 'connection refused');
    const dead = await deadPort();
    const refused2 = await new Promise<string | null>((resolve) =>
      t.openStream({ ip: LOCALHOST, port: dead }, pingStream(1, 'z'), 2000, true, (e) => resolve(e)));
    assert.equal(refused2, 'connection refused');
  } finally {
    await closeTransport(t);
  }
});

test('node: addresses from the wire that are not IP:port are refused, never resolved or thrown', async () => {
  const { t, seen } = await listen({}, null);
  try {
    const bad: Address[] = [
      { ip: '127.0.0.1', port: 0 },
      { ip: '127.0.0.1', port: 70_000 },
      { ip: 'localhost', port: t.localAddress.port },
      { ip: '', port: t.localAddress.port },
    ];
    for (const to of bad) t.sendPacket(to, Uint8Array.of(1));
    assert.deepEqual(seen.dropped, bad.map(() => 'udp-send-bad-address'));
    const errors = await Promise.all(bad.map((to) =>
      new Promise<string | null>((resolve) => t.openStream(to, pingStream(1, 'q'), 1000, true, (e) => resolve(e)))));
    for (const e of errors) assert.match(e ?? '', /^bad address: /);
    await sleep(50);
    assert.equal(seen.packets, 0, "'' must not mean localhost");
    assert.equal(seen.streams.length, 0);
  } finally {
    await closeTransport(t);
  }
});

test('node: binding errors carry codes; a closed transport frees its port', async () => {
  await assert.rejects(listenNodeTransport({ ip: 'not-an-ip', port: 0 }), (e: unknown) => e instanceof TransportError && e.code === 'ERR_TRANSPORT_ADDRESS');
  const a = await listenNodeTransport({ ip: LOCALHOST, port: 0 });
  try {
    await assert.rejects(listenNodeTransport({ ip: LOCALHOST, port: a.localAddress.port }), (e: unknown) => e instanceof TransportError && e.code === 'ERR_TRANSPORT_BIND');
  } finally {
    await closeTransport(a);
  }
  const b = await listenNodeTransport({ ip: LOCALHOST, port: a.localAddress.port });
  assert.equal(b.localAddress.port, a.localAddress.port);
  await closeTransport(b);
});
