// The Serf layer on top of the membership core, sans-I/O: it is memberlist's Delegate (tags in
// Meta, intents piggybacked on gossip, Serf state in push/pull) and turns the core's member
// events into Serf member statuses (alive / leaving / left / failed, 5.5) and typed events.
//
// Like the core it never reads a clock or starts a timer: time comes in as `now` (driver ms) on
// every call that needs it. Waiting (leave's broadcast timeout, propagate delay) is the
// driver's job; Serf only says what it is waiting for (`leaveBroadcastDone()`).
//
// Not here yet (the next issue adds them in this directory): user events, queries, key queries,
// coalescing, reconnect and reap. Their messages are decoded far enough to be counted.

import type { Delegate, MemberEvent, NodeInfo } from '../memberlist/api.ts';
import { TransmitLimitedQueue } from '../memberlist/queue.ts';
import type { Address } from '../wire/types.ts';
import { SerfError } from './errors.ts';
import { LamportClock } from './lamport.ts';
import type { LogFn } from './log.ts';
import {
  MEMBERLIST_USER_MSG,
  decodeSerfMessage,
  encodeSerfMessage,
} from './messages.ts';
import type { JoinIntent, LeaveIntent } from './messages.ts';
import { decodeTags, encodeTags } from './tags.ts';
import type { Tags } from './tags.ts';

export type MemberStatus = 'none' | 'alive' | 'leaving' | 'left' | 'failed';

/** A cluster member as Serf reports it (RPC `members`, events). */
export interface Member {
  name: string;
  addr: Address;
  tags: Tags;
  status: MemberStatus;
  /** memberlist protocol versions (min/max/cur). */
  protocolMin: number;
  protocolMax: number;
  protocolCur: number;
  /** Serf (delegate) protocol versions (min/max/cur); `serf members -detailed` shows these. */
  delegateMin: number;
  delegateMax: number;
  delegateCur: number;
}

export type MemberEventType = 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap';

/** What Serf reports upward; `members` are snapshots taken when the event happened. */
export interface SerfEvent {
  type: MemberEventType;
  members: Member[];
}

/** Serf's own lifecycle (not a member status). */
export type SerfState = 'alive' | 'leaving' | 'left' | 'shutdown';

export interface SerfConfig {
  nodeName: string;
  tags: Tags;
  /** Serf protocol spoken (2..5); from 3 on tags are a msgpack map in Meta. */
  protocolVersion: number;
  /** memberlist's RetransmitMult: Serf's broadcast queues use the same epidemic limit. */
  retransmitMult: number;
  /** How long an intent about a not-yet-known node is remembered (Serf: 5 min). */
  recentIntentTimeoutMs?: number;
  /** Broadcasts beyond this are pruned oldest-first, so a flood cannot exhaust memory. */
  maxQueueDepth?: number;
  /**
   * Whether getBroadcasts() returns messages with memberlist's user type byte (08) in front.
   * The Delegate contract (api.ts) says yes (default); a core that adds the byte itself, as Go's
   * memberlist does, needs false, or peers see a Serf message of type 8.
   */
  prefixBroadcasts?: boolean;
  log?: LogFn;
}

interface MemberState {
  member: Member;
  /** Lamport time of the last join/leave intent applied to this member. */
  statusLTime: number;
  /** Driver ms when it became failed/left (reap uses it, next issue). */
  leaveTimeMs: number;
}

interface RecentIntent {
  type: 'join' | 'leave';
  ltime: number;
  atMs: number;
}

const DEFAULT_RECENT_INTENT_TIMEOUT_MS = 5 * 60 * 1000;
const DEFAULT_MAX_QUEUE_DEPTH = 4096;
/** Undelivered events beyond this are dropped oldest-first (and counted): a stalled consumer
 *  must not grow memory without bound. */
const MAX_PENDING_EVENTS = 65536;
/** Intents about unknown nodes are remembered by name; names are attacker-chosen, so cap it. */
const MAX_RECENT_INTENTS = 8192;
/** Expiry scans the whole intent buffer; doing it at most this often keeps a flood O(1) each. */
const INTENT_EXPIRY_EVERY_MS = 1000;

export class Serf implements Delegate {
  readonly clock = new LamportClock();
  readonly eventClock = new LamportClock();
  readonly queryClock = new LamportClock();

  private tags: Tags;
  private stateValue: SerfState = 'alive';
  private readonly members_ = new Map<string, MemberState>();
  /** Names in status left, oldest first (push/pull `LeftMembers`). */
  private readonly leftMembers: string[] = [];
  private readonly recentIntents = new Map<string, RecentIntent>();
  /** Join/leave intents (Serf's `broadcasts`); events and queries get their own queues later. */
  private readonly intentQueue: TransmitLimitedQueue;
  private readonly events: SerfEvent[] = [];
  private readonly counters_: Record<string, number> = {};
  private leaveBroadcastDone_ = false;
  private leaveIntent_: Uint8Array | undefined;
  private readonly recentIntentTimeoutMs: number;
  private readonly maxQueueDepth: number;
  private readonly prefixBroadcasts: boolean;
  private readonly log: LogFn;
  /** Latest `now` seen; callbacks without a time argument (getBroadcasts) stamp with it. */
  private lastNowMs = 0;
  private lastIntentExpiryMs = -Infinity;

  constructor(private readonly config: SerfConfig) {
    if (config.protocolVersion < 2 || config.protocolVersion > 5) {
      throw new SerfError('ERR_SERF_BAD_STATE', `serf protocol ${config.protocolVersion} is outside 2..5`);
    }
    this.tags = { ...config.tags };
    encodeTags(this.tags, config.protocolVersion); // fail early on oversized tags
    this.recentIntentTimeoutMs = config.recentIntentTimeoutMs ?? DEFAULT_RECENT_INTENT_TIMEOUT_MS;
    this.maxQueueDepth = config.maxQueueDepth ?? DEFAULT_MAX_QUEUE_DEPTH;
    this.prefixBroadcasts = config.prefixBroadcasts ?? true;
    this.log = config.log ?? (() => {});
    this.intentQueue = new TransmitLimitedQueue(config.retransmitMult, () => this.members_.size);
    // Serf starts every clock at 1, so the first intent is never mistaken for "no status yet".
    this.clock.increment();
    this.eventClock.increment();
    this.queryClock.increment();
  }

  get state(): SerfState {
    return this.stateValue;
  }

  get nodeName(): string {
    return this.config.nodeName;
  }

  // ---- memberlist Delegate -------------------------------------------------------------

  nodeMeta(limit: number): Uint8Array {
    const meta = encodeTags(this.tags, this.config.protocolVersion);
    // setTags refuses oversized tags, so this only trips if memberlist's limit is below 512;
    // advertising no tags beats throwing inside the core.
    if (meta.length > limit) {
      this.count('serf.tags-too-large');
      this.log('ERR', `serf: Encoded tags are ${meta.length} bytes, over memberlist's limit of ${limit}; advertising none`);
      return encodeTags({}, this.config.protocolVersion).subarray(0, limit);
    }
    return meta;
  }

  notifyMsg(payload: Uint8Array, now: number): void {
    this.lastNowMs = Math.max(this.lastNowMs, now);
    let msg;
    try {
      msg = decodeSerfMessage(payload);
    } catch (e) {
      this.count('serf.dropped.bad-message');
      this.log('ERR', `serf: Failed to decode message: ${(e as Error).message}`);
      return;
    }
    let rebroadcast = false;
    switch (msg.type) {
      case 'join':
        this.count('serf.msg.join');
        this.log('DEBUG', `serf: messageJoinType: ${msg.node}`);
        rebroadcast = this.handleJoinIntent(msg, now);
        break;
      case 'leave':
        this.count('serf.msg.leave');
        this.log('DEBUG', `serf: messageLeaveType: ${msg.node}`);
        rebroadcast = this.handleLeaveIntent(msg, now);
        break;
      case 'pushPull':
        // Only valid as push/pull user state, never as a gossip message.
        this.count('serf.dropped.unexpected-push-pull');
        return;
      case 'unhandled':
        this.count(`serf.unhandled.${msg.name}`);
        return;
    }
    if (rebroadcast) this.queueBroadcast(payload.slice());
  }

  getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    return this.intentQueue.getBroadcasts(overhead, limit);
  }

  localState(_join: boolean): Uint8Array {
    const statusLTimes: Record<string, number> = {};
    for (const [name, ms] of this.members_) statusLTimes[name] = ms.statusLTime;
    return encodeSerfMessage({
      type: 'pushPull',
      ltime: this.clock.time(),
      statusLTimes,
      leftMembers: [...this.leftMembers],
      eventLTime: this.eventClock.time(),
      // Real agents accept an empty buffer (9.9); the event buffer comes with user events.
      events: [],
      queryLTime: this.queryClock.time(),
    });
  }

  mergeRemoteState(state: Uint8Array, _join: boolean, now: number): void {
    this.lastNowMs = Math.max(this.lastNowMs, now);
    let msg;
    try {
      msg = decodeSerfMessage(state);
    } catch (e) {
      this.count('serf.dropped.bad-push-pull');
      this.log('ERR', `serf: Failed to decode remote state: ${(e as Error).message}`);
      return;
    }
    if (msg.type !== 'pushPull') {
      this.count('serf.dropped.bad-push-pull');
      this.log('ERR', 'serf: Remote state is not a push/pull message');
      return;
    }
    // No message with these times has been sent yet, hence the −1.
    if (msg.ltime > 0) this.clock.witness(msg.ltime - 1);
    if (msg.eventLTime > 0) this.eventClock.witness(msg.eventLTime - 1);
    if (msg.queryLTime > 0) this.queryClock.witness(msg.queryLTime - 1);
    // Left members first; their leave must have come after their last status time.
    const left = new Set(msg.leftMembers);
    for (const name of msg.leftMembers) {
      this.handleLeaveIntent(
        { type: 'leave', ltime: (msg.statusLTimes[name] ?? 0) + 1, node: name, prune: false },
        now,
      );
    }
    for (const [name, ltime] of Object.entries(msg.statusLTimes)) {
      if (left.has(name)) continue;
      this.handleJoinIntent({ type: 'join', ltime, node: name }, now);
    }
    if (msg.events.length > 0) this.count('serf.unhandled.pushPullEvents');
  }

  ackPayload(): Uint8Array | null {
    // Network coordinates are not computed yet; Go peers accept acks without them (5.12).
    return null;
  }

  // ---- input from the driver -----------------------------------------------------------

  /** Feed every MemberEvent the core emits, in order. */
  handleMemberEvent(e: MemberEvent, now: number): void {
    this.lastNowMs = Math.max(this.lastNowMs, now);
    switch (e.type) {
      case 'join':
        this.handleNodeJoin(e.node);
        break;
      case 'leave':
        this.handleNodeLeave(e.node, now);
        break;
      case 'update':
        this.handleNodeUpdate(e.node);
        break;
      case 'conflict':
        this.log(
          'ERR',
          `serf: Node name conflicts with another node at ${fmtAddr(e.other.addr)}. Names must be unique! (existing ${e.existing.name} at ${fmtAddr(e.existing.addr)})`,
        );
        break;
      case 'join-complete':
        // After any successful join Serf announces itself with a join intent, so nodes that
        // saw an older leave intent from us take it back (5.5).
        if (e.joined > 0 && this.stateValue === 'alive') this.broadcastJoin(this.clock.time(), now);
        break;
      case 'leave-complete':
      case 'dropped':
        break;
    }
  }

  /**
   * Begin a graceful leave: apply our leave intent locally and broadcast it. The driver then
   * waits until `leaveBroadcastDone()` (or the broadcast timeout), runs the core's leave, waits
   * the propagate delay and calls `markLeft()`.
   */
  leave(now: number): void {
    this.lastNowMs = Math.max(this.lastNowMs, now);
    if (this.stateValue === 'left') return;
    if (this.stateValue === 'leaving') throw new SerfError('ERR_SERF_BAD_STATE', 'Leave already in progress');
    if (this.stateValue === 'shutdown') throw new SerfError('ERR_SERF_BAD_STATE', 'Leave called after Shutdown');
    this.stateValue = 'leaving';
    const msg: LeaveIntent = { type: 'leave', ltime: this.clock.time(), node: this.config.nodeName, prune: false };
    this.clock.increment();
    this.handleLeaveIntent(msg, now);
    this.leaveIntent_ = encodeSerfMessage(msg);
    if (this.hasAliveMembers()) {
      this.intentQueue.queue({
        msg: this.framed(encodeSerfMessage(msg)),
        finished: () => {
          this.leaveBroadcastDone_ = true;
        },
      });
    } else {
      // Nobody to tell; don't make the driver wait out the broadcast timeout.
      this.leaveBroadcastDone_ = true;
    }
  }

  /**
   * Our leave intent (Serf bytes, no memberlist prefix) once leave() ran. Gossip alone can
   * spend its few transmissions on recently dead nodes (they are gossip targets too), and a
   * serf peer that then sees our memberlist departure without the intent records us *failed*;
   * so the driver also sends this directly to every alive member.
   */
  leaveIntent(): { payload: Uint8Array; to: Address[] } | undefined {
    if (this.leaveIntent_ === undefined) return undefined;
    const to: Address[] = [];
    for (const [name, ms] of this.members_) {
      if (name !== this.config.nodeName && ms.member.status === 'alive') to.push({ ...ms.member.addr });
    }
    return { payload: this.leaveIntent_, to };
  }

  /** The leave intent has been sent as often as the epidemic needs (or there was no one). */
  leaveBroadcastDone(): boolean {
    return this.leaveBroadcastDone_;
  }

  markLeft(): void {
    if (this.stateValue !== 'shutdown') this.stateValue = 'left';
  }

  shutdown(): void {
    this.stateValue = 'shutdown';
    this.intentQueue.reset();
  }

  /** Replace our tags; the driver must then call the core's updateMeta() to gossip them. */
  setTags(tags: Tags): void {
    encodeTags(tags, this.config.protocolVersion); // throws when too large; keep the old tags
    this.tags = { ...tags };
    const self = this.members_.get(this.config.nodeName);
    if (self !== undefined) self.member.tags = { ...tags };
  }

  localTags(): Tags {
    return { ...this.tags };
  }

  // ---- output ----------------------------------------------------------------------------

  pollEvent(): SerfEvent | undefined {
    return this.events.shift();
  }

  /** Every member Serf knows (alive, leaving, failed, left), as snapshots. */
  members(): Member[] {
    return [...this.members_.values()].map((ms) => snapshot(ms.member));
  }

  localMember(): Member | undefined {
    const ms = this.members_.get(this.config.nodeName);
    return ms === undefined ? undefined : snapshot(ms.member);
  }

  intentQueueLength(): number {
    return this.intentQueue.length;
  }

  /** Counts by reason: messages handled, dropped and not yet supported. */
  counters(): Record<string, number> {
    return { ...this.counters_ };
  }

  /** Serf's half of `stats` (6.6); the agent adds health_score and encrypted. */
  stats(): Record<string, string> {
    let failed = 0;
    let left = 0;
    for (const ms of this.members_.values()) {
      if (ms.member.status === 'failed') failed++;
      else if (ms.member.status === 'left') left++;
    }
    return {
      members: String(this.members_.size),
      failed: String(failed),
      left: String(left),
      member_time: String(this.clock.time()),
      event_time: String(this.eventClock.time()),
      query_time: String(this.queryClock.time()),
      intent_queue: String(this.intentQueue.length),
      event_queue: '0',
      query_queue: '0',
      coordinate_resets: '0',
    };
  }

  // ---- member status machine (5.5) --------------------------------------------------------

  private handleNodeJoin(n: NodeInfo): void {
    let ms = this.members_.get(n.name);
    const tags = this.decodeMemberTags(n);
    if (ms === undefined) {
      ms = { member: memberFrom(n, tags, 'alive'), statusLTime: 0, leaveTimeMs: 0 };
      // An intent may have raced ahead of memberlist's alive; the buffer holds the newest one.
      const intent = this.recentIntent(n.name);
      if (intent !== undefined) {
        ms.statusLTime = intent.ltime;
        if (intent.type === 'leave') ms.member.status = 'leaving';
      }
      this.members_.set(n.name, ms);
    } else {
      const old = ms.member.status;
      ms.member = memberFrom(n, tags, 'alive');
      ms.leaveTimeMs = 0;
      if (old === 'failed' || old === 'left') removeName(this.leftMembers, n.name);
    }
    this.log('INFO', `serf: EventMemberJoin: ${n.name} ${n.addr.ip}`);
    this.emit('member-join', ms.member);
  }

  private handleNodeLeave(n: NodeInfo, now: number): void {
    const ms = this.members_.get(n.name);
    if (ms === undefined) return;
    let type: MemberEventType;
    if (ms.member.status === 'leaving' || (ms.member.status === 'alive' && n.state === 'left')) {
      // memberlist's own graceful-leave mark also counts: it means the node said goodbye even
      // if its Serf leave intent was lost.
      ms.member.status = 'left';
      this.leftMembers.push(n.name);
      type = 'member-leave';
    } else if (ms.member.status === 'alive') {
      ms.member.status = 'failed';
      type = 'member-failed';
    } else {
      this.log('WARN', `serf: Bad state when leave: ${ms.member.status}`);
      return;
    }
    ms.leaveTimeMs = now;
    this.log(
      'INFO',
      `serf: ${type === 'member-leave' ? 'EventMemberLeave' : 'EventMemberFailed'}: ${n.name} ${n.addr.ip}`,
    );
    this.emit(type, ms.member);
  }

  private handleNodeUpdate(n: NodeInfo): void {
    const ms = this.members_.get(n.name);
    if (ms === undefined) return;
    ms.member = memberFrom(n, this.decodeMemberTags(n), ms.member.status);
    this.log('INFO', `serf: EventMemberUpdate: ${n.name}`);
    this.emit('member-update', ms.member);
  }

  /** Returns whether the intent was new and should be re-broadcast. */
  private handleJoinIntent(msg: JoinIntent, now: number): boolean {
    this.clock.witness(msg.ltime);
    const ms = this.members_.get(msg.node);
    if (ms === undefined) return this.upsertIntent(msg.node, 'join', msg.ltime, now);
    if (msg.ltime <= ms.statusLTime) return false;
    ms.statusLTime = msg.ltime;
    // A leave older than this join was cancelled.
    if (ms.member.status === 'leaving') ms.member.status = 'alive';
    return true;
  }

  private handleLeaveIntent(msg: LeaveIntent, now: number): boolean {
    this.clock.witness(msg.ltime);
    const ms = this.members_.get(msg.node);
    if (ms === undefined) return this.upsertIntent(msg.node, 'leave', msg.ltime, now);
    if (msg.ltime <= ms.statusLTime) return false;
    if (msg.node === this.config.nodeName && this.stateValue === 'alive') {
      // Someone says we are leaving and we are not: refute with a newer join intent.
      this.log('DEBUG', 'serf: Refuting an older leave intent');
      this.broadcastJoin(this.clock.time(), now);
      return false;
    }
    // Record the time even when the status stays, so the same intent is not re-broadcast
    // forever between nodes (hashicorp/consul#8179).
    ms.statusLTime = msg.ltime;
    switch (ms.member.status) {
      case 'alive':
        ms.member.status = 'leaving';
        break;
      case 'failed':
        ms.member.status = 'left';
        ms.leaveTimeMs = now;
        this.leftMembers.push(msg.node);
        this.log('INFO', `serf: EventMemberLeave (forced): ${msg.node} ${ms.member.addr.ip}`);
        this.emit('member-leave', ms.member);
        break;
      case 'leaving':
      case 'left':
        break;
      case 'none':
        return false;
    }
    if (msg.prune) this.count('serf.unhandled.prune');
    return true;
  }

  private broadcastJoin(ltime: number, now: number): void {
    const msg: JoinIntent = { type: 'join', ltime, node: this.config.nodeName };
    this.clock.witness(ltime);
    this.handleJoinIntent(msg, now);
    this.queueBroadcast(encodeSerfMessage(msg));
  }

  /** `serfMsg` = Serf type byte + body; framed for the core as configured. */
  private framed(serfMsg: Uint8Array): Uint8Array {
    if (!this.prefixBroadcasts) return serfMsg;
    const out = new Uint8Array(1 + serfMsg.length);
    out[0] = MEMBERLIST_USER_MSG;
    out.set(serfMsg, 1);
    return out;
  }

  private queueBroadcast(serfMsg: Uint8Array): void {
    this.intentQueue.queue({ msg: this.framed(serfMsg) });
    // Prune with 25% slack: pruning sorts the queue, so doing it per message under a flood
    // would cost O(depth · log depth) each time.
    if (this.intentQueue.length > this.maxQueueDepth + (this.maxQueueDepth >> 2)) {
      this.count('serf.dropped.queue-pruned');
      this.intentQueue.prune(this.maxQueueDepth);
    }
  }

  private upsertIntent(node: string, type: 'join' | 'leave', ltime: number, now: number): boolean {
    this.expireIntents(now);
    const old = this.recentIntents.get(node);
    if (old !== undefined && ltime <= old.ltime) return false;
    if (old === undefined && this.recentIntents.size >= MAX_RECENT_INTENTS) {
      // Evict the oldest-inserted entry: a flood of made-up names must not grow memory.
      const oldest = this.recentIntents.keys().next().value;
      if (oldest !== undefined) this.recentIntents.delete(oldest);
      this.count('serf.dropped.intent-buffer-full');
    }
    this.recentIntents.set(node, { type, ltime, atMs: now });
    return true;
  }

  private recentIntent(node: string): RecentIntent | undefined {
    this.expireIntents(this.lastNowMs);
    return this.recentIntents.get(node);
  }

  private expireIntents(now: number): void {
    if (now - this.lastIntentExpiryMs < INTENT_EXPIRY_EVERY_MS) return;
    this.lastIntentExpiryMs = now;
    for (const [name, it] of this.recentIntents) {
      if (now - it.atMs > this.recentIntentTimeoutMs) this.recentIntents.delete(name);
    }
  }

  private hasAliveMembers(): boolean {
    for (const [name, ms] of this.members_) {
      if (name !== this.config.nodeName && ms.member.status === 'alive') return true;
    }
    return false;
  }

  private decodeMemberTags(n: NodeInfo): Tags {
    try {
      return decodeTags(n.meta);
    } catch (e) {
      this.count('serf.dropped.bad-tags');
      this.log('ERR', `serf: Failed to decode tags of ${n.name}: ${(e as Error).message}`);
      return {};
    }
  }

  private emit(type: MemberEventType, m: Member): void {
    if (this.events.length >= MAX_PENDING_EVENTS) {
      this.events.shift();
      this.count('serf.dropped.event-overflow');
    }
    this.events.push({ type, members: [snapshot(m)] });
  }

  private count(key: string): void {
    this.counters_[key] = (this.counters_[key] ?? 0) + 1;
  }
}

function memberFrom(n: NodeInfo, tags: Tags, status: MemberStatus): Member {
  return {
    name: n.name,
    addr: { ip: n.addr.ip, port: n.addr.port },
    tags,
    status,
    protocolMin: n.vsn[0],
    protocolMax: n.vsn[1],
    protocolCur: n.vsn[2],
    delegateMin: n.vsn[3],
    delegateMax: n.vsn[4],
    delegateCur: n.vsn[5],
  };
}

function snapshot(m: Member): Member {
  return { ...m, addr: { ...m.addr }, tags: { ...m.tags } };
}

function removeName(list: string[], name: string): void {
  const i = list.indexOf(name);
  if (i >= 0) list.splice(i, 1);
}

function fmtAddr(a: Address): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}
