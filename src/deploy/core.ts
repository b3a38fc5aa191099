// The blue-green deploy as a pure state machine: observations in (members, balancer reports, the
// service's current route, `now`), actions out (publish a route, persist, log). No timers, no
// I/O: the runner (runner.ts) ticks it, gathers the observations and carries out the actions,
// so every transition is a table test with a virtual clock.
//
// Invariant that makes a crash safe: the only traffic split this machine ever publishes is
// "from 100-x / to x" for a step x, and it only moves on once every balancer reports that
// route's ltime. Whatever moment the coordinator dies at, the cluster's route is one of those
// splits; on restart the runner re-publishes the current one (a fresh ltime) and continues.

import { decodeServiceTags } from '../discovery/advertise.ts';
import { decodeSummary } from '../checks/summary.ts';
import { BALANCER_TAG, DEFAULT_ROUTE_TAG, FINAL_PHASES } from './types.ts';
import type { BalancerReport, DeployEvent, DeployPhase, DeploySpec, DeployState, RouteEntry, RouteSetting } from './types.ts';
import { DeployError } from './errors.ts';

/** One member as the machine needs it (from agent.members()). */
export interface MemberObs {
  name: string;
  status: string;
  tags: Record<string, string>;
}

export interface Observation {
  /** Date.now() */
  now: number;
  members: readonly MemberObs[];
  /** Latest report per balancer node (the runner keeps the newest answer of each). */
  reports: ReadonlyMap<string, BalancerReport>;
  /** The service's current route entry on this agent (agent.routes.get). */
  route: RouteEntry | undefined;
}

export type Action =
  | { kind: 'publish'; setting: RouteSetting }
  | { kind: 'persist' }
  | { kind: 'log'; level: 'INFO' | 'WARN' | 'ERR'; msg: string };

/**
 * Bookkeeping that is not worth persisting: after a restart the machine re-publishes its split
 * and re-measures (health streak, error-rate baseline) from scratch — conservative.
 */
export interface Scratch {
  /** The split to publish (set on entering a phase, on resume). */
  want: RouteSetting | undefined;
  /** A publish is with the runner; wait for published()/publishFailed(). */
  inFlight: boolean;
  /** When publishing failed first (retries are bounded by applyTimeoutMs from here). */
  failingSince: number | undefined;
  /** When the last publish resolved (ltime known): the apply wait runs from here. */
  publishedAt: number | undefined;
  /** Every expected balancer reported our ltime. */
  applied: boolean;
  /** check: since when the new fleet has been complete and healthy. */
  healthySince: number | undefined;
  /** bake: per `<balancer>/<backend id>` the counters at the first report of the bake. */
  baseline: Map<string, { requests: number; errors: number }>;
}

export interface Machine {
  state: DeployState;
  scratch: Scratch;
}

export const MAX_EVENTS = 50;

export const SPEC_DEFAULTS: Omit<DeploySpec, 'service' | 'from' | 'to' | 'expected'> = {
  tag: DEFAULT_ROUTE_TAG,
  checkBakeMs: 10_000,
  checkTimeoutMs: 5 * 60_000,
  steps: [100],
  stepBakeMs: 30_000,
  drainTimeoutMs: 60_000,
  bakeMs: 30_000,
  maxErrorRate: 0.01,
  minRequests: 20,
  applyTimeoutMs: 30_000,
};

export function isFinal(p: DeployPhase): boolean {
  return FINAL_PHASES.includes(p);
}

function freshScratch(): Scratch {
  return { want: undefined, inFlight: false, failingSince: undefined, publishedAt: undefined, applied: false, healthySince: undefined, baseline: new Map() };
}

// ---------------------------------------------------------------- observations

/** A node of colour `value` that serves the service now: alive, advertising it, not draining, no critical check. */
export function isHealthyNode(m: MemberObs, service: string, tag: string, value: string): boolean {
  if (m.status !== 'alive' || m.tags[tag] !== value) return false;
  const svc = decodeServiceTags(m.tags).services.find((s) => s.name === service);
  if (svc === undefined || svc.draining) return false;
  const chk = m.tags['chk'];
  if (chk !== undefined) {
    const summary = decodeSummary(chk);
    if (summary?.entries.some((e) => e.status === 2)) return false;
  }
  return true;
}

export function healthyCount(members: readonly MemberObs[], spec: DeploySpec, value: string): number {
  return members.filter((m) => isHealthyNode(m, spec.service, spec.tag, value)).length;
}

/** Balancer nodes that must apply a route: alive members whose `lb` tag lists the service. */
export function expectedBalancers(members: readonly MemberObs[], service: string): string[] {
  return members
    .filter((m) => m.status === 'alive' && (m.tags[BALANCER_TAG] ?? '').split(',').map((s) => s.trim()).includes(service))
    .map((m) => m.name)
    .sort();
}

/** The expected balancers that have not reported `ltime` (or newer) for the service yet. */
export function notApplied(obs: Observation, service: string, ltime: number): string[] {
  return expectedBalancers(obs.members, service).filter((b) => (obs.reports.get(b)?.services[service]?.routeLTime ?? 0) < ltime);
}

/** A backend's colour: the report's value, else the member's tag (reports without a route carry none). */
function backendValue(b: { id: string; value?: string }, members: readonly MemberObs[], tag: string): string | undefined {
  if (b.value !== undefined) return b.value;
  return members.find((m) => m.name === b.id)?.tags[tag];
}

/** Backends of colour `value` that a balancer still serves (ready) or has work in flight on. */
export function busyBackends(obs: Observation, spec: DeploySpec, value: string): string[] {
  const out: string[] = [];
  for (const [node, r] of obs.reports) {
    for (const b of r.services[spec.service]?.backends ?? []) {
      if (backendValue(b, obs.members, spec.tag) !== value) continue;
      if (b.state === 'ready' || b.active > 0) out.push(`${node}/${b.id}`);
    }
  }
  return out.sort();
}

/** Δrequests / Δerrors of `to` backends over every balancer since the baseline (taken on first sight). */
export function errorWindow(m: Machine, obs: Observation): { requests: number; errors: number } {
  const spec = m.state.spec;
  let requests = 0;
  let errors = 0;
  for (const [node, r] of obs.reports) {
    for (const b of r.services[spec.service]?.backends ?? []) {
      if (backendValue(b, obs.members, spec.tag) !== spec.to) continue;
      const key = `${node}/${b.id}`;
      let base = m.scratch.baseline.get(key);
      if (base === undefined) {
        base = { requests: b.requests, errors: b.errors };
        m.scratch.baseline.set(key, base);
      }
      // Counters going down = the backend was re-added (fresh counters): all of it is new.
      if (b.requests < base.requests || b.errors < base.errors) {
        base = { requests: 0, errors: 0 };
        m.scratch.baseline.set(key, base);
      }
      requests += b.requests - base.requests;
      errors += b.errors - base.errors;
    }
  }
  return { requests, errors };
}

// ---------------------------------------------------------------- construction

export type DeployRequest = Partial<DeploySpec> & { service: string; from: string; to: string };

/** Fill defaults and validate (throws DeployError ERR_DEPLOY_SPEC). `expected` defaults to the healthy `from` count, at least 1. */
export function buildSpec(req: DeployRequest, members: readonly MemberObs[]): DeploySpec {
  const spec: DeploySpec = { ...SPEC_DEFAULTS, ...stripUndefined(req), expected: 0 } as DeploySpec;
  spec.expected = req.expected ?? Math.max(1, healthyCount(members, spec, req.from));
  const bad = (msg: string): never => {
    throw new DeployError('ERR_DEPLOY_SPEC', msg);
  };
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(spec.service)) bad(`invalid service name "${spec.service}"`);
  if (spec.from === '' || spec.to === '') bad('both --from and --to are required');
  if (spec.from === spec.to) bad(`--from and --to are the same colour "${spec.from}"`);
  if (spec.tag === '') bad('--tag must not be empty');
  if (!Number.isInteger(spec.expected) || spec.expected < 1) bad(`--expected must be an integer ≥ 1, got ${spec.expected}`);
  if (spec.steps.length === 0) bad('--steps must list at least one percentage');
  let prev = 0;
  for (const s of spec.steps) {
    if (!Number.isInteger(s) || s <= prev || s > 100) bad(`--steps must be ascending integers in 1..100, got ${spec.steps.join(',')}`);
    prev = s;
  }
  if (spec.steps[spec.steps.length - 1] !== 100) bad(`--steps must end with 100, got ${spec.steps.join(',')}`);
  for (const k of ['checkBakeMs', 'checkTimeoutMs', 'stepBakeMs', 'drainTimeoutMs', 'bakeMs', 'applyTimeoutMs', 'minRequests'] as const) {
    if (!Number.isFinite(spec[k]) || spec[k] < 0) bad(`${k} must be ≥ 0, got ${spec[k]}`);
  }
  if (!(spec.maxErrorRate >= 0 && spec.maxErrorRate <= 1)) bad(`--max-error-rate must be in 0..1, got ${spec.maxErrorRate}`);
  return spec;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function newDeploy(spec: DeploySpec, coordinator: string, now: number): Machine {
  const state: DeployState = {
    id: `d-${coordinator}-${now.toString(36)}`,
    spec,
    coordinator,
    phase: 'prepare',
    step: -1,
    startedAt: now,
    phaseSince: now,
    updatedAt: now,
    routeLTime: 0,
    figures: {},
    events: [],
  };
  const m: Machine = { state, scratch: freshScratch() };
  pushEvent(m, now, `deploy ${spec.service}: ${spec.from} → ${spec.to} (tag ${spec.tag}, expected ${spec.expected}, steps ${spec.steps.join(',')})`);
  m.scratch.want = split(spec, 0);
  return m;
}

/**
 * A persisted, non-final deploy after a restart: re-publish the split its phase stands for (a
 * fresh ltime, so every balancer converges on it whatever it saw last) and restart the phase's
 * measurements. Never jumps ahead: a bake restarts in full.
 */
export function resumeDeploy(state: DeployState, now: number): { machine: Machine; actions: Action[] } {
  const m: Machine = { state: structuredClone(state), scratch: freshScratch() };
  if (isFinal(m.state.phase)) return { machine: m, actions: [] };
  m.state.phaseSince = now;
  m.scratch.want = currentSplit(m.state);
  pushEvent(m, now, `resumed after a restart in phase ${m.state.phase}: re-publishing ${describe(m.scratch.want, m.state.spec)}`);
  return { machine: m, actions: [{ kind: 'log', level: 'WARN', msg: `deploy ${m.state.id}: resumed in phase ${m.state.phase}` }, { kind: 'persist' }] };
}

/** The split a phase stands for. */
function currentSplit(s: DeployState): RouteSetting {
  switch (s.phase) {
    case 'shift':
    case 'drain':
    case 'bake':
      return split(s.spec, s.spec.steps[s.step] ?? 0);
    default:
      return split(s.spec, 0);
  }
}

function split(spec: DeploySpec, toPercent: number, by?: string): RouteSetting {
  return { service: spec.service, tag: spec.tag, weights: { [spec.from]: 100 - toPercent, [spec.to]: toPercent }, by: by ?? '' };
}

function describe(s: RouteSetting, spec: DeploySpec): string {
  return `${spec.from}=${s.weights[spec.from] ?? 0} ${spec.to}=${s.weights[spec.to] ?? 0}`;
}

// ---------------------------------------------------------------- transitions

function pushEvent(m: Machine, now: number, msg: string): void {
  const ev: DeployEvent = { at: now, phase: m.state.phase, msg };
  m.state.events.push(ev);
  if (m.state.events.length > MAX_EVENTS) m.state.events.splice(0, m.state.events.length - MAX_EVENTS);
  m.state.updatedAt = now;
}

function enter(m: Machine, phase: DeployPhase, now: number, msg: string, out: Action[], level: 'INFO' | 'WARN' | 'ERR' = 'INFO'): void {
  m.state.phase = phase;
  m.state.phaseSince = now;
  m.state.figures = {};
  m.scratch.healthySince = undefined;
  m.scratch.baseline = new Map();
  if (isFinal(phase)) m.state.reason = msg;
  else delete m.state.reason;
  pushEvent(m, now, msg);
  out.push({ kind: 'log', level, msg: `deploy ${m.state.id}: ${phase}: ${msg}` }, { kind: 'persist' });
}

function requestPublish(m: Machine, setting: RouteSetting): void {
  m.scratch.want = setting;
  m.scratch.failingSince = undefined;
  m.scratch.applied = false;
  m.scratch.publishedAt = undefined;
}

function startRollback(m: Machine, now: number, why: string, out: Action[]): void {
  enter(m, 'rolling-back', now, why, out, 'WARN');
  m.state.reason = why;
  requestPublish(m, split(m.state.spec, 0));
}

function enterShift(m: Machine, now: number, out: Action[]): void {
  m.state.step++;
  const pct = m.state.spec.steps[m.state.step] ?? 100;
  enter(m, 'shift', now, `shifting ${pct}% of ${m.state.spec.service} to ${m.state.spec.to}`, out);
  requestPublish(m, split(m.state.spec, pct));
}

/** The runner's publishRoute resolved: this is the ltime balancers must reach. */
export function published(m: Machine, entry: RouteEntry, now: number): Action[] {
  m.scratch.inFlight = false;
  m.scratch.want = undefined;
  m.scratch.failingSince = undefined;
  m.scratch.publishedAt = now;
  m.scratch.applied = false;
  m.state.routeLTime = entry.ltime;
  pushEvent(m, now, `published ${describe(entry, m.state.spec)} (ltime ${entry.ltime})`);
  return [{ kind: 'persist' }];
}

/** The runner's publishRoute failed: try again on the next tick (the apply timeout still bounds it). */
export function publishFailed(m: Machine, err: string, now: number): Action[] {
  m.scratch.inFlight = false;
  if (m.scratch.failingSince !== undefined) return []; // said once per split
  m.scratch.failingSince = now;
  pushEvent(m, now, `publishing the route failed: ${err} (retrying)`);
  return [{ kind: 'log', level: 'WARN', msg: `deploy ${m.state.id}: publishing the route failed: ${err} (retrying)` }];
}

/** `kodama deploy abort`: before any shift → aborted; after → roll back. */
export function abort(m: Machine, now: number, reason = 'aborted by the operator'): Action[] {
  const out: Action[] = [];
  const p = m.state.phase;
  if (isFinal(p)) throw new DeployError('ERR_DEPLOY_STATE', `deploy ${m.state.id} already ended (${p}); nothing to abort`);
  if (p === 'rolling-back') throw new DeployError('ERR_DEPLOY_STATE', `deploy ${m.state.id} is already rolling back`);
  if (p === 'prepare' || p === 'check') {
    m.scratch.want = undefined;
    enter(m, 'aborted', now, reason, out, 'WARN');
  } else startRollback(m, now, reason, out);
  return out;
}

/** `kodama deploy rollback`: a running or done deploy goes back to 100 % `from`. */
export function rollback(m: Machine, now: number, reason = 'rollback requested by the operator'): Action[] {
  const out: Action[] = [];
  const p = m.state.phase;
  if (p === 'rolling-back') throw new DeployError('ERR_DEPLOY_STATE', `deploy ${m.state.id} is already rolling back`);
  if (p === 'rolled-back' || p === 'aborted' || p === 'failed') {
    throw new DeployError('ERR_DEPLOY_STATE', `deploy ${m.state.id} ended ${p}; no traffic of it to roll back`);
  }
  if (p === 'prepare' || p === 'check') {
    m.scratch.want = undefined;
    enter(m, 'aborted', now, reason, out, 'WARN');
  } else startRollback(m, now, reason, out);
  return out;
}

/** One tick. Mutates the machine; returns what the runner must do. */
export function step(m: Machine, obs: Observation): Action[] {
  const out: Action[] = [];
  const s = m.state;
  const spec = s.spec;
  const now = obs.now;
  if (isFinal(s.phase)) return out;

  // Someone else (a manual route, another deploy) set the service's route after us: the split
  // is no longer ours to drive or to undo.
  if (s.routeLTime > 0 && obs.route !== undefined && obs.route.ltime > s.routeLTime && obs.route.by !== s.id) {
    m.scratch.want = undefined;
    enter(m, 'failed', now, `superseded by ${obs.route.by || 'an unnamed route'} (ltime ${obs.route.ltime}: ${Object.entries(obs.route.weights).map(([k, v]) => `${k}=${v}`).join(' ')})`, out, 'WARN');
    return out;
  }

  // A newer entry of our own that we did not publish in this life (it was in flight when the
  // coordinator died, and our resume's republish got a lower ltime): publish again — the clock
  // has now seen that ltime, so the next one wins.
  if (s.routeLTime > 0 && obs.route !== undefined && obs.route.ltime > s.routeLTime && obs.route.by === s.id && m.scratch.want === undefined && !m.scratch.inFlight) {
    pushEvent(m, now, `found our own newer route (ltime ${obs.route.ltime}) from before a restart: re-publishing`);
    requestPublish(m, currentSplit(s));
  }

  const balancers = expectedBalancers(obs.members, spec.service);
  const toHealthy = healthyCount(obs.members, spec, spec.to);
  s.figures[`${spec.to} healthy`] = `${toHealthy}/${spec.expected}`;

  if (s.phase === 'prepare' && balancers.length === 0) {
    m.scratch.want = undefined;
    enter(m, 'aborted', now, `no alive balancer serves ${spec.service} (no member with tag ${BALANCER_TAG} listing it)`, out, 'WARN');
    return out;
  }

  // 1. A split to publish: hand it to the runner and wait.
  if (m.scratch.want !== undefined) {
    const failing = m.scratch.failingSince;
    if (!m.scratch.inFlight && failing !== undefined && now - failing >= spec.applyTimeoutMs) {
      m.scratch.want = undefined;
      applyTimedOut(m, now, `could not publish the route within ${spec.applyTimeoutMs} ms`, out);
      return out;
    }
    if (!m.scratch.inFlight) {
      m.scratch.inFlight = true;
      out.push({ kind: 'publish', setting: { ...m.scratch.want, by: s.id } });
    }
    return out;
  }
  if (m.scratch.inFlight) return out;

  // 2. Wait until every balancer applied it (bounded).
  if (!m.scratch.applied) {
    const missing = notApplied(obs, spec.service, s.routeLTime);
    s.figures['balancers applied'] = `${balancers.length - missing.length}/${balancers.length}`;
    if (missing.length > 0) {
      const since = m.scratch.publishedAt ?? now;
      if (now - since < spec.applyTimeoutMs) return out;
      applyTimedOut(m, now, `balancers did not apply the route (ltime ${s.routeLTime}) within ${spec.applyTimeoutMs} ms: ${missing.join(', ')}`, out);
      return out;
    }
    m.scratch.applied = true;
    pushEvent(m, now, `every balancer applied ltime ${s.routeLTime} (${balancers.length})`);
    out.push({ kind: 'persist' });
    // The phase's own clock starts once the route is in place everywhere.
    s.phaseSince = now;
  }

  switch (s.phase) {
    case 'prepare':
      enter(m, 'check', now, `waiting for ${spec.expected} healthy ${spec.to} node(s) for ${spec.checkBakeMs} ms`, out);
      return out;
    case 'check': {
      if (toHealthy >= spec.expected) m.scratch.healthySince ??= now;
      else m.scratch.healthySince = undefined;
      const streak = m.scratch.healthySince === undefined ? 0 : now - m.scratch.healthySince;
      s.figures['healthy for'] = `${Math.round(streak)}/${spec.checkBakeMs} ms`;
      if (m.scratch.healthySince !== undefined && streak >= spec.checkBakeMs) {
        enterShift(m, now, out);
      } else if (now - s.phaseSince >= spec.checkTimeoutMs) {
        enter(m, 'aborted', now, `${spec.to} fleet not ready within ${spec.checkTimeoutMs} ms (${toHealthy}/${spec.expected} healthy); no traffic moved`, out, 'WARN');
      }
      return out;
    }
    case 'shift': {
      if (gateFailed(m, obs, toHealthy, out)) return out;
      const pct = spec.steps[s.step] ?? 100;
      if (pct >= 100) enter(m, 'drain', now, `${spec.to} takes 100%: draining ${spec.from} (up to ${spec.drainTimeoutMs} ms)`, out);
      else enter(m, 'bake', now, `${pct}% on ${spec.to}: baking ${spec.stepBakeMs} ms`, out);
      return out;
    }
    case 'drain': {
      if (gateFailed(m, obs, toHealthy, out)) return out;
      const busy = busyBackends(obs, spec, spec.from);
      s.figures[`${spec.from} busy`] = String(busy.length);
      if (busy.length === 0) {
        enter(m, 'bake', now, `${spec.from} drained: baking ${spec.bakeMs} ms`, out);
      } else if (now - s.phaseSince >= spec.drainTimeoutMs) {
        enter(m, 'bake', now, `drain timeout after ${spec.drainTimeoutMs} ms, still busy: ${busy.join(', ')}; baking ${spec.bakeMs} ms`, out, 'WARN');
      }
      return out;
    }
    case 'bake': {
      if (gateFailed(m, obs, toHealthy, out)) return out;
      const last = s.step >= spec.steps.length - 1;
      const bakeMs = last ? spec.bakeMs : spec.stepBakeMs;
      s.figures['baked'] = `${Math.round(now - s.phaseSince)}/${bakeMs} ms`;
      if (now - s.phaseSince < bakeMs) return out;
      if (last) enter(m, 'done', now, `${spec.service} serves ${spec.to} only`, out);
      else enterShift(m, now, out);
      return out;
    }
    case 'rolling-back':
      enter(m, 'rolled-back', now, s.reason ?? 'rolled back', out, 'WARN');
      return out;
    default:
      return out;
  }
}

/** A split that did not take effect everywhere: nothing moved yet → aborted; a rollback → failed; else roll back. */
function applyTimedOut(m: Machine, now: number, why: string, out: Action[]): void {
  if (m.state.phase === 'prepare' || m.state.phase === 'check') enter(m, 'aborted', now, why, out, 'WARN');
  else if (m.state.phase === 'rolling-back') enter(m, 'failed', now, why, out, 'ERR');
  else startRollback(m, now, why, out);
}

/** The health and error-rate gates (shift, drain, bake): a failure starts the rollback. */
function gateFailed(m: Machine, obs: Observation, toHealthy: number, out: Action[]): boolean {
  const spec = m.state.spec;
  if (toHealthy < spec.expected) {
    startRollback(m, obs.now, `health gate: ${toHealthy}/${spec.expected} ${spec.to} node(s) healthy`, out);
    return true;
  }
  const w = errorWindow(m, obs);
  m.state.figures['errors/requests'] = `${w.errors}/${w.requests}`;
  if (w.requests >= spec.minRequests && w.errors / w.requests > spec.maxErrorRate) {
    startRollback(
      m,
      obs.now,
      `error-rate gate: ${w.errors}/${w.requests} = ${(w.errors / w.requests).toFixed(3)} > ${spec.maxErrorRate} on ${spec.to}`,
      out,
    );
    return true;
  }
  return false;
}
