// Health of one local service from its checks' results: HAProxy/Nerve rise-fall hysteresis.
// Pure: no timers, no clock (time comes in as `now` ms), no I/O — the ServiceManager feeds it.
//
//   per check: 'init' → 'up' after `rise` consecutive passes; 'up'/'init' → 'down' after `fall`
//   consecutive failures; 'down' → 'up' after `rise` consecutive passes again.
//   A pass is status 0 (ok) or 1 (warning: degraded but serving); 2 and 3 are failures.
//
//   service: 'draining' once drain() is called (sticky: the node is leaving);
//            otherwise 'healthy' iff every check is up (no checks: healthy at once),
//            'unhealthy' if any check is down, else 'starting' (not advertised yet).

import type { ProbeStatus } from '../probes/types.ts';
import type { ServiceHealth } from './types.ts';

export type CheckState = 'init' | 'up' | 'down';

export interface CheckHealth {
  state: CheckState;
  /** Length of the current streak of passes (0 while failing). */
  passes: number;
  /** Length of the current streak of failures (0 while passing). */
  failures: number;
  lastStatus: ProbeStatus | undefined;
  lastOutput: string;
}

export interface HealthTransition {
  health: ServiceHealth;
  previous: ServiceHealth;
  /** The result that caused it (empty for drain and for a service without checks). */
  output: string;
}

/** What the node should gossip for the service: ready, drain (was serving, now leaving) or nothing. */
export type Advertisement = 'ready' | 'drain' | 'none';

export class HealthTracker {
  private readonly checks: CheckHealth[];
  private readonly thresholds: readonly { rise: number; fall: number }[];
  private current: ServiceHealth;
  private sinceMs: number;
  private last = '';
  private beforeDrain: ServiceHealth | undefined;

  constructor(checks: readonly { rise: number; fall: number }[], now: number) {
    this.thresholds = checks.map((c) => ({ rise: Math.max(1, c.rise), fall: Math.max(1, c.fall) }));
    this.checks = checks.map(() => ({ state: 'init', passes: 0, failures: 0, lastStatus: undefined, lastOutput: '' }));
    this.current = this.derive();
    this.sinceMs = now;
  }

  get health(): ServiceHealth {
    return this.current;
  }

  /** When the current health began (the `now` of the transition into it). */
  get since(): number {
    return this.sinceMs;
  }

  /** Output of the latest result of any check. */
  get lastOutput(): string {
    return this.last;
  }

  checkStates(): CheckHealth[] {
    return this.checks.map((c) => ({ ...c }));
  }

  advertisement(): Advertisement {
    if (this.current === 'healthy') return 'ready';
    // Only a node that was serving has anything to drain; an unhealthy one stays out.
    if (this.current === 'draining' && this.beforeDrain === 'healthy') return 'drain';
    return 'none';
  }

  /** Feed one result of check `index`; returns the service's transition, if this caused one. */
  record(index: number, result: { status: ProbeStatus; output: string }, now: number): HealthTransition | undefined {
    const c = this.checks[index];
    const t = this.thresholds[index];
    if (c === undefined || t === undefined) return undefined;
    c.lastStatus = result.status;
    c.lastOutput = result.output;
    this.last = result.output;
    if (result.status === 0 || result.status === 1) {
      c.passes++;
      c.failures = 0;
      if (c.state !== 'up' && c.passes >= t.rise) c.state = 'up';
    } else {
      c.failures++;
      c.passes = 0;
      if (c.state !== 'down' && c.failures >= t.fall) c.state = 'down';
    }
    if (this.current === 'draining') return undefined;
    return this.moveTo(this.derive(), result.output, now);
  }

  /** The node is leaving: from now on the service is 'draining', whatever the checks say. */
  drain(now: number): HealthTransition | undefined {
    if (this.current === 'draining') return undefined;
    this.beforeDrain = this.current;
    return this.moveTo('draining', '', now);
  }

  private derive(): ServiceHealth {
    if (this.checks.every((c) => c.state === 'up')) return 'healthy';
    if (this.checks.some((c) => c.state === 'down')) return 'unhealthy';
    return 'starting';
  }

  private moveTo(next: ServiceHealth, output: string, now: number): HealthTransition | undefined {
    if (next === this.current) return undefined;
    const previous = this.current;
    this.current = next;
    this.sinceMs = now;
    return { health: next, previous, output };
  }
}
