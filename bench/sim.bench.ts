// How fast one update spreads through an already converged cluster, in the simulator.
//
// For N = 100, 1000 and 5000 (override with KODAMA_BENCH_SIZES=100,1000): build a converged LAN
// cluster, then change node-0001's meta (updateMeta → a new alive with a higher incarnation) and
// count gossip rounds (GossipInterval = 200 ms) until every other node has applied it. Printed
// beside the epidemic estimate
//     rounds ≈ log_{fanout+1}(N) + ln(N)      (fanout = GossipNodes = 3)
// (push gossip: the informed set grows ≈ (fanout+1)× per round until most nodes know, then the
// last uninformed nodes are found at rate ≈ e^{-round}; that is memberlist's tick-only epidemic —
// with kodama's eager forwarding, on by default, most nodes apply it within network time and the
// rounds come out well below it), plus wall time and packets per node
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
//
// Then news spread with eager forwarding off and on (src/memberlist/eager.ts), `-spread` for this
// part alone (`npm run bench -- sim -spread`; sizes KODAMA_BENCH_SPREAD_SIZES, default 30,100,500):
// Serf on every node, wired as the agent wires it (src/sim/news.ts), LAN profile, 1–5 ms one-way
// latency, the same seed for every column. Per N: user events (from different origins, a few
// seconds apart) — delay from the send until each other node delivered it, p50 / p99 over all
// deliveries, last node = median over the events of the last delivery (as serf-compare counts
// them); failure notices (nodes killed one after another) — from the first node declaring the
// victim dead until each other node did, and from the kill; packets and bytes sent per node per
// second, idle and during each kind of news (datagrams only; compression off, as in every
// simulation). Columns: eager off (memberlist's and Serf's behaviour), eager 3 in memberlist only
// (an event leaves its origin at the next gossip round, then goes eagerly from the first hop on),
// eager 3 in both (the agent's default: Serf also sends the events it starts to 3 members at once).

import { fullGc, runJsonChild } from './lib/child.ts';
import { MetaDelegate } from '../src/sim/meta-delegate.ts';
import { Cluster, DEFAULT_SEED } from '../src/sim/cluster.ts';
import { NewsSim, percentile } from '../src/sim/news.ts';
import { seedFromEnv } from '../src/sim/random.ts';

interface Row {
  n: number;
  buildWallMs: number;
  quietAfterMs: number;
  rounds: number;
  bound: number;
  spreadWallMs: number;
  packetsPerNode: number;
  reached: number;
  /**
   * Growth from seeding the tables (after a full GC), per table entry (N²): the JS heap plus the
   * typed arrays' backing stores (outside the heap: the compact table keeps its entries there).
   */
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
    const used = (): number => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const heapBefore = used();
    c.seedTables({ settled: true });
    fullGc();
    const heapUsedBytes = used();
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
  return runJsonChild<Row>(import.meta.url, CHILD_FLAG, String(n), CHILD_HEAP_MB, `N=${n}`);
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

export default async function run(args: string[] = []): Promise<void> {
  if (!args.includes('-spread')) await updateSpread();
  newsSpread();
}

async function updateSpread(): Promise<void> {
  const sizes = (process.env['KODAMA_BENCH_SIZES'] ?? '100,1000,5000').split(',').map(Number);
  console.log('one meta update (alive, new incarnation) spreading through a converged LAN cluster');
  console.log('bound = log_{fanout+1}(N) + ln(N) gossip rounds, fanout 3, round = 200 ms');
  console.log('cluster built settled (one all-nodes push/pull per node through the real merge path, queues drained), then run until quiet');
  console.log('heap/entry = growth of the JS heap plus typed-array stores from filling the N² member-table entries, after a full GC; peak RSS of the process running that N');
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

// ---- news spread, eager forwarding off vs on ----------------------------------------------------

interface NewsColumn {
  label: string;
  eager: number;
  serfEager: number;
}

interface NewsFigures {
  idle: { pkts: number; bytes: number };
  user: { p50: number; p99: number; last: number; missed: number; pkts: number; bytes: number };
  dead: { p50: number; p99: number; last: number; firstFromKill: number; lastFromKill: number; pkts: number; bytes: number };
  eagerRoundsPerNode: number;
  wallMs: number;
}

const NEWS_COLUMNS: NewsColumn[] = [
  { label: 'eager off', eager: 0, serfEager: 0 },
  { label: 'memberlist only', eager: 3, serfEager: 0 },
  { label: 'eager 3', eager: 3, serfEager: 3 },
];

const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

function newsRun(n: number, col: NewsColumn, seed: number): NewsFigures {
  const wallStart = performance.now();
  const sim = new NewsSim({ seed, eagerGossipNodes: col.eager, serfEagerGossipNodes: col.serfEager, network: { latencyMinMs: 1, latencyMaxMs: 5 } });
  try {
    sim.build(n);
    const c = sim.cluster;
    const idle = sim.measurePackets(() => c.runFor(10_000));
    const names = sim.live().map((x) => x.name);
    const events = n >= 500 ? 6 : 10;
    const gapMs = 2000;
    const delays: number[] = [];
    const lasts: number[] = [];
    let missed = 0;
    const userWin = sim.measurePackets(() => {
      for (let i = 0; i < events; i++) {
        const origin = names[(i * 7) % n]!;
        const sent = sim.userEvent(origin, `bench-${i}`);
        c.runFor(gapMs);
        const sp = sim.userSpread(`bench-${i}`, origin, sent);
        delays.push(...sp.delays);
        lasts.push(sp.delays.at(-1) ?? NaN);
        missed += sp.expected - sp.delays.length;
      }
    });
    const kills = 3;
    const dDelays: number[] = [];
    const dLasts: number[] = [];
    const dFirst: number[] = [];
    const dLastKill: number[] = [];
    const deadWin = sim.measurePackets(() => {
      for (let k = 0; k < kills; k++) {
        const victim = names[n - 1 - k * 3]!;
        const killedAt = c.clock.now();
        c.kill(victim);
        c.runUntil(() => sim.deadReachedAll(victim), 120_000, 100);
        c.runFor(2000);
        const sp = sim.deadSpread(victim);
        const fromKill = sim.deadSpread(victim, killedAt);
        dDelays.push(...sp.delays);
        dLasts.push(sp.delays.at(-1) ?? NaN);
        dFirst.push(fromKill.delays[0] ?? NaN);
        dLastKill.push(fromKill.delays.at(-1) ?? NaN);
      }
    });
    delays.sort((a, b) => a - b);
    dDelays.sort((a, b) => a - b);
    const counters = sim.live().map((x) => x.core.counters());
    return {
      idle: { pkts: idle.packetsPerNodeS, bytes: idle.bytesPerNodeS },
      user: { p50: percentile(delays, 50), p99: percentile(delays, 99), last: median(lasts), missed, pkts: userWin.packetsPerNodeS, bytes: userWin.bytesPerNodeS },
      dead: {
        p50: percentile(dDelays, 50),
        p99: percentile(dDelays, 99),
        last: median(dLasts),
        firstFromKill: median(dFirst),
        lastFromKill: median(dLastKill),
        pkts: deadWin.packetsPerNodeS,
        bytes: deadWin.bytesPerNodeS,
      },
      eagerRoundsPerNode: counters.reduce((a, x) => a + (x['eager-rounds'] ?? 0), 0) / Math.max(1, counters.length),
      wallMs: performance.now() - wallStart,
    };
  } finally {
    sim.shutdown();
  }
}

function newsSpread(): void {
  const sizes = (process.env['KODAMA_BENCH_SPREAD_SIZES'] ?? '30,100,500').split(',').map(Number);
  const seed = seedFromEnv(DEFAULT_SEED);
  console.log('');
  console.log(`news spread, eager forwarding off vs on: Serf on the core as the agent wires it, LAN profile, 1–5 ms one-way, seed ${seed}`);
  console.log('user events: from the send to each other node\'s delivery; failure notices: from the first "dead" to each other node\'s (and from the kill)');
  console.log('last = median over the events / kills of the last node; packets and bytes: sent per node per second (datagrams, compression off)');
  for (const n of sizes) {
    const figs = NEWS_COLUMNS.map((col) => newsRun(n, col, seed));
    const [off] = figs;
    const rows: [string, (f: NewsFigures) => number, number][] = [
      ['user event p50 ms', (f) => f.user.p50, 0],
      ['user event p99 ms', (f) => f.user.p99, 0],
      ['user event last node ms', (f) => f.user.last, 0],
      ['user event deliveries missing', (f) => f.user.missed, 0],
      ['failure notice p50 ms', (f) => f.dead.p50, 0],
      ['failure notice p99 ms', (f) => f.dead.p99, 0],
      ['failure notice last node ms', (f) => f.dead.last, 0],
      ['kill → first dead ms', (f) => f.dead.firstFromKill, 0],
      ['kill → last node dead ms', (f) => f.dead.lastFromKill, 0],
      ['idle packets/node/s', (f) => f.idle.pkts, 2],
      ['idle bytes/node/s', (f) => f.idle.bytes, 0],
      ['user events: packets/node/s', (f) => f.user.pkts, 2],
      ['user events: bytes/node/s', (f) => f.user.bytes, 0],
      ['failures: packets/node/s', (f) => f.dead.pkts, 2],
      ['failures: bytes/node/s', (f) => f.dead.bytes, 0],
      ['eager rounds per node', (f) => f.eagerRoundsPerNode, 1],
      ['wall ms', (f) => f.wallMs, 0],
    ];
    console.log('');
    console.log(`N = ${n}`);
    console.log(['', ...NEWS_COLUMNS.map((c) => c.label), ...NEWS_COLUMNS.slice(1).map((c) => `${c.label} / off`)].join('\t'));
    for (const [label, get, digits] of rows) {
      const vals = figs.map(get);
      const base = get(off!);
      const ratios = vals.slice(1).map((v) => (label === 'wall ms' || label.includes('missing') || !(base > 0) ? '' : `${(v / base).toFixed(2)}×`));
      console.log([label, ...vals.map((v) => v.toFixed(digits)), ...ratios].join('\t'));
    }
  }
}
