// The transport contract shared by the real network (node-transport.ts: UDP + TCP on one port)
// and the simulator (src/sim/network.ts). It is deliberately weak, as memberlist's is: packets
// may be dropped, duplicated, delayed or reordered; a stream carries one request and at most one
// reply. One compliance suite (test/transport/compliance.ts) runs against every implementation.
//
// Everything is callback based (no promises), so the simulator can deliver in virtual time,
// deterministically, without microtask scheduling getting in the way.

import type { Address } from '../wire/types.ts';

/** Replies to an inbound stream: bytes to write (then close), or null to close without reply. */
export type StreamReply = (bytes: Uint8Array | null) => void;

export interface TransportHandlers {
  /** One datagram arrived. */
  packet(from: Address, bytes: Uint8Array): void;
  /**
   * One complete stream message arrived on an inbound stream (framed with wire's
   * streamFrameLength). Call `reply` exactly once.
   */
  stream(from: Address, request: Uint8Array, reply: StreamReply): void;
  /** Input the transport itself refused (oversized datagram, bad framing); counted upstream. */
  dropped?(reason: string, from: Address | undefined, detail: string): void;
}

export interface Transport {
  /** The address packets and streams are received on (after binding; port 0 is resolved). */
  readonly localAddress: Address;
  /** Install the receive handlers. Called once, before anything arrives. */
  setHandlers(handlers: TransportHandlers): void;
  /** Fire-and-forget datagram. */
  sendPacket(to: Address, bytes: Uint8Array): void;
  /**
   * Open a stream, write `request`; if `expectReply`, read one complete stream message back.
   * `done` is called exactly once: (null, reply) on success, (null, null) when no reply was
   * expected and the write finished, or (reason, null) on failure or after `timeoutMs`.
   */
  openStream(
    to: Address,
    request: Uint8Array,
    timeoutMs: number,
    expectReply: boolean,
    done: (error: string | null, reply: Uint8Array | null) => void,
  ): void;
  /** Stop receiving and release sockets. `done` runs when everything is closed. */
  close(done?: () => void): void;
}

/** Time source for drivers: the real monotonic clock, or the simulator's virtual one. */
export interface Clock {
  /** Milliseconds, monotonic, never decreasing. */
  now(): number;
  /** Call `fn` once at time `atMs` (or as soon as possible if that is past). */
  setTimer(atMs: number, fn: () => void): TimerHandle;
}

export interface TimerHandle {
  cancel(): void;
}
