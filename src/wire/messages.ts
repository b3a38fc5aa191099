// memberlist messages <-> bytes: one type byte, then the Go struct as a msgpack map with the exact
// Go field names (protocol doc 2.3, 3.2). Framing layers (compound, compress, crc, encrypt) live in
// packet.ts / stream.ts; this file only knows single messages.

import { WireError } from './errors.ts';
import { NodeStateCache } from './state-cache.ts';
import {
  asBool,
  asBytes,
  asInt,
  asMap,
  asString,
  asUint,
  decodeStructAt,
  encodeGossip,
  encodeGossipAfter,
  gossipParts,
  decodeText,
  type MsgValue,
} from './msgpack.ts';
import {
  MessageType,
  NodeStateCode,
  type AliveMsg,
  type Message,
  type NodeStateName,
  type PushNodeState,
  type PushPullMsg,
  type Vsn,
} from './types.ts';

const EMPTY = new Uint8Array(0);
const ZERO_VSN: Vsn = Object.freeze([0, 0, 0, 0, 0, 0] as const);

const STATE_NAMES: readonly NodeStateName[] = ['alive', 'suspect', 'dead', 'left'];

/** Vsn travels as a 6-byte raw string. A shorter one (old peers) is zero-padded, longer cut. */
export function vsnToBytes(v: Vsn): Uint8Array {
  return Uint8Array.of(v[0], v[1], v[2], v[3], v[4], v[5]);
}

export function vsnFromBytes(b: Uint8Array | null): Vsn {
  if (b === null) return [0, 0, 0, 0, 0, 0];
  return [b[0] ?? 0, b[1] ?? 0, b[2] ?? 0, b[3] ?? 0, b[4] ?? 0, b[5] ?? 0];
}

/** Go `omitempty`: zero values are left out of the map entirely. */
function omitBytes(b: Uint8Array | undefined): Uint8Array | undefined {
  return b === undefined || b.length === 0 ? undefined : b;
}
function omitNum(n: number | undefined): number | undefined {
  return n === undefined || n === 0 ? undefined : n;
}
function omitStr(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

// A push/pull carries one node-state map per member: at fleet size that is most of the bytes a
// node encodes and decodes (10,000 of them per exchange at N = 10,000). They are written field by
// field with the keys pre-encoded, and read by a decoder that knows their one shape; anything
// else (another key, an unexpected type) goes through the generic path, so the result is always
// what encodeGossip / decodeNodeState would give.
const NODE_STATE_KEYS = ['Addr', 'Incarnation', 'Meta', 'Name', 'Port', 'State', 'Vsn'] as const;
const [K_ADDR, K_INCARNATION, K_META, K_NAME, K_PORT, K_STATE, K_VSN] = NODE_STATE_KEYS.map((k) => encodeGossip(k)) as [
  Uint8Array,
  Uint8Array,
  Uint8Array,
  Uint8Array,
  Uint8Array,
  Uint8Array,
  Uint8Array,
];
const FIXMAP_7 = 0x87;

/**
 * The fields an alive message and a push/pull node state share, in their key order (Addr,
 * Incarnation, Meta, Name or Node, Port, State, Vsn); `state` < 0 leaves State out (an alive has
 * none). `name` as a string or as its gossip encoding.
 */
function putMemberFields(nameKey: Uint8Array, name: string | Uint8Array, addr: Uint8Array, port: number, meta: Uint8Array, incarnation: number, state: number, vsn: Vsn): void {
  const p = gossipParts;
  p.raw(K_ADDR);
  p.bytes(addr);
  p.raw(K_INCARNATION);
  p.uint(incarnation);
  p.raw(K_META);
  p.bytes(meta);
  p.raw(nameKey);
  if (typeof name === 'string') p.str(name);
  else p.raw(name);
  p.raw(K_PORT);
  p.uint(port);
  if (state >= 0) {
    p.raw(K_STATE);
    p.uint(state);
  }
  p.raw(K_VSN);
  putVsn(vsn);
}

function putVsn(v: Vsn): void {
  if (v.length === 6) gossipParts.byteList(v);
  else gossipParts.bytes(vsnToBytes(v));
}

/** The alive message's type byte and map header (6 fields: Addr Incarnation Meta Node Port Vsn). */
const ALIVE_PREFIX = [MessageType.alive, 0x86];
const K_NODE = encodeGossip('Node');

/**
 * How encodePushPullFrom's caller writes its node states: each either from its fields (`name`
 * as a string, or as its gossip encoding, encodeGossipString(name), which a caller listing the
 * same names again and again can keep; `state` is the NodeStateCode), or as bytes an earlier `put` wrote — a caller
 * that lists the same unchanged states push/pull after push/pull keeps them (lastWritten) and
 * copies them instead of encoding them again.
 */
export interface NodeStateWriter {
  put(name: string | Uint8Array, addr: Uint8Array, port: number, meta: Uint8Array, incarnation: number, state: number, vsn: Vsn): void;
  putEncoded(bytes: Uint8Array): void;
  /** A copy of what the last `put` wrote. */
  lastWritten(): Uint8Array;
}

let putsLeft = 0;
let lastPutAt = 0;
const nodeStateWriter: NodeStateWriter = {
  put(name, addr, port, meta, incarnation, state, vsn) {
    if (--putsLeft < 0) throw new WireError('ERR_WIRE_BAD_VALUE', 'push/pull: more node states written than its header counts');
    lastPutAt = gossipParts.mark();
    gossipParts.byte(FIXMAP_7);
    putMemberFields(K_NAME, name, addr, port, meta, incarnation, state, vsn);
  },
  putEncoded(bytes) {
    if (--putsLeft < 0) throw new WireError('ERR_WIRE_BAD_VALUE', 'push/pull: more node states written than its header counts');
    gossipParts.raw(bytes);
  },
  lastWritten() {
    return gossipParts.since(lastPutAt);
  },
};

/**
 * A push/pull message (type byte included) written straight from a node list that is not an
 * array of PushNodeState — the member table, which lists N nodes without an object for each:
 * `writeNodes` writes exactly `count` node states. The bytes are encodeMessage's for the same
 * message.
 */
export function encodePushPullFrom(join: boolean, count: number, userState: Uint8Array, writeNodes: (w: NodeStateWriter) => void): Uint8Array {
  const p = gossipParts;
  p.begin([MessageType.pushPull]);
  p.value({ Join: join, Nodes: count, UserStateLen: userState.length });
  putsLeft = count;
  writeNodes(nodeStateWriter);
  if (putsLeft !== 0) throw new WireError('ERR_WIRE_BAD_VALUE', `push/pull: ${count - putsLeft} node states written, its header counts ${count}`);
  p.raw(userState);
  return p.take();
}

/** Header + node states + raw user state, as one buffer (type byte included). */
function encodePushPull(m: PushPullMsg): Uint8Array {
  return encodePushPullFrom(m.join, m.nodes.length, m.userState, (w) => {
    for (const n of m.nodes) w.put(n.name, n.addr, n.port, n.meta, n.incarnation, NodeStateCode[n.state], n.vsn);
  });
}

/** Encode one message: type byte + body. */
export function encodeMessage(msg: Message): Uint8Array {
  switch (msg.type) {
    case 'ping':
      return encodeGossipAfter([MessageType.ping], {
        Node: msg.node,
        SeqNo: msg.seqNo,
        SourceAddr: omitBytes(msg.sourceAddr),
        SourceNode: omitStr(msg.sourceNode),
        SourcePort: omitNum(msg.sourcePort),
      });
    case 'indirectPing':
      return encodeGossipAfter([MessageType.indirectPing], {
        Nack: msg.nack,
        Node: msg.node,
        Port: msg.port,
        SeqNo: msg.seqNo,
        SourceAddr: omitBytes(msg.sourceAddr),
        SourceNode: omitStr(msg.sourceNode),
        SourcePort: omitNum(msg.sourcePort),
        Target: msg.target,
      });
    case 'ack':
      return encodeGossipAfter([MessageType.ack], { Payload: msg.payload, SeqNo: msg.seqNo });
    case 'nack':
      return encodeGossipAfter([MessageType.nack], { SeqNo: msg.seqNo });
    case 'suspect':
      return encodeGossipAfter([MessageType.suspect], { From: msg.from, Incarnation: msg.incarnation, Node: msg.node });
    case 'dead':
      return encodeGossipAfter([MessageType.dead], { From: msg.from, Incarnation: msg.incarnation, Node: msg.node });
    case 'alive': {
      // The most frequent news (every join, tag change and refutation, re-broadcast by every
      // node that takes it): written field by field, as a push/pull's node states are.
      gossipParts.begin(ALIVE_PREFIX);
      putMemberFields(K_NODE, msg.node, msg.addr, msg.port, msg.meta, msg.incarnation, -1, msg.vsn);
      return gossipParts.take();
    }
    case 'pushPull':
      return encodePushPull(msg);
    case 'user': {
      const out = new Uint8Array(1 + msg.payload.length);
      out[0] = MessageType.user;
      out.set(msg.payload, 1);
      return out;
    }
    case 'err':
      return encodeGossipAfter([MessageType.err], { Error: msg.error });
  }
}

/** One msgpack object at `offset`; the whole message must already be in `buf`. */
export function readObject(buf: Uint8Array, offset: number): { value: MsgValue; end: number } {
  return decodeStructAt(buf, offset);
}

function optBytes(v: MsgValue | undefined): Uint8Array | undefined {
  const b = asBytes(v);
  return b === null || b.length === 0 ? undefined : b;
}
// omitempty fields: a present zero value means the same as an absent one (Go cannot tell them
// apart either), so both decode to undefined and re-encode identically.
function optNum(v: MsgValue | undefined): number | undefined {
  const n = v === undefined || v === null ? 0 : asUint(v);
  return n === 0 ? undefined : n;
}
function optStr(v: MsgValue | undefined): string | undefined {
  const s = v === undefined || v === null ? '' : asString(v);
  return s === '' ? undefined : s;
}

export function decodeNodeState(v: MsgValue): PushNodeState {
  const m = asMap(v);
  const code = asInt(m.State);
  const state = STATE_NAMES[code];
  if (state === undefined) throw new WireError('ERR_WIRE_BAD_VALUE', `unknown node state ${code}`);
  return {
    name: asString(m.Name),
    addr: asBytes(m.Addr) ?? EMPTY,
    port: asUint(m.Port),
    meta: asBytes(m.Meta) ?? EMPTY,
    incarnation: asUint(m.Incarnation),
    state,
    vsn: vsnFromBytes(asBytes(m.Vsn)),
  };
}

// ---- the node-state fast path (see NODE_STATE_KEYS) ----

// Decoded node states by their bytes (src/wire/state-cache.ts): off unless the simulator turns
// it on.
let stateCache: NodeStateCache<PushNodeState> | undefined;
/** The same for alive messages (the bytes after the type byte). */
let aliveCache: NodeStateCache<AliveMsg> | undefined;
/** Encoded broadcasts by their bytes (shareEncoded). */
let encodedCache: NodeStateCache<{ bytes: Uint8Array }> | undefined;

/**
 * Turn the cache of decoded node states on (`maxEntries` > 0) or off (0, the default: a real
 * agent decodes each member's state once a push/pull interval and would hold ~500 bytes per
 * member for it). The simulator turns it on: thousands of nodes decode the same states.
 * Called again with the same size, it empties the cache it has.
 */
export function cacheNodeStates(maxEntries: number): void {
  const max = Math.max(0, Math.floor(maxEntries));
  // Same size: emptied in place, not ~10 MB of arenas allocated again (each simulated cluster
  // and the scale bench's memory reading ask for it).
  if (max !== 0 && stateCache?.maxStates === max && aliveCache !== undefined) {
    stateCache.clear();
    aliveCache.clear();
    encodedCache?.clear();
    return;
  }
  stateCache = max === 0 ? undefined : new NodeStateCache<PushNodeState>(max);
  aliveCache = max === 0 ? undefined : new NodeStateCache<AliveMsg>(Math.max(16, max >> 2));
  encodedCache = max === 0 ? undefined : new NodeStateCache<{ bytes: Uint8Array }>(Math.max(16, max >> 2));
}

/**
 * `bytes` (an encoded alive, suspect or dead), or bytes equal to it that an earlier call
 * returned, while the simulator's caches are on (cacheNodeStates): in a join storm every node
 * queues an alive for every other node, the same bytes on every node — N² queued copies
 * otherwise. Callers must not change the bytes they get (queued broadcasts are only ever copied
 * into packets). Off (a real agent): `bytes` itself.
 */
export function shareEncoded(bytes: Uint8Array): Uint8Array {
  const cache = encodedCache;
  if (cache === undefined) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const key = cache.key(bytes, view, 0);
  // A node-state message is a type byte and one msgpack object: none is a prefix of another.
  const hit = cache.find(bytes, view, 0, key);
  if (hit !== undefined && cache.end === bytes.length) return hit.bytes;
  cache.add(bytes, 0, bytes.length, key, { bytes });
  return bytes;
}

/** Where the node state at `start` ends, if it has the usual shape (a fixmap of fixstr keys and
 *  plain values) and the buffer holds all of it; -1 otherwise. Reads nothing into objects. */
export function nodeStateEnd(buf: Uint8Array, start: number): number {
  if (start >= buf.length) return -1;
  const head = buf[start]!;
  if (head < 0x80 || head > 0x8f) return -1;
  let at = start + 1;
  for (let f = head & 0x0f; f > 0; f--) {
    if (at >= buf.length) return -1;
    const k = buf[at]!;
    if (k < 0xa0 || k > 0xbf) return -1;
    at += 1 + (k & 0x1f);
    if (readSmallUint(buf, at) >= 0 || rawSpan(buf, at) >= 0) at = rawEnd;
    else return -1;
  }
  return at <= buf.length ? at : -1;
}

function readNodeStateCached(buf: Uint8Array, view: DataView | undefined, start: number): PushNodeState | undefined {
  if (stateCache === undefined || view === undefined) return readNodeStateFast(buf, start);
  const key = stateCache.key(buf, view, start);
  const hit = stateCache.find(buf, view, start, key);
  if (hit !== undefined) {
    fastEnd = stateCache.end;
    return hit;
  }
  const state = readNodeStateFast(buf, start);
  if (state !== undefined) stateCache.add(buf, start, fastEnd, key, state);
  return state;
}

/**
 * The version tuple in buf[from, end) (as vsnFromBytes reads it). Nearly every member of a
 * cluster has the same tuple: the array the last call returned is handed out again when the bytes
 * match, so thousands of decoded states share one (treat decoded tuples as read-only).
 */
function vsnAt(buf: Uint8Array, from: number, end: number): Vsn {
  const v = lastVsn;
  const n = Math.min(end - from, 6);
  for (let i = 0; i < 6; i++) {
    if (v[i] !== (i < n ? buf[from + i]! : 0)) return (lastVsn = vsnFromBytes(buf.subarray(from, from + n)));
  }
  return v;
}
let lastVsn: Vsn = [0, 0, 0, 0, 0, 0];

/** Where the last readNodeStateFast ended (a module slot, not a result object per node). */
let fastEnd = 0;
/** Where the value rawSpan or readSmallUint just read ends. */
let rawEnd = 0;

/** A str- or bin-family value (or nil: empty) at `at`: returns where its bytes start (they end at
 *  rawEnd), or -1 for any other type or a value the buffer does not hold. */
function rawSpan(buf: Uint8Array, at: number): number {
  if (at >= buf.length) return -1;
  const b = buf[at]!;
  let len: number;
  let from: number;
  if (b >= 0xa0 && b <= 0xbf) {
    len = b & 0x1f;
    from = at + 1;
  } else if (b === 0xc0) {
    rawEnd = at + 1;
    return at + 1; // nil: an empty span
  } else if (b === 0xd9 || b === 0xc4) {
    if (at + 2 > buf.length) return -1;
    len = buf[at + 1]!;
    from = at + 2;
  } else if (b === 0xda || b === 0xc5) {
    if (at + 3 > buf.length) return -1;
    len = (buf[at + 1]! << 8) | buf[at + 2]!;
    from = at + 3;
  } else return -1;
  if (from + len > buf.length) return -1;
  rawEnd = from + len;
  return from;
}

/** A non-negative integer below 2^32 (or nil = 0) at `at`; -1 otherwise. Sets rawEnd. */
function readSmallUint(buf: Uint8Array, at: number): number {
  if (at >= buf.length) return -1;
  const b = buf[at]!;
  if (b < 0x80) {
    rawEnd = at + 1;
    return b;
  }
  if (b === 0xc0) {
    rawEnd = at + 1;
    return 0;
  }
  if (b === 0xcc && at + 2 <= buf.length) {
    rawEnd = at + 2;
    return buf[at + 1]!;
  }
  if (b === 0xcd && at + 3 <= buf.length) {
    rawEnd = at + 3;
    return (buf[at + 1]! << 8) | buf[at + 2]!;
  }
  if (b === 0xce && at + 5 <= buf.length) {
    rawEnd = at + 5;
    return ((buf[at + 1]! << 24) >>> 0) + ((buf[at + 2]! << 16) | (buf[at + 3]! << 8) | buf[at + 4]!);
  }
  return -1;
}

/** Whether the fixstr key at buf[at+1, at+1+len) spells `key` (its encoded form, header included). */
function keyIs(buf: Uint8Array, at: number, key: Uint8Array): boolean {
  if (at + key.length > buf.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[at + i] !== key[i]) return false;
  return true;
}

// What readMemberFields read last (module slots: no result object per member).
let fName = '';
let fAddr = EMPTY;
let fPort = 0;
let fMeta = EMPTY;
let fIncarnation = 0;
let fState = 0;
let fVsn: Vsn = ZERO_VSN;

/**
 * The fields of a node state (`nameKey` K_NAME, with State) or of an alive message (K_NODE, no
 * State) in their usual shape — a fixmap of those keys with plain values — into the f* slots.
 * Returns where the map ends, or -1 for anything else (another key, another type, a value the
 * buffer does not hold): the caller then decodes it the generic way, which gives the same result
 * or the right error.
 */
function readMemberFields(buf: Uint8Array, start: number, nameKey: Uint8Array): number {
  if (start >= buf.length) return -1;
  const head = buf[start]!;
  if (head < 0x80 || head > 0x8f) return -1;
  const fields = head & 0x0f;
  let at = start + 1;
  fName = '';
  fAddr = EMPTY;
  fPort = 0;
  fMeta = EMPTY;
  fIncarnation = 0;
  fState = 0;
  fVsn = ZERO_VSN;
  for (let f = 0; f < fields; f++) {
    if (at + 2 >= buf.length) return -1;
    const k = buf[at]!;
    if (k < 0xa0 || k > 0xbf) return -1;
    // Keys by length, then by bytes: Addr/Meta/Name/Node/Port (4), State (5), Vsn (3), Incarnation (11).
    let which: Uint8Array;
    switch (k & 0x1f) {
      case 3:
        which = K_VSN;
        break;
      case 4: {
        const c = buf[at + 1];
        which = c === 0x41 ? K_ADDR : c === 0x4d ? K_META : c !== 0x4e ? K_PORT : buf[at + 2] === 0x61 ? K_NAME : K_NODE;
        break;
      }
      case 5:
        which = K_STATE;
        break;
      case 11:
        which = K_INCARNATION;
        break;
      default:
        return -1;
    }
    if (((which === K_NAME || which === K_NODE) && which !== nameKey) || (which === K_STATE && nameKey !== K_NAME) || !keyIs(buf, at, which)) return -1;
    at += which.length;
    if (which === K_INCARNATION || which === K_PORT || which === K_STATE) {
      const v = readSmallUint(buf, at);
      if (v < 0) return -1;
      if (which === K_INCARNATION) fIncarnation = v;
      else if (which === K_PORT) fPort = v;
      else if (v > 3) return -1;
      else fState = v;
    } else {
      const from = rawSpan(buf, at);
      if (from < 0) return -1;
      const end = rawEnd;
      if (which === nameKey) fName = from === end ? '' : decodeText(buf, from, end);
      else if (which === K_VSN) fVsn = from === end ? ZERO_VSN : vsnAt(buf, from, end);
      else {
        const b = from === end ? EMPTY : buf.slice(from, end);
        if (which === K_ADDR) fAddr = b;
        else fMeta = b;
      }
    }
    at = rawEnd;
  }
  return at;
}

/** One node state in its usual shape, or undefined (see readMemberFields). Sets fastEnd. */
function readNodeStateFast(buf: Uint8Array, start: number): PushNodeState | undefined {
  const end = readMemberFields(buf, start, K_NAME);
  if (end < 0) return undefined;
  fastEnd = end;
  return { name: fName, addr: fAddr, port: fPort, meta: fMeta, incarnation: fIncarnation, state: STATE_NAMES[fState]!, vsn: fVsn };
}

/** Push/pull header fields, validated (negative counts would let a peer desync the stream). */
export function decodePushPullHeader(v: MsgValue): { join: boolean; nodes: number; userStateLen: number } {
  const h = asMap(v);
  const nodes = asInt(h.Nodes);
  const userStateLen = asInt(h.UserStateLen);
  if (nodes < 0 || userStateLen < 0) {
    throw new WireError('ERR_WIRE_BAD_VALUE', `negative push/pull count (Nodes ${nodes}, UserStateLen ${userStateLen})`);
  }
  return { join: asBool(h.Join), nodes, userStateLen };
}

function decodePushPull(buf: Uint8Array): PushPullMsg {
  const head = readObject(buf, 1);
  const h = decodePushPullHeader(head.value);
  let at = head.end;
  const nodes: PushNodeState[] = [];
  const view = stateCache === undefined ? undefined : new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < h.nodes; i++) {
    // Each state needs at least one byte: a huge Nodes count on a short buffer stops here.
    if (at >= buf.length) throw new WireError('ERR_WIRE_TRUNCATED', `push/pull ends after ${i} of ${h.nodes} nodes`);
    const fast = readNodeStateCached(buf, view, at);
    if (fast !== undefined) {
      nodes.push(fast);
      at = fastEnd;
      continue;
    }
    const r = readObject(buf, at);
    nodes.push(decodeNodeState(r.value));
    at = r.end;
  }
  if (at + h.userStateLen > buf.length) {
    throw new WireError('ERR_WIRE_TRUNCATED', `push/pull user state needs ${h.userStateLen} bytes, has ${buf.length - at}`);
  }
  return { type: 'pushPull', join: h.join, nodes, userState: buf.slice(at, at + h.userStateLen) };
}

/** Decode one message (type byte + body). Framing types (compound, compress, crc, encrypt) are
 *  not messages here → ERR_WIRE_UNKNOWN_MESSAGE. Trailing bytes after the body are ignored, as
 *  Go's decoder does. */
export function decodeMessage(buf: Uint8Array): Message {
  if (buf.length === 0) throw new WireError('ERR_WIRE_TRUNCATED', 'empty message');
  const t = buf[0] as number;
  switch (t) {
    case MessageType.ping: {
      const m = asMap(readObject(buf, 1).value);
      return {
        type: 'ping',
        seqNo: asUint(m.SeqNo),
        node: asString(m.Node),
        sourceAddr: optBytes(m.SourceAddr),
        sourcePort: optNum(m.SourcePort),
        sourceNode: optStr(m.SourceNode),
      };
    }
    case MessageType.indirectPing: {
      const m = asMap(readObject(buf, 1).value);
      return {
        type: 'indirectPing',
        seqNo: asUint(m.SeqNo),
        target: asBytes(m.Target) ?? EMPTY,
        port: asUint(m.Port),
        node: asString(m.Node),
        nack: asBool(m.Nack),
        sourceAddr: optBytes(m.SourceAddr),
        sourcePort: optNum(m.SourcePort),
        sourceNode: optStr(m.SourceNode),
      };
    }
    case MessageType.ack: {
      const m = asMap(readObject(buf, 1).value);
      return { type: 'ack', seqNo: asUint(m.SeqNo), payload: asBytes(m.Payload) };
    }
    case MessageType.nack: {
      const m = asMap(readObject(buf, 1).value);
      return { type: 'nack', seqNo: asUint(m.SeqNo) };
    }
    case MessageType.suspect:
    case MessageType.dead: {
      const m = asMap(readObject(buf, 1).value);
      return {
        type: t === MessageType.suspect ? 'suspect' : 'dead',
        incarnation: asUint(m.Incarnation),
        node: asString(m.Node),
        from: asString(m.From),
      };
    }
    case MessageType.alive: {
      // The news of every join and tag change, received many times over by every node: its usual
      // shape is read without building a map first (readMemberFields).
      if (aliveCache !== undefined) {
        // The simulator: one node's alive reaches every other node many times over.
        const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        const key = aliveCache.key(buf, view, 1);
        const hit = aliveCache.find(buf, view, 1, key);
        if (hit !== undefined) return hit;
        const end = readMemberFields(buf, 1, K_NODE);
        if (end >= 0) {
          const msg: AliveMsg = { type: 'alive', incarnation: fIncarnation, node: fName, addr: fAddr, port: fPort, meta: fMeta, vsn: fVsn };
          aliveCache.add(buf, 1, end, key, msg);
          return msg;
        }
      } else if (readMemberFields(buf, 1, K_NODE) >= 0) {
        return { type: 'alive', incarnation: fIncarnation, node: fName, addr: fAddr, port: fPort, meta: fMeta, vsn: fVsn };
      }
      const m = asMap(readObject(buf, 1).value);
      return {
        type: 'alive',
        incarnation: asUint(m.Incarnation),
        node: asString(m.Node),
        addr: asBytes(m.Addr) ?? EMPTY,
        port: asUint(m.Port),
        meta: asBytes(m.Meta) ?? EMPTY,
        vsn: vsnFromBytes(asBytes(m.Vsn)),
      };
    }
    case MessageType.pushPull:
      return decodePushPull(buf);
    case MessageType.user:
      return { type: 'user', payload: buf.slice(1) };
    case MessageType.err: {
      const m = asMap(readObject(buf, 1).value);
      return { type: 'err', error: asString(m.Error) };
    }
    default:
      throw new WireError('ERR_WIRE_UNKNOWN_MESSAGE', `not a single message: type byte ${t}`);
  }
}

