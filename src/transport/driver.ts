// Driver: binds a sans-I/O MembershipCore to a Transport and a Clock.
//
// Every input (datagram, inbound stream, stream outcome, timer, command) is handed to the core
// with clock.now(); afterwards the driver drains pollOutput()/pollEvent() and arms exactly one
// timer for pollTimeout(). Nothing here assumes real time: the same class runs the real agent
// (systemClock + node transport) and the simulator (VirtualClock + SimTransport).
//
// Re-entrancy: transports and clocks may call back synchronously (a simulated connect failure
// inside openStream, an onEvent handler that calls join()). Such calls reach the core directly
// (the core is never mid-call while we drain), and the outermost drain loop picks up whatever
// they produced, so outputs and events keep their order and there is only ever one drain loop.

import type { MemberEvent, MembershipCore, Output } from '../memberlist/api.ts';
import type { Address } from '../wire/types.ts';
import type { Clock, StreamReply, TimerHandle, Transport } from './transport.ts';

/**
 * Upper bound on outputs + events handled in one drain. A core that keeps producing output is a
 * bug; rather than spin forever the driver yields and resumes on an immediate timer.
 */
const MAX_DRAIN_STEPS = 100_000;

/**
 * Inbound streams the core has not answered yet. The transport's idle timeout closes the socket
 * of an unanswered stream; this bound keeps the map from growing if the core never answers.
 */
const MAX_PENDING_REPLIES = 4096;

export class Driver {
  private readonly core: MembershipCore;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly onEvent: (e: MemberEvent) => void;

  private started = false;
  private stopped = false;
  private draining = false;
  private lastNowMs = -Infinity;
  private timer: TimerHandle | undefined;
  private timerAtMs: number | undefined;
  /** Bumped on every cancel/fire so a stale timer callback recognises itself. */
  private timerGen = 0;
  /** Inbound stream id (ours) → the transport's reply callback. */
  private readonly replies = new Map<number, StreamReply>();
  private nextInboundId = 1;

  constructor(core: MembershipCore, transport: Transport, clock: Clock, onEvent: (e: MemberEvent) => void) {
    this.core = core;
    this.transport = transport;
    this.clock = clock;
    this.onEvent = onEvent;
  }

  /** Installs the transport handlers, starts the core, pumps its first outputs, arms the timer. */
  start(): void {
    if (this.started) throw new Error('Driver.start() called twice');
    this.started = true;
    this.transport.setHandlers({
      packet: (from, bytes) => {
        this.input((now) => this.core.handlePacket(from, bytes, now));
      },
      stream: (from, request, reply) => {
        if (this.stopped) {
          reply(null);
          return;
        }
        if (this.replies.size >= MAX_PENDING_REPLIES) {
          reply(null);
          this.emit({ type: 'dropped', reason: 'driver-too-many-pending-streams', from, detail: `${this.replies.size} unanswered` });
          return;
        }
        const id = this.nextInboundId++;
        this.replies.set(id, reply);
        this.input((now) => this.core.handleStreamRequest(id, from, request, now));
      },
      dropped: (reason, from, detail) => {
        this.emit({ type: 'dropped', reason, from, detail });
      },
    });
    this.input((now) => this.core.start(now));
  }

  join(seeds: Address[]): number {
    return this.withCore((core, now) => core.join(seeds, now));
  }

  leave(timeoutMs: number): void {
    this.withCore((core, now) => core.leave(now, timeoutMs));
  }

  updateMeta(): void {
    this.withCore((core, now) => core.updateMeta(now));
  }

  sendUserPacket(to: Address, payload: Uint8Array): void {
    this.withCore((core) => core.sendUserPacket(to, payload));
  }

  pingNode(node: string, to: Address): void {
    this.withCore((core, now) => core.pingNode(node, to, now));
  }

  /** Run fn with the core and the current time, then pump outputs/events and re-arm the timer. */
  withCore<T>(fn: (core: MembershipCore, now: number) => T): T {
    if (this.stopped) throw new Error('Driver is stopped');
    const now = this.now();
    const result = fn(this.core, now);
    this.pump();
    return result;
  }

  /** core.shutdown(), cancel the timer, close the transport; nothing reaches the core afterwards. */
  stop(done?: () => void): void {
    if (this.stopped) {
      if (done) this.transport.close(done);
      return;
    }
    this.stopped = true;
    this.cancelTimer();
    this.core.shutdown();
    // Unanswered inbound streams are closed rather than left to the idle timeout.
    const pending = [...this.replies.values()];
    this.replies.clear();
    for (const reply of pending) reply(null);
    this.transport.close(done);
  }

  /** Pending inbound streams the core has not answered (for stats and tests). */
  pendingInboundStreams(): number {
    return this.replies.size;
  }

  private now(): number {
    // The core requires time never to go backwards; a clock that does is clamped, not trusted.
    const t = this.clock.now();
    if (t > this.lastNowMs) this.lastNowMs = t;
    return this.lastNowMs;
  }

  /**
   * Network and timer input. These run inside socket and timer callbacks, where an exception would
   * take the whole agent down; a core bug triggered by one peer's bytes is reported and survived
   * instead. (Commands through withCore() still throw to their caller.)
   */
  private input(fn: (now: number) => void): void {
    if (this.stopped) return;
    try {
      fn(this.now());
    } catch (e) {
      const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      this.emit({ type: 'dropped', reason: 'driver-core-exception', detail });
    }
    this.pump();
  }

  private emit(e: MemberEvent): void {
    if (this.stopped) return;
    this.onEvent(e);
  }

  /** Drain outputs and events, then re-arm the timer. Nested calls leave the work to the outer loop. */
  private pump(): void {
    if (this.draining || this.stopped) return;
    this.draining = true;
    let steps = 0;
    let exhausted = false;
    try {
      while (!this.stopped) {
        if (steps >= MAX_DRAIN_STEPS) {
          exhausted = true;
          break;
        }
        const out = this.core.pollOutput();
        if (out !== undefined) {
          steps++;
          this.perform(out);
          continue;
        }
        const ev = this.core.pollEvent();
        if (ev !== undefined) {
          steps++;
          this.onEvent(ev);
          continue;
        }
        break;
      }
    } finally {
      this.draining = false;
    }
    if (this.stopped) return;
    if (exhausted) {
      this.emit({ type: 'dropped', reason: 'driver-drain-limit', detail: `yielded after ${MAX_DRAIN_STEPS} outputs/events` });
      this.armTimer(this.now());
    } else {
      this.armTimer(this.core.pollTimeout());
    }
  }

  private perform(out: Output): void {
    switch (out.kind) {
      case 'packet':
        this.transport.sendPacket(out.to, out.bytes);
        return;
      case 'stream-open': {
        const id = out.id;
        let settled = false;
        this.transport.openStream(out.to, out.bytes, out.timeoutMs, out.expectReply, (error, reply) => {
          // A transport that calls done twice must not make the core see two outcomes.
          if (settled) return;
          settled = true;
          if (error !== null) {
            this.input((now) => this.core.handleStreamFailed(id, error, now));
          } else if (reply !== null) {
            this.input((now) => this.core.handleStreamReply(id, reply, now));
          }
          // (null, null): a write-only stream finished; the core expects no callback for it.
        });
        return;
      }
      case 'stream-reply':
      case 'stream-close': {
        const reply = this.replies.get(out.id);
        if (reply === undefined) {
          this.emit({ type: 'dropped', reason: 'driver-unknown-stream', detail: `${out.kind} for inbound stream ${out.id}` });
          return;
        }
        this.replies.delete(out.id);
        reply(out.kind === 'stream-reply' ? out.bytes : null);
        return;
      }
    }
  }

  /** Exactly one timer, at the core's earliest deadline; replaced only when the deadline moves. */
  private armTimer(atMs: number | undefined): void {
    if (atMs === this.timerAtMs) return; // same deadline (or none) already armed
    this.cancelTimer();
    if (atMs === undefined) return;
    const gen = this.timerGen;
    this.timerAtMs = atMs;
    const handle = this.clock.setTimer(atMs, () => {
      if (gen !== this.timerGen) return; // cancelled or superseded
      this.timerGen++;
      this.timer = undefined;
      this.timerAtMs = undefined;
      this.input((now) => this.core.handleTimeout(now));
    });
    // A clock may fire synchronously for a past deadline; then there is nothing left to cancel.
    if (gen === this.timerGen) this.timer = handle;
  }

  private cancelTimer(): void {
    this.timerGen++;
    if (this.timer !== undefined) this.timer.cancel();
    this.timer = undefined;
    this.timerAtMs = undefined;
  }
}
