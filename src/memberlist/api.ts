// The sans-I/O contract of the membership core (quinn-proto style).
//
// The core never touches a socket, a clock or a timer. A driver (the Node runtime in
// src/transport/, or the simulator in src/sim/) feeds it input together with the current time and
// drains what it wants done:
//
//   handle_*(…, now)   datagrams, complete stream messages, stream outcomes, timer expiry
//   poll_*()           outputs to perform (packets, stream operations), next wake-up, events
//
// Time is a plain number of milliseconds on a monotonic clock chosen by the driver; it must never
// go backwards. After every handle_* or command call the driver drains pollOutput() and
// pollEvent() until they return undefined, then arms one timer for pollTimeout().
//
// Streams (TCP) carry exactly one request and at most one reply. The driver does the byte
// framing with wire's streamFrameLength(), so the core only ever sees whole stream messages.

import type { Address, Vsn } from '../wire/types.ts';

/** A member as the membership core knows it. */
export interface NodeInfo {
  name: string;
  addr: Address;
  meta: Uint8Array;
  incarnation: number;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  vsn: Vsn;
  /** Time (driver ms) of the last state change. */
  stateChangeMs: number;
}

/** What the core asks the driver to do. */
export type Output =
  /** Send one UDP datagram. */
  | { kind: 'packet'; to: Address; bytes: Uint8Array }
  /**
   * Open a stream to `to`, write `bytes`, then read one complete stream message and hand it to
   * handleStreamReply(id, …); on connect error, timeout or EOF call handleStreamFailed(id, …).
   * `expectReply: false` means write then close (no reply is read).
   */
  | { kind: 'stream-open'; id: number; to: Address; bytes: Uint8Array; timeoutMs: number; expectReply: boolean }
  /** Write `bytes` as the reply on inbound stream `id`, then close it. */
  | { kind: 'stream-reply'; id: number; bytes: Uint8Array }
  /** Close inbound stream `id` without a reply. */
  | { kind: 'stream-close'; id: number };

/** Membership events, in the order they happened. */
export type MemberEvent =
  | { type: 'join'; node: NodeInfo }
  | { type: 'leave'; node: NodeInfo } // node.state tells 'dead' (failed) from 'left' (graceful)
  | { type: 'update'; node: NodeInfo }
  /** Another node claims our name (or a known name) from a different address. */
  | { type: 'conflict'; existing: NodeInfo; other: NodeInfo }
  /** A join() finished: how many seeds answered a push/pull, and why the others did not. */
  | { type: 'join-complete'; joinId: number; joined: number; errors: string[] }
  /** A leave() finished: the dead-self broadcast went out, or the broadcast timeout passed. */
  | { type: 'leave-complete'; timedOut: boolean }
  /** A pingNode() was answered (by `node`, within the probe timeout). */
  | { type: 'ping-reply'; name: string; addr: Address; rttMs: number }
  /** Something was dropped or refused; `reason` is a stable counter key. */
  | { type: 'dropped'; reason: string; from?: Address | undefined; detail: string };

/**
 * Hooks for the layer above (Serf). All synchronous and pure: they run inside a handle_* call
 * and must not do I/O either.
 */
export interface Delegate {
  /** Meta to advertise in our alive message (at most `limit` bytes). */
  nodeMeta(limit: number): Uint8Array;
  /** A user message (memberlist type 8) arrived, by packet or stream. */
  notifyMsg(payload: Uint8Array, now: number): void;
  /**
   * Piggyback: return delegate messages (raw Serf bytes, *without* the user type byte: the core
   * prefixes each with 8, as memberlist does) whose sizes plus `overhead` bytes each (the core
   * already counts the prefix in it) fit in `limit`.
   */
  getBroadcasts(overhead: number, limit: number): Uint8Array[];
  /** Whether getBroadcasts() has anything (an idle gossip tick then skips picking targets). */
  hasBroadcasts?(): boolean;
  /** Our state for a push/pull. */
  localState(join: boolean): Uint8Array;
  /** Remote state from a push/pull, after the node list was merged. */
  mergeRemoteState(state: Uint8Array, join: boolean, now: number): void;
  /** Payload to put in acks we send (Serf: coordinate); null for none. */
  ackPayload(): Uint8Array | null;
  /** An ack for one of our probes arrived. */
  notifyPingComplete?(node: NodeInfo, rttMs: number, payload: Uint8Array | null): void;
}

/** Counters for `stats` and tests: dropped input by reason, messages in and out. */
export type Counters = Record<string, number>;

/** The membership core as drivers see it. */
export interface MembershipCore {
  /** Announce ourselves and arm the periodic tasks. Call once, first. */
  start(now: number): void;

  handlePacket(from: Address, bytes: Uint8Array, now: number): void;
  /** A complete stream message arrived on inbound stream `id` (driver-assigned, unique). */
  handleStreamRequest(id: number, from: Address, bytes: Uint8Array, now: number): void;
  /** The reply to our stream `id` (core-assigned) arrived. */
  handleStreamReply(id: number, bytes: Uint8Array, now: number): void;
  /** Our stream `id` failed (connect error, timeout, EOF, framing error). */
  handleStreamFailed(id: number, reason: string, now: number): void;
  /** Call when the driver's clock reaches pollTimeout() (calling early is harmless). */
  handleTimeout(now: number): void;

  pollOutput(): Output | undefined;
  pollEvent(): MemberEvent | undefined;
  /** Earliest time the core wants handleTimeout(); undefined when it wants none. */
  pollTimeout(): number | undefined;

  /** Push/pull with each address (Join=true). Completion comes as a 'join-complete' event. */
  join(seeds: Address[], now: number): number;
  /** Broadcast our graceful departure; completion comes as a 'leave-complete' event. */
  leave(now: number, timeoutMs: number): void;
  /** Re-read delegate.nodeMeta() and broadcast it with a new incarnation. */
  updateMeta(now: number): void;
  /** Send a memberlist user message (type 8) to one address, by UDP, not piggybacked. */
  sendUserPacket(to: Address, payload: Uint8Array): void;
  /**
   * Ping `node` at `to` once: one small ping, nothing piggybacked, whether or not the node is in
   * our table (Serf pings failed members to notice a healed partition). An answer within the
   * probe timeout comes as a 'ping-reply' event; silence produces nothing.
   */
  pingNode(node: string, to: Address, now: number): void;
  /** Stop everything: no more output or timers. */
  shutdown(): void;

  /** Every node the core knows, itself included (dead/left until reclaimed). */
  members(): NodeInfo[];
  localNode(): NodeInfo;
  /** Alive + suspect node count, self included. */
  numMembers(): number;
  healthScore(): number;
  counters(): Counters;
}

/** Randomness is an input too: the simulator passes a seeded source, the runtime a real one. */
export interface Random {
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** n random bytes (AES-GCM nonces). */
  bytes(n: number): Uint8Array;
}
