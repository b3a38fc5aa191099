// `-discover <cluster>`: find peers on the local link with mDNS and join them, as serf's agent
// does (its AgentMDNS): answer for this node under `_serf_<cluster>._tcp.local.`, ask for the
// service at start and every 60 s, and join the addresses found (batched for 100 ms). Unlike
// serf, kodama also announces itself at start (RFC 6762 §8.3), so agents already running join a
// newcomer at once instead of at their next poll, and marks an address seen only once a join to
// it worked (serf never retries one that failed).
//
// IPv4 on one interface: -iface's, or the one the kernel routes 224.0.0.251 through. The records
// are mdns.ts's; this file holds the socket and the timers.

import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { hostname } from 'node:os';
import type { Address } from '../wire/types.ts';
import type { AgentHost, JoinResult, Subsystem } from './host.ts';
import { MDNS_GROUP_V4, MDNS_PORT, announcement, handleDatagram, queryPacket } from './mdns.ts';
import type { MdnsService } from './mdns.ts';

/** serf's mdnsPollInterval and mdnsQuietInterval. */
export const DISCOVER_POLL_MS = 60_000;
const QUIET_MS = 100;

export interface DiscoverHost extends AgentHost {
  readonly advertiseAddress: Address;
  join(targets: string[], replay?: boolean): Promise<JoinResult>;
}

export interface DiscoverOptions {
  cluster: string;
  /** The IPv4 address of the interface to multicast on (-iface); unset: the kernel's choice. */
  ifaceAddr?: string;
  /** Join with replay of past user events (-replay). */
  replay?: boolean;
  pollIntervalMs?: number;
}

export async function startDiscover(host: DiscoverHost, o: DiscoverOptions): Promise<Subsystem> {
  const adv = host.advertiseAddress;
  const svc: MdnsService = { cluster: o.cluster, instance: host.nodeName, host: hostname().replace(/\.$/, '') || host.nodeName, ip: adv.ip, port: adv.port };
  const counters = { queries_sent: 0, queries_answered: 0, responses: 0, peers_found: 0, joined: 0, malformed: 0 };
  const seen = new Set<string>();
  const self = `${adv.ip}:${adv.port}`;
  let pending: string[] = [];
  let quiet: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  let stopped = false;

  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: MDNS_PORT, address: '0.0.0.0', exclusive: false }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  try {
    sock.addMembership(MDNS_GROUP_V4, o.ifaceAddr);
    if (o.ifaceAddr !== undefined) sock.setMulticastInterface(o.ifaceAddr);
    sock.setMulticastTTL(255);
    sock.setMulticastLoopback(true);
  } catch (e) {
    sock.close();
    const how = o.ifaceAddr !== undefined ? `on ${o.ifaceAddr}` : 'on the default interface (no route to 224.0.0.251? name one with -iface)';
    throw new Error(`cannot join the mDNS group ${MDNS_GROUP_V4} ${how}: ${(e as Error).message}`);
  }
  sock.on('error', (e) => host.logger.log('ERR', `agent.mdns: socket error: ${e.message}`));

  const send = (buf: Uint8Array, ip = MDNS_GROUP_V4, port = MDNS_PORT): void => {
    if (stopped) return;
    sock.send(buf, port, ip, (err) => {
      if (err !== null && !stopped) host.logger.log('ERR', `agent.mdns: Failed to send to ${ip}:${port}: ${err.message}`);
    });
  };

  const joinPending = (): void => {
    quiet = undefined;
    const batch = pending;
    pending = [];
    void host.join(batch, o.replay ?? false).then(
      (r) => {
        if (r.num > 0) {
          counters.joined += r.num;
          for (const a of batch) seen.add(a);
          host.logger.log('INFO', `agent.mdns: Joined ${r.num} hosts`);
        } else {
          host.logger.log('ERR', `agent.mdns: Failed to join: ${r.errors.join('; ') || 'no answer'}`);
        }
      },
      (e: unknown) => host.logger.log('ERR', `agent.mdns: Failed to join: ${(e as Error).message}`),
    );
  };

  sock.on('message', (msg, rinfo) => {
    if (stopped) return;
    const input = handleDatagram(msg, svc, rinfo.port !== MDNS_PORT);
    switch (input.kind) {
      case 'malformed':
        counters.malformed++;
        host.logger.log('DEBUG', `agent.mdns: dropped a malformed packet from ${rinfo.address}:${rinfo.port}: ${input.reason}`);
        return;
      case 'query':
        if (input.reply === undefined) return;
        counters.queries_answered++;
        if (rinfo.port !== MDNS_PORT) send(input.reply, rinfo.address, rinfo.port);
        else send(input.reply);
        return;
      case 'response': {
        counters.responses++;
        for (const p of input.peers) {
          const addr = p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`;
          if (addr === self || seen.has(addr) || pending.includes(addr) || host.members().some((m) => m.name === p.instance && m.status === 'alive')) continue;
          counters.peers_found++;
          pending.push(addr);
          quiet ??= setTimeout(joinPending, QUIET_MS);
        }
      }
    }
  });

  const ask = (): void => {
    counters.queries_sent++;
    send(queryPacket(o.cluster));
  };
  const offStats = host.addStats(() => ({ discover: { cluster: o.cluster, ...Object.fromEntries(Object.entries(counters).map(([k, v]) => [k, String(v)])) } }));
  host.logger.log('INFO', `agent.mdns: discovering peers of '${o.cluster}' on ${o.ifaceAddr ?? 'the default interface'} (mDNS ${MDNS_GROUP_V4}:${MDNS_PORT})`);

  return {
    run(): void {
      send(announcement(svc));
      ask();
      poll = setInterval(ask, o.pollIntervalMs ?? DISCOVER_POLL_MS);
      poll.unref();
    },
    stop(): void {
      stopped = true;
      offStats();
      if (poll !== undefined) clearInterval(poll);
      if (quiet !== undefined) clearTimeout(quiet);
      sock.close();
    },
  };
}
