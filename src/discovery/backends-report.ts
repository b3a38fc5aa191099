// The `kodama-backends` answer on the wire: compact JSON of a BalancerReport that fits Serf's
// query response limit. Deploys and rolling actions decode it from every balancer, so decoding
// is strict (a malformed answer is `undefined`, never a throw and never half-trusted).
//
// When the report does not fit, backends are left out and counted in the service's `truncated`.
// What is left out first is what a watcher needs least: idle ready backends before idle drains,
// anything with work in flight last (a drain or a rolling action waits on exactly those).

import type { BackendReport, BalancerReport, ServiceReport } from '../deploy/types.ts';

/** Lower = dropped earlier when the report must shrink. */
function keepRank(b: BackendReport): number {
  if (b.active > 0) return b.state === 'drain' ? 3 : 2;
  return b.state === 'drain' ? 1 : 0;
}

function compactBackend(b: BackendReport): BackendReport {
  const out: BackendReport = { id: b.id, state: b.state, weight: b.weight, active: b.active, requests: b.requests, errors: b.errors };
  if (b.value !== undefined) out.value = b.value;
  return out;
}

function encodeJson(r: BalancerReport): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(r));
}

/**
 * Encode `r` in at most `limitBytes` bytes when possible, leaving out backends (most expendable
 * first, from the service with the most listed) and counting them in `truncated`. If even the
 * report without any backend is larger (a very long node or service list), that smallest form
 * is returned: the caller's respond() then refuses it with Serf's own error.
 */
export function encodeBalancerReport(r: BalancerReport, limitBytes: number): Uint8Array {
  const services: Record<string, ServiceReport> = Object.create(null) as Record<string, ServiceReport>;
  for (const [name, s] of Object.entries(r.services)) {
    services[name] = {
      routeLTime: s.routeLTime,
      backends: s.backends.map(compactBackend),
      ...(s.truncated !== undefined && s.truncated > 0 ? { truncated: s.truncated } : {}),
    };
  }
  const work: BalancerReport = { node: r.node, driver: r.driver, services };
  let bytes = encodeJson(work);
  // Bounded: each round drops one backend, so at most (number of backends) rounds.
  while (bytes.byteLength > limitBytes) {
    let victim: ServiceReport | undefined;
    for (const s of Object.values(services)) {
      if (s.backends.length > 0 && (victim === undefined || s.backends.length > victim.backends.length)) victim = s;
    }
    if (victim === undefined) break;
    let at = 0;
    for (let i = 1; i < victim.backends.length; i++) {
      const a = victim.backends[i];
      const b = victim.backends[at];
      // Lowest rank; among equals the last listed (ids are sorted, so the tail goes first).
      if (a !== undefined && b !== undefined && keepRank(a) <= keepRank(b)) at = i;
    }
    victim.backends.splice(at, 1);
    victim.truncated = (victim.truncated ?? 0) + 1;
    bytes = encodeJson(work);
  }
  return bytes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function decodeBackend(v: unknown): BackendReport | undefined {
  if (!isObject(v)) return undefined;
  const { id, state, weight, value, active, requests, errors } = v;
  if (typeof id !== 'string' || id === '') return undefined;
  if (state !== 'ready' && state !== 'drain') return undefined;
  if (!isCount(weight) || !isCount(active) || !isCount(requests) || !isCount(errors)) return undefined;
  if (value !== undefined && typeof value !== 'string') return undefined;
  const b: BackendReport = { id, state, weight, active, requests, errors };
  if (value !== undefined) b.value = value;
  return b;
}

function decodeService(v: unknown): ServiceReport | undefined {
  if (!isObject(v)) return undefined;
  const { routeLTime, backends, truncated } = v;
  if (!isCount(routeLTime) || !Array.isArray(backends)) return undefined;
  if (truncated !== undefined && !isCount(truncated)) return undefined;
  const out: BackendReport[] = [];
  for (const x of backends) {
    const b = decodeBackend(x);
    if (b === undefined) return undefined;
    out.push(b);
  }
  const s: ServiceReport = { routeLTime, backends: out };
  if (truncated !== undefined && truncated > 0) s.truncated = truncated;
  return s;
}

/** The report in `b`, or undefined when it is not a well-formed BalancerReport. */
export function decodeBalancerReport(b: Uint8Array): BalancerReport | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
  if (!isObject(v)) return undefined;
  const { node, driver, services } = v;
  if (typeof node !== 'string' || node === '') return undefined;
  if (driver !== 'haproxy' && driver !== 'embedded') return undefined;
  if (!isObject(services)) return undefined;
  // Null prototype: a service named `__proto__` is data, not a prototype change.
  const out: Record<string, ServiceReport> = Object.create(null) as Record<string, ServiceReport>;
  for (const [name, sv] of Object.entries(services)) {
    const s = decodeService(sv);
    if (s === undefined) return undefined;
    out[name] = s;
  }
  return { node, driver, services: out };
}
