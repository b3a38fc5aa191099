// Virtual time for the simulator: a Clock whose timers live in a binary heap and fire only when
// the test moves time forward. Nothing here is real time, so a 10-minute scenario runs as fast as
// the CPU allows and replays identically.
//
// Timers due at the same millisecond fire in the order they were set (a sequence number breaks
// ties), which keeps runs deterministic. Every run loop is bounded by `maxSteps` so a timer that
// re-arms itself forever at the same instant throws instead of hanging the test.

import type { Clock, TimerHandle } from '../transport/transport.ts';
import { SimError } from './errors.ts';

/** A timer and its own handle (a class, not a closure per timer: a simulation sets millions). */
class Entry implements TimerHandle {
  constructor(
    readonly clock: VirtualClock,
    readonly atMs: number,
    readonly seq: number,
    public fn: (() => void) | null, // null once cancelled or fired
  ) {}

  cancel(): void {
    if (this.fn === null) return;
    this.fn = null;
    this.clock.cancelledOne();
  }
}

function earlier(x: Entry, y: Entry): boolean {
  return x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);
}

export interface VirtualClockOptions {
  /** Start time in ms (default 0). */
  startMs?: number;
  /** Most timers one run call may fire before it throws ERR_SIM_MAX_STEPS (default 50 million). */
  maxSteps?: number;
}

export class VirtualClock implements Clock {
  private nowMs: number;
  private readonly heap: Entry[] = [];
  private nextSeq = 0;
  private live = 0;
  private readonly maxSteps: number;
  /** Timers fired since construction (for figures). */
  firedTotal = 0;

  constructor(opts: VirtualClockOptions = {}) {
    this.nowMs = opts.startMs ?? 0;
    this.maxSteps = opts.maxSteps ?? 50_000_000;
  }

  now(): number {
    return this.nowMs;
  }

  setTimer(atMs: number, fn: () => void): TimerHandle {
    // A time in the past means "as soon as possible": it still waits for the run loop, never runs
    // inside the caller (the Clock contract is asynchronous).
    const entry = new Entry(this, Math.max(atMs, this.nowMs), this.nextSeq++, fn);
    this.push(entry);
    this.live++;
    return entry;
  }

  /** Entry.cancel's bookkeeping. */
  cancelledOne(): void {
    this.live--;
    this.maybeCompact();
  }

  /** Timers armed and not yet fired or cancelled. */
  pending(): number {
    return this.live;
  }

  /** When the next live timer is due, or undefined when none is armed. */
  nextDueMs(): number | undefined {
    this.dropCancelledTop();
    return this.heap[0]?.atMs;
  }

  /** Fire every timer due at or before `targetMs` (including ones they arm), then set now = targetMs. */
  runUntil(targetMs: number): void {
    if (targetMs < this.nowMs) {
      throw new SimError('ERR_SIM_TIME', `cannot run the clock back from ${this.nowMs} to ${targetMs}`);
    }
    let steps = 0;
    for (;;) {
      this.dropCancelledTop();
      const top = this.heap[0];
      if (top === undefined || top.atMs > targetMs) break;
      if (++steps > this.maxSteps) {
        throw new SimError(
          'ERR_SIM_MAX_STEPS',
          `virtual clock fired more than ${this.maxSteps} timers before reaching ${targetMs} ms (now ${this.nowMs} ms)`,
        );
      }
      this.fireTop();
    }
    this.nowMs = targetMs;
  }

  runFor(durationMs: number): void {
    this.runUntil(this.nowMs + durationMs);
  }

  /**
   * Run until `done()` is true, checking it every `checkEveryMs` of virtual time (checks can be
   * expensive with thousands of nodes), or until `deadlineMs`. Returns whether `done()` held.
   */
  runUntilTrue(done: () => boolean, deadlineMs: number, checkEveryMs: number): boolean {
    if (!(checkEveryMs > 0)) throw new SimError('ERR_SIM_RANGE', `checkEveryMs must be > 0, got ${checkEveryMs}`);
    if (done()) return true;
    while (this.nowMs < deadlineMs) {
      this.runUntil(Math.min(deadlineMs, this.nowMs + checkEveryMs));
      if (done()) return true;
    }
    return false;
  }

  private fireTop(): void {
    const top = this.pop()!;
    const fn = top.fn!;
    top.fn = null;
    this.live--;
    this.nowMs = top.atMs;
    this.firedTotal++;
    fn();
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.fn === null) this.pop();
  }

  /** Cancelled entries stay in the heap until they surface; rebuild when they dominate it. */
  private maybeCompact(): void {
    if (this.heap.length < 1024 || this.live * 2 > this.heap.length) return;
    const keep = this.heap.filter((e) => e.fn !== null);
    this.heap.length = 0;
    for (const e of keep) this.heap.push(e);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!earlier(e, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined) return undefined;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && earlier(h[r]!, h[l]!)) c = r;
      if (!earlier(h[c]!, e)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
