// The TCP frontend of the embedded proxy: each client connection is paired with one connection
// to the backend the pool picks, and bytes are piped both ways until both sides are done
// (half-close is kept, so a client that shuts its write side still gets the whole answer).
// A failed connect is retried on another backend (up to `maxTries`); the client's bytes wait,
// unread, until a backend connection is up. Draining a backend sends it no new connections
// and leaves existing ones alone.
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Frontend } from '../../discovery/types.ts';
import type { ProxyCounters } from './counters.ts';
import { boundPort, listenOn, waitIdle } from './listener.ts';
import type { FrontendListener } from './listener.ts';
import type { Pool, PoolBackend } from './pool.ts';
import type { ProxyTuning } from './options.ts';

class TcpSession {
  private backend: PoolBackend | undefined;
  private failedA: PoolBackend | undefined;
  private failedB: PoolBackend | undefined;
  private tries = 0;
  private upstream: Socket | undefined;
  private connected = false;
  private holding = false;
  private finished = false;

  constructor(
    private readonly fe: TcpFrontend,
    readonly client: Socket,
  ) {
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
  }

  attempt(): void {
    const fe = this.fe;
    const b = fe.pool.pick(this.failedA, this.failedB);
    if (b === undefined) {
      if (this.tries === 0) fe.counters.no_backend++;
      this.client.destroy();
      return;
    }
    this.tries++;
    this.backend = b;
    this.holding = true;
    b.active++;
    b.total++;
    const up = connect({ host: b.host, port: b.port, allowHalfOpen: true, noDelay: true });
    this.upstream = up;
    up.setTimeout(fe.tuning.connectTimeoutMs);
    up.once('connect', this.onConnect);
    up.on('timeout', this.onUpstreamTimeout);
    up.on('error', this.onUpstreamError);
    up.on('close', this.onUpstreamClose);
  }

  private readonly onConnect = (): void => {
    const up = this.upstream;
    if (up === undefined || this.finished) return;
    this.connected = true;
    if (this.backend !== undefined) this.fe.pool.connectWorked(this.backend);
    up.setTimeout(0);
    this.client.pipe(up);
    up.pipe(this.client);
    this.client.resume();
  };

  private readonly onUpstreamTimeout = (): void => {
    // Only armed while connecting.
    this.fe.counters.timeouts++;
    this.upstream?.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
  };

  private readonly onUpstreamError = (err: NodeJS.ErrnoException): void => {
    if (this.finished) return;
    const fe = this.fe;
    const b = this.backend;
    if (this.connected) {
      fe.counters.upstream_errors++;
      if (b !== undefined) b.errors++;
      this.finish();
      return;
    }
    this.release();
    if (b !== undefined) {
      fe.counters.connect_failures++;
      b.errors++;
      const first = fe.pool.connectFailed(b);
      this.failedB = this.failedA;
      this.failedA = b;
      // One warning when a backend starts refusing; the retries after it are debug noise.
      fe.tuning.log(first ? 'WARN' : 'DEBUG', `proxy ${fe.frontend.service}: connect to ${b.id} (${b.host}:${b.port}) failed: ${err.code ?? err.message}`);
    }
    if (this.tries < fe.tuning.maxTries) {
      fe.counters.retries++;
      this.attempt();
    } else this.finish();
  };

  private readonly onUpstreamClose = (): void => {
    // A close before connecting is a failed attempt: onUpstreamError retries or finishes.
    if (this.connected) this.finish();
  };

  private readonly onClientError = (): void => {
    this.finish();
  };

  private readonly onClientClose = (): void => {
    this.finish();
  };

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    this.client.destroy();
    this.upstream?.destroy();
    this.fe.sessionDone(this);
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    if (this.backend !== undefined) this.backend.active--;
  }

  /** Cut the session (the frontend's close grace has passed). */
  abort(): void {
    this.finish();
  }
}

export class TcpFrontend implements FrontendListener {
  private readonly server: Server;
  private readonly sessions = new Set<TcpSession>();

  constructor(
    readonly frontend: Frontend,
    readonly pool: Pool,
    readonly counters: ProxyCounters,
    readonly tuning: ProxyTuning,
  ) {
    // pauseOnConnect: the client's first bytes stay in the kernel until a backend is connected.
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, this.onConnection);
  }

  get inflight(): number {
    return this.sessions.size;
  }

  get port(): number {
    return boundPort(this.server);
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.frontend);
  }

  sessionDone(s: TcpSession): void {
    this.sessions.delete(s);
  }

  async close(graceMs: number): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await waitIdle(() => this.sessions.size, graceMs);
    for (const s of [...this.sessions]) s.abort();
    await closed;
  }

  private readonly onConnection = (client: Socket): void => {
    this.counters.connections++;
    const s = new TcpSession(this, client);
    this.sessions.add(s);
    s.attempt();
  };
}
