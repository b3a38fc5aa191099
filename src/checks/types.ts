// Shared model of monitoring (issue 5): Sensu-style checks by role, carried by the cluster.
//
//   every node      CheckRunner: runs the checks whose subscriptions match its tags (probes from
//                   src/probes), keeps per-check history/state/flapping, publishes a compact
//                   summary in its Serf tag `chk`, answers the `kodama-checks` query with detail.
//   monitor nodes   (agent config has `monitoring`; they carry the tag `mon=1`) run MonitorCore
//                   on the members' `chk` tags and member events; the *leader* — the alive
//                   monitor member with the lowest name — runs the handlers. The others shadow
//                   it, so a new leader knows which incidents were already alerted.
//   CLI             `kodama checks` (a `kodama-checks` query), `kodama silence` (user events
//                   `kodama-silence`, list via the `kodama-silences` query).
// Everything crosses the network as Serf tags, user events and queries: serf agents see it too.

import type { ProbeSpec } from '../probes/types.ts';

/** Nagios/Sensu status: 0 passing, 1 warning, 2 critical, 3 unknown. */
export type CheckStatus = 0 | 1 | 2 | 3;
export type CheckState = 'passing' | 'warning' | 'critical' | 'unknown';

export const STATE_OF: Record<CheckStatus, CheckState> = { 0: 'passing', 1: 'warning', 2: 'critical', 3: 'unknown' };

/** Sensu keeps 21 results for flap detection. */
export const HISTORY_LENGTH = 21;

/** A monitoring check (agent config `checks`, a list; config files in -config-dir append). */
export interface MonitorCheckSpec {
  /** [A-Za-z0-9_.-]{1,32}; unique per node. */
  name: string;
  /** How to run it; absent for a TTL-only check. http/tcp probes target `target` (default: this node). */
  probe?: ProbeSpec;
  /** host:port for http/tcp probes (default 127.0.0.1 and the port in the config). */
  target?: { host: string; port: number };
  intervalMs: number;
  /**
   * Subscriptions: `key=value` tag matches (e.g. `role=web`); the check runs when ANY matches
   * this node's tags; `*` or an empty list = every node.
   */
  subscriptions: string[];
  /** TTL check: a result must be pushed (`kodama check-result`) at least every ttlMs, else `ttlStatus`. */
  ttlMs?: number;
  ttlStatus: CheckStatus;
  /** Handlers (names in monitoring.handlers) for this check; default monitoring.default_handlers. */
  handlers?: string[];
  /** Sensu's flap thresholds (percent state change), default 20 / 30; 0/0 = off. */
  lowFlapThreshold: number;
  highFlapThreshold: number;
}

/** One result as the runner records it. */
export interface CheckResult {
  status: CheckStatus;
  output: string;
  /** Date.now() when it finished. */
  at: number;
  durationMs: number;
}

/** A check's local record (the runner's state). */
export interface CheckRecord {
  name: string;
  status: CheckStatus;
  output: string;
  /** Consecutive results with this same status (Sensu's occurrences), capped at MAX_OCCURRENCES. */
  occurrences: number;
  /** Oldest first, at most HISTORY_LENGTH statuses. */
  history: CheckStatus[];
  flapping: boolean;
  /** Percent state change over the history (Sensu's weighted formula). */
  percentStateChange: number;
  lastRunAt: number;
  /** Date.now() when the status last changed. */
  lastChangeAt: number;
}

/** Occurrences travel in the `chk` tag up to this cap (higher counts read as the cap). */
export const MAX_OCCURRENCES = 20;

/**
 * The occurrence counts the `chk` tag publishes: a count between two steps is published as the
 * lower one. Every published change is a tag update gossiped to the whole cluster; counting 1..20
 * made a failing check cost 20 updates, and in `npm run bench -- checks` 87% of all tag updates
 * only moved a counter. A handler filter `occurrences: N` fires once the published count reaches
 * N, so N = 4 fires at the 5th result (the next step). `kodama checks` shows exact counts.
 */
export const OCCURRENCE_STEPS: readonly number[] = [1, 2, 3, 5, 10, MAX_OCCURRENCES];

export function publishedOccurrences(n: number): number {
  let out = 1;
  for (const step of OCCURRENCE_STEPS) if (n >= step) out = step;
  return out;
}

/**
 * The `chk` tag: `<n>` when all n checks pass, else `<n>;<name>=<s><occ>[f],…` listing only
 * non-passing (or flapping) checks: s = w|c|u, occ = occurrences (1..MAX_OCCURRENCES), f = flapping.
 * e.g. `10;disk=c3,load=w1f`. At most SUMMARY_MAX_BYTES; when longer, the worst are kept and `+K`
 * counts the rest (`10;disk=c3,+4`).
 */
export interface CheckSummary {
  total: number;
  entries: { name: string; status: Exclude<CheckStatus, 0> | 0; occurrences: number; flapping: boolean }[];
  /** Non-passing checks left out for size. */
  omitted: number;
}
export const SUMMARY_TAG = 'chk';
export const MONITOR_TAG = 'mon';
export const SUMMARY_MAX_BYTES = 200;

/** Handler filters (Sensu's built-ins). */
export interface HandlerFilters {
  /** Alert only once an incident has this many consecutive occurrences (default 1). */
  occurrences: number;
  /** Which states alert (default warning, critical, unknown); resolves always pass for alerted incidents. */
  severities: Exclude<CheckState, 'passing'>[];
  /** Silenced checks do not alert (default true). */
  notSilenced: boolean;
  /** Alert on state changes only (default true): once per incident and per severity change, not every result. */
  stateChangesOnly: boolean;
}

export type HandlerSpec =
  | { name: string; type: 'script'; command: string; timeoutMs: number; filters: HandlerFilters }
  | { name: string; type: 'webhook'; url: string; timeoutMs: number; filters: HandlerFilters }
  | { name: string; type: 'log'; path?: string; filters: HandlerFilters };

/** Agent config `monitoring` (its presence makes the node a monitor). */
export interface MonitoringSpec {
  handlers: HandlerSpec[];
  /** Handlers for checks that name none. */
  defaultHandlers: string[];
  /** Handlers for member-failed alerts (default: defaultHandlers). */
  memberHandlers: string[];
}

/**
 * What a handler receives (JSON on a script's stdin, a webhook's POST body, a log line): shaped
 * like a Sensu event so existing Sensu handler scripts need little change.
 */
export interface AlertEvent {
  /** create: a new incident (or a severity change); resolve: back to passing; flapping: started flapping. */
  action: 'create' | 'resolve' | 'flapping';
  /** check: a check's state; member: the node itself failed (check name `member`). */
  kind: 'check' | 'member';
  entity: { name: string; address: string; tags: Record<string, string> };
  check: {
    name: string;
    status: CheckStatus;
    state: CheckState;
    output: string;
    occurrences: number;
    /** Statuses known to the monitor (from the tag: the current one; detail queries give more). */
    history: CheckStatus[];
    silenced: boolean;
  };
  /** Date.now() when the monitor decided. */
  timestamp: number;
  /** Which monitor node sent it. */
  monitor: string;
}

/** A silence (`kodama silence add`): matches by node, role (tag role=…) and/or check; all given must match. */
export interface Silence {
  id: string;
  node?: string;
  role?: string;
  check?: string;
  /** Date.now() ms; undefined = until removed. */
  expiresAt?: number;
  reason?: string;
  creator?: string;
  createdAt: number;
}

/** User event `kodama-silence` payload (JSON): add or remove one silence. */
export type SilenceOp = { op: 'add'; silence: Silence } | { op: 'remove'; id: string };

/** Query names and user event names used by monitoring. */
export const CHECKS_QUERY = 'kodama-checks';
export const SILENCES_QUERY = 'kodama-silences';
export const CHECK_RESULT_QUERY = 'kodama-check-result';
export const SILENCE_EVENT = 'kodama-silence';

/**
 * A node's answer to `kodama-checks` (compact JSON, must fit Serf's 1024-byte response limit:
 * outputs are clipped, then histories dropped, until it fits; `truncated` says so).
 */
export interface ChecksReport {
  node: string;
  tags?: Record<string, string>;
  checks: { name: string; status: CheckStatus; output: string; occurrences: number; flapping: boolean; history?: string /* digits, oldest first */; lastRunAt: number }[];
  /** Performance figures for aggregates. */
  metrics: { load1: number; load5: number; load15: number; memUsedBytes: number; memTotalBytes: number; cpuPercent: number };
  truncated?: boolean;
}

/** `kodama-check-result` query payload (JSON): push a TTL/passive result to the node named in the query filter. */
export interface CheckResultPush {
  check: string;
  status: CheckStatus;
  output: string;
}
