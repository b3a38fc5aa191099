// What an embedder (or the CLI, from flags and config files) gives createAgent(). Types only:
// subsystems.ts reads its sections without importing agent.ts.

import type { Tags } from '../serf/tags.ts';
import type { LogLevel, LogRecord } from './log.ts';
import type { Lookup } from './address.ts';
import type { BalancerSpec, ContainersSpec, ServiceSpec } from '../discovery/types.ts';
import type { MonitorCheckSpec, MonitoringSpec } from '../checks/types.ts';
import type { ExecSpec } from '../exec/types.ts';
import type { RouteSyncOptions } from '../deploy/route-sync.ts';

export type Profile = 'lan' | 'wan' | 'local';

export interface AgentOptions {
  /** Unique node name (serf -node). */
  nodeName: string;
  /** `host:port` to bind UDP+TCP on; default 0.0.0.0:7946. Port 0 picks a free port. */
  bind?: string;
  /** `ip[:port]` to advertise; default: the bind address (a private IP if bound to 0.0.0.0). */
  advertise?: string;
  /** Base64 AES key (16, 24 or 32 bytes) shared by the cluster (serf -encrypt). */
  encrypt?: string;
  tags?: Tags;
  /** Serf protocol version 2..5 (default 5). */
  protocol?: number;
  profile?: Profile;
  /** RPC listen `host:port` (default 127.0.0.1:7373); null = no RPC. */
  rpcAddr?: string | null;
  rpcAuth?: string;
  logLevel?: LogLevel;
  /** Where log lines go (default stdout). */
  logSink?: (line: string) => void;
  /** Each line that passes the level filter as a record, instead of logSink (JSON logs, syslog). */
  logRecordSink?: (r: LogRecord, line: string) => void;
  /** How long leave waits for its intent to be gossiped (serf -broadcast-timeout, 5 s). */
  broadcastTimeoutMs?: number;
  /** How long leave stays up to answer probes after announcing (serf: 1 s). */
  leavePropagateDelayMs?: number;
  enableCompression?: boolean;
  /** serf's statsd_addr: push the /metrics figures as statsd lines over UDP (host:port). */
  statsdAddr?: string;
  /** serf's statsite_addr: the same over TCP. */
  statsiteAddr?: string;
  /** How often they are pushed (default 10 s, as serf's go-metrics aggregates). */
  statsIntervalMs?: number;
  /**
   * serf's -discover: find peers of this cluster name on the local link by mDNS and join them
   * (`ifaceAddr`: the IPv4 address of the interface to multicast on; `replay`: as -replay).
   */
  discover?: { cluster: string; ifaceAddr?: string; replay?: boolean };
  /** Keep no Vivaldi network coordinate (serf's disable_coordinates): acks carry none, `rtt` has none. */
  disableCoordinates?: boolean;
  /** Name resolver for join (tests inject one). */
  lookup?: Lookup;
  /** Event handler specs (`[filter=]script`, serf's -event-handler). */
  eventHandlers?: string[];
  /**
   * Give kodama's own queries and user events (`kodama-*`, src/agent/internal.ts) to event
   * handlers and RPC event streams too (a debugging aid; default false: they never see them).
   */
  showInternalEvents?: boolean;
  /** serf -keyring-file: JSON list of base64 keys, rewritten on key changes. */
  keyringFile?: string;
  /** serf -tags-file: JSON object of tags, rewritten on tag changes. */
  tagsFile?: string;
  /** serf -snapshot: rejoin known members on restart without -join. */
  snapshotPath?: string;
  /** serf -rejoin: ignore a leave recorded in the snapshot. */
  rejoinAfterLeave?: boolean;
  reconnectIntervalMs?: number;
  reconnectTimeoutMs?: number;
  tombstoneTimeoutMs?: number;
  /** Serf's broadcast queue limit (default 4096; see SerfConfig). */
  maxQueueDepth?: number;
  /** Serf's MinQueueDepth: > 0 makes the limit max(this, 2 × members) instead. */
  minQueueDepth?: number;
  /**
   * How often a heal ping to a failed member is considered (default: the profile's probe
   * interval, LAN 1 s; 0 = off, Serf's behaviour: only the reconnect timer re-merges a healed
   * partition). See HEAL_* in src/serf/limits.ts.
   */
  healIntervalMs?: number;
  /** Per-run handler kill timeout (default 60 s; 0 = none, as serf). */
  handlerTimeoutMs?: number;
  /** Events queued per handler before the oldest is dropped (default 128). */
  handlerQueueDepth?: number;
  /** serf's coalescing of member / CC user events for handlers and RPC streams; 0 = off. */
  coalescePeriodMs?: number;
  quiescentPeriodMs?: number;
  /** serf's limits (bytes): query response 1024, query 1024, user event 512. */
  queryResponseSizeLimit?: number;
  querySizeLimit?: number;
  userEventSizeLimit?: number;
  /**
   * Services this node offers (validated specs, e.g. from parseServiceSpecs). Each is advertised
   * as tag `s:<name>` only while its checks pass.
   */
  services?: ServiceSpec[];
  /**
   * Services of local containers (labels `kodama.service`, `kodama.port`, …) found through the
   * engine's Docker-compatible API socket; advertised like `services` while healthy, drained when
   * the container stops. Read only at start.
   */
  containers?: ContainersSpec;
  /** On leave with services: how long the `,drain` tags are gossiped before Serf's leave (default 2 s). */
  leaveDrainMs?: number;
  /** Run the load-balancer role on this node (validated spec, e.g. from parseBalancerSpec). */
  balancer?: BalancerSpec;
  /**
   * Sample this host and the agent process every this many ms into a history that
   * `kodama metrics` reads by query (docs/operations-by-role.md). Unset or 0: off (`kodama
   * agent` sets 10 s unless metrics_interval says otherwise).
   */
  metricsIntervalMs?: number;
  /** How much history to keep (default 1 h). */
  metricsHistoryMs?: number;
  /**
   * Monitoring checks (validated specs, e.g. from parseCheckSpecs): each runs while its
   * subscriptions match this node's tags; the summary is gossiped as tag `chk`.
   */
  checks?: MonitorCheckSpec[];
  /** Makes this node a monitor (tag `mon=1`): alerts on check states and member failures. */
  monitoring?: MonitoringSpec;
  /**
   * What `kodama exec` / `kodama rolling` may run here (validated, e.g. from parseExecSpec).
   * Absent = disabled: the node still answers, with a refusal that says why.
   */
  exec?: ExecSpec;
  /** Where deploys coordinated by this agent persist their state; without it deploy.* ops are refused. */
  dataDir?: string;
  /** Route sync after the first join (tests shorten it). */
  routeSync?: RouteSyncOptions;
  /**
   * `host:port` of the HTTP API and dashboard (docs/api.md); unset = off. Anything but loopback
   * needs httpToken (refused at create otherwise).
   */
  httpAddr?: string;
  /** Bearer token every /v1 request must present (required off loopback). */
  httpToken?: string;
  /** The dashboard history's step (default 10 s): tests shorten it. */
  httpHistoryStepMs?: number;
}
