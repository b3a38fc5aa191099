// Serf's agent RPC ("IPC") protocol: command names, error strings and record shapes shared by the
// server and the client. The stream is plain msgpack (new spec: str8 + bin) with no length
// prefixes: a request is a header {Command, Seq} followed by a body object only for commands
// that take one; a response is a header {Error, Seq} followed by a body only for commands that
// return one. Which is which is not on the wire, so the table below is protocol.

import {
  asArray,
  asBytes,
  asMap,
  asString,
  asUint,
  encodeRpc,
  F64,
  type MsgValue,
} from '../wire/index.ts';
import type { RpcMember, RpcMemberStatus } from './backend.ts';

export const IPC_VERSION_MIN = 1;
export const IPC_VERSION_MAX = 1;

/** Error strings exactly as serf sends them (clients compare some of them verbatim). */
export const RpcErrorText = {
  unsupportedCommand: 'Unsupported command',
  unsupportedIpcVersion: 'Unsupported IPC version',
  duplicateHandshake: 'Handshake already performed',
  handshakeRequired: 'Handshake required',
  monitorExists: 'Monitor already exists',
  invalidFilter: 'Invalid event filter',
  streamExists: 'Stream with given sequence exists',
  invalidQueryId: 'No pending queries matching ID',
  authRequired: 'Authentication required',
  invalidAuthToken: 'Invalid authentication token',
  featureNotSupported: 'Feature not supported',
} as const;

export interface CommandSpec {
  /** A body object follows the request header. */
  readonly requestBody: boolean;
  /** A body object follows the response header (sent even when Error is set). */
  readonly responseBody: boolean;
}

/** Every command serf's IPC knows, with its framing (serf cmd/serf/command/agent/ipc.go). */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, CommandSpec>, {
    handshake: { requestBody: true, responseBody: false },
    auth: { requestBody: true, responseBody: false },
    event: { requestBody: true, responseBody: false },
    'force-leave': { requestBody: true, responseBody: false },
    join: { requestBody: true, responseBody: true },
    members: { requestBody: false, responseBody: true },
    'members-filtered': { requestBody: true, responseBody: true },
    tags: { requestBody: true, responseBody: false },
    stream: { requestBody: true, responseBody: false },
    monitor: { requestBody: true, responseBody: false },
    stop: { requestBody: true, responseBody: false },
    leave: { requestBody: false, responseBody: false },
    query: { requestBody: true, responseBody: false },
    respond: { requestBody: true, responseBody: false },
    'install-key': { requestBody: true, responseBody: true },
    'use-key': { requestBody: true, responseBody: true },
    'remove-key': { requestBody: true, responseBody: true },
    'list-keys': { requestBody: false, responseBody: true },
    stats: { requestBody: false, responseBody: true },
    'get-coordinate': { requestBody: true, responseBody: true },
    // kodama's own: {Op, Args: bin(JSON)} → {Result: bin(JSON)} (deploys, exec…); serf has none.
    kodama: { requestBody: true, responseBody: true },
  }),
);

export function commandSpec(command: string): CommandSpec | undefined {
  return COMMANDS[command];
}

/**
 * The zero-valued body serf would send for a command that returns one, used when the command
 * fails or is not supported: serf's client decodes a body after every such header, so leaving it
 * out would make the client read the next header as the body.
 */
export function emptyResponseBody(command: string): MsgValue | undefined {
  switch (command) {
    case 'join':
      return { Num: 0 };
    case 'members':
    case 'members-filtered':
      return { Members: [] };
    case 'install-key':
    case 'use-key':
    case 'remove-key':
    case 'list-keys':
      return { Keys: null, Messages: null, NumErr: 0, NumNodes: 0, NumResp: 0 };
    case 'stats':
      return {};
    case 'kodama':
      return { Result: new Uint8Array(0) };
    case 'get-coordinate':
      return { Coord: { Adjustment: new F64(0), Error: new F64(0), Height: new F64(0), Vec: null }, Ok: false };
    default:
      return undefined;
  }
}

function concat(a: Uint8Array, b: Uint8Array | undefined): Uint8Array {
  if (b === undefined) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Header + optional body as one buffer, so a response is written in one piece. */
export function encodeRequest(command: string, seq: number, body?: MsgValue): Uint8Array {
  return concat(encodeRpc({ Command: command, Seq: seq }), body === undefined ? undefined : encodeRpc(body));
}

export function encodeResponse(seq: number, error: string, body?: MsgValue): Uint8Array {
  return concat(encodeRpc({ Error: error, Seq: seq }), body === undefined ? undefined : encodeRpc(body));
}

/** Go decodes headers into a struct: missing fields are zero values, unknown keys ignored. */
export function decodeRequestHeader(v: MsgValue): { command: string; seq: number } {
  const m = asMap(v);
  return { command: asString(m['Command']), seq: m['Seq'] === undefined ? 0 : asUint(m['Seq']) };
}

export function decodeResponseHeader(v: MsgValue): { error: string; seq: number } {
  const m = asMap(v);
  return { error: asString(m['Error']), seq: m['Seq'] === undefined ? 0 : asUint(m['Seq']) };
}

/** map[string]string from the wire; nil → {}. */
export function decodeStringMap(v: MsgValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  const m = asMap(v);
  for (const k of Object.keys(m)) out[k] = asString(m[k]);
  return out;
}

/** []string from the wire; nil → []. */
export function decodeStringList(v: MsgValue | undefined): string[] {
  if (v === undefined || v === null) return [];
  return asArray(v).map((x) => asString(x));
}

/** Go `uint8`/`int` fields: missing → 0. */
function uintField(m: { [key: string]: MsgValue }, key: string): number {
  const v = m[key];
  return v === undefined || v === null ? 0 : asUint(v);
}

/** Serf's IPC `Member` record; keys are emitted sorted by encodeRpc as Go does. */
export function memberToWire(m: RpcMember): MsgValue {
  return {
    Name: m.name,
    Addr: m.addr,
    Port: m.port,
    Tags: { ...m.tags },
    Status: m.status,
    ProtocolMin: m.protocolMin,
    ProtocolMax: m.protocolMax,
    ProtocolCur: m.protocolCur,
    DelegateMin: m.delegateMin,
    DelegateMax: m.delegateMax,
    DelegateCur: m.delegateCur,
  };
}

const STATUSES: ReadonlySet<string> = new Set(['alive', 'leaving', 'left', 'failed', 'none']);

export function memberFromWire(v: MsgValue): RpcMember {
  const m = asMap(v);
  const status = asString(m['Status']);
  return {
    name: asString(m['Name']),
    addr: asBytes(m['Addr']) ?? new Uint8Array(0),
    port: uintField(m, 'Port'),
    tags: decodeStringMap(m['Tags']),
    status: (STATUSES.has(status) ? status : 'none') as RpcMemberStatus,
    protocolMin: uintField(m, 'ProtocolMin'),
    protocolMax: uintField(m, 'ProtocolMax'),
    protocolCur: uintField(m, 'ProtocolCur'),
    delegateMin: uintField(m, 'DelegateMin'),
    delegateMax: uintField(m, 'DelegateMax'),
    delegateCur: uintField(m, 'DelegateCur'),
  };
}

export function membersFromWire(v: MsgValue): RpcMember[] {
  const list = asMap(v)['Members'];
  if (list === undefined || list === null) return [];
  return asArray(list).map(memberFromWire);
}
