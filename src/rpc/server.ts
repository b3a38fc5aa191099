// The agent's RPC listener: accepts TCP connections on the RPC address (serf default
// 127.0.0.1:7373), caps how many are open at once, and hands each to an RpcConnection.
// Every refusal is logged with its reason and counted, so a flood or a misbehaving client shows
// up in `counters()` instead of taking the agent down.

import { createServer, type Server, type Socket } from 'node:net';
import type { RpcBackend } from './backend.ts';
import { buildCommandTable } from './commands.ts';
import { RpcConnection, type ConnectionEnv, type RefusalKind, type RpcLogLevel } from './connection.ts';
import { RpcError } from './errors.ts';

export type { RpcLogLevel } from './connection.ts';

export interface RpcServerOptions {
  /** serf `rpc_auth`: when set, every command but handshake/auth needs `auth` first. */
  authKey?: string;
  log?: (level: RpcLogLevel, msg: string) => void;
  /** Open connections allowed at once; further ones are closed on accept. Default 64. */
  maxConnections?: number;
  /** Largest single request (header + body) in bytes; larger closes the connection. Default 1 MiB. */
  maxRequestBytes?: number;
  /** Unsent reply bytes tolerated for a client that does not read. Default 8 MiB. */
  maxPendingWriteBytes?: number;
  /**
   * A connection that has not completed its handshake, or a started request, within this time
   * is closed (slots are limited; an idle connection after a handshake is kept). Default 10 s.
   */
  requestTimeoutMs?: number;
}

export interface RpcServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
  counters(): Record<string, number>;
}

export const DEFAULT_MAX_CONNECTIONS = 64;
export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
export const DEFAULT_MAX_PENDING_WRITE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const COUNTER_NAMES = [
  'accepted',
  'open',
  'requests',
  'notSupported',
  'recordsDropped',
  'connectionLimit',
  'requestTooLarge',
  'malformed',
  'badBody',
  'handshakeRequired',
  'unsupportedCommand',
  'authRequired',
  'authFailed',
  'slowConsumer',
  'requestTimeout',
] as const;
type CounterName = (typeof COUNTER_NAMES)[number];

export async function startRpcServer(
  listen: { host: string; port: number },
  backend: RpcBackend,
  opts: RpcServerOptions = {},
): Promise<RpcServer> {
  const log = opts.log ?? (() => {});
  const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const counts = new Map<CounterName, number>(COUNTER_NAMES.map((n) => [n, 0]));
  const bump = (n: CounterName): void => {
    counts.set(n, (counts.get(n) ?? 0) + 1);
  };
  const table = buildCommandTable(backend, opts.authKey ?? '');
  const conns = new Set<RpcConnection>();
  let stopping = false;

  const env: ConnectionEnv = {
    authKey: opts.authKey ?? '',
    maxRequestBytes: opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    maxPendingWriteBytes: opts.maxPendingWriteBytes ?? DEFAULT_MAX_PENDING_WRITE_BYTES,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    handler: (command) => table.get(command),
    refuse: (kind: RefusalKind) => bump(kind),
    count: (name) => bump(name),
    log,
    closed: (conn) => {
      conns.delete(conn);
    },
  };

  const server: Server = createServer({ noDelay: true });
  server.on('connection', (socket: Socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    if (conns.size >= maxConnections) {
      bump('connectionLimit');
      log('WARN', `agent.ipc: refusing ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}: ${maxConnections} connections already open`);
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    bump('accepted');
    const conn = new RpcConnection(socket, env);
    conns.add(conn);
    log('INFO', `agent.ipc: Accepted client: ${conn.name}`);
  });
  server.on('error', (err) => log('ERR', `agent.ipc: listener: ${err.message}`));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new RpcError('ERR_RPC_LISTEN', `cannot listen for RPC on ${listen.host}:${listen.port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address();
  const address = {
    host: listen.host,
    port: typeof bound === 'object' && bound !== null ? bound.port : listen.port,
  };

  return {
    address,
    counters: () => {
      counts.set('open', conns.size);
      return Object.fromEntries(counts);
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (stopping) return resolve();
        stopping = true;
        // Connections flush what they already wrote (e.g. the reply to `leave`) before closing.
        for (const c of [...conns]) c.close('shutdown', 'RPC server shutting down');
        // Waits for every socket; the grace timer in RpcConnection.close bounds that.
        server.close(() => resolve());
      }),
  };
}
