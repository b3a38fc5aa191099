// What to try next when the agent cannot listen or join.
//
// After a failed join, read from the join's own errors: each cause has its
// own lead. "Connection refused" means nothing listens there, not a key problem; a key mismatch
// is named only when the peer answered with something we could not read (or could not read
// ours). Pure: errors in, one line per distinct piece of advice out.

/** `Failed to join 127.0.0.1:7946: connection refused` → address and reason. */
const JOIN_ERROR = /^Failed to join (\S+): (.*)$/s;
/** `Failed to resolve web-1.example: getaddrinfo ENOTFOUND web-1.example` */
const RESOLVE_ERROR = /^Failed to resolve (\S+): (.*)$/s;

function portOf(addr: string): string {
  const m = /:(\d+)$/.exec(addr);
  return m?.[1] ?? '7946';
}

/** One piece of advice for one join error, or undefined when the error says nothing we can act on. */
export function adviceFor(error: string): string | undefined {
  const r = RESOLVE_ERROR.exec(error);
  if (r !== null) {
    const [, name] = r;
    return `${name} does not resolve: check the name, or join by IP address`;
  }
  const m = JOIN_ERROR.exec(error);
  if (m === null) return undefined;
  const [, addr = '', reason = ''] = m;
  if (/connection refused/i.test(reason)) {
    return `nothing listens at ${addr}: start an agent there (on its -bind address, port 7946 by default) or check the port; -retry-join ${addr} keeps trying until one answers`;
  }
  if (/timeout|timed out/i.test(reason)) {
    return `${addr} did not answer in time: check the address, and that TCP and UDP ${portOf(addr)} are open between the hosts; -retry-join ${addr} keeps trying`;
  }
  if (/unreachable/i.test(reason)) return `no route to ${addr}: check the address and this host's network`;
  if (/remote state is encrypted and encryption is not configured/i.test(reason)) {
    return `the cluster at ${addr} encrypts its gossip: start with -encrypt <the cluster's key> (or keyring_file)`;
  }
  if (/no installed keys could decrypt/i.test(reason)) {
    return `${addr} uses another key: -encrypt must be one of the cluster's keys ('kodama keys -list' on a member lists them)`;
  }
  if (/encryption is configured but remote state is not encrypted/i.test(reason)) {
    return `${addr} does not encrypt its gossip: start without -encrypt, or turn encryption on across the cluster first`;
  }
  if (/malformed reply|unknown message|invalid stream message/i.test(reason)) {
    return `${addr} answered, but not as a kodama or serf agent: join a member's gossip address (its -bind, port 7946 by default), not its RPC or HTTP port`;
  }
  if (/connection reset|closed/i.test(reason)) {
    return `${addr} closed the connection: if the cluster encrypts its gossip, start with -encrypt <its key>; else check that ${addr} is an agent's -bind address`;
  }
  return undefined;
}

/** Advice for a failed join, one line each, in the order of the errors, without repeats. */
export function joinAdvice(errors: readonly string[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const a = adviceFor(e);
    if (a !== undefined && !out.includes(a)) out.push(a);
  }
  return out;
}

/**
 * What to do when a listener cannot open (`flag`: -bind or -rpc-addr): '' when the error says
 * nothing we can act on, else ` — …` to append. A second agent on one machine needs its own
 * gossip and RPC ports; ports below 1024 need root.
 */
export function listenAdvice(error: string, flag: string, host: string, port: number): string {
  const next = port > 0 && port < 65535 ? `${host}:${port + 1}` : `${host}:<free port>`;
  if (/EADDRINUSE/.test(error)) {
    return ` — another process (another agent?) already listens there: give this agent its own ${flag} (for example ${flag} ${next}) or stop the other one`;
  }
  if (/EACCES/.test(error)) return ` — ports below 1024 need root: run as root, or give ${flag} a port above 1023`;
  if (/EADDRNOTAVAIL/.test(error)) return ` — ${host} is not an address of this host: use one it has (ip -brief addr lists them) or 0.0.0.0`;
  return '';
}
