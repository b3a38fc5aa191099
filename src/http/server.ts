// The agent's HTTP API and dashboard (node:http, no framework):
//
//   GET /                 302 → /ui/
//   GET /ui/…             the dashboard's static files (src/ui)
//   GET /v1/agent         this agent        GET /v1/members   members (?role, ?status)
//   GET /v1/services      services, each balancer's backends (cached cluster-wide read)
//   GET /v1/checks        checks reports and silences (cached cluster-wide read)
//   GET /v1/events        the timeline (?since)   GET /v1/deploys   deploys and routes
//   GET /v1/history       the last 15 minutes of figures, for the plots (history.ts)
//   GET /v1/performance   every node's host and process figures over time, by role (?since, ?role)
//   GET /v1/snapshot      all of the above (but the stream) in one answer: the dashboard's first render
//   GET /v1/stream        server-sent events: hello, member, timeline, deploy, ping
//
// docs/api.md documents each with its JSON Schema; the tests validate live answers against it.
// Bad input of any kind is answered (JSON error with an ERR_HTTP_* code) and counted, never thrown.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpHost } from './host.ts';
export type { HttpHost } from './host.ts';
import { AgentError } from '../agent/errors.ts';
import { VERSION } from '../cli/version.ts';
import { checkHttpConfig, hostAllowed, presentedToken, requestAllowed } from './auth.ts';
import { ClusterReads } from './cluster-reads.ts';
import { History } from './history.ts';
import { BALANCER_TAG } from '../deploy/types.ts';
import { HttpError } from './errors.ts';
import { ClusterFeed } from './feed.ts';
import { SseClient, MAX_CLIENT_BUFFER_BYTES } from './sse.ts';
import { loadUiFile } from './static.ts';
import { fmtAddr } from './views.ts';
import { API_PREFIX, METRICS_PATH, UI_PREFIX } from './types.ts';
import type { AgentInfo, EventsResponse, MembersResponse, SnapshotResponse, StreamMessage } from './types.ts';

export interface HttpApi {
  readonly address: { host: string; port: number };
  url(path?: string): string;
  counters(): Record<string, number>;
  stop(): Promise<void>;
}

export interface HttpApiOptions {
  /** `host:port`; port 0 picks a free one. */
  addr: string;
  /** Required unless `addr` is loopback (checkHttpConfig). */
  token?: string;
  /** At most this many SSE clients at once (default 64). */
  maxStreams?: number;
  /** Unsent bytes one SSE client may pile up before it is dropped (default 256 KiB). */
  maxStreamBufferBytes?: number;
  /** SSE keep-alive period (default 15 s). */
  pingIntervalMs?: number;
  /** How long a cluster-wide read is reused (default 1500 ms). */
  cacheMs?: number;
  /** The history's step (default 10 s; tests shorten it). */
  historyStepMs?: number;
}

export const MAX_HEADER_BYTES = 16 * 1024;
/**
 * How long /v1/snapshot waits for answers that may never come: other coordinators' deploys (the
 * full read waits 1.5 s for anyone) and figures from members that do not sample (serf agents).
 */
export const SNAPSHOT_WAIT_MS = 250;
/** /v1/performance's default window, seconds (also the snapshot's). */
const PERFORMANCE_SINCE_S = 900;
const MEMBER_STATUSES = new Set(['alive', 'leaving', 'left', 'failed', 'none']);

type Counters = Record<
  | 'requests' | 'responses_2xx' | 'responses_3xx' | 'responses_4xx' | 'responses_5xx' | 'auth_failures'
  | 'bad_requests' | 'host_refusals' | 'internal_errors' | 'streams_open' | 'streams_total' | 'streams_refused' | 'streams_dropped_slow' | 'metrics_scrapes',
  number
>;

export async function startHttpApi(agent: HttpHost, opts: HttpApiOptions): Promise<HttpApi> {
  const hp = checkHttpConfig(opts.addr, opts.token);
  const token = opts.token === '' ? undefined : opts.token;
  const maxStreams = opts.maxStreams ?? 64;
  const maxBuffer = opts.maxStreamBufferBytes ?? MAX_CLIENT_BUFFER_BYTES;
  const startedAt = Date.now();
  const counts: Counters = {
    requests: 0, responses_2xx: 0, responses_3xx: 0, responses_4xx: 0, responses_5xx: 0, auth_failures: 0,
    bad_requests: 0, host_refusals: 0, internal_errors: 0, streams_open: 0, streams_total: 0, streams_refused: 0, streams_dropped_slow: 0,
    metrics_scrapes: 0,
  };
  const feed = new ClusterFeed(agent);
  const reads = new ClusterReads(agent, { cacheMs: opts.cacheMs ?? 1500 });
  const history = new History(
    {
      members: () => agent.members(),
      gossipCounters: () => {
        const ml = agent.stats()['memberlist'] ?? {};
        const n = (k: string): number => Number(ml[k] ?? 0) || 0;
        return { probeFailures: n('probe-failures'), suspicions: n('suspicions'), refutations: n('refutations') };
      },
      // Only with a balancer in the cluster: otherwise no query goes out.
      services: () => (agent.members().some((m) => m.status === 'alive' && m.tags[BALANCER_TAG] !== undefined) ? reads.services() : Promise.resolve(undefined)),
    },
    { ...(opts.historyStepMs !== undefined ? { stepMs: opts.historyStepMs } : {}) },
  );
  const clients = new Set<SseClient>();
  const sockets = new Set<Socket>();

  const broadcast = (m: StreamMessage): void => {
    for (const c of clients) c.send(m);
  };
  const offFeed = feed.onMessage(broadcast);
  const ping = setInterval(() => broadcast({ event: 'ping', data: { at: Date.now() } }), opts.pingIntervalMs ?? 15_000);
  ping.unref();

  const tally = (status: number): void => {
    if (status >= 500) counts.responses_5xx++;
    else if (status >= 400) counts.responses_4xx++;
    else if (status >= 300) counts.responses_3xx++;
    else counts.responses_2xx++;
  };
  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    });
    res.end(text);
    tally(status);
  };
  const sendError = (res: ServerResponse, e: HttpError, headers: Record<string, string> = {}): void => {
    sendJson(res, e.status, { error: e.message, code: e.code }, headers);
  };

  const agentInfo = (): AgentInfo => {
    const adv = agent.advertiseAddress;
    const self = agent.members().find((m) => m.name === agent.nodeName);
    return {
      node: agent.nodeName,
      addr: fmtAddr(adv.ip, adv.port),
      version: VERSION,
      tags: { ...(self?.tags ?? {}) },
      encrypted: agent.encrypted,
      roles: {
        balancer: agent.balancerRole !== undefined,
        monitor: agent.monitorRole !== undefined,
        exec: agent.execEnabled,
        deploys: agent.deploys !== undefined,
      },
      startedAt,
    };
  };

  const members = (q: URLSearchParams): MembersResponse => {
    const role = q.get('role');
    const status = q.get('status');
    if (status !== null && !MEMBER_STATUSES.has(status)) {
      throw new HttpError('ERR_HTTP_BAD_PARAM', `status must be one of ${[...MEMBER_STATUSES].join(', ')}, got ${JSON.stringify(status)}`);
    }
    const list = agent
      .members()
      .filter((m) => (role === null || (m.tags['role'] ?? '') === role) && (status === null || m.status === status))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { members: list.map((m) => feed.member(m)) };
  };

  const events = (q: URLSearchParams): EventsResponse => {
    const raw = q.get('since');
    let since = 0;
    if (raw !== null) {
      if (!/^\d{1,15}$/.test(raw)) throw new HttpError('ERR_HTTP_BAD_PARAM', `since must be a non-negative integer (the "next" of a previous answer), got ${JSON.stringify(raw.slice(0, 40))}`);
      since = Number(raw);
    }
    return { events: feed.timeline.since(since), next: feed.timeline.next };
  };

  /**
   * Every panel's data in one answer (the dashboard's first render): the cluster-wide reads at
   * once (shared with their own endpoints through the cache), then what this agent holds.
   */
  const snapshot = async (): Promise<SnapshotResponse> => {
    const [services, checks, deploys, performance] = await Promise.all([
      reads.services(),
      reads.checks(),
      reads.deploysWithin(SNAPSHOT_WAIT_MS),
      reads.performanceWithin(PERFORMANCE_SINCE_S, undefined, SNAPSHOT_WAIT_MS),
    ]);
    // Read last: a stream opened after this answer misses nothing that is not in it.
    return {
      at: Date.now(),
      agent: agentInfo(),
      members: members(new URLSearchParams()).members,
      events: events(new URLSearchParams()),
      services,
      checks,
      deploys,
      history: history.response(),
      performance,
    };
  };

  const stream = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= maxStreams) {
      counts.streams_refused++;
      sendError(res, new HttpError('ERR_HTTP_TOO_MANY_STREAMS', `at most ${maxStreams} live streams at once: close another dashboard or poll /v1/events`), { 'Retry-After': '5' });
      return;
    }
    counts.streams_total++;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    tally(200);
    req.socket.setNoDelay(true);
    const client = new SseClient(res, maxBuffer, (slow) => {
      clients.delete(client);
      counts.streams_open = clients.size;
      if (slow) counts.streams_dropped_slow++;
    });
    clients.add(client);
    counts.streams_open = clients.size;
    res.write('retry: 2000\n\n');
    client.send({ event: 'hello', data: { node: agent.nodeName, next: feed.timeline.next } });
    // A dashboard opened mid-deploy shows its progress at once, not at the next change.
    const deploy = agent.deploys?.current();
    if (deploy !== undefined) client.send({ event: 'deploy', data: deploy });
  };

  /** The API's host and token rules (the dashboard's files need neither: they hold no data). */
  const guard = (q: URLSearchParams, req: IncomingMessage): void => {
    if (!hostAllowed(token, req.headers.host)) {
      counts.host_refusals++;
      throw new HttpError(
        'ERR_HTTP_HOST',
        `this API has no token and answers only loopback host names (not ${JSON.stringify(String(req.headers.host).slice(0, 100))}): open it as http://127.0.0.1:<port>/ or set -http-token`,
      );
    }
    if (!requestAllowed(token, presentedToken(req.headers.authorization, q))) {
      counts.auth_failures++;
      throw new HttpError('ERR_HTTP_AUTH', 'this API needs a token: send "Authorization: Bearer <token>" (or ?token=<token>)');
    }
  };

  const api = async (path: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const route = API_ROUTES.get(path);
    if (route === undefined) throw new HttpError('ERR_HTTP_NOT_FOUND', `no such endpoint ${path.slice(0, 200)} (see docs/api.md)`);
    if (req.method !== 'GET' && (req.method !== 'HEAD' || route === 'stream')) {
      throw new HttpError('ERR_HTTP_METHOD', `${path} answers GET only`);
    }
    guard(q, req);
    switch (route) {
      case 'agent':
        return sendJson(res, 200, agentInfo());
      case 'members':
        return sendJson(res, 200, members(q));
      case 'events':
        return sendJson(res, 200, events(q));
      case 'services':
        return sendJson(res, 200, await reads.services());
      case 'checks':
        return sendJson(res, 200, await reads.checks());
      case 'deploys':
        return sendJson(res, 200, await reads.deploys());
      case 'history':
        return sendJson(res, 200, history.response());
      case 'performance':
        return sendJson(res, 200, await reads.performance(sinceParam(q), roleParam(q)));
      case 'snapshot':
        return sendJson(res, 200, await snapshot());
      case 'stream':
        return stream(req, res);
    }
  };

  /** Prometheus's text format; the same host and token rules as the API (a scraper sends a bearer token). */
  const metrics = async (q: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError('ERR_HTTP_METHOD', `${METRICS_PATH} answers GET only`);
    guard(q, req);
    counts.metrics_scrapes++;
    const { collectMetrics, renderPrometheus } = await import('../agent/telemetry.ts');
    const body = Buffer.from(renderPrometheus(await collectMetrics(agent)));
    res.writeHead(200, {
      'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    tally(200);
  };

  const ui = async (rest: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError('ERR_HTTP_METHOD', 'the dashboard answers GET only');
    const file = await loadUiFile(rest);
    if (file === undefined) throw new HttpError('ERR_HTTP_NOT_FOUND', 'no such dashboard file');
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': file.body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    tally(200);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counts.requests++;
    // A body is never expected: read and discard whatever comes so the connection stays usable.
    req.resume();
    let url: URL;
    try {
      // Origin-form paths are appended (so `//x` stays a path, never a host); absolute-form as is.
      const target = req.url ?? '/';
      url = target.startsWith('/') ? new URL(`http://kodama.invalid${target}`) : new URL(target);
    } catch {
      throw new HttpError('ERR_HTTP_NOT_FOUND', 'unreadable request path');
    }
    const path = url.pathname;
    if (path === '/' || path === '/ui') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError('ERR_HTTP_METHOD', `${path} answers GET only`);
      res.writeHead(302, { Location: UI_PREFIX, 'Content-Length': 0 });
      res.end();
      tally(302);
      return;
    }
    // The raw path, not URL's normalised one: `/ui/../x` must not turn into `/x`.
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    if (rawPath.startsWith(UI_PREFIX)) return ui(rawPath.slice(UI_PREFIX.length), req, res);
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) return api(path, url.searchParams, req, res);
    if (path === METRICS_PATH) return metrics(url.searchParams, req, res);
    throw new HttpError('ERR_HTTP_NOT_FOUND', `no such path ${path.slice(0, 200)}: the API is under ${API_PREFIX}/, the dashboard at ${UI_PREFIX}, Prometheus metrics at ${METRICS_PATH}`);
  };

  const server: Server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      let err: HttpError;
      if (e instanceof HttpError) err = e;
      else {
        counts.internal_errors++;
        // Path only: the query may carry the token.
        agent.logger.log('ERR', `http: ${req.method ?? '?'} ${(req.url ?? '').split('?')[0]!.slice(0, 200)}: ${(e as Error).message}`);
        err = new HttpError('ERR_HTTP_INTERNAL', 'internal error (logged by the agent)');
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const allow = (req.url ?? '').startsWith(`${API_PREFIX}/stream`) ? 'GET' : 'GET, HEAD';
      sendError(res, err, err.code === 'ERR_HTTP_METHOD' ? { Allow: allow } : {});
    });
  });
  server.maxConnections = 512;
  // Malformed requests and oversized headers: answered by hand (node would just close), counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    counts.bad_requests++;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const body = JSON.stringify({ error: tooLarge ? `request headers exceed ${MAX_HEADER_BYTES} bytes` : 'malformed HTTP request', code: 'ERR_HTTP_BAD_PARAM' });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => {
      offFeed();
      feed.stop();
      clearInterval(ping);
      history.stop();
      reject(new AgentError('ERR_AGENT_BIND', `Failed to start the HTTP API on ${opts.addr}: ${e.message}`));
    };
    server.once('error', onError);
    server.listen(hp.port, hp.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  history.start();
  const bound = server.address();
  const address = { host: hp.host, port: typeof bound === 'object' && bound !== null ? bound.port : hp.port };
  const base = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  let stopped: Promise<void> | undefined;

  return {
    address,
    url: (path = '/') => `${base}${path.startsWith('/') ? path : `/${path}`}`,
    counters: () => ({ ...counts, ...reads.counters() }),
    stop: () => {
      stopped ??= (async () => {
        clearInterval(ping);
        history.stop();
        offFeed();
        feed.stop();
        for (const c of [...clients]) c.close(false);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          for (const s of sockets) s.destroy();
        });
      })();
      return stopped;
    },
  };
}

type ApiRoute = 'agent' | 'members' | 'services' | 'checks' | 'events' | 'deploys' | 'history' | 'performance' | 'snapshot' | 'stream';
const API_ROUTES = new Map<string, ApiRoute>(
  (['agent', 'members', 'services', 'checks', 'events', 'deploys', 'history', 'performance', 'snapshot', 'stream'] as const).map((r) => [`${API_PREFIX}/${r}`, r]),
);
const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** ?since of /v1/performance: `30s`, `15m`, `1h` (default 15m), 10 s to 7 days. */
function sinceParam(q: URLSearchParams): number {
  const raw = q.get('since');
  if (raw === null) return PERFORMANCE_SINCE_S;
  const m = /^(\d{1,6})(s|m|h)$/.exec(raw);
  const s = m === null ? NaN : Number(m[1]) * UNIT_S[m[2]!]!;
  if (!(s >= 10 && s <= 7 * 86_400)) throw new HttpError('ERR_HTTP_BAD_PARAM', `since must be a duration from 10s to 7 days such as 30s, 15m or 1h, got ${JSON.stringify(raw.slice(0, 40))}`);
  return s;
}

/** ?role: one role only (exact); absent: every role. */
function roleParam(q: URLSearchParams): string | undefined {
  const role = q.get('role');
  if (role !== null && role.length > 256) throw new HttpError('ERR_HTTP_BAD_PARAM', 'role is longer than any tag value');
  return role ?? undefined;
}

/** Every endpoint served (docs/api.md must document each: a test checks). */
export const API_PATHS: readonly string[] = [...API_ROUTES.keys()];
