// Shared model of deploys (issue 6). Three parts meet here:
//  - routes: a cluster-wide, Lamport-ordered traffic split per service by a node tag's value
//    ("blue 0 / green 100"), carried by Serf user events `kodama-route` (ordered by the event's
//    LTime, so every node keeps the same winner) and synced to late joiners by the query
//    `kodama-routes`. Every agent keeps the table (agent.routes); balancers apply it;
//  - balancer reports: a balancer node (tag `lb`) answers `kodama-backends` with each service's
//    backends, their state and request/error counters — what deploys and rolling actions watch;
//  - the deploy coordinator: a persisted state machine in one agent (the one `kodama deploy`
//    talked to) that checks the new fleet, publishes routes, watches drains and gates, and rolls
//    back on failure. Its pure decisions live in core.ts; runner.ts owns timers, queries, files.

/** Serf user event carrying one RouteSetting (payload: encodeRoute). Not coalesced. */
export const ROUTE_EVENT = 'kodama-route';
/** Query answered by every kodama agent with its whole route table (late joiners, restarts). */
export const ROUTES_QUERY = 'kodama-routes';
/** Query answered by balancer nodes with a BalancerReport. */
export const BACKENDS_QUERY = 'kodama-backends';
/** Tag a balancer node carries: the services it balances, comma-separated (`lb=web,api`). */
export const BALANCER_TAG = 'lb';
/** The node tag a route splits on unless a deploy names another (`-tag color=blue`). */
export const DEFAULT_ROUTE_TAG = 'color';

/** A service's traffic split, as set by a deploy or by hand (`kodama deploy route`). */
export interface RouteSetting {
  service: string;
  /** The node tag whose value picks a backend's share (default `color`). */
  tag: string;
  /**
   * Tag value → percent of the service's traffic (0..100). A backend whose value is not listed,
   * or which lacks the tag, gets 0 %: a weight of 0 means drained (in-flight work finishes,
   * nothing new), never "failed". An empty object clears routing: every backend is served.
   */
  weights: Record<string, number>;
  /** Who set it: a deploy id (`d-…`) or `manual`. Shown in logs and reports. */
  by: string;
}

/** A setting with its Lamport time: the highest (ltime, then payload bytes) wins everywhere. */
export interface RouteEntry extends RouteSetting {
  ltime: number;
}

/** One backend as one balancer serves it now. */
export interface BackendReport {
  id: string;
  state: 'ready' | 'drain';
  weight: number;
  /** The member's value of the route tag (undefined = no route or no such tag). */
  value?: string;
  /** In flight now. */
  active: number;
  /** Requests (http) or connections (tcp) sent to it since it was added. */
  requests: number;
  /** Of those: 5xx answers and failed connections/responses. */
  errors: number;
}

export interface ServiceReport {
  /** LTime of the route this balancer applied to the service (0 = none). */
  routeLTime: number;
  backends: BackendReport[];
  /** Backends left out to fit the query response limit. */
  truncated?: number;
}

/** A balancer's answer to `kodama-backends`. */
export interface BalancerReport {
  node: string;
  driver: 'haproxy' | 'embedded';
  services: Record<string, ServiceReport>;
}

export type DeployPhase =
  | 'prepare' // publish from=100 / to=0 so the new fleet takes nothing before it is proven
  | 'check' // the new fleet: expected count, all healthy, for checkBakeMs
  | 'shift' // publish the next step's split; wait until every balancer applied it
  | 'drain' // old colour at 0 %: wait until no balancer has it in flight (bounded)
  | 'bake' // watch health and error rate of the new fleet for bakeMs
  | 'done'
  | 'rolling-back' // publish from=100 / to=0 again; wait until every balancer applied it
  | 'rolled-back'
  | 'aborted' // stopped before any traffic moved
  | 'failed'; // could not even roll back (e.g. no balancer answers); says why

export const FINAL_PHASES: readonly DeployPhase[] = ['done', 'rolled-back', 'aborted', 'failed'];

/** What `kodama deploy blue-green` asks for (defaults filled in by the runner). */
export interface DeploySpec {
  service: string;
  /** Route tag (default `color`). */
  tag: string;
  from: string;
  to: string;
  /** Nodes of `to` that must be healthy (default: how many `from` nodes serve now, at least 1). */
  expected: number;
  /** `to` must stay healthy this long before traffic moves (default 10 s). */
  checkBakeMs: number;
  /** Give up (aborted, nothing moved) if the fleet is not ready by then (default 5 min). */
  checkTimeoutMs: number;
  /** Percent of traffic on `to` per step, ascending, last 100 (default [100]; e.g. [10, 50, 100]). */
  steps: number[];
  /** Bake between intermediate steps, with the gates (default 30 s). */
  stepBakeMs: number;
  /** Longest wait for balancers to finish the old colour's in-flight work (default 60 s). */
  drainTimeoutMs: number;
  /** Final bake with the gates before done (default 30 s). */
  bakeMs: number;
  /** Error-rate gate: errors / requests of `to` over the bake so far (default 0.01). */
  maxErrorRate: number;
  /** The error-rate gate judges only after this many requests (default 20). */
  minRequests: number;
  /** Longest wait for every balancer to report a published route (default 30 s). */
  applyTimeoutMs: number;
}

export interface DeployEvent {
  /** Date.now() */
  at: number;
  phase: DeployPhase;
  msg: string;
}

/** Everything `kodama deploy status` shows; also the persisted form (JSON). */
export interface DeployState {
  /** `d-<coordinator>-<start ms base36>` */
  id: string;
  spec: DeploySpec;
  /** Node that runs the state machine. */
  coordinator: string;
  phase: DeployPhase;
  /** Index into spec.steps of the split published last (-1 = none yet). */
  step: number;
  startedAt: number;
  phaseSince: number;
  updatedAt: number;
  /** LTime of the route this deploy published last (what balancers must report). */
  routeLTime: number;
  /** Why it ended (rolled-back, aborted, failed) or what it waits on now. */
  reason?: string;
  /** Live figures of the current phase (e.g. "green healthy": "3/3", "balancers applied": "2/2"). */
  figures: Record<string, string>;
  /** Last transitions and notable moments, oldest first (bounded). */
  events: DeployEvent[];
}
