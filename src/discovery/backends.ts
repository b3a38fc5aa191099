// From cluster members to each balanced service's desired backend set — the pure part of the
// balancer role (no timers, no I/O; time comes in as `now` ms). The role calls planService()
// on every member event and on every drain poll, hands `backends` to the driver and logs
// `changes` and `guard`.
//
// Rules (issue 4, "Runtime behaviour agreed"), per service and per member:
//   - alive + tag without `,drain`             → ready (host = the member's Serf address)
//   - tag with `,drain`, or member leaving/left → drain (only if we already served it: a node
//     that is on its way out gets nothing new), then removed once the driver reports no active
//     sessions for it ("idle") or after drainTimeoutMs ("drain timeout");
//   - member failed, or tag gone / unreadable   → removed at once ("failed" / "unhealthy"),
//     unless that would leave fewer than minBackends ready backends: then keep just enough of
//     those last known good ones (most recently lost first) and say why in `guard`;
//   - same member, different port/weight       → updated in place.
//
// Nearness (the service's prefer_near, opt-in): a ready backend's base weight is divided by 2^k,
// k = min(3, ⌊log2(rtt / nearest)⌋), rtt its estimated round trip from this balancer (network
// coordinates) and both rounded up to NEAR_FLOOR_MS, so that a LAN's sub-millisecond differences
// change nothing and only a backend in another place is weighed down; one with no estimate yet
// counts as nearest. Steps of 2×, not a smooth curve: an estimate that wanders changes no
// weight. Applied before the route split, which keeps every value's share.
//
// Routes (issue 6, a service's RouteEntry with non-empty weights): per member, v = its value of
// the route tag and p = weights[v] ?? 0 (no tag → 0).
//   - p = 0  → out of rotation like a graceful leave: drained if served (removed when idle or at
//     the drain timeout), never added otherwise; never a failure, so the guard never holds it;
//   - p > 0 for one value only (among the ready backends) → base weights unchanged;
//   - p > 0 for several values → backend i of value v weighs p_v × base_i / Σ base of v's ready
//     backends, scaled so the largest is 256 (HAProxy's maximum), rounded, at least 1 — so 10 %
//     of requests go to green whether green has 1 node or 5. A base weight of 0 stays 0.
//   - empty weights / no entry → every healthy backend served, as without routes.

import { decodeServiceTags } from './advertise.ts';
import type { RouteEntry } from '../deploy/types.ts';
import type { AdvertisedService, BalancedServiceSpec, Backend } from './types.ts';

/** HAProxy's largest server weight: route shares are scaled up to it to keep precision. */
export const MAX_WEIGHT = 256;
/** prefer_near: round trips below this are all "near" (a LAN, a rack, loopback). */
export const NEAR_FLOOR_MS = 2;
/** prefer_near: at most a 2^NEAR_MAX_STEPS (8×) weight cut for the farthest backends. */
const NEAR_MAX_STEPS = 3;

/** What planService needs of a Serf member (src/serf Member fits). */
export interface MemberView {
  name: string;
  addr: { ip: string };
  tags: Record<string, string>;
  status: string;
}

/** A backend as the role remembers it between plans. */
export interface TrackedBackend extends Backend {
  /** When it entered drain (only while state is drain). */
  drainSinceMs?: number;
  /** Set while the min-backends guard keeps it although its member failed or lost the tag. */
  held?: { sinceMs: number; why: 'failed' | 'unhealthy' | 'gone' };
  /** The member's value of the route tag (only while the service has a route). */
  value?: string;
}

/** One service's remembered backends, by id (node name). */
export type ServiceState = ReadonlyMap<string, TrackedBackend>;

export type RemoveReason = 'idle' | 'drain timeout' | 'failed' | 'unhealthy' | 'gone';

export type BackendChange =
  | { kind: 'added'; backend: Backend }
  | { kind: 'ready'; backend: Backend } // back in rotation (was drain or held)
  | { kind: 'drain'; backend: Backend }
  | { kind: 'updated'; backend: Backend; before: Backend }
  | { kind: 'held'; backend: Backend; why: 'failed' | 'unhealthy' | 'gone' }
  | { kind: 'removed'; backend: Backend; reason: RemoveReason };

export interface ServicePlan {
  state: Map<string, TrackedBackend>;
  /** The whole desired set for the driver, sorted by id. */
  backends: Backend[];
  changes: BackendChange[];
  /** Why the guard keeps backends it would otherwise remove (undefined = not holding any). */
  guard: string | undefined;
}

/** Decoded once per plan round and shared by every service. */
export interface DecodedMember {
  name: string;
  ip: string;
  status: string;
  services: Map<string, AdvertisedService>;
  /** `s:*` tag keys that could not be read (ignored, counted by the caller). */
  invalid: string[];
  /** All of the member's tags (routes split on any of them). */
  tags: Record<string, string>;
  /** Estimated round trip from this balancer, ms (prefer_near); undefined = no estimate. */
  rttMs?: number;
}

/** `rttOf`: the estimated round trip to a member (only asked when a service prefers near backends). */
export function decodeMembers(members: readonly MemberView[], rttOf?: (name: string) => number | undefined): Map<string, DecodedMember> {
  const out = new Map<string, DecodedMember>();
  for (const m of members) {
    const { services, invalid } = decodeServiceTags(m.tags);
    const d: DecodedMember = { name: m.name, ip: m.addr.ip, status: m.status, services: new Map(services.map((s) => [s.name, s])), invalid, tags: { ...m.tags } };
    const rtt = rttOf?.(m.name);
    if (rtt !== undefined) d.rttMs = rtt;
    out.set(m.name, d);
  }
  return out;
}

/** prefer_near's divisor for a backend `rttMs` away when the nearest ready one is `nearestMs` (see the rules above). */
export function nearDivisor(rttMs: number | undefined, nearestMs: number): number {
  if (rttMs === undefined) return 1;
  const ratio = Math.max(rttMs, NEAR_FLOOR_MS) / Math.max(nearestMs, NEAR_FLOOR_MS);
  return 2 ** Math.min(NEAR_MAX_STEPS, Math.max(0, Math.floor(Math.log2(ratio))));
}

function plain(b: TrackedBackend | Backend): Backend {
  return { id: b.id, host: b.host, port: b.port, weight: b.weight, state: b.state };
}

/** A route that splits (non-empty weights) for this service, or undefined. */
function splittingRoute(service: string, route: RouteEntry | undefined): RouteEntry | undefined {
  if (route === undefined || route.service !== service) return undefined;
  return Object.keys(route.weights).length > 0 ? route : undefined;
}

/** Percent of traffic a route gives to a tag value (unlisted or missing value → 0). */
function share(route: RouteEntry, value: string | undefined): number {
  if (value === undefined || !Object.hasOwn(route.weights, value)) return 0;
  const p = route.weights[value];
  return typeof p === 'number' && Number.isFinite(p) && p > 0 ? p : 0;
}

/**
 * Weights of the members that will be ready under a splitting route (see the rules above), by
 * member name. Only called with members that are alive, advertise the service and get p > 0.
 */
function routeWeights(route: RouteEntry, ready: readonly { name: string; value: string; base: number }[]): Map<string, number> {
  const out = new Map<string, number>();
  const baseSum = new Map<string, number>();
  for (const r of ready) baseSum.set(r.value, (baseSum.get(r.value) ?? 0) + r.base);
  if (baseSum.size <= 1) {
    for (const r of ready) out.set(r.name, r.base);
    return out;
  }
  const raw = new Map<string, number>();
  for (const r of ready) {
    const sum = baseSum.get(r.value) ?? 0;
    raw.set(r.name, sum > 0 ? (share(route, r.value) * r.base) / sum : 0);
  }
  const max = Math.max(...raw.values());
  for (const r of ready) {
    const x = raw.get(r.name) ?? 0;
    out.set(r.name, x <= 0 || max <= 0 ? 0 : Math.max(1, Math.round((x * MAX_WEIGHT) / max)));
  }
  return out;
}

/**
 * One service's next backend set.
 * @param activeSessions in-flight sessions per backend id, read from the driver *after* the
 *   current set was applied; undefined (or an id missing) = unknown, so no idle removal.
 * @param route the service's current route (agent.routes.get(service)); see the rules above.
 */
export function planService(
  spec: Pick<BalancedServiceSpec, 'service' | 'minBackends' | 'drainTimeoutMs' | 'preferNear'>,
  members: ReadonlyMap<string, DecodedMember>,
  previous: ServiceState,
  now: number,
  activeSessions?: ReadonlyMap<string, number>,
  route?: RouteEntry,
): ServicePlan {
  const next = new Map<string, TrackedBackend>();
  const changes: BackendChange[] = [];
  /** Backends the rules remove at once; the guard may keep some of them. */
  const lost: { prev: TrackedBackend; why: 'failed' | 'unhealthy' | 'gone'; sinceMs: number }[] = [];

  const ids = new Set<string>([...previous.keys()]);
  for (const [name, m] of members) if (m.services.has(spec.service)) ids.add(name);

  const split = splittingRoute(spec.service, route);
  const valueOf = (id: string): string | undefined => {
    if (route === undefined || route.service !== spec.service) return undefined;
    const m = members.get(id);
    // A reaped member's tags are gone: its last known value still decides its share.
    return m !== undefined ? m.tags[route.tag] : previous.get(id)?.value;
  };
  /** The route takes it out of rotation (p = 0). */
  const routedOut = (id: string): boolean => split !== undefined && share(split, valueOf(id)) === 0;
  // prefer_near: the nearest estimate among the backends that will be ready.
  let nearest = Infinity;
  if (spec.preferNear === true) {
    for (const id of ids) {
      const m = members.get(id);
      const adv = m?.services.get(spec.service);
      if (m?.status === 'alive' && adv !== undefined && !adv.draining && !routedOut(id) && m.rttMs !== undefined) nearest = Math.min(nearest, m.rttMs);
    }
  }
  /** The advertised weight, weighed down by distance under prefer_near. */
  const baseOf = (m: DecodedMember, adv: AdvertisedService): number => {
    if (spec.preferNear !== true || adv.weight === 0 || nearest === Infinity) return adv.weight;
    return Math.max(1, Math.round(adv.weight / nearDivisor(m.rttMs, nearest)));
  };
  let weights: Map<string, number> | undefined;
  if (split !== undefined) {
    const ready: { name: string; value: string; base: number }[] = [];
    for (const id of ids) {
      const m = members.get(id);
      const adv = m?.services.get(spec.service);
      const v = valueOf(id);
      if (m?.status === 'alive' && adv !== undefined && !adv.draining && v !== undefined && share(split, v) > 0) ready.push({ name: id, value: v, base: baseOf(m, adv) });
    }
    weights = routeWeights(split, ready);
  }
  const withValue = (b: TrackedBackend, id: string): TrackedBackend => {
    const v = valueOf(id);
    if (v !== undefined) b.value = v;
    return b;
  };

  for (const id of [...ids].sort()) {
    const prev = previous.get(id);
    const m = members.get(id);
    const adv = m?.services.get(spec.service);
    const alive = m?.status === 'alive';
    const leaving = m?.status === 'leaving' || m?.status === 'left';

    const out = routedOut(id);
    if (m !== undefined && alive && adv !== undefined && !adv.draining && !out) {
      const b: TrackedBackend = withValue({ id, host: m.ip, port: adv.port, weight: weights?.get(id) ?? baseOf(m, adv), state: 'ready' }, id);
      next.set(id, b);
      if (prev === undefined) changes.push({ kind: 'added', backend: plain(b) });
      else {
        if (prev.state === 'drain' || prev.held !== undefined) changes.push({ kind: 'ready', backend: plain(b) });
        if (prev.host !== b.host || prev.port !== b.port || prev.weight !== b.weight) {
          changes.push({ kind: 'updated', backend: plain(b), before: plain(prev) });
        }
      }
      continue;
    }
    if (prev === undefined) continue; // never served: nothing to drain or remove

    const failed = m === undefined ? false : m.status === 'failed' || m.status === 'none';
    if (!failed && (leaving || (alive && adv !== undefined && (adv.draining || out)))) {
      // Graceful: drain, then remove when idle or after the timeout.
      if (prev.state === 'drain' && prev.drainSinceMs !== undefined) {
        const active = activeSessions?.get(id);
        if (active === 0) {
          changes.push({ kind: 'removed', backend: plain(prev), reason: 'idle' });
          continue;
        }
        if (now - prev.drainSinceMs >= spec.drainTimeoutMs) {
          changes.push({ kind: 'removed', backend: plain(prev), reason: 'drain timeout' });
          continue;
        }
        next.set(id, withValue({ ...prev }, id));
      } else {
        // A held backend draining now: it was already lost, draining adds nothing.
        const b: TrackedBackend = withValue({ ...plain(prev), state: 'drain', drainSinceMs: now }, id);
        next.set(id, b);
        changes.push({ kind: 'drain', backend: plain(b) });
      }
      continue;
    }

    if (m === undefined && prev.state === 'drain') {
      // Reaped while draining: the member is gone for good, nothing to wait for.
      changes.push({ kind: 'removed', backend: plain(prev), reason: 'gone' });
      continue;
    }
    const why: 'failed' | 'unhealthy' | 'gone' = failed ? 'failed' : m === undefined ? 'gone' : 'unhealthy';
    if (prev.state === 'drain' || out) {
      // A draining backend that fails (or drops its tag) has nothing left to finish; one the
      // route has taken out is not "last known good" for the guard to keep.
      changes.push({ kind: 'removed', backend: plain(prev), reason: why });
      continue;
    }
    lost.push({ prev, why, sinceMs: prev.held?.sinceMs ?? now });
  }

  // Minimum-backends guard: failures never take the ready set below minBackends.
  const readyCount = [...next.values()].filter((b) => b.state === 'ready').length;
  const keep = Math.max(0, Math.min(lost.length, spec.minBackends - readyCount));
  // Most recently lost first: the best chance of still being alive; then by id for stability.
  lost.sort((a, b) => b.sinceMs - a.sinceMs || (a.prev.id < b.prev.id ? -1 : a.prev.id > b.prev.id ? 1 : 0));
  const kept = lost.slice(0, keep);
  for (const l of kept) {
    const b: TrackedBackend = withValue({ ...plain(l.prev), held: { sinceMs: l.sinceMs, why: l.why } }, l.prev.id);
    next.set(l.prev.id, b);
    if (l.prev.held === undefined || l.prev.held.why !== l.why) changes.push({ kind: 'held', backend: plain(b), why: l.why });
  }
  const dropped = lost.slice(keep).sort((a, b) => (a.prev.id < b.prev.id ? -1 : 1));
  for (const l of dropped) changes.push({ kind: 'removed', backend: plain(l.prev), reason: l.why });

  let guard: string | undefined;
  if (kept.length > 0) {
    const names = kept.map((l) => `${l.prev.id} (${l.why})`).sort().join(', ');
    guard =
      `keeping ${names} in rotation: removing would leave ${readyCount} ready backend(s), ` +
      `below min_backends ${spec.minBackends} (last known good kept until enough healthy backends return)`;
  }

  const backends = [...next.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(plain);
  return { state: next, backends, changes, guard };
}

/** Ids of a plan's draining backends (the role polls stats while there are any). */
export function drainingIds(state: ServiceState): string[] {
  return [...state.values()].filter((b) => b.state === 'drain').map((b) => b.id);
}

/** The earliest `now` at which a drain times out (the role's next wake-up), or undefined. */
export function nextDrainDeadline(state: ServiceState, drainTimeoutMs: number): number | undefined {
  let at: number | undefined;
  for (const b of state.values()) {
    if (b.state !== 'drain' || b.drainSinceMs === undefined) continue;
    const t = b.drainSinceMs + drainTimeoutMs;
    if (at === undefined || t < at) at = t;
  }
  return at;
}
