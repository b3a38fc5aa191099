// How fast one update spreads through an already converged cluster, in the simulator.
//
// For N = 100, 1000 and 5000 (override with KODAMA_BENCH_SIZES=100,1000): build a converged LAN
// cluster, then change node-0001's meta (updateMeta → a new alive with a higher incarnation) and
// count gossip rounds (GossipInterval = 200 ms) until every other node has applied it. Printed
// beside the epidemic estimate
//     rounds ≈ log_{fanout+1}(N) + ln(N)      (fanout = GossipNodes = 3)
// (push gossip: the informed set grows ≈ (fanout+1)× per round until most nodes know, then the
// last uninformed nodes are found at rate ≈ e^{-round}), plus wall time and packets per node
// during the spread, and what the cluster cost: peak RSS and heap bytes per member-table entry
// (N² entries: every node knows every node).
//
// Building the cluster: every node gets one push/pull listing all nodes, delivered through its
// transport into the core's real stream + merge path (Cluster.seedTables), instead of N joins.
// The merges queue alive re-broadcasts as real joins would; the cluster is built `settled`, i.e.
// each node's queue is emptied right after its merge — the state a formed cluster reaches once
// that storm has drained (at N = 5000 simulating the storm is ~400 million gossip receptions).
// Then it runs until the network is quiet (only probes) before measuring.
//
// Each N runs in its own child process: a clean heap to measure, a peak RSS that belongs to that
// N alone, and room for the ~7 GB heap N = 5000 needs (25 M table entries).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
  /** Heap growth from seeding the tables (after a full GC), per table entry (N²). */
  heapBytesPerEntry: number;
  heapUsedBytes: number;
  peakRssBytes: number;
  /** CPU time (user + system) of the whole run of this N: wall time lies on a shared machine. */
  cpuMs: number;
}

const GOSSIP_INTERVAL_MS = 200;
const FANOUT = 3;
const CHILD_FLAG = '--sim-bench-child';
/** Heap limit for the child: N = 5000 settles at ~7 GB of heap; the machine has 24 GiB. */
const CHILD_HEAP_MB = 14_000;

function cpuMsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function fullGc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

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
    fullGc();
    const heapBefore = process.memoryUsage().heapUsed;
    c.seedTables({ settled: true });
    fullGc();
    const heapUsedBytes = process.memoryUsage().heapUsed;
    const heapBytesPerEntry = (heapUsedBytes - heapBefore) / (n * n);
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
    let lastMs = startMs;
    for (const t of seenAt.values()) lastMs = Math.max(lastMs, t);
    return {
      n,
      buildWallMs,
      quietAfterMs,
      rounds: (lastMs - startMs) / GOSSIP_INTERVAL_MS,
      bound: Math.log(n) / Math.log(FANOUT + 1) + Math.log(n),
      spreadWallMs: performance.now() - spreadStart,
      packetsPerNode: (c.network.stats.packetsSent - packetsBefore) / n,
      reached: seenAt.size,
      heapBytesPerEntry,
      heapUsedBytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      cpuMs: cpuMsNow(),
    };
  } finally {
    c.shutdown();
  }
}

/** Run measure(n) in a child process (flags: heap room, GC access, a young generation sized for
 * millions of short-lived decoded messages, ~16 % less CPU) and read its one JSON line. */
function measureInChild(n: number): Promise<Row> {
  const args = [
    `--max-old-space-size=${CHILD_HEAP_MB}`,
    '--max-semi-space-size=64',
    '--expose-gc',
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    CHILD_FLAG,
    String(n),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`N=${n}: child exited with ${signal ?? code}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Row);
      } catch (e) {
        reject(new Error(`N=${n}: unreadable child output: ${(e as Error).message}`));
      }
    });
  });
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

export default async function run(): Promise<void> {
  const sizes = (process.env['KODAMA_BENCH_SIZES'] ?? '100,1000,5000').split(',').map(Number);
  console.log('one meta update (alive, new incarnation) spreading through a converged LAN cluster');
  console.log('bound = log_{fanout+1}(N) + ln(N) gossip rounds, fanout 3, round = 200 ms');
  console.log('cluster built settled (one all-nodes push/pull per node through the real merge path, queues drained), then run until quiet');
  console.log('heap/entry = heap growth from filling the N² member-table entries, after a full GC; peak RSS of the process running that N');
  console.log(
    ['N', 'reached', 'rounds', 'bound', 'packets/node', 'spread wall ms', 'build wall ms', 'quiet after (virtual ms)', 'heap/entry B', 'heap', 'peak RSS', 'CPU s'].join('\t'),
  );
  for (const n of sizes) {
    const r = await measureInChild(n);
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
        r.heapBytesPerEntry.toFixed(0),
        mb(r.heapUsedBytes),
        mb(r.peakRssBytes),
        (r.cpuMs / 1000).toFixed(0),
      ].join('\t'),
    );
  }
}

if (process.argv[2] === CHILD_FLAG) {
  process.stdout.write(`${JSON.stringify(measure(Number(process.argv[3])))}\n`);
}
