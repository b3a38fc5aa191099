// Eager forwarding (kodama, not memberlist): fresh news goes out at once, not at the next tick.
//
// memberlist spreads a broadcast only by piggybacking: every gossip interval (200 ms LAN) a node
// sends its pending broadcasts to `gossipNodes` random peers, so news crawls one hop per
// interval. kodama also runs an *eager round* as soon as a node first learns a piece of news:
// the same compound packets a gossip round builds (the queues' own choice: fewest transmissions
// first, then whatever else fits the datagram), sent to `eagerGossipNodes` random live peers.
// Spread time becomes hops × network time instead of hops × gossip interval.
//
// Bounded, three ways:
//  - the eager sends come out of the broadcast's retransmit budget (each packet a broadcast rides
//    in counts one transmission, as in a gossip round), so a piece of news is still sent
//    retransmitMult × ceil(log10(N+1)) times per node in all: the ticks just have less left;
//  - a round is triggered only by news this node had not seen: memberlist's own alive / suspect /
//    dead that the state machine queues as fresh, and Serf user events and queries whose bytes
//    are not in `SeenNews`; a duplicate triggers nothing, so each node forwards each piece of news
//    eagerly at most once. (Serf news a node starts itself never passes through the core's
//    input: Serf sends it to eagerGossipNodes members directly, out of the same budget — serf.ts
//    sendEagerly — and they forward it on from here.)
//  - triggers coalesce: a round runs at once, or one gossip interval after the previous eager
//    round if that is later, and everything that arrives before it runs goes out in it. So eager
//    rounds add at most eagerGossipNodes packets per gossip interval to memberlist's own
//    gossipNodes (15/s on LAN; Serf's direct sends of the news a node starts add as many at most,
//    serf.ts). News that comes alone costs about no extra packets: its first transmissions move
//    from the next ticks to the eager round (simulated, 100 nodes, an event every 2 s: +3 %
//    packets, same bytes). The ceiling is reached under continuous news: 100 nodes, 10 % loss,
//    5 or 50 user events a second: 18.4 → 33 and 18.5 → 36 packets/node/s, bytes +6 %, p50
//    spread 332 → 120 and 314 → 135 ms. A tighter limit (an eager round that stands in for the
//    next tick) keeps the packet count flat there, but then news spreads no faster than with
//    memberlist, and the moved ticks delay the few nodes the eager wave misses (last node of a
//    100-node spread +120 ms).
// News about a node itself (its new meta, a refutation, its leave) in a small cluster goes
// further: straight to every live peer when there are at most `ownNewsDirectMax` (16) of them,
// besides the queue (memberlist.ts announceToAll; Serf does the same for the events and queries a
// node starts). Below 10 nodes the budget is retransmitMult × 1 sends per node, and a tag change
// still missed some peer until the next push/pull in ~0.75 % of seeded 7-node runs
// (test/sim/own-news.test.ts). Own news is rare; it costs at most 16 packets per change.
// News that a member is back (dead, left or unknown to us, then alive) goes the same way from
// every node that first hears it, by packet or push/pull (memberlist.ts announceRevivals): after a
// partition heals, a Serf peer (no heal pings) hears of the other side only from the others.
// At most 16 packets per node per revival, only in clusters of at most 17.
// The packets are ordinary memberlist gossip: real serf agents take them like any other.

/** Serf's message types (first byte of a memberlist user message) that travel by gossip as news. */
export const SERF_USER_EVENT = 3;
export const SERF_QUERY = 4;

/** Distinct pieces of Serf news remembered (a few seconds of circulation under heavy traffic). */
export const SEEN_NEWS_CAPACITY = 1024;

/** Sources of the news of one pending round that are kept to skip (the rest are just not skipped). */
export const MAX_SKIPPED_SOURCES = 16;

/** A Serf user event or query: what Serf re-broadcasts when it is new to it. */
export function isSerfNews(payload: Uint8Array): boolean {
  const t = payload[0];
  return t === SERF_USER_EVENT || t === SERF_QUERY;
}

/**
 * FNV-1a over the bytes, with the length above bit 32: a collision only costs an eager forward
 * (the news still spreads by gossip), so 32 bits of hash are plenty for a thousand entries.
 */
export function newsKey(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0) + (bytes.length % 0x100000) * 0x100000000;
}

/**
 * Serf news this node has seen (received or eagerly sent), oldest forgotten first. Serf keeps the
 * authoritative dedup (LTime rings); this bounded copy only decides whether an arrival is worth
 * an eager round, without Serf having to tell the core (the agent wires Serf to the core through
 * the plain Delegate hooks).
 */
export class SeenNews {
  private readonly keys: number[] = [];
  private readonly set = new Set<number>();
  private head = 0;

  constructor(private readonly capacity = SEEN_NEWS_CAPACITY) {}

  get size(): number {
    return this.set.size;
  }

  /** Remember `bytes`; true when they were not remembered yet. */
  add(bytes: Uint8Array): boolean {
    const k = newsKey(bytes);
    if (this.set.has(k)) return false;
    if (this.keys.length < this.capacity) {
      this.keys.push(k);
    } else {
      this.set.delete(this.keys[this.head]!);
      this.keys[this.head] = k;
      this.head = (this.head + 1) % this.capacity;
    }
    this.set.add(k);
    return true;
  }
}
