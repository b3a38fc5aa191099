// msgpack compatible with hashicorp/go-msgpack 0.5.5 as Serf configures it (protocol doc 1.1–1.3).
// Two encoders: gossip (old spec: strings *and* bytes use the str family, never d9/bin) and RPC
// (new spec: d9 for strings, bin for bytes). One liberal decoder that accepts either.
// Encoding is exact so captured Go packets re-encode byte for byte: struct maps with keys in byte
// order, integers in the smallest encoding of their value, non-integers always as float64.

import { WireError } from './errors.ts';
import { MAX_MSGPACK_DEPTH, MAX_STREAM_BYTES } from './limits.ts';

/** Forces float64 (`cb`) encoding of a number that happens to be integral (e.g. a coordinate 0). */
export class F64 {
  constructor(readonly value: number) {}
}

export type MsgMap = { [key: string]: MsgValue | undefined };
/** Encoder input / decoder output. Map values that are `undefined` are omitted when encoding
 *  (Go `omitempty`); decoded maps never contain `undefined`. */
export type MsgValue = null | boolean | number | bigint | string | Uint8Array | F64 | MsgValue[] | MsgMap;

type Spec = 'gossip' | 'rpc';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8');

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = BigInt(Number.MIN_SAFE_INTEGER);

/** Growable output buffer reused across encode calls (the encoder never re-enters itself). */
class Writer {
  buf = new Uint8Array(4096);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  u8u8(a: number, b: number): void {
    this.ensure(2);
    this.buf[this.pos++] = a;
    this.buf[this.pos++] = b;
  }

  u8u16(a: number, v: number): void {
    this.ensure(3);
    this.buf[this.pos++] = a;
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u8u32(a: number, v: number): void {
    this.ensure(5);
    this.buf[this.pos++] = a;
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    if (n <= 16) {
      // TypedArray#set costs more than the copy itself for the few bytes of a key or an address.
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) buf[p++] = b[i]!;
    } else {
      this.buf.set(b, this.pos);
    }
    this.pos += n;
  }

  /** Copy of what was written since `start`, leaving the scratch buffer for the next call. */
  take(start: number): Uint8Array {
    const out = new Uint8Array(this.pos - start);
    out.set(this.buf.subarray(start, this.pos));
    return out;
  }
}

const writer = new Writer();

/** UTF-8 byte length without encoding (lone surrogates count 3, as TextEncoder writes U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function writeStrHeader(w: Writer, len: number, spec: Spec): void {
  if (len < 32) w.u8(0xa0 | len);
  else if (len < 256 && spec === 'rpc') w.u8u8(0xd9, len);
  else if (len < 65536) w.u8u16(0xda, len);
  else w.u8u32(0xdb, len);
}

function writeString(w: Writer, s: string, spec: Spec): void {
  const len = utf8Length(s);
  writeStrHeader(w, len, spec);
  w.ensure(len);
  if (len === s.length) {
    // ASCII fast path: one byte per UTF-16 unit.
    const buf = w.buf;
    let p = w.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    w.pos = p;
  } else {
    w.pos += textEncoder.encodeInto(s, w.buf.subarray(w.pos, w.pos + len)).written;
  }
}

function writeBytes(w: Writer, b: Uint8Array, spec: Spec): void {
  if (spec === 'gossip') writeStrHeader(w, b.length, spec);
  else if (b.length < 256) w.u8u8(0xc4, b.length);
  else if (b.length < 65536) w.u8u16(0xc5, b.length);
  else w.u8u32(0xc6, b.length);
  w.bytes(b);
}

function writeUint(w: Writer, v: number): void {
  if (v < 128) w.u8(v);
  else if (v < 256) w.u8u8(0xcc, v);
  else if (v < 65536) w.u8u16(0xcd, v);
  else if (v < 4294967296) w.u8u32(0xce, v);
  else writeBigUint(w, BigInt(v));
}

function writeBigUint(w: Writer, v: bigint): void {
  w.ensure(9);
  w.buf[w.pos++] = 0xcf;
  w.view.setBigUint64(w.pos, v);
  w.pos += 8;
}

function writeNegInt(w: Writer, v: number): void {
  if (v >= -32) w.u8(v & 0xff);
  else if (v >= -128) w.u8u8(0xd0, v & 0xff);
  else if (v >= -32768) w.u8u16(0xd1, v & 0xffff);
  else if (v >= -2147483648) w.u8u32(0xd2, v >>> 0);
  else writeBigNegInt(w, BigInt(v));
}

function writeBigNegInt(w: Writer, v: bigint): void {
  w.ensure(9);
  w.buf[w.pos++] = 0xd3;
  w.view.setBigInt64(w.pos, v);
  w.pos += 8;
}

function writeFloat(w: Writer, v: number): void {
  w.ensure(9);
  w.buf[w.pos++] = 0xcb;
  w.view.setFloat64(w.pos, v);
  w.pos += 8;
}

function writeBigInt(w: Writer, v: bigint): void {
  if (v > U64_MAX || v < I64_MIN) {
    throw new WireError('ERR_WIRE_BAD_VALUE', `integer ${v} does not fit 64 bits`);
  }
  if (v >= 0n) {
    if (v <= 0xffffffffn) writeUint(w, Number(v));
    else writeBigUint(w, v);
  } else if (v >= -2147483648n) writeNegInt(w, Number(v));
  else writeBigNegInt(w, v);
}

/** Go emits struct fields in byte order of their names; UTF-16 order equals it except for
 *  astral characters, which a comparator on code points handles. */
function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function needsCodePointSort(keys: string[]): boolean {
  for (const k of keys) {
    for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) >= 0xd800) return true;
  }
  return false;
}

// Encoded map keys (header + bytes), cached per spec: the same few dozen struct keys are written
// millions of times in a simulation. Bounded so arbitrary tag keys cannot grow it forever.
const KEY_CACHE_MAX = 4096;
const keyCache: Record<Spec, Map<string, Uint8Array>> = { gossip: new Map(), rpc: new Map() };

function writeKey(w: Writer, k: string, spec: Spec): void {
  const cache = keyCache[spec];
  const enc = cache.get(k);
  if (enc === undefined) {
    const start = w.pos;
    writeString(w, k, spec);
    if (cache.size < KEY_CACHE_MAX) cache.set(k, w.buf.slice(start, w.pos));
    return;
  }
  w.bytes(enc);
}

function writeValue(w: Writer, v: MsgValue, spec: Spec, depth: number): void {
  if (depth > MAX_MSGPACK_DEPTH) {
    throw new WireError('ERR_WIRE_NESTING', `msgpack value nested deeper than ${MAX_MSGPACK_DEPTH}`);
  }
  switch (typeof v) {
    case 'number':
      if (Number.isSafeInteger(v)) {
        if (v >= 0) writeUint(w, v);
        else writeNegInt(w, v);
      } else if (Number.isInteger(v) && v < 18446744073709551616 && v >= -9223372036854775808) {
        writeBigInt(w, BigInt(v));
      } else writeFloat(w, v);
      return;
    case 'string':
      writeString(w, v, spec);
      return;
    case 'boolean':
      w.u8(v ? 0xc3 : 0xc2);
      return;
    case 'bigint':
      writeBigInt(w, v);
      return;
    case 'object':
      break;
    default:
      throw new WireError('ERR_WIRE_TYPE', `cannot encode ${typeof v} as msgpack`);
  }
  if (v === null) {
    w.u8(0xc0);
  } else if (v instanceof Uint8Array) {
    writeBytes(w, v, spec);
  } else if (v instanceof F64) {
    writeFloat(w, v.value);
  } else if (Array.isArray(v)) {
    const n = v.length;
    if (n < 16) w.u8(0x90 | n);
    else if (n < 65536) w.u8u16(0xdc, n);
    else w.u8u32(0xdd, n);
    for (let i = 0; i < n; i++) writeValue(w, v[i] as MsgValue, spec, depth + 1);
  } else {
    const keys: string[] = [];
    for (const k in v) if (v[k] !== undefined) keys.push(k);
    if (needsCodePointSort(keys)) keys.sort(compareKeys);
    else keys.sort();
    const n = keys.length;
    if (n < 16) w.u8(0x80 | n);
    else if (n < 65536) w.u8u16(0xde, n);
    else w.u8u32(0xdf, n);
    for (const k of keys) {
      writeKey(w, k, spec);
      writeValue(w, v[k] as MsgValue, spec, depth + 1);
    }
  }
}

function encodeWith(v: MsgValue, spec: Spec): Uint8Array {
  const w = writer;
  w.pos = 0;
  writeValue(w, v, spec, 0);
  return w.take(0);
}

/** Gossip (memberlist/Serf) encoding: old-spec strings, `[]byte` as str family. */
export function encodeGossip(v: MsgValue): Uint8Array {
  return encodeWith(v, 'gossip');
}

/** Agent RPC encoding: new-spec strings (d9), `[]byte` as bin (c4–c6). */
export function encodeRpc(v: MsgValue): Uint8Array {
  return encodeWith(v, 'rpc');
}

/** Encode `prefix` bytes followed by the gossip encoding of `v` into one buffer (the message
 *  type byte + body shape every memberlist message has), without an intermediate copy. */
export function encodeGossipAfter(prefix: ArrayLike<number>, v: MsgValue): Uint8Array {
  const w = writer;
  w.pos = 0;
  w.ensure(prefix.length);
  for (let i = 0; i < prefix.length; i++) w.buf[w.pos++] = prefix[i] ?? 0;
  writeValue(w, v, 'gossip', 0);
  return w.take(0);
}

/**
 * The shared gossip writer, piece by piece, for the one fixed-shape struct that travels by the
 * thousand: a push/pull's node states (messages.ts writes them without building a map per node;
 * the bytes are what encodeGossip gives for the same map). Not re-entrant: begin, put, take.
 */
export const gossipParts = {
  begin(prefix: ArrayLike<number>): void {
    const w = writer;
    w.pos = 0;
    w.ensure(prefix.length);
    for (let i = 0; i < prefix.length; i++) w.buf[w.pos++] = prefix[i] ?? 0;
  },
  value(v: MsgValue): void {
    writeValue(writer, v, 'gossip', 0);
  },
  byte(b: number): void {
    writer.u8(b);
  },
  /** Bytes already encoded (a key, a header): copied as they are. */
  raw(b: Uint8Array): void {
    writer.bytes(b);
  },
  uint(v: number): void {
    if (Number.isSafeInteger(v) && v >= 0) writeUint(writer, v);
    else writeValue(writer, v, 'gossip', 0);
  },
  str(s: string): void {
    writeString(writer, s, 'gossip');
  },
  bytes(b: Uint8Array): void {
    writeBytes(writer, b, 'gossip');
  },
  /** A short byte string given as numbers (a Vsn tuple), as bytes() would write its Uint8Array. */
  byteList(v: readonly number[]): void {
    const w = writer;
    writeStrHeader(w, v.length, 'gossip');
    w.ensure(v.length);
    for (let i = 0; i < v.length; i++) w.buf[w.pos++] = v[i]! & 0xff;
  },
  take(): Uint8Array {
    return writer.take(0);
  },
  /** Where the next byte goes (for since()). */
  mark(): number {
    return writer.pos;
  },
  /** A copy of what was written since `mark`. */
  since(mark: number): Uint8Array {
    return writer.buf.slice(mark, writer.pos);
  },
};

/** encodeGossip(s) for a string, without touching the shared writer: safe to call while
 *  gossipParts is in the middle of a message (a name encoded on first use, intern.ts). */
export function encodeGossipString(s: string): Uint8Array {
  const body = textEncoder.encode(s);
  const len = body.length;
  const head = len < 32 ? [0xa0 | len] : len < 65536 ? [0xda, len >> 8, len & 0xff] : [0xdb, len >>> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** UTF-8 decode of buf[start, end) as the decoder does it (exported for messages.ts's fast path). */
export function decodeText(buf: Uint8Array, start: number, end: number): string {
  return bytesToString(buf, start, end);
}

// ---------------------------------------------------------------------------------------------
// Decoder

export interface DecodeOptions {
  /** 'bytes' (gossip): str-family values become Uint8Array. 'utf8' (RPC): str → string,
   *  bin → Uint8Array. Map keys are always JS strings. */
  strings: 'bytes' | 'utf8';
  /** Deepest container nesting accepted (default MAX_MSGPACK_DEPTH). */
  maxDepth?: number;
  /** Most entries one array or map may declare (default 1 << 20). */
  maxItems?: number;
  /** Longest str/bin a value may declare (default MAX_STREAM_BYTES). */
  maxBytes?: number;
}

const DEFAULT_MAX_ITEMS = 1 << 20;

/** Objects with an empty prototype chain (no Object.prototype, so no inherited keys and no
 *  `__proto__` setter) that V8 still keeps in fast mode: Object.create(null) objects start as
 *  dictionaries, and building one per decoded struct was the top cost of message decoding. */
function FieldMap(this: object): void {}
FieldMap.prototype = Object.create(null) as object;
const FieldMapCtor = FieldMap as unknown as new () => MsgMap;

function truncated(): WireError {
  return new WireError('ERR_WIRE_TRUNCATED', 'msgpack input ends early');
}

class Reader {
  readonly view: DataView;
  pos: number;
  readonly utf8: boolean;
  /** Build maps as FieldMap (fast) instead of null-prototype objects (the public contract). */
  fastMaps = false;
  readonly maxDepth: number;
  readonly maxItems: number;
  readonly maxBytes: number;

  constructor(
    readonly buf: Uint8Array,
    offset: number,
    opts: DecodeOptions,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = offset;
    this.utf8 = opts.strings === 'utf8';
    this.maxDepth = opts.maxDepth ?? MAX_MSGPACK_DEPTH;
    this.maxItems = opts.maxItems ?? DEFAULT_MAX_ITEMS;
    this.maxBytes = opts.maxBytes ?? MAX_STREAM_BYTES;
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw truncated();
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw truncated();
    return this.buf[this.pos++] as number;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  raw(len: number): Uint8Array {
    if (len > this.maxBytes) {
      throw new WireError('ERR_WIRE_TOO_LARGE', `msgpack str/bin of ${len} bytes exceeds ${this.maxBytes}`);
    }
    this.need(len);
    const out = this.buf.slice(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  text(len: number): string {
    if (len > this.maxBytes) {
      throw new WireError('ERR_WIRE_TOO_LARGE', `msgpack str of ${len} bytes exceeds ${this.maxBytes}`);
    }
    this.need(len);
    const start = this.pos;
    this.pos += len;
    return bytesToString(this.buf, start, start + len);
  }

  count(n: number, perItem: number): void {
    if (n > this.maxItems) {
      throw new WireError('ERR_WIRE_TOO_LARGE', `msgpack container of ${n} entries exceeds ${this.maxItems}`);
    }
    // Every entry takes at least one byte per element: refuse to allocate for a declaration the
    // remaining input cannot possibly hold (a 5-byte array header must not allocate 4 G slots).
    if (this.pos + n * perItem > this.buf.length) throw truncated();
  }

  value(depth: number): MsgValue {
    const b = this.u8();
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 256;
    if (b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b <= 0xbf) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.raw(this.u8());
      case 0xc5:
        return this.raw(this.u16());
      case 0xc6:
        return this.raw(this.u32());
      case 0xca: {
        this.need(4);
        const f = v.getFloat32(this.pos);
        this.pos += 4;
        return f;
      }
      case 0xcb: {
        this.need(8);
        const f = v.getFloat64(this.pos);
        this.pos += 8;
        return f;
      }
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf: {
        this.need(8);
        const x = v.getBigUint64(this.pos);
        this.pos += 8;
        return x <= MAX_SAFE_BIG ? Number(x) : x;
      }
      case 0xd0: {
        this.need(1);
        return v.getInt8(this.pos++);
      }
      case 0xd1: {
        this.need(2);
        const x = v.getInt16(this.pos);
        this.pos += 2;
        return x;
      }
      case 0xd2: {
        this.need(4);
        const x = v.getInt32(this.pos);
        this.pos += 4;
        return x;
      }
      case 0xd3: {
        this.need(8);
        const x = v.getBigInt64(this.pos);
        this.pos += 8;
        return x >= MIN_SAFE_BIG && x <= MAX_SAFE_BIG ? Number(x) : x;
      }
      case 0xd9:
        return this.str(this.u8());
      case 0xda:
        return this.str(this.u16());
      case 0xdb:
        return this.str(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      default:
        // c1 (never used), c7–c9 / d4–d8 (ext: Serf never sends them).
        throw new WireError('ERR_WIRE_TYPE', `unsupported msgpack type byte 0x${b.toString(16)}`);
    }
  }

  /** Advance past one value without building it (stream framing only needs where it ends). */
  skip(depth: number): void {
    const b = this.u8();
    if (b < 0x80 || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return;
    if (b <= 0x8f) return this.skipItems(b & 0x0f, 2, depth);
    if (b <= 0x9f) return this.skipItems(b & 0x0f, 1, depth);
    if (b <= 0xbf) return this.skipRaw(b & 0x1f);
    switch (b) {
      case 0xc4:
      case 0xd9:
        return this.skipRaw(this.u8());
      case 0xc5:
      case 0xda:
        return this.skipRaw(this.u16());
      case 0xc6:
      case 0xdb:
        return this.skipRaw(this.u32());
      case 0xcc:
      case 0xd0:
        return this.skipFixed(1);
      case 0xcd:
      case 0xd1:
        return this.skipFixed(2);
      case 0xca:
      case 0xce:
      case 0xd2:
        return this.skipFixed(4);
      case 0xcb:
      case 0xcf:
      case 0xd3:
        return this.skipFixed(8);
      case 0xdc:
        return this.skipItems(this.u16(), 1, depth);
      case 0xdd:
        return this.skipItems(this.u32(), 1, depth);
      case 0xde:
        return this.skipItems(this.u16(), 2, depth);
      case 0xdf:
        return this.skipItems(this.u32(), 2, depth);
      default:
        throw new WireError('ERR_WIRE_TYPE', `unsupported msgpack type byte 0x${b.toString(16)}`);
    }
  }

  skipFixed(n: number): void {
    this.need(n);
    this.pos += n;
  }

  skipRaw(len: number): void {
    if (len > this.maxBytes) {
      throw new WireError('ERR_WIRE_TOO_LARGE', `msgpack str/bin of ${len} bytes exceeds ${this.maxBytes}`);
    }
    this.need(len);
    this.pos += len;
  }

  /** `n` entries of `width` values each (2 for maps: key and value). */
  skipItems(n: number, width: number, depth: number): void {
    this.enter(depth);
    this.count(n, width);
    const values = n * width;
    for (let i = 0; i < values; i++) this.skip(depth + 1);
  }

  str(len: number): MsgValue {
    return this.utf8 ? this.text(len) : this.raw(len);
  }

  enter(depth: number): void {
    if (depth >= this.maxDepth) {
      throw new WireError('ERR_WIRE_NESTING', `msgpack nested deeper than ${this.maxDepth}`);
    }
  }

  array(n: number, depth: number): MsgValue[] {
    this.enter(depth);
    this.count(n, 1);
    const out = new Array<MsgValue>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n: number, depth: number): MsgMap {
    this.enter(depth);
    this.count(n, 2);
    const out = (this.fastMaps ? new FieldMapCtor() : Object.create(null)) as MsgMap;
    for (let i = 0; i < n; i++) {
      const k = this.key();
      out[k] = this.value(depth + 1);
    }
    return out;
  }

  key(): string {
    const b = this.u8();
    let len: number;
    if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
    else if (b === 0xd9 || b === 0xc4) len = this.u8();
    else if (b === 0xda || b === 0xc5) len = this.u16();
    else if (b === 0xdb || b === 0xc6) len = this.u32();
    else {
      // Non-string keys do not occur on Serf paths; integers are tolerated as their decimal text.
      this.pos--;
      const k = this.value(0);
      if (typeof k === 'number' || typeof k === 'bigint') return String(k);
      throw new WireError('ERR_WIRE_TYPE', 'msgpack map key is not a string');
    }
    return this.text(len);
  }
}

/** UTF-8 decode with an ASCII fast path for the short keys and names that dominate traffic. */
function bytesToString(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((buf[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      let s = '';
      for (let i = start; i < end; i++) s += String.fromCharCode(buf[i] as number);
      return s;
    }
  }
  return textDecoder.decode(buf.subarray(start, end));
}

/** Decode exactly one msgpack object that spans the whole buffer. Throws WireError (trailing
 *  bytes → ERR_WIRE_BAD_VALUE). */
export function decodeMsgpack(buf: Uint8Array, opts: DecodeOptions): MsgValue {
  const r = new Reader(buf, 0, opts);
  const v = decodeGuarded(r);
  if (r.pos !== buf.length) {
    throw new WireError('ERR_WIRE_BAD_VALUE', `${buf.length - r.pos} trailing bytes after msgpack object`);
  }
  return v;
}

/** Decode one msgpack object starting at `offset`. Returns undefined when the buffer ends before
 *  the object does (feed more bytes and retry); throws WireError on malformed or oversized input. */
export function decodeMsgpackPrefix(
  buf: Uint8Array,
  offset: number,
  opts: DecodeOptions,
): { value: MsgValue; end: number } | undefined {
  const r = new Reader(buf, offset, opts);
  try {
    const value = decodeGuarded(r);
    return { value, end: r.pos };
  } catch (e) {
    if (e instanceof WireError && e.code === 'ERR_WIRE_TRUNCATED') return undefined;
    throw e;
  }
}

/** decodeMsgpackPrefix for the message decoders: gossip strings, and maps whose prototype is an
 *  empty object rather than null (same keys, no inheritance, faster to build). Throws
 *  ERR_WIRE_TRUNCATED instead of returning undefined: a datagram or frame is already complete. */
export function decodeStructAt(buf: Uint8Array, offset: number): { value: MsgValue; end: number } {
  const r = new Reader(buf, offset, GOSSIP_STRUCT);
  r.fastMaps = true;
  const value = decodeGuarded(r);
  return { value, end: r.pos };
}
const GOSSIP_STRUCT: DecodeOptions = { strings: 'bytes' };

/** Where the msgpack object starting at `offset` ends, without materialising it (no copies of
 *  strings, no objects): the cheap way to frame a stream. Same limits and errors as
 *  decodeMsgpackPrefix; undefined = need more bytes. */
export function skipMsgpackPrefix(buf: Uint8Array, offset: number, opts: DecodeOptions): number | undefined {
  const r = new Reader(buf, offset, opts);
  try {
    r.skip(0);
    return r.pos;
  } catch (e) {
    if (e instanceof WireError) {
      if (e.code === 'ERR_WIRE_TRUNCATED') return undefined;
      throw e;
    }
    throw new WireError('ERR_WIRE_BAD_VALUE', `msgpack skip failed: ${(e as Error).message}`);
  }
}

function decodeGuarded(r: Reader): MsgValue {
  try {
    return r.value(0);
  } catch (e) {
    if (e instanceof WireError) throw e;
    // RangeError from a pathological allocation or a stack overflow: still only WireError out.
    throw new WireError('ERR_WIRE_BAD_VALUE', `msgpack decode failed: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Accessors. Go decodes a missing key or nil into the zero value, so undefined/null do too.

function typeName(v: MsgValue | undefined): string {
  if (v === null) return 'nil';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'array';
  if (v instanceof F64) return 'float';
  return typeof v;
}

function typeError(want: string, v: MsgValue | undefined): WireError {
  return new WireError('ERR_WIRE_TYPE', `expected ${want}, got ${typeName(v)}`);
}

export function asString(v: MsgValue | undefined): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return bytesToString(v, 0, v.length);
  if (v === null || v === undefined) return '';
  throw typeError('string', v);
}

export function asBytes(v: MsgValue | undefined): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return textEncoder.encode(v);
  if (v === null || v === undefined) return null;
  throw typeError('bytes', v);
}

export function asInt(v: MsgValue | undefined): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    throw typeError('integer', v);
  }
  if (typeof v === 'bigint') {
    if (v <= MAX_SAFE_BIG && v >= MIN_SAFE_BIG) return Number(v);
    throw new WireError('ERR_WIRE_BAD_VALUE', `integer ${v} exceeds 2^53`);
  }
  if (v === null || v === undefined) return 0;
  throw typeError('integer', v);
}

export function asUint(v: MsgValue | undefined): number {
  const n = asInt(v);
  if (n < 0) throw new WireError('ERR_WIRE_BAD_VALUE', `expected unsigned integer, got ${n}`);
  return n;
}

export function asBool(v: MsgValue | undefined): boolean {
  if (typeof v === 'boolean') return v;
  if (v === null || v === undefined) return false;
  throw typeError('bool', v);
}

export function asMap(v: MsgValue | undefined): { [key: string]: MsgValue } {
  if (v === null || v === undefined) return Object.create(null) as { [key: string]: MsgValue };
  if (typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof F64) && !Array.isArray(v)) {
    return v as { [key: string]: MsgValue };
  }
  throw typeError('map', v);
}

export function asArray(v: MsgValue | undefined): MsgValue[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined) return [];
  throw typeError('array', v);
}

/** Any number (float or integer); used for Serf coordinates. */
export function asFloat(v: MsgValue | undefined): number {
  if (typeof v === 'number') return v;
  if (v instanceof F64) return v.value;
  if (typeof v === 'bigint') return Number(v);
  if (v === null || v === undefined) return 0;
  throw typeError('number', v);
}
