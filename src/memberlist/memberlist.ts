// The membership core: SWIM + Lifeguard as memberlist 0.2.2 does it, sans-I/O.
//
// This file ties the pieces together and does the byte work at the edges: decoding inbound
// packets and streams through the wire layer, dispatching each message to the node state
// machine (nodes.ts), the probe cycle (probe.ts), gossip (gossip.ts) or push/pull
// (pushpull.ts), and sealing what they want sent into Output records. All waiting is a TimerSet
// entry; all randomness comes from the Random we are handed, so a run is reproducible.

import type {
  Counters,
  Delegate,
  MemberEvent,
  MembershipCore,
  NodeInfo,
  Output,
  Random,
} from './api.ts';
import { Awareness } from './awareness.ts';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, type MemberlistConfig } from './config.ts';
import { MemberlistError } from './errors.ts';
import { isSerfNews, MAX_SKIPPED_SOURCES, SeenNews } from './eager.ts';
import { collectBroadcasts, gossipRound, isGossipTarget } from './gossip.ts';
import { NodeStates, snapshot } from './nodes.ts';
import { Prober, type StreamHandlers } from './probe.ts';
import { encodeLocalState, mergeState, pushPullScaleMs, verifyProtocol } from './pushpull.ts';
import { TransmitLimitedQueue } from './queue.ts';
import { isDeadOrLeft, NodeTable } from './table.ts';
import { TimerSet, type TimerHandle } from './timers.ts';
import { bytesToIp } from '../wire/addr.ts';
import { COMPOUND_HEADER_OVERHEAD, COMPOUND_PART_OVERHEAD, ENCRYPT_OVERHEAD, META_MAX_SIZE } from '../wire/limits.ts';
import { encodeMessage, shareEncoded } from '../wire/messages.ts';
import { decodePacket, encodePacket, type SealOptions } from '../wire/packet.ts';
import { decodeStream, encodeStream } from '../wire/stream.ts';
import { MessageType, type Address, type Message, type PushPullMsg, type Vsn } from '../wire/types.ts';

/** Streams we have open at once; more are refused (they fail at once). */
export const MAX_OPEN_STREAMS = 256;
/** Events kept for the driver before the oldest are dropped (it drains after every call). */
export const MAX_PENDING_EVENTS = 65_536;
/** hasCrc header: type byte + CRC-32. */
const CRC_HEADER_BYTES = 5;
/** forgottenBy: at most one newer alive per this many probe intervals. */
const FORGOTTEN_HOLD_PROBES = 5;
/** Extra wait beyond a stream's own timeout before the core gives up on the driver's answer. */
const STREAM_GRACE_MS = 1000;

interface OpenStream {
  h: StreamHandlers;
  timer: TimerHandle;
}

/** What one push/pull merge brought to life (announceRevivals). */
interface Revived {
  /** Members whose join was emitted (they were dead, left or unknown to us)… */
  names: string[];
  /** …and the alive each queued, encoded. */
  alives: Uint8Array[];
}

interface PendingJoin {
  pending: number;
  joined: number;
  errors: string[];
}

function wireReason(e: unknown, prefix: 'packet' | 'stream'): string {
  const code = (e as { code?: unknown }).code;
  if (code === 'ERR_WIRE_DECRYPT' || code === 'ERR_WIRE_NOT_ENCRYPTED') return `${prefix}-decrypt`;
  if (code === 'ERR_WIRE_CRC') return `${prefix}-crc`;
  return `${prefix}-decode`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Scratch for mergeRemote: the table slots of a remote list's nodes, grown to the largest list.
 * One per process, not per node (a merge runs to its end before another starts): a simulator of
 * 10,000 nodes would otherwise keep 40 KB of it on each.
 */
let mergeSlots = new Int32Array(0);

export class Memberlist implements MembershipCore {
  readonly table: NodeTable;
  readonly states: NodeStates;
  readonly awareness: Awareness;
  readonly timers = new TimerSet();
  readonly prober: Prober;
  private readonly queue: TransmitLimitedQueue;

  private readonly outputs: Output[] = [];
  private outHead = 0;
  private readonly events: MemberEvent[] = [];
  private evHead = 0;
  private readonly stats: Record<string, number> = Object.create(null) as Record<string, number>;

  private readonly streams = new Map<number, OpenStream>();
  private nextStreamId = 1;
  private readonly joins = new Map<number, PendingJoin>();
  private nextJoinId = 1;

  private started = false;
  private isShutdown = false;
  private leaving = false;
  /** When announceNewer last sent a newer alive of ours (forgottenBy). */
  private forgottenAnnouncedMs = -Infinity;
  private leaveDone = false;
  private leaveTimer: TimerHandle | undefined;
  private pushPullTicker: { restart(atMs: number): void } | undefined;
  private lastNow = 0;

  // Eager forwarding (eager.ts): the pending round, when the last one sent, whom to skip.
  private eagerTimer: TimerHandle | undefined;
  private lastEagerMs = -Infinity;
  private readonly eagerSkip: Address[] = [];
  /** Source of the packet being handled: it has the news it sent us, no need to send it back. */
  private inboundFrom: Address | undefined;
  /**
   * While a packet is handled or a push/pull merged: the members it brought (back) to life and
   * their alives, as queued (announceRevivals); null until the first. The alive queued last is
   * kept to pair it with the join event that follows it.
   */
  private collectingRevivals = false;
  private revived: Revived | null = null;
  private lastAliveKey: string | undefined;
  private lastAliveBytes: Uint8Array | undefined;
  private readonly seenNews = new SeenNews();

  constructor(
    readonly config: MemberlistConfig,
    readonly delegate: Delegate | null,
    readonly random: Random,
  ) {
    this.table = new NodeTable(random);
    this.awareness = new Awareness(config.awarenessMaxMultiplier);
    this.queue = new TransmitLimitedQueue(config.retransmitMult, () => this.table.size);
    this.states = new NodeStates({
      config,
      table: this.table,
      awareness: this.awareness,
      timers: this.timers,
      hasLeft: () => this.leaving,
      broadcast: (key, msg, finished) => this.broadcast(key, msg, finished),
      emit: (e) => this.emit(e),
      drop: (reason, detail, from) => this.drop(reason, detail, from),
      count: (key, by) => this.count(key, by),
    });
    this.prober = new Prober({
      config,
      table: this.table,
      states: this.states,
      awareness: this.awareness,
      timers: this.timers,
      random,
      delegate,
      sendMsg: (to, msg, node) => this.sendMsg(to, msg, node),
      sendRaw: (to, msgs, node) => this.sendParts(to, msgs.map(encodeMessage), node),
      openStream: (to, msg, timeoutMs, now, h) => this.openStream(to, msg, timeoutMs, now, h),
      drop: (reason, detail, from) => this.drop(reason, detail, from),
      count: (key, by) => this.count(key, by),
    });
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  start(now: number): void {
    if (this.started || this.isShutdown) return;
    this.started = true;
    this.lastNow = now;
    const c = this.config;
    this.states.aliveNode(
      { incarnation: this.states.nextIncarnation(), node: c.name, addr: c.advertise, meta: this.readMeta(), vsn: this.vsn() },
      now,
      true,
    );
    // Periodic tasks start after a random stagger so nodes started together do not beat in step.
    this.every(c.probeIntervalMs, now, () => c.probeIntervalMs, (t) => this.prober.tick(t));
    if (c.gossipNodes > 0) this.every(c.gossipIntervalMs, now, () => c.gossipIntervalMs, () => this.gossip());
    this.pushPullTicker = this.every(
      c.pushPullIntervalMs,
      now,
      () => pushPullScaleMs(c.pushPullIntervalMs, this.table.size),
      (t) => this.periodicPushPull(t),
    );
  }

  /**
   * For simulators that build a cluster in its settled state (see discardBroadcasts): move the
   * next periodic push/pull to a random point of its scaled interval, as in a cluster that has
   * run for a while. Nodes started together otherwise all make their first push/pull within one
   * unscaled PushPullInterval (30 s), 10,000 full-table exchanges at N = 10,000, then settle to
   * N per scaled interval (300 s there).
   */
  spreadPushPull(now: number): void {
    const span = pushPullScaleMs(this.config.pushPullIntervalMs, this.table.size);
    this.pushPullTicker?.restart(now + 1 + this.random.int(Math.max(1, Math.floor(span))));
  }

  /**
   * Drop every queued broadcast, as if each had gone out its retransmit limit. For simulators
   * that build a large cluster directly in its settled state (full tables, drained queues)
   * instead of replaying the N² gossip storm of N joins to get there. Returns how many.
   */
  discardBroadcasts(): number {
    const n = this.queue.length;
    this.queue.reset();
    return n;
  }

  shutdown(): void {
    this.isShutdown = true;
    this.eagerTimer = undefined;
    this.timers.clear();
    this.states.clear();
    this.prober.clear();
    this.queue.reset();
    this.streams.clear();
    this.outputs.length = 0;
    this.outHead = 0;
  }

  private every(intervalMs: number, now: number, next: () => number, fn: (now: number) => void): { restart(atMs: number): void } | undefined {
    if (!(intervalMs > 0)) return undefined;
    let handle: TimerHandle;
    const run = (t: number): void => {
      fn(t);
      if (!this.isShutdown) handle = this.timers.at(t + next(), run);
    };
    handle = this.timers.at(now + this.random.int(Math.floor(intervalMs)), run);
    return {
      restart: (atMs) => {
        handle.cancel();
        if (!this.isShutdown) handle = this.timers.at(atMs, run);
      },
    };
  }

  private vsn(): Vsn {
    const d = this.config.delegateVersions;
    return [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX, this.config.protocolVersion, d.min, d.max, d.cur];
  }

  private readMeta(): Uint8Array {
    const meta = this.delegate?.nodeMeta(META_MAX_SIZE) ?? new Uint8Array(0);
    if (meta.length > META_MAX_SIZE) {
      throw new MemberlistError(
        'ERR_MEMBERLIST_META_TOO_LARGE',
        `node meta is ${meta.length} bytes, the limit is ${META_MAX_SIZE}`,
      );
    }
    return meta;
  }

  private advance(now: number): number {
    // Time must not go backwards; a driver bug must not make us schedule into the past.
    if (now > this.lastNow) this.lastNow = now;
    return this.lastNow;
  }

  // ---- poll ---------------------------------------------------------------------------------

  pollOutput(): Output | undefined {
    if (this.outHead >= this.outputs.length) {
      if (this.outputs.length > 0) {
        this.outputs.length = 0;
        this.outHead = 0;
      }
      return undefined;
    }
    const o = this.outputs[this.outHead]!;
    this.outputs[this.outHead++] = undefined as unknown as Output;
    return o;
  }

  pollEvent(): MemberEvent | undefined {
    if (this.evHead >= this.events.length) {
      if (this.events.length > 0) {
        this.events.length = 0;
        this.evHead = 0;
      }
      return undefined;
    }
    const e = this.events[this.evHead]!;
    this.events[this.evHead++] = undefined as unknown as MemberEvent;
    return e;
  }

  pollTimeout(): number | undefined {
    if (this.isShutdown) return undefined;
    return this.timers.next();
  }

  handleTimeout(now: number): void {
    if (this.isShutdown) return;
    this.timers.runDue(this.advance(now));
  }

  private emit(e: MemberEvent): void {
    if (e.type === 'join' && this.collectingRevivals && this.lastAliveKey === e.node.name && this.lastAliveBytes !== undefined) {
      const r = (this.revived ??= { names: [], alives: [] });
      r.names.push(e.node.name);
      r.alives.push(this.lastAliveBytes);
    }
    if (this.events.length - this.evHead >= MAX_PENDING_EVENTS) {
      this.evHead++;
      this.count('events-overflow');
    }
    this.events.push(e);
  }

  private push(o: Output): void {
    if (this.isShutdown) return;
    this.outputs.push(o);
  }

  private count(key: string, by = 1): void {
    this.stats[key] = (this.stats[key] ?? 0) + by;
  }

  private drop(reason: string, detail: string, from?: Address): void {
    this.count(reason);
    this.count('dropped');
    this.emit({ type: 'dropped', reason, from, detail });
  }

  // ---- sending ------------------------------------------------------------------------------

  private encrypting(): boolean {
    const k = this.config.keyring;
    return k !== null && this.config.gossipVerifyOutgoing && k.keys().length > 0;
  }

  private seal(): SealOptions {
    return { compress: this.config.enableCompression, keyring: this.encrypting() ? this.config.keyring : null, randomBytes: this.randomBytes };
  }

  /** For seal (made once: a closure per packet sent shows at fleet size). */
  private readonly randomBytes = (n: number): Uint8Array => this.random.bytes(n);

  private broadcast(key: string, msg: Message, finished?: () => void): void {
    const bytes = shareEncoded(encodeMessage(msg));
    if (this.collectingRevivals && msg.type === 'alive') {
      this.lastAliveKey = key;
      this.lastAliveBytes = bytes;
    }
    this.queue.queue({ key, msg: bytes, finished: finished === undefined ? undefined : () => finished() });
    const own = key === this.config.name;
    // News about ourselves in a small cluster: straight to every live peer (the queue still
    // spreads it, in case a packet is lost). No eager round then: everyone has been told.
    if (own && this.announceToAll(bytes)) return;
    // The state machine queues only news that is fresh to us (nodes.ts): forward it eagerly.
    // News about ourselves (a refutation, new meta, our leave) is ours: its trigger's sender
    // (an accuser) has not heard it yet.
    this.scheduleEager(this.lastNow, !own);
  }

  /**
   * Send `msg` (news about ourselves) to every live peer, if there are at most ownNewsDirectMax
   * of them (eager.ts). Returns false, sending nothing, when the cluster is larger or it is off.
   */
  private announceToAll(msg: Uint8Array): boolean {
    const peers = this.directPeers();
    if (peers === undefined || peers.length === 0) return false;
    for (const n of peers) this.sendParts(n.addr, [msg], n);
    this.count('own-news-direct', peers.length);
    return true;
  }

  /**
   * Members a push/pull brought (back) to life — dead, left or unknown to us before it: in a
   * small cluster, straight to every other live peer (at most ownNewsDirectMax of them), packed
   * into as few datagrams as fit, besides the queue. This is how a healed partition's news
   * crosses: each side learns the other from heal joins (push/pull), and only kodama nodes
   * heal-ping; a Serf peer hears of the other side from the merging nodes' gossip alone, whose
   * retransmit budget below 10 nodes (retransmitMult × 1 sends per node) missed it in ~2 % of
   * seeded 7-node heals, leaving it to Serf's reconnect timer or push/pull, every 30 s
   * (test/serf/heal-sim.test.ts). The partner of the push/pull and the revived members
   * themselves are skipped: they told us.
   */
  private endRevivals(partner: Address): void {
    this.collectingRevivals = false;
    this.lastAliveKey = undefined;
    this.lastAliveBytes = undefined;
    const revived = this.revived;
    if (revived === null) return;
    this.revived = null;
    this.announceRevivals(revived, partner);
  }

  private announceRevivals(revived: Revived, partner: Address): void {
    const peers = this.directPeers((n) => (n.addr.ip === partner.ip && n.addr.port === partner.port) || revived.names.includes(n.name));
    if (peers === undefined) return;
    for (const n of peers) {
      const limit = this.budgetBytes(n, 0);
      let parts: Uint8Array[] = [];
      let used = 0;
      for (const m of revived.alives) {
        if (parts.length > 0 && used + m.length + COMPOUND_PART_OVERHEAD > limit) {
          this.sendParts(n.addr, parts, n);
          parts = [];
          used = 0;
        }
        parts.push(m);
        used += m.length + COMPOUND_PART_OVERHEAD;
      }
      this.sendParts(n.addr, parts, n);
    }
    this.count('revived-direct', peers.length);
  }

  /**
   * The live peers (alive or suspect, not `skip`ped) to tell directly, or undefined when direct
   * sends are off or there are more than ownNewsDirectMax of them (eager.ts).
   */
  private directPeers(skip?: (n: NodeInfo) => boolean): NodeInfo[] | undefined {
    const c = this.config;
    if (c.eagerGossipNodes <= 0 || !(c.ownNewsDirectMax > 0) || !this.started || this.isShutdown) return undefined;
    const peers: NodeInfo[] = [];
    for (const n of this.table.all()) {
      if (n.name === c.name || (n.state !== 'alive' && n.state !== 'suspect') || skip?.(n) === true) continue;
      if (peers.length === c.ownNewsDirectMax) return undefined;
      peers.push(n);
    }
    return peers;
  }

  /** CRC only for peers that understand it (memberlist protocol 5). */
  private wantsCrc(peer: NodeInfo | undefined): boolean {
    return peer !== undefined && (peer.vsn[1] ?? 0) >= 5;
  }

  /**
   * Room for piggybacked parts in one datagram to `peer`. Unlike memberlist (which forgets the
   * first part's length prefix and the CRC header, overshooting by up to 7 bytes) the whole
   * datagram stays within udpBufferSize.
   */
  private budgetBytes(peer: NodeInfo | undefined, used: number): number {
    let avail = this.config.udpBufferSize - COMPOUND_HEADER_OVERHEAD - used;
    if (this.wantsCrc(peer)) avail -= CRC_HEADER_BYTES;
    if (this.encrypting()) avail -= ENCRYPT_OVERHEAD;
    return avail;
  }

  /** One message plus whatever broadcasts fit beside it. */
  private sendMsg(to: Address, msg: Message, node?: NodeInfo): void {
    const bytes = encodeMessage(msg);
    const peer = node ?? this.table.getByAddr(to);
    const avail = this.budgetBytes(peer, bytes.length + COMPOUND_PART_OVERHEAD);
    const extra = avail > 0 ? collectBroadcasts(this.queue, this.delegate, COMPOUND_PART_OVERHEAD, avail) : [];
    this.sendParts(to, [bytes, ...extra], peer);
  }

  private sendParts(to: Address, parts: Uint8Array[], node?: NodeInfo): void {
    if (this.isShutdown || parts.length === 0) return;
    const crc = this.wantsCrc(node ?? this.table.getByAddr(to));
    let bytes: Uint8Array;
    try {
      bytes = encodePacket(parts, { ...this.seal(), crc });
    } catch (e) {
      this.drop('send-encode', errText(e), to);
      return;
    }
    this.count('packets-out');
    this.count('bytes-out', bytes.length);
    this.push({ kind: 'packet', to: { ip: to.ip, port: to.port }, bytes });
  }

  /** `msg`: a message, or one already encoded (a push/pull from localState). */
  private openStream(to: Address, msg: Message | Uint8Array, timeoutMs: number, now: number, h: StreamHandlers): void {
    if (this.streams.size >= MAX_OPEN_STREAMS) {
      this.count('streams-refused');
      h.fail(`too many open streams (${MAX_OPEN_STREAMS})`, now);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeStream(msg instanceof Uint8Array ? msg : encodeMessage(msg), this.seal());
    } catch (e) {
      h.fail(`encode: ${errText(e)}`, now);
      return;
    }
    const id = this.nextStreamId++;
    // Safety net: the driver owns stream timeouts, but a lost callback must not leak the entry.
    const timer = this.timers.at(now + timeoutMs + STREAM_GRACE_MS, (t) => {
      if (this.streams.delete(id)) h.fail('i/o timeout', t);
    });
    this.streams.set(id, { h, timer });
    this.count('streams-out');
    this.push({ kind: 'stream-open', id, to: { ip: to.ip, port: to.port }, bytes, timeoutMs, expectReply: true });
  }

  private streamReply(id: number, msg: Message | Uint8Array): void {
    try {
      this.push({ kind: 'stream-reply', id, bytes: encodeStream(msg instanceof Uint8Array ? msg : encodeMessage(msg), this.seal()) });
    } catch (e) {
      this.drop('send-encode', errText(e));
      this.push({ kind: 'stream-close', id });
    }
  }

  // ---- gossip and push/pull -----------------------------------------------------------------

  /**
   * Ask for one eager round (eager.ts): at `now`, or once the previous one is far enough back;
   * triggers before it runs join it. The source of the packet being handled is skipped.
   */
  private scheduleEager(now: number, skipSource = true): void {
    if (this.config.eagerGossipNodes <= 0 || !this.started || this.isShutdown) return;
    const from = this.inboundFrom;
    if (skipSource && from !== undefined && this.eagerSkip.length < MAX_SKIPPED_SOURCES) {
      if (!this.eagerSkip.some((a) => a.ip === from.ip && a.port === from.port)) this.eagerSkip.push(from);
    }
    if (this.eagerTimer !== undefined) return;
    const at = Math.max(now, this.lastEagerMs + this.config.gossipIntervalMs);
    this.eagerTimer = this.timers.at(at, (t) => this.eagerRound(t));
  }

  /** A gossip round to eagerGossipNodes live peers, now: the queues pick what goes, as at a tick. */
  private eagerRound(now: number): void {
    this.eagerTimer = undefined;
    const c = this.config;
    const skip = this.eagerSkip.splice(0);
    const sent = gossipRound({
      gossipNodes: c.eagerGossipNodes,
      // Live peers only: telling the recently dead can wait for the ticks.
      pickTargets: (k) =>
        this.table.kRandom(
          k,
          (n) =>
            n.name === c.name ||
            (n.state !== 'alive' && n.state !== 'suspect') ||
            skip.some((a) => a.ip === n.addr.ip && a.port === n.addr.port),
        ),
      budgetBytes: (node) => this.budgetBytes(node, 0),
      take: (overhead, limit) => {
        const parts = collectBroadcasts(this.queue, this.delegate, overhead, limit);
        // What we forward we have seen: its echo must not trigger another round.
        for (const p of parts) if (p[0] === MessageType.user && isSerfNews(p.subarray(1))) this.seenNews.add(p.subarray(1));
        return parts;
      },
      send: (node, parts) => this.sendParts(node.addr, parts, node),
    });
    if (sent === 0) return;
    this.lastEagerMs = now;
    this.count('eager-rounds');
    this.count('eager-packets', sent);
  }

  /** Serf news arrived in a user message: the first time we see it, forward it eagerly. */
  private userNews(payload: Uint8Array, now: number): void {
    if (this.config.eagerGossipNodes > 0 && isSerfNews(payload) && this.seenNews.add(payload)) {
      this.count('eager-serf-news');
      this.scheduleEager(now);
    }
  }

  private gossip(): void {
    // Idle (nothing queued here or in the delegate): no targets to draw, nothing to send.
    if (this.queue.length === 0 && (this.delegate === null || this.delegate.hasBroadcasts?.() === false)) return;
    const c = this.config;
    const now = this.lastNow;
    gossipRound({
      gossipNodes: c.gossipNodes,
      pickTargets: (k) => this.table.kRandom(k, (n) => !isGossipTarget(n, c.name, now, c.gossipToTheDeadMs)),
      budgetBytes: (node) => this.budgetBytes(node, 0),
      take: (overhead, limit) => collectBroadcasts(this.queue, this.delegate, overhead, limit),
      send: (node, parts) => this.sendParts(node.addr, parts, node),
    });
  }

  /** Our push/pull message, encoded (straight from the table: no object per member). */
  private localState(join: boolean): Uint8Array {
    const user = this.delegate?.localState(join) ?? new Uint8Array(0);
    return encodeLocalState(this.table, join, user);
  }

  /** Verify and merge a remote state; returns an error text or null. */
  private mergeRemote(msg: PushPullMsg, from: Address, now: number): string | null {
    const err = verifyProtocol(msg.nodes, this.table);
    if (err !== null) {
      this.drop('pushpull-incompatible', err, from);
      return err;
    }
    // One pass over the remote list: how much of it is new to us (room is made for exactly
    // that, instead of growing the table step by step through the merge), and whether it lists us.
    // The slot of each listed node (-1: not listed here) is kept for the merge, which then
    // looks nothing up again: at fleet size a push/pull is thousands of entries, nearly all known.
    const self = this.config.name;
    const nodes = msg.nodes;
    if (nodes.length > mergeSlots.length) mergeSlots = new Int32Array(nodes.length);
    const slots = mergeSlots;
    let known = 0;
    let listsUs = false;
    for (let i = 0; i < nodes.length; i++) {
      const name = nodes[i]!.name;
      const slot = this.table.slotFor(name);
      slots[i] = slot;
      if (name === self) listsUs = true;
      else if (slot >= 0) known++;
    }
    this.table.reserve(this.table.size + nodes.length - known - (listsUs ? 1 : 0));
    const forgotten = !listsUs && this.forgottenBy(nodes.length, known, now);
    this.collectingRevivals = true;
    try {
      mergeState(this.states, this.config.name, nodes, slots, now, (name, detail) =>
        this.drop('pushpull-bad-node', `${name}: ${detail}`, from),
      );
    } finally {
      this.endRevivals(from);
    }
    if (msg.userState.length > 0) this.delegate?.mergeRemoteState(msg.userState, msg.join, now);
    if (forgotten) this.announceNewer(now);
    return null;
  }

  /**
   * A remote state that does not list us, with `listed` members of which we knew `known`: does
   * it say its sender has forgotten us? Yes when it lists members we already knew
   * (so we share a cluster; a fresh joiner, or a node of another cluster being merged, knows none
   * of them) but not us: the sender declared us dead and purged us (gossipToTheDead), as a long
   * partition does. It then takes our unchanged alive as news of a new node, but a member that
   * has not purged us yet — a Serf node especially: it has no heal pings — finds it stale (not
   * newer than the death it holds) and keeps us failed until its reconnect timer or a push/pull
   * with us, 30 s and more. So we answer with a newer alive (announceNewer), as memberlist would
   * have refuted had the sender still listed us dead. At most once per FORGOTTEN_HOLD_PROBES
   * probe intervals, however many peers answer so.
   */
  private forgottenBy(listed: number, known: number, now: number): boolean {
    if (this.leaving || listed < 2 || now - this.forgottenAnnouncedMs < FORGOTTEN_HOLD_PROBES * this.config.probeIntervalMs) return false;
    return known > 0;
  }

  /** Announce ourselves with a newer incarnation (see forgottenBy). */
  private announceNewer(now: number): void {
    const me = this.table.get(this.config.name);
    if (me === undefined) return;
    this.forgottenAnnouncedMs = now;
    this.count('forgotten-announces');
    this.states.aliveNode({ incarnation: this.states.nextIncarnation(), node: me.name, addr: me.addr, meta: me.meta, vsn: this.vsn() }, now, true);
  }

  /** Push/pull with `to`; `done(error)` with null on success. */
  private pushPull(to: Address, join: boolean, now: number, done: (error: string | null) => void): void {
    this.openStream(to, this.localState(join), this.config.tcpTimeoutMs, now, {
      reply: (msg, t) => {
        if (msg.type === 'err') return done(`remote error: ${msg.error}`);
        if (msg.type !== 'pushPull') return done(`unexpected reply type ${msg.type}`);
        let err: string | null;
        try {
          err = this.mergeRemote(msg, to, t);
        } catch (e) {
          // e.g. the delegate refused the remote state; the join must still complete.
          err = `merge failed: ${errText(e)}`;
        }
        done(err);
      },
      fail: (reason) => done(reason),
    });
  }

  private periodicPushPull(now: number): void {
    const c = this.config;
    const [peer] = this.table.kRandom(1, (n) => n.name === c.name || n.state !== 'alive');
    if (peer === undefined) return;
    this.count('pushpull-periodic');
    this.pushPull(peer.addr, false, now, (err) => {
      if (err !== null) this.drop('pushpull-failed', `push/pull with ${peer.name} failed: ${err}`, peer.addr);
    });
  }

  // ---- commands -----------------------------------------------------------------------------

  join(seeds: Address[], now: number): number {
    const joinId = this.nextJoinId++;
    const t = this.advance(now);
    const state: PendingJoin = { pending: seeds.length, joined: 0, errors: [] };
    const finish = (): void => {
      this.joins.delete(joinId);
      this.emit({ type: 'join-complete', joinId, joined: state.joined, errors: state.errors });
    };
    if (!this.started || this.isShutdown || seeds.length === 0) {
      if (!this.started || this.isShutdown) state.errors.push('memberlist is not running');
      finish();
      return joinId;
    }
    this.joins.set(joinId, state);
    for (const seed of seeds) {
      const to = { ip: seed.ip, port: seed.port };
      this.pushPull(to, true, t, (err) => {
        if (err === null) state.joined++;
        else state.errors.push(`Failed to join ${to.ip}:${to.port}: ${err}`);
        if (--state.pending === 0) finish();
      });
    }
    return joinId;
  }

  leave(now: number, timeoutMs: number): void {
    const t = this.advance(now);
    if (this.leaving || !this.started || this.isShutdown) {
      this.emit({ type: 'leave-complete', timedOut: false });
      return;
    }
    this.leaving = true;
    const me = this.table.get(this.config.name);
    const complete = (timedOut: boolean): void => {
      if (this.leaveDone) return;
      this.leaveDone = true;
      this.leaveTimer?.cancel();
      this.emit({ type: 'leave-complete', timedOut });
    };
    if (me === undefined) return complete(false);
    this.states.deadNode({ incarnation: me.incarnation, node: me.name, from: me.name }, t, () => complete(false));
    // Nobody to tell: done at once (memberlist anyAlive()).
    const anyAlive = this.table.all().some((n) => n.name !== this.config.name && !isDeadOrLeft(n));
    if (!anyAlive) return complete(false);
    if (timeoutMs > 0 && !this.leaveDone) this.leaveTimer = this.timers.at(t + timeoutMs, () => complete(true));
  }

  updateMeta(now: number): void {
    if (!this.started || this.isShutdown) return;
    const t = this.advance(now);
    const me = this.table.get(this.config.name);
    if (me === undefined) return;
    this.states.aliveNode(
      { incarnation: this.states.nextIncarnation(), node: me.name, addr: me.addr, meta: this.readMeta(), vsn: this.vsn() },
      t,
      true,
    );
  }

  sendUserPacket(to: Address, payload: Uint8Array): void {
    this.sendParts(to, [encodeMessage({ type: 'user', payload })]);
  }

  pingNode(node: string, to: Address, now: number): void {
    if (!this.started || this.isShutdown || this.leaving) return;
    this.count('pings-to-failed');
    const addr = { ip: to.ip, port: to.port };
    this.prober.pingOnce(node, addr, this.advance(now), (rttMs) => {
      this.count('pings-to-failed-answered');
      this.emit({ type: 'ping-reply', name: node, addr, rttMs });
    });
  }

  // ---- inbound ------------------------------------------------------------------------------

  handlePacket(from: Address, bytes: Uint8Array, now: number): void {
    if (this.isShutdown || !this.started) return;
    const t = this.advance(now);
    this.count('packets-in');
    this.count('bytes-in', bytes.length);
    let decoded: ReturnType<typeof decodePacket>;
    try {
      decoded = decodePacket(bytes, { keyring: this.config.keyring, verifyIncoming: this.config.gossipVerifyIncoming });
    } catch (e) {
      this.drop(wireReason(e, 'packet'), errText(e), from);
      return;
    }
    for (const e of decoded.errors) this.drop('message-decode', errText(e), from);
    this.inboundFrom = from;
    this.collectingRevivals = true;
    try {
      for (const msg of decoded.messages) {
        try {
          this.handleMessage(msg, from, t);
        } catch (e) {
          // A message that passed decoding but broke a handler (or the delegate) is dropped like
          // any bad input: one peer's odd message must not take the node down.
          this.drop('message-handler', `${msg.type}: ${errText(e)}`, from);
        }
      }
    } finally {
      this.inboundFrom = undefined;
      this.endRevivals(from);
    }
  }

  private handleMessage(msg: Message, from: Address, now: number): void {
    const c = this.config;
    switch (msg.type) {
      case 'ping': {
        if (msg.node !== '' && msg.node !== c.name) {
          this.drop('ping-wrong-node', `ping for ${msg.node}, we are ${c.name}`, from);
          return;
        }
        let to = from;
        if (msg.sourceAddr !== undefined && msg.sourceAddr.length > 0 && (msg.sourcePort ?? 0) > 0) {
          try {
            to = { ip: bytesToIp(msg.sourceAddr), port: msg.sourcePort ?? 0 };
          } catch (e) {
            this.drop('ping-bad-source', errText(e), from);
            return;
          }
        }
        this.sendMsg(to, { type: 'ack', seqNo: msg.seqNo, payload: this.delegate?.ackPayload() ?? null });
        return;
      }
      case 'indirectPing':
        return this.prober.serveIndirect(msg, from, now);
      case 'ack':
        return this.prober.handleAck(msg.seqNo, msg.payload, from, now);
      case 'nack':
        return this.prober.handleNack(msg.seqNo, from);
      case 'suspect':
        return this.states.suspectNode(msg, now);
      case 'dead':
        return this.states.deadNode(msg, now);
      case 'alive': {
        const port = msg.port === 0 ? c.advertise.port : msg.port;
        // Most alives a node receives are news it has (each is gossiped to every node many
        // times over): known at this address, not newer — counted as aliveNode would count it,
        // without parsing the address.
        if (this.states.staleAlive(this.table.slotFor(msg.node), msg.node, msg.incarnation, msg.addr, port, msg.vsn)) return;
        let ip: string;
        try {
          ip = bytesToIp(msg.addr);
        } catch (e) {
          this.drop('alive-bad-addr', errText(e), from);
          return;
        }
        this.states.aliveNode(
          {
            incarnation: msg.incarnation,
            node: msg.node,
            addr: { ip, port },
            ip4: msg.addr.length === 4 ? msg.addr : undefined,
            meta: msg.meta,
            vsn: msg.vsn,
          },
          now,
          false,
        );
        return;
      }
      case 'user':
        this.delegate?.notifyMsg(msg.payload, now);
        this.userNews(msg.payload, now);
        return;
      default:
        this.drop('packet-unexpected-type', `${msg.type} is not a packet message`, from);
    }
  }

  handleStreamRequest(id: number, from: Address, bytes: Uint8Array, now: number): void {
    if (this.isShutdown || !this.started) {
      this.push({ kind: 'stream-close', id });
      return;
    }
    const t = this.advance(now);
    this.count('streams-in');
    let msg: Message;
    try {
      msg = decodeStream(bytes, { keyring: this.config.keyring, verifyIncoming: this.config.gossipVerifyIncoming });
    } catch (e) {
      this.drop(wireReason(e, 'stream'), errText(e), from);
      // The initiator reports this as "remote error: …".
      this.streamReply(id, { type: 'err', error: errText(e) });
      return;
    }
    try {
      this.serveStream(id, msg, from, t);
    } catch (e) {
      this.drop('stream-handler', `${msg.type}: ${errText(e)}`, from);
    }
  }

  private serveStream(id: number, msg: Message, from: Address, t: number): void {
    switch (msg.type) {
      case 'pushPull':
        // Reply with our state before merging theirs (as memberlist does).
        this.streamReply(id, this.localState(msg.join));
        this.mergeRemote(msg, from, t);
        return;
      case 'ping':
        if (msg.node !== '' && msg.node !== this.config.name) {
          this.drop('ping-wrong-node', `stream ping for ${msg.node}, we are ${this.config.name}`, from);
          this.push({ kind: 'stream-close', id });
          return;
        }
        this.streamReply(id, { type: 'ack', seqNo: msg.seqNo, payload: null });
        return;
      case 'user':
        this.push({ kind: 'stream-close', id });
        this.delegate?.notifyMsg(msg.payload, t);
        this.userNews(msg.payload, t);
        return;
      default:
        this.drop('stream-unexpected-type', `${msg.type} is not a stream request`, from);
        this.push({ kind: 'stream-close', id });
    }
  }

  handleStreamReply(id: number, bytes: Uint8Array, now: number): void {
    const s = this.streams.get(id);
    if (s === undefined || this.isShutdown) {
      if (!this.isShutdown) this.drop('stream-unknown', `reply on unknown stream ${id}`);
      return;
    }
    const t = this.advance(now);
    this.streams.delete(id);
    s.timer.cancel();
    let msg: Message;
    try {
      msg = decodeStream(bytes, { keyring: this.config.keyring, verifyIncoming: this.config.gossipVerifyIncoming });
    } catch (e) {
      this.drop(wireReason(e, 'stream'), errText(e));
      s.h.fail(errText(e), t);
      return;
    }
    try {
      s.h.reply(msg, t);
    } catch (e) {
      this.drop('stream-handler', `${msg.type} reply: ${errText(e)}`);
    }
  }

  handleStreamFailed(id: number, reason: string, now: number): void {
    const s = this.streams.get(id);
    if (s === undefined || this.isShutdown) return;
    const t = this.advance(now);
    this.streams.delete(id);
    s.timer.cancel();
    s.h.fail(reason, t);
  }

  // ---- queries ------------------------------------------------------------------------------

  members(): NodeInfo[] {
    return this.table.all().map(snapshot);
  }

  localNode(): NodeInfo {
    const me = this.table.get(this.config.name);
    if (me === undefined) throw new MemberlistError('ERR_MEMBERLIST_NOT_STARTED', 'start() was not called');
    return snapshot(me);
  }

  numMembers(): number {
    return this.table.liveCount;
  }

  healthScore(): number {
    return this.awareness.healthScore();
  }

  counters(): Counters {
    return { ...this.stats, 'health-score': this.awareness.healthScore(), 'broadcasts-queued': this.queue.length };
  }
}
