// Shared model of traffic wiring (issue 4). Three parts meet here:
//  - services + health checks on every node (src/discovery/service*.ts, src/probes/): a node
//    advertises a service in its Serf tags only while the service is healthy;
//  - the balancer role (src/discovery/balancer-role.ts): turns the cluster's members into each
//    service's desired backend set (ready / drain), with the safety guards;
//  - balancer drivers (src/balancer/haproxy/, src/balancer/embedded/): make a real proxy serve
//    exactly that set. Both implement `Balancer`, so the role never knows which one it drives.

/** How a service is spoken to; decides the proxy mode (HAProxy `mode http|tcp`). */
export type ServiceProtocol = 'http' | 'tcp';

/** One health check of a service (Nerve's checks; Nagios exit codes for scripts). */
export type CheckSpec =
  | { kind: 'http'; path: string; expectStatus: number; host?: string; intervalMs: number; timeoutMs: number; rise: number; fall: number }
  | { kind: 'tcp'; intervalMs: number; timeoutMs: number; rise: number; fall: number }
  /** exit 0 = ok, 1 = warning (still healthy), 2 = critical, 3/other = unknown (unhealthy). */
  | { kind: 'script'; command: string; intervalMs: number; timeoutMs: number; rise: number; fall: number };

/** A service this node offers (agent config `services`). */
export interface ServiceSpec {
  name: string;
  /** Port the service listens on, on this node's advertised address. */
  port: number;
  protocol: ServiceProtocol;
  /** HAProxy weight 0..256 (default 100). */
  weight: number;
  /** Free-form labels (not gossiped; shown by APIs). */
  tags: string[];
  checks: CheckSpec[];
}

/**
 * Agent config `containers`: services found on local containers (labels `kodama.service`,
 * `kodama.port`, …; src/discovery/containers/labels.ts) through the engine's Docker-compatible
 * API socket (Docker or Podman).
 */
export interface ContainersSpec {
  /** Path of the engine's API unix socket (/var/run/docker.sock, /run/podman/podman.sock). */
  socket: string;
  /** How often the whole list is read again besides the event stream (default 1 s). */
  pollMs: number;
}

/** Health of one local service as its checks see it. */
export type ServiceHealth = 'starting' | 'healthy' | 'unhealthy' | 'draining';

/**
 * What a node gossips about one service, decoded from its tag `s:<name>` (see advertise.ts:
 * value `<port>[,tcp][,w<weight>][,drain]`). Any Serf agent can advertise a service by setting
 * that tag (`serf agent -tag s:web=8080`).
 */
export interface AdvertisedService {
  name: string;
  port: number;
  protocol: ServiceProtocol;
  weight: number;
  draining: boolean;
}

/** A backend as a balancer driver must serve it. `id` is the node name (unique in a cluster). */
export interface Backend {
  id: string;
  host: string;
  port: number;
  weight: number;
  /** ready: takes new requests; drain: finishes what it has, takes nothing new. */
  state: 'ready' | 'drain';
}

/** A listening side of a balancer: one per balanced service. */
export interface Frontend {
  service: string;
  mode: ServiceProtocol;
  bind: { host: string; port: number };
}

/** Live figures of one backend, read from the proxy. */
export interface BackendStats {
  id: string;
  /** Requests/connections in flight now (HAProxy `scur`). */
  activeSessions: number;
  /** Requests/connections sent to it since it was added (HAProxy `stot`). */
  totalSessions: number;
  /**
   * Of those, since it was added: 5xx answers it gave, and connects/responses that failed on it
   * (HAProxy `hrsp_5xx` + `econ` + `eresp`) — what a deploy's error-rate gate judges.
   */
  errors: number;
}

/** Implemented by the HAProxy driver and by the embedded proxy. */
export interface Balancer {
  readonly kind: 'haproxy' | 'embedded';
  /** Listen on every frontend (each starts with no backends). */
  start(frontends: readonly Frontend[]): Promise<void>;
  /** Replace the frontend set; for HAProxy a structural change (validated, debounced reload). */
  setFrontends(frontends: readonly Frontend[]): Promise<void>;
  /**
   * Make the service serve exactly `backends`: add new ones, update weight/state of known ones,
   * take absent ones out of rotation at once (the role drains before it removes). Idempotent.
   */
  setBackends(service: string, backends: readonly Backend[]): Promise<void>;
  /** Per-backend figures of one service (for draining: remove when activeSessions is 0). */
  stats(service: string): Promise<BackendStats[]>;
  /** Counters for `stats`/tests: e.g. reloads, runtime_commands, slot_grows, errors. */
  counters(): Record<string, number>;
  stop(): Promise<void>;
}

/** Per balanced service, on a balancer node (agent config `balancer.services`). */
export interface BalancedServiceSpec {
  service: string;
  mode: ServiceProtocol;
  bind: { host: string; port: number };
  /** Never take the set below this many backends because of failures (keep last known good). */
  minBackends: number;
  /** A leaving backend is removed when idle or after this long. */
  drainTimeoutMs: number;
  /**
   * Weigh backends by the estimated round trip from this balancer (network coordinates): a
   * backend 2×, 4×, 8× or more farther than the nearest gets ½, ¼, ⅛ of its weight; round
   * trips under NEAR_FLOOR_MS count as equal. Off by default.
   */
  preferNear?: boolean;
}

/** Render a file from a template whenever a backend set changes, then run a command. */
export interface TemplateSpec {
  source: string;
  destination: string;
  command?: string;
  debounceMs: number;
}

/** Agent config `balancer`. */
export interface BalancerSpec {
  driver: 'embedded' | 'haproxy';
  services: BalancedServiceSpec[];
  haproxy: {
    binary: string;
    /** Where haproxy.cfg, sockets and the pid file live. */
    dir: string;
    /** Server slots rendered per backend before `add server` is needed. */
    slots: number;
    /** Minimum time between two reloads (structural changes are coalesced). */
    reloadDebounceMs: number;
  };
  templates: TemplateSpec[];
}
