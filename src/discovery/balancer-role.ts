// The load-balancer role of an agent: keeps one frontend per balanced service pointed at that
// service's backends as the cluster gossips them. The pure decisions live in backends.ts; this
// file adds the clock and the I/O around them:
//   - member events are coalesced for COALESCE_MS (a join of ten nodes is one apply, and a
//     newly healthy backend is still applied well within a second of its tag arriving);
//   - while any backend drains, the driver's stats are polled every DRAIN_POLL_MS, so a drained
//     backend leaves as soon as it is idle (or at its drain timeout);
//   - every change is logged ("balancer: web: + web-2 127.0.0.1:8082 ready"), the driver gets
//     the whole desired set (only when it differs from what it has), templates re-render;
//   - a periodic resync re-applies anything a failed apply left behind;
//   - routes (issue 6): each plan uses the service's current route (agent.routes), a 'route'
//     event re-plans at once, and the role remembers the route ltime it last *applied* per
//     service (the driver has those weights/states) — what `kodama-backends` reports, so a
//     deploy knows when every balancer switched. Route changes are weight/state changes only:
//     the HAProxy driver does them through the runtime API, never a reload;
//   - a (re)started balancer knows no route until its agent synced the table from peers (Serf
//     does not replay old events): once it has a peer, it changes nothing it serves until then
//     rather than serve every healthy backend — serving blue and green while the cluster says
//     green 100 would be a mixture no route asked for. It waits for the sync (or a route event),
//     bounded by ROUTE_SYNC_WAIT_MS from its first peer. A balancer with no peer (started first,
//     or a one-node cluster) has no one to learn a route from: it serves what it sees (at most its
//     own backends) at once, says nothing, and holds from its first peer on (a join it makes
//     after its start brings the cluster's members and route sync together).
// One cycle runs at a time; events during a cycle schedule one more.

import type { AgentHost, AgentQuery } from '../agent/host.ts';
import { createEmbeddedBalancer } from '../balancer/embedded/index.ts';
import { createHaproxyBalancer } from '../balancer/haproxy/index.ts';
import { BACKENDS_QUERY } from '../deploy/types.ts';
import type { BackendReport, BalancerReport, RouteEntry, ServiceReport } from '../deploy/types.ts';
import { decodeMembers, drainingIds, planService } from './backends.ts';
import { encodeBalancerReport } from './backends-report.ts';
import type { BackendChange, TrackedBackend } from './backends.ts';
import { startTemplates, templateBackend } from './templates.ts';
import type { TemplateRunner } from './templates.ts';
import type { Backend, BalancedServiceSpec, Balancer, BalancerSpec, Frontend } from './types.ts';

export interface BalancerRole {
  status(): { service: string; frontend: Frontend; backends: Backend[] }[];
  /** The driver's counters + the role's (applies, guard_holds, drains_idle, drains_timeout, …). */
  counters(): Record<string, number>;
  readonly driver: Balancer;
  /** Each service's backends as served now, with live figures and the applied route ltime. */
  report(): Promise<BalancerReport>;
  stop(): Promise<void>;
}

/** What the role reads of the agent beyond the AgentHost: the route table (the Agent has it). */
export interface BalancerHost extends AgentHost {
  readonly routes: { get(service: string): RouteEntry | undefined; all(): RouteEntry[] };
  /** The agent's route sync: 'idle' before the first join, then 'running', 'synced' or 'gave-up'. */
  readonly routeSyncStatus: string;
}

export interface BalancerRoleOptions {
  /** Use this driver instead of creating the one spec.driver names (tests). */
  driver?: Balancer;
  coalesceMs?: number;
  drainPollMs?: number;
  resyncMs?: number;
  /** Longest wait for the agent's route sync, from the first peer, before serving without a route (default 3 s). */
  routeSyncWaitMs?: number;
  /** Serf's query response limit of the agent (default 1024, as serf's). */
  queryResponseSizeLimit?: number;
}

/** Room the response message needs besides our payload (header, query id, our name's bytes added). */
const RESPONSE_OVERHEAD_BYTES = 64;

function describeRoute(r: RouteEntry | undefined): string {
  if (r === undefined) return 'none';
  const w = Object.entries(r.weights);
  const split = w.length === 0 ? 'every backend' : w.map(([v, p]) => `${r.tag}=${v} ${p}%`).join(', ');
  return `${split} (ltime ${r.ltime}, by ${r.by})`;
}

/** `{service?: string}`; anything else → undefined (answered with every service). */
/** At most this many ids in a filter (a query is ≤ 1024 bytes anyway). */
const MAX_FILTER_IDS = 128;

/**
 * The `kodama-backends` query's filter: {} (everything), {service}, and optionally {ids}: only
 * those backends — so a caller watching a few nodes (a rolling batch) gets them even when the
 * whole set would not fit one answer. undefined = unreadable (answered with everything).
 */
function queriedService(payload: Uint8Array): { service?: string; ids?: Set<string> } | undefined {
  const text = new TextDecoder().decode(payload).trim();
  if (text === '' || text === 'null') return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    const { service: s, ids } = v as { service?: unknown; ids?: unknown };
    if (s !== undefined && typeof s !== 'string') return undefined;
    if (ids !== undefined && (!Array.isArray(ids) || ids.length > MAX_FILTER_IDS || !ids.every((x) => typeof x === 'string'))) return undefined;
    return { ...(s !== undefined ? { service: s } : {}), ...(ids !== undefined ? { ids: new Set(ids as string[]) } : {}) };
  } catch {
    return undefined;
  }
}

const COALESCE_MS = 20;
const DRAIN_POLL_MS = 200;
/** Re-apply the desired sets now and then: heals a failed apply without waiting for an event. */
const RESYNC_MS = 5_000;
/**
 * Bound on the wait for the route sync, from the first peer seen. Kodama peers answer within a
 * query round trip; a cluster of serf agents only (nobody answers) must not wait for the sync's
 * last round before serving. A lone node does not wait at all (see the header).
 */
const ROUTE_SYNC_WAIT_MS = 3_000;
const ROUTE_SYNC_POLL_MS = 50;

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERR';

function sameBackends(a: readonly Backend[], b: readonly Backend[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    return y !== undefined && x.id === y.id && x.host === y.host && x.port === y.port && x.weight === y.weight && x.state === y.state;
  });
}

function describe(service: string, c: BackendChange): { level: Level; msg: string } {
  const b = c.backend;
  const where = `${b.host}:${b.port}`;
  const p = `balancer: ${service}:`;
  switch (c.kind) {
    case 'added':
      return { level: 'INFO', msg: `${p} + ${b.id} ${where} ready` };
    case 'ready':
      return { level: 'INFO', msg: `${p} ${b.id} ${where} ready again` };
    case 'drain':
      return { level: 'INFO', msg: `${p} ${b.id} ${where} drain` };
    case 'updated':
      return { level: 'INFO', msg: `${p} ${b.id} updated ${c.before.host}:${c.before.port} w${c.before.weight} → ${where} w${b.weight}` };
    case 'held':
      return { level: 'WARN', msg: `${p} ${b.id} ${where} ${c.why} but kept (min_backends guard)` };
    case 'removed':
      return { level: c.reason === 'idle' ? 'INFO' : 'WARN', msg: `${p} - ${b.id} ${where} removed (${c.reason})` };
  }
}

export async function startBalancerRole(agent: BalancerHost, spec: BalancerSpec, opts: BalancerRoleOptions = {}): Promise<BalancerRole> {
  const log = (level: Level, msg: string): void => agent.logger.log(level, msg);
  const coalesceMs = opts.coalesceMs ?? COALESCE_MS;
  const drainPollMs = opts.drainPollMs ?? DRAIN_POLL_MS;
  const resyncMs = opts.resyncMs ?? RESYNC_MS;
  const driver: Balancer =
    opts.driver ??
    (spec.driver === 'haproxy' ? createHaproxyBalancer({ ...spec.haproxy, log }) : createEmbeddedBalancer({ log }));

  const services = spec.services.map((s: BalancedServiceSpec) => ({
    spec: s,
    frontend: { service: s.service, mode: s.mode, bind: { ...s.bind } } satisfies Frontend,
    state: new Map<string, TrackedBackend>(),
    /** What the driver was last given successfully (undefined = nothing yet, or the last apply failed). */
    applied: undefined as Backend[] | undefined,
    guard: undefined as string | undefined,
    /** Ltime of the route the driver serves now (0 = none applied yet). */
    routeLTime: 0,
    /** The route last planned with (to log a change once). */
    route: undefined as RouteEntry | undefined,
  }));
  /** Some service weighs backends by round trip: estimates are read per plan, and the resync re-plans as they move. */
  const preferNear = spec.services.some((s) => s.preferNear === true);
  const count = {
    applies: 0,
    apply_errors: 0,
    stats_errors: 0,
    backends_added: 0,
    drains_started: 0,
    drains_idle: 0,
    drains_timeout: 0,
    removed_failed: 0,
    removed_unhealthy: 0,
    guard_holds: 0,
    invalid_tags: 0,
    route_changes: 0,
    backends_queries: 0,
    bad_backends_queries: 0,
    backends_query_errors: 0,
  };
  const seenInvalid = new Set<string>();
  const templates: TemplateRunner | undefined =
    spec.templates.length > 0 ? startTemplates(spec.templates, { log: (l, m) => log(l, m) }) : undefined;

  await driver.start(services.map((s) => s.frontend));
  log('INFO', `balancer: ${driver.kind} serving ${services.map((s) => `${s.spec.service} on ${s.spec.bind.host}:${s.spec.bind.port} (${s.spec.mode})`).join(', ')}`);

  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let againPoll = false;
  let eventTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let routeWaitTimer: NodeJS.Timeout | undefined;
  const routeSyncWaitMs = opts.routeSyncWaitMs ?? ROUTE_SYNC_WAIT_MS;
  let firstPeerAt: number | undefined;
  let routesKnown = false;
  let sawRoute = false;

  /**
   * Whether this balancer may plan with agent.routes now (see the header): yes once they are
   * known (logged that moment), and while it has never had a peer (nobody to learn a route from).
   * Read in the same cycle as the members it plans with, so no peer's backend is ever planned
   * before the routes are known.
   */
  function routesSettled(): boolean {
    if (routesKnown) return true;
    const now = Date.now();
    const peer = agent.members().some((m) => m.name !== agent.nodeName && m.status === 'alive');
    if (peer) firstPeerAt ??= now;
    const sync = agent.routeSyncStatus;
    let why: string | undefined;
    if (sawRoute) why = 'a route arrived';
    else if (sync === 'synced') why = 'route table synced from peers';
    else if (sync === 'gave-up') why = 'no peer answered the route sync';
    else if (firstPeerAt === undefined) return true; // alone: serve, and hold from the first peer on
    else if (now - firstPeerAt >= routeSyncWaitMs) why = `no route sync within ${routeSyncWaitMs} ms of the first peer`;
    if (why === undefined) return false;
    routesKnown = true;
    const known = agent.routes.all().map((r) => r.service);
    log('INFO', `balancer: serving (${why}; routes known for: ${known.length === 0 ? 'none' : known.join(', ')})`);
    return true;
  }

  async function readSessions(names: readonly string[]): Promise<Map<string, Map<string, number>>> {
    const out = new Map<string, Map<string, number>>();
    await Promise.all(
      names.map(async (name) => {
        try {
          const st = await driver.stats(name);
          out.set(name, new Map(st.map((x) => [x.id, x.activeSessions])));
        } catch (e) {
          count.stats_errors++;
          log('WARN', `balancer: ${name}: cannot read backend stats: ${(e as Error).message}`);
        }
      }),
    );
    return out;
  }

  async function cycle(poll: boolean): Promise<void> {
    if (!routesSettled()) {
      if (routeWaitTimer === undefined && !stopped) {
        routeWaitTimer = setTimeout(() => {
          routeWaitTimer = undefined;
          run(false);
        }, ROUTE_SYNC_POLL_MS);
      }
      return;
    }
    // Stats first (read after the last apply finished, so "0 active" really means idle under
    // the drain state), then one consistent view of the members.
    const sessions = poll ? await readSessions(services.filter((s) => drainingIds(s.state).length > 0).map((s) => s.spec.service)) : new Map<string, Map<string, number>>();
    if (stopped) return;
    const members = decodeMembers(agent.members(), preferNear ? (name) => agent.estimatedRttMs(name) : undefined);
    for (const m of members.values()) {
      for (const key of m.invalid) {
        const sig = `${m.name}\0${key}`;
        if (seenInvalid.has(sig)) continue;
        seenInvalid.add(sig);
        count.invalid_tags++;
        log('WARN', `balancer: ignoring tag ${key} of ${m.name}: cannot read it (expected <port>[,tcp][,w<weight>][,drain])`);
      }
    }
    let changed = false;
    const now = Date.now();
    for (const s of services) {
      const route = agent.routes.get(s.spec.service);
      if (route !== s.route && (route?.ltime !== s.route?.ltime || route?.by !== s.route?.by)) {
        count.route_changes++;
        log('INFO', `balancer: ${s.spec.service}: route ${describeRoute(route)}`);
      }
      s.route = route;
      const plan = planService(s.spec, members, s.state, now, sessions.get(s.spec.service), route);
      s.state = plan.state;
      for (const c of plan.changes) {
        const d = describe(s.spec.service, c);
        log(d.level, d.msg);
        if (c.kind === 'added') count.backends_added++;
        else if (c.kind === 'drain') count.drains_started++;
        else if (c.kind === 'held') count.guard_holds++;
        else if (c.kind === 'removed') {
          if (c.reason === 'idle') count.drains_idle++;
          else if (c.reason === 'drain timeout') count.drains_timeout++;
          else if (c.reason === 'failed') count.removed_failed++;
          else count.removed_unhealthy++;
        }
      }
      if (plan.guard !== s.guard) {
        if (plan.guard !== undefined) log('WARN', `balancer: ${s.spec.service}: ${plan.guard}`);
        else log('INFO', `balancer: ${s.spec.service}: min_backends guard released (enough ready backends again)`);
        s.guard = plan.guard;
      }
      if (s.applied !== undefined && sameBackends(s.applied, plan.backends)) {
        s.routeLTime = route?.ltime ?? 0;
        continue;
      }
      changed = true;
      try {
        await driver.setBackends(s.spec.service, plan.backends);
        s.applied = plan.backends;
        s.routeLTime = route?.ltime ?? 0;
        count.applies++;
      } catch (e) {
        s.applied = undefined;
        count.apply_errors++;
        log('ERR', `balancer: ${s.spec.service}: applying ${plan.backends.length} backend(s) failed: ${(e as Error).message} (retrying)`);
      }
      if (stopped) return;
    }
    if (changed && templates !== undefined) {
      templates.update(
        agent.nodeName,
        services.map((s) => ({ name: s.spec.service, mode: s.spec.mode, bind: { ...s.spec.bind }, backends: [...s.state.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map(templateBackend) })),
      );
    }
  }

  function run(poll: boolean): void {
    if (stopped) return;
    if (running !== undefined) {
      if (poll) againPoll = true;
      else again = true;
      return;
    }
    running = cycle(poll)
      .catch((e: unknown) => log('ERR', `balancer: ${(e as Error).stack ?? String(e)}`))
      .finally(() => {
        running = undefined;
        if (stopped) return;
        if (again || againPoll) {
          const p = againPoll;
          again = againPoll = false;
          run(p);
          return;
        }
        armPoll();
      });
  }

  function armPoll(): void {
    const draining = services.some((s) => drainingIds(s.state).length > 0);
    const failed = services.some((s) => s.applied === undefined);
    if ((!draining && !failed) || pollTimer !== undefined || stopped) return;
    pollTimer = setTimeout(() => {
      pollTimer = undefined;
      run(true);
    }, failed && !draining ? 1000 : drainPollMs);
  }

  const onMember = (): void => {
    if (eventTimer !== undefined || stopped) return;
    eventTimer = setTimeout(() => {
      eventTimer = undefined;
      run(false);
    }, coalesceMs);
  };
  const off = agent.on('member', onMember);
  // A route change is one deliberate setting: plan at once (no coalescing wait).
  const offRoute = agent.on('route', () => {
    sawRoute = true;
    run(false);
  });

  async function report(): Promise<BalancerReport> {
    const out: Record<string, ServiceReport> = Object.create(null) as Record<string, ServiceReport>;
    await Promise.all(
      services.map(async (s) => {
        const routeLTime = s.routeLTime;
        const tracked = [...s.state.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        let figures = new Map<string, { active: number; requests: number; errors: number }>();
        try {
          const st = await driver.stats(s.spec.service);
          figures = new Map(st.map((x) => [x.id, { active: x.activeSessions, requests: x.totalSessions, errors: x.errors }]));
        } catch (e) {
          count.stats_errors++;
          log('WARN', `balancer: ${s.spec.service}: cannot read backend stats for a report: ${(e as Error).message}`);
        }
        const backends: BackendReport[] = tracked.map((b) => {
          const f = figures.get(b.id);
          const r: BackendReport = { id: b.id, state: b.state, weight: b.weight, active: f?.active ?? 0, requests: f?.requests ?? 0, errors: f?.errors ?? 0 };
          if (b.value !== undefined) r.value = b.value;
          return r;
        });
        out[s.spec.service] = { routeLTime, backends };
      }),
    );
    return { node: agent.nodeName, driver: driver.kind, services: out };
  }

  const responseLimit = opts.queryResponseSizeLimit ?? 1024;
  const onQuery = (q: AgentQuery): void => {
    if (q.name !== BACKENDS_QUERY) return;
    count.backends_queries++;
    const filter = queriedService(q.payload);
    if (filter === undefined) count.bad_backends_queries++; // still answered, with every service
    void report()
      .then((r) => {
        if (filter?.service !== undefined) {
          const one = r.services[filter.service];
          r.services = Object.create(null) as Record<string, ServiceReport>;
          if (one !== undefined) r.services[filter.service] = one;
        }
        const ids = filter?.ids;
        if (ids !== undefined) {
          for (const svc of Object.values(r.services)) svc.backends = svc.backends.filter((b) => ids.has(b.id));
        }
        const maxBytes = responseLimit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(agent.nodeName, 'utf8');
        q.respond(encodeBalancerReport(r, maxBytes));
      })
      .catch((e: unknown) => {
        // Too late, already answered, or the agent stopping: the asker re-asks.
        count.backends_query_errors++;
        log('DEBUG', `balancer: could not answer ${BACKENDS_QUERY}: ${(e as Error).message}`);
      });
  };
  const offQuery = agent.on('query', onQuery);
  const offStats = agent.addStats(() => ({ balancer: stats() }));
  const resync = setInterval(() => run(false), resyncMs);
  resync.unref();
  run(false);
  await running;

  /**
   * The `balancer` stats section: driver, per service `backends.<name>` = "2 ready, 1 drain" and
   * `route.<name>` = the route it serves ("ltime 12 blue=0 green=100", or "none"), counters.
   */
  function stats(): Record<string, string> {
    const out: Record<string, string> = { driver: driver.kind };
    for (const s of services) {
      const backends = s.applied ?? [];
      const ready = backends.filter((b) => b.state === 'ready').length;
      out[`backends.${s.spec.service}`] = `${ready} ready, ${backends.length - ready} drain`;
      const r = s.route;
      const split = r !== undefined && r.ltime === s.routeLTime ? Object.entries(r.weights).map(([k, v]) => ` ${k}=${v}`).join('') : '';
      out[`route.${s.spec.service}`] = s.routeLTime === 0 ? 'none' : `ltime ${s.routeLTime}${split}`;
    }
    for (const [k, v] of Object.entries(counters())) out[k] = String(v);
    return out;
  }
  function counters(): Record<string, number> {
    return { ...driver.counters(), ...(templates?.counters() ?? {}), ...count };
  }

  return {
    driver,
    status: () =>
      services.map((s) => ({
        service: s.spec.service,
        frontend: { ...s.frontend, bind: { ...s.frontend.bind } },
        backends: (s.applied ?? []).map((b) => ({ ...b })),
      })),
    counters,
    report,
    async stop() {
      if (stopped) return;
      stopped = true;
      off();
      offRoute();
      offQuery();
      offStats();
      clearInterval(resync);
      if (eventTimer !== undefined) clearTimeout(eventTimer);
      if (pollTimer !== undefined) clearTimeout(pollTimer);
      if (routeWaitTimer !== undefined) clearTimeout(routeWaitTimer);
      await running;
      await templates?.stop();
      await driver.stop();
      log('INFO', 'balancer: stopped');
    },
  };
}
