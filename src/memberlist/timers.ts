// An ordered set of timers: the membership core's only notion of time.
//
// The core never starts a real timer. Each task it wants to run later goes in here with a due
// time; the driver asks for the earliest due time (pollTimeout) and calls back when its clock
// gets there. Entries due at the same time run in insertion order so a run is deterministic.
// Cancellation is lazy (a flag); the heap is compacted when cancelled entries dominate, so
// cancel-heavy workloads (every acked probe cancels its deadline) cannot grow it without bound.

export interface TimerHandle {
  cancel(): void;
  readonly atMs: number;
}

/** A timer in the set; it is its own handle (a class, not a closure per timer: thousands a second). */
class Entry implements TimerHandle {
  cancelled = false;
  constructor(
    readonly set: TimerSet,
    readonly atMs: number,
    readonly seq: number,
    public fn: (now: number) => void,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.fn = noop; // release captured state early
    this.set.cancelledOne();
  }
}

export class TimerSet {
  private heap: Entry[] = [];
  private seq = 0;
  private cancelled = 0;

  get size(): number {
    return this.heap.length - this.cancelled;
  }

  /** Run `fn(now)` once the clock reaches `atMs`. */
  at(atMs: number, fn: (now: number) => void): TimerHandle {
    const entry = new Entry(this, atMs, this.seq++, fn);
    this.push(entry);
    return entry;
  }

  /** Entry.cancel's bookkeeping. */
  cancelledOne(): void {
    this.cancelled++;
    if (this.cancelled > 64 && this.cancelled * 2 > this.heap.length) this.compact();
  }

  /** Earliest due time of a live timer. */
  next(): number | undefined {
    this.dropCancelledTop();
    return this.heap[0]?.atMs;
  }

  /** Run every timer due at or before `now`, including ones scheduled by them for ≤ now. */
  runDue(now: number, maxRuns = 1_000_000): number {
    let runs = 0;
    for (;;) {
      this.dropCancelledTop();
      const top = this.heap[0];
      if (top === undefined || top.atMs > now || runs >= maxRuns) return runs;
      this.pop();
      top.cancelled = true; // fired: a later cancel() is a no-op
      const fn = top.fn;
      top.fn = noop;
      runs++;
      fn(now);
    }
  }

  clear(): void {
    for (const e of this.heap) {
      e.cancelled = true;
      e.fn = noop;
    }
    this.heap = [];
    this.cancelled = 0;
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) {
      this.pop();
      this.cancelled--;
    }
  }

  private compact(): void {
    const live = this.heap.filter((e) => !e.cancelled);
    this.heap = [];
    this.cancelled = 0;
    for (const e of live) this.push(e);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      // (a temporary, not a destructuring swap: without the optimizing compiler that allocates)
      const t = h[i]!;
      h[i] = h[p]!;
      h[p] = t;
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        const t = h[i]!;
        h[i] = h[m]!;
        h[m] = t;
        i = m;
      }
    }
    return top;
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.atMs !== b.atMs ? a.atMs < b.atMs : a.seq < b.seq;
}

function noop(): void {}
