// Shared plumbing for simulation tests: build a cluster with the run's seed, and on any failure
// print the seed and the exact command that replays it.
import { Cluster, type ClusterOptions } from '../../src/sim/cluster.ts';

/** Run `fn` with a fresh cluster; on failure print the replay line, then rethrow. */
export async function withCluster<T>(file: string, opts: ClusterOptions, fn: (c: Cluster) => T | Promise<T>): Promise<T> {
  const c = new Cluster(opts);
  try {
    return await fn(c);
  } catch (e) {
    console.error(c.replayHint(file));
    throw e;
  } finally {
    c.shutdown();
  }
}

/** Wall-clock ms since `startMs` (performance.now based), for the figures tests print. */
export function wallSince(startMs: number): number {
  return Math.round(performance.now() - startMs);
}
