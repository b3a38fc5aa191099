// The services this node offers, kept honest by their health checks (Nerve's job, over gossip).
//
// The Agent owns one ServiceManager. Every check runs on its own timer: the first run is jittered
// (so a fleet started together does not probe in lockstep), the next starts `intervalMs` after
// the previous one *started*, but never before it finished (no overlapping runs of one check).
// Results feed a pure HealthTracker; on every transition the manager tells the agent, which
// re-applies the `s:*` tags (advertise.ts) and emits its 'service' event.
//
// The manager owns exactly the tag keys `s:<name>` of its services (configured, or found on
// local containers and fed in through reconfigure()), nothing else:
// user tags (config, RPC `tags`, SIGHUP reload) pass through untouched — see mergeServiceTags().

import { runProbe } from '../probes/index.ts';
import type { ProbeResult, ProbeTarget } from '../probes/types.ts';
import { encodeServiceTag, serviceTagKey } from './advertise.ts';
import { HealthTracker } from './health.ts';
import type { CheckSpec, ServiceHealth, ServiceSpec } from './types.ts';

export interface ServiceEvent {
  name: string;
  health: ServiceHealth;
  previous: ServiceHealth;
  /** Date.now() of the transition. */
  at: number;
}

export interface ServiceStatus {
  name: string;
  health: ServiceHealth;
  /** Date.now() when the current health began. */
  since: number;
  lastOutput: string;
}

export interface ServiceManagerOptions {
  services: readonly ServiceSpec[];
  /** Address the checks target (the node's advertised IP: where balancers will connect). */
  host: string;
  log: (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;
  /** Called after each transition; the manager's tags() already reflect it. */
  onTransition: (e: ServiceEvent) => void;
  /** Wall clock for `since`/`at` (tests may inject). */
  nowMs?: () => number;
  /** [0,1) for the start jitter (tests may inject). */
  random?: () => number;
  /** The probe runner (tests may inject). */
  probe?: (check: CheckSpec, target: ProbeTarget) => Promise<ProbeResult>;
}

/** Largest start delay of a check: spreads a fleet's probes without delaying health much. */
const MAX_START_JITTER_MS = 1000;

interface Entry {
  spec: ServiceSpec;
  tracker: HealthTracker;
  timers: (NodeJS.Timeout | undefined)[];
}

/**
 * `userTags` without any key this manager owns, plus the manager's advertised values. Other
 * `s:*` keys (a service configured by hand with `-tag s:x=…`) are the user's and pass through.
 */
export function mergeServiceTags(
  userTags: Record<string, string>,
  managedKeys: readonly string[],
  advertised: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = { ...userTags };
  for (const k of managedKeys) delete out[k];
  return { ...out, ...advertised };
}

export class ServiceManager {
  private entries: Entry[];
  private readonly opts: ServiceManagerOptions;
  private readonly now: () => number;
  private running = false;
  /** Set by setForcedDrain (rolling actions): serving services show `,drain` whatever their health. */
  private forcedDrain = false;
  private readonly counts = {
    checks_run: 0,
    checks_ok: 0,
    checks_warning: 0,
    checks_critical: 0,
    checks_unknown: 0,
    transitions: 0,
    forced_drains: 0,
  };

  constructor(opts: ServiceManagerOptions) {
    this.opts = opts;
    this.now = opts.nowMs ?? Date.now;
    const t0 = this.now();
    // The service specs are validated (parseServiceSpecs or the embedder's own); a tracker per service.
    this.entries = opts.services.map((spec) => ({
      spec,
      tracker: new HealthTracker(spec.checks, t0),
      timers: spec.checks.map(() => undefined),
    }));
  }

  /**
   * A new list of services (a config reload): an unchanged service keeps its health and checks;
   * a removed one stops (its tag goes with the next tags()); a changed one (port, protocol,
   * weight, checks) starts over as new, advertised again once its checks pass. Returns the names
   * by fate; the caller re-gossips tags() (and owns managedKeys() first).
   */
  reconfigure(services: readonly ServiceSpec[]): { added: string[]; removed: string[]; changed: string[] } {
    const out = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
    const old = new Map(this.entries.map((e) => [e.spec.name, e]));
    const t0 = this.now();
    const next: Entry[] = [];
    for (const spec of services) {
      const e = old.get(spec.name);
      old.delete(spec.name);
      if (e !== undefined && JSON.stringify(e.spec) === JSON.stringify(spec)) {
        next.push(e);
        continue;
      }
      if (e !== undefined) this.cancelEntry(e);
      (e === undefined ? out.added : out.changed).push(spec.name);
      const fresh: Entry = { spec, tracker: new HealthTracker(spec.checks, t0), timers: spec.checks.map(() => undefined) };
      next.push(fresh);
    }
    for (const e of old.values()) {
      this.cancelEntry(e);
      out.removed.push(e.spec.name);
    }
    this.entries = next;
    if (this.running) {
      const random = this.opts.random ?? Math.random;
      for (const e of next) {
        if (!out.added.includes(e.spec.name) && !out.changed.includes(e.spec.name)) continue;
        if (e.spec.checks.length === 0) this.opts.log('INFO', `services: ${e.spec.name} is healthy (no checks)`);
        e.spec.checks.forEach((check, i) => this.schedule(e, i, Math.floor(random() * Math.min(check.intervalMs, MAX_START_JITTER_MS))));
      }
    }
    return out;
  }

  /** Tag keys this manager owns (every configured service, advertised or not). */
  managedKeys(): string[] {
    return this.entries.map((e) => serviceTagKey(e.spec.name));
  }

  /**
   * The `s:*` tags to gossip now: healthy services, and draining ones that were serving. Under a
   * forced drain every advertised service carries `,drain` (an unhealthy one stays out, as ever).
   */
  tags(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.entries) {
      const adv = e.tracker.advertisement();
      if (adv === 'none') continue;
      out[serviceTagKey(e.spec.name)] = encodeServiceTag({
        port: e.spec.port,
        protocol: e.spec.protocol,
        weight: e.spec.weight,
        draining: adv === 'drain' || this.forcedDrain,
      });
    }
    return out;
  }

  /**
   * Force `,drain` on every advertised service until cleared, whatever the checks say: a rolling
   * action takes the node out of rotation while health still tracks (and a restart it causes
   * cannot put it back early). Checks keep running. Returns whether the flag changed; the caller
   * re-gossips the tags.
   */
  setForcedDrain(on: boolean): boolean {
    if (this.forcedDrain === on) return false;
    this.forcedDrain = on;
    this.counts.forced_drains += on ? 1 : 0;
    this.opts.log('INFO', on ? 'services: draining on request (,drain until undrained)' : 'services: drain request cleared');
    return true;
  }

  get forcedDraining(): boolean {
    return this.forcedDrain;
  }

  status(): ServiceStatus[] {
    return this.entries.map((e) => ({ name: e.spec.name, health: e.tracker.health, since: e.tracker.since, lastOutput: e.tracker.lastOutput }));
  }

  counters(): Record<string, number> {
    const healthy = this.entries.filter((e) => e.tracker.health === 'healthy').length;
    return { ...this.counts, services: this.entries.length, services_healthy: healthy, forced_drain: this.forcedDrain ? 1 : 0 };
  }

  /** Start every check's timer. Services without checks are healthy from construction. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const random = this.opts.random ?? Math.random;
    for (const e of this.entries) {
      if (e.spec.checks.length === 0) this.opts.log('INFO', `services: ${e.spec.name} is healthy (no checks)`);
      e.spec.checks.forEach((check, i) => {
        const jitterMs = Math.floor(random() * Math.min(check.intervalMs, MAX_START_JITTER_MS));
        this.schedule(e, i, jitterMs);
      });
    }
  }

  /**
   * One service to 'draining' (its container is stopping): its checks stop, and it carries
   * `,drain` if it was serving, so balancers finish its requests and send it nothing new. Only a
   * reconfigure without it, then with it, starts it over. False when unknown or already draining.
   */
  withdraw(name: string): boolean {
    const e = this.entries.find((x) => x.spec.name === name);
    if (e === undefined || e.tracker.health === 'draining') return false;
    this.cancelEntry(e);
    this.apply(e, e.tracker.drain(this.now()));
    return true;
  }

  /** Every service to 'draining' (tag `,drain`); checks stop: nothing can bring it back. */
  drain(): void {
    this.cancelTimers();
    for (const e of this.entries) this.apply(e, e.tracker.drain(this.now()));
  }

  /** Cancel the timers; results of probes still in flight are ignored. */
  stop(): void {
    this.running = false;
    this.cancelTimers();
  }

  private cancelTimers(): void {
    for (const e of this.entries) this.cancelEntry(e);
  }

  private cancelEntry(e: Entry): void {
    e.timers.forEach((t, i) => {
      clearTimeout(t);
      e.timers[i] = undefined;
    });
  }

  private schedule(e: Entry, index: number, delayMs: number): void {
    if (!this.running || e.tracker.health === 'draining') return;
    const t = setTimeout(() => void this.runCheck(e, index), Math.max(0, delayMs));
    t.unref(); // the agent's sockets keep the process alive, not a health check
    e.timers[index] = t;
  }

  private async runCheck(e: Entry, index: number): Promise<void> {
    e.timers[index] = undefined;
    const check = e.spec.checks[index];
    if (check === undefined || !this.running) return;
    const probe = this.opts.probe ?? runProbe;
    const startedMs = this.now();
    let result: ProbeResult;
    try {
      result = await probe(check, { host: this.opts.host, port: e.spec.port });
    } catch (err) {
      // runProbe never rejects; an injected probe might: that is an unknown result, not a crash.
      result = { status: 3, output: `check failed to run: ${(err as Error).message}`, durationMs: 0 };
    }
    // Stopped, or the service was removed or changed by a reload meanwhile: drop the result.
    if (!this.running || !this.entries.includes(e)) return;
    this.counts.checks_run++;
    const kind = (['checks_ok', 'checks_warning', 'checks_critical', 'checks_unknown'] as const)[result.status];
    this.counts[kind]++;
    this.apply(e, e.tracker.record(index, result, this.now()));
    const elapsedMs = this.now() - startedMs;
    this.schedule(e, index, check.intervalMs - elapsedMs);
  }

  private apply(e: Entry, t: { health: ServiceHealth; previous: ServiceHealth; output: string } | undefined): void {
    if (t === undefined) return;
    this.counts.transitions++;
    const name = e.spec.name;
    if (t.health === 'unhealthy') this.opts.log('WARN', `services: ${name} is unhealthy: ${t.output}`);
    else this.opts.log('INFO', `services: ${name} is ${t.health}`);
    this.opts.onTransition({ name, health: t.health, previous: t.previous, at: this.now() });
  }
}
