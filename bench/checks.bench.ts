// What monitoring costs the cluster: N simulated nodes (default 100), each running C checks
// (default 10) every 10 s, publishing their summary in the Serf tag `chk` the way the agent does.
//
// Every node is the real stack on the virtual clock: Memberlist core + Serf (as memberlist's
// delegate) + the production Driver + a SimTransport. Check results come from a seeded model —
// each run of a passing check starts a failure episode with a small probability (default 0.5 %),
// which lasts a random number of runs (1..30) at warning, critical or unknown — so states change
// the way a fleet's do: mostly green, a few incidents at any time, each counting its occurrences
// up. Each result goes through the node engineer's pure code (recordResult → summarize →
// encodeSummary); when the encoded `chk` value changes, the node sets its tags and the driver
// gossips the new meta (setTags + updateMeta, exactly the agent's path).
//
// The same seed runs twice: a baseline with no checks (and no `chk` tag) and the run with checks.
// The cluster forms and settles (warm-up, unmeasured) before the measured window starts, then both
// runs measure the same window. Figures:
//   gossip bytes/s per node   UDP bytes sent + received, plus TCP push/pull requests and replies
//                             (counted at both ends), over the window, divided by nodes
//   tag updates               chk changes that went out as a new alive message
//   bookkeeping CPU           process.cpuUsage around recordResult/summarize/encodeSummary per
//                             node per (virtual) second — what one agent spends on its checks'
//                             state, not counting running the probes themselves
//   whole-sim CPU             process.cpuUsage of the whole window, baseline vs checks: the extra
//                             gossip, meta merges and event handling the tag updates cause (100
//                             nodes share one process here, so this is 100 agents' worth)
//   what-if                   a third run with occurrences clamped in the tag (default at 3,
//                             KODAMA_BENCH_CHECK_WHATIF_CAP=0 skips it): how much of the cost is
//                             the occurrence counter ticking up on every run of a failing check
// Knobs (env): KODAMA_BENCH_CHECK_NODES (100), KODAMA_BENCH_CHECK_MINUTES (5),
// KODAMA_BENCH_CHECKS_PER_NODE (10), KODAMA_BENCH_CHECK_FAIL_P (0.005), KODAMA_SEED.

import { lanConfig } from '../src/memberlist/config.ts';
import { Serf } from '../src/serf/serf.ts';
import { Cluster, DEFAULT_SEED, type SimNode } from '../src/sim/cluster.ts';
import { SeededRandom, seedFromEnv } from '../src/sim/random.ts';
import type { TimerHandle } from '../src/transport/transport.ts';
import { recordResult } from '../src/checks/history.ts';
import { decodeSummary, encodeSummary, summarize } from '../src/checks/summary.ts';
import { MAX_OCCURRENCES, SUMMARY_TAG, type CheckRecord, type CheckStatus } from '../src/checks/types.ts';

export interface ChecksBenchOptions {
  nodes: number;
  checksPerNode: number;
  intervalMs: number;
  /** Measured window, virtual ms (after the warm-up). */
  windowMs: number;
  /** Unmeasured time for joins to finish and their broadcasts to drain. */
  warmupMs: number;
  seed: number;
  /** Per run of a passing check: chance a failure episode starts. */
  failProbability: number;
  /** Longest failure episode, in runs. */
  maxEpisodeRuns: number;
  /** memberlist compression, on by default as in the agent. */
  compression: boolean;
  withChecks: boolean;
  /**
   * What-if knob, not the shipped format: occurrences published in `chk` are clamped to this
   * (the design counts up to MAX_OCCURRENCES = 20, so a failing check changes the tag on each of
   * its first 20 runs). Default MAX_OCCURRENCES, i.e. exactly what summarize() produces.
   */
  occurrenceCap: number;
}

export interface ChecksBenchRun {
  withChecks: boolean;
  occurrenceCap: number;
  nodes: number;
  windowMs: number;
  /** Every node saw every other node alive when the window started (and still at its end). */
  convergedAtStart: boolean;
  convergedAtEnd: boolean;
  /** Gossip bytes sent + received per node per second over the window. */
  bytesPerNodePerSec: number;
  udpBytesSent: number;
  udpBytesReceived: number;
  streamBytes: number;
  checkRuns: number;
  nonPassingResults: number;
  tagUpdates: number;
  /** Updates where only an occurrence count moved (same checks, same statuses, same flapping). */
  occurrenceOnlyUpdates: number;
  /** Tag updates another node applied (member-update events seen cluster-wide). */
  memberUpdatesSeen: number;
  /**
   * CPU µs (process.cpuUsage) spent around recordResult/summarize/encodeSummary, per node per
   * virtual second. process.cpuUsage counts every thread of the process, so V8's concurrent GC
   * and compiler threads working for the busy simulation land in these short windows too: an
   * upper bound. The main thread's own time is bookkeepingWallUs* (synchronous code, measured
   * with performance.now()).
   */
  bookkeepingUsPerNodePerSec: number;
  bookkeepingUsPerResult: number;
  bookkeepingWallUsPerNodePerSec: number;
  bookkeepingWallUsPerResult: number;
  /** CPU ms of the whole process during the window. */
  windowCpuMs: number;
  /** Longest chk value seen, bytes. */
  maxChkBytes: number;
}

export function defaultOptions(env: NodeJS.ProcessEnv = process.env): ChecksBenchOptions {
  const num = (k: string, d: number): number => {
    const v = env[k];
    const n = v === undefined || v === '' ? d : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${k} must be a positive number, got ${v}`);
    return n;
  };
  return {
    nodes: Math.round(num('KODAMA_BENCH_CHECK_NODES', 100)),
    checksPerNode: Math.round(num('KODAMA_BENCH_CHECKS_PER_NODE', 10)),
    intervalMs: 10_000,
    windowMs: Math.round(num('KODAMA_BENCH_CHECK_MINUTES', 5) * 60_000),
    warmupMs: 60_000,
    seed: seedFromEnv(DEFAULT_SEED, env),
    failProbability: num('KODAMA_BENCH_CHECK_FAIL_P', 0.005),
    maxEpisodeRuns: 30,
    compression: true,
    withChecks: true,
    occurrenceCap: MAX_OCCURRENCES,
  };
}

/** One simulated check: passing, or inside a failure episode with a status and runs left. */
interface ModelCheck {
  name: string;
  episodeStatus: Exclude<CheckStatus, 0>;
  runsLeft: number;
  record: CheckRecord | undefined;
}

const FLAP = { lowFlapThreshold: 20, highFlapThreshold: 30 };

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Run one simulation (baseline or with checks) and return its figures. */
export function runChecksSim(o: ChecksBenchOptions): ChecksBenchRun {
  const serfs = new Map<string, Serf>();
  const scheduled = new Set<string>();
  const timers = new Map<string, TimerHandle>();
  let memberUpdatesSeen = 0;
  let measuring = false;
  let cluster: Cluster | undefined = undefined;

  // Drain a node's Serf outputs into its driver and re-arm its timeout (the agent's pumpSerf).
  const pump = (n: SimNode): void => {
    const c = cluster;
    if (c === undefined || n.killed) return;
    const s = serfs.get(n.name)!;
    for (let out = s.pollOutput(), i = 0; out !== undefined && i < 10_000; out = s.pollOutput(), i++) {
      if (out.kind === 'user-packet') n.driver.sendUserPacket(out.to, out.payload);
      else if (out.kind === 'join') n.driver.join(out.seeds);
      else if (out.kind === 'ping') n.driver.pingNode(out.node, out.addr);
      else if (out.kind === 'update-meta') n.driver.updateMeta();
      else throw new Error(`${n.name}: serf shut down: ${out.reason}`);
    }
    for (let e = s.pollTypedEvent(), i = 0; e !== undefined && i < 100_000; e = s.pollTypedEvent(), i++) {
      if (measuring && e.type === 'member-update') memberUpdatesSeen += e.members.length;
    }
    timers.get(n.name)?.cancel();
    const at = s.pollTimeout();
    if (at !== undefined) {
      timers.set(
        n.name,
        c.clock.setTimer(at, () => {
          if (n.killed) return;
          s.handleTimeout(c.clock.now());
          pump(n);
        }),
      );
    }
  };

  const initialChk = o.withChecks ? encodeSummary(summarize([])) : undefined;
  const baseTags = (name: string): Record<string, string> => ({
    role: 'web',
    dc: `dc${name.charCodeAt(name.length - 1) % 3}`,
    ...(initialChk === undefined ? {} : { [SUMMARY_TAG]: initialChk }),
  });

  const c = new Cluster({
    seed: o.seed,
    config: (name, addr) => ({ ...lanConfig(name, addr), enableCompression: o.compression }),
    delegate: (name) => {
      const s = new Serf({
        nodeName: name,
        tags: baseTags(name),
        protocolVersion: 5,
        retransmitMult: lanConfig(name, { ip: '127.0.0.1', port: 1 }).retransmitMult,
        prefixBroadcasts: false,
        gossipIntervalMs: lanConfig(name, { ip: '127.0.0.1', port: 1 }).gossipIntervalMs,
        random: new SeededRandom(o.seed).fork(`serf/${name}`),
        wake: () => {
          if (scheduled.has(name)) return;
          scheduled.add(name);
          c.clock.setTimer(c.clock.now(), () => {
            scheduled.delete(name);
            const n = c.nodes.get(name);
            if (n !== undefined) pump(n);
          });
        },
      });
      serfs.set(name, s);
      return s;
    },
    onEvent: (observer, e, now) => {
      serfs.get(observer.name)!.handleMemberEvent(e, now);
      pump(observer);
    },
  });
  cluster = c;

  // Byte counting: UDP sent is the transports' own counter; UDP received and TCP (request at both
  // ends, reply at both ends) are tallied by wrapping each transport's delivery entry points.
  const tally = { udpReceived: 0, stream: 0 };
  const nodes = c.addNodes(o.nodes);
  for (const n of nodes) {
    const t = n.transport;
    const deliverPacket = t.deliverPacket.bind(t);
    t.deliverPacket = (from, bytes) => {
      const ok = deliverPacket(from, bytes);
      if (ok) tally.udpReceived += bytes.length;
      return ok;
    };
    const deliverStream = t.deliverStream.bind(t);
    t.deliverStream = (from, bytes, respond) => {
      tally.stream += 2 * bytes.length;
      deliverStream(from, bytes, (reply) => {
        if (reply !== null) tally.stream += 2 * reply.length;
        respond(reply);
      });
    };
    pump(n);
  }
  const seedName = nodes[0]!.name;
  c.joinAll(seedName, 10_000);
  c.runUntil(() => c.converged(), 120_000, 1000);

  // The check model, one seeded stream per node so a node's results do not depend on the others.
  let checkRuns = 0;
  let nonPassing = 0;
  let tagUpdates = 0;
  let bookkeepingUs = 0;
  let bookkeepingWallUs = 0;
  let occurrenceOnlyUpdates = 0;
  let maxChkBytes = initialChk === undefined ? 0 : Buffer.byteLength(initialChk);
  // Checks start once the cluster has formed, at the start of the warm-up: the first results (each
  // node's chk going from 0 to C checks as records appear) are start-up, not steady state.
  const startMs = c.clock.now();
  if (o.withChecks) {
    for (const n of nodes) {
      const rng = new SeededRandom(o.seed).fork(`checks/${n.name}`);
      const serf = serfs.get(n.name)!;
      const checks: ModelCheck[] = [];
      for (let i = 0; i < o.checksPerNode; i++) checks.push({ name: `check-${i}`, episodeStatus: 2, runsLeft: 0, record: undefined });
      let published = initialChk ?? '';
      const runCheck = (chk: ModelCheck): void => {
        if (n.killed) return;
        if (chk.runsLeft === 0 && rng.chance(o.failProbability)) {
          chk.runsLeft = 1 + rng.int(o.maxEpisodeRuns);
          const roll = rng.float();
          chk.episodeStatus = roll < 0.6 ? 2 : roll < 0.9 ? 1 : 3;
        }
        let status: CheckStatus = 0;
        if (chk.runsLeft > 0) {
          chk.runsLeft--;
          status = chk.episodeStatus;
        }
        if (measuring) checkRuns++;
        if (measuring && status !== 0) nonPassing++;
        const durationMs = 5 + rng.int(50);
        const result = { status, output: status === 0 ? 'OK' : `${chk.name} ${status === 1 ? 'WARNING' : status === 2 ? 'CRITICAL' : 'UNKNOWN'}: simulated`, at: c.clock.now(), durationMs };
        const t0 = cpuUs();
        const w0 = performance.now();
        chk.record = recordResult(chk.record, chk.name, result, FLAP);
        const summary = summarize(checks.flatMap((x) => (x.record === undefined ? [] : [x.record])));
        if (o.occurrenceCap < MAX_OCCURRENCES) for (const e of summary.entries) e.occurrences = Math.min(e.occurrences, o.occurrenceCap);
        const value = encodeSummary(summary);
        const w1 = performance.now();
        if (measuring) {
          bookkeepingUs += cpuUs() - t0;
          bookkeepingWallUs += (w1 - w0) * 1000;
        }
        if (value !== published) {
          if (measuring) {
            tagUpdates++;
            if (sameStates(published, value)) occurrenceOnlyUpdates++;
          }
          published = value;
          maxChkBytes = Math.max(maxChkBytes, Buffer.byteLength(value));
          serf.setTags({ ...serf.localTags(), [SUMMARY_TAG]: value });
          pump(n);
        }
        c.clock.setTimer(c.clock.now() + o.intervalMs, () => runCheck(chk));
      };
      // Each check starts at a random phase, as a runner's jittered first run does.
      for (const chk of checks) c.clock.setTimer(startMs + rng.int(o.intervalMs), () => runCheck(chk));
    }
  }

  c.runFor(o.warmupMs);
  const convergedAtStart = c.converged();
  const udpSentBefore = nodes.reduce((a, n) => a + n.transport.counters.packetBytesSent, 0);
  tally.udpReceived = 0;
  tally.stream = 0;
  measuring = true;
  const cpuBefore = cpuUs();
  c.runFor(o.windowMs);
  const windowCpuMs = (cpuUs() - cpuBefore) / 1000;
  measuring = false;
  const udpSent = nodes.reduce((a, n) => a + n.transport.counters.packetBytesSent, 0) - udpSentBefore;
  const convergedAtEnd = c.converged();
  c.shutdown();
  const seconds = o.windowMs / 1000;
  return {
    withChecks: o.withChecks,
    occurrenceCap: o.occurrenceCap,
    nodes: o.nodes,
    windowMs: o.windowMs,
    convergedAtStart,
    convergedAtEnd,
    bytesPerNodePerSec: (udpSent + tally.udpReceived + tally.stream) / o.nodes / seconds,
    udpBytesSent: udpSent,
    udpBytesReceived: tally.udpReceived,
    streamBytes: tally.stream,
    checkRuns,
    nonPassingResults: nonPassing,
    tagUpdates,
    occurrenceOnlyUpdates,
    memberUpdatesSeen,
    bookkeepingUsPerNodePerSec: bookkeepingUs / o.nodes / seconds,
    bookkeepingUsPerResult: checkRuns === 0 ? 0 : bookkeepingUs / checkRuns,
    bookkeepingWallUsPerNodePerSec: bookkeepingWallUs / o.nodes / seconds,
    bookkeepingWallUsPerResult: checkRuns === 0 ? 0 : bookkeepingWallUs / checkRuns,
    windowCpuMs,
    maxChkBytes,
  };
}

/**
 * The bookkeeping alone, warm and isolated: C checks fed results from the same kind of model in a
 * tight loop (no simulation around it to evict caches or trigger GC inside the measured spans).
 * Returns CPU µs per result.
 */
export function isolatedBookkeepingUsPerResult(o: ChecksBenchOptions, results = 200_000): number {
  const rng = new SeededRandom(o.seed).fork('isolated');
  const records: (CheckRecord | undefined)[] = new Array<CheckRecord | undefined>(o.checksPerNode).fill(undefined);
  const runsLeft = new Array<number>(o.checksPerNode).fill(0);
  let sink = 0;
  const loop = (n: number): number => {
    const t0 = cpuUs();
    for (let i = 0; i < n; i++) {
      const k = i % o.checksPerNode;
      if (runsLeft[k] === 0 && rng.chance(o.failProbability)) runsLeft[k] = 1 + rng.int(o.maxEpisodeRuns);
      const status: CheckStatus = runsLeft[k]! > 0 ? 2 : 0;
      if (runsLeft[k]! > 0) runsLeft[k]!--;
      records[k] = recordResult(records[k], `check-${k}`, { status, output: status === 0 ? 'OK' : 'CRITICAL', at: i, durationMs: 5 }, FLAP);
      sink += encodeSummary(summarize(records.filter((r): r is CheckRecord => r !== undefined))).length;
    }
    return cpuUs() - t0;
  };
  loop(Math.min(20_000, results)); // warm-up: let V8 optimise
  const us = loop(results);
  if (sink < 0) throw new Error('unreachable');
  return us / results;
}

/** Whether two chk values list the same checks with the same statuses and flapping (occurrences aside). */
function sameStates(a: string, b: string): boolean {
  const x = decodeSummary(a);
  const y = decodeSummary(b);
  if (x === undefined || y === undefined || x.total !== y.total || x.omitted !== y.omitted || x.entries.length !== y.entries.length) return false;
  const key = (e: { name: string; status: number; flapping: boolean }): string => `${e.name}=${e.status}${e.flapping ? 'f' : ''}`;
  const ys = new Set(y.entries.map(key));
  return x.entries.every((e) => ys.has(key(e)));
}

export interface ChecksComparison {
  baseline: ChecksBenchRun;
  checks: ChecksBenchRun;
  /** The what-if run with occurrences clamped in the tag (when asked for). */
  capped?: ChecksBenchRun;
  isolatedUsPerResult: number;
}

/** Baseline and checks runs on the same seed (and the what-if when `whatIfCap` is given). */
export function compareChecks(o: ChecksBenchOptions, whatIfCap?: number): ChecksComparison {
  const baseline = runChecksSim({ ...o, withChecks: false });
  const checks = runChecksSim({ ...o, withChecks: true });
  const capped = whatIfCap === undefined ? undefined : runChecksSim({ ...o, withChecks: true, occurrenceCap: whatIfCap });
  return { baseline, checks, ...(capped === undefined ? {} : { capped }), isolatedUsPerResult: isolatedBookkeepingUsPerResult(o, 50_000) };
}

export function formatChecksTable(o: ChecksBenchOptions, r: ChecksComparison): string {
  const { baseline: b, checks: k } = r;
  const secs = o.windowMs / 1000;
  const lines = [
    `${o.nodes} simulated nodes (LAN profile, compression ${o.compression ? 'on' : 'off'}), ${o.checksPerNode} checks each every ${o.intervalMs / 1000} s, ` +
      `failure episodes p=${o.failProbability}/run lasting 1..${o.maxEpisodeRuns} runs; seed ${o.seed}; ${secs / 60} simulated min measured after ${o.warmupMs / 1000} s warm-up`,
    ['', 'baseline', 'checks', 'delta'].join('\t'),
    ['gossip B/s per node (sent+recv)', b.bytesPerNodePerSec.toFixed(0), k.bytesPerNodePerSec.toFixed(0), `+${(k.bytesPerNodePerSec - b.bytesPerNodePerSec).toFixed(0)} (${pct(k.bytesPerNodePerSec, b.bytesPerNodePerSec)})`].join('\t'),
    ['  UDP sent / recv / TCP (MB)', mbs(b), mbs(k), ''].join('\t'),
    ['whole-sim CPU ms (window)', b.windowCpuMs.toFixed(0), k.windowCpuMs.toFixed(0), `+${(k.windowCpuMs - b.windowCpuMs).toFixed(0)} (${pct(k.windowCpuMs, b.windowCpuMs)})`].join('\t'),
    ['  per node per s (µs)', usPerNodeSec(b.windowCpuMs, o), usPerNodeSec(k.windowCpuMs, o), ''].join('\t'),
    ['converged start/end', `${b.convergedAtStart}/${b.convergedAtEnd}`, `${k.convergedAtStart}/${k.convergedAtEnd}`, ''].join('\t'),
    `check results: ${k.checkRuns} (${k.nonPassingResults} non-passing, ${((100 * k.nonPassingResults) / Math.max(1, k.checkRuns)).toFixed(1)} %)`,
    `chk tag updates: ${k.tagUpdates} (${(k.tagUpdates / o.nodes / (secs / 60)).toFixed(2)} per node per min; ${k.occurrenceOnlyUpdates} of them only an occurrence count moving; longest chk ${k.maxChkBytes} B); member-update events applied cluster-wide: ${k.memberUpdatesSeen}`,
    `check bookkeeping (recordResult+summarize+encodeSummary): process.cpuUsage ${k.bookkeepingUsPerNodePerSec.toFixed(1)} µs per node per s (${k.bookkeepingUsPerResult.toFixed(1)} µs per result, all threads incl. V8's GC helpers: upper bound); ` +
      `main thread ${k.bookkeepingWallUsPerNodePerSec.toFixed(1)} µs per node per s (${k.bookkeepingWallUsPerResult.toFixed(1)} µs per result); ` +
      `isolated and warm: ${r.isolatedUsPerResult.toFixed(2)} µs per result`,
  ];
  const w = r.capped;
  if (w !== undefined) {
    lines.push(
      `what-if, occurrences in chk capped at ${w.occurrenceCap} (not the shipped format): ` +
        `${w.bytesPerNodePerSec.toFixed(0)} B/s per node (+${(w.bytesPerNodePerSec - b.bytesPerNodePerSec).toFixed(0)} over baseline), ` +
        `${w.tagUpdates} tag updates (${w.occurrenceOnlyUpdates} occurrence-only), whole-sim CPU ${w.windowCpuMs.toFixed(0)} ms`,
    );
  }
  return lines.join('\n');
}

function pct(x: number, base: number): string {
  return base === 0 ? 'n/a' : `${(((x - base) / base) * 100).toFixed(1)} %`;
}

function mbs(r: ChecksBenchRun): string {
  const m = (b: number): string => (b / 1e6).toFixed(1);
  return `${m(r.udpBytesSent)} / ${m(r.udpBytesReceived)} / ${m(r.streamBytes)}`;
}

function usPerNodeSec(cpuMs: number, o: ChecksBenchOptions): string {
  return ((cpuMs * 1000) / o.nodes / (o.windowMs / 1000)).toFixed(1);
}

export default async function run(): Promise<void> {
  const o = defaultOptions();
  const cap = process.env['KODAMA_BENCH_CHECK_WHATIF_CAP'];
  const r = compareChecks(o, cap === '' || cap === '0' ? undefined : Number(cap ?? 3));
  console.log(formatChecksTable(o, r));
  await Promise.resolve();
}
