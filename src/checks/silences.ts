// Silences: "do not page anyone about web-3's disk until 14:00". Pure: a store keyed by id, time
// comes in as `now` (Date.now() ms, the clock `expiresAt` is written in), nothing here reads a
// clock or does I/O. Every monitor applies the same `kodama-silence` user events, so every
// monitor holds the same store and a new leader silences exactly what the old one did.
//
// A silence names any of node, role (the member's tag `role`) and check; every field it names
// must match, fields it leaves out match anything. One naming nothing would silence the whole
// cluster by accident (a typo'd CLI flag), so parse refuses it.

import type { Silence, SilenceOp } from './types.ts';

/** Silences kept at most; adds beyond are refused (a runaway script must not grow us unbounded). */
export const MAX_SILENCES = 1000;
/** Serf user events carry at most 512 bytes; a bit of slack for what serf agents may send. */
const MAX_PAYLOAD_BYTES = 1024;
const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_FIELD_CHARS = 128;
const MAX_REASON_CHARS = 256;

export type ParseResult = { ok: true; op: SilenceOp } | { ok: false; reason: string };

function field(o: Record<string, unknown>, key: string, max: number): string | undefined | Error {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return new Error(`${key} must be a string`);
  if (v.length === 0) return undefined;
  if (v.length > max) return new Error(`${key} longer than ${max} characters`);
  return v;
}

function time(o: Record<string, unknown>, key: string): number | undefined | Error {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return new Error(`${key} must be a time in ms`);
  return v;
}

function parseSilence(raw: unknown): Silence | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'silence must be an object';
  const o = raw as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || !ID_RE.test(o['id'])) return 'silence id must be 1-64 characters of [A-Za-z0-9_.:-]';
  const s: Silence = { id: o['id'], createdAt: 0 };
  for (const key of ['node', 'role', 'check', 'creator'] as const) {
    const v = field(o, key, MAX_FIELD_CHARS);
    if (v instanceof Error) return v.message;
    if (v !== undefined) s[key] = v;
  }
  const reason = field(o, 'reason', MAX_REASON_CHARS);
  if (reason instanceof Error) return reason.message;
  if (reason !== undefined) s.reason = reason;
  const created = time(o, 'createdAt');
  if (created instanceof Error) return created.message;
  s.createdAt = created ?? 0;
  const expires = time(o, 'expiresAt');
  if (expires instanceof Error) return expires.message;
  if (expires !== undefined) s.expiresAt = expires;
  if (s.node === undefined && s.role === undefined && s.check === undefined) {
    return 'silence must name a node, a role or a check';
  }
  return s;
}

/** Parse a `kodama-silence` payload. Never throws: a bad payload comes back with a reason. */
export function parseSilenceOp(payload: Uint8Array | string): ParseResult {
  const bytes = typeof payload === 'string' ? payload.length : payload.byteLength;
  if (bytes > MAX_PAYLOAD_BYTES) return { ok: false, reason: `payload larger than ${MAX_PAYLOAD_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'payload must be a JSON object' };
  const o = raw as Record<string, unknown>;
  if (o['op'] === 'add') {
    const s = parseSilence(o['silence']);
    if (typeof s === 'string') return { ok: false, reason: s };
    return { ok: true, op: { op: 'add', silence: s } };
  }
  if (o['op'] === 'remove') {
    if (typeof o['id'] !== 'string' || !ID_RE.test(o['id'])) return { ok: false, reason: 'remove needs a silence id' };
    return { ok: true, op: { op: 'remove', id: o['id'] } };
  }
  return { ok: false, reason: 'op must be "add" or "remove"' };
}

/** The payload of a `kodama-silence` user event (compact JSON; undefined fields are left out). */
export function encodeSilenceOp(op: SilenceOp): string {
  return JSON.stringify(op);
}

/** The silences one monitor knows, by id. */
export class SilenceStore {
  private readonly byId = new Map<string, Silence>();

  /**
   * Add (or replace, same id) a silence. Refused when already expired at `now` (a delayed event
   * must not resurrect it) or when the store is full; returns whether it was stored.
   */
  add(s: Silence, now: number): boolean {
    if (s.expiresAt !== undefined && s.expiresAt <= now) return false;
    if (!this.byId.has(s.id) && this.byId.size >= MAX_SILENCES) return false;
    this.byId.set(s.id, { ...s });
    return true;
  }

  remove(id: string): Silence | undefined {
    const s = this.byId.get(id);
    this.byId.delete(id);
    return s;
  }

  /** Drop the silences expired at `now`; returns them. */
  expire(now: number): Silence[] {
    const gone: Silence[] = [];
    for (const [id, s] of this.byId) {
      if (s.expiresAt !== undefined && s.expiresAt <= now) {
        gone.push(s);
        this.byId.delete(id);
      }
    }
    return gone;
  }

  /** The first silence covering (node, role, check) and still in force at `now`, if any. */
  match(node: string, role: string | undefined, check: string, now: number): Silence | undefined {
    for (const s of this.byId.values()) {
      if (s.expiresAt !== undefined && s.expiresAt <= now) continue;
      if (s.node !== undefined && s.node !== node) continue;
      if (s.role !== undefined && s.role !== role) continue;
      if (s.check !== undefined && s.check !== check) continue;
      return s;
    }
    return undefined;
  }

  /** Newest first (createdAt, then id for a stable order). */
  list(): Silence[] {
    return [...this.byId.values()]
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((s) => ({ ...s }));
  }

  /** When the next silence expires (undefined: none will). */
  nextExpiry(): number | undefined {
    let at: number | undefined;
    for (const s of this.byId.values()) {
      if (s.expiresAt !== undefined && (at === undefined || s.expiresAt < at)) at = s.expiresAt;
    }
    return at;
  }

  get size(): number {
    return this.byId.size;
  }
}
