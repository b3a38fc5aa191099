// Serf's member table, compact (issue 15): like memberlist's (src/memberlist/table.ts), one slot
// per member across typed arrays — ids of the interned name, address and protocol versions
// (src/memberlist/intern.ts, shared with memberlist's table), status, the Lamport time of the last
// intent applied, the time it failed or left — plus a reference to its tags, which are shared and
// frozen (one decoded object per distinct meta). About 45 bytes a member instead of ~200 for a
// Member object, its state wrapper and a Map entry; a simulated cluster holds N² of them.
//
// `get` and iteration hand out MemberRef views: a view is a Member (reading it reads the table;
// `status` and `tags` can be assigned through it) and carries the table's own fields. A view is
// good until its member is deleted; events and callers outside Serf get copies (`snapshot`).
// Iteration follows insertion order, as the Map it replaces did.

import { processInterners, type Interners } from '../memberlist/intern.ts';
import type { Address } from '../wire/types.ts';
import type { Tags } from './tags.ts';

export type MemberStatus = 'none' | 'alive' | 'leaving' | 'left' | 'failed';

/** A cluster member as Serf reports it (RPC `members`, events). */
export interface Member {
  name: string;
  addr: Address;
  tags: Tags;
  status: MemberStatus;
  /** memberlist protocol versions (min/max/cur). */
  protocolMin: number;
  protocolMax: number;
  protocolCur: number;
  /** Serf (delegate) protocol versions (min/max/cur); `serf members -detailed` shows these. */
  delegateMin: number;
  delegateMax: number;
  delegateCur: number;
}

const STATUSES: readonly MemberStatus[] = ['none', 'alive', 'leaving', 'left', 'failed'];
const statusCode = (s: MemberStatus): number => STATUSES.indexOf(s);

/** What a member is made from: memberlist's view of the node, and its decoded tags. */
export interface MemberSource {
  name: string;
  addr: Address;
  vsn: readonly number[];
}

export class MemberRef implements Member {
  constructor(
    private readonly t: MemberTable,
    readonly slot: number,
  ) {}

  get name(): string {
    return this.t.nameAt(this.slot);
  }
  get addr(): Address {
    return this.t.addrAt(this.slot);
  }
  get tags(): Tags {
    return this.t.tagsAt(this.slot);
  }
  set tags(tags: Tags) {
    this.t.setTagsAt(this.slot, tags);
  }
  get status(): MemberStatus {
    return this.t.statusAt(this.slot);
  }
  set status(s: MemberStatus) {
    this.t.setStatusAt(this.slot, s);
  }
  /** Lamport time of the last join/leave intent applied to this member. */
  get statusLTime(): number {
    return this.t.lTimeAt(this.slot);
  }
  set statusLTime(t: number) {
    this.t.setLTimeAt(this.slot, t);
  }
  /** Driver ms when it became failed or left (reap uses it). */
  get leaveTimeMs(): number {
    return this.t.leaveAt(this.slot);
  }
  set leaveTimeMs(t: number) {
    this.t.setLeaveAt(this.slot, t);
  }
  get protocolMin(): number {
    return this.t.vsnAt(this.slot)[0];
  }
  get protocolMax(): number {
    return this.t.vsnAt(this.slot)[1];
  }
  get protocolCur(): number {
    return this.t.vsnAt(this.slot)[2];
  }
  get delegateMin(): number {
    return this.t.vsnAt(this.slot)[3];
  }
  get delegateMax(): number {
    return this.t.vsnAt(this.slot)[4];
  }
  get delegateCur(): number {
    return this.t.vsnAt(this.slot)[5];
  }
}

export class MemberTable {
  private cap = 0;
  private nameId = new Int32Array(0);
  private addrId = new Int32Array(0);
  private vsnId = new Int32Array(0);
  private st = new Uint8Array(0);
  private lTime = new Float64Array(0);
  private leave = new Float64Array(0);
  private tagsOf: Tags[] = [];
  private readonly freeSlots: number[] = [];
  private used = 0;
  /** Slots in insertion order. */
  private order = new Int32Array(0);
  private orderLen = 0;
  /** name id → slot + 1 (0: not here). */
  private slotOfName = new Int32Array(0);

  constructor(private readonly ids: Interners = processInterners) {}

  get size(): number {
    return this.orderLen;
  }

  private grow(n: number): void {
    const c = Math.max(n, 16, Math.ceil(this.cap * 1.5));
    const i32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(c);
      b.set(a);
      return b;
    };
    this.nameId = i32(this.nameId);
    this.addrId = i32(this.addrId);
    this.vsnId = i32(this.vsnId);
    this.order = i32(this.order);
    const st = new Uint8Array(c);
    st.set(this.st);
    this.st = st;
    const lt = new Float64Array(c);
    lt.set(this.lTime);
    this.lTime = lt;
    const lv = new Float64Array(c);
    lv.set(this.leave);
    this.leave = lv;
    this.cap = c;
  }

  nameAt(slot: number): string {
    return this.ids.names.value(this.nameId[slot]!);
  }
  addrAt(slot: number): Address {
    return this.ids.addrs.value(this.addrId[slot]!);
  }
  tagsAt(slot: number): Tags {
    return this.tagsOf[slot]!;
  }
  setTagsAt(slot: number, tags: Tags): void {
    this.tagsOf[slot] = tags;
  }
  statusAt(slot: number): MemberStatus {
    return STATUSES[this.st[slot]!]!;
  }
  setStatusAt(slot: number, s: MemberStatus): void {
    this.st[slot] = statusCode(s);
  }
  lTimeAt(slot: number): number {
    return this.lTime[slot]!;
  }
  setLTimeAt(slot: number, t: number): void {
    this.lTime[slot] = t;
  }
  leaveAt(slot: number): number {
    return this.leave[slot]!;
  }
  setLeaveAt(slot: number, t: number): void {
    this.leave[slot] = t;
  }
  vsnAt(slot: number): readonly [number, number, number, number, number, number] {
    return this.ids.vsns.value(this.vsnId[slot]!);
  }

  private slotOf(name: string): number {
    const id = this.ids.names.find(name);
    return id < 0 || id >= this.slotOfName.length ? -1 : this.slotOfName[id]! - 1;
  }

  get(name: string): MemberRef | undefined {
    const slot = this.slotOf(name);
    return slot < 0 ? undefined : new MemberRef(this, slot);
  }

  /** A new member (status, no intent time, not left). */
  add(n: MemberSource, tags: Tags, status: MemberStatus): MemberRef {
    if (this.slotOf(n.name) >= 0) throw new Error(`member table: ${n.name} is already listed`);
    let slot: number;
    if (this.freeSlots.length > 0) {
      slot = this.freeSlots.pop()!;
    } else {
      if (this.used === this.cap) this.grow(this.used + 1);
      slot = this.used++;
    }
    const { names, addrs, vsns } = this.ids;
    const nameId = names.acquire(n.name);
    this.nameId[slot] = nameId;
    this.addrId[slot] = addrs.acquire(n.addr);
    this.vsnId[slot] = vsns.acquire(n.vsn);
    this.tagsOf[slot] = tags;
    this.st[slot] = statusCode(status);
    this.lTime[slot] = 0;
    this.leave[slot] = 0;
    if (nameId >= this.slotOfName.length) {
      const b = new Int32Array(Math.max(nameId + 1, names.bound, 2 * this.slotOfName.length));
      b.set(this.slotOfName);
      this.slotOfName = b;
    }
    this.slotOfName[nameId] = slot + 1;
    if (this.orderLen === this.order.length) {
      const b = new Int32Array(Math.max(16, this.cap));
      b.set(this.order);
      this.order = b;
    }
    this.order[this.orderLen++] = slot;
    return new MemberRef(this, slot);
  }

  /** A known member seen again by memberlist (join, update): its address, versions and tags. */
  refresh(m: MemberRef, n: MemberSource, tags: Tags, status: MemberStatus): void {
    const slot = m.slot;
    const { addrs, vsns } = this.ids;
    const oldAddr = this.addrId[slot]!;
    this.addrId[slot] = addrs.acquire(n.addr);
    addrs.release(oldAddr);
    const oldVsn = this.vsnId[slot]!;
    this.vsnId[slot] = vsns.acquire(n.vsn);
    vsns.release(oldVsn);
    this.tagsOf[slot] = tags;
    this.st[slot] = statusCode(status);
  }

  delete(name: string): boolean {
    const slot = this.slotOf(name);
    if (slot < 0) return false;
    const { names, addrs, vsns } = this.ids;
    const nameId = this.nameId[slot]!;
    this.slotOfName[nameId] = 0;
    names.release(nameId);
    addrs.release(this.addrId[slot]!);
    vsns.release(this.vsnId[slot]!);
    this.nameId[slot] = -1;
    this.tagsOf[slot] = EMPTY_TAGS;
    const i = this.order.subarray(0, this.orderLen).indexOf(slot);
    this.order.copyWithin(i, i + 1, this.orderLen);
    this.orderLen--;
    this.freeSlots.push(slot);
    return true;
  }

  /** Every member, in insertion order (views). */
  *values(): IterableIterator<MemberRef> {
    // A copy of the order: callers may delete while iterating (reap).
    const order = this.order.slice(0, this.orderLen);
    for (const slot of order) if (this.nameId[slot] !== -1) yield new MemberRef(this, slot);
  }
}

const EMPTY_TAGS: Tags = Object.freeze({});

/** A plain copy of a member, for events and callers outside Serf (a view is not one). */
export function snapshotMember(m: Member): Member {
  return {
    name: m.name,
    addr: { ip: m.addr.ip, port: m.addr.port },
    tags: { ...m.tags },
    status: m.status,
    protocolMin: m.protocolMin,
    protocolMax: m.protocolMax,
    protocolCur: m.protocolCur,
    delegateMin: m.delegateMin,
    delegateMax: m.delegateMax,
    delegateCur: m.delegateCur,
  };
}
