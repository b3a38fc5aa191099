// The HTTP frontend of the embedded proxy: one node:http server per balanced service. Each
// request goes to the backend the pool picks, over a keep-alive agent per backend, with method,
// path, end-to-end headers and body streamed through in both directions.
//
// Failure rules (the same as the HAProxy driver's `retries 3` + `option redispatch 1`):
//  - the connect to a backend fails (refused, unreachable, timed out) → nothing was sent, so
//    the request goes to another backend, up to `maxTries` backends; a request body is only
//    read from the client once a connection is up, so it can still be sent elsewhere;
//  - a pooled keep-alive connection turns out closed before any answer, for a request without
//    body and with an idempotent method → sent again (the classic keep-alive race);
//  - anything else after the request was sent → 502 (504 on timeout), counted;
//  - no backend takes new work → 503 with a body that says so.
import { Agent, STATUS_CODES, createServer, request } from 'node:http';
import type { ClientRequest, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Frontend } from '../../discovery/types.ts';
import type { ProxyCounters } from './counters.ts';
import { ProxyError } from './errors.ts';
import { boundPort, listenOn, waitIdle } from './listener.ts';
import type { FrontendListener } from './listener.ts';
import type { Pool, PoolBackend, UpstreamLink } from './pool.ts';
import type { ProxyTuning } from './options.ts';

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus Expect: the
 * frontend already answered `100 Continue` itself. Transfer-Encoding is handled apart. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'expect',
]);

/** Longest a pooled upstream socket idles (node's own servers close theirs after 5 s). */
const IDLE_UPSTREAM_MS = 4_000;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Keep-alive pool to one backend; stops pooling sockets once the backend takes no new work. */
class BackendAgent extends Agent implements UpstreamLink {
  constructor(private readonly backend: PoolBackend) {
    // `timeout` bounds how long a pooled socket idles (node lowers it further to the backend's
    // Keep-Alive hint minus 1 s); busy sockets get the per-request timeout instead. Without it
    // an idle socket outlives the backend's keep-alive and the next request races its close.
    super({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: IDLE_UPSTREAM_MS });
  }

  // A socket freed by a drained or removed backend is closed instead of pooled: it would never
  // carry another request.
  override keepSocketAlive(socket: Duplex): boolean {
    if (!this.backend.accepting) return false;
    return (Agent.prototype.keepSocketAlive as (s: Duplex) => boolean).call(this, socket);
  }

  closeIdle(): void {
    for (const list of Object.values(this.freeSockets)) {
      if (list === undefined) continue;
      for (const s of list.slice()) s.destroy();
    }
  }
}

function agentFor(b: PoolBackend): BackendAgent {
  let a = b.upstream as BackendAgent | undefined;
  if (a === undefined) {
    a = new BackendAgent(b);
    b.upstream = a;
  }
  return a;
}

/** Names listed in a Connection header besides close/keep-alive (also hop-by-hop). */
function connectionTokens(value: string): Set<string> | undefined {
  // Nearly every client sends exactly one of these two: no split, no set.
  const v = value.length <= 10 ? value.toLowerCase() : '';
  if (v === 'keep-alive' || v === 'close') return undefined;
  let extra: Set<string> | undefined;
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (extra ??= new Set()).add(name);
  }
  return extra;
}

/**
 * The end-to-end headers of `raw` (a rawHeaders list) into `out`: hop-by-hop ones dropped, and
 * those the Connection header names.
 */
function copyEndToEnd(raw: string[], out: string[], dropTransferEncoding: boolean): void {
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') extra = connectionTokens(raw[i + 1] as string);
      continue;
    }
    if (dropTransferEncoding && lower === 'transfer-encoding') continue;
    out.push(k, raw[i + 1] as string);
  }
  if (extra !== undefined) {
    // Rare: the Connection header named more headers to drop; filter again in place.
    let w = 0;
    for (let i = 0; i < out.length; i += 2) {
      if (extra.has((out[i] as string).toLowerCase())) continue;
      out[w++] = out[i] as string;
      out[w++] = out[i + 1] as string;
    }
    out.length = w;
  }
}

/**
 * Back-reference from an emitter (client request, upstream request and response, socket) to
 * its exchange: the listeners below are shared functions, not closures made per request.
 */
const EXCHANGE = Symbol('kodama.exchange');
interface Tagged {
  [EXCHANGE]?: Exchange | undefined;
}
/** On a connecting upstream socket: the request waiting for it. */
const WAITING = Symbol('kodama.waiting');

function onClientClose(this: ServerResponse & Tagged): void {
  this[EXCHANGE]?.clientClosed();
}
type ConnectingSocket = Socket & { [WAITING]?: (ClientRequest & Tagged) | undefined };
function onUpstreamSocket(this: ClientRequest & Tagged, s: ConnectingSocket): void {
  const ex = this[EXCHANGE];
  if (ex === undefined) return;
  if (s.connecting) {
    s[WAITING] = this;
    s.setTimeout(ex.fe.tuning.connectTimeoutMs);
    s.once('connect', onUpstreamConnect);
  } else ex.upstreamConnected(this);
}
function onUpstreamConnect(this: ConnectingSocket): void {
  const up = this[WAITING];
  this[WAITING] = undefined;
  if (up !== undefined) up[EXCHANGE]?.upstreamConnected(up);
}
function onUpstreamTimeout(this: ClientRequest & Tagged): void {
  this.destroy(new ProxyError('ERR_PROXY_TIMEOUT', this[EXCHANGE]?.isConnected(this) ? 'backend timed out' : 'connect to backend timed out'));
}
function onUpstreamError(this: ClientRequest & Tagged, err: Error): void {
  this[EXCHANGE]?.upstreamFailed(this, err);
}
function onUpstreamResponse(this: ClientRequest & Tagged, upRes: IncomingMessage & Tagged): void {
  const ex = this[EXCHANGE];
  if (ex === undefined) {
    upRes.resume();
    return;
  }
  upRes[EXCHANGE] = ex;
  upRes.on('close', onUpstreamResponseClose);
  ex.upstreamResponded(this, upRes);
}
function onUpstreamResponseClose(this: IncomingMessage & Tagged): void {
  this[EXCHANGE]?.upstreamResponseClosed(this);
}

/** One client request and its attempts at backends. */
class Exchange {
  private backend: PoolBackend | undefined;
  private failedA: PoolBackend | undefined;
  private failedB: PoolBackend | undefined;
  private tries = 0;
  private upstream: ClientRequest | undefined;
  private connected = false;
  private responded = false;
  private holding = false;
  private closed = false;
  private readonly headers: string[] = [];
  private hasBody = false;
  /** Index of the Host value we had to add (HTTP/1.0 client without Host), else -1. */
  private hostValueAt = -1;

  constructor(
    readonly fe: HttpFrontend,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse & Tagged,
  ) {
    this.buildHeaders();
    res[EXCHANGE] = this;
    res.on('close', onClientClose);
  }

  private buildHeaders(): void {
    const h = this.headers;
    copyEndToEnd(this.req.rawHeaders, h, false);
    const clientIp = this.req.socket.remoteAddress ?? '';
    let xffAt = -1;
    let hasHost = false;
    let w = 0;
    for (let i = 0; i < h.length; i += 2) {
      const k = h[i] as string;
      const v = h[i + 1] as string;
      const lower = k.length === 4 || k.length === 14 || k.length === 15 || k.length === 17 ? k.toLowerCase() : '';
      // Framing headers stay: node decodes the client's framing and re-frames to match them.
      if (lower === 'content-length') this.hasBody ||= v !== '0';
      else if (lower === 'transfer-encoding') this.hasBody = true;
      else if (lower === 'host') hasHost = true;
      else if (lower === 'x-forwarded-for' && xffAt >= 0) {
        // Several X-Forwarded-For lines are one comma list: keep them in the first one.
        h[xffAt] = `${h[xffAt] as string}, ${v}`;
        continue;
      } else if (lower === 'x-forwarded-for') xffAt = w + 1;
      h[w++] = k;
      h[w++] = v;
    }
    h.length = w;
    if (xffAt < 0) h.push('x-forwarded-for', clientIp);
    else h[xffAt] = `${h[xffAt] as string}, ${clientIp}`;
    if (!hasHost) {
      h.push('host', '');
      this.hostValueAt = h.length - 1;
    }
  }

  attempt(): void {
    const fe = this.fe;
    const b = fe.pool.pick(this.failedA, this.failedB);
    if (b === undefined) {
      if (this.tries === 0) {
        fe.counters.no_backend++;
        this.reply(503, `kodama: no backend available for service "${fe.frontend.service}"\n`);
      } else {
        this.reply(503, `kodama: no backend of service "${fe.frontend.service}" could be reached (${this.tries} tried)\n`);
      }
      return;
    }
    this.tries++;
    this.backend = b;
    this.connected = false;
    this.holding = true;
    b.active++;
    b.total++;
    if (this.hostValueAt >= 0) this.headers[this.hostValueAt] = b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`;
    let up: ClientRequest & Tagged;
    try {
      up = request({
        host: b.host,
        port: b.port,
        method: this.req.method,
        path: this.req.url,
        headers: this.headers,
        agent: agentFor(b),
        timeout: fe.tuning.requestTimeoutMs,
      });
    } catch (err) {
      // A request line node's client refuses to write (it let the server parse it).
      this.release();
      fe.counters.bad_requests++;
      fe.tuning.log('DEBUG', `proxy ${fe.frontend.service}: request refused: ${(err as Error).message}`);
      this.reply(400, 'kodama: bad request\n');
      return;
    }
    if (this.upstream !== undefined) (this.upstream as Tagged)[EXCHANGE] = undefined;
    this.upstream = up;
    up[EXCHANGE] = this;
    up.on('socket', onUpstreamSocket);
    up.on('response', onUpstreamResponse);
    up.on('error', onUpstreamError);
    up.on('timeout', onUpstreamTimeout);
    if (!this.hasBody) up.end();
  }

  isConnected(up: ClientRequest): boolean {
    return up === this.upstream && this.connected;
  }

  upstreamConnected(up: ClientRequest): void {
    if (up !== this.upstream || this.closed) return;
    this.connected = true;
    if (this.backend !== undefined) this.fe.pool.connectWorked(this.backend);
    up.socket?.setTimeout(this.fe.tuning.requestTimeoutMs);
    // Only now read the client's body: had the connect failed, it could still go elsewhere.
    if (this.hasBody) this.req.pipe(up);
  }

  upstreamFailed(up: ClientRequest, err: Error): void {
    // Client gone, an abandoned attempt, or handled on the response side.
    if (this.closed || up !== this.upstream || this.responded) return;
    const fe = this.fe;
    const b = this.backend;
    this.release();
    if (err instanceof ProxyError && err.code === 'ERR_PROXY_TIMEOUT') fe.counters.timeouts++;
    const connectFailed = !this.connected;
    const staleReuse =
      !connectFailed &&
      up.reusedSocket &&
      !this.hasBody &&
      IDEMPOTENT.has(this.req.method ?? '') &&
      (err as NodeJS.ErrnoException).code === 'ECONNRESET';
    if (connectFailed && b !== undefined) {
      fe.counters.connect_failures++;
      b.errors++;
      const first = fe.pool.connectFailed(b);
      this.failedB = this.failedA;
      this.failedA = b;
      // One warning when a backend starts refusing; the retries after it are debug noise.
      fe.tuning.log(first ? 'WARN' : 'DEBUG', `proxy ${fe.frontend.service}: connect to ${b.id} (${b.host}:${b.port}) failed: ${errText(err)}`);
    }
    if ((connectFailed || staleReuse) && this.tries < fe.tuning.maxTries) {
      fe.counters.retries++;
      this.attempt();
      return;
    }
    if (connectFailed) {
      this.reply(503, `kodama: no backend of service "${fe.frontend.service}" could be reached (${this.tries} tried)\n`);
      return;
    }
    fe.counters.upstream_errors++;
    if (b !== undefined) b.errors++;
    const timedOut = err instanceof ProxyError;
    this.reply(timedOut ? 504 : 502, `kodama: backend ${b?.id ?? '?'} ${timedOut ? 'timed out' : `failed: ${errText(err)}`}\n`);
  }

  upstreamResponded(up: ClientRequest, upRes: IncomingMessage): void {
    if (up !== this.upstream || this.closed) {
      upRes.resume();
      return;
    }
    this.responded = true;
    if ((upRes.statusCode ?? 502) >= 500 && this.backend !== undefined) this.backend.errors++;
    const out: string[] = [];
    // Transfer-Encoding goes too: the frontend frames its answer for its own client.
    copyEndToEnd(upRes.rawHeaders, out, true);
    this.res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out);
    upRes.pipe(this.res);
  }

  upstreamResponseClosed(upRes: IncomingMessage): void {
    this.release();
    if (!upRes.complete && !this.closed) {
      // The backend died mid-answer: the status line is out, so all we can do is cut.
      this.fe.counters.upstream_errors++;
      if (this.backend !== undefined) this.backend.errors++;
      this.res.destroy();
    }
  }

  clientClosed(): void {
    this.closed = true;
    this.fe.exchangeDone();
    if (!this.res.writableFinished) this.upstream?.destroy();
    this.release();
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    if (this.backend !== undefined) this.backend.active--;
  }

  private reply(status: number, body: string): void {
    const res = this.res;
    if (this.closed) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, [
      'content-type',
      'text/plain; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(body)),
      'x-kodama-proxy',
      'embedded',
    ]);
    res.end(body);
  }
}

function errText(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

export class HttpFrontend implements FrontendListener {
  private readonly server: Server;
  private active = 0;

  constructor(
    readonly frontend: Frontend,
    readonly pool: Pool,
    readonly counters: ProxyCounters,
    readonly tuning: ProxyTuning,
  ) {
    this.server = createServer({ keepAliveTimeout: 30_000 }, this.onRequest);
    // A client may shut its write side right after its request (`nc -q`, some scripts) and
    // still wait for the answer; node's server drops such a request unless told otherwise (its
    // long-standing `httpAllowHalfOpen` switch: answer, then close).
    (this.server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
    this.server.on('connection', this.onConnection);
    this.server.on('clientError', this.onClientError);
    this.server.on('connect', this.onConnectMethod);
  }

  get inflight(): number {
    return this.active;
  }

  get port(): number {
    return boundPort(this.server);
  }

  /** Called once per request when its client side is closed. */
  exchangeDone(): void {
    this.active--;
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.frontend);
  }

  async close(graceMs: number): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await waitIdle(() => this.active, graceMs);
    // Whatever is left is either idle keep-alive or past its grace: cut it.
    this.server.closeAllConnections();
    await closed;
  }

  private readonly onConnection = (): void => {
    this.counters.connections++;
  };

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.counters.requests++;
    this.active++;
    new Exchange(this, req, res).attempt();
  };

  /** CONNECT would make the frontend an open tunnel: refused. */
  private readonly onConnectMethod = (_req: IncomingMessage, socket: Duplex): void => {
    this.counters.bad_requests++;
    socket.on('error', () => {});
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  };

  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    // A client that just went away is no bad input.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.counters.bad_requests++;
    // Answer only while no response has started on this connection (node's own rule); a
    // request whose body turned out malformed is cut, and its exchange ends with the socket.
    const inProgress = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (inProgress?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };
}

/** Drop every pooled connection of a backend (the balancer is stopping). */
export function destroyUpstream(b: PoolBackend): void {
  (b.upstream as BackendAgent | undefined)?.destroy();
  b.upstream = undefined;
}
