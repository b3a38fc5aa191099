// Lifeguard's local health awareness. A node that misses acks or has to refute accusations is
// more likely the slow one itself (CPU starved, lossy NIC) than its peers; it then stretches its
// own probe interval (× score + 1) instead of accusing healthy nodes.

export class Awareness {
  private score = 0;

  /** @param max awarenessMaxMultiplier: the score stays in [0, max − 1]. */
  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(Math.max(this.score + delta, 0), Math.max(this.max - 1, 0));
  }

  healthScore(): number {
    return this.score;
  }

  scaleTimeoutMs(timeoutMs: number): number {
    return timeoutMs * (this.score + 1);
  }
}
