// The checks this node runs: the ones whose subscriptions match its current tags.
//
// The Agent owns one CheckRunner and tells it the node's tags (setTags) at start and on every
// tag change: a role change starts and stops checks, and a stopped check's record goes away (its
// state is no longer this node's business, so the `chk` summary stops listing it).
// Scheduling follows the service checks (src/discovery/services.ts): a jittered first run so a
// fleet started together does not probe in lockstep, the next run `intervalMs` after the previous
// one *started*, but never before it finished (no overlapping runs of one check).
// TTL checks have no probe: a pushed result (pushResult, `kodama check-result`) re-arms their
// deadline; when it passes, the runner records `ttlStatus` with "TTL expired: no result for N s",
// and again every ttl while nothing comes (so occurrences count up, as a failing probe's would).
// Any check may also receive pushed (passive) results.

import { runProbe } from '../probes/index.ts';
import type { ProbeResult, ProbeSpec, ProbeTarget } from '../probes/types.ts';
import { clipOutput } from '../probes/types.ts';
import { subscriptionMatches } from './config.ts';
import { recordResult } from './history.ts';
import { encodeSummary, summarize } from './summary.ts';
import { STATE_OF } from './types.ts';
import type { CheckRecord, CheckResult, CheckStatus, MonitorCheckSpec } from './types.ts';

export interface CheckResultEvent {
  spec: MonitorCheckSpec;
  record: CheckRecord;
  /** The record before this result (undefined for a check's first result). */
  previous: CheckRecord | undefined;
}

export interface CheckRunnerOptions {
  checks: readonly MonitorCheckSpec[];
  log: (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;
  /** After every recorded result (summary() already reflects it). */
  onResult: (e: CheckResultEvent) => void;
  /** After the set of running checks changed (a check started or stopped): the summary may have. */
  onActiveChange?: () => void;
  /** Wall clock for records (tests may inject). */
  nowMs?: () => number;
  /** [0,1) for the start jitter (tests may inject). */
  random?: () => number;
  /** The probe runner (tests may inject). */
  probe?: (spec: ProbeSpec, target: ProbeTarget) => Promise<ProbeResult>;
  /** Largest first-run delay (default 1 s, never more than the interval). */
  maxStartJitterMs?: number;
}

const DEFAULT_MAX_START_JITTER_MS = 1000;
/** Script checks target this node; KODAMA_CHECK_HOST/PORT say so to the plugin. */
const SELF_TARGET: ProbeTarget = { host: '127.0.0.1', port: 0 };

interface Entry {
  spec: MonitorCheckSpec;
  active: boolean;
  /** Bumped on every start/stop: results of a probe started in an older generation are dropped. */
  generation: number;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  record: CheckRecord | undefined;
}

export class CheckRunner {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: CheckRunnerOptions;
  private readonly now: () => number;
  private started = false;
  private tags: Record<string, string> = {};
  private readonly counts = { runs: 0, timeouts: 0, pushed: 0, ttl_expired: 0, state_changes: 0, started: 0, stopped: 0, dropped_stale: 0 };

  constructor(opts: CheckRunnerOptions) {
    this.opts = opts;
    this.now = opts.nowMs ?? Date.now;
    for (const spec of opts.checks) {
      this.entries.set(spec.name, { spec, active: false, generation: 0, timer: undefined, running: false, record: undefined });
    }
  }

  /** Start with the node's tags: the matching checks begin. */
  start(tags: Record<string, string>): void {
    this.started = true;
    this.setTags(tags);
  }

  /** The node's tags changed: start the checks that now match, stop those that no longer do. */
  setTags(tags: Record<string, string>): void {
    this.tags = { ...tags };
    if (!this.started) return;
    let changed = false;
    for (const e of this.entries.values()) {
      const want = subscriptionMatches(e.spec.subscriptions, this.tags);
      if (want && !e.active) {
        this.activate(e);
        changed = true;
      } else if (!want && e.active) {
        this.deactivate(e);
        changed = true;
      }
    }
    if (changed) this.opts.onActiveChange?.();
  }

  /**
   * A new list of checks (a config reload): an unchanged check keeps running with its state and
   * history; a removed one stops; a changed one starts over as new. Returns the names by fate.
   */
  reconfigure(checks: readonly MonitorCheckSpec[]): { added: string[]; removed: string[]; changed: string[] } {
    const out = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
    const next = new Map(checks.map((c) => [c.name, c]));
    let activeChanged = false;
    for (const [name, e] of [...this.entries]) {
      const spec = next.get(name);
      if (spec !== undefined && sameJson(spec, e.spec)) continue;
      if (e.active) {
        this.deactivate(e, spec === undefined ? 'removed from the configuration' : 'changed in the configuration');
        activeChanged = true;
      }
      this.entries.delete(name);
      (spec === undefined ? out.removed : out.changed).push(name);
    }
    for (const spec of checks) {
      if (this.entries.has(spec.name)) continue;
      this.entries.set(spec.name, { spec, active: false, generation: 0, timer: undefined, running: false, record: undefined });
      if (!out.changed.includes(spec.name)) out.added.push(spec.name);
    }
    const before = this.counts.started;
    this.setTags(this.tags); // starts the new ones that match (and reports an active change)
    if (activeChanged && this.counts.started === before) this.opts.onActiveChange?.();
    return out;
  }

  /** Stop every check; results still in flight are dropped. */
  stop(): void {
    this.started = false;
    for (const e of this.entries.values()) {
      e.generation++;
      clearTimeout(e.timer);
      e.timer = undefined;
      e.active = false;
    }
  }

  /** Names of the checks running on this node now. */
  activeChecks(): string[] {
    return [...this.entries.values()].filter((e) => e.active).map((e) => e.spec.name);
  }

  /** Records of the running checks that have a result, by name. */
  records(): CheckRecord[] {
    const out: CheckRecord[] = [];
    for (const e of this.entries.values()) if (e.active && e.record !== undefined) out.push(e.record);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The `chk` tag value now. */
  summary(): string {
    return encodeSummary(summarize(this.records()));
  }

  counters(): Record<string, number> {
    const states = { passing: 0, warning: 0, critical: 0, unknown: 0, pending: 0, flapping: 0 };
    let active = 0;
    for (const e of this.entries.values()) {
      if (!e.active) continue;
      active++;
      if (e.record === undefined) states.pending++;
      else {
        states[STATE_OF[e.record.status]]++;
        if (e.record.flapping) states.flapping++;
      }
    }
    return { configured: this.entries.size, active, ...states, ...this.counts };
  }

  /**
   * A pushed result (TTL or passive). Returns undefined when recorded, else why not (the text
   * goes back to whoever pushed it).
   */
  pushResult(check: string, status: CheckStatus, output: string): string | undefined {
    const e = this.entries.get(check);
    if (e === undefined) return `no check named "${check}" on this node (configured: ${[...this.entries.keys()].join(', ') || 'none'})`;
    if (!e.active) return `check "${check}" does not run on this node now (its subscriptions ${JSON.stringify(e.spec.subscriptions)} do not match the node's tags)`;
    if (![0, 1, 2, 3].includes(status)) return `status must be 0, 1, 2 or 3, got ${JSON.stringify(status)}`;
    this.counts.pushed++;
    this.record(e, { status, output: clipOutput(String(output)), at: this.now(), durationMs: 0 });
    if (e.spec.ttlMs !== undefined) this.armTtl(e);
    return undefined;
  }

  private activate(e: Entry): void {
    e.active = true;
    e.generation++;
    e.record = undefined;
    this.counts.started++;
    this.opts.log('INFO', `checks: ${e.spec.name} started (subscriptions ${e.spec.subscriptions.length === 0 ? 'every node' : e.spec.subscriptions.join(', ')})`);
    if (e.spec.probe !== undefined) {
      const maxJitter = Math.min(e.spec.intervalMs, this.opts.maxStartJitterMs ?? DEFAULT_MAX_START_JITTER_MS);
      this.schedule(e, Math.floor((this.opts.random ?? Math.random)() * maxJitter));
    } else if (e.spec.ttlMs !== undefined) {
      this.armTtl(e);
    }
  }

  private deactivate(e: Entry, why = `the node's tags no longer match ${e.spec.subscriptions.join(', ')}`): void {
    e.active = false;
    e.generation++;
    clearTimeout(e.timer);
    e.timer = undefined;
    e.record = undefined;
    this.counts.stopped++;
    this.opts.log('INFO', `checks: ${e.spec.name} stopped (${why})`);
  }

  private schedule(e: Entry, delayMs: number): void {
    const gen = e.generation;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (gen === e.generation) void this.runCheck(e, gen);
    }, Math.max(0, delayMs));
    e.timer.unref(); // the agent's sockets keep the process alive, not a check
  }

  private async runCheck(e: Entry, gen: number): Promise<void> {
    const probeSpec = e.spec.probe;
    if (probeSpec === undefined || e.running) return;
    e.running = true;
    const probe = this.opts.probe ?? runProbe;
    const startedMs = this.now();
    let result: ProbeResult;
    try {
      result = await probe(probeSpec, e.spec.target ?? SELF_TARGET);
    } catch (err) {
      // runProbe never rejects; an injected probe might: an unknown result, not a crash.
      result = { status: 3, output: `check failed to run: ${(err as Error).message}`, durationMs: 0 };
    } finally {
      e.running = false;
    }
    if (gen !== e.generation || !e.active) {
      this.counts.dropped_stale++;
      return;
    }
    this.counts.runs++;
    if (/timed out after/.test(result.output)) this.counts.timeouts++;
    this.record(e, { status: result.status, output: result.output, at: this.now(), durationMs: result.durationMs });
    const elapsedMs = this.now() - startedMs;
    this.schedule(e, e.spec.intervalMs - elapsedMs);
  }

  private armTtl(e: Entry): void {
    const ttlMs = e.spec.ttlMs;
    if (ttlMs === undefined) return;
    const gen = e.generation;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (gen !== e.generation || !e.active) return;
      this.counts.ttl_expired++;
      this.record(e, { status: e.spec.ttlStatus, output: `TTL expired: no result for ${Math.round(ttlMs / 100) / 10} s`, at: this.now(), durationMs: 0 });
      this.armTtl(e);
    }, ttlMs);
    e.timer.unref();
  }

  private record(e: Entry, r: CheckResult): void {
    const previous = e.record;
    const record = recordResult(previous, e.spec.name, r, e.spec);
    e.record = record;
    const name = e.spec.name;
    if (previous === undefined || previous.status !== record.status) {
      this.counts.state_changes++;
      const level = record.status === 0 ? 'INFO' : 'WARN';
      this.opts.log(level, `checks: ${name} is ${STATE_OF[record.status]} (${record.occurrences}x): ${record.output}`);
    }
    if (previous !== undefined && previous.flapping !== record.flapping) {
      this.opts.log('WARN', `checks: ${name} ${record.flapping ? 'started' : 'stopped'} flapping (${record.percentStateChange}% state change)`);
    }
    this.opts.onResult({ spec: e.spec, record, previous });
  }
}

/** Structural equality of two specs as parsed from JSON (plain data, same key order). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
