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

/** A queued broadcast: the caller's fields copied in (one object per queued message: a join
 *  storm of N nodes queues ~N² of them across the cluster). */
class Item {
  /** queued: in a bucket; taken: being sent by getBroadcasts; gone: replaced, pruned or retired. */
  where: 'queued' | 'taken' | 'gone' = 'queued';
  constructor(
    readonly key: string | undefined,
    readonly msg: Uint8Array,
    readonly finished: ((transmitted: boolean) => void) | undefined,
    readonly id: number,
    public transmits: number,
  ) {}
}

/**
 * The items of one tier with one message length, newest first: a max-heap by id. Items replaced
 * or pruned stay in it, marked gone, until they surface or the bucket is rebuilt (`gone` counts
 * them): removing one is then O(1) instead of a search.
 */
interface Bucket {
  heap: Item[];
  gone: number;
}

/** One tier: buckets by message length, and those lengths, largest first (a handful: alive
 *  messages of one cluster differ in length only by their names and meta). */
interface Tier {
  lengths: number[];
  buckets: Map<number, Bucket>;
}

function heapPush(h: Item[], item: Item): void {
  let i = h.length;
  h.push(item);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]!.id >= item.id) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = item;
}

function heapPop(h: Item[]): Item | undefined {
  const top = h[0];
  const last = h.pop();
  if (top === undefined || last === undefined || h.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const r = l + 1;
    const c = r < h.length && h[r]!.id > h[l]!.id ? r : l;
    if (h[c]!.id <= last.id) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}

export function retransmitLimit(retransmitMult: number, numNodes: number): number {
  const scale = Math.ceil(Math.log10(numNodes + 1));
  return retransmitMult * Math.max(1, scale);
}

export class TransmitLimitedQueue {
  /** tiers[t] holds items sent t times. */
  private readonly tiers: (Tier | undefined)[] = [];
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
        old.finished?.(false);
      }
    }
    if (sent >= retransmitLimit(this.retransmitMult, this.numNodes())) {
      b.finished?.(true);
      return;
    }
    const item = new Item(b.key, b.msg, b.finished, this.nextId++, Math.max(0, Math.floor(sent)));
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
      if (tier === undefined) continue;
      // The largest length that still fits, its newest item; again until nothing fits.
      for (let li = 0; li < tier.lengths.length; ) {
        const len = tier.lengths[li]!;
        if (len > limit - used - overhead) {
          li++;
          continue;
        }
        const bucket = tier.buckets.get(len)!;
        const item = this.popQueued(bucket);
        if (item !== undefined) {
          item.where = 'taken';
          used += len + overhead;
          out.push(item.msg);
          taken.push(item);
        }
        if (bucket.heap.length === bucket.gone) {
          tier.buckets.delete(len);
          tier.lengths.splice(li, 1);
        }
      }
      if (limit - used <= overhead) break;
    }
    for (const item of taken) {
      this.count--; // insert() counts it again
      if (item.where === 'gone') continue; // replaced while being sent (by a finished callback)
      item.transmits++;
      if (item.transmits >= max) {
        item.where = 'gone';
        if (item.key !== undefined && this.byKey.get(item.key) === item) this.byKey.delete(item.key);
        item.finished?.(true);
      } else {
        this.insert(item);
      }
    }
    return out;
  }

  /** The newest item of a bucket still queued, taken out of it; undefined when none is. */
  private popQueued(bucket: Bucket): Item | undefined {
    for (;;) {
      const item = heapPop(bucket.heap);
      if (item === undefined) return undefined;
      if (item.where === 'queued') return item;
      bucket.gone--;
    }
  }

  /** Drop the oldest broadcasts until at most `maxRetain` remain. */
  prune(maxRetain: number): void {
    if (this.count <= maxRetain) return;
    const all = this.queuedItems();
    all.sort((a, b) => a.id - b.id);
    for (const item of all.slice(0, this.count - maxRetain)) {
      this.remove(item);
      item.finished?.(false);
    }
  }

  /** Drop everything (shutdown). */
  reset(): void {
    const all = this.queuedItems();
    this.tiers.length = 0;
    this.byKey.clear();
    this.count = 0;
    for (const item of all) {
      item.where = 'gone';
      item.finished?.(false);
    }
  }

  private queuedItems(): Item[] {
    const all: Item[] = [];
    for (const tier of this.tiers) {
      if (tier === undefined) continue;
      for (const bucket of tier.buckets.values()) for (const item of bucket.heap) if (item.where === 'queued') all.push(item);
    }
    return all;
  }

  private insert(item: Item): void {
    let tier = this.tiers[item.transmits];
    if (tier === undefined) {
      while (this.tiers.length < item.transmits) this.tiers.push(undefined);
      tier = { lengths: [], buckets: new Map() };
      this.tiers[item.transmits] = tier;
    }
    let bucket = tier.buckets.get(item.msg.length);
    if (bucket === undefined) {
      bucket = { heap: [], gone: 0 };
      tier.buckets.set(item.msg.length, bucket);
      const ls = tier.lengths;
      let i = 0;
      while (i < ls.length && ls[i]! > item.msg.length) i++;
      ls.splice(i, 0, item.msg.length);
    }
    item.where = 'queued';
    heapPush(bucket.heap, item);
    this.count++;
  }

  private remove(item: Item): void {
    if (item.key !== undefined && this.byKey.get(item.key) === item) this.byKey.delete(item.key);
    if (item.where === 'taken') {
      item.where = 'gone'; // getBroadcasts drops it instead of queueing it again
      return;
    }
    if (item.where !== 'queued') return;
    item.where = 'gone';
    this.count--;
    const tier = this.tiers[item.transmits]!;
    const bucket = tier.buckets.get(item.msg.length)!;
    bucket.gone++;
    if (bucket.gone === bucket.heap.length) {
      tier.buckets.delete(item.msg.length);
      tier.lengths.splice(tier.lengths.indexOf(item.msg.length), 1);
    } else if (bucket.gone > 32 && 2 * bucket.gone > bucket.heap.length) {
      // Mostly gone: rebuild from what is still queued.
      const live = bucket.heap.filter((x) => x.where === 'queued');
      bucket.heap = [];
      bucket.gone = 0;
      for (const x of live) heapPush(bucket.heap, x);
    }
  }
}
