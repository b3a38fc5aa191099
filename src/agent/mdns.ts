// mDNS records for `-discover <cluster>`, as serf's agent has them (hashicorp/mdns on the wire):
// every agent answers for the service `_serf_<cluster>._tcp.local.` with one instance named after
// the node (`<node>._serf_<cluster>._tcp.local.`): PTR service → instance, SRV instance → host
// and the gossip port, TXT "Serf '<cluster>' cluster", A/AAAA host → the advertised address.
// A serf agent and a kodama agent with the same -discover name find each other either way.
//
// Pure: decoded packets in, packets out; the sockets are in discover.ts. The DNS encoding itself
// is dns-packet's.

import { decode, encode } from 'dns-packet';
import type { Answer, Packet, Question } from 'dns-packet';

export const MDNS_PORT = 5353;
export const MDNS_GROUP_V4 = '224.0.0.251';
/** hashicorp/mdns's record TTL, seconds. */
const TTL_S = 120;

export interface MdnsService {
  /** The -discover name. */
  cluster: string;
  /** This node's name: the instance label. */
  instance: string;
  /** The host name the SRV record points at (serf: the OS host name), without the trailing dot. */
  host: string;
  /** The advertised gossip address. */
  ip: string;
  port: number;
}

/** A peer found in a response: where to join it. */
export interface MdnsPeer {
  instance: string;
  ip: string;
  port: number;
}

const norm = (name: string): string => name.replace(/\.$/, '').toLowerCase();

export function serviceName(cluster: string): string {
  return `_serf_${cluster}._tcp.local`;
}

function instanceName(svc: MdnsService): string {
  return `${svc.instance}.${serviceName(svc.cluster)}`;
}

/** The records answering one question (hashicorp/mdns's zone: the same names and types). */
export function recordsFor(q: Question, svc: MdnsService): Answer[] {
  const name = norm(q.name);
  const type = q.type as string;
  const service = serviceName(svc.cluster).toLowerCase();
  const instance = instanceName(svc);
  const addr = (): Answer[] =>
    svc.ip.includes(':') ? [{ name: svc.host, type: 'AAAA', class: 'IN', ttl: TTL_S, data: svc.ip }] : [{ name: svc.host, type: 'A', class: 'IN', ttl: TTL_S, data: svc.ip }];
  const srv = (): Answer[] => [{ name: instance, type: 'SRV', class: 'IN', ttl: TTL_S, data: { priority: 10, weight: 1, port: svc.port, target: svc.host } }, ...addr()];
  const txt = (): Answer[] => [{ name: instance, type: 'TXT', class: 'IN', ttl: TTL_S, data: [`Serf '${svc.cluster}' cluster`] }];
  if (name === '_services._dns-sd._udp.local') {
    return type === 'PTR' || type === 'ANY' ? [{ name: '_services._dns-sd._udp.local', type: 'PTR', class: 'IN', ttl: TTL_S, data: serviceName(svc.cluster) }] : [];
  }
  if (name === service) {
    return type === 'PTR' || type === 'ANY' ? [{ name: serviceName(svc.cluster), type: 'PTR', class: 'IN', ttl: TTL_S, data: instance }, ...srv(), ...txt()] : [];
  }
  if (name === instance.toLowerCase()) {
    if (type === 'ANY') return [...srv(), ...txt()];
    if (type === 'SRV') return srv();
    if (type === 'TXT') return txt();
    if (type === 'A' || type === 'AAAA') return addr().filter((r) => r.type === type);
    return [];
  }
  if (name === norm(svc.host) && (type === 'A' || type === 'AAAA')) return addr().filter((r) => r.type === type);
  return [];
}

export type MdnsInput =
  | { kind: 'query'; reply: Buffer | undefined }
  | { kind: 'response'; peers: MdnsPeer[] }
  | { kind: 'malformed'; reason: string };

/**
 * One datagram received on the mDNS port. A query for our names gets its answer (`reply`, to
 * send to the group, or to the sender itself when `legacy`: a query from a port other than
 * 5353, as hashicorp/mdns's client sends, wants a unicast answer with its id and question).
 * A response is searched for instances of `cluster`'s service with an address and a port.
 */
export function handleDatagram(buf: Uint8Array, svc: MdnsService, legacy: boolean): MdnsInput {
  let p: Packet;
  try {
    p = decode(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  } catch (e) {
    return { kind: 'malformed', reason: (e as Error).message };
  }
  if (p.type === 'query') {
    // RFC 6762 §18.3/18.11: a non-zero opcode or rcode is ignored (hashicorp/mdns does too).
    if ((p.flags ?? 0) & 0x780f) return { kind: 'query', reply: undefined };
    const answers = (p.questions ?? []).flatMap((q) => recordsFor(q, svc));
    if (answers.length === 0) return { kind: 'query', reply: undefined };
    return {
      kind: 'query',
      reply: encode({
        type: 'response',
        id: legacy ? (p.id ?? 0) : 0,
        flags: 0x0400, // AA
        ...(legacy ? { questions: p.questions ?? [] } : {}),
        answers,
      }),
    };
  }
  return { kind: 'response', peers: peersIn(p, svc.cluster) };
}

/** Instances of `cluster`'s service in a response, with their SRV port and A/AAAA address. */
export function peersIn(p: Packet, cluster: string): MdnsPeer[] {
  const records = [...(p.answers ?? []), ...(p.additionals ?? [])];
  const service = serviceName(cluster).toLowerCase();
  const instances = new Set<string>();
  const srv = new Map<string, { port: number; target: string }>();
  const addrs = new Map<string, string>();
  for (const r of records) {
    const name = norm(r.name);
    if (r.type === 'PTR' && name === service && typeof r.data === 'string') instances.add(norm(r.data));
    else if (r.type === 'SRV') srv.set(name, { port: r.data.port, target: norm(r.data.target) });
    else if ((r.type === 'A' || r.type === 'AAAA') && typeof r.data === 'string' && !addrs.has(name)) addrs.set(name, r.data);
  }
  // An SRV for one of the service's instances counts even without its PTR (an announcement may
  // carry the instance's records alone).
  for (const name of srv.keys()) if (name.endsWith(`.${service}`)) instances.add(name);
  const out: MdnsPeer[] = [];
  for (const inst of instances) {
    const s = srv.get(inst);
    if (s === undefined || s.port === 0) continue;
    const ip = addrs.get(s.target);
    if (ip === undefined) continue;
    out.push({ instance: inst.slice(0, inst.length - service.length - 1), ip, port: s.port });
  }
  return out;
}

/** The PTR question for the cluster's service, as hashicorp/mdns's client asks it. */
export function queryPacket(cluster: string): Buffer {
  return encode({ type: 'query', id: 0, flags: 0, questions: [{ name: serviceName(cluster), type: 'PTR', class: 'IN' }] });
}

/** An unsolicited response with every record (RFC 6762 §8.3's announcement): listening peers join at once. */
export function announcement(svc: MdnsService): Buffer {
  return encode({ type: 'response', id: 0, flags: 0x0400, answers: recordsFor({ name: serviceName(svc.cluster), type: 'PTR' }, svc) });
}
