// haproxy.cfg as text, from the frontends and the current slot tables. The rendered file always
// describes what HAProxy runs: each backend is one explicit server line, free slots are
// `disabled` at a placeholder, so a reload or restart from this file brings back the same
// backends. HAProxy's config has no "drain" keyword: a draining backend is rendered with
// `weight 0` (no new traffic — what drain means) and the driver puts it back in `state drain`
// with its real weight through the runtime API after a (re)start.
import type { Frontend } from '../../discovery/types.ts';
import { HaproxyError } from './errors.ts';
import { PLACEHOLDER } from './slots.ts';
import type { Slot } from './slots.ts';

export interface RenderInput {
  adminSocket: string;
  pidFile: string;
  services: readonly { frontend: Frontend; slots: readonly Slot[] }[];
}

/** Service names become proxy names; keep them to what HAProxy accepts and we can quote-free render. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkServiceName(name: string): void {
  if (!NAME.test(name)) {
    throw new HaproxyError('ERR_HAPROXY_INPUT', `service name "${name}" cannot be an HAProxy proxy name (letters, digits, _ . -; at most 64)`);
  }
}

export function checkHost(host: string, what: string): void {
  // IP literals only: a hostname would need resolvers, and a space or newline would inject config.
  if (!/^[0-9.]+$/.test(host) && !/^[0-9A-Fa-f:.]+$/.test(host)) {
    throw new HaproxyError('ERR_HAPROXY_INPUT', `${what} "${host}" is not an IP address`);
  }
}

export function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HaproxyError('ERR_HAPROXY_INPUT', `${what} port ${port} is not 1..65535`);
  }
}

export const frontendName = (service: string): string => `fe_${service}`;
export const backendName = (service: string): string => `be_${service}`;

/** host:port as HAProxy's address parser reads it (ipv6@ keeps the colons unambiguous). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `ipv6@${host}:${port}` : `${host}:${port}`;
}

export function renderServer(slot: Slot): string {
  const b = slot.backend;
  if (b === undefined) return `    server ${slot.name} ${hostPort(PLACEHOLDER.host, PLACEHOLDER.port)} weight 1 disabled  # free`;
  if (b.state === 'drain') return `    server ${slot.name} ${hostPort(b.host, b.port)} weight 0  # ${b.id} draining (weight ${b.weight})`;
  return `    server ${slot.name} ${hostPort(b.host, b.port)} weight ${b.weight}  # ${b.id}`;
}

export function renderConfig(input: RenderInput): string {
  const out: string[] = [
    '# Written by kodama (HAProxy driver). Edits are overwritten: the file mirrors the running state.',
    'global',
    '    master-worker',
    `    pidfile ${input.pidFile}`,
    `    stats socket ${input.adminSocket} mode 600 level admin`,
    '    stats timeout 30s',
    // Old workers left behind by reloads finish long requests, but not forever.
    '    hard-stop-after 30s',
    '',
    'defaults',
    '    timeout connect 2s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    timeout http-keep-alive 5s',
    // A failed connect is retried (3×), each time on another server: a killed backend costs at
    // most the requests already in flight to it.
    // On a reload the old worker would close idle keep-alive client connections at once, racing
    // clients that just sent a request on them (ECONNRESET). With this option (present in
    // Debian's 2.6.12, checked with `haproxy -c`) it answers the next request with
    // `Connection: close` instead; hard-stop-after bounds how long it lingers.
    '    option idle-close-on-response',
    '    retries 3',
    '    option redispatch 1',
    '',
  ];
  for (const { frontend, slots } of input.services) {
    const fe = frontendName(frontend.service);
    const be = backendName(frontend.service);
    out.push(
      `frontend ${fe}`,
      `    mode ${frontend.mode}`,
      `    bind ${hostPort(frontend.bind.host, frontend.bind.port)}`,
      `    default_backend ${be}`,
      '',
      `backend ${be}`,
      `    mode ${frontend.mode}`,
      '    balance roundrobin',
    );
    // L7 retries (HTTP only): also replay a request whose server closed without answering.
    if (frontend.mode === 'http') out.push('    retry-on conn-failure empty-response');
    for (const slot of slots) out.push(renderServer(slot));
    out.push('');
  }
  return out.join('\n');
}
