// A tiny web server that names its node: the backend of `kodama demo`, of the traffic tests and
// of the proxy benchmark. `/` answers `hello from <node>` with header x-kodama-node; `/health`
// answers 200 (503 after setHealthy(false)). Optional per-request delay keeps requests in
// flight, so draining can be seen.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebServerOptions {
  node: string;
  host?: string;
  /** 0 = a free port. */
  port?: number;
  /** Delay before answering `/` (ms). */
  delayMs?: number;
}

export interface WebServer {
  readonly node: string;
  readonly host: string;
  readonly port: number;
  /** Requests answered on `/` so far. */
  readonly requests: number;
  /** Date.now() of the first `/` request, if any. */
  readonly firstRequestAt: number | undefined;
  setHealthy(ok: boolean): void;
  /** Stop accepting, let in-flight requests finish, close idle keep-alive connections. */
  close(): Promise<void>;
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  let healthy = true;
  let requests = 0;
  let firstRequestAt: number | undefined;
  const body = `hello from ${opts.node}\n`;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain', 'x-kodama-node': opts.node });
      res.end(healthy ? 'ok\n' : 'unhealthy\n');
      return;
    }
    requests++;
    firstRequestAt ??= Date.now();
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-kodama-node': opts.node });
      res.end(body);
    };
    // Drain the request body first so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      if ((opts.delayMs ?? 0) > 0) setTimeout(answer, opts.delayMs);
      else answer();
    });
  };
  const server: Server = createServer({ keepAliveTimeout: 5000 }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    node: opts.node,
    host: addr.address,
    port: addr.port,
    get requests() {
      return requests;
    },
    get firstRequestAt() {
      return firstRequestAt;
    },
    setHealthy(ok: boolean) {
      healthy = ok;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
