// The compliance suite every Transport implementation must pass: the real UDP/TCP transport
// (node.test.ts) and the simulated network (sim.test.ts). It only uses the Transport interface
// and time through env.settle(), so the same assertions hold in real and in virtual time.
//
// The stream payloads are genuine memberlist stream messages (push/pull with hundreds of node
// states, a stream ping), encoded here by a tiny independent msgpack writer so the suite also
// cross-checks the transports' use of wire's stream framing.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Address, PushPullMsg } from '../../src/wire/types.ts';
import { Keyring, decodeStream, encodeMessage, encodeStream } from '../../src/wire/index.ts';
import type { StreamReply, Transport, TransportHandlers } from '../../src/transport/transport.ts';

export interface ComplianceEnv {
  create(opts?: { maxStreamBytes?: number }): Promise<Transport>; // bound to a fresh address
  settle(ms: number): Promise<void>; // let ms of (real or virtual) time pass, delivering what is due
  deadAddress(): Address; // nothing listens there
  cleanup(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Minimal go-msgpack (old spec) writer: enough for push/pull and ping stream messages.

type Mp = boolean | number | string | Uint8Array | { [k: string]: Mp };

function mpWrite(out: number[], v: Mp): void {
  if (typeof v === 'boolean') {
    out.push(v ? 0xc3 : 0xc2);
  } else if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new Error('mpWrite: only unsigned ints');
    if (v < 0x80) out.push(v);
    else if (v < 0x100) out.push(0xcc, v);
    else if (v < 0x10000) out.push(0xcd, v >> 8, v & 0xff);
    else out.push(0xce, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  } else if (typeof v === 'string' || v instanceof Uint8Array) {
    // Old spec: strings and byte slices are both "raw" (a0-bf / da / db).
    const b = typeof v === 'string' ? new TextEncoder().encode(v) : v;
    if (b.length < 32) out.push(0xa0 | b.length);
    else if (b.length < 0x10000) out.push(0xda, b.length >> 8, b.length & 0xff);
    else throw new Error('mpWrite: raw too long');
    for (const x of b) out.push(x);
  } else {
    const keys = Object.keys(v).sort();
    if (keys.length >= 16) throw new Error('mpWrite: map too large');
    out.push(0x80 | keys.length);
    for (const k of keys) {
      mpWrite(out, k);
      mpWrite(out, v[k] as Mp);
    }
  }
}

/** `06 | header | node states | user state`: a push/pull of `nodes` states, ~100 bytes each. */
export function pushPullStream(nodes: number, salt: number, join = false): Uint8Array {
  const out: number[] = [6];
  const userState = new Uint8Array(64).map((_, i) => (i * 7 + salt) & 0xff);
  mpWrite(out, { Join: join, Nodes: nodes, UserStateLen: userState.length });
  for (let i = 0; i < nodes; i++) {
    mpWrite(out, {
      Addr: new Uint8Array([10, (salt >> 8) & 0xff, (i >> 8) & 0xff, i & 0xff]),
      Incarnation: i * 3 + salt,
      Meta: new Uint8Array([0x81, 0xa4, 0x72, 0x6f, 0x6c, 0x65, 0xa3, 0x77, 0x65, 0x62]), // {role: web}
      Name: `node-${salt}-${i}-${'x'.repeat(i % 23)}`,
      Port: 7946,
      State: i % 4,
      Vsn: new Uint8Array([1, 5, 2, 2, 5, 5]),
    });
  }
  for (const b of userState) out.push(b);
  return Uint8Array.from(out);
}

/** `00 | msgpack(ping)`: the stream (TCP fallback) ping. */
export function pingStream(seqNo: number, node: string): Uint8Array {
  const out: number[] = [0];
  mpWrite(out, { Node: node, SeqNo: seqNo });
  return Uint8Array.from(out);
}

/** A push/pull as the core sends it: wire-encoded, LZW-compressed and AES-GCM sealed. */
function sealedPushPull(nodes: number, keyring: Keyring, salt: number): { msg: PushPullMsg; bytes: Uint8Array } {
  const msg: PushPullMsg = {
    type: 'pushPull',
    join: false,
    nodes: Array.from({ length: nodes }, (_, i) => ({
      name: `sealed-${salt}-${i}`,
      addr: Uint8Array.of(10, salt & 0xff, (i >> 8) & 0xff, i & 0xff),
      port: 7946,
      meta: new TextEncoder().encode(`role=db,idx=${i}`),
      incarnation: i + salt,
      state: 'alive',
      vsn: [1, 5, 2, 2, 5, 5],
    })),
    userState: Uint8Array.of(2, 0x80),
  };
  let nonce = salt;
  const randomBytes = (n: number): Uint8Array => new Uint8Array(n).map(() => nonce++ & 0xff);
  return { msg, bytes: encodeStream(encodeMessage(msg), { compress: true, keyring, randomBytes }) };
}

// ---------------------------------------------------------------------------------------------

interface Recorder {
  packets: { from: Address; bytes: Uint8Array }[];
  streams: { from: Address; request: Uint8Array; reply: StreamReply }[];
  dropped: { reason: string; from: Address | undefined; detail: string }[];
}

function record(t: Transport, onStream?: (request: Uint8Array, reply: StreamReply) => void): Recorder {
  const r: Recorder = { packets: [], streams: [], dropped: [] };
  const handlers: TransportHandlers = {
    packet: (from, bytes) => {
      // Copy: a transport may reuse its receive buffer after the handler returns.
      r.packets.push({ from, bytes: Uint8Array.from(bytes) });
    },
    stream: (from, request, reply) => {
      r.streams.push({ from, request: Uint8Array.from(request), reply });
      onStream?.(request, reply);
    },
    dropped: (reason, from, detail) => {
      r.dropped.push({ reason, from, detail });
    },
  };
  t.setHandlers(handlers);
  return r;
}

interface Outcome {
  error: string | null;
  reply: Uint8Array | null;
  calls: number;
  /** env time (sum of settles) when done first ran */
  atMs: number;
}

/** Let time pass in `stepMs` steps until `cond` holds or `maxMs` passed; returns the time waited. */
async function until(env: ComplianceEnv, cond: () => boolean, maxMs: number, stepMs = 5): Promise<number> {
  let waitedMs = 0;
  while (!cond() && waitedMs < maxMs) {
    await env.settle(stepMs);
    waitedMs += stepMs;
  }
  return waitedMs;
}

async function withEnv(makeEnv: () => Promise<ComplianceEnv>, fn: (env: ComplianceEnv) => Promise<void>): Promise<void> {
  const env = await makeEnv();
  try {
    await fn(env);
  } finally {
    await env.cleanup();
  }
}

/**
 * Elapsed env time. Settled ms are exact in virtual time but undercount real time (a 10 ms sleep
 * takes longer), while wall time stands still in a simulation; the larger of the two is right
 * for both.
 */
interface EnvClock {
  settledMs: number;
  readonly wallStartMs: number;
  elapsedMs(): number;
}

/** Open a stream and record its outcome, with the env time when done first ran. */
function open(t: Transport, to: Address, request: Uint8Array, timeoutMs: number, expectReply: boolean, clock: EnvClock): Outcome {
  const o: Outcome = { error: null, reply: null, calls: 0, atMs: -1 };
  t.openStream(to, request, timeoutMs, expectReply, (error, reply) => {
    o.calls++;
    if (o.calls === 1) {
      o.error = error;
      o.reply = reply === null ? null : Uint8Array.from(reply);
      o.atMs = clock.elapsedMs();
    }
  });
  return o;
}

/** Wraps env.settle so the suite knows how much env time has passed. */
function timed(env: ComplianceEnv): { env: ComplianceEnv; clock: EnvClock } {
  const clock: EnvClock = {
    settledMs: 0,
    wallStartMs: Date.now(),
    elapsedMs() {
      return Math.max(this.settledMs, Date.now() - this.wallStartMs);
    },
  };
  const wrapped: ComplianceEnv = {
    create: (o) => env.create(o),
    deadAddress: () => env.deadAddress(),
    cleanup: () => env.cleanup(),
    settle: async (ms) => {
      await env.settle(ms);
      clock.settledMs += ms;
    },
  };
  return { env: wrapped, clock };
}

const TEST_TIMEOUT_MS = 30_000;

export function transportCompliance(name: string, makeEnv: () => Promise<ComplianceEnv>): void {
  describe(`transport compliance: ${name}`, () => {
    test('packets travel both ways and carry the sender address as from', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (env) => {
        const a = await env.create();
        const b = await env.create();
        assert.notDeepEqual(a.localAddress, b.localAddress, 'two transports share an address');
        assert.ok(a.localAddress.port > 0 && b.localAddress.port > 0, 'port 0 must be resolved');
        const ra = record(a);
        const rb = record(b);
        a.sendPacket(b.localAddress, Uint8Array.of(1, 2, 3));
        b.sendPacket(a.localAddress, Uint8Array.of(4, 5));
        await until(env, () => ra.packets.length >= 1 && rb.packets.length >= 1, 3000);
        assert.equal(rb.packets.length, 1);
        assert.deepEqual(rb.packets[0]?.from, a.localAddress);
        assert.deepEqual(rb.packets[0]?.bytes, Uint8Array.of(1, 2, 3));
        assert.equal(ra.packets.length, 1);
        assert.deepEqual(ra.packets[0]?.from, b.localAddress);
        assert.deepEqual(ra.packets[0]?.bytes, Uint8Array.of(4, 5));
        // Replying to `from` must reach the original sender.
        const from = rb.packets[0]?.from;
        assert.ok(from);
        b.sendPacket(from, Uint8Array.of(9));
        await until(env, () => ra.packets.length >= 2, 3000);
        assert.deepEqual(ra.packets[1]?.bytes, Uint8Array.of(9));
        assert.equal(ra.dropped.length + rb.dropped.length, 0);
      }));

    test('datagrams of 1 … 60,000 bytes arrive intact', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (env) => {
        const a = await env.create();
        const b = await env.create();
        record(a);
        const rb = record(b);
        const sizes = [1, 2, 17, 512, 1400, 1500, 8192, 9001, 32768, 50_000, 60_000];
        const sent = sizes.map((n, k) => new Uint8Array(n).map((_, i) => (i * 31 + k * 7 + (i >> 8)) & 0xff));
        for (const p of sent) {
          a.sendPacket(b.localAddress, p);
          // One at a time: the contract allows reordering, and we compare by size below anyway.
          await until(env, () => rb.packets.some((x) => x.bytes.length === p.length), 3000, 2);
        }
        for (const p of sent) {
          const got = rb.packets.find((x) => x.bytes.length === p.length);
          assert.ok(got, `datagram of ${p.length} bytes did not arrive`);
          assert.deepEqual(got.bytes, p, `datagram of ${p.length} bytes was altered`);
          assert.deepEqual(got.from, a.localAddress);
        }
      }));

    test('a large stream (push/pull, 500 states) gets its large reply', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        const request = pushPullStream(500, 1, true);
        const response = pushPullStream(400, 2, true);
        assert.ok(request.length > 40_000, `request only ${request.length} bytes`);
        const ra = record(a);
        const rb = record(b, (_req, reply) => reply(response));
        const o = open(a, b.localAddress, request, 5000, true, clock);
        await until(env, () => o.calls > 0, 6000);
        assert.equal(o.error, null);
        assert.deepEqual(o.reply, response);
        assert.equal(rb.streams.length, 1);
        assert.deepEqual(rb.streams[0]?.request, request);
        // Streams come from an ephemeral port; only the IP is meaningful.
        assert.equal(rb.streams[0]?.from.ip, a.localAddress.ip);
        await env.settle(50);
        assert.equal(o.calls, 1, 'done must run exactly once');
        assert.equal(ra.streams.length, 0, 'the reply must not show up as an inbound stream');
        assert.equal(ra.dropped.length + rb.dropped.length, 0);
      }));

    test('a compressed, encrypted push/pull (wire-encoded, 500 states) crosses both ways', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        const keyring = new Keyring([new Uint8Array(32).fill(7)]);
        const req = sealedPushPull(500, keyring, 1);
        const resp = sealedPushPull(450, keyring, 2);
        assert.equal(req.bytes[0], 10, 'expected an encrypted stream frame');
        record(a);
        const rb = record(b, (_req, reply) => reply(resp.bytes));
        const o = open(a, b.localAddress, req.bytes, 5000, true, clock);
        await until(env, () => o.calls > 0, 6000);
        assert.equal(o.error, null);
        assert.ok(o.reply);
        const opts = { keyring, verifyIncoming: true };
        assert.deepEqual(decodeStream(o.reply, opts), resp.msg);
        const got = rb.streams[0]?.request;
        assert.ok(got);
        assert.deepEqual(decodeStream(got, opts), req.msg);
      }));

    test('a write-only stream is delivered and done(null, null) runs once', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        const request = pushPullStream(3, 7);
        record(a);
        const rb = record(b, (_req, reply) => reply(null));
        const o = open(a, b.localAddress, request, 3000, false, clock);
        await until(env, () => o.calls > 0 && rb.streams.length > 0, 4000);
        assert.equal(o.error, null);
        assert.equal(o.reply, null);
        assert.equal(rb.streams.length, 1);
        assert.deepEqual(rb.streams[0]?.request, request);
        await env.settle(50);
        assert.equal(o.calls, 1);
      }));

    test('openStream to an address where nothing listens fails', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        record(a);
        const o = open(a, env.deadAddress(), pingStream(1, 'nobody'), 2000, true, clock);
        await until(env, () => o.calls > 0, 5000);
        assert.equal(o.calls, 1);
        assert.equal(typeof o.error, 'string');
        assert.ok((o.error ?? '').length > 0);
        assert.equal(o.reply, null);
      }));

    test('a responder that never replies: the requester fails after ~timeoutMs', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        record(a);
        const rb = record(b); // never calls reply
        const timeoutMs = 400;
        const startMs = clock.elapsedMs();
        const o = open(a, b.localAddress, pingStream(2, 'b'), timeoutMs, true, clock);
        await until(env, () => rb.streams.length > 0, 2000);
        assert.equal(rb.streams.length, 1, 'the request must arrive');
        await until(env, () => o.calls > 0, 5000, 10);
        assert.equal(o.calls, 1);
        assert.equal(typeof o.error, 'string');
        const tookMs = o.atMs - startMs;
        assert.ok(tookMs >= timeoutMs * 0.9, `failed too early: ${tookMs} ms < ${timeoutMs} ms`);
        assert.ok(tookMs <= timeoutMs + 1500, `failed too late: ${tookMs} ms`);
        // A late reply must not resurrect the finished stream.
        rb.streams[0]?.reply(pingStream(3, 'late'));
        await env.settle(100);
        assert.equal(o.calls, 1);
      }));

    test('reply(null) closes the stream and the requester gets an error', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        record(a);
        const rb = record(b, (_req, reply) => reply(null));
        const startMs = clock.elapsedMs();
        const o = open(a, b.localAddress, pingStream(4, 'b'), 3000, true, clock);
        await until(env, () => o.calls > 0, 4000);
        assert.equal(rb.streams.length, 1);
        assert.equal(o.calls, 1);
        assert.equal(typeof o.error, 'string');
        assert.equal(o.reply, null);
        assert.ok(o.atMs - startMs < 2500, 'a closed stream must fail promptly, not by timeout');
      }));

    test('a stream above maxStreamBytes is refused and reported', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create({ maxStreamBytes: 4096 });
        record(a);
        const rb = record(b, (_req, reply) => reply(pushPullStream(1, 9)));
        const big = pushPullStream(200, 3);
        assert.ok(big.length > 4096 * 2);
        const o = open(a, b.localAddress, big, 3000, true, clock);
        await until(env, () => o.calls > 0 && rb.dropped.length > 0, 5000);
        assert.equal(rb.streams.length, 0, 'an oversized stream must not reach the handler');
        assert.ok(rb.dropped.length >= 1, 'the refusal must be reported through dropped');
        assert.equal(o.calls, 1);
        assert.equal(typeof o.error, 'string');
        // A stream under the limit still works on the same transport.
        const small = pingStream(5, 'b');
        const o2 = open(a, b.localAddress, small, 3000, true, clock);
        await until(env, () => o2.calls > 0, 4000);
        assert.equal(o2.error, null);
        assert.deepEqual(rb.streams[0]?.request, small);
      }));

    test('after close() nothing more is delivered', { timeout: TEST_TIMEOUT_MS }, () =>
      withEnv(makeEnv, async (raw) => {
        const { env, clock } = timed(raw);
        const a = await env.create();
        const b = await env.create();
        record(a);
        const rb = record(b); // holds inbound streams open
        // An inbound stream that is pending when b closes: the requester must hear about it.
        const pending = open(a, b.localAddress, pingStream(6, 'b'), 5000, true, clock);
        await until(env, () => rb.streams.length > 0, 2000);
        assert.equal(rb.streams.length, 1);
        let closed = 0;
        const closeAtMs = clock.elapsedMs();
        b.close(() => closed++);
        await until(env, () => closed > 0, 3000);
        assert.equal(closed, 1, 'close(done) must call done once');
        await until(env, () => pending.calls > 0, 3000);
        assert.equal(pending.calls, 1);
        assert.equal(typeof pending.error, 'string', 'closing must fail the open stream, not leave it to time out');
        assert.ok(pending.atMs - closeAtMs < 4000, 'the pending stream failed by its timeout, not by close');

        const packetsBefore = rb.packets.length;
        a.sendPacket(b.localAddress, Uint8Array.of(1));
        const o = open(a, b.localAddress, pingStream(7, 'b'), 1000, true, clock);
        await until(env, () => o.calls > 0, 3000);
        await env.settle(100);
        assert.equal(rb.packets.length, packetsBefore, 'a closed transport delivered a packet');
        assert.equal(rb.streams.length, 1, 'a closed transport delivered a stream');
        assert.equal(typeof o.error, 'string');
        // Replying on a stream of a closed transport is harmless.
        rb.streams[0]?.reply(pingStream(8, 'late'));
        await env.settle(20);
      }));
  });
}
