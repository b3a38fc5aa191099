// Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue, also used by Serf).
//
// Every broadcast is piggybacked on outgoing packets until it has been sent
// retransmitMult × ceil(log10(N + 1)) times: enough for an epidemic to reach every node with high
// probability, and no more, so the queue cannot grow with cluster size × time.
//
// Selection order (as memberlist): fewest transmissions first; within a tier, the largest message
// that still fits; ties broken by newest. Queueing a broadcast with a `key` (memberlist uses the
// node name) replaces any queued broadcast with the same key, so stale news about a node is never
// sent after fresh news.

export interface Broadcast {
  /** Invalidation key: a newer broadcast with the same key replaces this one. */
  key?: string | undefined;
  msg: Uint8Array;
  /** Called once when the broadcast is dropped: sent enough times, replaced, or pruned. */
  finished?: ((transmitted: boolean) => void) | undefined;
}

interface Item {
  b: Broadcast;
  id: number;
  transmits: number;
}

export function retransmitLimit(retransmitMult: number, numNodes: number): number {
  const scale = Math.ceil(Math.log10(numNodes + 1));
  return retransmitMult * Math.max(1, scale);
}

/** Orders a tier: larger first, then newer first. */
function before(a: Item, b: Item): boolean {
  if (a.b.msg.length !== b.b.msg.length) return a.b.msg.length > b.b.msg.length;
  return a.id > b.id;
}

export class TransmitLimitedQueue {
  /** tiers[t] holds items sent t times, kept in selection order. */
  private readonly tiers: Item[][] = [];
  private readonly byKey = new Map<string, Item>();
  private nextId = 1;
  private count = 0;

  constructor(
    private readonly retransmitMult: number,
    private readonly numNodes: () => number,
  ) {}

  get length(): number {
    return this.count;
  }

  /**
   * `sent`: transmissions the broadcast already had outside this queue (kodama's eager sends of
   * news a node starts, serf.ts); it stays queued for the rest of its budget, if any is left.
   */
  queue(b: Broadcast, sent = 0): void {
    if (b.key !== undefined) {
      const old = this.byKey.get(b.key);
      if (old !== undefined) {
        this.remove(old);
        old.b.finished?.(false);
      }
    }
    if (sent >= retransmitLimit(this.retransmitMult, this.numNodes())) {
      b.finished?.(true);
      return;
    }
    const item: Item = { b, id: this.nextId++, transmits: Math.max(0, Math.floor(sent)) };
    this.insert(item);
    if (b.key !== undefined) this.byKey.set(b.key, item);
  }

  /**
   * Take broadcasts whose sizes plus `overhead` each add up to at most `limit` bytes. Each taken
   * broadcast counts one transmission; those at the retransmit limit leave the queue.
   */
  getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    if (this.count === 0) return [];
    const max = retransmitLimit(this.retransmitMult, this.numNodes());
    const out: Uint8Array[] = [];
    const taken: Item[] = [];
    let used = 0;
    for (let t = 0; t < this.tiers.length; t++) {
      const tier = this.tiers[t];
      if (tier === undefined || tier.length === 0) continue;
      // A tier is sorted largest first, so the items too big for what is left form a prefix:
      // binary-search past it instead of scanning every queued item once the packet is nearly
      // full (this is the hot path of gossip in large simulated clusters).
      let from = 0;
      while (from < tier.length) {
        const room = limit - used - overhead;
        let lo = from;
        let hi = tier.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (tier[mid]!.b.msg.length > room) lo = mid + 1;
          else hi = mid;
        }
        if (lo >= tier.length) break;
        const item = tier[lo]!;
        used += item.b.msg.length + overhead;
        out.push(item.b.msg);
        tier.splice(lo, 1);
        taken.push(item);
        from = lo;
      }
      if (limit - used <= overhead) break;
    }
    for (const item of taken) {
      item.transmits++;
      if (item.transmits >= max) {
        this.count--;
        if (item.b.key !== undefined && this.byKey.get(item.b.key) === item) this.byKey.delete(item.b.key);
        item.b.finished?.(true);
      } else {
        this.count--; // insert() counts it again
        this.insert(item);
      }
    }
    return out;
  }

  /** Drop the oldest broadcasts until at most `maxRetain` remain. */
  prune(maxRetain: number): void {
    if (this.count <= maxRetain) return;
    const all: Item[] = [];
    for (const tier of this.tiers) if (tier !== undefined) all.push(...tier);
    all.sort((a, b) => a.id - b.id);
    for (const item of all.slice(0, this.count - maxRetain)) {
      this.remove(item);
      item.b.finished?.(false);
    }
  }

  /** Drop everything (shutdown). */
  reset(): void {
    for (const tier of this.tiers) if (tier !== undefined) for (const item of tier) item.b.finished?.(false);
    this.tiers.length = 0;
    this.byKey.clear();
    this.count = 0;
  }

  private insert(item: Item): void {
    let tier = this.tiers[item.transmits];
    if (tier === undefined) {
      for (let t = this.tiers.length; t <= item.transmits; t++) this.tiers[t] = [];
      tier = this.tiers[item.transmits]!;
    }
    let lo = 0;
    let hi = tier.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(tier[mid]!, item)) lo = mid + 1;
      else hi = mid;
    }
    tier.splice(lo, 0, item);
    this.count++;
  }

  private remove(item: Item): void {
    const tier = this.tiers[item.transmits];
    if (tier === undefined) return;
    const i = tier.indexOf(item);
    if (i >= 0) {
      tier.splice(i, 1);
      this.count--;
    }
    if (item.b.key !== undefined && this.byKey.get(item.b.key) === item) this.byKey.delete(item.b.key);
  }
}
