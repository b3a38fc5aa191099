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

/** What `stream` subscribers receive (serf's memberEventRecord / userEventRecord). */
export type RpcEvent =
  | { type: RpcMemberEventType; members: RpcMember[] }
  | { type: 'user'; name: string; payload: Uint8Array; ltime: number; coalesce: boolean };

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
}

export type { RpcServer, RpcServerOptions, RpcLogLevel } from './server.ts';
export { startRpcServer } from './server.ts';
