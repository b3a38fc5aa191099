// Lifeguard suspicion timeouts (memberlist suspicion.go semantics, doc §4.6).
//
// A suspected node gets a long timeout (max) that shrinks towards a floor (min) as independent
// peers confirm the suspicion: one accuser may be the broken one, k agreeing accusers are
// unlikely to all be. In small clusters (n − 2 < k) there cannot be k confirmations, so the
// timer starts at min.

/** min = mult × max(1, log10(max(1, n))) × interval, in ms with Go's millisecond truncation. */
export function suspicionTimeoutMs(suspicionMult: number, n: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  // Go: Duration(mult) * Duration(nodeScale*1000) * interval / 1000 (integer nanoseconds).
  return Math.floor((suspicionMult * Math.floor(nodeScale * 1000) * probeIntervalMs) / 1000);
}

/** How many independent confirmations shorten the timeout, for a cluster of n nodes. */
export function suspicionConfirmationsK(suspicionMult: number, n: number): number {
  const k = suspicionMult - 2;
  return n - 2 < k ? 0 : k;
}

/**
 * Time left after `confirmations` of `k` were seen, `elapsedMs` after the suspicion started:
 * max(min, max − ln(c+1)/ln(k+1) × (max − min)), floored to whole ms, minus elapsed.
 */
export function remainingSuspicionMs(
  confirmations: number,
  k: number,
  elapsedMs: number,
  minMs: number,
  maxMs: number,
): number {
  const frac = Math.log(confirmations + 1) / Math.log(k + 1);
  const rawS = maxMs / 1000 - frac * (maxMs / 1000 - minMs / 1000);
  let timeoutMs = Math.floor(1000 * rawS);
  if (timeoutMs < minMs) timeoutMs = minMs;
  return timeoutMs - elapsedMs;
}

/** One node's suspicion: who accused it, and when it should be declared dead. */
export class Suspicion {
  private readonly accusers = new Set<string>();
  private confirmations = 0;
  /** Absolute time (ms) at which the suspicion expires. */
  deadlineMs: number;

  constructor(
    from: string,
    readonly k: number,
    readonly minMs: number,
    readonly maxMs: number,
    readonly startMs: number,
  ) {
    // The original accuser is remembered so it cannot also count as a confirmation.
    this.accusers.add(from);
    this.deadlineMs = startMs + (k < 1 ? minMs : maxMs);
  }

  get numConfirmations(): number {
    return this.confirmations;
  }

  /**
   * Count a suspicion from `from`. Returns true when it was a new confirmation (the caller then
   * re-broadcasts it and moves the timer to `deadlineMs`).
   */
  confirm(from: string, now: number): boolean {
    if (this.confirmations >= this.k) return false;
    if (this.accusers.has(from)) return false;
    this.accusers.add(from);
    this.confirmations++;
    const remaining = remainingSuspicionMs(this.confirmations, this.k, now - this.startMs, this.minMs, this.maxMs);
    this.deadlineMs = now + Math.max(0, remaining);
    return true;
  }
}
