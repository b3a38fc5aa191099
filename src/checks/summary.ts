// The `chk` tag: a node's check states in a few bytes, carried by Serf's alive messages.
//
// Format (types.ts): `<n>` when all n checks pass, else `<n>;<name>=<s><occ>[f],…` with
// s = w|c|u (and `p` for a passing check that is flapping: flapping must travel too, and types.ts
// lets a passing entry exist), occ = occurrences capped at MAX_OCCURRENCES, f = flapping.
// Entries are ordered worst first, then by name, so one state always encodes to one string:
// a tag update costs an alive broadcast, so an unchanged state must not look changed.

import { MAX_OCCURRENCES, SUMMARY_MAX_BYTES, publishedOccurrences } from './types.ts';
import type { CheckRecord, CheckStatus, CheckSummary } from './types.ts';

type Entry = CheckSummary['entries'][number];

const LETTER: Record<CheckStatus, string> = { 0: 'p', 1: 'w', 2: 'c', 3: 'u' };
const STATUS_OF_LETTER: Record<string, CheckStatus> = { p: 0, w: 1, c: 2, u: 3 };
/** Worse first: critical, unknown, warning, then passing-but-flapping. */
const RANK: Record<CheckStatus, number> = { 2: 0, 3: 1, 1: 2, 0: 3 };
const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const ENTRY_RE = /^([A-Za-z0-9_.-]{1,32})=([pwcu])([1-9][0-9]?)(f?)$/;

/** Worst first (status rank, then more occurrences, then name): the order kept under the size cap. */
export function compareEntries(a: Entry, b: Entry): number {
  return RANK[a.status] - RANK[b.status] || b.occurrences - a.occurrences || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function encodeEntry(e: Entry): string {
  const occ = Math.max(1, Math.min(MAX_OCCURRENCES, Math.floor(e.occurrences)));
  return `${e.name}=${LETTER[e.status]}${occ}${e.flapping ? 'f' : ''}`;
}

/** The tag value, at most SUMMARY_MAX_BYTES: when too long, the worst entries stay and `+K` counts the rest. */
export function encodeSummary(s: CheckSummary): string {
  const total = Math.max(0, Math.floor(s.total));
  const entries = s.entries.filter((e) => NAME_RE.test(e.name)).sort(compareEntries);
  const omitted = Math.max(0, Math.floor(s.omitted)) + (s.entries.length - entries.length);
  if (entries.length === 0 && omitted === 0) return String(total);
  const head = `${total};`;
  const parts = entries.map(encodeEntry);
  const build = (n: number, rest: number): string =>
    head + [...parts.slice(0, n), ...(rest > 0 ? [`+${rest}`] : [])].join(',');
  let kept = parts.length;
  let out = build(kept, omitted);
  // Names are ASCII, so string length is byte length.
  while (out.length > SUMMARY_MAX_BYTES && kept > 0) {
    kept--;
    out = build(kept, omitted + (parts.length - kept));
  }
  return out;
}

/** Parse a `chk` tag; undefined when malformed (callers count it). Never throws. */
export function decodeSummary(v: string): CheckSummary | undefined {
  if (typeof v !== 'string' || v.length > SUMMARY_MAX_BYTES * 2) return undefined;
  const semi = v.indexOf(';');
  const totalStr = semi < 0 ? v : v.slice(0, semi);
  if (!/^(0|[1-9][0-9]{0,5})$/.test(totalStr)) return undefined;
  const total = Number(totalStr);
  const out: CheckSummary = { total, entries: [], omitted: 0 };
  if (semi < 0) return out;
  const rest = v.slice(semi + 1);
  if (rest === '') return undefined;
  const seen = new Set<string>();
  const items = rest.split(',');
  for (let i = 0; i < items.length; i++) {
    const item = items[i] ?? '';
    const plus = /^\+([1-9][0-9]{0,5})$/.exec(item);
    if (plus !== null) {
      if (i !== items.length - 1) return undefined; // `+K` only last
      out.omitted = Number(plus[1]);
      continue;
    }
    const m = ENTRY_RE.exec(item);
    if (m === null) return undefined;
    const name = m[1] ?? '';
    const status = STATUS_OF_LETTER[m[2] ?? ''];
    const occurrences = Number(m[3]);
    const flapping = m[4] === 'f';
    if (status === undefined || seen.has(name) || occurrences > MAX_OCCURRENCES) return undefined;
    if (status === 0 && !flapping) return undefined; // a passing entry exists only to say "flapping"
    seen.add(name);
    out.entries.push({ name, status, occurrences, flapping });
  }
  if (out.entries.length + out.omitted > total) return undefined;
  return out;
}

/** The summary of a node's records: every non-passing or flapping check (size is encodeSummary's job). */
export function summarize(records: readonly CheckRecord[]): CheckSummary {
  const entries: Entry[] = [];
  for (const r of records) {
    if (r.status === 0 && !r.flapping) continue;
    entries.push({ name: r.name, status: r.status, occurrences: publishedOccurrences(r.occurrences), flapping: r.flapping });
  }
  entries.sort(compareEntries);
  return { total: records.length, entries, omitted: 0 };
}
