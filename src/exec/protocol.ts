// Payloads of the `kodama-exec` query. Every request and answer must fit Serf's 1024-byte
// query and response limits (the whole Serf message, header and names included), so:
//  - a request is compact JSON: the token, the op, a caller-chosen run id and, for `run`, the
//    command (about 600 bytes at most with a 64-byte token: the CLI refuses longer ones up front
//    and says to use a script);
//  - an answer is one JSON header line, then raw output bytes (no escaping, so the byte budget
//    is exact and binary output survives). The header says where those bytes start (`off`), so
//    a re-asked poll after a lost UDP answer never duplicates or skips output.
// The token travels inside the query: the executor refuses unless the cluster is encrypted.

import type { ExecRefusal } from './types.ts';

export const EXEC_PROTOCOL_VERSION = 1;
/** Serf's defaults (query_size_limit / query_response_size_limit). */
export const QUERY_LIMIT_BYTES = 1024;
export const RESPONSE_LIMIT_BYTES = 1024;
/**
 * Serf's query message around our payload: type, ltime, id, addr, source node, flags, timeout,
 * name (140), and the kodama-only tag filter every kodama query carries (`_kodama=^1$`: 25 bytes
 * encoded; agent/internal.ts) with room to spare.
 */
export const QUERY_OVERHEAD_BYTES = 172;
/** Serf's response message around our payload: type, ltime, id, from (added separately), flags. */
export const RESPONSE_OVERHEAD_BYTES = 64;

export type ExecRequest =
  | { op: 'run'; token: string; id: string; cmd: string; timeoutMs?: number }
  /**
   * `off`: per node name, the output offset asked for; `max`: at most this many output bytes in
   * the answer (so a caller can ask several consecutive slices at once while output piles up).
   */
  | { op: 'poll'; token: string; id: string; off: Record<string, number>; max?: number }
  | { op: 'drain' | 'undrain'; token: string };

export interface ExecRunStatus {
  id: string;
  /** false while the command runs. */
  done: boolean;
  /** Offset of `chunk` in the run's output. */
  off: number;
  /** Output bytes buffered so far (what a caller can still fetch beyond off + chunk). */
  total: number;
  /** Bytes the command wrote beyond max_output (dropped, not fetchable). */
  cut: number;
  exitCode: number | null;
  signal?: string;
  /** Killed at the node's timeout. */
  timedOut?: boolean;
  durationMs: number;
  chunk: Uint8Array;
}

export type ExecAnswer =
  | { kind: 'refused'; code: ExecRefusal; message: string }
  | { kind: 'run'; status: ExecRunStatus }
  | { kind: 'drain'; draining: boolean };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeRequest(r: ExecRequest): Uint8Array {
  const o: Record<string, unknown> = { v: EXEC_PROTOCOL_VERSION, op: r.op, t: r.token };
  if (r.op === 'run') {
    o['id'] = r.id;
    o['cmd'] = r.cmd;
    if (r.timeoutMs !== undefined) o['to'] = r.timeoutMs;
  } else if (r.op === 'poll') {
    o['id'] = r.id;
    o['off'] = r.off;
    if (r.max !== undefined) o['max'] = r.max;
  }
  return enc.encode(JSON.stringify(o));
}

/** A request, or a string saying what is wrong with it (never throws). */
export function decodeRequest(b: Uint8Array): ExecRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(b));
  } catch {
    return 'the request is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the request is not an object';
  const o = v as Record<string, unknown>;
  if (o['v'] !== EXEC_PROTOCOL_VERSION) return `unsupported exec protocol version ${JSON.stringify(o['v'])} (this node speaks ${EXEC_PROTOCOL_VERSION})`;
  const token = o['t'];
  if (typeof token !== 'string') return "'t' (the token) must be a string";
  const op = o['op'];
  if (op === 'drain' || op === 'undrain') return { op, token };
  const id = o['id'];
  if (typeof id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(id)) return "'id' must be a run id (letters, digits, _ . -)";
  if (op === 'run') {
    const cmd = o['cmd'];
    if (typeof cmd !== 'string' || cmd.trim() === '') return "'cmd' must be a non-empty command line";
    const to = o['to'];
    if (to !== undefined && (typeof to !== 'number' || !Number.isInteger(to) || to <= 0)) return "'to' must be a positive number of ms";
    return { op, token, id, cmd, ...(to !== undefined ? { timeoutMs: to } : {}) };
  }
  if (op === 'poll') {
    const off = o['off'];
    if (typeof off !== 'object' || off === null || Array.isArray(off)) return "'off' must map node names to offsets";
    const out: Record<string, number> = {};
    for (const [k, n] of Object.entries(off as Record<string, unknown>)) {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return `'off' of ${k} must be an offset ≥ 0`;
      out[k] = n;
    }
    const max = o['max'];
    if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1)) return "'max' must be a positive number of bytes";
    return { op, token, id, off: out, ...(max !== undefined ? { max } : {}) };
  }
  return `unknown op ${JSON.stringify(op)} (run, poll, drain, undrain)`;
}

function withBody(header: Record<string, unknown>, body: Uint8Array): Uint8Array {
  const h = enc.encode(`${JSON.stringify(header)}\n`);
  const out = new Uint8Array(h.length + body.length);
  out.set(h, 0);
  out.set(body, h.length);
  return out;
}

/** The header of a run status (without chunk): its size decides how much output fits. */
export function runHeader(s: Omit<ExecRunStatus, 'chunk'>): Uint8Array {
  return enc.encode(`${JSON.stringify(runHeaderObject(s))}\n`);
}

function runHeaderObject(s: Omit<ExecRunStatus, 'chunk'>): Record<string, unknown> {
  const h: Record<string, unknown> = { id: s.id, d: s.done ? 1 : 0, o: s.off, n: s.total, x: s.exitCode, ms: Math.round(s.durationMs) };
  if (s.cut > 0) h['c'] = s.cut;
  if (s.signal !== undefined) h['s'] = s.signal;
  if (s.timedOut === true) h['to'] = 1;
  return h;
}

export function encodeAnswer(a: ExecAnswer): Uint8Array {
  switch (a.kind) {
    case 'refused':
      return withBody({ err: a.code, msg: a.message }, new Uint8Array(0));
    case 'drain':
      return withBody({ drain: a.draining ? 1 : 0 }, new Uint8Array(0));
    case 'run':
      return withBody(runHeaderObject(a.status), a.status.chunk);
  }
}

const REFUSALS = new Set<string>([
  'ERR_EXEC_DISABLED',
  'ERR_EXEC_NOT_ENCRYPTED',
  'ERR_EXEC_TOKEN',
  'ERR_EXEC_NOT_ALLOWED',
  'ERR_EXEC_BAD_REQUEST',
  'ERR_EXEC_UNKNOWN_RUN',
]);

/** An answer, or undefined when the bytes are not one (count it; never throws). */
export function decodeAnswer(b: Uint8Array): ExecAnswer | undefined {
  const nl = b.indexOf(0x0a);
  if (nl < 0) return undefined;
  let h: Record<string, unknown>;
  try {
    const v = JSON.parse(dec.decode(b.subarray(0, nl))) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    h = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (typeof h['err'] === 'string') {
    if (!REFUSALS.has(h['err'])) return undefined;
    return { kind: 'refused', code: h['err'] as ExecRefusal, message: typeof h['msg'] === 'string' ? h['msg'] : '' };
  }
  if (h['drain'] === 0 || h['drain'] === 1) return { kind: 'drain', draining: h['drain'] === 1 };
  const x = h['x'];
  if (typeof h['id'] !== 'string' || !isInt(h['o']) || !isInt(h['n']) || !isInt(h['ms'])) return undefined;
  if (x !== null && (typeof x !== 'number' || !Number.isInteger(x))) return undefined;
  const chunk = b.slice(nl + 1);
  if (h['o'] + chunk.length > h['n']) return undefined;
  return {
    kind: 'run',
    status: {
      id: h['id'],
      done: h['d'] === 1,
      off: h['o'],
      total: h['n'],
      cut: isInt(h['c']) ? h['c'] : 0,
      exitCode: x,
      ...(typeof h['s'] === 'string' ? { signal: h['s'] } : {}),
      ...(h['to'] === 1 ? { timedOut: true } : {}),
      durationMs: h['ms'],
      chunk,
    },
  };
}
