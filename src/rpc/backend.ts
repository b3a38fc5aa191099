// What an agent exposes to the RPC server. The server owns the protocol (framing, handshake,
// auth, filtering, streaming by Seq); the backend only answers questions about the cluster.
// Optional methods are commands not wired yet: the server answers them with serf's
// "Feature not supported" and keeps the connection open.

export type RpcMemberStatus = 'alive' | 'leaving' | 'left' | 'failed' | 'none';

export interface RpcMember {
  name: string;
  /** 4 (IPv4) or 16 (IPv6) bytes, as serf puts net.IP on the RPC wire (bin). */
  addr: Uint8Array;
  port: number;
  tags: Record<string, string>;
  status: RpcMemberStatus;
  /** memberlist protocol versions (serf reports 1/5/2). */
  protocolMin: number;
  protocolMax: number;
  protocolCur: number;
  /** Serf protocol versions (2/5/5); serf's CLI shows these as "Protocol Version". */
  delegateMin: number;
  delegateMax: number;
  delegateCur: number;
}

export type RpcMemberEventType = 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap';

export type RpcMemberEvent = { type: RpcMemberEventType; members: RpcMember[] };
export type RpcUserEvent = { type: 'user'; name: string; payload: Uint8Array; ltime: number; coalesce: boolean };

/** A query this agent received, offered to `stream` subscribers (who may `respond`). */
export interface RpcIncomingQuery {
  type: 'query';
  name: string;
  payload: Uint8Array;
  ltime: number;
  /** Time left to respond, from now; after it the RPC forgets the query ID. */
  timeoutMs: number;
  /** Send the response; rejects with serf's error text (e.g. response too large, already sent). */
  respond(payload: Uint8Array): Promise<void>;
}

/** What the backend feeds to `stream` subscribers. */
export type RpcEvent = RpcMemberEvent | RpcUserEvent | RpcIncomingQuery;

/** serf `query` parameters (as the CLI sends them). */
export interface RpcQueryParams {
  name: string;
  payload: Uint8Array;
  /** Only these nodes respond; [] = all. */
  filterNodes: string[];
  /** Only nodes whose tags match these anchored regexes respond. */
  filterTags: Record<string, string>;
  requestAck: boolean;
  relayFactor: number;
  /** 0 = the agent's default (serf: GossipInterval × QueryTimeoutMult × log(N+1)). */
  timeoutMs: number;
}

/** Where a running query's results go. */
export interface RpcQuerySink {
  ack(from: string): void;
  response(from: string, payload: Uint8Array): void;
  /** The deadline passed: nothing more will be delivered. */
  done(): void;
}

/** serf's key operation result (`keyResponse`). */
export interface RpcKeyResponse {
  /** Header error, e.g. "1/2 nodes reported failure"; the counts are sent with it. */
  error: string;
  numNodes: number;
  numResp: number;
  numErr: number;
  /** node → error message */
  messages: Record<string, string>;
  /** list-keys only: base64 key → how many nodes have it */
  keys?: Record<string, number>;
}

/** serf's Vivaldi network coordinate. */
export interface RpcCoordinate {
  vec: number[];
  error: number;
  adjustment: number;
  height: number;
}

export interface RpcBackend {
  members(): RpcMember[];
  /** `error` is sent to the client even when some joins succeeded (serf sends Num and Error). */
  join?(addrs: string[], replay: boolean): Promise<{ num: number; error: string }>;
  /** Graceful leave; the agent shuts itself down afterwards (the reply goes out first). */
  leave?(): Promise<void>;
  /** serf `stats`: section → key → value, all strings. */
  stats?(): Record<string, Record<string, string>>;
  /** serf `event`: broadcast a user event. Reject with an Error whose message serf would send. */
  userEvent?(name: string, payload: Uint8Array, coalesce: boolean): Promise<void>;
  /** serf `force-leave`: mark a failed node left (prune: forget it at once). */
  forceLeave?(node: string, prune: boolean): Promise<void>;
  /** serf `tags`: delete `deleteTags`, then set/overwrite `tags`, and gossip the result. */
  setTags?(tags: Record<string, string>, deleteTags: string[]): Promise<void>;
  /**
   * serf `stream`: deliver every member and user event to `sink` until the returned function is
   * called. The RPC layer applies the client's event filter.
   */
  subscribeEvents?(sink: (e: RpcEvent) => void): () => void;
  /**
   * serf `monitor`: deliver the agent's recent log lines (serf replays its last 512), then every
   * new one, as formatted lines (`… [LEVEL] …`, no newline) until the returned function is
   * called. The RPC layer applies the client's level filter.
   */
  subscribeLogs?(sink: (line: string) => void): () => void;
  /**
   * serf `query`: send it and feed acks/responses to `sink` until `sink.done()` at the deadline.
   * Resolves once sent, with a function that cancels delivery (the client went away); rejects
   * with serf's error text (e.g. "Queries cannot contain the '_serf_' prefix").
   */
  query?(params: RpcQueryParams, sink: RpcQuerySink): Promise<() => void>;
  installKey?(key: string): Promise<RpcKeyResponse>;
  useKey?(key: string): Promise<RpcKeyResponse>;
  removeKey?(key: string): Promise<RpcKeyResponse>;
  listKeys?(): Promise<RpcKeyResponse>;
  /** serf `get-coordinate`: the cached coordinate of `node`, null if unknown. */
  getCoordinate?(node: string): RpcCoordinate | null;
  /**
   * kodama's `kodama` command: run operation `op` (deploy.start, …) with its JSON arguments.
   * Resolves with a JSON-able result; rejects with an Error whose message the caller sees.
   */
  kodama?(op: string, args: unknown): Promise<unknown>;
}

