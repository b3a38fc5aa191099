// Cluster-wide reads behind /v1/services, /v1/checks and /v1/deploys: Serf queries to the nodes
// that can answer, cached for a moment and shared while in flight, so ten open dashboards do not
// multiply the queries. Who should have answered and did not is listed in `missing`.

import type { HttpHost } from './host.ts';
import type { Member } from '../serf/serf.ts';
import { decodeServiceTags } from '../discovery/advertise.ts';
import { decodeBalancerReport } from '../discovery/backends-report.ts';
import { BACKENDS_QUERY, BALANCER_TAG } from '../deploy/types.ts';
import type { BalancerReport, RouteEntry } from '../deploy/types.ts';
import { CHECKS_QUERY, MONITOR_TAG, SILENCES_QUERY, SUMMARY_TAG } from '../checks/types.ts';
import type { ChecksReport, Silence } from '../checks/types.ts';
import { parseReport } from '../cli/checks.ts';
import { mergeSilences, parseSilences } from '../cli/silence.ts';
import { decodeDeploySummary } from './deploys-query.ts';
import { DEPLOYS_QUERY } from './types.ts';
import type { ChecksResponse, DeploySummary, DeploysResponse, ServicesResponse } from './types.ts';
import { METRICS_QUERY } from '../metrics/protocol.ts';
import { buildMetricsReport, metricsRequest } from '../metrics/report.ts';
import type { MetricsReport } from '../metrics/report.ts';

export interface ClusterReadsOptions {
  /** How long an answer is reused (default 1500 ms). */
  cacheMs?: number;
  /** Deadline of one read (default 1500 ms). */
  timeoutMs?: number;
  /** Nodes still silent are asked again this often (gossip misses one now and then). */
  resendAfterMs?: number;
}

const MAX_ROUNDS = 3;
const LATE = Symbol('late');

function performanceKey(sinceS: number, role: string | undefined): string {
  return `performance:${sinceS}:${role ?? ''}`;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export class ClusterReads {
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly resendAfterMs: number;
  private readonly cache = new Map<string, { at: number; value: Promise<unknown> }>();
  private readonly counts = { reads_cached: 0, reads_queried: 0, read_queries: 0, bad_answers: 0 };
  /** Per read under way (its cache key): its answer from what has come in so far (within()). */
  private readonly partial = new Map<string, () => unknown>();

  constructor(
    private readonly agent: HttpHost,
    opts: ClusterReadsOptions = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 1500;
    this.timeoutMs = opts.timeoutMs ?? 1500;
    this.resendAfterMs = opts.resendAfterMs ?? 500;
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  services(): Promise<ServicesResponse> {
    return this.cached('services', () => this.readServices());
  }

  checks(): Promise<ChecksResponse> {
    return this.cached('checks', () => this.readChecks());
  }

  /**
   * The last `sinceS` seconds of every alive member's figures (of `role` only, when given),
   * by role: /v1/performance. Members with sampling off and serf agents are listed as silent.
   */
  performance(sinceS: number, role: string | undefined): Promise<MetricsReport> {
    const key = performanceKey(sinceS, role);
    return this.cached(key, async () => {
      const members = this.agent.members().filter((m) => m.status === 'alive' && (role === undefined || m.tags['role'] === role));
      const { grid, payload } = metricsRequest(Date.now() / 1000, sinceS);
      const answers = new Map<string, Uint8Array>();
      const report = (): MetricsReport => buildMetricsReport(members, new Map([...answers].map(([n, p]) => [n, Buffer.from(p).toString('utf8')])), grid);
      this.partial.set(key, report);
      await this.ask(METRICS_QUERY, payload, members.map((m) => m.name).sort(), undefined, answers);
      return report();
    });
  }

  async deploys(): Promise<DeploysResponse> {
    const runner = this.agent.deploys;
    const elsewhere = await this.cached('deploys', () => this.readDeploysElsewhere());
    return {
      current: runner?.current() ?? null,
      history: runner?.history() ?? [],
      routes: this.routes(),
      elsewhere,
    };
  }

  /**
   * deploys() for a first look (GET /v1/snapshot): anyone may coordinate, so the full read of
   * other coordinators waits its whole deadline for answers that may never come; here those in
   * after `waitMs` are given (coordinators answer within milliseconds on a LAN).
   */
  async deploysWithin(waitMs: number): Promise<DeploysResponse> {
    const runner = this.agent.deploys;
    const elsewhere = await this.within('deploys', this.cached('deploys', () => this.readDeploysElsewhere()), waitMs);
    return { current: runner?.current() ?? null, history: runner?.history() ?? [], routes: this.routes(), elsewhere };
  }

  /**
   * performance() for a first look: members that do not sample (serf agents, -metrics-interval 0)
   * never answer, and the full read waits its deadline for them; here members that have not
   * answered after `waitMs` are listed silent.
   */
  performanceWithin(sinceS: number, role: string | undefined, waitMs: number): Promise<MetricsReport> {
    return this.within(performanceKey(sinceS, role), this.performance(sinceS, role), waitMs);
  }

  /**
   * A cached read, but after `waitMs` what has come in by then (its partial builder); the read
   * goes on, and its complete answer is cached for its own endpoint.
   */
  private async within<T>(key: string, full: Promise<T>, waitMs: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof LATE>((resolve) => {
      timer = setTimeout(() => resolve(LATE), waitMs);
    });
    const first = await Promise.race([full, late]).finally(() => clearTimeout(timer));
    if (first !== LATE) return first;
    const soFar = this.partial.get(key);
    return soFar !== undefined ? (soFar() as T) : full;
  }

  private routes(): RouteEntry[] {
    return this.agent.routes.all().sort((a, b) => (a.service < b.service ? -1 : 1));
  }

  /** One read per key at a time; its answer is reused for cacheMs after it completed. */
  private cached<T>(key: string, read: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit !== undefined && (hit.at === Infinity || Date.now() - hit.at < this.cacheMs)) {
      this.counts.reads_cached++;
      return hit.value as Promise<T>;
    }
    this.counts.reads_queried++;
    const entry = { at: Infinity, value: Promise.resolve() as Promise<unknown> };
    const value = read().finally(() => {
      entry.at = Date.now();
    });
    entry.value = value;
    this.cache.set(key, entry);
    // A failed read is not reused.
    value.catch(() => this.cache.delete(key));
    return value;
  }

  private alive(filter: (m: Member) => boolean): string[] {
    return this.agent
      .members()
      .filter((m) => m.status === 'alive' && filter(m))
      .map((m) => m.name)
      .sort();
  }

  /**
   * Ask `expected` (by name) the query; those still silent are asked again every resendAfterMs
   * (bounded rounds). Resolves as soon as all answered, else at the deadline. With `expected`
   * null anyone may answer and the whole deadline is waited.
   */
  private ask(
    name: string,
    payload: Uint8Array,
    expected: string[] | null,
    filterTags?: Record<string, string>,
    answers = new Map<string, Uint8Array>(),
  ): Promise<Map<string, Uint8Array>> {
    if (expected !== null && expected.length === 0) return Promise.resolve(answers);
    const deadline = Date.now() + this.timeoutMs;
    return new Promise((resolve) => {
      let done = false;
      let rounds = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(answers);
      };
      const launch = (nodes: string[] | null): void => {
        const left = deadline - Date.now();
        if (done || left < 100) return;
        rounds++;
        this.counts.read_queries++;
        this.agent
          .query({
            name,
            payload,
            ...(nodes !== null ? { filterNodes: nodes } : {}),
            ...(filterTags !== undefined ? { filterTags } : {}),
            timeoutMs: left,
            onResponse: (from, p) => {
              if (!answers.has(from)) answers.set(from, p);
              if (expected !== null && expected.every((n) => answers.has(n))) finish();
            },
          })
          .then(
            () => {
              if (Date.now() >= deadline - 20) finish();
            },
            () => finish(),
          );
      };
      const resend = (): void => {
        timer = setTimeout(() => {
          if (done) return;
          if (Date.now() >= deadline) return finish();
          if (expected !== null && rounds < MAX_ROUNDS) {
            const silent = expected.filter((n) => !answers.has(n));
            if (silent.length > 0) launch(silent);
          }
          resend();
        }, Math.min(this.resendAfterMs, Math.max(10, deadline - Date.now())));
        timer.unref();
      };
      launch(expected);
      resend();
    });
  }

  private async readServices(): Promise<ServicesResponse> {
    const members = this.agent.members();
    const balancers = this.alive((m) => (m.tags[BALANCER_TAG] ?? '') !== '');
    const answers = await this.ask(BACKENDS_QUERY, new Uint8Array(0), balancers);
    const reports: BalancerReport[] = [];
    for (const [from, p] of answers) {
      const r = decodeBalancerReport(p);
      if (r === undefined || r.node !== from) this.counts.bad_answers++;
      else reports.push(r);
    }
    reports.sort((a, b) => (a.node < b.node ? -1 : 1));
    const out = new Map<string, ServicesResponse['services'][number]>();
    const entry = (name: string): ServicesResponse['services'][number] => {
      let e = out.get(name);
      if (e === undefined) {
        e = { name, nodes: [], balancers: [], route: this.agent.routes.get(name) ?? null };
        out.set(name, e);
      }
      return e;
    };
    for (const m of [...members].sort(byName)) {
      if (m.status !== 'alive') continue;
      for (const s of decodeServiceTags(m.tags).services) {
        entry(s.name).nodes.push({ node: m.name, addr: m.addr.ip, port: s.port, weight: s.weight, draining: s.draining });
      }
    }
    for (const r of reports) {
      for (const [name, s] of Object.entries(r.services)) {
        entry(name).balancers.push({ node: r.node, driver: r.driver, routeLTime: s.routeLTime, backends: s.backends });
      }
    }
    for (const r of this.agent.routes.all()) entry(r.service);
    return { services: [...out.values()].sort(byName), missing: balancers.filter((n) => !answers.has(n)) };
  }

  private async readChecks(): Promise<ChecksResponse> {
    // Only nodes that run checks publish `chk`, and only they answer kodama-checks.
    const checked = this.alive((m) => m.tags[SUMMARY_TAG] !== undefined);
    const monitors = this.alive((m) => m.tags[MONITOR_TAG] === '1');
    const [reports, silenceAnswers] = await Promise.all([
      this.ask(CHECKS_QUERY, new Uint8Array(0), checked),
      this.ask(SILENCES_QUERY, new Uint8Array(0), monitors, { [MONITOR_TAG]: '^1$' }),
    ]);
    const nodes: ChecksReport[] = [];
    for (const [from, p] of reports) {
      const r = parseReport(Buffer.from(p).toString('utf8'));
      if (r === undefined || r.node !== from) this.counts.bad_answers++;
      else nodes.push(r);
    }
    nodes.sort((a, b) => (a.node < b.node ? -1 : 1));
    const lists: Silence[][] = [];
    for (const [, p] of silenceAnswers) {
      const s = parseSilences(Buffer.from(p).toString('utf8'));
      if (s === undefined) this.counts.bad_answers++;
      else lists.push(s.silences);
    }
    const missing = [...new Set([...checked.filter((n) => !reports.has(n)), ...monitors.filter((n) => !silenceAnswers.has(n))])].sort();
    return { nodes, silences: mergeSilences(lists, Date.now()), missing };
  }

  private async readDeploysElsewhere(): Promise<DeploySummary[]> {
    const self = this.agent.nodeName;
    const answers = new Map<string, Uint8Array>();
    this.partial.set('deploys', () => this.decodeElsewhere(answers, false));
    const others = this.alive((m) => m.name !== self);
    if (others.length === 0) return [];
    // Anyone may coordinate: no way to know who will answer, so the whole deadline is waited.
    await this.ask(DEPLOYS_QUERY, new Uint8Array(0), null, undefined, answers);
    return this.decodeElsewhere(answers, true);
  }

  /** Other coordinators' answers as summaries, newest first; `count`: bad answers are counted (once, by the full read). */
  private decodeElsewhere(answers: ReadonlyMap<string, Uint8Array>, count: boolean): DeploySummary[] {
    const self = this.agent.nodeName;
    const out: DeploySummary[] = [];
    for (const [from, p] of answers) {
      if (from === self) continue;
      const d = decodeDeploySummary(p);
      if (d === undefined) {
        if (count) this.counts.bad_answers++;
      } else out.push(d);
    }
    return out.sort((a, b) => b.updatedAt - a.updatedAt);
  }
}
