// Epidemic dissemination (doc §4.10): every gossip interval, send pending broadcasts to a few
// random nodes, and piggyback them on every other packet we send.
//
// Budget: one datagram of udpBufferSize bytes, minus the compound header and (when encrypting)
// the AES-GCM overhead; each part costs COMPOUND_PART_OVERHEAD more. Our own (memberlist) news
// goes first, the delegate's (Serf) fills the rest, each of its messages carrying the one-byte
// user type prefix.

import type { Delegate, NodeInfo } from './api.ts';
import type { TransmitLimitedQueue } from './queue.ts';
import { COMPOUND_PART_OVERHEAD, USER_MSG_OVERHEAD } from '../wire/limits.ts';
import { MessageType } from '../wire/types.ts';

/** Take broadcasts that fit `limit` bytes with `overhead` bytes each: ours, then the delegate's. */
export function collectBroadcasts(
  queue: TransmitLimitedQueue,
  delegate: Delegate | null,
  overhead: number,
  limit: number,
): Uint8Array[] {
  const out = queue.getBroadcasts(overhead, limit);
  if (delegate === null) return out;
  let used = 0;
  for (const m of out) used += m.length + overhead;
  const avail = limit - used;
  if (avail > overhead + USER_MSG_OVERHEAD) {
    for (const m of delegate.getBroadcasts(overhead + USER_MSG_OVERHEAD, avail)) {
      const buf = new Uint8Array(m.length + 1);
      buf[0] = MessageType.user;
      buf.set(m, 1);
      out.push(buf);
    }
  }
  return out;
}

/** Gossip targets: alive or suspect nodes, and the recently dead (so they learn and refute). */
export function isGossipTarget(n: NodeInfo, selfName: string, now: number, gossipToTheDeadMs: number): boolean {
  if (n.name === selfName) return false;
  switch (n.state) {
    case 'alive':
    case 'suspect':
      return true;
    case 'dead':
      return now - n.stateChangeMs <= gossipToTheDeadMs;
    default:
      return false;
  }
}

export interface GossipHost {
  readonly gossipNodes: number;
  pickTargets(k: number): NodeInfo[];
  budgetBytes(node: NodeInfo): number;
  take(overhead: number, limit: number): Uint8Array[];
  send(node: NodeInfo, parts: Uint8Array[]): void;
}

/** One gossip round; returns the number of datagrams sent. */
export function gossipRound(host: GossipHost): number {
  const targets = host.pickTargets(host.gossipNodes);
  let sent = 0;
  for (const node of targets) {
    const parts = host.take(COMPOUND_PART_OVERHEAD, host.budgetBytes(node));
    if (parts.length === 0) break;
    host.send(node, parts);
    sent++;
  }
  return sent;
}
