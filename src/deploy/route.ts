// Routes on the wire and in memory (pure): the JSON payload of the user event `kodama-route`,
// the table every agent keeps, and the answer to the `kodama-routes` sync query.
//
// Ordering is what makes every node converge on the same split whatever order the events (and
// sync answers) arrive in: the higher Lamport time wins; at equal times the entry whose canonical
// payload bytes compare higher wins. "Canonical" matters: an entry learnt through sync carries no
// payload, so both sides compare the bytes encodeRoute() produces for the setting (fixed field
// order, weights sorted by key), never the bytes some sender happened to use.

import { isValidServiceName } from '../discovery/advertise.ts';
import { AgentError } from '../agent/errors.ts';
import type { RouteEntry, RouteSetting } from './types.ts';

/** Largest route payload (bytes): fits serf's 512-byte user event with its name and header. */
export const ROUTE_MAX_BYTES = 400;
/** Tag names and values, and `by`: short, printable. */
const MAX_LABEL_LENGTH = 64;
/** No control characters: labels end up in logs and terminal tables. */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function isLabel(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_LABEL_LENGTH && !hasControl(v);
}

/** Why `s` is not a valid setting, or undefined when it is. */
export function routeProblem(s: unknown): string | undefined {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'a route must be an object {service, tag, weights, by}';
  const r = s as Record<string, unknown>;
  if (typeof r['service'] !== 'string' || !isValidServiceName(r['service'])) {
    return `invalid service name ${JSON.stringify(r['service'])} (letters, digits, "_", "-", ".")`;
  }
  if (!isLabel(r['tag'])) return `invalid route tag ${JSON.stringify(r['tag'])} (1 to ${MAX_LABEL_LENGTH} printable characters)`;
  if (!isLabel(r['by'])) return `invalid route author 'by' ${JSON.stringify(r['by'])} (1 to ${MAX_LABEL_LENGTH} printable characters)`;
  const w = r['weights'];
  if (typeof w !== 'object' || w === null || Array.isArray(w)) return "'weights' must be an object of tag value → percent";
  for (const [k, v] of Object.entries(w)) {
    if (!isLabel(k)) return `invalid tag value ${JSON.stringify(k)} in weights (1 to ${MAX_LABEL_LENGTH} printable characters)`;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100) {
      return `weight of ${JSON.stringify(k)} must be an integer percent 0..100, got ${JSON.stringify(v)}`;
    }
  }
  return undefined;
}

/** The canonical JSON object of a setting: fixed key order, weights sorted by key. */
function canonical(s: RouteSetting): Record<string, unknown> {
  const weights: Record<string, number> = {};
  for (const k of Object.keys(s.weights).sort()) weights[k] = s.weights[k]!;
  return { service: s.service, tag: s.tag, weights, by: s.by };
}

/**
 * The ROUTE_EVENT payload. Throws AgentError ERR_AGENT_CONFIG when the setting is invalid or
 * its payload exceeds ROUTE_MAX_BYTES (the message says which).
 */
export function encodeRoute(s: RouteSetting): Uint8Array {
  const problem = routeProblem(s);
  if (problem !== undefined) throw new AgentError('ERR_AGENT_CONFIG', `route: ${problem}`);
  const bytes = enc.encode(JSON.stringify(canonical(s)));
  if (bytes.length > ROUTE_MAX_BYTES) {
    throw new AgentError('ERR_AGENT_CONFIG', `route: the setting takes ${bytes.length} bytes, more than ${ROUTE_MAX_BYTES}: use fewer or shorter tag values`);
  }
  return bytes;
}

/** Parse a ROUTE_EVENT payload; undefined = malformed (the caller counts it; never throws). */
export function decodeRoute(b: Uint8Array): RouteSetting | undefined {
  if (b.length === 0 || b.length > ROUTE_MAX_BYTES) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(b));
  } catch {
    return undefined;
  }
  return settingFrom(v);
}

function settingFrom(v: unknown): RouteSetting | undefined {
  if (routeProblem(v) !== undefined) return undefined;
  const r = v as Record<string, unknown>;
  const weights: Record<string, number> = {};
  for (const [k, w] of Object.entries(r['weights'] as Record<string, number>)) weights[k] = w;
  return { service: r['service'] as string, tag: r['tag'] as string, weights, by: r['by'] as string };
}

/** Byte-wise comparison of two canonical payloads (the equal-ltime tie-break). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** >0 when `a` beats `b` (higher ltime; equal ltime: higher canonical payload bytes). */
export function compareRoutes(a: RouteEntry, b: RouteEntry): number {
  if (a.ltime !== b.ltime) return a.ltime - b.ltime;
  return compareBytes(enc.encode(JSON.stringify(canonical(a))), enc.encode(JSON.stringify(canonical(b))));
}

/** Sync answer format version (so a future format is refused, not misread). */
const SYNC_VERSION = 1;

export interface SyncAnswer {
  routes: RouteEntry[];
  /** Entries the answering node left out to fit the response limit (oldest ltime first). */
  truncated: number;
}

/** The current route of every service this node has heard of. */
export class RouteTable {
  private readonly entries = new Map<string, RouteEntry>();

  get(service: string): RouteEntry | undefined {
    return this.entries.get(service);
  }

  /** Every current entry, by service name. */
  all(): RouteEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Make `e` the service's route if it beats the current one. True when it became current
   * (false for an older, an equal-and-lower or the very same entry). An invalid entry is refused
   * (false): the table holds only what encodeRoute accepts.
   */
  apply(e: RouteEntry): boolean {
    if (!Number.isInteger(e.ltime) || e.ltime < 0 || routeProblem(e) !== undefined) return false;
    const cur = this.entries.get(e.service);
    if (cur !== undefined && compareRoutes(e, cur) <= 0) return false;
    this.entries.set(e.service, { service: e.service, tag: e.tag, weights: { ...e.weights }, by: e.by, ltime: e.ltime });
    return true;
  }

  /**
   * The ROUTES_QUERY answer in at most `limitBytes`: every entry, or, when they do not fit, the
   * newest ones that do, with `truncated` saying how many were left out.
   */
  encodeSync(limitBytes: number): Uint8Array {
    // Newest first: what is dropped to fit is the oldest news.
    const list = [...this.entries.values()].sort((a, b) => -compareRoutes(a, b));
    const item = (e: RouteEntry): Record<string, unknown> => ({ ...canonical(e), ltime: e.ltime });
    const build = (n: number): Uint8Array => {
      const body: Record<string, unknown> = { v: SYNC_VERSION, routes: list.slice(0, n).map(item) };
      if (n < list.length) body['truncated'] = list.length - n;
      return enc.encode(JSON.stringify(body));
    };
    for (let n = list.length; n > 0; n--) {
      const b = build(n);
      if (b.length <= limitBytes) return b;
    }
    return build(0);
  }
}

/** Parse a ROUTES_QUERY answer with its truncation count; undefined = malformed. */
export function decodeSyncAnswer(b: Uint8Array): SyncAnswer | undefined {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(b));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (o['v'] !== SYNC_VERSION || !Array.isArray(o['routes'])) return undefined;
  const truncated = o['truncated'] ?? 0;
  if (typeof truncated !== 'number' || !Number.isInteger(truncated) || truncated < 0) return undefined;
  const routes: RouteEntry[] = [];
  for (const x of o['routes'] as unknown[]) {
    const s = settingFrom(x);
    const ltime = (x as Record<string, unknown> | null)?.['ltime'];
    // One bad entry makes the whole answer suspect: a sender that garbles one garbles others.
    if (s === undefined || typeof ltime !== 'number' || !Number.isInteger(ltime) || ltime < 0) return undefined;
    routes.push({ ...s, ltime });
  }
  return { routes, truncated };
}

/** The entries of a ROUTES_QUERY answer; undefined = malformed. */
export function decodeSync(b: Uint8Array): RouteEntry[] | undefined {
  return decodeSyncAnswer(b)?.routes;
}
