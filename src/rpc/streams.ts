// Filters and record shapes for the streaming commands: `stream` (events, serf's event filter
// syntax shared with event handlers) and `monitor` (log lines, serf's logutils level filter).

import { asArray, asBool, asBytes, asMap, asString, asUint, WireError, type MsgValue } from '../wire/index.ts';
import type { RpcEvent, RpcMemberEvent, RpcMemberEventType, RpcUserEvent } from './backend.ts';
import { memberFromWire, memberToWire } from './protocol.ts';

const EVENT_NAMES: ReadonlySet<string> = new Set([
  'member-join',
  'member-leave',
  'member-failed',
  'member-update',
  'member-reap',
  'user',
  'query',
  '*',
]);

export interface EventFilterItem {
  event: string;
  /** For `user:NAME` / `query:NAME`; '' = any name. */
  name: string;
}

/** Parse `member-join,user:deploy,…` ('' = `*`). Returns null if any item is not a known event. */
export function parseEventFilter(spec: string): EventFilterItem[] | null {
  const items = (spec === '' ? '*' : spec).split(',').map((raw) => {
    for (const kind of ['user', 'query']) {
      if (raw.startsWith(`${kind}:`)) return { event: kind, name: raw.slice(kind.length + 1) };
    }
    return { event: raw, name: '' };
  });
  return items.every((i) => EVENT_NAMES.has(i.event)) ? items : null;
}

export function eventMatches(filter: readonly EventFilterItem[], e: RpcEvent): boolean {
  return filter.some(
    (f) =>
      f.event === '*' ||
      (f.event === e.type && (f.name === '' || ((e.type === 'user' || e.type === 'query') && e.name === f.name))),
  );
}

/**
 * serf's stream records; keys are emitted sorted, as Go does. A query carries the ID this
 * connection gave it for `respond`.
 */
export function eventRecord(e: RpcEvent, queryId: number): MsgValue {
  switch (e.type) {
    case 'user':
      return { Event: 'user', LTime: e.ltime, Name: e.name, Payload: e.payload, Coalesce: e.coalesce };
    case 'query':
      return { Event: 'query', ID: queryId, LTime: e.ltime, Name: e.name, Payload: e.payload };
    default:
      return { Event: e.type, Members: e.members.map(memberToWire) };
  }
}

/** A query as a `stream` client sees it: answer it with `respond(id, …)` before its deadline. */
export interface RpcQueryEventRecord {
  type: 'query';
  id: number;
  name: string;
  payload: Uint8Array;
  ltime: number;
}

/** What RpcClient.stream delivers. */
export type RpcStreamEvent = RpcMemberEvent | RpcUserEvent | RpcQueryEventRecord;

/** One result of a query the client started. */
export interface RpcQueryResult {
  type: 'ack' | 'response';
  from: string;
  /** null for acks */
  payload: Uint8Array | null;
}

/** serf's queryRecord; Payload nil for acks and done (as Go sends it). */
export function queryRecord(type: 'ack' | 'response' | 'done', from: string, payload: Uint8Array | null): MsgValue {
  return { From: from, Payload: payload, Type: type };
}

/** A queryRecord back: a result, or 'done'. */
export function decodeQueryRecord(v: MsgValue): RpcQueryResult | 'done' {
  const m = asMap(v);
  const type = asString(m['Type']);
  if (type === 'done') return 'done';
  if (type !== 'ack' && type !== 'response') throw new WireError('ERR_WIRE_BAD_VALUE', `unknown query record type '${type}'`);
  return { type, from: asString(m['From']), payload: asBytes(m['Payload']) };
}

const MEMBER_EVENTS: ReadonlySet<string> = new Set(['member-join', 'member-leave', 'member-failed', 'member-update', 'member-reap']);

/** A stream record back to an event; null for an event kind this client does not know. */
export function decodeEventRecord(v: MsgValue): RpcStreamEvent | null {
  const m = asMap(v);
  const type = asString(m['Event']);
  if (type === 'query') {
    return {
      type: 'query',
      id: asUint(m['ID']),
      name: asString(m['Name']),
      payload: asBytes(m['Payload']) ?? new Uint8Array(0),
      ltime: asUint(m['LTime']),
    };
  }
  if (type === 'user') {
    return {
      type: 'user',
      name: asString(m['Name']),
      payload: asBytes(m['Payload']) ?? new Uint8Array(0),
      ltime: asUint(m['LTime']),
      coalesce: asBool(m['Coalesce']),
    };
  }
  if (MEMBER_EVENTS.has(type)) {
    return { type: type as RpcMemberEventType, members: asArray(m['Members']).map(memberFromWire) };
  }
  return null;
}

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERR'] as const;
export type MonitorLevel = (typeof LOG_LEVELS)[number];

/** Upper-cased level if serf knows it, else null (→ "Unknown log level: X"). */
export function parseMonitorLevel(s: string): MonitorLevel | null {
  const up = s.toUpperCase();
  return (LOG_LEVELS as readonly string[]).includes(up) ? (up as MonitorLevel) : null;
}

/**
 * logutils' check: the level is the text between the first '[' and the following ']'; lines
 * below the minimum are dropped, lines without a recognisable level pass.
 */
export function logLinePasses(line: string, min: MonitorLevel): boolean {
  const open = line.indexOf('[');
  const close = open < 0 ? -1 : line.indexOf(']', open);
  if (close < 0) return true;
  const rank = (LOG_LEVELS as readonly string[]).indexOf(line.slice(open + 1, close));
  return rank < 0 || rank >= LOG_LEVELS.indexOf(min);
}
