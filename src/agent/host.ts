// The one interface every subsystem reaches the agent through (services, checks, the balancer and
// monitor roles, exec, deploys, the HTTP API). The Agent implements it; a subsystem imports this
// file, never agent.ts, so the agent can load subsystems lazily and no import circle forms.
//
//   membership   nodeName, members(), on('member' | 'member-*')
//   tags it owns ownTags(keys): the keys a subsystem gossips beside the user's tags
//   events       on('user'), userEvent(), emit() of its own events ('service', 'check', 'route')
//   queries      answerQuery(name, fn) for the queries it answers (before handlers and RPC streams
//                see them), query() to ask the cluster, on('query') to watch every query
//   calls        registerCall(op, fn): operations of the RPC command `kodama`
//   stats        addStats(fn): sections of `stats` (RPC, `kodama info`)
//
// A subsystem that needs another's state (the HTTP API reads the deploy runner, the balancer
// reads routes) declares that extra in its own host interface; the Agent has it all.

import type { AgentOptions } from './options.ts';
import type { LogLevel } from './log.ts';
import type { Member, QueryEvent, QueryParams, SerfEvent, UserEvent } from '../serf/serf.ts';
import type { Tags } from '../serf/tags.ts';
import type { ServiceEvent } from '../discovery/services.ts';
import type { CheckRecord } from '../checks/types.ts';
import type { RouteEntry } from '../deploy/types.ts';

export interface JoinResult {
  /** How many addresses answered the push/pull. */
  num: number;
  /** Why the others did not (resolution and join failures). */
  errors: string[];
}

/** A query this agent received; answer it (once, before `deadlineMs`) with respond(). */
export interface AgentQuery extends QueryEvent {
  respond(payload: Uint8Array): void;
}

/** What a query this agent sent collected by its deadline. */
export interface QueryResult {
  acks: string[];
  /** node name → response payload */
  responses: Map<string, Uint8Array>;
}

export interface QueryOptions extends QueryParams {
  /** Called as each ack / response arrives (before the promise resolves at the deadline). */
  onAck?: (from: string) => void;
  onResponse?: (from: string, payload: Uint8Array) => void;
}

export interface AgentEventMap {
  /** A user event (`serf event` / userEvent()); delivered at once, not coalesced. */
  user: UserEvent;
  /** A query to answer; handlers and RPC stream subscribers may answer it too (first wins). */
  query: AgentQuery;
  'member-join': SerfEvent;
  'member-leave': SerfEvent;
  'member-failed': SerfEvent;
  'member-update': SerfEvent;
  'member-reap': SerfEvent;
  /** Every member event, whatever its type. */
  member: SerfEvent;
  /** A local service changed health (logged as "services: web is healthy" …). */
  service: ServiceEvent;
  /** A local monitoring check recorded a result (previous: the record before it). */
  check: { record: CheckRecord; previous: CheckRecord | undefined };
  /** A service's route changed (a `kodama-route` event or a sync answer won over `previous`). */
  route: { entry: RouteEntry; previous: RouteEntry | undefined };
  /** A join() reached at least one node (the route table syncs from peers then). */
  joined: JoinResult;
  /** The agent stopped (after stop(), or after an RPC `leave`). */
  shutdown: undefined;
}

/** An operation of the RPC command `kodama` (deploy.start, …): JSON in, JSON out. */
export type CallHandler = (args: unknown) => Promise<unknown>;

export interface HostLogger {
  log(level: LogLevel, msg: string): void;
  /** At most one line per `key` per window (input anyone can send as fast as they like). */
  logLimited(key: string, windowMs: number, level: LogLevel, msg: string): void;
}

/** Tag keys a subsystem owns: set() replaces its values (absent keys are removed) and gossips them. */
export interface OwnedTags {
  /**
   * False when Serf refused the tags (over the 512-byte meta limit): logged as `<why>: <error>`
   * (why, e.g. "services: cannot advertise web").
   */
  set(tags: Tags, why?: string): boolean;
  /** Own more keys (a reload added a service); a key another owner holds is an error. */
  claim(keys: readonly string[]): void;
}

export interface AgentHost {
  readonly nodeName: string;
  readonly logger: HostLogger;
  /** Serf's query_response_size_limit of this agent, bytes (a response message must fit it). */
  readonly queryResponseSizeLimit: number;
  /** Whether gossip is encrypted (a keyring is in use). */
  isEncrypted(): boolean;
  /** Every member Serf knows. */
  members(): Member[];
  /**
   * Estimated round trip from this node to `name`, ms, from the network coordinates (serf's
   * Vivaldi model); undefined until this node has probed it (or with coordinates off).
   */
  estimatedRttMs(name: string): number | undefined;
  on<K extends keyof AgentEventMap>(type: K, fn: (e: AgentEventMap[K]) => void): () => void;
  emit<K extends 'service' | 'check' | 'route'>(type: K, e: AgentEventMap[K]): void;
  /**
   * Claim the tag keys `keys` (nobody else — the user, a tags file — may set them) with their
   * initial values. Before start() they ride in the first alive message.
   */
  ownTags(keys: readonly string[], initial?: Tags): OwnedTags;
  /** Answer queries named `name` (before event handlers and RPC streams see them). */
  answerQuery(name: string, fn: (q: AgentQuery) => void): () => void;
  query(opts: QueryOptions): Promise<QueryResult>;
  userEvent(name: string, payload?: Uint8Array | string, coalesce?: boolean): void;
  registerCall(op: string, fn: CallHandler): () => void;
  /** Add sections to `stats` (computed on each read); returns its removal. */
  addStats(fn: () => Record<string, Record<string, string>>): () => void;
}

/** A part of the agent started from its config section (src/agent/subsystems.ts lists them). */
export interface Subsystem {
  /** Once the agent runs (membership up, RPC open); `userTags` are the user's tags then. */
  run?(userTags: Tags): void;
  /**
   * The user's tags are changing (setTags, reload): follow them. Owned tags set meanwhile ride in
   * the same alive message as the new tags.
   */
  userTagsChanged?(userTags: Tags): void;
  /**
   * A configuration reload (SIGHUP) with the new options: follow them where this part can, and
   * say what changed (a line for the log; undefined: nothing did).
   */
  reload?(o: AgentOptions): Promise<string | undefined> | string | undefined;
  /** Before Serf's graceful leave (services drain); the leave waits for it. */
  beforeLeave?(): Promise<void>;
  stop(): Promise<void> | void;
}

/** What a reload did to a list of named things, for its log line: "added a, b; changed c; removed d". */
export function describeReload(r: { added: string[]; changed: string[]; removed: string[] }): string {
  return (['added', 'changed', 'removed'] as const)
    .filter((k) => r[k].length > 0)
    .map((k) => `${k} ${r[k].join(', ')}`)
    .join('; ');
}
