// Shared model of the HTTP API and the dashboard (issue 7). The API is the agent's, served with
// `-http-addr host:port`; docs/api.md documents every endpoint with a JSON Schema (draft 2020-12)
// and the tests validate live responses against the schemas *read from docs/api.md*, so the doc
// cannot drift from the code. The dashboard (src/ui/, static files, no build step) uses only this
// API, so anything it shows a script can read too.
//
// Auth: bound to loopback only → open. Bound to anything else → the agent refuses to start
// without `http_token` (-http-token, KODAMA_HTTP_TOKEN) and every /v1 request needs
// `Authorization: Bearer <token>` (EventSource cannot set headers: `?token=` is accepted too).
// /ui/ files are static and public (they contain no data); the page asks for the token.

import type { RouteEntry, BalancerReport, DeployState } from '../deploy/types.ts';
import type { ChecksReport, Silence } from '../checks/types.ts';
import type { MetricsReport } from '../metrics/report.ts';

export const API_PREFIX = '/v1';
export const UI_PREFIX = '/ui/';
/** Prometheus's default scrape path. */
export const METRICS_PATH = '/metrics';

/** GET /v1/agent */
export interface AgentInfo {
  node: string;
  addr: string; // ip:port (gossip)
  version: string;
  tags: Record<string, string>;
  encrypted: boolean;
  roles: { balancer: boolean; monitor: boolean; exec: boolean; deploys: boolean };
  startedAt: number; // Date.now() ms
}

/** One member, with what kodama reads from its tags decoded. GET /v1/members */
export interface ApiMember {
  name: string;
  addr: string;
  port: number;
  status: 'alive' | 'leaving' | 'left' | 'failed' | 'none';
  tags: Record<string, string>;
  role: string | null; // tags.role
  services: { name: string; port: number; protocol: 'http' | 'tcp'; weight: number; draining: boolean }[];
  /** From the `chk` tag: null when the node publishes none. */
  checks: { total: number; failing: { name: string; state: 'warning' | 'critical' | 'unknown'; occurrences: number; flapping: boolean }[] } | null;
  /** Date.now() ms of the last status change this agent saw (null = since before it started). */
  statusSince: number | null;
  /**
   * Estimated round trip from the agent serving the API to this member, ms (network coordinates,
   * as `kodama rtt` gives it); null for itself, before it has probed the member, for members not
   * alive, and with coordinates off.
   */
  rttMs: number | null;
}
export interface MembersResponse { members: ApiMember[] }

/** GET /v1/services — every advertised service, and what every balancer serves (query kodama-backends). */
export interface ServicesResponse {
  services: {
    name: string;
    /** Nodes advertising it (alive or draining). */
    nodes: { node: string; addr: string; port: number; weight: number; draining: boolean }[];
    balancers: { node: string; driver: 'haproxy' | 'embedded'; routeLTime: number; backends: BalancerReport['services'][string]['backends'] }[];
    route: RouteEntry | null;
  }[];
  /** Balancers (tag lb) that did not answer in time. */
  missing: string[];
}

/** GET /v1/checks — every node's checks report (query kodama-checks) and the silences (query kodama-silences). */
export interface ChecksResponse { nodes: ChecksReport[]; silences: Silence[]; missing: string[] }

/** One point of GET /v1/history (src/http/history.ts): figures at `t`, rates over the step before it. */
export interface HistoryPoint {
  t: number;
  members: { alive: number; leaving: number; left: number; failed: number };
  /** Per second; null on the first point (a rate needs two samples). */
  gossip: { probe_failures: number; suspicions: number; refutations: number } | null;
  /** Role ('' for none) → nodes by their worst check state. */
  checks: Record<string, { passing: number; warning: number; critical: number; unknown: number }>;
  /** Balancer node → "service/backend" → requests and errors per second; null without a rate yet. */
  backends: Record<string, Record<string, { requests: number; errors: number }>> | null;
}
/** GET /v1/history — the last 15 minutes at one point per step, oldest first. */
export interface HistoryResponse { stepMs: number; windowMs: number; points: HistoryPoint[] }

/** One entry of the events timeline. GET /v1/events?since=<seq> */
export interface ApiEvent {
  seq: number;
  at: number; // Date.now() ms
  kind: 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap' | 'user' | 'service' | 'check' | 'route' | 'deploy';
  node: string | null;
  text: string; // one human line: "web-3 failed", "user event deploy (12 bytes)"
}
export interface EventsResponse { events: ApiEvent[]; next: number }

/** A deploy as other agents see it (answer to query DEPLOYS_QUERY; must fit 1024 bytes). */
export interface DeploySummary {
  id: string;
  coordinator: string;
  service: string;
  from: string;
  to: string;
  phase: DeployState['phase'];
  /** Percent on `to` published last (0 before the first shift). */
  percent: number;
  steps: number[];
  startedAt: number;
  updatedAt: number;
  reason?: string;
  figures: Record<string, string>;
}

/**
 * GET /v1/deploys — this agent's own deploys (full state), the cluster's routes, and the latest
 * deploy of every other coordinator that answered DEPLOYS_QUERY (so any agent's dashboard shows
 * a deploy's progress, whichever agent runs it).
 */
export interface DeploysResponse { current: DeployState | null; history: DeployState[]; routes: RouteEntry[]; elsewhere: DeploySummary[] }

/** Query answered by every agent that coordinates (or coordinated) a deploy: its latest, as a DeploySummary. */
export const DEPLOYS_QUERY = 'kodama-deploys';

/**
 * GET /v1/snapshot — everything the dashboard's panels show, in one answer: the page's first
 * render, before its live stream connects. Each part is what its own endpoint answers (with their
 * defaults); members and the timeline are read last, so a stream opened after it (hello.next)
 * tells whether anything happened since (`events.next`).
 */
export interface SnapshotResponse {
  /** Date.now() ms on the agent when the answer was made. */
  at: number;
  agent: AgentInfo;
  members: ApiMember[];
  events: EventsResponse;
  services: ServicesResponse;
  checks: ChecksResponse;
  /** As /v1/deploys, but `elsewhere` holds the coordinators that answered within 250 ms. */
  deploys: DeploysResponse;
  history: HistoryResponse;
  /** As /v1/performance with its defaults (the last 15 minutes, every role); members that had not answered within 250 ms are silent. */
  performance: MetricsReport;
}

/** GET /v1/stream — server-sent events: `event: <name>\ndata: <json>\n\n`. */
export type StreamMessage =
  | { event: 'hello'; data: { node: string; next: number } }
  | { event: 'member'; data: ApiMember }
  | { event: 'timeline'; data: ApiEvent }
  | { event: 'deploy'; data: DeployState }
  /** Sent every 15 s so proxies keep the connection open and the page can tell it is live. */
  | { event: 'ping'; data: { at: number } };

/**
 * Selectors the end-to-end test relies on (the dashboard must keep them):
 *   [data-member="<name>"] with attribute data-status="<status>" — one per member, live;
 *   [data-role="<role>"] groups members (role "" = no role tag);
 *   [data-service="<name>"], [data-backend="<balancer>/<id>"] with data-state="ready|drain";
 *   [data-check="<node>/<check>"] with data-state; [data-deploy="<id>"] with data-phase;
 *   #timeline li[data-kind] — newest first; #connection[data-live="true|false"] — SSE state.
 */
export const UI_SELECTORS = {
  member: (name: string) => `[data-member="${name}"]`,
  liveIndicator: '#connection',
} as const;
