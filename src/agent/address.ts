// Addresses as users type them (`-bind`, `-advertise`, `-join`, RPC `join`) and as the agent
// resolves them: `host`, `host:port`, `[v6]:port`, a bare IPv6 literal, or memberlist's
// `name/host:port`. Names resolve to *every* address they have (dns.lookup all), and each one
// is joined: a DNS name standing for a whole cluster should reach all of it.

import { isIP } from 'node:net';
import { nodeDns, nodeOs } from '../wire/builtins.ts';
import type { Address } from '../wire/types.ts';
import { AgentError } from './errors.ts';

export const DEFAULT_SERF_PORT = 7946;

export interface HostPort {
  host: string;
  port: number;
}

/** Split `s` into host and port (`defaultPort` when absent). Throws ERR_AGENT_CONFIG. */
export function parseHostPort(s: string, defaultPort: number): HostPort {
  let rest = s.trim();
  // memberlist lets a join address name the node it expects: `name/host:port`.
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) rest = rest.slice(slash + 1);
  if (rest === '') throw new AgentError('ERR_AGENT_CONFIG', `empty address '${s}'`);
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) throw new AgentError('ERR_AGENT_CONFIG', `missing ']' in address '${s}'`);
    host = rest.slice(1, end);
    const after = rest.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new AgentError('ERR_AGENT_CONFIG', `bad address '${s}'`);
      portText = after.slice(1);
    }
  } else if (rest.indexOf(':') !== rest.lastIndexOf(':') && isIP(rest) === 6) {
    // (two colons at least: isIP compiles Node's IPv6 pattern on first use, ~6-11 ms of a start)
    host = rest; // a bare IPv6 literal has no port
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else {
      host = rest;
    }
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
      throw new AgentError('ERR_AGENT_CONFIG', `invalid port in address '${s}'`);
    }
    port = Number(portText);
  }
  if (host === '') throw new AgentError('ERR_AGENT_CONFIG', `missing host in address '${s}'`);
  return { host, port };
}

export type Lookup = (host: string) => Promise<string[]>;

/** dns.lookup with all: true: every A/AAAA the system resolver knows (hosts file included). */
export const systemLookup: Lookup = async (host) => {
  const res = await nodeDns().lookup(host, { all: true, verbatim: true });
  return res.map((r) => r.address);
};

/**
 * Resolve join targets. Unparseable or unresolvable entries become errors ("Failed to resolve
 * x: …", as memberlist words them); the others expand to one Address per IP, deduplicated.
 */
export async function resolveJoinAddresses(
  targets: string[],
  lookup: Lookup = systemLookup,
): Promise<{ addrs: Address[]; errors: string[] }> {
  const addrs: Address[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  await Promise.all(
    targets.map(async (t) => {
      let hp: HostPort;
      try {
        hp = parseHostPort(t, DEFAULT_SERF_PORT);
      } catch (e) {
        errors.push(`Failed to resolve ${t}: ${(e as Error).message}`);
        return;
      }
      let ips: string[];
      if (isIP(hp.host) !== 0) {
        ips = [hp.host];
      } else {
        try {
          ips = await lookup(hp.host);
        } catch (e) {
          errors.push(`Failed to resolve ${t}: ${(e as Error).message}`);
          return;
        }
        if (ips.length === 0) {
          errors.push(`Failed to resolve ${t}: no addresses`);
          return;
        }
      }
      for (const ip of ips) {
        const key = `${ip}|${hp.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        addrs.push({ ip, port: hp.port });
      }
    }),
  );
  return { addrs, errors };
}

function isPrivateV4(ip: string): boolean {
  const [a, b] = ip.split('.').map(Number);
  return a === 10 || (a === 172 && b !== undefined && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b !== undefined && b >= 64 && b <= 127);
}

/**
 * The IP to advertise when bound to a wildcard: like memberlist, the first private IPv4
 * address of this machine; failing that any non-loopback IPv4; failing that loopback.
 */
export function pickAdvertiseIp(bindIp: string): string {
  if (bindIp !== '0.0.0.0' && bindIp !== '::') return bindIp;
  const all: string[] = [];
  for (const list of Object.values(nodeOs().networkInterfaces())) {
    for (const ni of list ?? []) if (ni.family === 'IPv4' && !ni.internal) all.push(ni.address);
  }
  return all.find(isPrivateV4) ?? all[0] ?? '127.0.0.1';
}

export type InterfaceTable = Record<string, { address: string; family: string | number; internal: boolean }[] | undefined>;

/**
 * serf's -iface: the bind address from a named interface. With a wildcard bind, the interface's
 * first address that is not link-local (IPv4 first); with a bind IP, the interface must have it.
 * Returns the bind (`ip:port`) to use and the interface's IPv4 address (the -discover multicast
 * interface). Throws ERR_AGENT_CONFIG with serf's messages.
 */
export function bindFromInterface(iface: string, bind: string, table: InterfaceTable = nodeOs().networkInterfaces()): { bind: string; ifaceAddr?: string } {
  const addrs = table[iface];
  if (addrs === undefined) {
    throw new AgentError('ERR_AGENT_CONFIG', `Invalid network interface: no interface named '${iface}' (have: ${Object.keys(table).sort().join(', ') || 'none'})`);
  }
  if (addrs.length === 0) throw new AgentError('ERR_AGENT_CONFIG', `Interface '${iface}' has no addresses`);
  const v4 = (a: { family: string | number }): boolean => a.family === 'IPv4' || a.family === 4;
  const linkLocal = (ip: string): boolean => ip.startsWith('169.254.') || /^fe[89ab]/i.test(ip);
  const ifaceAddr = addrs.find((a) => v4(a) && !linkLocal(a.address))?.address;
  const hp = parseHostPort(bind, DEFAULT_SERF_PORT);
  if (hp.host === '0.0.0.0' || hp.host === '::' || hp.host === '') {
    const pick = [...addrs].sort((a, b) => Number(v4(b)) - Number(v4(a))).find((a) => !linkLocal(a.address));
    if (pick === undefined) throw new AgentError('ERR_AGENT_CONFIG', `Failed to find usable address for interface '${iface}'`);
    const host = pick.address.includes(':') ? `[${pick.address}]` : pick.address;
    return { bind: `${host}:${hp.port}`, ...(ifaceAddr !== undefined ? { ifaceAddr } : {}) };
  }
  if (!addrs.some((a) => a.address === hp.host)) throw new AgentError('ERR_AGENT_CONFIG', `Interface '${iface}' has no '${hp.host}' address`);
  return { bind, ...(ifaceAddr !== undefined ? { ifaceAddr } : {}) };
}
