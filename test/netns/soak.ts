// A soak run on a real test network (`npm run soak`, test/netns/soak.test.ts): a mixed cluster in
// network namespaces (test/netns/net.ts) under continuous traffic through an embedded balancer,
// with a seeded random schedule of faults one after the other, each followed by recovery and a
// quiet gap, then the checker's verdicts over the whole run:
//
//   node 0 `lb`      kodama balancer (embedded proxy, `web` with min_backends 1), a local check
//   w<i>             kodama web nodes: an HTTP-checked `web` service, a page server, a local check
//   s<i> (i % 3 = 0) serf web nodes: `-tag s:web=8080` and a page server (serf runs no checks)
//
// Every fault is one of: a partition of 1–4 web nodes from the rest (10–40 s); a one-way cut
// between two nodes (10–20 s); 20 % loss arriving at 1–3 nodes (20–60 s); SIGSTOP of a web node
// (3–10 s); kill -9 of a kodama web node and its restart (3–10 s down, rejoining by -retry-join;
// never w1, so that a kodama web node runs the whole soak and has a memory figure);
// a flapping link (2 s down / 2 s up, 3 times). Then every cut and loss is removed, every member
// must be alive everywhere within RECOVERY_BOUND_MS and every web node ready on the balancer
// again, and a quiet gap of 5–15 s follows. Each fault's window runs from its start to the end
// of its recovery, and is written to the network's timeline.
//
// Verdicts (soakProblems): a member-failed handler event is a false failure unless a window
// containing it (plus the recovery bound as grace) took its subject away (paused or killed) or cut
// it off from that observer; a request through the balancer that failed outside every window
// (plus the grace); a fault not recovered from within the bound; a final view that is not every
// member alive, once, everywhere. Per agent, RSS and its anonymous part every 30 s from the start
// figures on (after the warm-up) and CPU time: growth is the median of the last three samples
// against the median of the first three (one sample is a moment of the GC's cycle, three are its
// level), with the largest sample beside them; after a warm-up, RSS growth of MEMORY_GROWTH_LIMIT
// or more is a problem too (a leak: a level that keeps rising).
//
// The same seed gives the same fault sequence (kinds, nodes, durations, gaps); the run's length
// decides how much of it runs, and the last fault may be cut short by the deadline. Every loop is
// bounded in count and in time; the network and every process are gone when runSoak returns or
// throws.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { createNet, type Net, type NetNode } from './net.ts';
import { joinAll, startAgent, type Agent, type AgentKind } from './agents.ts';
import { diagnosis, falseFailures, finalViewProblems, waitAllAlive, type FalseFailure } from './checker.ts';
import { PROBE_INTERVAL_MS, detectBoundMs } from './scenario.ts';
import { FRONT_PORT, PAGE_PORT, get, readyBackends, startPage } from './web.ts';
import { mulberry32 } from '../lib/random.ts';

export const DEFAULT_NODES = 10;
/** One GET through the balancer this often (plus the request's own time). */
const LOAD_INTERVAL_MS = 20;
const REQUEST_TIMEOUT_MS = 2000;
/** After the join: gossip's retransmissions are over well within this (scenario.ts's withCluster). */
const SETTLE_MS = 2_000;
/**
 * A fault removed → every member alive everywhere, and the grace after a window in which its
 * effects (a late verdict, a failed request) still count as its own. A paused node resumed comes
 * back within a few probe intervals (faults.test.ts's RESUME_BOUND_MS: 10); a healed partition
 * re-merges in ~1 s (kodama's heal pings), 5 s in a mixed cluster (remerge.test.ts); a restarted
 * node is alive everywhere once its -retry-join's push/pull and its refutation have spread; the
 * balancer's health checks (500 ms, rise 1) follow within a second. Ten probe intervals, as the
 * other netns scenarios use.
 */
export const RECOVERY_BOUND_MS = 10 * PROBE_INTERVAL_MS;
const PROGRESS_EVERY_MS = 30_000;
/** Memory growth is judged after a warm-up, or in a window that starts into the faults (and began). */
function memoryJudged(r: SoakResult): boolean {
  return r.measured !== false && ((r.warmupMs ?? 0) > 0 || (r.measureAfterMs ?? 0) > 0);
}

/** RSS (or its anonymous part) this much above the start level, in a run with a warm-up: a leak. */
export const MEMORY_GROWTH_LIMIT = 0.05;
/** Samples per level (start, end): their median. */
const LEVEL_SAMPLES = 3;
const MAX_FAULTS = 10_000;
const LOSS_PCT = 20;
const FLAP_MS = 2_000;
const FLAPS = 3;
const MIN_GAP_MS = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32, test/lib/random.ts)

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in lo..hi (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(0, xs.length - 1)] as T;
  }
  /** k distinct elements, in random order. */
  sample<T>(xs: readonly T[], k: number): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j] as T, a[i] as T];
    }
    return a.slice(0, Math.min(k, a.length));
  }
}

/** A seed for a run that was given none (printed, so the run can be replayed). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}

// ---------------------------------------------------------------------------------------------
// Types

export type FaultKind = 'partition' | 'one-way' | 'loss' | 'pause' | 'kill' | 'flap';
export const FAULT_KINDS: readonly FaultKind[] = ['partition', 'one-way', 'loss', 'pause', 'kill', 'flap'];

export interface SoakOptions {
  /** Minutes of faults (after the cluster is up; the last fault's recovery and gap may run past it). */
  minutes: number;
  seed: number;
  /** Nodes in the cluster, 4…30 (default 10). */
  nodes?: number;
  /** Traffic before the start figures (RSS, CPU) and the first fault (default 0); memory growth is judged only after one. */
  warmupMs?: number;
  /**
   * Faults from the start, but the memory start figures taken this far into them (default 0: at
   * the first fault): the JIT, the fault paths and the heap's first collection cycle are behind
   * the window, so a level that rises inside it is what a leak looks like. Growth is judged then.
   */
  measureAfterMs?: number;
  /** Progress lines (one per fault, one every ~30 s). */
  log?: (line: string) => void;
}

export interface FaultWindow {
  index: number;
  kind: FaultKind;
  what: string;
  /** Nodes the fault touched. */
  nodes: string[];
  /** Unix ms: the fault started. */
  startMs: number;
  /** Unix ms: the fault was removed (heal, resume, loss off, restarted). */
  faultEndMs: number;
  /** Unix ms: recovered (all alive everywhere and every web node ready on the balancer), or gave up. */
  endMs: number;
  /** faultEnd → all alive everywhere; undefined when not within RECOVERY_BOUND_MS. */
  recoveredMs: number | undefined;
  /** Members anyone may see failed during the window (paused, killed). */
  takenAway: string[];
  /** [observer, subject] pairs the fault cut off from each other. */
  cutPairs: [string, string][];
  /** member-failed events the window accounts for. */
  memberFailed: number;
  /** Requests that failed in the window (with its grace). */
  requestsFailed: number;
  requests: number;
}

export interface SoakFalseFailure extends FalseFailure {
  /** Windows (with grace) that contained it, none of which took its subject away from that observer. */
  windows: number[];
}

export interface ProcUsage {
  rssKb: number;
  anonKb: number;
  cpuS: number;
  /** Unix ms of the sample. */
  atMs: number;
}

export interface AgentUsage {
  name: string;
  kind: AgentKind;
  pid: number;
  /** Killed and started again during the run: start and end are two different processes. */
  restarted: boolean;
  start: ProcUsage | undefined;
  end: ProcUsage | undefined;
  /** Every PROGRESS_EVERY_MS from the start figures to the end (the current process's). */
  samples: ProcUsage[];
}

/** Median of the first and of the last LEVEL_SAMPLES samples, and the largest (kB); undefined with too few. */
export function memoryLevels(samples: ProcUsage[], key: 'rssKb' | 'anonKb'): { start: number; end: number; max: number; growth: number } | undefined {
  if (samples.length < 2) return undefined;
  const k = Math.min(LEVEL_SAMPLES, Math.floor(samples.length / 2));
  const median = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const values = samples.map((x) => x[key]);
  const start = median(values.slice(0, k));
  const end = median(values.slice(-k));
  return { start, end, max: Math.max(...values), growth: end / start - 1 };
}

export interface RequestFailure {
  startMs: number;
  endMs: number;
}

export interface SoakResult {
  seed: number;
  minutes: number;
  names: string[];
  kinds: AgentKind[];
  /** Nodes running a local (command) check; the serf nodes have none. */
  checked: string[];
  subnet: string;
  firewall: string;
  /** Unix ms: the cluster was up, settled, traffic started (the base of every relative time). */
  t0Ms: number;
  /** Unix ms: the fault phase ended (last fault recovered, its gap over). */
  faultsEndMs: number;
  /** Wall time of the whole run, network creation to destroy. */
  wallMs: number;
  windows: FaultWindow[];
  faultCounts: Record<FaultKind, number>;
  /** member-failed events from t0 on. */
  memberFailedTotal: number;
  falseFailures: SoakFalseFailure[];
  requests: { total: number; failed: number; failedInWindows: number; failedOutside: RequestFailure[] };
  /** Faults not recovered from within RECOVERY_BOUND_MS (each with what the views were). */
  recoveryProblems: string[];
  /** At the end: heal → all alive everywhere (undefined when not within the bound). */
  finalRecoveredMs: number | undefined;
  /** At the end: every member alive once everywhere, every web node ready on the balancer. */
  finalProblems: string[];
  usage: AgentUsage[];
  /** The run had a warm-up: memory growth is judged (MEMORY_GROWTH_LIMIT). */
  warmupMs: number;
  /** The memory window started this far into the faults (0: with them); > 0 judges growth too. */
  measureAfterMs: number;
  /** The memory window started (a run shorter than measureAfterMs has no memory figures). */
  measured: boolean;
  timeline: string[];
  /** The timeline and each agent's membership lines, taken before the network was destroyed. */
  diagnosis: string;
  /** Per false failure: the observer's and subject's log lines around it. */
  falseFailureLogs: string;
}

// ---------------------------------------------------------------------------------------------
// The balancer's view

/** Poll the balancer until `want` web nodes are ready or the deadline; returns the last count. */
async function waitReady(lb: Agent, want: number, deadlineMs: number): Promise<number | undefined> {
  let r: number | undefined;
  for (let i = 0; i < 10_000; i++) {
    r = await readyBackends(lb);
    if (r === want || Date.now() >= deadlineMs) break;
    await sleep(100);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Per-process figures from /proc

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks !== undefined) return clockTicks;
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
  const n = Number(r.stdout?.trim());
  clockTicks = r.status === 0 && Number.isFinite(n) && n > 0 ? n : 100;
  return clockTicks;
}

/** VmRSS, RssAnon (kB) and utime+stime (s) of a process; undefined when it is gone. */
export function procUsage(pid: number): ProcUsage | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    // The fields after the command (which may hold spaces) start at field 3, `state`; utime and
    // stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
    return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), cpuS, atMs: Date.now() };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The fault schedule

interface Plan {
  kind: FaultKind;
  /** partition: the group cut off from the rest; one-way: [from, to]; flap: the link's two ends; else the nodes hit. */
  nodes: string[];
  /** How long the fault lasts (kill: how long the node stays down); clipped to the deadline. */
  ms: number;
  /** The shortest this kind may be (a fault that does not fit before the deadline is not started). */
  minMs: number;
  gapMs: number;
}

/** Draw one fault: every random draw happens here, so a seed always gives the same sequence. */
function planFault(rng: Rng, all: string[], webs: string[], killable: string[]): Plan {
  const kind = rng.pick(FAULT_KINDS);
  const s = (lo: number, hi: number): number => rng.int(lo * 1000, hi * 1000);
  let p: Omit<Plan, 'gapMs'>;
  switch (kind) {
    case 'partition': {
      // Never the balancer alone against everyone: the group is web nodes only, at most 4 and
      // never all of them, so the balancer always keeps some web nodes on its side.
      const k = rng.int(1, Math.max(1, Math.min(4, webs.length - 1)));
      p = { kind, nodes: rng.sample(webs, k), ms: s(10, 40), minMs: 10_000 };
      break;
    }
    case 'one-way':
      p = { kind, nodes: rng.sample(all, 2), ms: s(10, 20), minMs: 10_000 };
      break;
    case 'loss':
      p = { kind, nodes: rng.sample(all, rng.int(1, 3)), ms: s(20, 60), minMs: 20_000 };
      break;
    case 'pause':
      p = { kind, nodes: [rng.pick(webs)], ms: s(3, 10), minMs: 3_000 };
      break;
    case 'kill':
      p = { kind, nodes: [rng.pick(killable)], ms: s(3, 10), minMs: 3_000 };
      break;
    case 'flap':
      p = { kind, nodes: rng.sample(all, 2), ms: FLAPS * 2 * FLAP_MS, minMs: FLAPS * 2 * FLAP_MS };
      break;
  }
  return { ...p, gapMs: s(5, 15) };
}

function describe(p: Plan, names: string[]): string {
  const secs = `${(p.ms / 1000).toFixed(1)} s`;
  switch (p.kind) {
    case 'partition':
      return `partition ${p.nodes.join(',')} | ${names.filter((n) => !p.nodes.includes(n)).join(',')} for ${secs}`;
    case 'one-way':
      return `one-way cut ${p.nodes[0]} → ${p.nodes[1]} (${p.nodes[1]} deaf to ${p.nodes[0]}) for ${secs}`;
    case 'loss':
      return `${LOSS_PCT} % loss arriving at ${p.nodes.join(',')} for ${secs}`;
    case 'pause':
      return `SIGSTOP ${p.nodes[0]} for ${secs}`;
    case 'kill':
      return `kill -9 ${p.nodes[0]}, restart after ${secs}`;
    case 'flap':
      return `link ${p.nodes[0]}–${p.nodes[1]} flapping (${FLAP_MS / 1000} s down / ${FLAP_MS / 1000} s up ×${FLAPS})`;
  }
}

/**
 * The first `count` faults a seed draws (kinds, nodes, durations before any clipping to the
 * deadline, quiet gaps): what a run with that seed will inject, in order, for as long as it lasts.
 */
export function faultSchedule(seed: number, nodes: number, count: number): { kind: FaultKind; what: string; ms: number; gapMs: number }[] {
  const rng = new Rng(seed);
  const { names, kinds } = nodeNames(nodes);
  const webs = names.slice(1);
  const killable = killableNodes(names, kinds);
  return Array.from({ length: Math.max(0, Math.min(count, MAX_FAULTS)) }, () => {
    const p = planFault(rng, names, webs, killable);
    return { kind: p.kind, what: describe(p, names), ms: p.ms, gapMs: p.gapMs };
  });
}

function pairsBetween(a: string[], b: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (const x of a) for (const y of b) if (x !== y) out.push([x, y], [y, x]);
  return out;
}

/** May `observer` see `subject` failed because of this window? */
function accountsFor(w: FaultWindow, observer: string, subject: string): boolean {
  return w.takenAway.includes(subject) || w.cutPairs.some(([o, s]) => o === observer && s === subject);
}

// ---------------------------------------------------------------------------------------------
// The run

/** Kodama web nodes but the first: it runs the whole soak, for a kodama web node's memory figures. */
function killableNodes(names: string[], kinds: AgentKind[]): string[] {
  return names.filter((_, i) => i > 1 && kinds[i] === 'kodama');
}

export function nodeNames(n: number): { names: string[]; kinds: AgentKind[] } {
  const kinds: AgentKind[] = Array.from({ length: n }, (_, i) => (i > 0 && i % 3 === 0 ? 'serf' : 'kodama'));
  const names = kinds.map((k, i) => (i === 0 ? 'lb' : `${k === 'serf' ? 's' : 'w'}${i}`));
  return { names, kinds };
}

/** Run a soak on a fresh network (see the top of this file); the network is gone when it returns or throws. */
export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const n = opts.nodes ?? DEFAULT_NODES;
  const seed = opts.seed;
  if (!Number.isInteger(n) || n < 4 || n > 30) throw new Error(`runSoak (seed ${seed}): nodes must be 4…30, got ${n}`);
  if (!(opts.minutes > 0 && opts.minutes <= 24 * 60)) throw new Error(`runSoak (seed ${seed}): minutes must be > 0 and ≤ 1440, got ${opts.minutes}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`runSoak: seed must be an integer 0…${0xffffffff}, got ${seed}`);
  const rng = new Rng(seed);
  const wallStart = performance.now();
  const log = (line: string): void => opts.log?.(`${((performance.now() - wallStart) / 1000).toFixed(1).padStart(6)} s  ${line}`);
  const { names, kinds } = nodeNames(n);
  const webs = names.slice(1);
  const killable = killableNodes(names, kinds);
  const checked = names.filter((_, i) => kinds[i] === 'kodama');
  // A fault not recovered from within RECOVERY_BOUND_MS: how much longer we wait (and report)
  // before going on: a suspicion's longest Lifeguard timeout and a few probe rounds.
  const lateBoundMs = detectBoundMs(n);

  log(`soak seed ${seed}: ${opts.minutes} min of faults on ${n} nodes (${names.map((x, i) => `${x}=${kinds[i]}`).join(' ')})`);
  const net = await createNet({ nodes: n, names });
  const load: { startMs: number; endMs: number; ok: boolean }[] = [];
  let stopLoad = false;
  let loader: Promise<void> | undefined;
  let progress: NodeJS.Timeout | undefined;
  const agents: Agent[] = [];
  try {
    log(`network ${net.subnet} (${net.firewall})`);
    const localCheck = [{ name: 'local', command: 'true', interval: '2s', timeout: '1s' }];
    const lbConfig = joinPath(net.dir, 'lb.json');
    writeFileSync(
      lbConfig,
      JSON.stringify({
        balancer: { driver: 'embedded', services: { web: { bind: `0.0.0.0:${FRONT_PORT}`, mode: 'http', min_backends: 1, drain_timeout: '5s' } } },
        checks: localCheck,
      }),
    );
    const webConfig = joinPath(net.dir, 'web.json');
    writeFileSync(
      webConfig,
      JSON.stringify({
        services: [{ name: 'web', port: PAGE_PORT, checks: [{ http: '/health', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 }] }],
        checks: localCheck,
      }),
    );
    const argsOf = (i: number): string[] => (i === 0 ? ['-config-file', lbConfig] : kinds[i] === 'serf' ? ['-tag', `s:web=${PAGE_PORT}`] : ['-config-file', webConfig]);
    // One at a time: two cores.
    for (let i = 0; i < n; i++) {
      const node = net.nodes[i] as NetNode;
      if (i > 0) await startPage(net, node);
      agents.push(await startAgent(net, node, kinds[i] as AgentKind, { args: argsOf(i) }));
    }
    const lb = agents[0] as Agent;
    const agentOf = (name: string): Agent => agents[names.indexOf(name)] as Agent;
    log('agents up; joining');
    await joinAll(agents);
    const upMs = Date.now();
    const front = await net.forward(lb.node, FRONT_PORT);
    const ready0 = await waitReady(lb, webs.length, Date.now() + 20_000);
    if (ready0 !== webs.length) throw new Error(`only ${ready0 ?? 'unknown'} of ${webs.length} web nodes ready on the balancer 20 s after the join`);
    await sleep(SETTLE_MS);
    net.mark(`all ${n} alive everywhere, ${webs.length} web nodes ready on the balancer, settled; traffic starts (seed ${seed})`);

    const t0Ms = Date.now();
    loader = (async () => {
      for (let i = 0; i < 100_000_000 && !stopLoad; i++) {
        const startMs = Date.now();
        const ok = await get(front, REQUEST_TIMEOUT_MS);
        load.push({ startMs, endMs: Date.now(), ok });
        await sleep(LOAD_INTERVAL_MS);
      }
    })();
    // Memory and CPU are compared from after a warm-up under traffic (the JIT, the heap's first
    // growth), so what grows after it is what a leak would look like.
    const warmupMs = opts.warmupMs ?? 0;
    if (warmupMs > 0) {
      log(`warm-up: ${(warmupMs / 1000).toFixed(0)} s of traffic before the start figures and the first fault`);
      await sleep(warmupMs);
      net.mark('warm-up over: start figures taken, faults begin');
    }
    const measureAfterMs = opts.measureAfterMs ?? 0;
    const measureAt = Date.now() + measureAfterMs;
    let measuring = measureAfterMs <= 0;
    const usage: AgentUsage[] = agents.map((a) => {
      const start = measuring ? procUsage(a.proc.pid) : undefined;
      return { name: a.name, kind: a.kind, pid: a.proc.pid, restarted: false, start, end: undefined, samples: start === undefined ? [] : [start] };
    });
    if (!measuring) log(`memory: start figures ${(measureAfterMs / 60_000).toFixed(1)} min into the faults (the JIT, the fault paths and the heap's first cycle behind them)`);

    const windows: FaultWindow[] = [];
    const recoveryProblems: string[] = [];
    const deadline = Date.now() + opts.minutes * 60_000;
    progress = setInterval(() => {
      const now = Date.now();
      if (!measuring && now >= measureAt) {
        // The window starts: every agent as it runs now (one restarted before counts from its new process).
        measuring = true;
        for (const u of usage) {
          u.pid = agentOf(u.name).proc.pid;
          u.restarted = false;
          u.start = procUsage(u.pid);
          u.samples = u.start === undefined ? [] : [u.start];
        }
        net.mark('memory window starts: start figures taken');
        log('memory: start figures taken');
      } else if (measuring) {
        for (const u of usage) {
          const x = procUsage(u.pid);
          if (x !== undefined) u.samples.push(x);
        }
      }
      const failed = load.filter((x) => !x.ok).length;
      log(`progress: ${((now - t0Ms) / 1000).toFixed(0)} s elapsed, ${Math.max(0, (deadline - now) / 1000).toFixed(0)} s of faults left; ${windows.length} faults done; requests ${load.length} (${failed} failed)`);
    }, PROGRESS_EVERY_MS);
    progress.unref();

    for (let i = 1; i <= MAX_FAULTS && Date.now() < deadline; i++) {
      const plan = planFault(rng, names, webs, killable);
      const remaining = deadline - Date.now();
      if (remaining < plan.minMs) {
        log(`fault #${i} (${plan.kind}) does not fit in the ${(remaining / 1000).toFixed(1)} s left: faults end here`);
        break;
      }
      if (plan.kind !== 'flap') plan.ms = Math.min(plan.ms, remaining);
      const what = describe(plan, names);
      const w: FaultWindow = {
        index: i,
        kind: plan.kind,
        what,
        nodes: [...plan.nodes],
        startMs: Date.now(),
        faultEndMs: 0,
        endMs: 0,
        recoveredMs: undefined,
        takenAway: plan.kind === 'pause' || plan.kind === 'kill' ? [...plan.nodes] : [],
        cutPairs:
          plan.kind === 'partition'
            ? pairsBetween(plan.nodes, names.filter((x) => !plan.nodes.includes(x)))
            : plan.kind === 'one-way' || plan.kind === 'flap'
              ? pairsBetween([plan.nodes[0] as string], [plan.nodes[1] as string])
              : [],
        memberFailed: 0,
        requestsFailed: 0,
        requests: 0,
      };
      windows.push(w);
      log(`fault #${i}: ${what}`);
      net.mark(`fault #${i} begins: ${what}`);
      await inject(net, plan, names, agents, agentOf, argsOf, usage, log);
      w.faultEndMs = Date.now();
      const where = `seed ${seed}: fault #${i} (${what})`;
      try {
        const back = await waitAllAlive(net, agents, names, RECOVERY_BOUND_MS, where);
        w.recoveredMs = Math.max(...back.values());
      } catch (e) {
        recoveryProblems.push((e as Error).message);
        log(`NOT RECOVERED within ${RECOVERY_BOUND_MS} ms: ${where}`);
        try {
          const late = await waitAllAlive(net, agents, names, lateBoundMs, `${where}, the longer wait`);
          const msg = `${where}: all alive everywhere only ${((Date.now() - w.faultEndMs) / 1000).toFixed(1)} s after the fault ended (max view ${Math.max(...late.values()).toFixed(0)} ms into the longer wait)`;
          recoveryProblems.push(msg);
          log(msg);
        } catch {
          recoveryProblems.push(`${where}: still not all alive everywhere ${((Date.now() - w.faultEndMs) / 1000).toFixed(1)} s after the fault ended`);
        }
      }
      const ready = await waitReady(lb, webs.length, w.faultEndMs + RECOVERY_BOUND_MS);
      if (ready !== webs.length) recoveryProblems.push(`${where}: the balancer had ${ready ?? 'unknown'} of ${webs.length} web nodes ready ${((Date.now() - w.faultEndMs) / 1000).toFixed(1)} s after the fault ended`);
      w.endMs = Date.now();
      const rec = w.recoveredMs === undefined ? 'NOT within the bound' : `${(w.recoveredMs / 1000).toFixed(2)} s`;
      net.mark(`fault #${i} over: all alive everywhere ${rec} after it ended; balancer ${ready ?? '?'}/${webs.length} ready`);
      // The last fault's gap is cut to MIN_GAP_MS (a late verdict still has time to show).
      const gapMs = Math.min(plan.gapMs, Math.max(MIN_GAP_MS, deadline - Date.now()));
      log(`fault #${i} over: all alive everywhere ${rec} after it ended, balancer ${ready ?? '?'}/${webs.length} ready; quiet for ${(gapMs / 1000).toFixed(1)} s`);
      await sleep(gapMs);
    }
    clearInterval(progress);
    progress = undefined;
    const faultsEndMs = Date.now();

    // The end: nothing cut, nothing lost, all alive everywhere, exactly the members everywhere.
    log('faults over; final checks');
    await net.heal();
    await Promise.all(net.nodes.map((x) => net.loss(x, 0)));
    let finalRecoveredMs: number | undefined;
    const finalProblems: string[] = [];
    try {
      finalRecoveredMs = Math.max(...(await waitAllAlive(net, agents, names, RECOVERY_BOUND_MS, `seed ${seed}: at the end`)).values());
    } catch (e) {
      finalProblems.push((e as Error).message);
    }
    finalProblems.push(...(await finalViewProblems(agents, names)));
    const readyEnd = await waitReady(lb, webs.length, Date.now() + RECOVERY_BOUND_MS);
    if (readyEnd !== webs.length) finalProblems.push(`balancer: ${readyEnd ?? 'unknown'} of ${webs.length} web nodes ready at the end`);
    for (const u of usage) {
      if (!measuring) break;
      u.end = procUsage(agentOf(u.name).proc.pid);
      if (u.end !== undefined) u.samples.push(u.end);
    }
    stopLoad = true;
    await loader;
    net.mark('final checks done');

    // Verdicts.
    const graceEnd = (w: FaultWindow): number => w.endMs + RECOVERY_BOUND_MS;
    const failedEvents = falseFailures(agents, upMs, () => false);
    const wrong: SoakFalseFailure[] = [];
    for (const e of failedEvents) {
      const containing = windows.filter((w) => e.atMs >= w.startMs && e.atMs <= graceEnd(w));
      const by = containing.find((w) => accountsFor(w, e.observer, e.subject));
      if (by !== undefined) by.memberFailed++;
      else wrong.push({ ...e, windows: containing.map((w) => w.index) });
    }
    const failedOutside: RequestFailure[] = [];
    let failedInWindows = 0;
    for (const r of load) {
      const inside = windows.filter((w) => r.endMs >= w.startMs && r.startMs <= graceEnd(w));
      for (const w of inside) {
        w.requests++;
        if (!r.ok) w.requestsFailed++;
      }
      if (r.ok) continue;
      if (inside.length > 0) failedInWindows++;
      else failedOutside.push({ startMs: r.startMs, endMs: r.endMs });
    }
    const faultCounts = Object.fromEntries(FAULT_KINDS.map((k) => [k, windows.filter((w) => w.kind === k).length])) as Record<FaultKind, number>;
    const result: SoakResult = {
      seed,
      minutes: opts.minutes,
      names,
      kinds,
      checked,
      subnet: net.subnet,
      firewall: net.firewall,
      t0Ms,
      faultsEndMs,
      wallMs: 0,
      windows,
      faultCounts,
      memberFailedTotal: failedEvents.length,
      falseFailures: wrong,
      requests: { total: load.length, failed: load.filter((x) => !x.ok).length, failedInWindows, failedOutside },
      recoveryProblems,
      finalRecoveredMs,
      finalProblems,
      usage,
      warmupMs: opts.warmupMs ?? 0,
      measureAfterMs,
      measured: measuring,
      timeline: net.timeline(),
      diagnosis: diagnosis(net, agents),
      falseFailureLogs: wrong.map((f) => logsAround(agents, f, t0Ms)).join('\n'),
    };
    result.wallMs = performance.now() - wallStart;
    return result;
  } catch (e) {
    const err = e as Error;
    const diag = agents.length > 0 ? diagnosis(net, agents) : `timeline:\n${net.timeline().join('\n')}`;
    throw new Error(`soak seed ${seed} failed: ${err.message}\n${diag}`, { cause: e });
  } finally {
    if (progress !== undefined) clearInterval(progress);
    stopLoad = true;
    await loader?.catch(() => {});
    await net.destroy();
  }
}

/** Start one fault, keep it for plan.ms, remove it. */
async function inject(
  net: Net,
  plan: Plan,
  names: string[],
  agents: Agent[],
  agentOf: (name: string) => Agent,
  argsOf: (i: number) => string[],
  usage: AgentUsage[],
  log: (line: string) => void,
): Promise<void> {
  const [a, b] = [plan.nodes[0] as string, plan.nodes[1] as string];
  switch (plan.kind) {
    case 'partition':
      await net.cut(plan.nodes, names.filter((x) => !plan.nodes.includes(x)));
      await sleep(plan.ms);
      await net.heal();
      return;
    case 'one-way':
      await net.cutOneWay([a], [b]);
      await sleep(plan.ms);
      await net.heal();
      return;
    case 'loss':
      await Promise.all(plan.nodes.map((x) => net.loss(x, LOSS_PCT)));
      await sleep(plan.ms);
      await Promise.all(plan.nodes.map((x) => net.loss(x, 0)));
      return;
    case 'pause': {
      const p = agentOf(a).proc;
      net.pause(p);
      await sleep(plan.ms);
      net.resume(p);
      return;
    }
    case 'flap':
      for (let i = 0; i < FLAPS; i++) {
        await net.cut([a], [b]);
        await sleep(FLAP_MS);
        await net.heal();
        await sleep(FLAP_MS);
      }
      return;
    case 'kill': {
      const idx = names.indexOf(a);
      const old = agentOf(a);
      net.kill9(old.proc);
      await Promise.race([old.proc.exited, sleep(5000)]);
      if (!old.proc.hasExited()) throw new Error(`${a} (pid ${old.proc.pid}) still running 5 s after kill -9`);
      await sleep(plan.ms);
      const lb = agents[0] as Agent;
      const peer = agents.find((x) => x.name !== a && x.name !== lb.name) as Agent;
      const fresh = await startAgent(net, old.node, 'kodama', {
        args: [...argsOf(idx), '-retry-join', lb.gossipAddr, '-retry-join', peer.gossipAddr, '-retry-interval', '1s'],
      });
      agents[idx] = fresh;
      const u = usage.find((x) => x.name === a);
      if (u !== undefined) {
        u.restarted = true;
        u.pid = fresh.proc.pid;
        u.samples = []; // another process: its level is not the old one's
      }
      net.mark(`restarted ${a} (pid ${fresh.proc.pid}), -retry-join ${lb.name},${peer.name}`);
      log(`restarted ${a} (pid ${fresh.proc.pid})`);
      return;
    }
  }
}

/** The observer's and the subject's log lines from 30 s before a false failure to 5 s after it. */
function logsAround(agents: Agent[], f: FalseFailure, t0Ms: number): string {
  const out = [`false failure at +${((f.atMs - t0Ms) / 1000).toFixed(1)} s: ${f.observer} ran member-failed for ${f.subject}`];
  for (const name of [f.observer, f.subject]) {
    const a = agents.find((x) => x.name === name);
    if (a === undefined) continue;
    const lines = a.proc
      .output()
      .split('\n')
      .filter((l) => l.includes(f.observer === name ? f.subject : f.observer) || /suspect|refut|dead|fail|incarnation/i.test(l));
    const dated = lines.filter((l) => {
      const t = lineTime(l);
      return t === undefined || (t >= f.atMs - 30_000 && t <= f.atMs + 5_000);
    });
    out.push(`  ${name} (${a.kind}, its current process):`);
    out.push(...dated.slice(-40).map((l) => `    ${l}`));
  }
  return out.join('\n');
}

/** The time at the start of an agent log line (serf and kodama: "2024/01/02 15:04:05 [LEVEL] …"), unix ms. */
function lineTime(line: string): number | undefined {
  const m = /(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})/.exec(line);
  if (m === null) return undefined;
  const t = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])).getTime();
  return Number.isFinite(t) ? t : undefined;
}

// ---------------------------------------------------------------------------------------------
// Verdicts and the summary

/** What is wrong with a run, one line each (empty: it passed). */
export function soakProblems(r: SoakResult): string[] {
  const out: string[] = [];
  const rel = (ms: number): string => `+${((ms - r.t0Ms) / 1000).toFixed(1)} s`;
  for (const f of r.falseFailures) {
    out.push(`seed ${r.seed}: false failure at ${rel(f.atMs)}: ${f.observer} ran member-failed for ${f.subject} (${f.windows.length === 0 ? 'outside every fault window' : `in window(s) #${f.windows.join(', #')}, none of which took ${f.subject} away from ${f.observer}`})`);
  }
  for (const x of r.requests.failedOutside) out.push(`seed ${r.seed}: request failed outside every fault window: ${rel(x.startMs)} → ${rel(x.endMs)}`);
  // (recovery problems name the seed and the fault already)
  for (const p of r.recoveryProblems) out.push(p.split('\n')[0] ?? p);
  for (const p of r.finalProblems) out.push(`seed ${r.seed}: at the end: ${p.split('\n')[0] ?? p}`);
  if (memoryJudged(r)) {
    for (const u of r.usage) {
      if (u.restarted) continue;
      // RSS, as the issue states it; the anonymous part is shown, not judged (a few MiB at
      // most, so a GC cycle alone moves it by more than 5 %: serf's moved 7.7 % in one run).
      const l = memoryLevels(u.samples, 'rssKb');
      if (l !== undefined && l.growth >= MEMORY_GROWTH_LIMIT) {
        out.push(`seed ${r.seed}: ${u.name} (${u.kind}) RSS grew ${(l.growth * 100).toFixed(1)} % (${mib(l.start)} → ${mib(l.end)} MiB, limit ${MEMORY_GROWTH_LIMIT * 100} %)`);
      }
    }
  }
  return out;
}

function pct(a: number, b: number): string {
  if (!(a > 0) || !Number.isFinite(b)) return '—';
  const g = ((b - a) / a) * 100;
  return `${g >= 0 ? '+' : ''}${g.toFixed(1)} %`;
}

function mib(kb: number | undefined): string {
  return kb === undefined || !Number.isFinite(kb) ? '—' : (kb / 1024).toFixed(1);
}

/** The summary as text lines: what the CLI prints and the test reports. */
export function formatSummary(r: SoakResult): string {
  const rel = (ms: number): string => `${((ms - r.t0Ms) / 1000).toFixed(1)}`;
  const lines: string[] = [];
  const serf = r.names.filter((_, i) => r.kinds[i] === 'serf');
  lines.push(`soak seed ${r.seed} (replay: --seed ${r.seed}): ${r.minutes} min of faults on ${r.names.length} nodes, ${r.subnet} via ${r.firewall}; wall ${(r.wallMs / 1000).toFixed(0)} s`);
  lines.push(`  cluster: ${r.names.map((x, i) => `${x}=${r.kinds[i]}`).join(' ')} (lb: embedded balancer, min_backends 1)`);
  lines.push(`  checks: a local command check (\`true\` every 2 s) on every kodama node (${r.checked.join(',')}); the serf nodes (${serf.join(',') || 'none'}) run none: serf has no checks`);
  const rec = r.windows.map((w) => w.recoveredMs).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  lines.push(`  faults: ${r.windows.length} (${FAULT_KINDS.map((k) => `${k} ${r.faultCounts[k]}`).join(', ')}); recovery bound ${RECOVERY_BOUND_MS / 1000} s, grace after each window the same`);
  lines.push(
    `  recovery (fault removed → all alive everywhere): ${rec.length === 0 ? '—' : `median ${((rec[Math.floor(rec.length / 2)] ?? 0) / 1000).toFixed(2)} s, max ${((rec[rec.length - 1] ?? 0) / 1000).toFixed(2)} s`}; not within the bound: ${r.windows.length - rec.length}`,
  );
  lines.push(`  member-failed events: ${r.memberFailedTotal}, accounted for by fault windows ${r.memberFailedTotal - r.falseFailures.length}, FALSE FAILURES ${r.falseFailures.length}`);
  lines.push(`  requests: ${r.requests.total}, failed ${r.requests.failed}: ${r.requests.failedInWindows} inside fault windows, OUTSIDE ${r.requests.failedOutside.length}`);
  lines.push(`  at the end: all alive everywhere ${r.finalRecoveredMs === undefined ? 'NOT within the bound' : `after ${(r.finalRecoveredMs / 1000).toFixed(2)} s`}; final view problems: ${r.finalProblems.length === 0 ? 'none' : r.finalProblems.length}`);
  lines.push('');
  lines.push('    #  kind       start s    end s  recovered s  failed evts  requests failed  what');
  for (const w of r.windows) {
    lines.push(
      `  ${String(w.index).padStart(3)}  ${w.kind.padEnd(9)}  ${rel(w.startMs).padStart(7)}  ${rel(w.endMs).padStart(7)}  ${(w.recoveredMs === undefined ? 'NOT' : (w.recoveredMs / 1000).toFixed(2)).padStart(11)}  ${String(w.memberFailed).padStart(11)}  ${`${w.requestsFailed}/${w.requests}`.padStart(15)}  ${w.what}`,
    );
  }
  lines.push('');
  lines.push(
    `  memory: a sample every ${PROGRESS_EVERY_MS / 1000} s from the start figures on; start and end are the medians of the first and last ${LEVEL_SAMPLES}; growth ${memoryJudged(r) ? `judged (limit ${MEMORY_GROWTH_LIMIT * 100} %, ${r.measureAfterMs > 0 ? `from ${(r.measureAfterMs / 60_000).toFixed(1)} min into the faults to the end` : `after a ${(r.warmupMs / 1000).toFixed(0)} s warm-up`})` : r.measureAfterMs > 0 ? 'not judged (the run ended before the memory window began)' : 'not judged (no warm-up)'}`,
  );
  lines.push('  node  kind    pid      samples  RSS MiB start → end (growth), max        anon MiB start → end (growth), max       CPU s start → end (% of a core)');
  for (const u of r.usage) {
    const s = u.start;
    const e = u.end;
    const span = s !== undefined && e !== undefined ? (e.atMs - s.atMs) / 1000 : NaN;
    const cpu = s !== undefined && e !== undefined && span > 0 && !u.restarted ? `${(((e.cpuS - s.cpuS) / span) * 100).toFixed(1)} %` : '—';
    const level = (key: 'rssKb' | 'anonKb'): string => {
      if (u.restarted) return 'restarted';
      const l = memoryLevels(u.samples, key);
      return l === undefined ? '—' : `${mib(l.start)} → ${mib(l.end)} (${pct(l.start, l.end)}), ${mib(l.max)}`;
    };
    lines.push(
      `  ${u.name.padEnd(5)} ${u.kind.padEnd(7)} ${String(u.pid).padEnd(8)} ${String(u.restarted ? '—' : u.samples.length).padStart(7)}  ${level('rssKb').padEnd(36)} ${level('anonKb').padEnd(36)} ${s === undefined ? '—' : s.cpuS.toFixed(1)} → ${e === undefined ? '—' : e.cpuS.toFixed(1)} (${cpu})`,
    );
  }
  if (r.usage.some((u) => u.restarted)) lines.push('  (restarted: killed and started again during the run, so no growth figure; pid is the new one)');
  // The series itself: a leak climbs all along, a GC or JIT step rises once and stays.
  lines.push(`  RSS MiB every ${PROGRESS_EVERY_MS / 1000} s (agents that ran throughout):`);
  for (const u of r.usage) {
    if (u.restarted || u.samples.length === 0) continue;
    lines.push(`    ${u.name.padEnd(5)} ${u.samples.map((x) => (x.rssKb / 1024).toFixed(1)).join(' ')}`);
  }
  const problems = soakProblems(r);
  lines.push('');
  lines.push(problems.length === 0 ? `PASS (seed ${r.seed})` : `FAIL (seed ${r.seed}): ${problems.length} problem(s)`);
  for (const p of problems) lines.push(`  ${p}`);
  return lines.join('\n');
}
