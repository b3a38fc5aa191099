// The agent's figures as metric families, once, for every way they leave the process: the HTTP
// API's Prometheus endpoint (`GET /metrics`, renderPrometheus) and, later, statsd/statsite lines.
// Names follow Prometheus's conventions: a `kodama_` prefix, base units in the name (`_seconds`,
// `_bytes`), `_total` on counters; labels for what varies (status, reason, service, backend).
// The figures are the ones `kodama info` shows (stats sections) plus live state (members, services,
// checks, the balancer's backends, the deploy coordinated here); docs/operations.md lists them.

import { getHeapSpaceStatistics } from 'node:v8';
import type { Member } from '../serf/serf.ts';
import type { Histogram } from './histogram.ts';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  /** counter / gauge samples (empty: the family is written with no sample). */
  samples: Sample[];
  /** histogram: upper bounds (seconds or other base unit), cumulative counts, sum, count. */
  histogram?: { bounds: readonly number[]; counts: readonly number[]; sum: number; count: number };
}

/** What collectMetrics reads of the agent (Agent has it all). */
export interface TelemetryHost {
  members(): Member[];
  stats(): Record<string, Record<string, string>>;
  /** Monitoring checks on this node with a result. */
  checkRecords(): { name: string; status: number; flapping: boolean }[];
  /** Configured services and their health. */
  serviceStatus(): { name: string; health: string }[];
  /** Round trips of acked probes, seconds. */
  readonly probeRtt: Histogram;
  /** Events waiting in the handler lanes. */
  handlerQueueDepth(): number;
  readonly balancerRole: { report(): Promise<{ services: Record<string, { backends: { id: string; state: string; active: number; requests: number; errors: number }[] }> }> } | undefined;
  readonly deploys: { current(): { spec: { service: string }; phase: string } | undefined } | undefined;
}

const STATUSES = ['alive', 'leaving', 'left', 'failed'] as const;
const SERVICE_HEALTH = ['starting', 'healthy', 'unhealthy', 'draining'] as const;
const PROCESS_START_S = Date.now() / 1000 - process.uptime();

function num(section: Record<string, string> | undefined, key: string): number {
  const v = Number(section?.[key]);
  return Number.isFinite(v) ? v : 0;
}

/** Every family, in a fixed order; values read now. */
export async function collectMetrics(host: TelemetryHost): Promise<MetricFamily[]> {
  const stats = host.stats();
  const ml = stats['memberlist'];
  const serf = stats['serf'];
  const handlers = stats['handlers'];
  const out: MetricFamily[] = [];
  const counter = (name: string, help: string, samples: Sample[]): void => void out.push({ name, help, type: 'counter', samples });
  const gauge = (name: string, help: string, samples: Sample[]): void => void out.push({ name, help, type: 'gauge', samples });

  // Membership.
  const byStatus = new Map<string, number>(STATUSES.map((s) => [s, 0]));
  for (const m of host.members()) byStatus.set(m.status, (byStatus.get(m.status) ?? 0) + 1);
  gauge('kodama_members', 'Members this agent knows, by status.', [...byStatus].map(([status, value]) => ({ labels: { status }, value })));
  gauge('kodama_health_score', "Lifeguard's awareness: 0 is healthy; higher means this node's own probes are going unanswered.", [{ value: num(serf, 'health_score') }]);
  gauge('kodama_lamport_time', 'Serf Lamport clocks (member, event, query).', [
    { labels: { clock: 'member' }, value: num(serf, 'member_time') },
    { labels: { clock: 'event' }, value: num(serf, 'event_time') },
    { labels: { clock: 'query' }, value: num(serf, 'query_time') },
  ]);

  // Gossip.
  counter('kodama_gossip_packets_received_total', 'Gossip packets (UDP) received.', [{ value: num(ml, 'packets-in') }]);
  counter('kodama_gossip_packets_sent_total', 'Gossip packets (UDP) sent.', [{ value: num(ml, 'packets-out') }]);
  counter('kodama_gossip_received_bytes_total', 'Bytes of gossip packets received.', [{ value: num(ml, 'bytes-in') }]);
  counter('kodama_gossip_sent_bytes_total', 'Bytes of gossip packets sent.', [{ value: num(ml, 'bytes-out') }]);
  counter('kodama_gossip_streams_total', 'TCP streams (push/pull, fallback probes, user messages), by direction.', [
    { labels: { direction: 'in' }, value: num(ml, 'streams-in') },
    { labels: { direction: 'out' }, value: num(ml, 'streams-out') },
  ]);
  const dropped = stats['dropped'] ?? {};
  counter(
    'kodama_dropped_total',
    'Input dropped (malformed, undecryptable, stale, over a limit), by reason.',
    Object.keys(dropped)
      .filter((k) => k !== 'total')
      .sort()
      .map((reason) => ({ labels: { reason }, value: num(dropped, reason) })),
  );
  gauge('kodama_queue_depth', 'Broadcasts waiting to be gossiped, by queue.', [
    { labels: { queue: 'memberlist' }, value: num(ml, 'broadcasts-queued') },
    { labels: { queue: 'intent' }, value: num(serf, 'intent_queue') },
    { labels: { queue: 'event' }, value: num(serf, 'event_queue') },
    { labels: { queue: 'query' }, value: num(serf, 'query_queue') },
  ]);

  // Failure detection.
  counter('kodama_probes_total', 'Probes this node started (one per probe interval).', [{ value: num(ml, 'probes') }]);
  counter('kodama_probe_failures_total', 'Probes that got no ack, direct or indirect.', [{ value: num(ml, 'probe-failures') }]);
  counter('kodama_indirect_probes_total', 'Probes that needed other members to ask for them.', [{ value: num(ml, 'indirect-probes') }]);
  const rtt = host.probeRtt.snapshot();
  out.push({ name: 'kodama_probe_rtt_seconds', help: 'Round trip of directly acked probes.', type: 'histogram', samples: [], histogram: rtt });
  counter('kodama_suspicions_total', 'Members this node started to suspect (its own probes or gossip).', [{ value: num(ml, 'suspicions') }]);
  counter('kodama_refutations_total', 'Times this node refuted a suspicion or death of itself.', [{ value: num(ml, 'refutations') }]);
  counter('kodama_coordinate_resets_total', 'Times the network coordinate went invalid and started over.', [{ value: num(serf, 'coordinate_resets') }]);

  // Event handlers.
  counter('kodama_handler_runs_total', 'Event handler runs started.', [{ value: num(handlers, 'started') }]);
  counter('kodama_handler_failures_total', 'Handler runs that exited non-zero or could not start.', [{ value: num(handlers, 'failed') }]);
  counter('kodama_handler_timeouts_total', 'Handler runs killed by their timeout.', [{ value: num(handlers, 'timedOut') }]);
  counter('kodama_handler_queue_overflow_total', 'Queued events dropped because a handler lane was full.', [{ value: num(handlers, 'overflowDropped') }]);
  gauge('kodama_handler_queue_depth', 'Events waiting for a handler.', [{ value: host.handlerQueueDepth() }]);

  // Services and checks of this node.
  const services = host.serviceStatus();
  gauge(
    'kodama_service_health',
    'Health of each service this node offers (1 for its current state).',
    services.flatMap((s) => SERVICE_HEALTH.map((h) => ({ labels: { service: s.name, health: h }, value: s.health === h ? 1 : 0 }))),
  );
  const checks = host.checkRecords();
  gauge('kodama_check_status', 'Last result of each check on this node (0 ok, 1 warning, 2 critical, 3 unknown).', checks.map((c) => ({ labels: { check: c.name }, value: c.status })));
  gauge('kodama_check_flapping', 'Whether a check on this node is flapping (1) or not (0).', checks.map((c) => ({ labels: { check: c.name }, value: c.flapping ? 1 : 0 })));

  // The balancer role.
  const lb = host.balancerRole;
  if (lb !== undefined) {
    const report = await lb.report();
    const states: Sample[] = [];
    const requests: Sample[] = [];
    const errors: Sample[] = [];
    const active: Sample[] = [];
    for (const service of Object.keys(report.services).sort()) {
      const backends = report.services[service]!.backends;
      for (const state of ['ready', 'drain']) states.push({ labels: { service, state }, value: backends.filter((b) => b.state === state).length });
      for (const b of backends) {
        const labels = { service, backend: b.id };
        requests.push({ labels, value: b.requests });
        errors.push({ labels, value: b.errors });
        active.push({ labels, value: b.active });
      }
    }
    gauge('kodama_balancer_backends', 'Backends this balancer serves, by service and state.', states);
    counter('kodama_balancer_requests_total', 'Requests (http) or connections (tcp) sent to each backend since it was added.', requests);
    counter('kodama_balancer_errors_total', "Of those, 5xx answers and failed connects or responses (a deploy's error gate).", errors);
    gauge('kodama_balancer_active_requests', 'Requests or connections in flight to each backend.', active);
  }

  // A deploy coordinated here.
  const deploy = host.deploys?.current();
  gauge('kodama_deploy_phase', 'Phase of the deploy this node coordinates (1 for the current phase; none without a deploy).', deploy === undefined ? [] : [{ labels: { service: deploy.spec.service, phase: deploy.phase }, value: 1 }]);

  // The process, under Prometheus's standard names.
  const cpu = process.cpuUsage();
  counter('process_cpu_seconds_total', 'User and system CPU time of the agent process.', [{ value: (cpu.user + cpu.system) / 1e6 }]);
  gauge('process_resident_memory_bytes', 'Resident memory of the agent process.', [{ value: process.memoryUsage.rss() }]);
  gauge('process_start_time_seconds', 'When the agent process started, Unix seconds.', [{ value: Math.round(PROCESS_START_S) }]);
  // V8's heap by space (the names prom-client and Node's own metrics use): tells retained
  // objects (used) from pages the heap keeps (size), and code from data.
  const spaces = getHeapSpaceStatistics();
  gauge('nodejs_heap_space_size_total_bytes', 'Size of each V8 heap space (pages held).', spaces.map((s) => ({ labels: { space: s.space_name }, value: s.space_size })));
  gauge('nodejs_heap_space_size_used_bytes', 'Bytes in use in each V8 heap space.', spaces.map((s) => ({ labels: { space: s.space_name }, value: s.space_used_size })));
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Record<string, string> | undefined, extra?: [string, string]): string {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function value(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Prometheus's text exposition format (0.0.4). */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    if (f.histogram !== undefined) {
      const h = f.histogram;
      h.bounds.forEach((le, i) => lines.push(`${f.name}_bucket{le="${value(le)}"} ${h.counts[i] ?? 0}`));
      lines.push(`${f.name}_bucket{le="+Inf"} ${h.count}`);
      lines.push(`${f.name}_sum ${value(h.sum)}`);
      lines.push(`${f.name}_count ${h.count}`);
      continue;
    }
    for (const s of f.samples) lines.push(`${f.name}${labelText(s.labels)} ${value(s.value)}`);
  }
  return `${lines.join('\n')}\n`;
}
