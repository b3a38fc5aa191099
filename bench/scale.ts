// Membership at fleet size, in the simulator (issue 15): `npm run bench -- scale [flags]`.
// Only runs when named (long: minutes per size).
//
// For each N (default 1000, 2000, 5000, 10000) in its own child process (a clean heap, a peak RSS
// that belongs to that N alone), the real membership core on every node, LAN profile, 1–5 ms
// one-way latency, seeded:
//   1. join storm: every node joins node-0001 within 60 s (evenly spread); time until every node
//      sees N alive. With -seed-tables (or N above -storm-max, default 2000: a storm of 5000 is
//      ~10⁹ message receptions, hours of wall time) the cluster is built settled
//      instead (one all-nodes push/pull through the real merge path on the first node, the other
//      tables copies of its table, each in its own probe order; queues drained; each push/pull
//      timer at a random phase of its interval, as in a cluster that has run a while) and the
//      storm is not measured.
//   2. idle traffic, 60 s from 30 s after quiet: gossip packets and bytes per node per second, push/pull
//      (stream) bytes per node per minute;
//   3. memory, after that minute: growth of the JS heap plus typed-array stores per member-table
//      entry (N² of them) after a full GC, and the peak RSS of the process;
//   4. a meta update (an alive with a newer incarnation: what a tag change is) and a failure
//      (one node killed): seconds and gossip rounds (200 ms) until 50 %, 99 %, 100 % of the
//      other nodes know, beside the epidemic bound log_4(N) + ln(N) rounds; then tag updates at
//      fleet scale: 1 % of the nodes change their meta within 10 s (a deploy turning services
//      healthy, checks failing): time from each change until each other node has it, and the
//      deepest broadcast queue any node had meanwhile;
//   5. 2 % loss on every packet and 1 % of nodes slow (everything they send 480 ms late) for
//      -loss-minutes (default 5): member-failed for healthy nodes (false), and for slow ones; and
//      the wall time those simulated minutes took.
//   6. Serf user events (N up to -serf-max, default 5000), in a child of its own: Serf on every
//      node, wired as the agent wires it (src/sim/news.ts), the cluster built settled through the
//      real join path (each node merges one push/pull listing everyone); 5 user events from nodes
//      across the cluster: seconds and rounds from the send until 50 %, 99 %, 100 % of the other
//      nodes delivered it. Serf's member table doubles what a simulated node holds (N² more entries).
// A progress line goes to stderr every 10 simulated seconds of a long phase.
//
// Flags: -sizes 1000,2000   -seed N   -storm-max 2000   -seed-tables   -loss-minutes 5   -serf-max 5000

import { fullGc, runJsonChild } from './lib/child.ts';
import { parseFlags as parseCliFlags } from '../src/cli/flags.ts';
import type { FlagSpec, ParsedFlags } from '../src/cli/flags.ts';
import { lanConfig } from '../src/memberlist/config.ts';
import { MetaDelegate } from '../src/sim/meta-delegate.ts';
import { Cluster, SIM_STATE_CACHE } from '../src/sim/cluster.ts';
import { cacheNodeStates } from '../src/wire/messages.ts';
import { NewsSim } from '../src/sim/news.ts';
import { SeededRandom, seedFromEnv } from '../src/sim/random.ts';

const CHILD_FLAG = '--scale-bench-child';
const SERF_CHILD_FLAG = '--scale-bench-serf-child';
/** User events per size in the Serf part, one every few seconds from nodes across the cluster. */
const SERF_EVENTS = 5;
const GOSSIP_INTERVAL_MS = 200;
const FANOUT = 3;
const JOIN_SPREAD_MS = 60_000;
const SLOW_MS = 480;
const LOSS = 0.02;
const SLOW_SHARE = 0.01;
const TAG_SHARE = 0.01;
const TAG_SPREAD_MS = 10_000;
/** Heap room for the child: the machine has 24 GiB. */
const CHILD_HEAP_MB = 20_000;

interface Options {
  sizes: number[];
  seed: number;
  stormMax: number;
  seedTables: boolean;
  lossMinutes: number;
  serfMax: number;
}

interface Spread {
  /** ms from the start (update sent / node killed) until 50 %, 99 %, 100 % of the others knew. */
  p50: number;
  p99: number;
  all: number;
  reached: number;
  expected: number;
}

interface Row {
  n: number;
  seed: number;
  /** undefined: built settled, not joined. */
  stormMs: number | undefined;
  stormWallMs: number;
  bytesPerEntry: number;
  heapBytes: number;
  peakRssBytes: number;
  idle: { pktsPerNodeS: number; bytesPerNodeS: number; streamBytesPerNodeMin: number };
  update: Spread;
  /** ms from each change to each observer having it (across all changes), deepest queue seen. */
  tags: { nodes: number; p50: number; p99: number; all: number; reached: number; expected: number; maxQueue: number };
  failure: Spread & { firstMs: number };
  loss: { minutes: number; falseHealthy: number; slowFailed: number; slowNodes: number; pktsPerNodeS: number; wallMs: number };
  wallMs: number;
  cpuMs: number;
}

function usedBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function cpuMsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function spreadOf(times: number[], expected: number, fromMs: number): Spread {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (share: number): number => {
    const need = Math.ceil(share * expected);
    return need === 0 || sorted.length < need ? NaN : sorted[need - 1]! - fromMs;
  };
  return { p50: at(0.5), p99: at(0.99), all: at(1), reached: sorted.length, expected };
}

function measure(n: number, opts: Options): Row {
  const wall0 = performance.now();
  const say = (what: string): void => {
    process.stderr.write(`[N=${n}] ${what} (wall ${((performance.now() - wall0) / 1000).toFixed(0)} s)\n`);
  };
  const delegates = new Map<string, MetaDelegate>();
  let updateSeen: Map<string, number> | undefined;
  let updateSubject = '';
  /** Tag-update phase: subject → when it changed; (observer, subject) pairs that have seen it. */
  let tagChangedAt: Map<string, number> | undefined;
  const tagSeen: number[] = [];
  const c = new Cluster({
    seed: opts.seed,
    network: { latencyMinMs: 1, latencyMaxMs: 5 },
    config: (name, addr) => ({ ...lanConfig(name, addr), enableCompression: false }),
    delegate: (name) => {
      const d = new MetaDelegate();
      delegates.set(name, d);
      return d;
    },
    onEvent: (observer, e, nowMs) => {
      if (updateSeen !== undefined && e.type === 'update' && e.node.name === updateSubject && observer.name !== updateSubject && !updateSeen.has(observer.name)) {
        updateSeen.set(observer.name, nowMs);
      }
      if (tagChangedAt !== undefined && e.type === 'update' && observer.name !== e.node.name) {
        const at = tagChangedAt.get(e.node.name);
        if (at !== undefined) tagSeen.push(nowMs - at);
      }
    },
  });
  const rng = new SeededRandom(opts.seed ^ 0x5ca1e);
  try {
    // Runs the clock in 1 s steps until `done`, at most `limitMs`; progress every 10 s simulated.
    const runPhase = (what: string, limitMs: number, done: () => boolean, status: () => string): boolean => {
      const t0 = c.clock.now();
      let nextSay = t0 + 10_000;
      for (let i = 0; i < limitMs / 1000 + 1; i++) {
        if (done()) return true;
        if (c.clock.now() - t0 >= limitMs) return false;
        c.runFor(1000);
        if (c.clock.now() >= nextSay) {
          nextSay += 10_000;
          say(`${what}: ${((c.clock.now() - t0) / 1000).toFixed(0)} s simulated, ${status()}`);
        }
      }
      return done();
    };
    // A fixed stretch of simulated time, with the same progress lines.
    const runTimed = (what: string, ms: number, status: () => string): void => {
      const t0 = c.clock.now();
      runPhase(what, ms, () => c.clock.now() - t0 >= ms, status);
    };
    const nodes = c.addNodes(n);
    const allSeeAll = (): number => nodes.filter((x) => x.core.numMembers() === n).length;

    fullGc();
    const before = usedBytes();
    let stormMs: number | undefined;
    const stormWall0 = performance.now();
    if (opts.seedTables || n > opts.stormMax) {
      c.seedTables({ settled: true, copy: true, aged: true });
      say('built settled (seeded tables)');
    } else {
      const t0 = c.clock.now();
      c.joinAll(nodes[0]!.name, JOIN_SPREAD_MS);
      const ok = runPhase('join storm', 30 * 60_000, () => allSeeAll() === n, () => `${allSeeAll()}/${n} nodes see all ${n}`);
      if (!ok) throw new Error(`N=${n}: the join storm did not converge within 30 simulated minutes (${allSeeAll()}/${n})`);
      stormMs = c.clock.now() - t0;
      say(`join storm: every node sees ${n} alive ${(stormMs / 1000).toFixed(0)} s after the first join`);
    }
    const stormWallMs = performance.now() - stormWall0;

    // Quiet: a second with no more packets than probing explains; bounded.
    let last = c.network.stats.packetsSent;
    let lastSecond = 0;
    runPhase(
      'settling',
      600_000,
      () => {
        const now = c.network.stats.packetsSent;
        lastSecond = now - last;
        last = now;
        return lastSecond <= 3 * n;
      },
      () => `${lastSecond} packets in the last second`,
    );
    // Idle traffic: half a minute more for the last retransmissions, then a minute counted.
    runTimed('quiet', 30_000, () => `${c.network.stats.packetsSent} packets so far`);
    const st0 = { ...c.network.stats };
    const idleMs = 60_000;
    runTimed('idle minute', idleMs, () => `${((c.network.stats.packetsSent - st0.packetsSent) / n).toFixed(0)} packets per node so far`);
    const st1 = c.network.stats;
    const idle = {
      pktsPerNodeS: (st1.packetsSent - st0.packetsSent) / n / (idleMs / 1000),
      bytesPerNodeS: (st1.packetBytesSent - st0.packetBytesSent) / n / (idleMs / 1000),
      streamBytesPerNodeMin: (st1.streamBytesSent - st0.streamBytesSent) / n / (idleMs / 60_000),
    };
    say(`idle: ${idle.pktsPerNodeS.toFixed(1)} packets/node/s`);
    // Memory once the join's news has long finished spreading (queues empty). The simulator's
    // cache of decoded member states (process-wide, up to 65,536 states: tens of MB) is emptied
    // first: it is not the tables', and a storm fills it with every incarnation it saw.
    cacheNodeStates(SIM_STATE_CACHE);
    fullGc();
    const heapBytes = usedBytes();
    const bytesPerEntry = (heapBytes - before) / (n * n);

    // A meta update from one node.
    updateSubject = nodes[1 + rng.int(n - 1)]!.name;
    const seen = new Map<string, number>();
    updateSeen = seen;
    const u0 = c.clock.now();
    delegates.get(updateSubject)!.meta = new TextEncoder().encode('role=web');
    c.node(updateSubject).driver.updateMeta();
    runPhase('meta update', 120_000, () => seen.size >= n - 1, () => `${seen.size}/${n - 1} have it`);
    const update = spreadOf([...seen.values()], n - 1, u0);
    updateSeen = undefined;
    say(`meta update: all ${(update.all / 1000).toFixed(1)} s`);

    // Tag updates at fleet scale: 1 % of the nodes change their tags within 10 s (a deploy turning
    // services healthy, checks failing): how long until every node has every change, and how deep
    // the broadcast queues get.
    const tagNodes = Math.max(1, Math.round(TAG_SHARE * n));
    const changed = new Set<string>();
    while (changed.size < tagNodes) changed.add(nodes[1 + rng.int(n - 1)]!.name);
    tagChangedAt = new Map();
    const t0Tags = c.clock.now();
    for (const name of changed) {
      const at = t0Tags + rng.int(TAG_SPREAD_MS);
      c.clock.setTimer(at, () => {
        tagChangedAt!.set(name, c.clock.now());
        delegates.get(name)!.meta = new TextEncoder().encode('role=web,health=passing');
        c.node(name).driver.updateMeta();
      });
    }
    let maxQueue = 0;
    const queueDepth = (): number => {
      let m = 0;
      for (const x of nodes) if (!x.killed) m = Math.max(m, x.core.counters()['broadcasts-queued'] ?? 0);
      return m;
    };
    const tagsExpected = tagNodes * (n - 1);
    runPhase(
      `tag updates (${tagNodes} nodes)`,
      180_000,
      () => {
        maxQueue = Math.max(maxQueue, queueDepth());
        return tagSeen.length >= tagsExpected;
      },
      () => `${tagSeen.length}/${tagsExpected} (observer, change) pairs, deepest queue ${maxQueue}`,
    );
    tagChangedAt = undefined;
    const tagSorted = tagSeen.sort((a, b) => a - b);
    const tagAt = (q: number): number => (tagSorted.length < Math.ceil(q * tagsExpected) ? NaN : tagSorted[Math.ceil(q * tagsExpected) - 1]!);
    const tags = { nodes: tagNodes, p50: tagAt(0.5), p99: tagAt(0.99), all: tagAt(1), reached: tagSorted.length, expected: tagsExpected, maxQueue };
    say(`tag updates: every change everywhere ${(tags.all / 1000).toFixed(1)} s after it was made, deepest queue ${maxQueue}`);

    // A failure.
    const victim = nodes[1 + rng.int(n - 1)]!;
    const k0 = c.clock.now();
    c.kill(victim.name);
    const deadAt = (): number[] => [...(c.deadSeenAt.get(victim.name)?.values() ?? [])].filter((t) => t >= k0);
    runPhase('failure', 180_000, () => deadAt().length >= n - 1, () => `${deadAt().length}/${n - 1} see ${victim.name} dead`);
    const times = deadAt();
    const firstMs = times.length === 0 ? NaN : Math.min(...times) - k0;
    const failure = { ...spreadOf(times, n - 1, k0), firstMs };
    say(`failure: first ${(firstMs / 1000).toFixed(1)} s, all ${(failure.all / 1000).toFixed(1)} s after the kill`);

    // Loss and slow nodes.
    const live = c.live();
    const slow = new Set<string>();
    while (slow.size < Math.max(1, Math.round(SLOW_SHARE * live.length))) slow.add(live[rng.int(live.length)]!.name);
    for (const s of slow) c.setSlow(s, SLOW_MS);
    c.network.setLoss(LOSS);
    const falseBefore = c.falseDeaths.length;
    const p0 = c.network.stats.packetsSent;
    const lossMs = opts.lossMinutes * 60_000;
    const l0 = c.clock.now();
    const lossWall0 = performance.now();
    const falseNow = (): { healthy: number; slow: number } => {
      const f = c.falseDeaths.slice(falseBefore);
      return { healthy: f.filter((d) => !slow.has(d.subject)).length, slow: f.filter((d) => slow.has(d.subject)).length };
    };
    runPhase(
      `${LOSS * 100} % loss, ${slow.size} slow`,
      lossMs,
      () => c.clock.now() - l0 >= lossMs,
      () => {
        const f = falseNow();
        return `false member-failed: ${f.healthy} healthy, ${f.slow} slow`;
      },
    );
    const f = falseNow();
    const loss = {
      minutes: opts.lossMinutes,
      falseHealthy: f.healthy,
      slowFailed: f.slow,
      slowNodes: slow.size,
      pktsPerNodeS: (c.network.stats.packetsSent - p0) / live.length / (lossMs / 1000),
      wallMs: performance.now() - lossWall0,
    };
    return {
      n,
      seed: opts.seed,
      stormMs,
      stormWallMs,
      bytesPerEntry,
      heapBytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      idle,
      update,
      tags,
      failure,
      loss,
      wallMs: performance.now() - wall0,
      cpuMs: cpuMsNow(),
    };
  } finally {
    c.shutdown();
  }
}

interface SerfRow {
  n: number;
  events: number;
  /** ms from each event's send to each other node's delivery, pooled over the events. */
  p50: number;
  p99: number;
  /** The last node: median over the events, and the slowest event's. */
  allMedian: number;
  allMax: number;
  reached: number;
  expected: number;
  buildWallMs: number;
  peakRssBytes: number;
  wallMs: number;
}

// User events through Serf on every node (the agent's wiring: src/sim/news.ts), a cluster of its
// own built settled: each node merges one push/pull listing everyone, so each Serf learns every
// member through the real join path.
function measureSerf(n: number, opts: Options): SerfRow {
  const wall0 = performance.now();
  const say = (what: string): void => {
    process.stderr.write(`[N=${n}, Serf] ${what} (wall ${((performance.now() - wall0) / 1000).toFixed(0)} s)\n`);
  };
  const sim = new NewsSim({ seed: opts.seed, eagerGossipNodes: lanConfig('x', { ip: '127.0.0.1', port: 1 }).eagerGossipNodes, network: { latencyMinMs: 1, latencyMaxMs: 5 } });
  try {
    sim.build(n);
    const buildWallMs = performance.now() - wall0;
    say(`built settled, ${n} Serf member tables full`);
    const names = sim.live().map((x) => x.name);
    const delays: number[] = [];
    const lasts: number[] = [];
    let expected = 0;
    for (let i = 0; i < SERF_EVENTS; i++) {
      const origin = names[Math.floor((i * n) / SERF_EVENTS)]!;
      const name = `deploy-${i}`;
      const sent = sim.userEvent(origin, name);
      for (let t = 0; t < 30 && !sim.userReachedAll(name, origin); t++) sim.cluster.runFor(1000);
      const sp = sim.userSpread(name, origin, sent);
      expected += sp.expected;
      delays.push(...sp.delays);
      lasts.push(sp.delays.length === sp.expected ? sp.delays.at(-1)! : NaN);
      say(`user event ${i + 1}/${SERF_EVENTS}: ${sp.delays.length}/${sp.expected} nodes, last ${sec(sp.delays.at(-1) ?? NaN)} s`);
      sim.cluster.runFor(2000);
    }
    delays.sort((a, b) => a - b);
    lasts.sort((a, b) => a - b);
    const at = (q: number): number => (delays.length < Math.ceil(q * expected) ? NaN : delays[Math.ceil(q * expected) - 1]!);
    return {
      n,
      events: SERF_EVENTS,
      p50: at(0.5),
      p99: at(0.99),
      allMedian: lasts[Math.floor(lasts.length / 2)]!,
      allMax: lasts.some((x) => Number.isNaN(x)) ? NaN : lasts.at(-1)!,
      reached: delays.length,
      expected,
      buildWallMs,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      wallMs: performance.now() - wall0,
    };
  } finally {
    sim.shutdown();
  }
}

function measureSerfInChild(n: number, opts: Options): Promise<SerfRow> {
  return runJsonChild<SerfRow>(import.meta.url, SERF_CHILD_FLAG, JSON.stringify({ n, opts }), CHILD_HEAP_MB, `N=${n} (Serf)`);
}

function measureInChild(n: number, opts: Options): Promise<Row> {
  return runJsonChild<Row>(import.meta.url, CHILD_FLAG, JSON.stringify({ n, opts }), CHILD_HEAP_MB, `N=${n}`);
}

const FLAGS: FlagSpec[] = [
  ...['sizes', 'seed', 'storm-max', 'loss-minutes', 'serf-max'].map((name): FlagSpec => ({ name, kind: 'string' })),
  { name: 'seed-tables', kind: 'bool' },
];
const USAGE = 'flags: -sizes 1000,2000,5000,10000 -seed N -storm-max 2000 -seed-tables -loss-minutes 5 -serf-max 5000';

function parseOptions(args: string[]): Options {
  let p: ParsedFlags;
  try {
    p = parseCliFlags(args, FLAGS);
  } catch (e) {
    throw new Error(`scale: ${(e as Error).message} (${USAGE})`);
  }
  const num = (name: string, d: number): number => {
    const v = p.strings.get(name);
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new Error(`scale: -${name} must be a non-negative number, got ${v} (${USAGE})`);
    return x;
  };
  const sizes = (p.strings.get('sizes') ?? '1000,2000,5000,10000').split(',').map((s) => Number(s.trim()));
  for (const s of sizes) if (!Number.isInteger(s) || s < 3) throw new Error(`scale: -sizes: each size must be an integer ≥ 3, got ${s} (${USAGE})`);
  return {
    sizes,
    seed: num('seed', seedFromEnv(20_261_207)),
    stormMax: num('storm-max', 2000),
    seedTables: p.bools.has('seed-tables'),
    lossMinutes: num('loss-minutes', 5),
    serfMax: num('serf-max', 5000),
  };
}

const sec = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '—');
const rounds = (ms: number): string => (Number.isFinite(ms) ? (ms / GOSSIP_INTERVAL_MS).toFixed(1) : '—');
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

export default async function run(args: string[] = []): Promise<void> {
  const opts = parseOptions(args);
  console.log(`membership at size: real core on every node, LAN profile, 1–5 ms latency, seed ${opts.seed}`);
  console.log('epidemic bound = log_4(N) + ln(N) gossip rounds (fanout 3, round 200 ms); spread times from the update / the kill');
  const rows: Row[] = [];
  const serfRows: SerfRow[] = [];
  for (const n of opts.sizes) {
    const r = await measureInChild(n, opts);
    rows.push(r);
    console.log(`N=${n}: done in ${(r.wallMs / 1000).toFixed(0)} s wall`);
    if (n > opts.serfMax) continue;
    const sr = await measureSerfInChild(n, opts);
    serfRows.push(sr);
    console.log(`N=${n}, Serf: done in ${(sr.wallMs / 1000).toFixed(0)} s wall`);
  }
  console.log();
  console.log(['N', 'join storm s', 'storm wall s', 'bytes/entry', 'heap+arrays', 'peak RSS', 'idle pkts/node/s', 'idle B/node/s', 'push/pull B/node/min', 'wall s', 'CPU s'].join('\t'));
  for (const r of rows) {
    console.log(
      [
        r.n,
        r.stormMs === undefined ? 'seeded' : sec(r.stormMs),
        (r.stormWallMs / 1000).toFixed(0),
        r.bytesPerEntry.toFixed(0),
        mib(r.heapBytes),
        mib(r.peakRssBytes),
        r.idle.pktsPerNodeS.toFixed(2),
        r.idle.bytesPerNodeS.toFixed(0),
        r.idle.streamBytesPerNodeMin.toFixed(0),
        (r.wallMs / 1000).toFixed(0),
        (r.cpuMs / 1000).toFixed(0),
      ].join('\t'),
    );
  }
  console.log();
  console.log(['N', 'bound rounds', 'update 50/99/100 % s', '(rounds)', 'failure first s', 'failure 50/99/100 % s', 'reached'].join('\t'));
  for (const r of rows) {
    const bound = Math.log(r.n) / Math.log(FANOUT + 1) + Math.log(r.n);
    console.log(
      [
        r.n,
        bound.toFixed(1),
        `${sec(r.update.p50)} / ${sec(r.update.p99)} / ${sec(r.update.all)}`,
        `${rounds(r.update.p50)} / ${rounds(r.update.p99)} / ${rounds(r.update.all)}`,
        sec(r.failure.firstMs),
        `${sec(r.failure.p50)} / ${sec(r.failure.p99)} / ${sec(r.failure.all)}`,
        `${r.update.reached}/${r.update.expected}, ${r.failure.reached}/${r.failure.expected}`,
      ].join('\t'),
    );
  }
  console.log();
  console.log(['N', `tag changes (${TAG_SHARE * 100} % of nodes in ${TAG_SPREAD_MS / 1000} s)`, 'to each observer 50/99/100 % s', 'reached', 'deepest broadcast queue'].join('\t'));
  for (const r of rows) {
    console.log([r.n, r.tags.nodes, `${sec(r.tags.p50)} / ${sec(r.tags.p99)} / ${sec(r.tags.all)}`, `${r.tags.reached}/${r.tags.expected}`, r.tags.maxQueue].join('\t'));
  }
  console.log();
  console.log(`Serf user events (${SERF_EVENTS} per size, Serf on every node as the agent wires it, built settled): from the send to each other node's delivery`);
  console.log(['N', 'bound rounds', 'user event 50/99 % s', 'last node: median / slowest event s', '(rounds)', 'delivered', 'build wall s', 'peak RSS', 'wall s'].join('\t'));
  for (const r of serfRows) {
    const bound = Math.log(r.n) / Math.log(FANOUT + 1) + Math.log(r.n);
    console.log(
      [
        r.n,
        bound.toFixed(1),
        `${sec(r.p50)} / ${sec(r.p99)}`,
        `${sec(r.allMedian)} / ${sec(r.allMax)}`,
        `${rounds(r.p50)} / ${rounds(r.p99)} / ${rounds(r.allMedian)} / ${rounds(r.allMax)}`,
        `${r.reached}/${r.expected}`,
        (r.buildWallMs / 1000).toFixed(0),
        mib(r.peakRssBytes),
        (r.wallMs / 1000).toFixed(0),
      ].join('\t'),
    );
  }
  const serfSkipped = opts.sizes.filter((n) => n > opts.serfMax);
  if (serfSkipped.length > 0) console.log(`(Serf part not run for N = ${serfSkipped.join(', ')}: above -serf-max ${opts.serfMax})`);
  console.log();
  console.log(['N', 'loss', 'slow nodes', 'minutes', 'false member-failed (healthy)', 'slow nodes failed', 'pkts/node/s', 'wall s for those minutes'].join('\t'));
  for (const r of rows) {
    console.log([r.n, `${LOSS * 100} %`, r.loss.slowNodes, r.loss.minutes, r.loss.falseHealthy, r.loss.slowFailed, r.loss.pktsPerNodeS.toFixed(2), (r.loss.wallMs / 1000).toFixed(0)].join('\t'));
  }
}

if (process.argv[2] === CHILD_FLAG) {
  const { n, opts } = JSON.parse(process.argv[3] ?? '{}') as { n: number; opts: Options };
  process.stdout.write(`${JSON.stringify(measure(n, opts))}\n`);
}
if (process.argv[2] === SERF_CHILD_FLAG) {
  const { n, opts } = JSON.parse(process.argv[3] ?? '{}') as { n: number; opts: Options };
  process.stdout.write(`${JSON.stringify(measureSerf(n, opts))}\n`);
}
