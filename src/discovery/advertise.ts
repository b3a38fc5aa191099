// The gossip form of a service: one Serf tag per offered service, readable and writable by a
// plain `serf agent` too (`serf agent -tag s:web=8080`).
//
//   key   `s:<service>`
//   value `<port>[,tcp][,w<weight>][,drain]`
//         protocol http unless `,tcp`; weight 100 unless `,w<n>` (0..256);
//         `,drain` = the node is leaving this service: finish in-flight work, send nothing new.
//
// No tag = not offered (or not healthy). Unknown flags are ignored (room for later additions
// without breaking older balancers); a value that cannot be read is reported in `invalid`, never
// thrown, so one bad node cannot crash a balancer.
//
// Size: Serf's whole node meta (every tag, msgpack-encoded) must fit in 512 bytes
// (META_MAX_SIZE). A value is at most 20 bytes (`65535,tcp,w256,drain`) and a service name at
// most MAX_SERVICE_NAME_LENGTH, so a handful of services fit next to the user's own tags.

import { AgentError } from '../agent/errors.ts';
import type { AdvertisedService, ServiceProtocol } from './types.ts';

export const SERVICE_TAG_PREFIX = 's:';
export const DEFAULT_WEIGHT = 100;
/** HAProxy's weight range. */
export const MAX_WEIGHT = 256;
/** Keeps `s:<name>` small (Serf meta is 512 bytes in all) and usable as a DNS label. */
export const MAX_SERVICE_NAME_LENGTH = 63;

/**
 * Service names end up in HAProxy section names, file names and log lines: letters, digits,
 * `_`, `-`, `.`; starting with a letter or digit.
 */
const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function isValidServiceName(name: string): boolean {
  return name.length <= MAX_SERVICE_NAME_LENGTH && SERVICE_NAME_RE.test(name);
}

export function serviceTagKey(name: string): string {
  return SERVICE_TAG_PREFIX + name;
}

export function isServiceTagKey(key: string): boolean {
  return key.startsWith(SERVICE_TAG_PREFIX);
}

/** The tag value; throws AgentError('ERR_AGENT_CONFIG') for a port or weight out of range (a caller bug). */
export function encodeServiceTag(s: { port: number; protocol: ServiceProtocol; weight: number; draining: boolean }): string {
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
    throw new AgentError('ERR_AGENT_CONFIG', `service port ${s.port} out of range (1..65535)`);
  }
  if (!Number.isInteger(s.weight) || s.weight < 0 || s.weight > MAX_WEIGHT) {
    throw new AgentError('ERR_AGENT_CONFIG', `service weight ${s.weight} out of range (0..${MAX_WEIGHT})`);
  }
  let v = String(s.port);
  if (s.protocol === 'tcp') v += ',tcp';
  if (s.weight !== DEFAULT_WEIGHT) v += `,w${s.weight}`;
  if (s.draining) v += ',drain';
  return v;
}

/** One tag value → its fields, or undefined when it cannot be read. */
export function decodeServiceTagValue(value: string): Omit<AdvertisedService, 'name'> | undefined {
  const parts = value.split(',').map((p) => p.trim());
  const portText = parts[0] ?? '';
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  let protocol: ServiceProtocol = 'http';
  let weight = DEFAULT_WEIGHT;
  let draining = false;
  for (const flag of parts.slice(1)) {
    if (flag === 'tcp') protocol = 'tcp';
    else if (flag === 'http') protocol = 'http';
    else if (flag === 'drain') draining = true;
    else if (/^w\d+$/.test(flag)) {
      // A weight is a promise about traffic share: out of range means we cannot honour it.
      const w = Number(flag.slice(1));
      if (w > MAX_WEIGHT) return undefined;
      weight = w;
    } else if (/^w/.test(flag)) {
      return undefined; // `w` followed by junk is a malformed weight, not a future flag
    }
    // anything else: a flag from a newer version (or empty, e.g. a trailing comma) — ignored
  }
  return { port, protocol, weight, draining };
}

/**
 * Every service a member advertises, sorted by name. `invalid` lists the `s:*` tag keys whose
 * name or value could not be read (the caller counts/logs them; other tags are not looked at).
 */
export function decodeServiceTags(tags: Record<string, string>): { services: AdvertisedService[]; invalid: string[] } {
  const services: AdvertisedService[] = [];
  const invalid: string[] = [];
  for (const [key, value] of Object.entries(tags)) {
    if (!isServiceTagKey(key)) continue;
    const name = key.slice(SERVICE_TAG_PREFIX.length);
    const fields = isValidServiceName(name) ? decodeServiceTagValue(value) : undefined;
    if (fields === undefined) invalid.push(key);
    else services.push({ name, ...fields });
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  invalid.sort();
  return { services, invalid };
}
