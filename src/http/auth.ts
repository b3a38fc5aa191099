// Who may call the API. Loopback binds are open (only local processes reach them); anything else
// needs a token, checked in constant time, from `Authorization: Bearer <token>` or `?token=`
// (EventSource cannot set headers).

import { isIP } from 'node:net';
import { AgentError } from '../agent/errors.ts';
import { tokenMatches } from '../rpc/commands.ts';

export const TOKEN_HOW =
  'set a token with -http-token <secret> (config "http_token", env KODAMA_HTTP_TOKEN), or bind to loopback (-http-addr 127.0.0.1:8500)';

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return h.startsWith('::ffff:127.');
}

/** Split `host:port` ([v6]:port too); throws ERR_AGENT_CONFIG saying what is expected. */
export function parseHttpAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  const host = m?.[1] ?? m?.[2];
  const port = m === null ? NaN : Number(m[3]);
  if (host === undefined || host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AgentError('ERR_AGENT_CONFIG', `invalid http address ${JSON.stringify(addr)}: expected host:port, e.g. 127.0.0.1:8500`);
  }
  return { host, port };
}

/** The config rule: a non-loopback bind without a token is refused before anything is bound. */
export function checkHttpConfig(addr: string, token: string | undefined): { host: string; port: number } {
  const hp = parseHttpAddr(addr);
  if (!isLoopbackHost(hp.host) && (token === undefined || token === '')) {
    throw new AgentError('ERR_AGENT_CONFIG', `the HTTP API on ${addr} is not loopback and has no token: ${TOKEN_HOW}`);
  }
  return hp;
}

/** The token a request presents (header first), or undefined. */
export function presentedToken(authorization: string | undefined, query: URLSearchParams): string | undefined {
  if (authorization !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (m?.[1] !== undefined) return m[1].trim();
  }
  return query.get('token') ?? undefined;
}

export function requestAllowed(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || expected === '') return true;
  return given !== undefined && tokenMatches(given, expected);
}

/**
 * An open API (loopback, no token) answers only requests that name a loopback host. A browser
 * always sends the name it resolved in `Host`, so a web page that rebinds its own DNS name to
 * 127.0.0.1 (DNS rebinding) cannot read the cluster through a local browser. No Host header (an
 * HTTP/1.0 client, never a browser) passes.
 */
export function hostAllowed(expectedToken: string | undefined, hostHeader: string | undefined): boolean {
  if (expectedToken !== undefined && expectedToken !== '') return true;
  if (hostHeader === undefined || hostHeader === '') return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(hostHeader.trim());
  const host = m?.[1] ?? m?.[2];
  return host !== undefined && isLoopbackHost(host);
}
