// `kodama metrics -role web [-since 15m] [-format json]`: a role's performance over time. Sends
// the `kodama-metrics` query through the local agent; every matching agent answers with its own
// history on one grid (src/metrics/series.ts), and this prints per role and time step the
// min / p50 / p95 / max over the role's nodes, and names the nodes that stand out.

import { FIELD_INDEX, FIELD_NAMES } from '../metrics/series.ts';
import type { FieldView } from '../metrics/series.ts';
import { METRICS_QUERY } from '../metrics/protocol.ts';
import { DEFAULT_STEP_S, buildMetricsReport, metricsRequest } from '../metrics/report.ts';
import type { MetricsReport } from '../metrics/report.ts';
import { columnize } from './columnize.ts';
import { collectAnswers, exactRegexp, roleQuery } from './checks.ts';
import { positiveDurationFlag } from './duration.ts';
import type { CliIo } from './io.ts';
import { RPC_HELP, rpcCommand, tagFilterFrom, usage } from './rpc-command.ts';

const help = `Usage: kodama metrics [options]

  A role's performance over time. Every kodama agent samples its host and
  itself (every 10 s by default, an hour kept; -metrics-interval on the agent);
  this asks the matching agents for the window (one query, nothing gossiped
  meanwhile) and prints per role: each figure's min / p50 / p95 / max over the
  window and the nodes that stand out (outliers: far from the role's median),
  then per time step the same four figures for -field (cpu by default).

  Figures: ${FIELD_NAMES.join(', ')}.

Options:

  -role=NAME                Only members of this role (else every role, apart).
  -tag <key>=<regexp>       Only members with a matching tag (repeatable).
  -node=NAME                Only this member (repeatable).
  -since=15m                How far back (up to the agents' history, 1h by
                            default). The step is chosen so that one node's
                            answer fits a query response (about 30 steps).
  -step=10s                 The width of a step (default: the agents' 10 s
                            sampling, widened to fit); each step is the mean of
                            the samples in it.
  -field=NAME               Figures to show per step (repeatable or comma
                            separated; default cpu). JSON has every figure.
  -format=text              text or json.
  -timeout=5s               How long to wait for answers.
${RPC_HELP}

Exit status: 0 when at least one node answered; 1 otherwise.
`;


interface MetricsOptions {
  role: string | undefined;
  tags: Record<string, string>;
  nodes: string[];
  sinceS: number;
  /** The narrowest step wanted (the agents' sampling interval). */
  sampleS: number;
  stepFields: string[];
  format: 'text' | 'json';
  timeoutMs: number;
}

function fmt(v: number, unit: string): string {
  if (Number.isNaN(v)) return '-';
  if (unit === 'B/s') {
    const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
    let x = v;
    let i = 0;
    while (x >= 1024 && i < units.length - 1) {
      x /= 1024;
      i++;
    }
    return `${x.toFixed(x < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }
  if (unit === '') return v.toFixed(2);
  return v.toFixed(1);
}

function clock(s: number): string {
  return new Date(s * 1000).toISOString().slice(11, 19);
}

function fieldTitle(f: FieldView): string {
  return f.unit === '' || f.unit === 'B/s' ? f.field : `${f.field} ${f.unit}`;
}

function outlierText(f: FieldView): string {
  return f.outliers.map((o) => `${o.node} (${fmt(o.value, f.unit)} vs median ${fmt(o.median, f.unit)})`).join(', ');
}

export function formatText(r: MetricsReport, stepFields: readonly string[]): string {
  const out: string[] = [];
  const span = `${clock(r.endS - r.n * r.stepS)}-${clock(r.endS)} UTC`;
  for (const role of r.roles) {
    out.push(`role ${role.role === '' ? '(none)' : role.role}: ${role.nodes.length} node${role.nodes.length === 1 ? '' : 's'} (${role.nodes.join(', ')}), ${span} in ${r.n} steps of ${r.stepS}s`);
    out.push('');
    const rows = [['FIGURE', 'MIN', 'P50', 'P95', 'MAX', 'OUTLIERS']];
    for (const f of role.fields) rows.push([fieldTitle(f), fmt(f.window.min, f.unit), fmt(f.window.p50, f.unit), fmt(f.window.p95, f.unit), fmt(f.window.max, f.unit), outlierText(f)]);
    out.push(columnize(rows));
    for (const name of stepFields) {
      const f = role.fields.find((x) => x.field === name);
      if (f === undefined) continue;
      out.push('', `${fieldTitle(f)}: ${f.label}, per step`);
      const steps = [['TIME', 'NODES', 'MIN', 'P50', 'P95', 'MAX']];
      for (const s of f.steps) steps.push([clock(s.t), String(s.count), fmt(s.min, f.unit), fmt(s.p50, f.unit), fmt(s.p95, f.unit), fmt(s.max, f.unit)]);
      out.push(columnize(steps));
    }
    out.push('');
  }
  if (r.silent.length > 0) out.push(`no answer from: ${r.silent.join(', ')} (metrics off on that agent, a serf agent, or slower than -timeout)`);
  return `${out.join('\n').trimEnd()}\n`;
}

export async function metricsRun(client: Parameters<typeof collectAnswers>[0], o: MetricsOptions, io: CliIo, nowS = Date.now() / 1000): Promise<number> {
  const members = (await client.membersFiltered({ status: 'alive', tags: o.tags })).filter((m) => o.nodes.length === 0 || o.nodes.includes(m.name));
  if (members.length === 0) {
    io.stderr(`Error: no alive member matches (see kodama members${o.role !== undefined ? ` -role ${o.role}` : ''})\n`);
    return 1;
  }
  const { grid, payload } = metricsRequest(nowS, o.sinceS, o.sampleS);
  const names = new Set(members.map((m) => m.name));
  const { answers, interrupted } = await collectAnswers(
    client,
    roleQuery(METRICS_QUERY, payload, o),
    io,
    { waitFor: names, askAgain: (got) => [...names].filter((n) => !got.has(n)) },
  );
  if (interrupted) return 1;
  const report = buildMetricsReport(members, answers, grid);
  io.stdout(o.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatText(report, o.stepFields));
  if (report.roles.length === 0) {
    io.stderr('Error: no node answered: sampling is off on them (-metrics-interval 0), or they are serf agents\n');
    return 1;
  }
  return 0;
}

export const metricsCommand = rpcCommand<MetricsOptions>({
  name: 'metrics',
  synopsis: "Shows a role's performance over time (min/p50/p95/max, outliers)",
  help,
  failure: 'Error reading metrics',
  timeoutMs: 30_000,
  flags: [
    { name: 'role', kind: 'string' },
    { name: 'tag', kind: 'list' },
    { name: 'node', kind: 'list' },
    { name: 'since', kind: 'string' },
    { name: 'step', kind: 'string' },
    { name: 'field', kind: 'list' },
    { name: 'format', kind: 'string' },
    { name: 'timeout', kind: 'string' },
  ],
  parse(f) {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const role = f.strings.get('role');
    // -role is a name here (the per-role view groups by it), not a pattern.
    const tags = { ...tagFilterFrom(f), ...(role !== undefined ? { role: exactRegexp(role) } : {}) };
    const sinceMs = positiveDurationFlag(f, 'since') ?? 15 * 60_000;
    if (sinceMs < 10_000 || sinceMs > 7 * 86_400_000) throw usage(`invalid -since: from 10s to 7 days (e.g. 5m, 1h)`);
    const stepMs = positiveDurationFlag(f, 'step') ?? DEFAULT_STEP_S * 1000;
    if (stepMs < 1000 || stepMs % 1000 !== 0) throw usage('invalid -step: whole seconds, at least 1s');
    const stepFields = (f.lists.get('field') ?? ['cpu']).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
    for (const x of stepFields) if (!FIELD_INDEX.has(x)) throw usage(`unknown figure "${x}" for -field (one of ${FIELD_NAMES.join(', ')})`);
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`invalid -format "${format}": text or json`);
    const timeoutMs = positiveDurationFlag(f, 'timeout') ?? 5000;
    return { role, tags, nodes: f.lists.get('node') ?? [], sinceS: Math.round(sinceMs / 1000), sampleS: stepMs / 1000, stepFields, format, timeoutMs };
  },
  exec: (client, o, io) => metricsRun(client, o, io),
});
