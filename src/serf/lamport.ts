// Lamport clock (Serf's LamportClock). Serf keeps three independent ones: member intents, user
// events and queries. Values are plain numbers: a uint64 clock would need 2^53 ticks before it
// loses precision, far beyond any cluster's lifetime, and the wire decoder rejects larger values.

export class LamportClock {
  private current: number;

  /** Serf increments every clock once at startup, so a fresh clock reads 1 (start = 0 here). */
  constructor(start = 0) {
    this.current = start;
  }

  time(): number {
    return this.current;
  }

  /** Advance and return the new time. */
  increment(): number {
    this.current += 1;
    return this.current;
  }

  /** Another node's time `t` was seen: make sure our next time is after it. */
  witness(t: number): void {
    if (t >= this.current) this.current = t + 1;
  }
}
