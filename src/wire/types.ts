// memberlist message model: the decoded form of every message memberlist protocol versions 2–5
// put on the wire. Field names follow Go's struct fields (camelCased); src/wire/messages.ts maps
// them to the exact Go keys and back. Numeric values of MessageType are protocol: append only.

/** First byte of every memberlist message. Values are protocol; never renumber. */
export const MessageType = {
  ping: 0,
  indirectPing: 1,
  ack: 2,
  suspect: 3,
  alive: 4,
  dead: 5,
  pushPull: 6,
  compound: 7,
  user: 8,
  compress: 9,
  encrypt: 10,
  nack: 11,
  hasCrc: 12,
  err: 13,
} as const;
export type MessageTypeName = keyof typeof MessageType;

/** Node states as they appear in push/pull (`State` int). */
export const NodeStateCode = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export type NodeStateName = keyof typeof NodeStateCode;

/** `Vsn` = [PMin, PMax, PCur, DMin, DMax, DCur] (memberlist and delegate protocol versions). */
export type Vsn = readonly [number, number, number, number, number, number];

export interface PingMsg {
  type: 'ping';
  seqNo: number;
  /** Intended target's name; a receiver with another name ignores the ping. */
  node: string;
  sourceAddr?: Uint8Array | undefined;
  sourcePort?: number | undefined;
  sourceNode?: string | undefined;
}

export interface IndirectPingMsg {
  type: 'indirectPing';
  seqNo: number;
  /** Target IP (4 or 16 bytes). */
  target: Uint8Array;
  port: number;
  node: string;
  nack: boolean;
  sourceAddr?: Uint8Array | undefined;
  sourcePort?: number | undefined;
  sourceNode?: string | undefined;
}

export interface AckMsg {
  type: 'ack';
  seqNo: number;
  /** Ping delegate payload (Serf: 0x01 + coordinate); null encodes as msgpack nil. */
  payload: Uint8Array | null;
}

export interface NackMsg {
  type: 'nack';
  seqNo: number;
}

export interface SuspectMsg {
  type: 'suspect';
  incarnation: number;
  node: string;
  from: string;
}

export interface AliveMsg {
  type: 'alive';
  incarnation: number;
  node: string;
  addr: Uint8Array;
  port: number;
  meta: Uint8Array;
  vsn: Vsn;
}

export interface DeadMsg {
  type: 'dead';
  incarnation: number;
  node: string;
  /** Accuser; `from === node` means a graceful leave. */
  from: string;
}

export interface PushNodeState {
  name: string;
  addr: Uint8Array;
  port: number;
  meta: Uint8Array;
  incarnation: number;
  state: NodeStateName;
  vsn: Vsn;
}

export interface PushPullMsg {
  type: 'pushPull';
  join: boolean;
  nodes: PushNodeState[];
  /** Delegate (Serf) state, opaque here. */
  userState: Uint8Array;
}

export interface UserMsg {
  type: 'user';
  /** Delegate (Serf) bytes, opaque here. */
  payload: Uint8Array;
}

export interface ErrMsg {
  type: 'err';
  error: string;
}

/** A single, non-framing message (compound/compress/crc/encrypt are framing, see packet.ts). */
export type Message =
  | PingMsg
  | IndirectPingMsg
  | AckMsg
  | NackMsg
  | SuspectMsg
  | AliveMsg
  | DeadMsg
  | PushPullMsg
  | UserMsg
  | ErrMsg;

/** IP address plus port as the runtime sees it. `ip` is a dotted quad or an IPv6 literal. */
export interface Address {
  ip: string;
  port: number;
}
