// memberlist messages <-> bytes: one type byte, then the Go struct as a msgpack map with the exact
// Go field names (protocol doc 2.3, 3.2). Framing layers (compound, compress, crc, encrypt) live in
// packet.ts / stream.ts; this file only knows single messages.

import { WireError } from './errors.ts';
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
  type MsgMap,
  type MsgValue,
} from './msgpack.ts';
import {
  MessageType,
  NodeStateCode,
  type Message,
  type NodeStateName,
  type PushNodeState,
  type PushPullMsg,
  type Vsn,
} from './types.ts';

const EMPTY = new Uint8Array(0);

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

function nodeStateMap(n: PushNodeState): MsgMap {
  return {
    Addr: n.addr,
    Incarnation: n.incarnation,
    Meta: n.meta,
    Name: n.name,
    Port: n.port,
    State: NodeStateCode[n.state],
    Vsn: vsnToBytes(n.vsn),
  };
}

/** Header + node states + raw user state, as one buffer (type byte included). */
function encodePushPull(m: PushPullMsg): Uint8Array {
  const parts: Uint8Array[] = [
    encodeGossipAfter([MessageType.pushPull], {
      Join: m.join,
      Nodes: m.nodes.length,
      UserStateLen: m.userState.length,
    }),
  ];
  let total = (parts[0] as Uint8Array).length + m.userState.length;
  for (const n of m.nodes) {
    const enc = encodeGossip(nodeStateMap(n));
    parts.push(enc);
    total += enc.length;
  }
  parts.push(m.userState);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
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
    case 'alive':
      return encodeGossipAfter([MessageType.alive], {
        Addr: msg.addr,
        Incarnation: msg.incarnation,
        Meta: msg.meta,
        Node: msg.node,
        Port: msg.port,
        Vsn: vsnToBytes(msg.vsn),
      });
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
  for (let i = 0; i < h.nodes; i++) {
    // Each state needs at least one byte: a huge Nodes count on a short buffer stops here.
    if (at >= buf.length) throw new WireError('ERR_WIRE_TRUNCATED', `push/pull ends after ${i} of ${h.nodes} nodes`);
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

