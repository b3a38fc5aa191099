// Serf messages (5.1, 5.2): the first byte of a memberlist user payload is the Serf type, the
// rest one msgpack map (old-spec strings, Go's sorted struct keys). The type values are
// protocol: append only, never renumber.

import {
  asArray,
  asBool,
  asMap,
  asString,
  asUint,
  decodeMsgpack,
  encodeGossip,
} from '../wire/index.ts';
import type { MsgValue } from '../wire/index.ts';
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
  /** The event buffer, kept undecoded until user events are implemented. */
  events: MsgValue[];
  queryLTime: number;
}

/** A Serf message this build recognises but does not process yet (user events, queries…). */
export interface UnhandledSerfMessage {
  type: 'unhandled';
  name: SerfMessageTypeName;
}

export type SerfMessage = JoinIntent | LeaveIntent | PushPullState | UnhandledSerfMessage;

function frame(type: number, body: MsgValue): Uint8Array {
  const enc = encodeGossip(body);
  const out = new Uint8Array(1 + enc.length);
  out[0] = type;
  out.set(enc, 1);
  return out;
}

/** Serf type byte + msgpack body (no memberlist prefix). */
export function encodeSerfMessage(msg: JoinIntent | LeaveIntent | PushPullState): Uint8Array {
  switch (msg.type) {
    case 'join':
      return frame(SerfMessageType.join, { LTime: msg.ltime, Node: msg.node });
    case 'leave':
      return frame(SerfMessageType.leave, { LTime: msg.ltime, Node: msg.node, Prune: msg.prune });
    case 'pushPull':
      return frame(SerfMessageType.pushPull, {
        EventLTime: msg.eventLTime,
        Events: msg.events,
        LTime: msg.ltime,
        LeftMembers: msg.leftMembers,
        QueryLTime: msg.queryLTime,
        StatusLTimes: { ...msg.statusLTimes },
      });
  }
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
        const m = body(buf);
        const statusLTimes: Record<string, number> = {};
        const st = m['StatusLTimes'];
        if (st !== undefined && st !== null) {
          for (const [k, v] of Object.entries(asMap(st))) statusLTimes[k] = asUint(v);
        }
        const left = m['LeftMembers'];
        const events = m['Events'];
        return {
          type: 'pushPull',
          ltime: asUint(m['LTime'] ?? 0),
          statusLTimes,
          leftMembers: left === undefined || left === null ? [] : asArray(left).map((v) => asString(v)),
          eventLTime: asUint(m['EventLTime'] ?? 0),
          events: events === undefined || events === null ? [] : asArray(events),
          queryLTime: asUint(m['QueryLTime'] ?? 0),
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

function body(buf: Uint8Array): { [key: string]: MsgValue } {
  // The event buffer makes push/pull state deep (events → event → payload): depth 4 suffices.
  return asMap(decodeMsgpack(buf.subarray(1), { strings: 'bytes', maxDepth: 4, maxItems: 1 << 16 }));
}
