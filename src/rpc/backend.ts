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

export interface RpcBackend {
  members(): RpcMember[];
  /** `error` is sent to the client even when some joins succeeded (serf sends Num and Error). */
  join?(addrs: string[], replay: boolean): Promise<{ num: number; error: string }>;
  /** Graceful leave; the agent shuts itself down afterwards (the reply goes out first). */
  leave?(): Promise<void>;
  /** serf `stats`: section → key → value, all strings. */
  stats?(): Record<string, Record<string, string>>;
}

export type { RpcServer, RpcServerOptions, RpcLogLevel } from './server.ts';
export { startRpcServer } from './server.ts';
