// The node table: every node we know (ourselves included), by name, plus the probe order.
//
// Probing walks `list` round-robin. New nodes go to a random position so that every member's
// probe order differs; at each wrap-around nodes dead or left for longer than
// gossipToTheDeadMs are purged and the list is reshuffled (memberlist resetNodes). Work is
// proportional to what is due: a probe step looks at a few entries, a purge is O(n) once per
// n probes.
//
// Compact (issue 15): every node of a cluster holds an entry for every other, so a simulated
// cluster of N nodes holds N² entries and a real agent's table is its largest structure. An entry
// is one slot across a few typed arrays — ids of the interned name, address, meta and protocol
// versions (src/memberlist/intern.ts: one copy per process, however many tables list them), the
// incarnation, the state and the time it changed — about 40 bytes, against ~300 for an object per
// entry with its own strings, address and Map entries. Lookups by name and by address index
// per-id arrays directly (the interners' ids are dense), so they cost no hashing.
//
// `get`, `all`, `kRandom` and `nextProbeTarget` hand out NodeRef views onto a slot: reading one
// reads the table, and `incarnation`, `meta` and `vsn` can be assigned through it. A view is good
// until the next purge (the slot may then hold another node): keep `snapshot()`, not a view,
// across time.

import type { NodeInfo, Random } from './api.ts';
import { processInterners, type InternedAddr, type Interners } from './intern.ts';
import type { NodeStateWriter } from '../wire/messages.ts';
import type { Address, Vsn } from '../wire/types.ts';

export function isDeadOrLeft(n: NodeInfo): boolean {
  return n.state === 'dead' || n.state === 'left';
}

type State = NodeInfo['state'];
const STATES: readonly State[] = ['alive', 'suspect', 'dead', 'left'];
const SUSPECT = 1;
const stateCode = (s: State): number => (s === 'alive' ? 0 : s === 'suspect' ? 1 : s === 'dead' ? 2 : 3);

/** What a new entry is made from (a plain NodeInfo will do). */
export interface NewNode {
  name: string;
  addr: Address;
  /** The ip as the 4 (or 16) bytes it arrived in, if the caller has them. */
  ip4?: Uint8Array | undefined;
  meta: Uint8Array;
  incarnation: number;
  state: State;
  vsn: readonly number[];
  stateChangeMs: number;
}

/** A view onto one slot of a NodeTable (see the top of this file for how long it is good). */
export class NodeRef implements NodeInfo {
  constructor(
    private readonly t: NodeTable,
    readonly slot: number,
  ) {}

  get name(): string {
    return this.t.nameAt(this.slot);
  }
  get addr(): Address {
    return this.t.addrAt(this.slot);
  }
  /** The address's ip as bytes (for re-broadcasts). */
  get ipBytes(): Uint8Array {
    return this.t.ipBytesAt(this.slot);
  }
  get meta(): Uint8Array {
    return this.t.metaAt(this.slot);
  }
  set meta(m: Uint8Array) {
    this.t.setMetaAt(this.slot, m);
  }
  get incarnation(): number {
    return this.t.incarnationAt(this.slot);
  }
  set incarnation(i: number) {
    this.t.setIncarnationAt(this.slot, i);
  }
  get state(): State {
    return this.t.stateAt(this.slot);
  }
  get vsn(): Vsn {
    return this.t.vsnAt(this.slot);
  }
  set vsn(v: Vsn) {
    this.t.setVsnAt(this.slot, v);
  }
  get stateChangeMs(): number {
    return this.t.changeMsAt(this.slot);
  }
}

/**
 * A member's state as a push/pull last wrote it, kept with its interned name. The interned
 * address, meta and versions are compared by identity: an interned value is one object for as
 * long as anyone holds it, and a freed id that comes back for another value comes back as
 * another object, so a stale memo never matches.
 */
interface StateMemo {
  addr: InternedAddr;
  meta: Uint8Array;
  vsn: Vsn;
  inc: number;
  st: number;
  bytes: Uint8Array;
}

function grownInt32(a: Int32Array, size: number, fill = 0): Int32Array<ArrayBuffer> {
  const b = new Int32Array(size);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

export class NodeTable {
  private readonly ids: Interners;
  private cap = 0;
  private nameId = new Int32Array(0);
  private addrId = new Int32Array(0);
  private metaId = new Int32Array(0);
  private vsnId = new Int32Array(0);
  private inc = new Uint32Array(0);
  private st = new Uint8Array(0);
  private changeMs = new Float64Array(0);
  /** Slots not in use (-1 in nameId), reused first. */
  private readonly freeSlots: number[] = [];
  private used = 0;
  /** Probe order: slots. */
  private list = new Int32Array(0);
  private listLen = 0;
  private probeIndex = 0;
  /** name id → slot + 1 (0: not here). */
  private slotOfName = new Int32Array(0);
  /**
   * address id → slot + 1 of the node advertised there (the CRC decision); several nodes
   * claiming one address: the last indexed wins.
   */
  private slotOfAddr = new Int32Array(0);
  /** alive + suspect entries, kept up to date so numMembers() is O(1) (the simulator polls it). */
  private live = 0;

  constructor(
    private readonly random: Random,
    interners: Interners = processInterners,
  ) {
    this.ids = interners;
  }

  get size(): number {
    return this.listLen;
  }

  get liveCount(): number {
    return this.live;
  }

  /** Make room for `n` entries in all (the simulator reserves a whole cluster's at once). */
  reserve(n: number): void {
    if (n <= this.cap) return;
    // At least half again: a push/pull bringing a few new members must not copy every array
    // each time (a join storm is thousands of them); one bringing a whole cluster gets exactly it.
    const c = Math.max(n, Math.ceil(this.cap * 1.5));
    this.nameId = grownInt32(this.nameId, c, -1);
    this.addrId = grownInt32(this.addrId, c);
    this.metaId = grownInt32(this.metaId, c);
    this.vsnId = grownInt32(this.vsnId, c);
    const inc = new Uint32Array(c);
    inc.set(this.inc);
    this.inc = inc;
    const st = new Uint8Array(c);
    st.set(this.st);
    this.st = st;
    const ch = new Float64Array(c);
    ch.set(this.changeMs);
    this.changeMs = ch;
    this.list = grownInt32(this.list, c);
    this.cap = c;
  }

  // Slot accessors (NodeRef's getters and setters).
  nameAt(slot: number): string {
    return this.ids.names.value(this.nameId[slot]!);
  }
  addrAt(slot: number): Address {
    return this.ids.addrs.value(this.addrId[slot]!);
  }
  ipBytesAt(slot: number): Uint8Array {
    return this.ids.addrs.ipBytes(this.addrId[slot]!);
  }
  metaAt(slot: number): Uint8Array {
    return this.ids.metas.value(this.metaId[slot]!);
  }
  setMetaAt(slot: number, m: Uint8Array): void {
    const old = this.metaId[slot]!;
    this.metaId[slot] = this.ids.metas.acquire(m);
    this.ids.metas.release(old);
  }
  incarnationAt(slot: number): number {
    return this.inc[slot]!;
  }
  setIncarnationAt(slot: number, i: number): void {
    this.inc[slot] = i;
  }
  stateAt(slot: number): State {
    return STATES[this.st[slot]!]!;
  }
  vsnAt(slot: number): Vsn {
    return this.ids.vsns.value(this.vsnId[slot]!);
  }
  setVsnAt(slot: number, v: Vsn): void {
    const old = this.vsnId[slot]!;
    this.vsnId[slot] = this.ids.vsns.acquire(v);
    this.ids.vsns.release(old);
  }
  changeMsAt(slot: number): number {
    return this.changeMs[slot]!;
  }

  private isDeadOrLeftAt(slot: number): boolean {
    return this.st[slot]! > SUSPECT;
  }

  /** Change a node's state; every state change goes through here to keep liveCount right. */
  setState(node: NodeInfo, state: State, now: number): void {
    const slot = (node as NodeRef).slot;
    const code = stateCode(state);
    if (this.st[slot] === code) return;
    this.live += (this.isDeadOrLeftAt(slot) ? 0 : -1) + (code > SUSPECT ? 0 : 1);
    this.st[slot] = code;
    this.changeMs[slot] = now;
  }

  /** The slot listing `name`, or -1. A slot stays this node's until the next purge (see the top). */
  slotFor(name: string): number {
    return this.slotOf(name);
  }

  private slotOf(name: string): number {
    const id = this.ids.names.find(name);
    return id < 0 || id >= this.slotOfName.length ? -1 : this.slotOfName[id]! - 1;
  }

  get(name: string): NodeRef | undefined {
    const slot = this.slotOf(name);
    return slot < 0 ? undefined : new NodeRef(this, slot);
  }

  has(name: string): boolean {
    return this.slotOf(name) >= 0;
  }

  /**
   * Whether an alive for the node at `slot` (slotFor) would be stale news: it is listed at
   * exactly this ip (as bytes) and port with an incarnation at least `incarnation`. The push/pull merge asks first,
   * so the usual entry of a periodic exchange (nothing new) costs no address parsing.
   */
  aliveIsStale(slot: number, incarnation: number, ip: Uint8Array, port: number): boolean {
    return slot >= 0 && incarnation <= this.inc[slot]! && this.ids.addrs.is(this.addrId[slot]!, ip, port);
  }

  /** The node currently advertised at `addr`, if any (used for the CRC decision). */
  getByAddr(addr: Address): NodeRef | undefined {
    const id = this.ids.addrs.find(addr);
    if (id < 0 || id >= this.slotOfAddr.length) return undefined;
    const slot = this.slotOfAddr[id]! - 1;
    return slot < 0 ? undefined : new NodeRef(this, slot);
  }

  /** Index the slot at its address; a node indexed there before stops being found (last wins). */
  private indexAddr(slot: number): void {
    const id = this.addrId[slot]!;
    if (id >= this.slotOfAddr.length) this.slotOfAddr = grownInt32(this.slotOfAddr, Math.max(id + 1, this.ids.addrs.bound, 2 * this.slotOfAddr.length));
    this.slotOfAddr[id] = slot + 1;
  }

  /** Forget the index entry at the slot's current address if it is this slot's. */
  private unindexAddr(slot: number): void {
    const id = this.addrId[slot]!;
    if (this.slotOfAddr[id] === slot + 1) this.slotOfAddr[id] = 0;
  }

  /** Every entry, in probe order (views: see the top of the file). */
  all(): NodeRef[] {
    const out = new Array<NodeRef>(this.listLen);
    for (let i = 0; i < this.listLen; i++) out[i] = new NodeRef(this, this.list[i]!);
    return out;
  }

  /**
   * Every entry, in probe order, as a push/pull lists it (encodePushPullFrom), without a view or
   * an object per entry. Probe order, as memberlist, and not the cheaper slot order: a receiver
   * queues the news it learns in the order it reads them, and when every node sends the same
   * order (the slot order of tables copied from one another) every joiner gossips the same news
   * first — a join storm of 1,000 took 81 s to converge instead of 66 (seed 20261207). With the
   * interners' cacheEncodings (a simulator), the encoded state of each member is kept with its
   * interned name (one per process, see StateMemo) and copied as it is while nothing in it has
   * changed: in a settled cluster nearly every entry of every push/pull.
   */
  writeStates(w: NodeStateWriter): void {
    const { names, addrs, metas, vsns } = this.ids;
    if (!this.ids.cacheEncodings) {
      for (let i = 0; i < this.listLen; i++) {
        const slot = this.list[i]!;
        const nameId = this.nameId[slot]!;
        const addrId = this.addrId[slot]!;
        w.put(names.value(nameId), addrs.ipBytes(addrId), addrs.value(addrId).port, metas.value(this.metaId[slot]!), this.inc[slot]!, this.st[slot]!, vsns.value(this.vsnId[slot]!));
      }
      return;
    }
    for (let i = 0; i < this.listLen; i++) {
      const slot = this.list[i]!;
      const nameId = this.nameId[slot]!;
      const addrId = this.addrId[slot]!;
      const addr = addrs.entry(addrId);
      const meta = metas.value(this.metaId[slot]!);
      const vsn = vsns.value(this.vsnId[slot]!);
      const inc = this.inc[slot]!;
      const st = this.st[slot]!;
      const memo = names.memo(nameId) as StateMemo | undefined;
      if (memo !== undefined && memo.addr === addr && memo.meta === meta && memo.vsn === vsn && memo.inc === inc && memo.st === st) {
        w.putEncoded(memo.bytes);
        continue;
      }
      w.put(names.encoded(nameId), addr.ipBytes, addr.port, meta, inc, st, vsn);
      names.setMemo(nameId, { addr, meta, vsn, inc, st, bytes: w.lastWritten() } satisfies StateMemo);
    }
  }

  /**
   * The distinct protocol-version tuples in the table, of alive entries and of all: a protocol
   * check need only look at these (one or two in a cluster of thousands).
   */
  vsnsInUse(): { alive: Vsn[]; all: Vsn[] } {
    const alive = new Set<number>();
    const all = new Set<number>();
    let lastAll = -1;
    let lastAlive = -1;
    for (let i = 0; i < this.listLen; i++) {
      const slot = this.list[i]!;
      const id = this.vsnId[slot]!;
      // Nearly every entry has the tuple the one before had: skip the set then.
      if (id !== lastAll) all.add((lastAll = id));
      if (this.st[slot] === 0 && id !== lastAlive) alive.add((lastAlive = id));
    }
    const vsns = this.ids.vsns;
    return { alive: [...alive].map((id) => vsns.value(id)), all: [...all].map((id) => vsns.value(id)) };
  }

  /** Insert at a random position of the probe list (swap with the end, as memberlist does). */
  add(node: NewNode): NodeRef {
    if (this.slotOf(node.name) >= 0) throw new Error(`node table: ${node.name} is already listed`);
    const { names, addrs, metas, vsns } = this.ids;
    const slot = this.place(
      names.acquire(node.name),
      addrs.acquire(node.addr, node.ip4),
      metas.acquire(node.meta),
      vsns.acquire(node.vsn),
      node.incarnation,
      stateCode(node.state),
      node.stateChangeMs,
    );
    return new NodeRef(this, slot);
  }

  /**
   * The simulator's shortcut to a settled cluster at fleet size (Cluster.seedTables with `copy`):
   * list every entry of `src` that we do not list yet as it is there — the same interned values,
   * incarnation, state and change time — each at a random place of our own probe order, as if a
   * merge had added it, but without a merge's news and events. `src` must share our interners.
   * Returns how many entries were added.
   */
  copyEntriesFrom(src: NodeTable): number {
    if (src.ids !== this.ids) throw new Error('node table: can only copy from a table with the same interners');
    this.reserve(this.listLen + src.listLen);
    const { names, addrs, metas, vsns } = this.ids;
    let added = 0;
    for (let i = 0; i < src.listLen; i++) {
      const s = src.list[i]!;
      const nameId = src.nameId[s]!;
      if (nameId < this.slotOfName.length && this.slotOfName[nameId]! > 0) continue;
      names.retain(nameId);
      addrs.retain(src.addrId[s]!);
      metas.retain(src.metaId[s]!);
      vsns.retain(src.vsnId[s]!);
      this.place(nameId, src.addrId[s]!, src.metaId[s]!, src.vsnId[s]!, src.inc[s]!, src.st[s]!, src.changeMs[s]!);
      added++;
    }
    return added;
  }

  /** A new slot holding ids the caller has acquired, indexed and put at a random place of the probe order. */
  private place(nameId: number, addrId: number, metaId: number, vsnId: number, incarnation: number, code: number, changeMs: number): number {
    let slot: number;
    if (this.freeSlots.length > 0) {
      slot = this.freeSlots.pop()!;
    } else {
      if (this.used === this.cap) this.reserve(Math.max(16, this.cap + 1));
      slot = this.used++;
    }
    this.nameId[slot] = nameId;
    this.addrId[slot] = addrId;
    this.metaId[slot] = metaId;
    this.vsnId[slot] = vsnId;
    this.inc[slot] = incarnation;
    this.st[slot] = code;
    this.changeMs[slot] = changeMs;
    const names = this.ids.names;
    if (nameId >= this.slotOfName.length) this.slotOfName = grownInt32(this.slotOfName, Math.max(nameId + 1, names.bound, 2 * this.slotOfName.length));
    this.slotOfName[nameId] = slot + 1;
    this.indexAddr(slot);
    if (!this.isDeadOrLeftAt(slot)) this.live++;

    const n = this.listLen;
    const offset = n === 0 ? 0 : this.random.int(n);
    this.list[n] = this.list[offset]!;
    this.list[offset] = slot;
    this.listLen++;
    return slot;
  }

  setAddr(node: NodeInfo, addr: Address): void {
    const slot = (node as NodeRef).slot;
    this.unindexAddr(slot);
    const old = this.addrId[slot]!;
    this.addrId[slot] = this.ids.addrs.acquire(addr);
    this.ids.addrs.release(old);
    this.indexAddr(slot);
  }

  /** Free a slot and what it holds of the interners. */
  private remove(slot: number): void {
    const { names, addrs, metas, vsns } = this.ids;
    this.unindexAddr(slot);
    const nameId = this.nameId[slot]!;
    if (this.slotOfName[nameId] === slot + 1) this.slotOfName[nameId] = 0;
    names.release(nameId);
    addrs.release(this.addrId[slot]!);
    metas.release(this.metaId[slot]!);
    vsns.release(this.vsnId[slot]!);
    this.nameId[slot] = -1;
    if (!this.isDeadOrLeftAt(slot)) this.live--;
    this.freeSlots.push(slot);
  }

  /** Let go of every entry (a node shutting down returns what it held of the interners). */
  clear(): void {
    for (let i = 0; i < this.listLen; i++) this.remove(this.list[i]!);
    this.listLen = 0;
    this.probeIndex = 0;
  }

  /**
   * Next node to probe: round-robin, skipping `selfName` and dead/left nodes; purges and
   * reshuffles at wrap-around. At most one full pass (plus the reset) per call.
   */
  nextProbeTarget(selfName: string, now: number, gossipToTheDeadMs: number): NodeRef | undefined {
    const self = this.slotOf(selfName);
    // Bounded to about two passes (memberlist stops after one, which can skip a tick when the
    // reset lands just before the only live nodes; two passes always find one if it exists).
    let checked = 0;
    for (;;) {
      if (checked > 2 * this.listLen + 1) return undefined;
      if (this.probeIndex >= this.listLen) {
        this.purgeAndShuffle(now, gossipToTheDeadMs);
        this.probeIndex = 0;
        checked++;
        continue;
      }
      const slot = this.list[this.probeIndex]!;
      this.probeIndex++;
      if (slot === self || this.isDeadOrLeftAt(slot)) {
        checked++;
        continue;
      }
      return new NodeRef(this, slot);
    }
  }

  /** Drop nodes dead or left for longer than gossipToTheDeadMs, then shuffle (Fisher–Yates). Returns the names dropped. */
  purgeAndShuffle(now: number, gossipToTheDeadMs: number): string[] {
    const removed: string[] = [];
    let kept = 0;
    for (let i = 0; i < this.listLen; i++) {
      const slot = this.list[i]!;
      if (this.isDeadOrLeftAt(slot) && now - this.changeMs[slot]! > gossipToTheDeadMs) {
        removed.push(this.nameAt(slot));
        this.remove(slot);
      } else {
        this.list[kept++] = slot;
      }
    }
    this.listLen = kept;
    const list = this.list;
    for (let i = kept - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = list[i]!;
      list[i] = list[j]!;
      list[j] = t;
    }
    return removed;
  }

  /**
   * Up to k distinct random nodes for which `exclude` is false. Random draws first (cheap when
   * most nodes qualify, as in memberlist's kRandomNodes); memberlist stops after 3 × n draws and
   * can then miss the only qualifying node of a small cluster (a 2.6% chance per probe with 3
   * nodes: a spurious suspicion). We finish with one scan from a random offset instead.
   */
  kRandom(k: number, exclude: (n: NodeRef) => boolean): NodeRef[] {
    const n = this.listLen;
    const out: NodeRef[] = [];
    if (n === 0 || k <= 0) return out;
    const taken = (slot: number): boolean => {
      for (const r of out) if (r.slot === slot) return true;
      return false;
    };
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const slot = this.list[this.random.int(n)]!;
      if (taken(slot)) continue;
      const ref = new NodeRef(this, slot);
      if (exclude(ref)) continue;
      out.push(ref);
    }
    if (out.length < k) {
      const start = this.random.int(n);
      for (let i = 0; i < n && out.length < k; i++) {
        const slot = this.list[(start + i) % n]!;
        if (taken(slot)) continue;
        const ref = new NodeRef(this, slot);
        if (exclude(ref)) continue;
        out.push(ref);
      }
    }
    return out;
  }

  /** Bytes the table's own arrays take (not the interned values, shared by the process; not the transient free list). */
  get ownBytes(): number {
    return (
      this.cap * (4 * 4 + 4 + 1 + 8 + 4) + // ids, incarnation, state, change time, probe list
      4 * (this.slotOfName.length + this.slotOfAddr.length)
    );
  }
}
