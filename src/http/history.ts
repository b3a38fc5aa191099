// The last 15 minutes, for the dashboard's plots (GET /v1/history): every step (10 s) this node
// samples the figures /metrics shows and keeps a bounded ring of points:
//   members   by status, as this node sees them;
//   gossip    probe failures, suspicions and refutations per second over the step (this node's);
//   checks    per role, how many nodes are passing / warning / critical / unknown (their `chk` tags);
//   backends  per balancer, requests and errors per second of each backend (the balancers'
//             reports, the same cluster-wide read as /v1/services, shared through its cache).
// Nothing extra is gossiped; a node without the HTTP API keeps none of it. Rates need two samples:
// the first point has none (null).

import { decodeSummary } from '../checks/summary.ts';
import { SUMMARY_TAG } from '../checks/types.ts';
import type { Member } from '../serf/serf.ts';
import type { HistoryPoint, HistoryResponse, ServicesResponse } from './types.ts';

export const HISTORY_STEP_MS = 10_000;
export const HISTORY_WINDOW_MS = 15 * 60_000;
const STATUSES = ['alive', 'leaving', 'left', 'failed'] as const;
const CHECK_STATES = ['passing', 'warning', 'critical', 'unknown'] as const;

export interface HistorySource {
  members(): Member[];
  /** Cumulative counters: the `memberlist` section of stats. */
  gossipCounters(): { probeFailures: number; suspicions: number; refutations: number };
  /** The balancers' reports, when any member is a balancer (undefined: none, no query sent). */
  services(): Promise<ServicesResponse | undefined>;
}

export interface HistoryOptions {
  stepMs?: number;
  windowMs?: number;
  now?: () => number;
}

interface Totals {
  t: number;
  gossip: { probeFailures: number; suspicions: number; refutations: number };
  backends: Map<string, { requests: number; errors: number }>;
}

/** Nodes per role by their worst check state (a node with no `chk` tag is not counted). */
export function checksByRole(members: readonly Member[]): HistoryPoint['checks'] {
  const out: HistoryPoint['checks'] = {};
  for (const m of members) {
    if (m.status !== 'alive') continue;
    const tag = m.tags[SUMMARY_TAG];
    if (tag === undefined) continue;
    const sum = decodeSummary(tag);
    if (sum === undefined) continue;
    const worst = sum.entries.reduce<number>((w, e) => (e.status === 0 ? w : Math.max(w, e.status === 3 ? 1.5 : e.status)), 0);
    const state = worst === 0 ? 'passing' : worst === 1 ? 'warning' : worst === 2 ? 'critical' : 'unknown';
    const role = m.tags['role'] ?? '';
    const row = (out[role] ??= Object.fromEntries(CHECK_STATES.map((s) => [s, 0])) as Record<(typeof CHECK_STATES)[number], number>);
    row[state]++;
  }
  return out;
}

export class History {
  private readonly points: HistoryPoint[] = [];
  private readonly stepMs: number;
  private readonly max: number;
  private readonly now: () => number;
  private last: Totals | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(
    private readonly source: HistorySource,
    opts: HistoryOptions = {},
  ) {
    this.stepMs = opts.stepMs ?? HISTORY_STEP_MS;
    this.max = Math.max(2, Math.ceil((opts.windowMs ?? HISTORY_WINDOW_MS) / this.stepMs));
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.stepMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  response(): HistoryResponse {
    return { stepMs: this.stepMs, windowMs: this.max * this.stepMs, points: [...this.points] };
  }

  /** One point now (a sample still in flight: skipped, the next step catches up). */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const t = this.now();
      const members = this.source.members();
      const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as HistoryPoint['members'];
      for (const m of members) if (m.status in byStatus) byStatus[m.status as keyof typeof byStatus]++;
      const gossip = this.source.gossipCounters();
      let services: ServicesResponse | undefined;
      try {
        services = await this.source.services();
      } catch {
        services = undefined; // a failed read: no backend figures this step
      }
      const backends = new Map<string, { requests: number; errors: number }>();
      for (const svc of services?.services ?? []) {
        for (const b of svc.balancers) {
          for (const be of b.backends) backends.set(`${b.node}\u0000${svc.name}\u0000${be.id}`, { requests: be.requests, errors: be.errors });
        }
      }
      const prev = this.last;
      const secs = prev === undefined ? 0 : (t - prev.t) / 1000;
      const rate = (now: number, before: number | undefined): number =>
        // A counter that went back (a restarted balancer) counts from zero.
        before === undefined || secs <= 0 ? 0 : round((now >= before ? now - before : now) / secs);
      const point: HistoryPoint = {
        t,
        members: byStatus,
        gossip:
          prev === undefined
            ? null
            : {
                probe_failures: rate(gossip.probeFailures, prev.gossip.probeFailures),
                suspicions: rate(gossip.suspicions, prev.gossip.suspicions),
                refutations: rate(gossip.refutations, prev.gossip.refutations),
              },
        checks: checksByRole(members),
        backends: null,
      };
      if (prev !== undefined && services !== undefined) {
        const out: NonNullable<HistoryPoint['backends']> = {};
        for (const [key, v] of backends) {
          const [node, service, id] = key.split('\u0000') as [string, string, string];
          const before = prev.backends.get(key);
          const row = (out[node] ??= {});
          // A backend new since the last step has no rate yet.
          if (before !== undefined) row[`${service}/${id}`] = { requests: rate(v.requests, before.requests), errors: rate(v.errors, before.errors) };
        }
        point.backends = out;
      }
      this.last = { t, gossip, backends };
      this.points.push(point);
      if (this.points.length > this.max) this.points.splice(0, this.points.length - this.max);
    } finally {
      this.sampling = false;
    }
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
