// Shared plumbing for simulation tests: build a cluster with the run's seed, and on any failure
// print the seed and the exact command that replays it.
import v8 from 'node:v8';
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

/**
 * Big simulations allocate millions of short-lived objects (decoded messages, packet copies);
 * V8's default young generation promotes many of them to the old one before they die. A 64 MB
 * semi-space cut CPU time by ~16 % on a 500-node join storm. Affects only this test process
 * (node --test runs each file in its own).
 */
export function useLargeYoungGeneration(): void {
  v8.setFlagsFromString('--max-semi-space-size=64');
}
