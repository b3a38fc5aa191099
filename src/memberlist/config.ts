// Timing and size profiles of the membership core, mirroring memberlist 0.2.2's
// DefaultLANConfig / DefaultWANConfig / DefaultLocalConfig so a kodama node keeps the same rhythm
// as the `serf agent`s it gossips with (doc §4.1). WAN and local start from LAN and override.

import type { Keyring } from '../wire/keyring.ts';
import type { Address } from '../wire/types.ts';

export interface MemberlistConfig {
  /** Unique node name: the cluster-wide key of the node table. */
  name: string;
  /** Address we tell others to reach us on (UDP and TCP share the port). */
  advertise: Address;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  /**
   * kodama (not memberlist): peers a node sends fresh news to at once, on first receipt, instead
   * of waiting for the next gossip round (src/memberlist/eager.ts). The sends come out of the
   * news's retransmit budget. 0 = memberlist's behaviour exactly.
   */
  eagerGossipNodes: number;
  /**
   * kodama (not memberlist): news about ourselves (new meta, a refutation, our leave) goes straight
   * to every live peer when there are at most this many, besides the queue (eager.ts). In a small
   * cluster the retransmit budget (retransmitMult × 1 below 10 nodes) lets a tag change miss a
   * peer until the next push/pull in ~0.5–1 % of cases. The same bound covers news of a member
   * back from the dead (memberlist.ts announceRevivals). 0 = off (also off with eagerGossipNodes 0).
   */
  ownNewsDirectMax: number;
  gossipToTheDeadMs: number;
  retransmitMult: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  pushPullIntervalMs: number;
  tcpTimeoutMs: number;
  awarenessMaxMultiplier: number;
  disableTcpPings: boolean;
  deadNodeReclaimTimeMs: number;
  udpBufferSize: number;
  handoffQueueDepth: number;
  enableCompression: boolean;
  keyring: Keyring | null;
  gossipVerifyIncoming: boolean;
  gossipVerifyOutgoing: boolean;
  /** memberlist protocol spoken: 2 (Serf maps every Serf protocol 2–5 to memberlist 2). */
  protocolVersion: number;
  /** Serf (delegate) protocol: min 2, max 5, cur = agent `-protocol` (default 5). */
  delegateVersions: { min: number; max: number; cur: number };
}

/** memberlist protocol range this core understands (ProtocolVersionMin/Max in memberlist). */
export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 5;

export function lanConfig(name: string, advertise: Address): MemberlistConfig {
  return {
    name,
    advertise: { ip: advertise.ip, port: advertise.port },
    // One probe a second: failure detection in a few seconds at one packet/s/node of load.
    probeIntervalMs: 1000,
    // 500 ms is well above LAN RTT (99th percentile), so a missed ack means trouble, not jitter.
    probeTimeoutMs: 500,
    // Three relays make a false positive need four independent path failures.
    indirectChecks: 3,
    // Gossip 5× per probe so news outruns the failure detector.
    gossipIntervalMs: 200,
    gossipNodes: 3,
    // On first receipt, forward news at once to 3 peers, out of its retransmit budget (about the
    // same packets for news that comes alone; at most 3 more per gossip interval under continuous
    // news): it spreads at network speed, not one hop per 200 ms. Simulated, 100 nodes: a user
    // event p50 355 → 10 ms, last node 591 → 147 ms; a failure notice's last node 374 → 15 ms
    // after the first declaration (`npm run bench -- sim -spread`). Serf peers see plain gossip.
    // Serf's own eagerGossipNodes (serf.ts, for the news a node starts) defaults to the same 3.
    eagerGossipNodes: 3,
    // At most 16 packets per change of our own state: rare news, and the clusters where the
    // budget is thinnest (under 10 nodes: 4 sends per node) get certainty on a lossless network.
    ownNewsDirectMax: 16,
    // Keep telling the dead they are dead for a while so a flapping node learns it and refutes.
    gossipToTheDeadMs: 30_000,
    // retransmit limit = 4 × ceil(log10(N + 1)): enough for an epidemic to reach everyone w.h.p.
    retransmitMult: 4,
    // suspicion timeout = 4 × max(1, log10 N) × probe interval before independent confirmations.
    suspicionMult: 4,
    // Without confirmations wait up to 6× the minimum (Lifeguard): slow but few false positives.
    suspicionMaxTimeoutMult: 6,
    // Full-state anti-entropy every 30 s (scaled up above 32 nodes) repairs missed gossip.
    pushPullIntervalMs: 30_000,
    // Stream (push/pull, TCP ping) deadline: generous, states can be large.
    tcpTimeoutMs: 10_000,
    // Lifeguard: a struggling node slows its own probing up to 8× instead of accusing others.
    awarenessMaxMultiplier: 8,
    // TCP fallback pings catch UDP-only path failures (firewalls) before suspecting a node.
    disableTcpPings: false,
    // 0 = a dead node's name can never be taken by another address (only a left one can).
    deadNodeReclaimTimeMs: 0,
    // Stay under a typical 1500-byte MTU after IP/UDP headers.
    udpBufferSize: 1400,
    // Bound on queued inbound gossip; memberlist drops beyond this under overload.
    handoffQueueDepth: 1024,
    enableCompression: true,
    keyring: null,
    gossipVerifyIncoming: true,
    gossipVerifyOutgoing: true,
    protocolVersion: 2,
    delegateVersions: { min: 2, max: 5, cur: 5 },
  };
}

/** Higher latency and loss between datacenters: slower, more patient probing. */
export function wanConfig(name: string, advertise: Address): MemberlistConfig {
  return {
    ...lanConfig(name, advertise),
    tcpTimeoutMs: 30_000,
    suspicionMult: 6,
    pushPullIntervalMs: 60_000,
    probeTimeoutMs: 3000,
    probeIntervalMs: 5000,
    gossipNodes: 4,
    gossipIntervalMs: 500,
    gossipToTheDeadMs: 60_000,
  };
}

/** Loopback / single host: tiny RTTs allow aggressive timeouts. */
export function localConfig(name: string, advertise: Address): MemberlistConfig {
  return {
    ...lanConfig(name, advertise),
    tcpTimeoutMs: 1000,
    indirectChecks: 1,
    // memberlist's local profile says 2. On one host bandwidth is free and clusters are small,
    // where 2 sends per hop lose news: in seeded 5–8 node simulations a tag update missed a peer
    // until the next push/pull (15 s) in 16% of trials and a user event had not reached every node
    // after 1 s in 55% (scripts/meta-spread.ts, scripts/event-spread.ts); with 4 (the LAN value): 0% and 2%.
    retransmitMult: 4,
    suspicionMult: 3,
    pushPullIntervalMs: 15_000,
    probeTimeoutMs: 200,
    gossipIntervalMs: 100,
    gossipToTheDeadMs: 15_000,
  };
}
