// A fixed-bucket histogram (Prometheus's shape: cumulative counts per upper bound, a sum and a
// count), cheap enough to observe every probe's round trip.

/** Round trips, seconds: loopback and LAN (sub-ms) up to a slow WAN. */
export const RTT_BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export class Histogram {
  private readonly perBucket: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.perBucket = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]!) {
        this.perBucket[i]!++;
        return;
      }
    }
  }

  /** Cumulative counts per bound (an observation above every bound counts only in `count`). */
  snapshot(): { bounds: readonly number[]; counts: number[]; sum: number; count: number } {
    const counts: number[] = [];
    let acc = 0;
    for (const c of this.perBucket) counts.push((acc += c));
    return { bounds: this.bounds, counts, sum: this.sum, count: this.count };
  }
}
