// How fast one update spreads through an already converged cluster, in the simulator.
//
// For N = 100 and 1000 (override with KODAMA_BENCH_SIZES=100,1000,5000): build a converged LAN
// cluster, let the broadcast queues drain, then change node-0001's meta (updateMeta → a new alive
// with a higher incarnation) and count gossip rounds (GossipInterval = 200 ms) until every other
// node has applied it. Printed beside the epidemic estimate
//     rounds ≈ log_{fanout+1}(N) + ln(N)      (fanout = GossipNodes = 3)
// (push gossip: the informed set grows ≈ (fanout+1)× per round until most nodes know, then the
// last uninformed nodes are found at rate ≈ e^{-round}), plus wall time and packets per node
// during the spread.
//
// Building the cluster: every node gets one push/pull listing all nodes, delivered through its
// transport into the core's real stream + merge path (Cluster.seedTables), instead of N joins.
// The merges queue alive re-broadcasts exactly as real joins would, so we run until the network
// is quiet (only probes left) before measuring.
//
// 5000 is opt-in: a converged cluster of N full memberlist nodes in one process holds N² member
// records plus, right after it forms, N² queued re-broadcasts (≈ 1.6 GB at N = 1000 measured, so
// ≈ 40 GB at 5000) and N² × retransmit-limit gossip receptions to drain; it does not fit a 2-core,
// 23 GB machine, and the figure it would give follows the same formula.

import v8 from 'node:v8';
import type { Delegate } from '../src/memberlist/api.ts';
import { Cluster } from '../src/sim/cluster.ts';

class MetaDelegate implements Delegate {
  meta = new Uint8Array(0);
  nodeMeta(limit: number): Uint8Array {
    return this.meta.subarray(0, limit);
  }
  notifyMsg(): void {}
  getBroadcasts(): Uint8Array[] {
    return [];
  }
  localState(): Uint8Array {
    return new Uint8Array(0);
  }
  mergeRemoteState(): void {}
  ackPayload(): Uint8Array | null {
    return null;
  }
}

interface Row {
  n: number;
  buildWallMs: number;
  quietAfterMs: number;
  rounds: number;
  bound: number;
  spreadWallMs: number;
  packetsPerNode: number;
  reached: number;
}

const GOSSIP_INTERVAL_MS = 200;
const FANOUT = 3;

function measure(n: number): Row {
  const subject = 'node-0001';
  const delegates = new Map<string, MetaDelegate>();
  const seenAt = new Map<string, number>();
  let watching = false;
  const c = new Cluster({
    delegate: (name) => {
      const d = new MetaDelegate();
      delegates.set(name, d);
      return d;
    },
    onEvent: (observer, e, nowMs) => {
      if (watching && e.type === 'update' && e.node.name === subject && observer.name !== subject && !seenAt.has(observer.name)) {
        seenAt.set(observer.name, nowMs);
      }
    },
  });
  try {
    const buildStart = performance.now();
    c.addNodes(n);
    c.seedTables();
    // Quiet = one second with no more packets than probing explains (ping + ack per node, plus
    // some indirect probes); bounded so a cluster that never calms down still reports.
    const t0 = c.clock.now();
    let last = c.network.stats.packetsSent;
    c.runUntil(
      () => {
        const now = c.network.stats.packetsSent;
        const quiet = now - last <= 3 * n;
        last = now;
        return quiet && c.clock.now() > t0;
      },
      600_000,
      1000,
    );
    const quietAfterMs = c.clock.now() - t0;
    const buildWallMs = performance.now() - buildStart;

    const spreadStart = performance.now();
    const packetsBefore = c.network.stats.packetsSent;
    const startMs = c.clock.now();
    watching = true;
    delegates.get(subject)!.meta = new TextEncoder().encode('role=web');
    c.node(subject).driver.updateMeta();
    c.runUntil(() => seenAt.size >= n - 1, 120_000, GOSSIP_INTERVAL_MS);
    const lastMs = Math.max(startMs, ...seenAt.values());
    return {
      n,
      buildWallMs,
      quietAfterMs,
      rounds: (lastMs - startMs) / GOSSIP_INTERVAL_MS,
      bound: Math.log(n) / Math.log(FANOUT + 1) + Math.log(n),
      spreadWallMs: performance.now() - spreadStart,
      packetsPerNode: (c.network.stats.packetsSent - packetsBefore) / n,
      reached: seenAt.size,
    };
  } finally {
    c.shutdown();
  }
}

export default async function run(): Promise<void> {
  // Millions of short-lived decoded messages: a bigger young generation saves ~16 % CPU here.
  v8.setFlagsFromString('--max-semi-space-size=64');
  const sizes = (process.env['KODAMA_BENCH_SIZES'] ?? '100,1000').split(',').map(Number);
  console.log('one meta update (alive, new incarnation) spreading through a converged LAN cluster');
  console.log('bound = log_{fanout+1}(N) + ln(N) gossip rounds, fanout 3, round = 200 ms');
  console.log('cluster built by one all-nodes push/pull per node through the real merge path, then run until quiet');
  if (!sizes.includes(5000)) console.log('N=5000 skipped by default (≈ N² memory; KODAMA_BENCH_SIZES=5000 to try)');
  console.log(['N', 'reached', 'rounds', 'bound', 'packets/node', 'spread wall ms', 'build wall ms', 'quiet after (virtual ms)'].join('\t'));
  for (const n of sizes) {
    const r = measure(n);
    console.log(
      [
        r.n,
        `${r.reached}/${r.n - 1}`,
        r.rounds.toFixed(1),
        r.bound.toFixed(1),
        r.packetsPerNode.toFixed(1),
        r.spreadWallMs.toFixed(0),
        r.buildWallMs.toFixed(0),
        r.quietAfterMs,
      ].join('\t'),
    );
  }
}
