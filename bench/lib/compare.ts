// One serf-vs-kodama comparison: for each cluster size, a cluster of real serf agents, then the
// same of kodama agents (never both at once, so neither sees the other's CPU), each measured
// the same way, then a table with kodama/serf ratios.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentCluster, kodamaHasHandlers } from './cluster.ts';
import type { Kind } from './cluster.ts';
import { measureFailure, measureIdle, measureUserEvent, mergeSpreads, summarize, waitHandlersQuiet } from './measure.ts';
import type { Idle, Spread } from './measure.ts';
import { installExitHooks, memAvailableBytes, sleep } from './procs.ts';

export interface CompareOptions {
  sizes: number[];
  kinds: Kind[];
  /** Idle window for the CPU figure. */
  idleMs: number;
  /** Limit for the user event to reach everyone, and for everyone to see the failure. */
  userEventTimeoutMs: number;
  failureTimeoutMs: number;
  /** User events sent (2 s apart) and nodes killed (one after another) per cluster. */
  repeats: number;
  log: (line: string) => void;
  /** Keep agent logs and handler files (their directory is printed). */
  keepFiles: boolean;
}

export interface KindResult {
  kind: Kind;
  n: number;
  /** Why this cluster was not measured (or only partly); empty when complete. */
  notes: string[];
  /** Process ids of every agent started (all killed by the time the result is returned). */
  pids: number[];
  startMs?: number;
  /** Exec → 'running' banner per agent, p50 (ms). */
  startToRunningP50Ms?: number;
  /** Exec → 'running' banner of the seed, which starts alone (ms). */
  startToRunningAloneMs?: number;
  convergeMs?: number;
  idle?: Idle;
  /** 1-minute load average of the machine when the idle window started (others' work included). */
  load1?: number;
  userEvent?: Spread;
  failure?: Spread;
  /**
   * member-failed handler events naming a member that was never killed (a healthy node reported
   * failed), over the whole run from the first start; undefined without handlers.
   */
  falseFailures?: number;
}

/** Rough RSS per agent to refuse sizes that would push a shared machine into the OOM killer. */
const EXPECTED_RSS_BYTES: Record<Kind, number> = { serf: 25 * 2 ** 20, kodama: 100 * 2 ** 20 }; // measured: 15 and 82–92 MiB at N = 30
const MEMORY_HEADROOM_BYTES = 2 * 2 ** 30;

export async function runKind(kind: Kind, n: number, o: CompareOptions, handlers: boolean): Promise<KindResult> {
  const tag = `[${kind} N=${n}]`;
  const log = (s: string): void => o.log(`${tag} ${s}`);
  const r: KindResult = { kind, n, notes: [], pids: [] };
  const avail = memAvailableBytes();
  const need = EXPECTED_RSS_BYTES[kind] * n + MEMORY_HEADROOM_BYTES;
  if (avail !== undefined && avail < need) {
    r.notes.push(`skipped: ${(avail / 2 ** 30).toFixed(1)} GiB available, ~${(need / 2 ** 30).toFixed(1)} GiB needed`);
    log(r.notes[0] ?? '');
    return r;
  }
  if (!handlers) r.notes.push('no -event-handler in this agent yet: handler figures n/a');
  const dir = mkdtempSync(join(tmpdir(), `kodama-bench-${kind}-${n}-`));
  const c = new AgentCluster({
    kind,
    n,
    dir,
    handlers,
    log,
    // Both kinds start the same way: the seed alone, then 8 at a time.
    startConcurrency: 8,
    startTimeoutMs: kind === 'serf' ? 20_000 : 60_000,
  });
  let failed = false;
  try {
    log(`starting ${n} agents (logs in ${dir})`);
    const t0 = Date.now();
    await c.start();
    r.startMs = Date.now() - t0;
    const toRunning = c.agents.map((a) => a.startToRunningMs).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    if (toRunning.length > 0) r.startToRunningP50Ms = toRunning[Math.floor((toRunning.length - 1) / 2)];
    r.startToRunningAloneMs = c.agents[0]?.startToRunningMs;
    log(`all started in ${(r.startMs / 1000).toFixed(1)} s; waiting for every view to hold ${n} alive`);
    r.convergeMs = await c.waitConverged(60_000 + n * 1000);
    log(`converged ${(r.convergeMs / 1000).toFixed(1)} s after the last start; letting join handlers finish`);
    if (!(await waitHandlersQuiet(c, 5000, 60_000))) r.notes.push('handlers still busy after 60 s of settling');
    log(`measuring idle CPU for ${(o.idleMs / 1000).toFixed(0)} s`);
    r.load1 = loadavg()[0];
    r.idle = await measureIdle(c, o.idleMs);
    log(`idle CPU ${r.idle.cpuPctOfCore.toFixed(1)}% of a core, RSS ${(r.idle.rssMeanBytes / 2 ** 20).toFixed(1)} MiB/agent`);
    if (handlers) {
      // The two handler measurements are independent: one an agent cannot do yet (an RPC it
      // answers "Feature not supported") must not cost the other.
      for (let i = 0; i < o.repeats; i++) {
        log(`user event ${i + 1}/${o.repeats}`);
        try {
          const u = await measureUserEvent(c, `bench-${kind}-${n}-${i}`, o.userEventTimeoutMs);
          r.userEvent = mergeSpreads(r.userEvent, u);
          log(`  reached ${u.reached}/${u.expected}; p50 ${fmtMs(summarize(u).p50Ms)}, last ${fmtMs(summarize(u).lastMs)}`);
        } catch (e) {
          r.notes.push(`user event: ${(e as Error).message.split('\n')[0] ?? ''}`);
          log(`user event FAILED: ${(e as Error).message}`);
          break;
        }
        await sleep(2000);
      }
      // Victims from the end: agent 0 is the seed and the user events' sender.
      const killed = new Set<string>();
      for (let i = 0; i < Math.min(o.repeats, n - 2); i++) {
        const victim = c.agents[n - 1 - i]?.name ?? '?';
        log(`kill -9 ${victim} (${i + 1}/${o.repeats})`);
        killed.add(victim);
        const f = await measureFailure(c, victim, o.failureTimeoutMs);
        r.failure = mergeSpreads(r.failure, f);
        log(`  member-failed ran on ${f.reached}/${f.expected}; p50 ${fmtMs(summarize(f).p50Ms)}, last ${fmtMs(summarize(f).lastMs)}`);
      }
      const wrong = c.readEvents().filter((e) => e.event === 'member-failed' && e.members.some((m) => !killed.has(m)));
      r.falseFailures = wrong.length;
      if (wrong.length > 0) log(`healthy members reported failed: ${wrong.slice(0, 5).map((e) => `${e.self} saw ${e.members.join(',')}`).join('; ')}`);
    }
  } catch (e) {
    failed = true;
    r.notes.push(`failed: ${(e as Error).message.split('\n')[0] ?? ''}`);
    log(`FAILED: ${(e as Error).message}`);
  } finally {
    await c.destroy();
    r.pids = c.agents.map((a) => a.proc.pid);
    if (o.keepFiles || failed) log(`files kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

export async function compare(o: CompareOptions): Promise<KindResult[]> {
  installExitHooks();
  const kodamaHandlers = o.kinds.includes('kodama') ? kodamaHasHandlers() : false;
  const results: KindResult[] = [];
  for (const n of o.sizes) {
    for (const kind of o.kinds) {
      results.push(await runKind(kind, n, o, kind === 'serf' || kodamaHandlers));
    }
  }
  return results;
}

function fmtMs(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : `${Math.round(ms)} ms`;
}

function num(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

interface Metric {
  label: string;
  digits: number;
  get: (r: KindResult) => number | undefined;
  /** Context, not a cost: no kodama/serf ratio. */
  noRatio?: boolean;
}

const METRICS: Metric[] = [
  { label: "user event, sender's own (ms)", digits: 0, get: (r) => (r.userEvent ? summarize(r.userEvent).originMs : undefined) },
  { label: 'user event p50 (ms)', digits: 0, get: (r) => (r.userEvent ? summarize(r.userEvent).p50Ms : undefined) },
  { label: 'user event last node (ms)', digits: 0, get: (r) => (r.userEvent ? summarize(r.userEvent).lastMs : undefined) },
  { label: 'failure → handler p50 (ms)', digits: 0, get: (r) => (r.failure ? summarize(r.failure).p50Ms : undefined) },
  { label: 'failure → handler last node (ms)', digits: 0, get: (r) => (r.failure ? summarize(r.failure).lastMs : undefined) },
  { label: 'idle CPU, whole cluster (% core)', digits: 1, get: (r) => r.idle?.cpuPctOfCore },
  { label: 'RSS per agent, mean (MiB)', digits: 1, get: (r) => (r.idle ? r.idle.rssMeanBytes / 2 ** 20 : undefined) },
  { label: 'RSS per agent, max (MiB)', digits: 1, get: (r) => (r.idle ? r.idle.rssMaxBytes / 2 ** 20 : undefined) },
  { label: 'start all (s)', digits: 1, get: (r) => (r.startMs === undefined ? undefined : r.startMs / 1000) },
  { label: 'exec → running, 8 starting at once, p50 (ms)', digits: 0, get: (r) => r.startToRunningP50Ms },
  { label: 'exec → running, the seed alone (ms)', digits: 0, get: (r) => r.startToRunningAloneMs },
  { label: 'converge after start (s)', digits: 1, get: (r) => (r.convergeMs === undefined ? undefined : r.convergeMs / 1000) },
  { label: 'healthy members reported failed', digits: 0, get: (r) => r.falseFailures, noRatio: true },
  { label: 'machine load average (1 min)', digits: 1, get: (r) => r.load1, noRatio: true },
];

/** The comparison table: one block per N, kodama/serf ratio per metric. */
export function formatTable(results: KindResult[]): string {
  const lines: string[] = [];
  const sizes = [...new Set(results.map((r) => r.n))];
  const w = [34, 10, 10, 12];
  const row = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(w[0] ?? 0) : c.padStart(w[i] ?? 0))).join(' ');
  for (const n of sizes) {
    const serf = results.find((r) => r.n === n && r.kind === 'serf');
    const kodama = results.find((r) => r.n === n && r.kind === 'kodama');
    const runs = Math.max(serf?.failure?.lastsMs.length ?? 0, kodama?.failure?.lastsMs.length ?? 0);
    lines.push(`N = ${n} agents on 127.0.0.1, profile lan, ${cpus().length} cores; ${runs} user event(s) and kill(s) per kind, last node = median over them`);
    lines.push(row(['metric', 'serf', 'kodama', 'kodama/serf']));
    for (const m of METRICS) {
      const s = serf ? m.get(serf) : undefined;
      const k = kodama ? m.get(kodama) : undefined;
      const ratio = m.noRatio === true ? '' : s !== undefined && k !== undefined && s > 0 ? `${(k / s).toFixed(2)}×` : 'n/a';
      lines.push(row([m.label, num(s, m.digits), num(k, m.digits), ratio]));
    }
    for (const r of [serf, kodama]) {
      if (r === undefined) continue;
      const reach = [
        r.userEvent && r.userEvent.reached < r.userEvent.expected ? `user event reached only ${r.userEvent.reached}/${r.userEvent.expected}` : '',
        r.failure && r.failure.reached < r.failure.expected ? `member-failed ran on only ${r.failure.reached}/${r.failure.expected}` : '',
      ].filter((x) => x !== '');
      for (const note of [...r.notes, ...reach]) lines.push(`  ${r.kind}: ${note}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
