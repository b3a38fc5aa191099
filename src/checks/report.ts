// A node's answer to the `kodama-checks` query: its check records and metrics as compact JSON,
// small enough for Serf's query response limit (1024 bytes by default). When the full detail does
// not fit, it is reduced step by step, least useful first: outputs are clipped (shorter and
// shorter), then histories dropped, then passing checks dropped, then the mildest of the rest;
// `truncated` says that something was left out or cut. Sizes are those of encodeReport().

import { compareEntries } from './summary.ts';
import type { CheckRecord, ChecksReport } from './types.ts';
import type { NodeMetrics } from './metrics.ts';

export const REPORT_MAX_BYTES = 1024;
/** Output lengths tried in turn while the report is too big. */
const OUTPUT_CLIPS = [240, 120, 60, 24, 0];

export interface ReportOptions {
  /** Only these checks (the query's optional filter {checks: [...]}). */
  checks?: readonly string[];
  /** Size limit in bytes (default 1024: Serf's query_response_size_limit). */
  maxBytes?: number;
}

type ReportCheck = ChecksReport['checks'][number];

/**
 * The wire form: JSON without the defaults a reader fills in (`flapping: false`, an empty
 * `output`), which buys room for about three more checks in 1024 bytes.
 */
export function encodeReport(r: ChecksReport): string {
  return JSON.stringify({
    ...r,
    checks: r.checks.map(({ output, flapping, ...c }) => ({
      ...c,
      ...(output !== '' ? { output } : {}),
      ...(flapping ? { flapping } : {}),
    })),
  });
}

function byteLength(r: ChecksReport): number {
  return Buffer.byteLength(encodeReport(r), 'utf8');
}

function clip(s: string, n: number): string {
  if (s.length <= n) return s;
  return n <= 1 ? '' : `${s.slice(0, n - 1)}…`;
}

export function buildReport(
  self: { name: string; tags?: Record<string, string> },
  records: readonly CheckRecord[],
  metrics: NodeMetrics,
  opts: ReportOptions = {},
): ChecksReport {
  const maxBytes = opts.maxBytes ?? REPORT_MAX_BYTES;
  const wanted = opts.checks !== undefined && opts.checks.length > 0 ? new Set(opts.checks) : undefined;
  const recs = records
    .filter((r) => wanted === undefined || wanted.has(r.name))
    .slice()
    .sort((a, b) => compareEntries({ ...a, status: a.status }, { ...b, status: b.status }));
  const full: ReportCheck[] = recs.map((r) => ({
    name: r.name,
    status: r.status,
    output: r.output,
    occurrences: r.occurrences,
    flapping: r.flapping,
    history: r.history.join(''),
    lastRunAt: r.lastRunAt,
  }));
  const make = (checks: ReportCheck[], truncated: boolean, withTags = true): ChecksReport => ({
    node: self.name,
    ...(withTags && self.tags !== undefined ? { tags: self.tags } : {}),
    checks,
    metrics,
    ...(truncated ? { truncated: true } : {}),
  });
  let report = make(full, false);
  if (byteLength(report) <= maxBytes) return report;
  let checks = full;
  for (const n of OUTPUT_CLIPS) {
    checks = checks.map((c) => ({ ...c, output: clip(c.output, n) }));
    report = make(checks, true);
    if (byteLength(report) <= maxBytes) return report;
  }
  // Histories: the passing checks' first (a row of zeros tells little), then all.
  for (const all of [false, true]) {
    checks = checks.map(({ history, ...c }) => (all || c.status === 0 ? c : { ...c, ...(history !== undefined ? { history } : {}) }));
    report = make(checks, true);
    if (byteLength(report) <= maxBytes) return report;
  }
  // Passing, non-flapping checks say least; they go first. The list is worst first already.
  checks = checks.filter((c) => c.status !== 0 || c.flapping);
  report = make(checks, true);
  while (byteLength(report) > maxBytes && checks.length > 0) {
    checks = checks.slice(0, -1);
    report = make(checks, true);
  }
  if (byteLength(report) > maxBytes) report = make([], true, false);
  return report;
}
