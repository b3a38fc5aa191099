// The simulated network: many SimTransports on one virtual clock, with seeded faults.
//
// Addresses are virtual (127.x.y.z:7946) and never touch a socket. Packets get a uniform random
// latency (which also reorders them), may be lost or duplicated, are dropped across partitions
// and to/from killed nodes, and a slow node adds extra delay to everything it sends. Streams
// behave like the real TCP transport as the core sees it: the responder's handler gets exactly
// the framed request bytes (cut with wire's streamFrameLength, as node-transport does), the reply
// travels back with latency, and a connect to an unreachable address fails with
// "connection refused" — at once-ish (one round trip) when nothing listens, after
// `connectTimeoutMs` when the host is killed or partitioned away (the SYN is lost) — always
// bounded by the caller's timeoutMs.
//
// Every delivery is a timer on the shared clock and every random choice comes from one
// SeededRandom, so a run replays exactly from its seed. All callbacks are asynchronous (never
// inside sendPacket/openStream), as with real sockets.

import type { Address } from '../wire/types.ts';
import { MAX_STREAM_BYTES, MAX_UDP_PACKET } from '../wire/limits.ts';
import { streamFrameLength } from '../wire/index.ts';
import type { Clock, StreamReply, TimerHandle, Transport, TransportHandlers } from '../transport/transport.ts';
import { SimError } from './errors.ts';
import type { SeededRandom } from './random.ts';

export interface SimNetworkOptions {
  /** One-way latency bounds in ms, uniform (integer ms). Defaults 1 and 5. */
  latencyMinMs?: number;
  latencyMaxMs?: number;
  /** Probability that a datagram is lost (streams are reliable, as TCP). Default 0. */
  loss?: number;
  /** Probability that a datagram is delivered twice (independent latencies). Default 0. */
  duplicate?: number;
  /** How long a connect to a killed or partitioned host takes to fail. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** A responder that never completes reading a request gives up after this (node-transport's idle timeout). */
  streamIdleTimeoutMs?: number;
}

export interface SimTransportOptions {
  maxStreamBytes?: number;
}

/** Why a datagram did not arrive; keys of NetworkCounters.packetsDropped. */
export type DropReason = 'loss' | 'partition' | 'killed' | 'unreachable' | 'too-large';

export interface NetworkCounters {
  packetsSent: number;
  packetBytesSent: number;
  packetsDelivered: number;
  packetsDuplicated: number;
  packetsDropped: Record<DropReason, number>;
  streamsOpened: number;
  streamBytesSent: number;
  streamsFailed: number;
}

export function addressKey(a: Address): string {
  return `${a.ip}:${a.port}`;
}

/** The default memberlist port: every simulated node listens on it, on its own 127.x.y.z. */
export const SIM_PORT = 7946;

export class SimNetwork {
  readonly clock: Clock;
  private readonly random: SeededRandom;
  private latencyMinMs: number;
  private latencyMaxMs: number;
  private loss: number;
  private duplicate: number;
  readonly connectTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;

  private readonly transports = new Map<string, SimTransport>();
  private readonly killed = new Set<string>();
  private readonly slowMs = new Map<string, number>();
  /** address → partition group; addresses in different groups cannot reach each other. */
  private groups = new Map<string, number>();
  private nextHost = 1;
  private nextEphemeralPort = 0;

  readonly stats: NetworkCounters = {
    packetsSent: 0,
    packetBytesSent: 0,
    packetsDelivered: 0,
    packetsDuplicated: 0,
    packetsDropped: { loss: 0, partition: 0, killed: 0, unreachable: 0, 'too-large': 0 },
    streamsOpened: 0,
    streamBytesSent: 0,
    streamsFailed: 0,
  };

  constructor(clock: Clock, random: SeededRandom, opts: SimNetworkOptions = {}) {
    this.clock = clock;
    this.random = random;
    this.latencyMinMs = 1;
    this.latencyMaxMs = 5;
    this.setLatency(opts.latencyMinMs ?? 1, opts.latencyMaxMs ?? Math.max(5, opts.latencyMinMs ?? 1));
    this.loss = 0;
    this.duplicate = 0;
    this.setLoss(opts.loss ?? 0);
    this.setDuplicate(opts.duplicate ?? 0);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.streamIdleTimeoutMs = opts.streamIdleTimeoutMs ?? 10_000;
  }

  // ---- configuration and faults ----

  setLatency(minMs: number, maxMs: number): void {
    if (!(Number.isInteger(minMs) && Number.isInteger(maxMs) && minMs >= 0 && maxMs >= minMs)) {
      throw new SimError('ERR_SIM_RANGE', `latency needs integers 0 <= min <= max, got ${minMs}..${maxMs}`);
    }
    this.latencyMinMs = minMs;
    this.latencyMaxMs = maxMs;
  }

  setLoss(p: number): void {
    checkProbability(p);
    this.loss = p;
  }

  setDuplicate(p: number): void {
    checkProbability(p);
    this.duplicate = p;
  }

  /** Extra delay in ms on everything `addr` sends (0 removes it). */
  setSlow(addr: Address, extraMs: number): void {
    if (!(extraMs >= 0)) throw new SimError('ERR_SIM_RANGE', `slowness must be >= 0 ms, got ${extraMs}`);
    if (extraMs === 0) this.slowMs.delete(addressKey(addr));
    else this.slowMs.set(addressKey(addr), extraMs);
  }

  /** Silently drop everything to and from `addr` (a crashed host), until revive(). */
  kill(addr: Address): void {
    this.killed.add(addressKey(addr));
  }

  revive(addr: Address): void {
    this.killed.delete(addressKey(addr));
  }

  isKilled(addr: Address): boolean {
    return this.killed.has(addressKey(addr));
  }

  /**
   * Split the listed addresses into groups that cannot reach each other. Addresses not listed
   * reach everyone. Replaces any previous partition.
   */
  partition(...groupList: Address[][]): void {
    const g = new Map<string, number>();
    groupList.forEach((group, i) => {
      for (const a of group) g.set(addressKey(a), i);
    });
    this.groups = g;
  }

  heal(): void {
    this.groups = new Map();
  }

  /** Whether a datagram from `from` to `to` could arrive right now (loss aside). */
  canReach(from: Address, to: Address): boolean {
    return this.reachKeys(addressKey(from), addressKey(to)) === null;
  }

  // ---- addresses and transports ----

  /** A fresh virtual address: 127.x.y.z:7946, unique in this network. */
  allocateAddress(): Address {
    const n = this.nextHost++;
    if (n >= 0xff_ff_ff) throw new SimError('ERR_SIM_ADDRESS', 'out of simulated addresses');
    return { ip: `127.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`, port: SIM_PORT };
  }

  /** An address that nobody listens on (and never will). */
  deadAddress(): Address {
    return { ip: '127.255.255.254', port: 1 };
  }

  createTransport(addr: Address = this.allocateAddress(), opts: SimTransportOptions = {}): SimTransport {
    const key = addressKey(addr);
    if (this.transports.has(key)) throw new SimError('ERR_SIM_ADDRESS', `address ${key} is already in use`);
    const t = new SimTransport(this, { ip: addr.ip, port: addr.port }, opts.maxStreamBytes ?? MAX_STREAM_BYTES);
    this.transports.set(key, t);
    return t;
  }

  /** @internal called by SimTransport.close(). */
  unregister(t: SimTransport): void {
    const key = addressKey(t.localAddress);
    if (this.transports.get(key) === t) this.transports.delete(key);
  }

  // ---- delivery (internal to this module) ----

  /** One-way delay for something `fromKey` sends: latency sample + the sender's slowness. */
  private delayMs(fromKey: string): number {
    const span = this.latencyMaxMs - this.latencyMinMs;
    const base = span === 0 ? this.latencyMinMs : this.latencyMinMs + this.random.int(span + 1);
    return base + (this.slowMs.get(fromKey) ?? 0);
  }

  /** null when reachable, else the reason a packet would be dropped. */
  private reachKeys(fromKey: string, toKey: string): DropReason | null {
    if (this.killed.has(fromKey) || this.killed.has(toKey)) return 'killed';
    const ga = this.groups.get(fromKey);
    const gb = this.groups.get(toKey);
    if (ga !== undefined && gb !== undefined && ga !== gb) return 'partition';
    return null;
  }

  private after(delayMs: number, fn: () => void): void {
    this.clock.setTimer(this.clock.now() + delayMs, fn);
  }

  /** @internal */
  sendPacket(from: SimTransport, to: Address, bytes: Uint8Array): void {
    const s = this.stats;
    s.packetsSent++;
    s.packetBytesSent += bytes.length;
    const fromKey = addressKey(from.localAddress);
    const toKey = addressKey(to);
    if (bytes.length > MAX_UDP_PACKET) {
      s.packetsDropped['too-large']++;
      return;
    }
    const blocked = this.reachKeys(fromKey, toKey);
    if (blocked !== null) {
      s.packetsDropped[blocked]++;
      return;
    }
    if (this.loss > 0 && this.random.chance(this.loss)) {
      s.packetsDropped.loss++;
      return;
    }
    // Copy: the sender may reuse its buffer once sendPacket returns, as with a real socket.
    const copy = bytes.slice();
    const fromAddr = from.localAddress;
    const copies = this.duplicate > 0 && this.random.chance(this.duplicate) ? 2 : 1;
    if (copies === 2) s.packetsDuplicated++;
    for (let i = 0; i < copies; i++) {
      this.after(this.delayMs(fromKey), () => {
        // Faults that began while the packet was in flight still apply on arrival.
        const late = this.reachKeys(fromKey, toKey);
        if (late !== null) {
          s.packetsDropped[late]++;
          return;
        }
        const target = this.transports.get(toKey);
        if (target === undefined || !target.deliverPacket(fromAddr, i === 0 ? copy : copy.slice())) {
          s.packetsDropped.unreachable++;
          return;
        }
        s.packetsDelivered++;
      });
    }
  }

  /** @internal */
  openStream(
    from: SimTransport,
    to: Address,
    request: Uint8Array,
    timeoutMs: number,
    expectReply: boolean,
    done: (error: string | null, reply: Uint8Array | null) => void,
  ): OutboundStream {
    const s = this.stats;
    s.streamsOpened++;
    s.streamBytesSent += request.length;
    const fromKey = addressKey(from.localAddress);
    const toKey = addressKey(to);
    const stream = new OutboundStream(this.clock, timeoutMs, (error, reply) => {
      if (error !== null) s.streamsFailed++;
      from.forgetStream(stream);
      done(error, reply);
    });
    if (this.reachKeys(fromKey, toKey) !== null) {
      // The SYN is lost: the connect attempt gives up after the connect timeout.
      this.after(this.connectTimeoutMs, () => stream.finish('connection refused', null));
      return stream;
    }
    if (!this.transports.has(toKey)) {
      // Nothing listens: the host answers the SYN with a reset after one round trip.
      this.after(this.delayMs(fromKey) + this.delayMs(toKey), () => stream.finish('connection refused', null));
      return stream;
    }
    const copy = request.slice();
    // SYN, SYN-ACK, then the request: about one and a half round trips before it is all there.
    const arriveMs = this.delayMs(fromKey) + this.delayMs(toKey) + this.delayMs(fromKey);
    const remote: Address = { ip: from.localAddress.ip, port: this.ephemeralPort() };
    this.after(arriveMs, () => {
      if (stream.settled) return;
      if (this.reachKeys(fromKey, toKey) !== null) return; // cut mid-connect: the requester times out
      const target = this.transports.get(toKey);
      if (target === undefined) {
        this.after(this.delayMs(toKey), () => stream.finish('connection refused', null));
        return;
      }
      if (!expectReply) stream.finish(null, null); // the write completed
      target.deliverStream(remote, copy, (reply) => {
        // The responder answered (or closed); the reply travels back.
        if (!expectReply) return;
        this.after(this.delayMs(toKey), () => {
          if (stream.settled) return;
          if (this.reachKeys(toKey, fromKey) !== null) return; // lost on the way: requester times out
          if (reply === null) {
            stream.finish('closed before reply', null);
            return;
          }
          stream.finish(...frameReply(reply));
        });
      });
    });
    return stream;
  }

  private ephemeralPort(): number {
    // Like a kernel's ephemeral range: the core only logs stream peers, so uniqueness is enough.
    const p = 32768 + (this.nextEphemeralPort % 28232);
    this.nextEphemeralPort++;
    return p;
  }
}

/** The requester reads one complete stream message, as node-transport does. */
function frameReply(reply: Uint8Array): [string | null, Uint8Array | null] {
  let len: number | undefined;
  try {
    len = streamFrameLength(reply, MAX_STREAM_BYTES);
  } catch (e) {
    return [`bad reply framing: ${(e as Error).message}`, null];
  }
  if (len === undefined) return ['closed before reply', null];
  return [null, reply.slice(0, len)];
}

function checkProbability(p: number): void {
  if (!(p >= 0 && p <= 1)) throw new SimError('ERR_SIM_RANGE', `probability must be in [0, 1], got ${p}`);
}

/** One outbound stream: settles exactly once, on its outcome or at its timeout. */
export class OutboundStream {
  settled = false;
  private readonly timer: TimerHandle;
  private readonly done: (error: string | null, reply: Uint8Array | null) => void;

  constructor(clock: Clock, timeoutMs: number, done: (error: string | null, reply: Uint8Array | null) => void) {
    this.done = done;
    this.timer = clock.setTimer(clock.now() + Math.max(0, timeoutMs), () => this.finish('timeout', null));
  }

  finish(error: string | null, reply: Uint8Array | null): void {
    if (this.settled) return;
    this.settled = true;
    this.timer.cancel();
    this.done(error, reply);
  }
}

/** Per-node figures (the network keeps the totals). */
export interface SimTransportCounters {
  packetsSent: number;
  packetBytesSent: number;
  packetsReceived: number;
  streamsOpened: number;
  streamsAccepted: number;
}

export class SimTransport implements Transport {
  readonly localAddress: Address;
  readonly maxStreamBytes: number;
  readonly counters: SimTransportCounters = {
    packetsSent: 0,
    packetBytesSent: 0,
    packetsReceived: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
  };
  private readonly network: SimNetwork;
  private handlers: TransportHandlers | null = null;
  private closed = false;
  private readonly outbound = new Set<OutboundStream>();
  /** Inbound streams not answered yet: closing the transport closes them (the peer hears at once). */
  private readonly inbound = new Set<() => void>();

  constructor(network: SimNetwork, localAddress: Address, maxStreamBytes: number) {
    this.network = network;
    this.localAddress = localAddress;
    this.maxStreamBytes = maxStreamBytes;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  setHandlers(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }

  sendPacket(to: Address, bytes: Uint8Array): void {
    if (this.closed) return;
    this.counters.packetsSent++;
    this.counters.packetBytesSent += bytes.length;
    this.network.sendPacket(this, to, bytes);
  }

  openStream(
    to: Address,
    request: Uint8Array,
    timeoutMs: number,
    expectReply: boolean,
    done: (error: string | null, reply: Uint8Array | null) => void,
  ): void {
    if (this.closed) {
      this.network.clock.setTimer(this.network.clock.now(), () => done('transport closed', null));
      return;
    }
    this.counters.streamsOpened++;
    const s = this.network.openStream(this, to, request, timeoutMs, expectReply, done);
    if (!s.settled) this.outbound.add(s);
  }

  close(done?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.network.unregister(this);
      // Open streams are destroyed with the transport; their owners hear about it (asynchronously).
      const open = [...this.outbound];
      this.outbound.clear();
      const unanswered = [...this.inbound];
      this.inbound.clear();
      for (const closeInbound of unanswered) closeInbound();
      if (open.length > 0) {
        this.network.clock.setTimer(this.network.clock.now(), () => {
          for (const s of open) s.finish('transport closed', null);
        });
      }
    }
    if (done) this.network.clock.setTimer(this.network.clock.now(), done);
  }

  /** @internal */
  forgetStream(s: OutboundStream): void {
    this.outbound.delete(s);
  }

  /** @internal returns false when nobody is listening any more. */
  deliverPacket(from: Address, bytes: Uint8Array): boolean {
    if (this.closed || this.handlers === null) return false;
    this.counters.packetsReceived++;
    if (bytes.length === 0) {
      this.handlers.dropped?.('udp-empty', from, 'empty datagram');
      return true;
    }
    this.handlers.packet(from, bytes);
    return true;
  }

  /**
   * @internal An inbound stream whose bytes have all arrived. Frames the request exactly like
   * node-transport (first complete stream message, size-capped), then hands it to the handler.
   * `respond` is called at most once: the reply bytes, or null for a close without reply.
   */
  deliverStream(from: Address, bytes: Uint8Array, respond: (reply: Uint8Array | null) => void): void {
    const handlers = this.handlers;
    if (this.closed || handlers === null) {
      respond(null);
      return;
    }
    let len: number | undefined;
    try {
      len = streamFrameLength(bytes, this.maxStreamBytes);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // Same reason keys as node-transport, so counters read the same in both worlds.
      if (code === 'ERR_WIRE_TOO_LARGE') handlers.dropped?.('stream-too-large', from, (e as Error).message);
      else handlers.dropped?.('stream-malformed', from, `${code ?? 'error'}: ${(e as Error).message}`);
      respond(null);
      return;
    }
    // The real transport stops buffering at maxStreamBytes whatever the framer says.
    if ((len ?? bytes.length) > this.maxStreamBytes) {
      handlers.dropped?.('stream-too-large', from, `stream message above ${this.maxStreamBytes} bytes`);
      respond(null);
      return;
    }
    const clock = this.network.clock;
    if (len === undefined) {
      // The sender wrote everything it had and the message is still incomplete: node-transport
      // sees the peer's FIN mid-message and reports it truncated.
      handlers.dropped?.('stream-truncated', from, `peer closed after ${bytes.length} bytes`);
      respond(null);
      return;
    }
    this.counters.streamsAccepted++;
    let answered = false;
    const closeUnanswered = (): void => {
      if (answered) return;
      answered = true;
      idle.cancel();
      respond(null);
    };
    // The idle timeout also closes a stream whose handler never replies.
    const idle = clock.setTimer(clock.now() + this.network.streamIdleTimeoutMs, () => {
      this.inbound.delete(closeUnanswered);
      if (!answered) handlers.dropped?.('stream-reply-timeout', from, `no reply within ${this.network.streamIdleTimeoutMs} ms`);
      closeUnanswered();
    });
    this.inbound.add(closeUnanswered);
    const reply: StreamReply = (out) => {
      if (answered) return;
      answered = true;
      idle.cancel();
      this.inbound.delete(closeUnanswered);
      // A reply written after close() goes nowhere (close() already answered with a close).
      respond(out === null ? null : out.slice());
    };
    handlers.stream(from, len === bytes.length ? bytes : bytes.slice(0, len), reply);
  }
}
