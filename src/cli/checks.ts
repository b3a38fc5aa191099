// `kodama checks`: the cluster's check status as the nodes themselves report it. The local agent
// sends the `kodama-checks` query (filtered by role tag / node name); each node running checks
// answers with a ChecksReport. Members that are alive but do not answer (serf agents, nodes with
// no checks) are listed as "no checks"; members that left are not shown.

import type { RpcClient, RpcMember } from '../rpc/index.ts';
import { CHECKS_QUERY, STATE_OF, SUMMARY_TAG } from '../checks/types.ts';
import type { CheckState, CheckStatus, ChecksReport } from '../checks/types.ts';
import type { ParsedFlags } from './flags.ts';
import type { CliIo } from './io.ts';
import { parseDurationMs } from './duration.ts';
import { columnize } from './columnize.ts';
import { runQuery } from './query-run.ts';
import type { QueryRequest } from './query-run.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

export const DEFAULT_QUERY_TIMEOUT_MS = 5000;

const STATES: readonly CheckState[] = ['passing', 'warning', 'critical', 'unknown'];

/** History sparkline: one character per result, oldest first. */
const SPARK: Record<CheckStatus, string> = { 0: '.', 1: 'w', 2: 'x', 3: '?' };

const help = `Usage: kodama checks [options]

  Shows the monitoring checks of the cluster, grouped by role (tag "role") and
  node, as every node reports them (query "${CHECKS_QUERY}" sent through the
  local agent). Alive members that run no checks (serf agents, nodes without
  matching checks) are listed as "no checks"; nodes that run checks (tag
  "${SUMMARY_TAG}") but did not answer in time as "no answer" with their compact
  summary tag; failed members as "failed"; members that left are not shown.

Options:

  -role=NAME                Only nodes with tag role=NAME.
  -node=NAME                Only this node (repeatable); a name no member has
                            is an error.
  -state=STATE              Only checks in this state: passing, warning,
                            critical or unknown (nodes without one are hidden).
  -format=text|json         Output format (default text).
  -aggregate                Per role instead of per node: check counts per
                            state, load 1/5/15 (avg and max), memory used/total
                            (sum and percent), CPU percent (avg and max).
                            Not combinable with -state.
  -timeout=5s               How long to wait for answers at most; the command
                            returns as soon as every node carrying a "${SUMMARY_TAG}"
                            tag has answered (the query is sent again, every
                            half second, to those still missing).
${RPC_HELP}

Text output, per check: name, state, occurrences (consecutive results in this
state), "flapping" when it is, the history (oldest first; "." passing,
"w" warning, "x" critical, "?" unknown) and the last output line.

JSON output (-format json):

  { "nodes": [ { "node": "web-1", "role": "web", "status": "alive",
                 "answered": true, "summary": "2;disk=c3",
                 "truncated": false,
                 "checks": [ { "name": "disk", "state": "critical", "status": 2,
                               "occurrences": 3, "flapping": false,
                               "history": "000222", "output": "...",
                               "last_run_at": 1764032400000 } ],
                 "metrics": { "load1": 0.5, "load5": 0.4, "load15": 0.3,
                              "mem_used_bytes": 1, "mem_total_bytes": 2,
                              "cpu_percent": 12.5 } } ],
    "counts": { "passing": 0, "warning": 0, "critical": 1, "unknown": 0 } }

  "answered": false (with "checks": [] and "metrics": null) for a member that
  did not answer; "summary" is the node's "${SUMMARY_TAG}" tag (null: it runs
  no checks). With -aggregate the document is { "roles": [ { "role", "nodes",
  "answered", "counts", "load1", "load5", "load15" ({"avg","max"}), "memory"
  ({"used_bytes","total_bytes","percent"}), "cpu_percent" ({"avg","max"}) } ] };
  figures are null when no node of the role answered.

Exit status (as a Nagios plugin): 0 when nothing shown is critical, 2 when a
shown check is critical (for a node that did not answer: its summary tag
lists one) or a shown member is failed, 1 on errors.
`;

// ---- collecting answers ----------------------------------------------------------------------

/** How long to wait before asking the nodes still missing again. */
export const RESEND_AFTER_MS = 500;
const MAX_ROUNDS = 5;

/** A query to the nodes of `role` (all when unset) and/or the named `nodes`, without acks or relays. */
export function roleQuery(name: string, payload: Uint8Array | null, o: { nodes: string[]; role?: string | undefined; timeoutMs: number }): QueryRequest {
  return { name, payload, filterNodes: o.nodes, filterTags: o.role === undefined ? {} : { role: exactRegexp(o.role) }, requestAck: false, relayFactor: 0, timeoutMs: o.timeoutMs };
}

/**
 * Run a query and collect the responses by node. Queries travel by gossip, and in a small
 * cluster (retransmits = mult × log10(N+1), 2 in the local profile) a node is missed now and
 * then: so every RESEND_AFTER_MS the query is sent again, filtered to the nodes `askAgain()`
 * names (those that may still answer), at most MAX_ROUNDS times in all. Returns before the
 * deadline once every node in `waitFor` has answered (when it is non-empty). Rejects with an
 * RpcError if the agent fails.
 */
export async function collectAnswers(
  client: RpcClient,
  req: QueryRequest,
  io: CliIo,
  opts: {
    waitFor: ReadonlySet<string>;
    askAgain: (answers: ReadonlyMap<string, string>, acks: ReadonlySet<string>) => string[];
    resendAfterMs?: number;
  },
): Promise<{ answers: Map<string, string>; acks: Set<string>; interrupted: boolean }> {
  const answers = new Map<string, string>();
  const acks = new Set<string>();
  const enough = new AbortController();
  const user = io.interrupt?.();
  let userStop = false;
  const onUser = (): void => {
    userStop = true;
    enough.abort();
  };
  if (user?.aborted === true) return { answers, acks, interrupted: true };
  user?.addEventListener('abort', onUser, { once: true });
  const waitFor = opts.waitFor;
  const complete = (): boolean => waitFor.size > 0 && [...waitFor].every((n) => answers.has(n));
  const deadline = Date.now() + req.timeoutMs;
  const rounds: Promise<void>[] = [];
  let failure: unknown;
  const launch = (filterNodes: string[], timeoutMs: number): void => {
    const round = runQuery(
      client,
      { ...req, filterNodes, timeoutMs },
      {
        result: (r) => {
          if (r.type === 'ack') {
            acks.add(r.from);
            return;
          }
          answers.set(r.from, Buffer.from(r.payload ?? new Uint8Array(0)).toString('utf8'));
          // Abort on a later turn: results replayed while runQuery starts arrive before it waits,
          // and an abort seen then makes it return without observing its own promise (which the
          // client's close would then reject, unhandled).
          if (complete()) setTimeout(() => enough.abort(), 0);
        },
      },
      enough.signal,
    ).then(
      () => undefined,
      (e: unknown) => {
        failure ??= e;
        enough.abort();
      },
    );
    rounds.push(round);
  };
  let timer: NodeJS.Timeout | undefined;
  const resendLater = (): void => {
    timer = setTimeout(() => {
      const left = deadline - Date.now();
      const who = opts.askAgain(answers, acks);
      if (enough.signal.aborted || who.length === 0 || left < 200 || rounds.length >= MAX_ROUNDS) return;
      launch(who, left);
      resendLater();
    }, opts.resendAfterMs ?? RESEND_AFTER_MS);
  };
  launch(req.filterNodes, req.timeoutMs);
  resendLater();
  try {
    // A round launched while waiting is waited for too.
    for (let seen = 0; seen < rounds.length; ) {
      seen = rounds.length;
      await Promise.all(rounds);
    }
  } finally {
    clearTimeout(timer);
    user?.removeEventListener('abort', onUser);
  }
  if (failure !== undefined) throw failure;
  return { answers, acks, interrupted: userStop };
}

/** Go regexp for an exact tag value (serf's tag filters are unanchored regexps). */
export function exactRegexp(value: string): string {
  return `^${value.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}$`;
}

// ---- parsing reports ---------------------------------------------------------------------------

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A node's answer, validated; undefined when it is not a ChecksReport (never throws). */
export function parseReport(text: string): ChecksReport | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r['node'] !== 'string' || !Array.isArray(r['checks'])) return undefined;
  const checks: ChecksReport['checks'] = [];
  for (const c of r['checks'] as unknown[]) {
    if (typeof c !== 'object' || c === null) return undefined;
    const x = c as Record<string, unknown>;
    const status = x['status'];
    if (typeof x['name'] !== 'string' || (status !== 0 && status !== 1 && status !== 2 && status !== 3)) return undefined;
    const history = typeof x['history'] === 'string' && /^[0-3]*$/.test(x['history']) ? x['history'] : undefined;
    checks.push({
      name: x['name'],
      status,
      output: typeof x['output'] === 'string' ? x['output'] : '',
      occurrences: isNum(x['occurrences']) ? x['occurrences'] : 0,
      flapping: x['flapping'] === true,
      ...(history === undefined ? {} : { history }),
      lastRunAt: isNum(x['lastRunAt']) ? x['lastRunAt'] : 0,
    });
  }
  const m = (typeof r['metrics'] === 'object' && r['metrics'] !== null ? r['metrics'] : {}) as Record<string, unknown>;
  const num = (k: string): number => (isNum(m[k]) ? m[k] : 0);
  const tags = r['tags'];
  return {
    node: r['node'],
    ...(typeof tags === 'object' && tags !== null && !Array.isArray(tags)
      ? { tags: Object.fromEntries(Object.entries(tags).filter(([, val]) => typeof val === 'string')) as Record<string, string> }
      : {}),
    checks,
    metrics: {
      load1: num('load1'),
      load5: num('load5'),
      load15: num('load15'),
      memUsedBytes: num('memUsedBytes'),
      memTotalBytes: num('memTotalBytes'),
      cpuPercent: num('cpuPercent'),
    },
    ...(r['truncated'] === true ? { truncated: true } : {}),
  };
}

// ---- the view ------------------------------------------------------------------------------------

export interface NodeView {
  node: string;
  role: string;
  status: RpcMember['status'];
  /** undefined: did not answer (or answered something that is not a report). */
  report: ChecksReport | undefined;
  /** The answer was not a ChecksReport. */
  badAnswer: boolean;
  /** The member's `chk` tag (compact summary; undefined: the node runs no checks). */
  summary: string | undefined;
}

export interface ChecksOptions {
  role: string | undefined;
  nodes: string[];
  state: CheckState | undefined;
  format: 'text' | 'json';
  aggregate: boolean;
  timeoutMs: number;
}

/** Members to show: the filters, and no member that left (or is leaving). */
export function shownMembers(members: readonly RpcMember[], o: Pick<ChecksOptions, 'role' | 'nodes'>): RpcMember[] {
  return members.filter(
    (m) =>
      (m.status === 'alive' || m.status === 'failed') &&
      (o.role === undefined || m.tags['role'] === o.role) &&
      (o.nodes.length === 0 || o.nodes.includes(m.name)),
  );
}

export function buildViews(members: readonly RpcMember[], answers: ReadonlyMap<string, string>): NodeView[] {
  const views = members.map((m): NodeView => {
    const text = answers.get(m.name);
    const report = text === undefined ? undefined : parseReport(text);
    return {
      node: m.name,
      role: m.tags['role'] ?? '',
      status: m.status,
      report,
      badAnswer: text !== undefined && report === undefined,
      summary: m.tags[SUMMARY_TAG],
    };
  });
  return views.sort((a, b) => (a.role === b.role ? (a.node < b.node ? -1 : 1) : a.role === '' ? 1 : b.role === '' ? -1 : a.role < b.role ? -1 : 1));
}

type Check = ChecksReport['checks'][number];

function checksOf(v: NodeView, state: CheckState | undefined): Check[] {
  const all = v.report?.checks ?? [];
  return [...all].filter((c) => state === undefined || STATE_OF[c.status] === state).sort((a, b) => (a.name < b.name ? -1 : 1));
}

function oneLine(s: string, max = 80): string {
  const line = s.split(/\r?\n/)[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function sparkline(history: string | undefined): string {
  if (history === undefined) return '';
  return [...history].map((d) => SPARK[Number(d) as CheckStatus] ?? ' ').join('');
}

function ago(atMs: number, nowMs: number): string {
  if (atMs <= 0) return '';
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

export function formatText(views: readonly NodeView[], state: CheckState | undefined, nowMs: number): string {
  const out: string[] = [];
  let role: string | undefined;
  for (const v of views) {
    const checks = checksOf(v, state);
    if (state !== undefined && checks.length === 0) continue;
    if (v.role !== role) {
      role = v.role;
      if (out.length > 0) out.push('');
      out.push(role === '' ? '(no role)' : `role ${role}`);
    }
    if (v.status === 'failed') {
      out.push(`  ${v.node}  failed`);
      continue;
    }
    if (v.report === undefined) {
      if (v.badAnswer) out.push(`  ${v.node}  unreadable answer${v.summary === undefined ? '' : ` (summary tag: ${v.summary})`}`);
      else if (v.summary !== undefined) out.push(`  ${v.node}  no answer (summary tag: ${v.summary})`);
      else out.push(`  ${v.node}  no checks`);
      continue;
    }
    if (v.report.checks.length === 0) {
      out.push(`  ${v.node}  no checks`);
      continue;
    }
    out.push(`  ${v.node}${v.report.truncated === true ? '  (report truncated)' : ''}`);
    // the flapping column only where something flaps: no gap of blanks otherwise
    const anyFlapping = checks.some((c) => c.flapping);
    const rows = checks.map((c) => [
      c.name,
      STATE_OF[c.status],
      `${c.occurrences}x`,
      ...(anyFlapping ? [c.flapping ? 'flapping' : '-'] : []),
      sparkline(c.history),
      ago(c.lastRunAt, nowMs),
      oneLine(c.output),
    ]);
    // columnize trims cells: keep the indentation outside it
    out.push(...columnize(rows).split('\n').map((l) => `    ${l}`));
  }
  return out.join('\n');
}

export function counts(views: readonly NodeView[], state: CheckState | undefined): Record<CheckState, number> {
  const n: Record<CheckState, number> = { passing: 0, warning: 0, critical: 0, unknown: 0 };
  for (const v of views) for (const c of checksOf(v, state)) n[STATE_OF[c.status]]++;
  return n;
}

export function formatJson(views: readonly NodeView[], state: CheckState | undefined): string {
  const nodes = views
    .map((v) => ({ v, checks: checksOf(v, state) }))
    .filter(({ checks }) => state === undefined || checks.length > 0)
    .map(({ v, checks }) => ({
      node: v.node,
      role: v.role,
      status: v.status,
      answered: v.report !== undefined,
      summary: v.summary ?? null,
      truncated: v.report?.truncated === true,
      checks: checks.map((c) => ({
        name: c.name,
        state: STATE_OF[c.status],
        status: c.status,
        occurrences: c.occurrences,
        flapping: c.flapping,
        history: c.history ?? '',
        output: c.output,
        last_run_at: c.lastRunAt,
      })),
      metrics:
        v.report === undefined
          ? null
          : {
              load1: v.report.metrics.load1,
              load5: v.report.metrics.load5,
              load15: v.report.metrics.load15,
              mem_used_bytes: v.report.metrics.memUsedBytes,
              mem_total_bytes: v.report.metrics.memTotalBytes,
              cpu_percent: v.report.metrics.cpuPercent,
            },
    }));
  return JSON.stringify({ nodes, counts: counts(views, state) }, null, 2);
}

// ---- aggregates ----------------------------------------------------------------------------------

export interface RoleAggregate {
  role: string;
  nodes: number;
  answered: number;
  counts: Record<CheckState, number>;
  load1: { avg: number; max: number } | null;
  load5: { avg: number; max: number } | null;
  load15: { avg: number; max: number } | null;
  memory: { used_bytes: number; total_bytes: number; percent: number } | null;
  cpu_percent: { avg: number; max: number } | null;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

function avgMax(xs: number[]): { avg: number; max: number } | null {
  if (xs.length === 0) return null;
  return { avg: round2(xs.reduce((a, b) => a + b, 0) / xs.length), max: round2(Math.max(...xs)) };
}

export function aggregate(views: readonly NodeView[]): RoleAggregate[] {
  const byRole = new Map<string, NodeView[]>();
  for (const v of views) byRole.set(v.role, [...(byRole.get(v.role) ?? []), v]);
  return [...byRole].map(([role, vs]) => {
    const reports = vs.flatMap((v) => (v.report === undefined ? [] : [v.report]));
    const used = reports.reduce((a, r) => a + r.metrics.memUsedBytes, 0);
    const total = reports.reduce((a, r) => a + r.metrics.memTotalBytes, 0);
    return {
      role,
      nodes: vs.length,
      answered: reports.length,
      counts: counts(vs, undefined),
      load1: avgMax(reports.map((r) => r.metrics.load1)),
      load5: avgMax(reports.map((r) => r.metrics.load5)),
      load15: avgMax(reports.map((r) => r.metrics.load15)),
      memory: reports.length === 0 ? null : { used_bytes: used, total_bytes: total, percent: total > 0 ? round2((100 * used) / total) : 0 },
      cpu_percent: avgMax(reports.map((r) => r.metrics.cpuPercent)),
    };
  });
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

export function formatAggregateText(aggs: readonly RoleAggregate[]): string {
  const am = (x: { avg: number; max: number } | null): string => (x === null ? '-' : `avg ${x.avg.toFixed(2)} max ${x.max.toFixed(2)}`);
  return aggs
    .map((a) => {
      const c = a.counts;
      const rows = [
        ['checks', `passing ${c.passing}  warning ${c.warning}  critical ${c.critical}  unknown ${c.unknown}`],
        ['load 1m', am(a.load1)],
        ['load 5m', am(a.load5)],
        ['load 15m', am(a.load15)],
        ['memory', a.memory === null ? '-' : `${bytes(a.memory.used_bytes)} / ${bytes(a.memory.total_bytes)} (${a.memory.percent.toFixed(1)}%)`],
        ['cpu', a.cpu_percent === null ? '-' : `avg ${a.cpu_percent.avg.toFixed(1)}% max ${a.cpu_percent.max.toFixed(1)}%`],
      ];
      const head = `${a.role === '' ? '(no role)' : `role ${a.role}`}: ${a.nodes} node${a.nodes === 1 ? '' : 's'}, ${a.answered} answered`;
      return [head, ...columnize(rows).split('\n').map((l) => `  ${l}`)].join('\n');
    })
    .join('\n\n');
}

/** Whether a `chk` tag lists a critical check (`name=c<occ>`). */
export function summaryHasCritical(tag: string | undefined): boolean {
  const list = tag?.split(';')[1];
  return list !== undefined && list.split(',').some((e) => /^[^=]+=c\d/.test(e));
}

/**
 * Nagios-style: 2 when a shown check is critical (for a node that did not answer: its chk tag
 * lists one) or a shown member failed, else 0.
 */
export function exitCode(views: readonly NodeView[], state: CheckState | undefined): number {
  const shown = views.filter((v) => state === undefined || checksOf(v, state).length > 0);
  const critical = shown.some(
    (v) =>
      v.status === 'failed' ||
      checksOf(v, state).some((c) => c.status === 2) ||
      (v.report === undefined && state === undefined && summaryHasCritical(v.summary)),
  );
  return critical ? 2 : 0;
}

// ---- the command -----------------------------------------------------------------------------------

export function parseChecksFlags(f: ParsedFlags): ChecksOptions {
  if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
  const format = f.strings.get('format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw usage(`Invalid format: ${format} (use text or json)`);
  const state = f.strings.get('state');
  if (state !== undefined && !(STATES as readonly string[]).includes(state)) {
    throw usage(`Invalid state: ${state} (use passing, warning, critical or unknown)`);
  }
  const aggregateFlag = f.bools.has('aggregate');
  if (aggregateFlag && state !== undefined) throw usage('-state cannot be combined with -aggregate (the aggregate counts every state)');
  const t = f.strings.get('timeout');
  const timeoutMs = t === undefined ? DEFAULT_QUERY_TIMEOUT_MS : parseDurationMs(t);
  if (timeoutMs <= 0) throw usage(`-timeout must be positive, got "${t}"`);
  const role = f.strings.get('role');
  if (role === '') throw usage('-role must not be empty');
  return { role, nodes: f.lists.get('node') ?? [], state: state as CheckState | undefined, format, aggregate: aggregateFlag, timeoutMs };
}

export const checksCommand = rpcCommand({
  name: 'checks',
  synopsis: 'Shows monitoring checks by role and node',
  help,
  flags: [
    { name: 'role', kind: 'string' },
    { name: 'node', kind: 'list' },
    { name: 'state', kind: 'string' },
    { name: 'format', kind: 'string' },
    { name: 'aggregate', kind: 'bool' },
    { name: 'timeout', kind: 'string' },
  ],
  failure: 'Error querying checks',
  parse: (f) => parseChecksFlags(f),
  exec: async (client, o, io) => {
    const all = await client.members();
    const unknown = o.nodes.filter((n) => !all.some((m) => m.name === n));
    if (unknown.length > 0) {
      io.stderr(`No member named ${unknown.join(', ')} (see "kodama members").\n`);
      return 1;
    }
    const members = shownMembers(all, o);
    // Nodes running checks carry the `chk` tag: once they have all answered there is nothing to
    // wait for (a serf agent never answers).
    const expected = new Set(members.filter((m) => m.status === 'alive' && m.tags[SUMMARY_TAG] !== undefined).map((m) => m.name));
    const alive = members.filter((m) => m.status === 'alive').map((m) => m.name);
    const { answers, interrupted } = await collectAnswers(
      client,
      roleQuery(CHECKS_QUERY, null, o),
      io,
      // Asking again costs one small gossip message: ask every alive member still silent.
      { waitFor: expected, askAgain: (got) => alive.filter((n) => !got.has(n)) },
    );
    if (interrupted) return 1;
    const views = buildViews(members, answers);
    if (o.aggregate) {
      const aggs = aggregate(views);
      io.stdout(o.format === 'json' ? `${JSON.stringify({ roles: aggs }, null, 2)}\n` : aggs.length === 0 ? 'No members match.\n' : `${formatAggregateText(aggs)}\n`);
    } else if (o.format === 'json') {
      io.stdout(`${formatJson(views, o.state)}\n`);
    } else {
      const text = formatText(views, o.state, Date.now());
      io.stdout(text === '' ? 'No members match.\n' : `${text}\n`);
    }
    return exitCode(views, o.state);
  },
});
