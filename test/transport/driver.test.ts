// The Driver against a scripted fake core: output draining, stream id mapping, timer arming,
// re-entrancy and stop(); then a ping-pong core over real sockets and the real clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counters, MemberEvent, MembershipCore, NodeInfo, Output } from '../../src/memberlist/api.ts';
import type { Address } from '../../src/wire/types.ts';
import type { Clock, StreamReply, Transport, TransportHandlers } from '../../src/transport/transport.ts';
import { Driver } from '../../src/transport/driver.ts';
import { systemClock } from '../../src/transport/clock.ts';
import { listenNodeTransport } from '../../src/transport/node-transport.ts';
import { VirtualClock } from '../../src/sim/clock.ts';

const A: Address = { ip: '10.0.0.1', port: 7946 };
const B: Address = { ip: '10.0.0.2', port: 7946 };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | null): string => (b === null ? '<null>' : new TextDecoder().decode(b));

/**
 * A scriptable core: records every call, hands out queued outputs/events, and lets each test hook
 * the handle_* calls. Periodic by default: a timeout every `periodMs`.
 */
class FakeCore implements MembershipCore {
  calls: string[] = [];
  outputs: Output[] = [];
  events: MemberEvent[] = [];
  deadlineMs: number | undefined;
  periodMs: number | undefined = 100;
  isShutdown = false;
  nextStreamId = 1;
  onPacket: ((from: Address, b: Uint8Array, now: number) => void) | undefined;
  onStreamRequest: ((id: number, from: Address, b: Uint8Array, now: number) => void) | undefined;
  onStreamReply: ((id: number, b: Uint8Array, now: number) => void) | undefined;
  onStreamFailed: ((id: number, reason: string, now: number) => void) | undefined;
  onTimeout: ((now: number) => void) | undefined;

  start(now: number): void {
    this.calls.push(`start@${now}`);
    if (this.periodMs !== undefined) this.deadlineMs = now + this.periodMs;
  }
  handlePacket(from: Address, b: Uint8Array, now: number): void {
    this.calls.push(`packet:${text(b)}@${now}`);
    this.onPacket?.(from, b, now);
  }
  handleStreamRequest(id: number, from: Address, b: Uint8Array, now: number): void {
    this.calls.push(`stream-request#${id}:${text(b)}`);
    this.onStreamRequest?.(id, from, b, now);
  }
  handleStreamReply(id: number, b: Uint8Array, now: number): void {
    this.calls.push(`stream-reply#${id}:${text(b)}`);
    this.onStreamReply?.(id, b, now);
  }
  handleStreamFailed(id: number, reason: string, now: number): void {
    this.calls.push(`stream-failed#${id}:${reason}`);
    this.onStreamFailed?.(id, reason, now);
  }
  handleTimeout(now: number): void {
    this.calls.push(`timeout@${now}`);
    if (this.periodMs !== undefined && this.deadlineMs !== undefined && now >= this.deadlineMs) {
      this.deadlineMs = now + this.periodMs;
    }
    this.onTimeout?.(now);
  }
  pollOutput(): Output | undefined {
    return this.outputs.shift();
  }
  pollEvent(): MemberEvent | undefined {
    return this.events.shift();
  }
  pollTimeout(): number | undefined {
    return this.isShutdown ? undefined : this.deadlineMs;
  }
  join(seeds: Address[], now: number): number {
    this.calls.push(`join@${now}`);
    for (const to of seeds) {
      this.outputs.push({ kind: 'stream-open', id: this.nextStreamId++, to, bytes: bytes('hello'), timeoutMs: 1000, expectReply: true });
    }
    return 77;
  }
  leave(now: number, timeoutMs: number): void {
    this.calls.push(`leave@${now}:${timeoutMs}`);
    this.events.push({ type: 'leave-complete', timedOut: false });
  }
  updateMeta(now: number): void {
    this.calls.push(`updateMeta@${now}`);
  }
  sendUserPacket(to: Address, payload: Uint8Array): void {
    this.outputs.push({ kind: 'packet', to, bytes: payload });
  }
  pingNode(): void {}
  shutdown(): void {
    this.calls.push('shutdown');
    this.isShutdown = true;
    this.outputs = [];
  }
  members(): NodeInfo[] {
    return [];
  }
  localNode(): NodeInfo {
    return { name: 'fake', addr: A, meta: new Uint8Array(0), incarnation: 1, state: 'alive', vsn: [1, 5, 2, 2, 5, 5], stateChangeMs: 0 };
  }
  numMembers(): number {
    return 1;
  }
  healthScore(): number {
    return 0;
  }
  counters(): Counters {
    return {};
  }
}

type Done = (error: string | null, reply: Uint8Array | null) => void;

/** A transport that records what the driver asks and lets the test play the network. */
class FakeTransport implements Transport {
  readonly localAddress = A;
  handlers: TransportHandlers | undefined;
  sent: { to: Address; bytes: string }[] = [];
  opened: { to: Address; request: string; timeoutMs: number; expectReply: boolean; done: Done }[] = [];
  closed = 0;
  /** When set, openStream answers synchronously (as a simulator may on an unreachable address). */
  syncOpenResult: [string | null, Uint8Array | null] | undefined;
  setHandlers(h: TransportHandlers): void {
    this.handlers = h;
  }
  sendPacket(to: Address, b: Uint8Array): void {
    this.sent.push({ to, bytes: text(b) });
  }
  openStream(to: Address, request: Uint8Array, timeoutMs: number, expectReply: boolean, done: Done): void {
    this.opened.push({ to, request: text(request), timeoutMs, expectReply, done });
    if (this.syncOpenResult) done(...this.syncOpenResult);
  }
  close(done?: () => void): void {
    this.closed++;
    done?.();
  }
}

function setup(): { core: FakeCore; net: FakeTransport; clock: VirtualClock; events: MemberEvent[]; driver: Driver } {
  const core = new FakeCore();
  const net = new FakeTransport();
  const clock = new VirtualClock({ startMs: 1000 });
  const events: MemberEvent[] = [];
  const driver = new Driver(core, net, clock, (e) => events.push(e));
  return { core, net, clock, events, driver };
}

test('driver: start() runs the core, performs its outputs in order, arms one timer', () => {
  const { core, net, clock, events, driver } = setup();
  core.outputs.push({ kind: 'packet', to: B, bytes: bytes('one') }, { kind: 'packet', to: A, bytes: bytes('two') });
  core.events.push({ type: 'dropped', reason: 'x', detail: 'y' });
  driver.start();
  assert.deepEqual(core.calls, ['start@1000']);
  assert.deepEqual(net.sent, [{ to: B, bytes: 'one' }, { to: A, bytes: 'two' }]);
  assert.deepEqual(events, [{ type: 'dropped', reason: 'x', detail: 'y' }]);
  assert.equal(clock.pending(), 1, 'exactly one timer');
  assert.equal(clock.nextDueMs(), 1100);
  clock.runUntil(1099);
  assert.deepEqual(core.calls, ['start@1000']);
  clock.runUntil(1350);
  assert.deepEqual(core.calls, ['start@1000', 'timeout@1100', 'timeout@1200', 'timeout@1300']);
  assert.equal(clock.pending(), 1, 'still exactly one timer after firing');
  assert.throws(() => driver.start(), /twice/);
});

test('driver: the timer follows pollTimeout (moved earlier, later, cleared) and never multiplies', () => {
  const { core, clock, driver } = setup();
  core.periodMs = undefined;
  core.deadlineMs = 5000;
  core.onTimeout = () => {
    core.deadlineMs = undefined; // a one-shot deadline, consumed when it fires
  };
  driver.start();
  assert.equal(clock.nextDueMs(), 5000);
  driver.withCore((_c, now) => {
    core.deadlineMs = now + 10; // earlier
  });
  assert.equal(clock.pending(), 1);
  assert.equal(clock.nextDueMs(), 1010);
  driver.withCore(() => {
    core.deadlineMs = 9000; // later
  });
  assert.equal(clock.pending(), 1);
  assert.equal(clock.nextDueMs(), 9000);
  // Many inputs with an unchanged deadline: the same timer stays armed.
  for (let i = 0; i < 50; i++) net(driver);
  assert.equal(clock.pending(), 1);
  driver.withCore(() => {
    core.deadlineMs = undefined;
  });
  assert.equal(clock.pending(), 0, 'no deadline, no timer');
  clock.runUntil(20_000);
  assert.ok(!core.calls.some((c) => c.startsWith('timeout')), `stale timer fired: ${core.calls.join(' ')}`);
  // A deadline in the past fires promptly with the current time.
  driver.withCore(() => {
    core.deadlineMs = 100;
  });
  clock.runUntil(20_000);
  assert.deepEqual(core.calls.filter((c) => c.startsWith('timeout')), ['timeout@20000']);

  function net(d: Driver): void {
    d.withCore(() => undefined);
  }
});

test('driver: inbound streams get driver ids and each reply reaches its own socket', () => {
  const { core, net, events, driver } = setup();
  driver.start();
  const got: string[] = [];
  const replyFor = (tag: string): StreamReply => (b) => got.push(`${tag}:${text(b)}`);
  net.handlers?.stream(B, bytes('req-1'), replyFor('s1'));
  net.handlers?.stream(B, bytes('req-2'), replyFor('s2'));
  assert.deepEqual(core.calls.slice(1), ['stream-request#1:req-1', 'stream-request#2:req-2']);
  assert.equal(driver.pendingInboundStreams(), 2);
  // Answer out of order: the second with bytes, the first by closing.
  driver.withCore(() => {
    core.outputs.push({ kind: 'stream-reply', id: 2, bytes: bytes('resp-2') }, { kind: 'stream-close', id: 1 });
  });
  assert.deepEqual(got, ['s2:resp-2', 's1:<null>']);
  assert.equal(driver.pendingInboundStreams(), 0);
  // Answering twice, or an id that never existed, is reported and touches no socket.
  driver.withCore(() => {
    core.outputs.push({ kind: 'stream-reply', id: 2, bytes: bytes('again') }, { kind: 'stream-close', id: 99 });
  });
  assert.deepEqual(got, ['s2:resp-2', 's1:<null>']);
  assert.deepEqual(events.map((e) => (e.type === 'dropped' ? e.reason : e.type)), ['driver-unknown-stream', 'driver-unknown-stream']);
  // Transport-level drops surface as events too.
  net.handlers?.dropped?.('stream-too-large', B, '21 MiB');
  assert.deepEqual(events.at(-1), { type: 'dropped', reason: 'stream-too-large', from: B, detail: '21 MiB' });
});

test('driver: outbound stream outcomes reach the core once, by core id', () => {
  const { core, net, driver } = setup();
  driver.start();
  const joinId = driver.join([A, B]);
  assert.equal(joinId, 77, 'join returns the core result');
  assert.deepEqual(net.opened.map((o) => [o.to, o.request, o.timeoutMs, o.expectReply]), [
    [A, 'hello', 1000, true],
    [B, 'hello', 1000, true],
  ]);
  const [first, second] = net.opened;
  second?.done('connection refused', null);
  first?.done(null, bytes('state'));
  first?.done('late error', null); // a second call from a buggy transport is ignored
  assert.deepEqual(core.calls.slice(-2), ['stream-failed#2:connection refused', 'stream-reply#1:state']);
  // A write-only stream that finished needs no callback.
  driver.withCore(() => {
    core.outputs.push({ kind: 'stream-open', id: 3, to: B, bytes: bytes('w'), timeoutMs: 500, expectReply: false });
  });
  const before = core.calls.length;
  net.opened[2]?.done(null, null);
  assert.equal(core.calls.length, before);
});

test('driver: a transport answering synchronously keeps outputs and events in order', () => {
  const { core, net, events, driver } = setup();
  net.syncOpenResult = ['no route', null];
  core.onStreamFailed = (id) => {
    core.outputs.push({ kind: 'packet', to: B, bytes: bytes(`after-fail-${id}`) });
    core.events.push({ type: 'join-complete', joinId: 1, joined: 0, errors: ['no route'] });
  };
  driver.start();
  driver.withCore(() => {
    core.outputs.push(
      { kind: 'stream-open', id: 5, to: B, bytes: bytes('x'), timeoutMs: 100, expectReply: true },
      { kind: 'packet', to: B, bytes: bytes('queued-before') },
    );
  });
  assert.deepEqual(core.calls.slice(1), ['stream-failed#5:no route']);
  // The failure's own packet is queued behind what the core had already emitted.
  assert.deepEqual(net.sent.map((s) => s.bytes), ['queued-before', 'after-fail-5']);
  assert.deepEqual(events.map((e) => e.type), ['join-complete']);
});

test('driver: an onEvent handler may call back into the driver', () => {
  const core = new FakeCore();
  const net = new FakeTransport();
  const seen: string[] = [];
  const driver = new Driver(core, net, new VirtualClock(), (e) => {
    seen.push(e.type);
    if (e.type === 'join-complete') driver.sendUserPacket(B, bytes('hi'));
  });
  driver.start();
  driver.withCore(() => core.events.push({ type: 'join-complete', joinId: 1, joined: 1, errors: [] }, { type: 'leave-complete', timedOut: false }));
  assert.deepEqual(seen, ['join-complete', 'leave-complete']);
  assert.deepEqual(net.sent.map((s) => s.bytes), ['hi']);
});

test('driver: after stop() nothing reaches the core or the event handler', () => {
  const { core, net, clock, events, driver } = setup();
  driver.start();
  let answered: string | undefined;
  net.handlers?.stream(B, bytes('pending'), (b) => (answered = text(b)));
  driver.join([B]);
  const callsBefore = core.calls.length;
  let stopped = 0;
  driver.stop(() => stopped++);
  assert.equal(stopped, 1);
  assert.equal(net.closed, 1);
  assert.ok(core.isShutdown);
  assert.equal(answered, '<null>', 'unanswered inbound streams are closed on stop');
  assert.equal(clock.pending(), 0, 'timer cancelled');
  net.handlers?.packet(B, bytes('late'));
  net.handlers?.stream(B, bytes('late'), () => undefined);
  net.handlers?.dropped?.('late', B, '');
  net.opened[0]?.done(null, bytes('late reply'));
  clock.runUntil(10_000);
  assert.deepEqual(core.calls.slice(callsBefore), ['shutdown']);
  assert.deepEqual(events, []);
  assert.throws(() => driver.withCore(() => 1), /stopped/);
});

test('driver: stop() from inside onEvent ends the drain', () => {
  const core = new FakeCore();
  const net = new FakeTransport();
  const clock = new VirtualClock();
  const seen: string[] = [];
  const driver = new Driver(core, net, clock, (e) => {
    seen.push(e.type);
    if (e.type === 'leave-complete') driver.stop();
  });
  driver.start();
  driver.withCore(() => {
    core.events.push({ type: 'leave-complete', timedOut: false }, { type: 'join-complete', joinId: 1, joined: 0, errors: [] });
    core.outputs.push({ kind: 'packet', to: B, bytes: bytes('never') });
  });
  // Outputs drain before events; the stop inside the first event drops the second.
  assert.deepEqual(seen, ['leave-complete']);
  assert.deepEqual(net.sent.map((s) => s.bytes), ['never']);
  assert.equal(clock.pending(), 0);
});

test('driver: a core exception on network input is reported and survived', () => {
  const { core, net, clock, events, driver } = setup();
  core.onPacket = (_from, b) => {
    if (text(b) === 'poison') throw new RangeError('index out of range');
    core.outputs.push({ kind: 'packet', to: B, bytes: bytes(`ack ${text(b)}`) });
  };
  driver.start();
  net.handlers?.packet(B, bytes('poison'));
  net.handlers?.packet(B, bytes('fine'));
  assert.deepEqual(events, [{ type: 'dropped', reason: 'driver-core-exception', detail: 'RangeError: index out of range' }]);
  assert.deepEqual(net.sent.map((s) => s.bytes), ['ack fine']);
  assert.equal(clock.pending(), 1, 'the timer is still armed');
  // Commands are the caller's business: their exceptions propagate.
  assert.throws(() => driver.withCore(() => {
    throw new Error('bad command');
  }), /bad command/);
});

test('driver: a core that never stops emitting is cut off and resumed on a timer', () => {
  const { core, net, clock, events, driver } = setup();
  let produced = 0;
  const endless: Output = { kind: 'packet', to: B, bytes: bytes('spam') };
  core.pollOutput = () => (produced++ < 250_000 ? endless : undefined);
  driver.start();
  assert.equal(net.sent.length, 100_000, 'one drain is bounded');
  assert.ok(events.some((e) => e.type === 'dropped' && e.reason === 'driver-drain-limit'));
  assert.equal(clock.pending(), 1);
  clock.runUntil(clock.now());
  clock.runUntil(clock.now());
  clock.runUntil(clock.now() + 1);
  assert.equal(net.sent.length, 250_000, 'the rest drains on later turns');
});

/** Ping-pong over real sockets: UDP pings answered with pongs, a stream "join" echoed back. */
function pingPongCore(name: string, peer: () => Address | undefined): FakeCore {
  const core = new FakeCore();
  core.periodMs = 20;
  core.onTimeout = () => {
    const to = peer();
    if (to) core.outputs.push({ kind: 'packet', to, bytes: bytes(`ping from ${name}`) });
  };
  core.onPacket = (from, b) => {
    if (text(b).startsWith('ping')) core.outputs.push({ kind: 'packet', to: from, bytes: bytes(`pong from ${name}`) });
  };
  core.onStreamRequest = (id, _from, b) => {
    core.outputs.push({ kind: 'stream-reply', id, bytes: bytes(`${text(b)} back`) });
  };
  core.onStreamReply = (_id, b) => {
    core.events.push({ type: 'join-complete', joinId: 77, joined: 1, errors: [text(b)] });
  };
  return core;
}

test('driver: two cores talk over real UDP+TCP with the real clock', { timeout: 20_000 }, async () => {
  const ta = await listenNodeTransport({ ip: '127.0.0.1', port: 0 });
  const tb = await listenNodeTransport({ ip: '127.0.0.1', port: 0 });
  const ca = pingPongCore('a', () => tb.localAddress);
  const cb = pingPongCore('b', () => undefined);
  const evA: MemberEvent[] = [];
  const da = new Driver(ca, ta, systemClock as Clock, (e) => evA.push(e));
  const db = new Driver(cb, tb, systemClock, () => undefined);
  try {
    da.start();
    db.start();
    // Stream join: 'hello' is echoed with ' back' over TCP (framing needs a real stream message).
    ca.join = (seeds, _now) => {
      for (const to of seeds) {
        ca.outputs.push({ kind: 'stream-open', id: 1, to, bytes: Uint8Array.of(0, 0x82, 0xa4, 0x4e, 0x6f, 0x64, 0x65, 0xa0, 0xa5, 0x53, 0x65, 0x71, 0x4e, 0x6f, 0x01), timeoutMs: 2000, expectReply: true });
      }
      return 77;
    };
    cb.onStreamRequest = (id, _from, req) => {
      cb.outputs.push({ kind: 'stream-reply', id, bytes: req });
    };
    da.join([tb.localAddress]);
    const deadline = Date.now() + 5000;
    const timeouts = (): number => ca.calls.filter((c) => c.startsWith('timeout@')).length;
    while (Date.now() < deadline && (evA.length === 0 || !ca.calls.some((c) => c.startsWith('packet:pong')) || timeouts() < 3)) {
      await sleep(10);
    }
    assert.deepEqual(evA.map((e) => e.type), ['join-complete']);
    assert.ok(ca.calls.some((c) => c.startsWith('stream-reply#1:')), ca.calls.slice(0, 10).join(' '));
    const pongs = ca.calls.filter((c) => c.startsWith('packet:pong from b')).length;
    assert.ok(pongs >= 1, 'pongs came back over UDP');
    assert.ok(cb.calls.some((c) => c.startsWith('packet:ping from a')));
    // Timeouts ran periodically on the real clock, each with a non-decreasing now.
    const times = ca.calls.filter((c) => c.startsWith('timeout@')).map((c) => Number(c.slice(8)));
    assert.ok(times.length >= 3, `only ${times.length} timeouts`);
    for (let i = 1; i < times.length; i++) assert.ok((times[i] ?? 0) >= (times[i - 1] ?? 0));
  } finally {
    await new Promise<void>((r) => da.stop(r));
    await new Promise<void>((r) => db.stop(r));
  }
});
