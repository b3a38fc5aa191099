// The events timeline: a bounded ring of ApiEvent with increasing `seq`. Readers page with
// `since` (the `next` of their previous read); what fell off the ring is simply gone.

import type { ApiEvent } from './types.ts';

export const TIMELINE_SIZE = 500;

export class Timeline {
  private readonly ring: ApiEvent[] = [];
  private nextSeq = 1;
  private readonly listeners = new Set<(e: ApiEvent) => void>();

  constructor(
    private readonly size = TIMELINE_SIZE,
    private readonly now: () => number = Date.now,
  ) {}

  /** seq the next event will get (what `since` should be to read only newer ones). */
  get next(): number {
    return this.nextSeq;
  }

  push(kind: ApiEvent['kind'], node: string | null, text: string): ApiEvent {
    const e: ApiEvent = { seq: this.nextSeq++, at: this.now(), kind, node, text };
    this.ring.push(e);
    if (this.ring.length > this.size) this.ring.splice(0, this.ring.length - this.size);
    for (const fn of this.listeners) fn(e);
    return e;
  }

  /** Events with seq ≥ since, oldest first. */
  since(since: number): ApiEvent[] {
    const first = this.ring[0];
    if (first === undefined || since <= first.seq) return [...this.ring];
    return this.ring.slice(since - first.seq);
  }

  onEvent(fn: (e: ApiEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
