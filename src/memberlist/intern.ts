// What many member tables share, held once per process (issue 15): the name, the address, the
// meta and the protocol versions of a member are the same bytes in every table that lists it —
// N tables of N entries each in a simulated cluster, and on a real agent several copies (wire
// decode, table, events) of what is one fact. A table entry keeps small integer ids instead
// (src/memberlist/table.ts), and each id is reference-counted: a table that drops an entry
// releases its ids, and a value nobody holds any more is forgotten and its id reused, so a
// long-running agent in a fleet whose names never repeat does not grow.
//
// Ids are dense (0, 1, 2, … with freed ids reused first), so a table can index per-id arrays
// directly instead of hashing. Values handed out are shared: never mutate one.

import { ipToBytes } from '../wire/addr.ts';
import { encodeGossipString } from '../wire/msgpack.ts';
import type { Address, Vsn } from '../wire/types.ts';

/** Reference counts and free ids: the bookkeeping every interner shares. */
class RefCounts {
  private refs = new Int32Array(64);
  private readonly free: number[] = [];
  private next = 0;
  /** Ids in use. */
  live = 0;

  /** A fresh id with one reference. */
  allocate(): number {
    const id = this.free.length > 0 ? this.free.pop()! : this.next++;
    if (id >= this.refs.length) {
      const grown = new Int32Array(this.refs.length * 2);
      grown.set(this.refs);
      this.refs = grown;
    }
    this.refs[id] = 1;
    this.live++;
    return id;
  }

  retain(id: number): void {
    this.refs[id]!++;
  }

  /** True when that was the last reference: the caller forgets the value, the id is free again. */
  release(id: number): boolean {
    const left = --this.refs[id]!;
    if (left > 0) return false;
    if (left < 0) throw new Error(`interned id ${id} released more often than acquired`);
    this.free.push(id);
    this.live--;
    return true;
  }

  /** One past the highest id ever handed out: how large a per-id array must be. */
  get bound(): number {
    return this.next;
  }
}

/** Member names. */
export class NameInterner {
  private readonly ids = new Map<string, number>();
  private values: string[] = [];
  /** The name as a push/pull writes it (msgpack str, header included), made on first use. */
  private encodedNames: (Uint8Array | undefined)[] = [];
  /** Per name, whatever a user keeps about it while the name is held (table.ts: its encoded state). */
  private memos: unknown[] = [];
  private readonly rc = new RefCounts();

  /** The id of `name`, if some table holds it (no reference taken). */
  find(name: string): number {
    return this.ids.get(name) ?? -1;
  }

  acquire(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) {
      this.rc.retain(id);
      return id;
    }
    const fresh = this.rc.allocate();
    this.ids.set(name, fresh);
    this.values[fresh] = name;
    this.encodedNames[fresh] = undefined; // kept dense alongside values (a sparse array is a slow dictionary)
    this.memos[fresh] = undefined;
    return fresh;
  }

  /** One more reference to an id someone already holds (a table copying another's entry). */
  retain(id: number): void {
    this.rc.retain(id);
  }

  release(id: number): void {
    if (!this.rc.release(id)) return;
    this.ids.delete(this.values[id]!);
    this.values[id] = '';
    this.encodedNames[id] = undefined;
    this.memos[id] = undefined;
  }

  memo(id: number): unknown {
    return this.memos[id];
  }

  /** Keep `value` with the name until it is no longer held by anyone. */
  setMemo(id: number, value: unknown): void {
    this.memos[id] = value;
  }

  value(id: number): string {
    return this.values[id]!;
  }

  /** The name's gossip encoding (every push/pull lists every name: encoded once, not each time). */
  encoded(id: number): Uint8Array {
    return (this.encodedNames[id] ??= encodeGossipString(this.values[id]!));
  }

  get size(): number {
    return this.rc.live;
  }

  get bound(): number {
    return this.rc.bound;
  }
}

export interface InternedAddr {
  addr: Address;
  /** The ip as 4 bytes (IPv4) or 16 (IPv6), for re-broadcasts without parsing the string again. */
  ipBytes: Uint8Array;
  /** The port, and an IPv4 address as one number (-1 for IPv6): the push/pull merge compares
   *  thousands of addresses with these, without reaching into `addr` and `ipBytes`. */
  port: number;
  v4: number;
}

/** Four bytes as one unsigned number; -1 for any other length. */
export function v4Number(ip: Uint8Array): number {
  return ip.length === 4 ? ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0 : -1;
}

/** Addresses (ip and port): found by the ip string the caller already has, then by port. */
export class AddrInterner {
  /** ip → id, or ids when several ports share an ip (test rigs). */
  private readonly byIp = new Map<string, number | number[]>();
  private values: (InternedAddr | undefined)[] = [];
  private readonly rc = new RefCounts();

  find(addr: Address): number {
    const v = this.byIp.get(addr.ip);
    if (v === undefined) return -1;
    if (typeof v === 'number') return this.values[v]!.addr.port === addr.port ? v : -1;
    for (const id of v) if (this.values[id]!.addr.port === addr.port) return id;
    return -1;
  }

  /** `ipBytes`: the ip as it arrived on the wire, when the caller has it (saves a parse). */
  acquire(addr: Address, ipBytes?: Uint8Array): number {
    const id = this.find(addr);
    if (id >= 0) {
      this.rc.retain(id);
      return id;
    }
    const fresh = this.rc.allocate();
    const bytes = ipBytes !== undefined ? ipBytes.slice() : ipToBytes(addr.ip);
    const value: InternedAddr = { addr: Object.freeze({ ip: addr.ip, port: addr.port }), ipBytes: bytes, port: addr.port, v4: v4Number(bytes) };
    this.values[fresh] = value;
    const v = this.byIp.get(addr.ip);
    if (v === undefined) this.byIp.set(addr.ip, fresh);
    else if (typeof v === 'number') this.byIp.set(addr.ip, [v, fresh]);
    else v.push(fresh);
    return fresh;
  }

  /** One more reference to an id someone already holds (a table copying another's entry). */
  retain(id: number): void {
    this.rc.retain(id);
  }

  release(id: number): void {
    if (!this.rc.release(id)) return;
    const ip = this.values[id]!.addr.ip;
    this.values[id] = undefined;
    const v = this.byIp.get(ip);
    if (typeof v === 'number') {
      this.byIp.delete(ip);
    } else if (v !== undefined) {
      const rest = v.filter((x) => x !== id);
      this.byIp.set(ip, rest.length === 1 ? rest[0]! : rest);
    }
  }

  value(id: number): Address {
    return this.values[id]!.addr;
  }

  ipBytes(id: number): Uint8Array {
    return this.values[id]!.ipBytes;
  }

  /** All that is kept for `id`: one object for as long as the id is held (compare by identity). */
  entry(id: number): Readonly<InternedAddr> {
    return this.values[id]!;
  }

  /** Whether the address `id` is exactly this ip (as bytes) and port. */
  is(id: number, ip: Uint8Array, port: number): boolean {
    const v = this.values[id]!;
    if (v.port !== port) return false;
    if (v.v4 >= 0) return v.v4 === v4Number(ip);
    const known = v.ipBytes;
    if (known.length !== ip.length) return false;
    for (let i = 0; i < ip.length; i++) if (known[i] !== ip[i]) return false;
    return true;
  }

  get size(): number {
    return this.rc.live;
  }

  get bound(): number {
    return this.rc.bound;
  }
}

/** FNV-1a over the bytes: the meta interner's first key. */
function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return (h >>> 0) + b.length * 0x1_0000_0000; // the length too: exact in a double up to 2^21
}

function bytesEqual(a: Uint8Array | readonly number[], b: Uint8Array | readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Meta (Serf's encoded tags). A table keeps its own copy of a node's meta, never the decoded
 * view (a view into a whole datagram or push/pull buffer would keep that buffer alive): the copy
 * is made once per distinct value in the process.
 */
export class MetaInterner {
  /** hash → id, or ids on a collision. */
  private readonly byHash = new Map<number, number | number[]>();
  private values: (Uint8Array | undefined)[] = [];
  private hashes: number[] = [];
  private readonly rc = new RefCounts();

  acquire(meta: Uint8Array): number {
    const h = hashBytes(meta);
    const v = this.byHash.get(h);
    if (v !== undefined) {
      for (const id of typeof v === 'number' ? [v] : v) {
        if (bytesEqual(this.values[id]!, meta)) {
          this.rc.retain(id);
          return id;
        }
      }
    }
    const fresh = this.rc.allocate();
    this.values[fresh] = meta.slice();
    this.hashes[fresh] = h;
    if (v === undefined) this.byHash.set(h, fresh);
    else if (typeof v === 'number') this.byHash.set(h, [v, fresh]);
    else v.push(fresh);
    return fresh;
  }

  /** One more reference to an id someone already holds (a table copying another's entry). */
  retain(id: number): void {
    this.rc.retain(id);
  }

  release(id: number): void {
    if (!this.rc.release(id)) return;
    const h = this.hashes[id]!;
    this.values[id] = undefined;
    const v = this.byHash.get(h);
    if (typeof v === 'number') {
      this.byHash.delete(h);
    } else if (v !== undefined) {
      const rest = v.filter((x) => x !== id);
      this.byHash.set(h, rest.length === 1 ? rest[0]! : rest);
    }
  }

  value(id: number): Uint8Array {
    return this.values[id]!;
  }

  get size(): number {
    return this.rc.live;
  }
}

/** Protocol-version tuples: six bytes each, nearly always the same one across a cluster. */
export class VsnInterner {
  private readonly ids = new Map<number, number>();
  private values: (Vsn | undefined)[] = [];
  private keys: number[] = [];
  private readonly rc = new RefCounts();

  acquire(v: readonly number[]): number {
    let key = 0;
    for (let i = 0; i < 6; i++) key = key * 256 + ((v[i] ?? 0) & 0xff); // 6 bytes: exact in a double
    const id = this.ids.get(key);
    if (id !== undefined) {
      this.rc.retain(id);
      return id;
    }
    const fresh = this.rc.allocate();
    this.ids.set(key, fresh);
    this.keys[fresh] = key;
    this.values[fresh] = Object.freeze([v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0, v[4] ?? 0, v[5] ?? 0] as const);
    return fresh;
  }

  /** One more reference to an id someone already holds (a table copying another's entry). */
  retain(id: number): void {
    this.rc.retain(id);
  }

  release(id: number): void {
    if (!this.rc.release(id)) return;
    this.ids.delete(this.keys[id]!);
    this.values[id] = undefined;
  }

  value(id: number): Vsn {
    return this.values[id]!;
  }

  get size(): number {
    return this.rc.live;
  }
}

/** The interners of one process (or one simulated network: tests may make their own). */
export class Interners {
  readonly names = new NameInterner();
  readonly addrs = new AddrInterner();
  readonly metas = new MetaInterner();
  readonly vsns = new VsnInterner();
  /**
   * Keep each member's encoded push/pull state with its name (NodeTable.writeStates) and copy it
   * while it is unchanged. Worth it where the same states are encoded over and over — a simulator
   * of thousands of tables; a real agent encodes its table once a push/pull interval and keeps the
   * ~200 bytes per member instead (off by default).
   */
  cacheEncodings = false;
}

/** The process's interners, what every NodeTable uses unless handed its own. */
export const processInterners = new Interners();
