// Serf messages (5.1, 5.2): the first byte of a memberlist user payload is the Serf type, the
// rest one msgpack map (old-spec strings, Go's sorted struct keys). The type values are
// protocol: append only, never renumber.

import {
  asArray,
  asBool,
  asBytes,
  asInt,
  asMap,
  asString,
  asUint,
  bytesToIp,
  decodeMsgpack,
  decodeMsgpackPrefix,
  encodeGossip,
  ipToBytes,
} from '../wire/index.ts';
import type { Address, MsgValue } from '../wire/index.ts';
import { SerfError } from './errors.ts';

export const SerfMessageType = {
  leave: 0,
  join: 1,
  pushPull: 2,
  userEvent: 3,
  query: 4,
  queryResponse: 5,
  conflictResponse: 6,
  keyRequest: 7,
  keyResponse: 8,
  relay: 9,
} as const;
export type SerfMessageTypeName = keyof typeof SerfMessageType;

const NAMES: readonly SerfMessageTypeName[] = Object.keys(SerfMessageType) as SerfMessageTypeName[];

/** memberlist's user message type: prefixes every Serf broadcast we hand to memberlist. */
export const MEMBERLIST_USER_MSG = 8;

/** A node announces (or re-asserts) membership at Lamport time `ltime`. */
export interface JoinIntent {
  type: 'join';
  ltime: number;
  node: string;
}

/** A node announces a graceful departure; `prune` also erases it (force-leave -prune). */
export interface LeaveIntent {
  type: 'leave';
  ltime: number;
  node: string;
  prune: boolean;
}

/** Serf's push/pull user state (5.9). */
export interface PushPullState {
  type: 'pushPull';
  ltime: number;
  /** Every known member → the Lamport time of its last status change. */
  statusLTimes: Record<string, number>;
  leftMembers: string[];
  eventLTime: number;
  /** The event buffer: one entry per LTime slot in use (empty slots are not listed). */
  events: EventBufferEntry[];
  queryLTime: number;
}

/** One slot of the user-event buffer: every distinct event seen at `ltime`. */
export interface EventBufferEntry {
  ltime: number;
  events: { name: string; payload: Uint8Array }[];
}

/** A user event (5.6). `cc` = receivers may coalesce it. */
export interface UserEventMsg {
  type: 'userEvent';
  ltime: number;
  name: string;
  payload: Uint8Array;
  cc: boolean;
}

/** Query flags (5.2). */
export const QUERY_FLAG_ACK = 1;
export const QUERY_FLAG_NO_BROADCAST = 2;
/** Response flag: this response is an ack. */
export const RESPONSE_FLAG_ACK = 1;

/** A query (5.7); `addr`/`port` are where responses go (the originator's memberlist address). */
export interface QueryMsg {
  type: 'query';
  ltime: number;
  id: number;
  addr: Address;
  sourceNode: string;
  /** Encoded filters (`00`/`01` type byte + msgpack), all must match. */
  filters: Uint8Array[];
  flags: number;
  relayFactor: number;
  /** Go sends nanoseconds; kept in ms here. */
  timeoutMs: number;
  name: string;
  payload: Uint8Array;
}

export interface QueryResponseMsg {
  type: 'queryResponse';
  ltime: number;
  id: number;
  from: string;
  flags: number;
  /** null for acks. */
  payload: Uint8Array | null;
}

/** A response relayed through another member: forward `inner` (Serf bytes) to `dest`. */
export interface RelayMsg {
  type: 'relay';
  dest: Address;
  destName: string;
  inner: Uint8Array;
}

/** A Serf message that only travels inside query payloads (key/conflict), never alone. */
export interface UnhandledSerfMessage {
  type: 'unhandled';
  name: SerfMessageTypeName;
}

export type SerfMessage =
  | JoinIntent
  | LeaveIntent
  | PushPullState
  | UserEventMsg
  | QueryMsg
  | QueryResponseMsg
  | RelayMsg
  | UnhandledSerfMessage;

export type EncodableSerfMessage = JoinIntent | LeaveIntent | PushPullState | UserEventMsg | QueryMsg | QueryResponseMsg;

/** Serf's event buffer size: push/pull always sends this many slots (nil when empty). */
export const EVENT_BUFFER_SLOTS = 512;

function frame(type: number, body: MsgValue): Uint8Array {
  const enc = encodeGossip(body);
  const out = new Uint8Array(1 + enc.length);
  out[0] = type;
  out.set(enc, 1);
  return out;
}

/** Serf type byte + msgpack body (no memberlist prefix). */
export function encodeSerfMessage(msg: EncodableSerfMessage): Uint8Array {
  switch (msg.type) {
    case 'join':
      return frame(SerfMessageType.join, { LTime: msg.ltime, Node: msg.node });
    case 'leave':
      return frame(SerfMessageType.leave, { LTime: msg.ltime, Node: msg.node, Prune: msg.prune });
    case 'pushPull': {
      // Go sends the whole ring, nil for empty slots, in slot order (LTime mod 512).
      const slots: MsgValue[] = [];
      for (let i = 0; i < EVENT_BUFFER_SLOTS; i++) slots.push(null);
      {
        for (const e of msg.events) {
          slots[e.ltime % EVENT_BUFFER_SLOTS] = {
            Events: e.events.map((x) => ({ Name: x.name, Payload: x.payload })),
            LTime: e.ltime,
          };
        }
      }
      return frame(SerfMessageType.pushPull, {
        EventLTime: msg.eventLTime,
        Events: slots,
        LTime: msg.ltime,
        LeftMembers: msg.leftMembers,
        QueryLTime: msg.queryLTime,
        StatusLTimes: { ...msg.statusLTimes },
      });
    }
    case 'userEvent':
      return frame(SerfMessageType.userEvent, { CC: msg.cc, LTime: msg.ltime, Name: msg.name, Payload: msg.payload });
    case 'query':
      return frame(SerfMessageType.query, {
        Addr: ipToBytes(msg.addr.ip),
        Filters: msg.filters.length === 0 ? null : msg.filters,
        Flags: msg.flags,
        ID: msg.id,
        LTime: msg.ltime,
        Name: msg.name,
        Payload: msg.payload,
        Port: msg.addr.port,
        RelayFactor: msg.relayFactor,
        SourceNode: msg.sourceNode,
        Timeout: Math.round(msg.timeoutMs * 1e6),
      });
    case 'queryResponse':
      return frame(SerfMessageType.queryResponse, {
        Flags: msg.flags,
        From: msg.from,
        ID: msg.id,
        LTime: msg.ltime,
        Payload: msg.payload,
      });
  }
}

/** `09 || relayHeader || inner`: ask a member to forward `inner` (Serf bytes) to `dest`. */
export function encodeRelay(dest: Address, destName: string, inner: Uint8Array): Uint8Array {
  const hdr = encodeGossip({ DestAddr: { IP: ipToBytes(dest.ip), Port: dest.port, Zone: '' }, DestName: destName });
  const out = new Uint8Array(1 + hdr.length + inner.length);
  out[0] = SerfMessageType.relay;
  out.set(hdr, 1);
  out.set(inner, 1 + hdr.length);
  return out;
}

/** Node filter (`00`): only the listed nodes process the query. */
export function encodeNodeFilter(names: string[]): Uint8Array {
  return typed(0, encodeGossip(names));
}

/** Tag filter (`01`): only nodes whose tag value matches the (unanchored) regex. */
export function encodeTagFilter(tag: string, expr: string): Uint8Array {
  return typed(1, encodeGossip({ Expr: expr, Tag: tag }));
}

export type QueryFilter = { kind: 'node'; names: string[] } | { kind: 'tag'; tag: string; expr: string } | { kind: 'unknown' };

/** Decode one filter; anything malformed is 'unknown' (and so fails the query's filter check). */
export function decodeFilter(f: Uint8Array): QueryFilter {
  try {
    const v = decodeMsgpack(f.subarray(1), { strings: 'bytes', maxDepth: 2, maxItems: 1 << 16 });
    if (f[0] === 0) return { kind: 'node', names: asArray(v).map((x) => asString(x)) };
    if (f[0] === 1) {
      const m = asMap(v);
      return { kind: 'tag', tag: asString(m['Tag']), expr: asString(m['Expr']) };
    }
  } catch {
    // fall through
  }
  return { kind: 'unknown' };
}

/** `07 || {Key}`: the payload of the `_serf_*-key` queries (empty key for list). */
export function encodeKeyRequest(key: Uint8Array): Uint8Array {
  return typed(SerfMessageType.keyRequest, encodeGossip({ Key: key }));
}

export function decodeKeyRequest(buf: Uint8Array): Uint8Array {
  if (buf[0] !== SerfMessageType.keyRequest) throw new SerfError('ERR_SERF_BAD_MESSAGE', 'not a key request');
  try {
    return asBytes(body(buf)['Key']) ?? new Uint8Array(0);
  } catch (e) {
    throw new SerfError('ERR_SERF_BAD_MESSAGE', `bad key request: ${(e as Error).message}`);
  }
}

/** nodeKeyResponse (5.2): one node's answer to a key query. Keys are base64. */
export interface KeyResponse {
  result: boolean;
  message: string;
  keys: string[] | null;
  primaryKey: string;
}

export function encodeKeyResponse(r: KeyResponse): Uint8Array {
  return typed(
    SerfMessageType.keyResponse,
    encodeGossip({ Keys: r.keys, Message: r.message, PrimaryKey: r.primaryKey, Result: r.result }),
  );
}

export function decodeKeyResponse(buf: Uint8Array): KeyResponse {
  if (buf[0] !== SerfMessageType.keyResponse) throw new SerfError('ERR_SERF_BAD_MESSAGE', 'not a key response');
  try {
    const m = body(buf);
    const keys = m['Keys'];
    return {
      result: m['Result'] === undefined ? false : asBool(m['Result']),
      message: asString(m['Message'] ?? null),
      keys: keys === undefined || keys === null ? null : asArray(keys).map((k) => asString(k)),
      primaryKey: asString(m['PrimaryKey'] ?? null),
    };
  } catch (e) {
    throw new SerfError('ERR_SERF_BAD_MESSAGE', `bad key response: ${(e as Error).message}`);
  }
}

/** Serf's Member struct as a `_serf_conflict` answer carries it (Status 0..4). */
export interface ConflictMember {
  name: string;
  addr: Address;
  tags: Record<string, string>;
  status: number;
  protocolMin: number;
  protocolMax: number;
  protocolCur: number;
  delegateMin: number;
  delegateMax: number;
  delegateCur: number;
}

/** `06 || msgpack(Member)`, or `06 c0` when the node is unknown. */
export function encodeConflictResponse(m: ConflictMember | null): Uint8Array {
  if (m === null) return typed(SerfMessageType.conflictResponse, encodeGossip(null));
  return typed(
    SerfMessageType.conflictResponse,
    encodeGossip({
      Addr: ipToBytes(m.addr.ip),
      DelegateCur: m.delegateCur,
      DelegateMax: m.delegateMax,
      DelegateMin: m.delegateMin,
      Name: m.name,
      Port: m.addr.port,
      ProtocolCur: m.protocolCur,
      ProtocolMax: m.protocolMax,
      ProtocolMin: m.protocolMin,
      Status: m.status,
      Tags: { ...m.tags },
    }),
  );
}

/** The member in a conflict answer, null when the responder does not know the name. */
export function decodeConflictResponse(buf: Uint8Array): { name: string; addr: Address } | null {
  if (buf[0] !== SerfMessageType.conflictResponse) throw new SerfError('ERR_SERF_BAD_MESSAGE', 'not a conflict response');
  try {
    const v = decodeMsgpack(buf.subarray(1), { strings: 'bytes', maxDepth: 3, maxItems: 1 << 12 });
    if (v === null) return null;
    const m = asMap(v);
    const ip = asBytes(m['Addr']);
    return { name: asString(m['Name']), addr: { ip: ip === null ? '' : bytesToIp(ip), port: asUint(m['Port'] ?? 0) } };
  } catch (e) {
    throw new SerfError('ERR_SERF_BAD_MESSAGE', `bad conflict response: ${(e as Error).message}`);
  }
}

function typed(type: number, enc: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + enc.length);
  out[0] = type;
  out.set(enc, 1);
  return out;
}

/** `08 || encodeSerfMessage(msg)`: a broadcast ready for memberlist's piggyback. */
export function encodeSerfBroadcast(msg: JoinIntent | LeaveIntent): Uint8Array {
  const inner = encodeSerfMessage(msg);
  const out = new Uint8Array(1 + inner.length);
  out[0] = MEMBERLIST_USER_MSG;
  out.set(inner, 1);
  return out;
}

/** Decode one Serf message; throws SerfError('ERR_SERF_BAD_MESSAGE') on anything malformed. */
export function decodeSerfMessage(buf: Uint8Array): SerfMessage {
  const t = buf[0];
  if (t === undefined) throw new SerfError('ERR_SERF_BAD_MESSAGE', 'empty serf message');
  const name = NAMES[t];
  if (name === undefined) throw new SerfError('ERR_SERF_BAD_MESSAGE', `unknown serf message type ${t}`);
  try {
    switch (name) {
      case 'join': {
        const m = body(buf);
        return { type: 'join', ltime: asUint(m['LTime']), node: asString(m['Node']) };
      }
      case 'leave': {
        const m = body(buf);
        return {
          type: 'leave',
          ltime: asUint(m['LTime']),
          node: asString(m['Node']),
          prune: m['Prune'] === undefined ? false : asBool(m['Prune']),
        };
      }
      case 'pushPull': {
        // The event buffer nests: state → Events → slot → Events → event map.
        const m = body(buf, 6);
        const statusLTimes: Record<string, number> = {};
        const st = m['StatusLTimes'];
        if (st !== undefined && st !== null) {
          for (const [k, v] of Object.entries(asMap(st))) statusLTimes[k] = asUint(v);
        }
        const left = m['LeftMembers'];
        const events: EventBufferEntry[] = [];
        const evs = m['Events'];
        if (evs !== undefined && evs !== null) {
          for (const slot of asArray(evs)) {
            if (slot === null) continue;
            const sm = asMap(slot);
            const list = sm['Events'];
            events.push({
              ltime: asUint(sm['LTime'] ?? 0),
              events: list === undefined || list === null
                ? []
                : asArray(list).map((x) => {
                  const e = asMap(x);
                  return { name: asString(e['Name'] ?? null), payload: asBytes(e['Payload'] ?? null) ?? new Uint8Array(0) };
                }),
            });
          }
        }
        return {
          type: 'pushPull',
          ltime: asUint(m['LTime'] ?? 0),
          statusLTimes,
          leftMembers: left === undefined || left === null ? [] : asArray(left).map((v) => asString(v)),
          eventLTime: asUint(m['EventLTime'] ?? 0),
          events,
          queryLTime: asUint(m['QueryLTime'] ?? 0),
        };
      }
      case 'userEvent': {
        const m = body(buf);
        return {
          type: 'userEvent',
          ltime: asUint(m['LTime']),
          name: asString(m['Name'] ?? null),
          payload: asBytes(m['Payload'] ?? null) ?? new Uint8Array(0),
          cc: m['CC'] === undefined ? false : asBool(m['CC']),
        };
      }
      case 'query': {
        const m = body(buf);
        const ip = asBytes(m['Addr'] ?? null);
        const filters = m['Filters'];
        return {
          type: 'query',
          ltime: asUint(m['LTime']),
          id: asUint(m['ID']),
          addr: { ip: ip === null || ip.length === 0 ? '' : bytesToIp(ip), port: asUint(m['Port'] ?? 0) },
          sourceNode: asString(m['SourceNode'] ?? null),
          filters: filters === undefined || filters === null
            ? []
            : asArray(filters).map((f) => asBytes(f) ?? new Uint8Array(0)).filter((f) => f.length > 0),
          flags: asUint(m['Flags'] ?? 0),
          relayFactor: asUint(m['RelayFactor'] ?? 0),
          timeoutMs: Math.max(0, asInt(m['Timeout'] ?? 0)) / 1e6,
          name: asString(m['Name'] ?? null),
          payload: asBytes(m['Payload'] ?? null) ?? new Uint8Array(0),
        };
      }
      case 'queryResponse': {
        const m = body(buf);
        return {
          type: 'queryResponse',
          ltime: asUint(m['LTime']),
          id: asUint(m['ID']),
          from: asString(m['From'] ?? null),
          flags: asUint(m['Flags'] ?? 0),
          payload: asBytes(m['Payload'] ?? null),
        };
      }
      case 'relay': {
        const r = decodeMsgpackPrefix(buf, 1, { strings: 'bytes', maxDepth: 3, maxItems: 64 });
        if (r === undefined) throw new SerfError('ERR_SERF_BAD_MESSAGE', 'truncated relay header');
        const h = asMap(r.value);
        const d = asMap(h['DestAddr']);
        const ip = asBytes(d['IP'] ?? null);
        if (ip === null || (ip.length !== 4 && ip.length !== 16)) {
          throw new SerfError('ERR_SERF_BAD_MESSAGE', 'relay destination has no IP');
        }
        return {
          type: 'relay',
          dest: { ip: bytesToIp(ip), port: asUint(d['Port'] ?? 0) },
          destName: asString(h['DestName'] ?? null),
          inner: buf.subarray(r.end),
        };
      }
      default:
        return { type: 'unhandled', name };
    }
  } catch (e) {
    if (e instanceof SerfError) throw e;
    throw new SerfError('ERR_SERF_BAD_MESSAGE', `bad serf ${name} message: ${(e as Error).message}`);
  }
}

function body(buf: Uint8Array, maxDepth = 4): { [key: string]: MsgValue } {
  return asMap(decodeMsgpack(buf.subarray(1), { strings: 'bytes', maxDepth, maxItems: 1 << 16 }));
}
