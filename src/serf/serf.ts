// The Serf layer on top of the membership core, sans-I/O: it is memberlist's Delegate (tags in
// Meta, intents piggybacked on gossip, Serf state in push/pull) and turns the core's member
// events into Serf member statuses (alive / leaving / left / failed, 5.5) and typed events.
//
// Like the core it never reads a clock or starts a timer: time comes in as `now` (driver ms) on
// every call that needs it. Waiting (leave's broadcast timeout, propagate delay) is the
// driver's job; Serf only says what it is waiting for (`leaveBroadcastDone()`).
//
// API overview (everything the runtime needs; see each member's doc):
//   inputs   handleMemberEvent(e, now), the Delegate hooks (called by the core), handleTimeout(now)
//   commands userEvent(name, payload, coalesce, now)     → throws SerfError with serf's limit text
//            query({name, payload, filterNodes, filterTags, requestAck, relayFactor, timeoutMs}, now)
//                                                      → local query id (events carry it as queryId)
//            respond(id, payload, now)                  → answer a received `query` event once
//            installKey/useKey/removeKey/listKeys(key, now) → op id; a `key-result` event when done
//            forceLeave(node, prune, now), setTags(tags), leave(now), prepareJoin(replay),
//            restoreClocks(snapshot clocks)
//   outputs  pollOutput(): user-packet | join (reconnect, heal) | ping (heal ping to a failed
//            member; its memberlist 'ping-reply' comes back through handleMemberEvent) |
//            update-meta | shutdown (lost a name conflict); pollTimeout()/handleTimeout(now) for
//            reap, reconnect, heal pings, query deadlines
//   events   pollTypedEvent(): every event in order (member-*, user, query, query-ack,
//            query-response, query-done, key-result, keyring-changed); pollEvent() is the older
//            member-events-only view (other kinds are skipped by it).
// Coalescing is the agent's (src/agent/coalesce.ts): events here are raw.

import type { Delegate, MemberEvent, NodeInfo, Random } from '../memberlist/api.ts';
import { TransmitLimitedQueue } from '../memberlist/queue.ts';
import type { Keyring } from '../wire/index.ts';
import type { Address } from '../wire/types.ts';
import { CoordinateClient, decodePingPayload, seededUniform } from './coordinate.ts';
import type { Coordinate } from './coordinate.ts';
import { SerfError } from './errors.ts';
import { KEY_QUERY_NAMES, addKeyResponse, answerKeyQuery, finishKeyResult, newKeyResult } from './keys.ts';
import type { KeyOp, KeyResult } from './keys.ts';
import { EventRing, QueryRing } from './dedup.ts';
import { LamportClock } from './lamport.ts';
import {
  BROADCAST_TIMEOUT_MS,
  EVENT_BUFFER_SIZE,
  INTERNAL_QUERY_PREFIX,
  LEAVE_PROPAGATE_DELAY_MS,
  QUERY_BUFFER_SIZE,
  QUERY_RESPONSE_SIZE_LIMIT_DEFAULT,
  QUERY_SIZE_LIMIT_DEFAULT,
  QUERY_TIMEOUT_MULT,
  REAP_INTERVAL_MS,
  HEAL_BACKOFF_DIVISOR,
  HEAL_BACKOFF_MAX_MS,
  HEAL_FULL_RATE_MS,
  HEAL_JOIN_HOLD_MS,
  HEAL_PINGS_PER_INTERVAL,
  RECONNECT_INTERVAL_MS,
  RECONNECT_TIMEOUT_MS,
  TOMBSTONE_TIMEOUT_MS,
  USER_EVENT_SIZE_LIMIT_DEFAULT,
  USER_EVENT_SIZE_LIMIT_MAX,
} from './limits.ts';
import type { LogFn } from './log.ts';
import {
  MEMBERLIST_USER_MSG,
  QUERY_FLAG_ACK,
  QUERY_FLAG_NO_BROADCAST,
  RESPONSE_FLAG_ACK,
  decodeConflictResponse,
  decodeSerfMessage,
  encodeConflictResponse,
  encodeKeyRequest,
  encodeNodeFilter,
  encodeRelay,
  encodeSerfMessage,
  encodeTagFilter,
} from './messages.ts';
import type {
  JoinIntent,
  LeaveIntent,
  QueryMsg,
  QueryResponseMsg,
  UserEventMsg,
} from './messages.ts';
import { queryFiltersMatch } from './query-filter.ts';
import { MemberTable, snapshotMember, type Member, type MemberRef } from './members.ts';
import { decodeTags, encodeTags } from './tags.ts';
import type { Tags } from './tags.ts';

export type { KeyOp, KeyResult } from './keys.ts';

export type { Member, MemberStatus } from './members.ts';

export type MemberEventType = 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap';

/** What Serf reports upward; `members` are snapshots taken when the event happened. */
export interface SerfEvent {
  type: MemberEventType;
  members: Member[];
}

/** A user event (delivered once per (LTime, name, payload); the agent coalesces if `coalesce`). */
export interface UserEvent {
  type: 'user';
  name: string;
  payload: Uint8Array;
  ltime: number;
  coalesce: boolean;
}

/** A query to answer (at most once, before `deadlineMs`, with respond(id, …)). */
export interface QueryEvent {
  type: 'query';
  /** Local handle for respond(); not the wire ID. */
  id: number;
  name: string;
  payload: Uint8Array;
  ltime: number;
  /** Driver ms after which respond() refuses. */
  deadlineMs: number;
  sourceNode: string;
}

/** For queries we started: `queryId` is what query() returned. */
export interface QueryAckEvent {
  type: 'query-ack';
  queryId: number;
  from: string;
}
export interface QueryResponseEvent {
  type: 'query-response';
  queryId: number;
  from: string;
  payload: Uint8Array;
}
export interface QueryDoneEvent {
  type: 'query-done';
  queryId: number;
  acks: number;
  responses: number;
}
/** A key operation we started finished (its query timed out); `error` '' = every node agreed. */
export interface KeyResultEvent extends KeyResult {
  type: 'key-result';
  opId: number;
}
/** A key query changed our keyring: the agent rewrites its keyring file. */
export interface KeyringChangedEvent {
  type: 'keyring-changed';
  op: KeyOp;
}

export type SerfAnyEvent =
  | SerfEvent
  | UserEvent
  | QueryEvent
  | QueryAckEvent
  | QueryResponseEvent
  | QueryDoneEvent
  | KeyResultEvent
  | KeyringChangedEvent;

/** What the runtime must do for Serf. */
export type SerfOutput =
  /** driver.sendUserPacket(to, payload): payload is Serf bytes (the core adds memberlist's 08). */
  | { kind: 'user-packet'; to: Address; payload: Uint8Array }
  /** driver.join(seeds): reconnect to a failed member. */
  | { kind: 'join'; seeds: Address[]; node: string }
  /** driver.pingNode(node, addr): a heal ping to a failed member; its 'ping-reply' comes back as a member event. */
  | { kind: 'ping'; node: string; addr: Address }
  /** driver.updateMeta(): our tags changed. */
  | { kind: 'update-meta' }
  /** We lost a name conflict (or similar): the agent shuts down. */
  | { kind: 'shutdown'; reason: string };

export interface QueryParams {
  name: string;
  payload: Uint8Array;
  /** Only these nodes process it (empty/undefined = all). */
  filterNodes?: string[];
  /** tag → regex (unanchored); all must match. */
  filterTags?: Record<string, string>;
  requestAck?: boolean;
  /** Responders also send their answer through this many random members (0..255). */
  relayFactor?: number;
  /** 0/undefined = serf's default (GossipInterval × 16 × ceil(log10(N+1))). */
  timeoutMs?: number;
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
  /** Broadcasts beyond this are pruned oldest-first, so a flood cannot exhaust memory (Serf: 4096). */
  maxQueueDepth?: number;
  /**
   * Serf's MinQueueDepth: when > 0 the limit is max(minQueueDepth, 2 × members) and
   * maxQueueDepth is ignored, so a big cluster's join storm (an intent per member) is not pruned
   * at a fixed 4096 (hashicorp/serf#557).
   */
  minQueueDepth?: number;
  /**
   * Whether getBroadcasts() returns messages with memberlist's user type byte (08) in front.
   * The Delegate contract (api.ts) says no: the core adds the byte itself, as Go's memberlist
   * does, so every runtime passes false. The default (true) only serves unit tests that decode
   * queued broadcasts as whole user messages.
   */
  prefixBroadcasts?: boolean;
  log?: LogFn;
  /** Randomness (query IDs, reconnect, relays): an input, like the core's (sans-I/O). */
  random: Random;
  /** The memberlist keyring key queries act on; null = encryption off. */
  keyring?: Keyring | null;
  /** Where query answers go (the core's advertise address); defaults to our member entry. */
  advertise?: Address;
  /** For the default query timeout (memberlist's GossipInterval; LAN 200 ms). */
  gossipIntervalMs?: number;
  userEventSizeLimit?: number;
  querySizeLimit?: number;
  queryResponseSizeLimit?: number;
  reapIntervalMs?: number;
  reconnectIntervalMs?: number;
  reconnectTimeoutMs?: number;
  tombstoneTimeoutMs?: number;
  /**
   * kodama (not Serf): how often to consider a heal ping to a failed member (the agent uses
   * memberlist's probe interval); one that answers is joined at once, so a healed partition
   * re-merges in about a second instead of at the next reconnect (30 s). Unset or 0 = off.
   */
  healIntervalMs?: number;
  /**
   * kodama (not Serf): a user event or query this node starts also goes out at once, as a plain
   * memberlist user packet, to this many random alive members, out of its retransmit budget
   * (their cores forward it on eagerly: memberlist/eager.ts), instead of waiting for the next
   * gossip round. At most one such burst per gossip interval; more news in it goes by gossip
   * only. Unset: DEFAULT_EAGER_GOSSIP_NODES (kodama's LAN eagerGossipNodes); 0 = Serf's behaviour.
   */
  eagerGossipNodes?: number;
  /**
   * kodama (not Serf): with eagerGossipNodes on, news this node starts goes to *every* alive member
   * when there are at most this many (memberlist's ownNewsDirectMax, the same reasoning: below 10
   * nodes the retransmit budget lets an event miss a member until the next push/pull in ~0.5 %
   * of cases). Still one burst per gossip interval. Unset: DEFAULT_OWN_NEWS_DIRECT_MAX; 0 = off.
   */
  ownNewsDirectMax?: number;
  /** Wait before erasing a pruned member that was still leaving. */
  broadcastTimeoutMs?: number;
  /** Keep no network coordinate: acks go out without one and `getCoordinate` knows none (Serf's DisableCoordinates). */
  disableCoordinates?: boolean;
  enableNameConflictResolution?: boolean;
  /**
   * Tags this node matches in query tag filters without advertising them (kodama agents match
   * `_kodama=1`, so kodama's own queries carry that filter and real serf agents drop them before
   * their handlers run). They win over an advertised tag of the same name.
   */
  queryFilterTags?: Tags;
  /**
   * Called (synchronously, possibly from inside a core callback) whenever an output or event
   * is queued. Serf's input often arrives through the core's Delegate hooks, so the runtime
   * cannot know when to drain otherwise: schedule (never run inline) a drain of
   * pollOutput()/pollTypedEvent() and re-arm the pollTimeout() timer.
   */
  wake?: () => void;
}

/** A query we started. */
interface OpenQuery {
  handle: number;
  ltime: number;
  wireId: number;
  deadlineMs: number;
  acks: Set<string>;
  responses: Set<string>;
  /** Internal uses: key operations and name-conflict resolution consume the responses. */
  key?: KeyResult;
  conflict?: { responses: number; matching: number };
}

/** A query delivered to us, awaiting respond(). */
interface ReceivedQuery {
  msg: QueryMsg;
  deadlineMs: number;
  responded: boolean;
}

interface RecentIntent {
  type: 'join' | 'leave';
  ltime: number;
  atMs: number;
}

const DEFAULT_RECENT_INTENT_TIMEOUT_MS = 5 * 60 * 1000;
/** SerfConfig.eagerGossipNodes when unset: memberlist config's LAN default. */
export const DEFAULT_EAGER_GOSSIP_NODES = 3;
/** SerfConfig.ownNewsDirectMax when unset: memberlist config's LAN default. */
export const DEFAULT_OWN_NEWS_DIRECT_MAX = 16;
const DEFAULT_MAX_QUEUE_DEPTH = 4096;
/** Undelivered events beyond this are dropped oldest-first (and counted): a stalled consumer
 *  must not grow memory without bound. */
const MAX_PENDING_EVENTS = 65536;
/** Intents about unknown nodes are remembered by name; names are attacker-chosen, so cap it. */
const MAX_RECENT_INTENTS = 8192;
/** Expiry scans the whole intent buffer; doing it at most this often keeps a flood O(1) each. */
const INTENT_EXPIRY_EVERY_MS = 1000;
const MAX_OPEN_RECEIVED_QUERIES = 4096;
/** Serf's QueueCheckInterval and QueueDepthWarning. */
const QUEUE_CHECK_INTERVAL_MS = 30_000;
const QUEUE_DEPTH_WARNING = 128;

export class Serf implements Delegate {
  readonly clock = new LamportClock();
  readonly eventClock = new LamportClock();
  readonly queryClock = new LamportClock();

  private tags: Tags;
  private stateValue: SerfState = 'alive';
  private readonly members_ = new MemberTable();
  /** Names in status left, oldest first (push/pull `LeftMembers`). */
  private readonly leftMembers: string[] = [];
  private readonly recentIntents = new Map<string, RecentIntent>();
  /** Join/leave intents (Serf's `broadcasts`); events and queries get their own queues later. */
  private readonly intentQueue: TransmitLimitedQueue;
  private readonly eventQueue: TransmitLimitedQueue;
  private readonly queryQueue: TransmitLimitedQueue;
  private readonly events: SerfAnyEvent[] = [];
  private readonly outputs: SerfOutput[] = [];
  private readonly random: Random;
  private readonly keyring: Keyring | null;
  private eventMinTime = 0;
  private queryMinTime = 0;
  /** User events seen (dedup and push/pull replay). */
  private readonly eventRing = new EventRing(EVENT_BUFFER_SIZE);
  /** Query (LTime, ID) pairs seen (dedup). */
  private readonly queryRing = new QueryRing(QUERY_BUFFER_SIZE);
  private nextHandle = 1;
  private readonly openQueries = new Map<number, OpenQuery>();
  /** `${ltime}` → handle: responses name the query by LTime (unique per originator) and ID. */
  private readonly openByLTime = new Map<number, number>();
  private readonly received = new Map<number, ReceivedQuery>();
  private eventJoinIgnore = false;
  private conflictQuery: number | undefined;
  private nextReapMs: number | undefined;
  private nextReconnectMs: number | undefined;
  private nextHealMs: number | undefined;
  /** No member was failed at the last heal tick: the tick sleeps until one fails (no idle wake-ups). */
  private healIdle = false;
  /** Failed member → when it may be heal-pinged again. */
  private readonly healDue = new Map<string, number>();
  /** Failed member → when we last joined it after it answered a heal ping. */
  private readonly healJoinedAt = new Map<string, number>();
  private nextQueueCheckMs: number | undefined;
  /** Members pruned while leaving: erase at this time (serf waits broadcast + propagate). */
  private readonly pendingPrunes = new Map<string, number>();
  private readonly counters_: Record<string, number> = {};
  /** Our Vivaldi coordinate (undefined: disableCoordinates). */
  private readonly coordinates: CoordinateClient | undefined;
  /** The last coordinate each member's acks carried. */
  private readonly coordinateCache = new Map<string, Coordinate>();
  private leaveBroadcastDone_ = false;
  private leaveIntent_: Uint8Array | undefined;
  private readonly recentIntentTimeoutMs: number;
  private readonly maxQueueDepthCfg: number;
  private readonly minQueueDepth: number;
  private readonly prefixBroadcasts: boolean;
  private readonly log: LogFn;
  /** Latest `now` seen; callbacks without a time argument (getBroadcasts) stamp with it. */
  private lastNowMs = 0;
  private lastIntentExpiryMs = -Infinity;
  /** Last eager send of a user event and of a query: each kind has its own once-per-interval budget. */
  private readonly lastEagerSendMs = { event: -Infinity, query: -Infinity };

  constructor(private readonly config: SerfConfig) {
    if (config.protocolVersion < 2 || config.protocolVersion > 5) {
      throw new SerfError('ERR_SERF_BAD_STATE', `serf protocol ${config.protocolVersion} is outside 2..5`);
    }
    this.tags = { ...config.tags };
    encodeTags(this.tags, config.protocolVersion); // fail early on oversized tags
    this.recentIntentTimeoutMs = config.recentIntentTimeoutMs ?? DEFAULT_RECENT_INTENT_TIMEOUT_MS;
    this.maxQueueDepthCfg = config.maxQueueDepth ?? DEFAULT_MAX_QUEUE_DEPTH;
    this.minQueueDepth = config.minQueueDepth ?? 0;
    this.prefixBroadcasts = config.prefixBroadcasts ?? true;
    this.log = config.log ?? (() => {});
    this.intentQueue = new TransmitLimitedQueue(config.retransmitMult, () => this.members_.size);
    this.eventQueue = new TransmitLimitedQueue(config.retransmitMult, () => this.members_.size);
    this.queryQueue = new TransmitLimitedQueue(config.retransmitMult, () => this.members_.size);
    this.random = config.random;
    this.coordinates = config.disableCoordinates === true ? undefined : new CoordinateClient(seededUniform(config.nodeName));
    this.keyring = config.keyring ?? null;
    const uel = config.userEventSizeLimit ?? USER_EVENT_SIZE_LIMIT_DEFAULT;
    if (uel > USER_EVENT_SIZE_LIMIT_MAX) {
      throw new SerfError('ERR_SERF_BAD_STATE', `user event size limit exceeds limit of ${USER_EVENT_SIZE_LIMIT_MAX} bytes`);
    }
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
    this.tick(now);
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
      case 'userEvent':
        this.count('serf.msg.user-event');
        if (this.handleUserEvent(msg)) this.queueOn(this.eventQueue, payload.slice());
        return;
      case 'query':
        this.count('serf.msg.query');
        if (this.handleQuery(msg, now)) this.queueOn(this.queryQueue, payload.slice());
        return;
      case 'queryResponse':
        this.count('serf.msg.query-response');
        this.handleQueryResponse(msg, now);
        return;
      case 'relay':
        this.count('serf.msg.relay');
        // Forward the inner response; a relay of anything but a response is not ours to pass on.
        if (msg.inner[0] !== 5) {
          this.count('serf.dropped.bad-relay');
          return;
        }
        this.pushOutput({ kind: 'user-packet', to: msg.dest, payload: msg.inner.slice() });
        return;
      case 'unhandled':
        this.count(`serf.unhandled.${msg.name}`);
        return;
    }
    if (rebroadcast) this.queueBroadcast(payload.slice());
  }

  hasBroadcasts(): boolean {
    return this.intentQueue.length + this.eventQueue.length + this.queryQueue.length > 0;
  }

  getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    // Serf's order: intents, then queries, then events, each filling what is left.
    const out = this.intentQueue.getBroadcasts(overhead, limit);
    let used = 0;
    for (const m of out) used += m.length + overhead;
    for (const q of [this.queryQueue, this.eventQueue]) {
      if (limit - used <= overhead) break;
      for (const m of q.getBroadcasts(overhead, limit - used)) {
        out.push(m);
        used += m.length + overhead;
      }
    }
    return out;
  }

  localState(_join: boolean): Uint8Array {
    const statusLTimes: Record<string, number> = {};
    for (const ms of this.members_.values()) statusLTimes[ms.name] = ms.statusLTime;
    return encodeSerfMessage({
      type: 'pushPull',
      ltime: this.clock.time(),
      statusLTimes,
      leftMembers: [...this.leftMembers],
      eventLTime: this.eventClock.time(),
      events: this.eventRing.entries(),
      queryLTime: this.queryClock.time(),
    });
  }

  mergeRemoteState(state: Uint8Array, join: boolean, now: number): void {
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
    // Joining without -replay: events older than the cluster's clock are history, not news.
    if (join && this.eventJoinIgnore && msg.eventLTime > this.eventMinTime) this.eventMinTime = msg.eventLTime;
    for (const slot of msg.events) {
      for (const e of slot.events) {
        this.handleUserEvent({ type: 'userEvent', ltime: slot.ltime, name: e.name, payload: e.payload, cc: false });
      }
    }
  }

  /** Our coordinate for the acks we send (5.12); null with coordinates off. */
  ackPayload(): Uint8Array | null {
    return this.coordinates?.ackPayload() ?? null;
  }

  /**
   * One of our probes was acked directly within the probe timeout, `rttMs` after it went out
   * (the driver's clock): the peer's coordinate in the payload and the round trip move ours.
   * A payload that is not a coordinate is counted and dropped; none at all (a kodama agent with
   * coordinates off, an old peer) is no measurement.
   */
  notifyPingComplete(node: NodeInfo, rttMs: number, payload: Uint8Array | null): void {
    if (this.coordinates === undefined) return;
    const other = decodePingPayload(payload);
    if (other === '') return;
    const why = typeof other === 'string' ? other : this.coordinates.update(node.name, other, rttMs / 1000);
    if (typeof other === 'string' || why !== undefined) {
      this.count('serf.coordinate-rejected');
      this.log('DEBUG', `serf: rejected coordinate from ${node.name}: ${why}`);
      return;
    }
    this.count('serf.coordinate-updates');
    this.coordinateCache.set(node.name, other);
  }

  /** Serf's GetCachedCoordinate: ours, or the last one `name`'s acks carried; undefined when none (or off). */
  getCoordinate(name: string): Coordinate | undefined {
    if (this.coordinates === undefined) return undefined;
    if (name === this.config.nodeName) return this.coordinates.get();
    return this.coordinateCache.get(name);
  }

  // ---- input from the driver -----------------------------------------------------------

  /** Feed every MemberEvent the core emits, in order. */
  handleMemberEvent(e: MemberEvent, now: number): void {
    this.tick(now);
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
        if (e.existing.name === this.config.nodeName && (this.config.enableNameConflictResolution ?? true)) {
          this.startConflictResolution(now);
        }
        break;
      case 'ping-reply':
        this.healReply(e.name, e.addr, now);
        break;
      case 'join-complete':
        this.eventJoinIgnore = false;
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
    for (const ms of this.members_.values()) {
      if (ms.name !== this.config.nodeName && ms.status === 'alive') to.push({ ...ms.addr });
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
    this.eventQueue.reset();
    this.queryQueue.reset();
  }

  /** Replace our tags; the driver must then call the core's updateMeta() to gossip them. */
  setTags(tags: Tags): void {
    encodeTags(tags, this.config.protocolVersion); // throws when too large; keep the old tags
    this.tags = { ...tags };
    const self = this.members_.get(this.config.nodeName);
    if (self !== undefined) self.tags = { ...tags };
    this.pushOutput({ kind: 'update-meta' });
  }

  localTags(): Tags {
    return { ...this.tags };
  }

  // ---- output ----------------------------------------------------------------------------

  /** Every event, in order. */
  pollTypedEvent(): SerfAnyEvent | undefined {
    return this.events.shift();
  }

  /** Older view: the next member event; events of other kinds before it are skipped. */
  pollEvent(): SerfEvent | undefined {
    for (let e = this.events.shift(); e !== undefined; e = this.events.shift()) {
      if (e.type.startsWith('member-')) return e as SerfEvent;
    }
    return undefined;
  }

  pollOutput(): SerfOutput | undefined {
    return this.outputs.shift();
  }

  /** Earliest driver ms at which handleTimeout() has work (reap, reconnect, query deadlines). */
  pollTimeout(): number | undefined {
    if (this.stateValue === 'shutdown') return undefined;
    let t = Math.min(this.nextReapMs ?? Infinity, this.nextReconnectMs ?? Infinity, this.nextQueueCheckMs ?? Infinity, this.healIdle ? Infinity : (this.nextHealMs ?? Infinity));
    for (const q of this.openQueries.values()) t = Math.min(t, q.deadlineMs);
    for (const at of this.pendingPrunes.values()) t = Math.min(t, at);
    return t === Infinity ? undefined : t;
  }

  handleTimeout(now: number): void {
    this.tick(now);
    if (this.stateValue === 'shutdown') return;
    for (const q of [...this.openQueries.values()]) if (now >= q.deadlineMs) this.finishQuery(q, now);
    for (const [id, rq] of this.received) if (now > rq.deadlineMs) this.received.delete(id);
    for (const [name, at] of [...this.pendingPrunes]) {
      if (now < at) continue;
      this.pendingPrunes.delete(name);
      const ms = this.members_.get(name);
      if (ms !== undefined) this.eraseMember(ms, 'EventMemberReap (forced)');
    }
    if (this.nextReapMs !== undefined && now >= this.nextReapMs) {
      this.nextReapMs = now + (this.config.reapIntervalMs ?? REAP_INTERVAL_MS);
      this.reap(now);
    }
    if (this.nextQueueCheckMs !== undefined && now >= this.nextQueueCheckMs) {
      this.nextQueueCheckMs = now + QUEUE_CHECK_INTERVAL_MS;
      this.checkQueues();
    }
    if (this.nextReconnectMs !== undefined && now >= this.nextReconnectMs) {
      this.nextReconnectMs = now + (this.config.reconnectIntervalMs ?? RECONNECT_INTERVAL_MS);
      this.reconnect();
    }
    if (this.nextHealMs !== undefined && !this.healIdle && now >= this.nextHealMs) {
      this.nextHealMs = now + (this.config.healIntervalMs ?? 0);
      this.healPing(now);
    }
  }

  // ---- commands -------------------------------------------------------------------------------

  /** Broadcast a user event (serf's UserEvent, same limits and error texts). */
  userEvent(name: string, payload: Uint8Array, coalesce: boolean, now: number): void {
    this.tick(now);
    const limit = this.config.userEventSizeLimit ?? USER_EVENT_SIZE_LIMIT_DEFAULT;
    const before = Buffer.byteLength(name) + payload.length;
    if (before > limit) {
      throw new SerfError('ERR_SERF_TOO_LARGE', `user event exceeds configured limit of ${limit} bytes before encoding`);
    }
    if (before > USER_EVENT_SIZE_LIMIT_MAX) {
      throw new SerfError('ERR_SERF_TOO_LARGE', `user event exceeds sane limit of ${USER_EVENT_SIZE_LIMIT_MAX} bytes before encoding`);
    }
    const msg: UserEventMsg = { type: 'userEvent', ltime: this.eventClock.time(), name, payload: payload.slice(), cc: coalesce };
    const raw = encodeSerfMessage(msg);
    if (raw.length > limit) {
      throw new SerfError('ERR_SERF_TOO_LARGE', `encoded user event exceeds configured limit of ${limit} bytes after encoding`);
    }
    if (raw.length > USER_EVENT_SIZE_LIMIT_MAX) {
      throw new SerfError('ERR_SERF_TOO_LARGE', `encoded user event exceeds sane limit of ${USER_EVENT_SIZE_LIMIT_MAX} bytes before encoding`);
    }
    this.eventClock.increment();
    this.handleUserEvent(msg);
    this.queueOn(this.eventQueue, raw, this.sendEagerly(raw, now, 'event'));
  }

  /** Serf's default query timeout for the current cluster size. */
  defaultQueryTimeoutMs(): number {
    let alive = 0;
    for (const ms of this.members_.values()) if (ms.status === 'alive') alive++;
    return (this.config.gossipIntervalMs ?? 200) * QUERY_TIMEOUT_MULT * Math.ceil(Math.log10(Math.max(1, alive) + 1));
  }

  /** Start a query; returns its local id (acks/responses/done carry it as `queryId`). */
  query(p: QueryParams, now: number): number {
    this.tick(now);
    if (this.config.protocolVersion < 4) {
      throw new SerfError('ERR_SERF_BAD_STATE', 'Feature not supported');
    }
    const handle = this.startQuery(p, now);
    return handle;
  }

  /** Answer a received query (the `id` of its `query` event): once, before its deadline. */
  respond(id: number, payload: Uint8Array, now: number): void {
    this.tick(now);
    const rq = this.received.get(id);
    if (rq === undefined) throw new SerfError('ERR_SERF_QUERY', 'unknown query id (already answered or expired)');
    if (rq.responded) throw new SerfError('ERR_SERF_QUERY', 'response already sent');
    if (now > rq.deadlineMs) {
      this.received.delete(id);
      throw new SerfError('ERR_SERF_QUERY', 'response is past the deadline');
    }
    const resp: QueryResponseMsg = {
      type: 'queryResponse',
      ltime: rq.msg.ltime,
      id: rq.msg.id,
      from: this.config.nodeName,
      flags: 0,
      payload: payload.slice(),
    };
    const raw = encodeSerfMessage(resp);
    const limit = this.config.queryResponseSizeLimit ?? QUERY_RESPONSE_SIZE_LIMIT_DEFAULT;
    if (raw.length > limit) throw new SerfError('ERR_SERF_TOO_LARGE', `response exceeds limit of ${limit} bytes`);
    rq.responded = true;
    this.received.delete(id);
    this.sendResponse(rq.msg, resp, raw, now);
  }

  installKey(keyB64: string, now: number): number {
    return this.keyOp('install', keyB64, now);
  }
  useKey(keyB64: string, now: number): number {
    return this.keyOp('use', keyB64, now);
  }
  removeKey(keyB64: string, now: number): number {
    return this.keyOp('remove', keyB64, now);
  }
  listKeys(now: number): number {
    return this.keyOp('list', '', now);
  }

  /**
   * Force a failed member to left (serf force-leave); with `prune` erase it now (after the
   * broadcast wait if it was still leaving) with a `member-reap`.
   */
  forceLeave(node: string, prune: boolean, now: number): void {
    this.tick(now);
    const msg: LeaveIntent = { type: 'leave', ltime: this.clock.time(), node, prune };
    this.clock.increment();
    this.handleLeaveIntent(msg, now);
    if (this.hasAliveMembers()) this.queueBroadcast(encodeSerfMessage(msg));
  }

  /** Call before driver.join(): without replay, events older than the cluster's are ignored. */
  prepareJoin(replay: boolean): void {
    this.eventJoinIgnore = !replay;
  }

  /** Snapshot restore: clocks resume, and events/queries at or before them are not re-run. */
  restoreClocks(c: { clock: number; eventClock: number; queryClock: number }): void {
    if (c.clock > 0) this.clock.witness(c.clock);
    if (c.eventClock > 0) {
      this.eventClock.witness(c.eventClock);
      this.eventMinTime = Math.max(this.eventMinTime, c.eventClock + 1);
    }
    if (c.queryClock > 0) {
      this.queryClock.witness(c.queryClock);
      this.queryMinTime = Math.max(this.queryMinTime, c.queryClock + 1);
    }
  }

  /** Every member Serf knows (alive, leaving, failed, left), as snapshots. */
  members(): Member[] {
    return [...this.members_.values()].map((ms) => snapshotMember(ms));
  }

  localMember(): Member | undefined {
    const ms = this.members_.get(this.config.nodeName);
    return ms === undefined ? undefined : snapshotMember(ms);
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
      if (ms.status === 'failed') failed++;
      else if (ms.status === 'left') left++;
    }
    return {
      members: String(this.members_.size),
      failed: String(failed),
      left: String(left),
      member_time: String(this.clock.time()),
      event_time: String(this.eventClock.time()),
      query_time: String(this.queryClock.time()),
      intent_queue: String(this.intentQueue.length),
      event_queue: String(this.eventQueue.length),
      query_queue: String(this.queryQueue.length),
      coordinate_resets: String(this.coordinates?.resets ?? 0),
    };
  }

  // ---- member status machine (5.5) --------------------------------------------------------

  private handleNodeJoin(n: NodeInfo): void {
    let ms = this.members_.get(n.name);
    const tags = this.decodeMemberTags(n);
    if (ms === undefined) {
      ms = this.members_.add(n, tags, 'alive');
      // An intent may have raced ahead of memberlist's alive; the buffer holds the newest one.
      const intent = this.recentIntent(n.name);
      if (intent !== undefined) {
        ms.statusLTime = intent.ltime;
        if (intent.type === 'leave') ms.status = 'leaving';
      }
    } else {
      const old = ms.status;
      this.members_.refresh(ms, n, tags, 'alive');
      ms.leaveTimeMs = 0;
      if (old === 'failed' || old === 'left') removeName(this.leftMembers, n.name);
    }
    this.log('INFO', `serf: EventMemberJoin: ${n.name} ${n.addr.ip}`);
    this.emit('member-join', ms);
  }

  private handleNodeLeave(n: NodeInfo, now: number): void {
    const ms = this.members_.get(n.name);
    if (ms === undefined) return;
    let type: MemberEventType;
    if (ms.status === 'leaving' || (ms.status === 'alive' && n.state === 'left')) {
      // memberlist's own graceful-leave mark also counts: it means the node said goodbye even
      // if its Serf leave intent was lost.
      ms.status = 'left';
      this.leftMembers.push(n.name);
      type = 'member-leave';
    } else if (ms.status === 'alive') {
      ms.status = 'failed';
      type = 'member-failed';
      if (this.healIdle && this.nextHealMs !== undefined) {
        this.healIdle = false;
        this.nextHealMs = now + (this.config.healIntervalMs ?? 0);
      }
    } else {
      this.log('WARN', `serf: Bad state when leave: ${ms.status}`);
      return;
    }
    ms.leaveTimeMs = now;
    this.log(
      'INFO',
      `serf: ${type === 'member-leave' ? 'EventMemberLeave' : 'EventMemberFailed'}: ${n.name} ${n.addr.ip}`,
    );
    this.emit(type, ms);
  }

  private handleNodeUpdate(n: NodeInfo): void {
    const ms = this.members_.get(n.name);
    if (ms === undefined) return;
    this.members_.refresh(ms, n, this.decodeMemberTags(n), ms.status);
    this.log('INFO', `serf: EventMemberUpdate: ${n.name}`);
    this.emit('member-update', ms);
  }

  /** Returns whether the intent was new and should be re-broadcast. */
  private handleJoinIntent(msg: JoinIntent, now: number): boolean {
    this.clock.witness(msg.ltime);
    const ms = this.members_.get(msg.node);
    if (ms === undefined) return this.upsertIntent(msg.node, 'join', msg.ltime, now);
    if (msg.ltime <= ms.statusLTime) return false;
    ms.statusLTime = msg.ltime;
    // A leave older than this join was cancelled.
    if (ms.status === 'leaving') ms.status = 'alive';
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
    switch (ms.status) {
      case 'alive':
        ms.status = 'leaving';
        break;
      case 'failed':
        ms.status = 'left';
        ms.leaveTimeMs = now;
        this.leftMembers.push(msg.node);
        this.log('INFO', `serf: EventMemberLeave (forced): ${msg.node} ${ms.addr.ip}`);
        this.emit('member-leave', ms);
        break;
      case 'leaving':
      case 'left':
        break;
      case 'none':
        return false;
    }
    if (msg.prune) this.prune(ms, now);
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
    this.queueOn(this.intentQueue, serfMsg);
  }

  /** The queue limit now: Serf's getQueueMax (a fixed maximum, or twice the cluster with a floor). */
  private get maxQueueDepth(): number {
    return this.minQueueDepth > 0 ? Math.max(this.minQueueDepth, 2 * this.members_.size) : this.maxQueueDepthCfg;
  }

  /** `sent`: transmissions it already had (sendEagerly). */
  private queueOn(q: TransmitLimitedQueue, serfMsg: Uint8Array, sent = 0): void {
    q.queue({ msg: this.framed(serfMsg) }, sent);
    // Prune with 25% slack: pruning sorts the queue, so doing it per message under a flood
    // would cost O(depth · log depth) each time.
    const max = this.maxQueueDepth;
    if (q.length > max + (max >> 2)) this.pruneQueue(q, max);
  }

  /** Drop the oldest broadcasts beyond `max`, counting each (serf.dropped.queue-pruned). */
  private pruneQueue(q: TransmitLimitedQueue, max: number): void {
    const before = q.length;
    q.prune(max);
    this.countBy('serf.dropped.queue-pruned', before - q.length);
  }

  /**
   * News we start (a user event, a query): send it at once to eagerGossipNodes random alive
   * members (every one, up to ownNewsDirectMax of them), at most once per gossip interval for
   * each kind — so a query sent every tick (a deploy asking its balancers) never costs a user
   * event right after it its direct sends (it would be left to gossip, which in a cluster half
   * cut off spends its few transmissions on unreachable members).
   * Returns how many transmissions that counts as (at most eagerGossipNodes).
   */
  private sendEagerly(serfMsg: Uint8Array, now: number, kind: 'event' | 'query'): number {
    const k = this.config.eagerGossipNodes ?? DEFAULT_EAGER_GOSSIP_NODES;
    if (!(k > 0) || now < this.lastEagerSendMs[kind] + (this.config.gossipIntervalMs ?? 200)) return 0;
    const candidates: Member[] = [];
    for (const ms of this.members_.values()) {
      if (ms.name !== this.config.nodeName && ms.status === 'alive') candidates.push(ms);
    }
    // A small cluster hears it from us directly, every member (still counted as k transmissions,
    // so the queue keeps the rest of the budget for a lost packet).
    const all = candidates.length <= (this.config.ownNewsDirectMax ?? DEFAULT_OWN_NEWS_DIRECT_MAX);
    const n = all ? candidates.length : Math.min(k, candidates.length);
    for (let i = 0; i < n; i++) {
      const [m] = candidates.splice(all ? 0 : this.random.int(candidates.length), 1);
      this.pushOutput({ kind: 'user-packet', to: { ...m!.addr }, payload: serfMsg });
    }
    if (n > 0) {
      this.lastEagerSendMs[kind] = now;
      this.counters_['serf.eager-sends'] = (this.counters_['serf.eager-sends'] ?? 0) + n;
    }
    return Math.min(n, k);
  }

  // ---- user events (5.6) ---------------------------------------------------------------------

  /** Returns whether the event was new (deliver + re-broadcast). */
  private handleUserEvent(msg: UserEventMsg): boolean {
    this.eventClock.witness(msg.ltime);
    if (msg.ltime < this.eventMinTime) {
      this.count('serf.dropped.event-before-min-time');
      return false;
    }
    const cur = this.eventClock.time();
    if (cur > EVENT_BUFFER_SIZE && msg.ltime < cur - EVENT_BUFFER_SIZE) {
      this.count('serf.dropped.event-too-old');
      this.log('WARN', `serf: received old event ${msg.name} from time ${msg.ltime} (current: ${cur})`);
      return false;
    }
    const added = this.eventRing.add(msg.ltime, msg.name, msg.payload);
    if (added === 'duplicate') return false;
    if (added !== 'new') {
      // A flood: distinct events at one LTime, or more bytes than push/pull should carry.
      this.count(`serf.dropped.event-${added}`);
      return false;
    }
    const payload = msg.payload.slice();
    this.pushEvent({ type: 'user', name: msg.name, payload, ltime: msg.ltime, coalesce: msg.cc });
    return true;
  }

  // ---- queries (5.7, 5.8) ----------------------------------------------------------------------

  private startQuery(p: QueryParams, now: number, internal?: Pick<OpenQuery, 'key' | 'conflict'>): number {
    const filters: Uint8Array[] = [];
    if (p.filterNodes !== undefined && p.filterNodes.length > 0) filters.push(encodeNodeFilter(p.filterNodes));
    for (const [tag, expr] of Object.entries(p.filterTags ?? {})) filters.push(encodeTagFilter(tag, expr));
    const timeoutMs = p.timeoutMs !== undefined && p.timeoutMs > 0 ? p.timeoutMs : this.defaultQueryTimeoutMs();
    const relayFactor = p.relayFactor ?? 0;
    if (!Number.isInteger(relayFactor) || relayFactor < 0 || relayFactor > 255) {
      throw new SerfError('ERR_SERF_BAD_STATE', 'relay factor must be 0..255');
    }
    const addr = this.localAddr();
    if (addr.ip === '' || addr.port === 0) {
      // Answers are sent to this address; without it nobody could reply.
      throw new SerfError('ERR_SERF_BAD_STATE', 'cannot query before our own address is known (set advertise)');
    }
    const ltime = this.queryClock.time();
    let wireId = this.random.int(0x7fffffff);
    const msg: QueryMsg = {
      type: 'query',
      ltime,
      id: wireId,
      addr,
      sourceNode: this.config.nodeName,
      filters,
      flags: p.requestAck === true ? QUERY_FLAG_ACK : 0,
      relayFactor,
      timeoutMs,
      name: p.name,
      payload: p.payload.slice(),
    };
    const raw = encodeSerfMessage(msg);
    const limit = this.config.querySizeLimit ?? QUERY_SIZE_LIMIT_DEFAULT;
    if (raw.length > limit) throw new SerfError('ERR_SERF_TOO_LARGE', `query exceeds limit of ${limit} bytes`);
    wireId = msg.id;
    const handle = this.nextHandle++;
    const prev = this.openByLTime.get(ltime);
    if (prev !== undefined) {
      // Two queries in the same clock tick: serf keeps only the newer one open too.
      const old = this.openQueries.get(prev);
      if (old !== undefined) this.finishQuery(old, now);
    }
    this.openQueries.set(handle, {
      handle,
      ltime,
      wireId,
      deadlineMs: now + timeoutMs,
      acks: new Set(),
      responses: new Set(),
      ...internal,
    });
    this.openByLTime.set(ltime, handle);
    // Process locally first (we may match our own filters), then gossip it.
    this.handleQuery(msg, now);
    this.queueOn(this.queryQueue, raw, this.sendEagerly(raw, now, 'query'));
    return handle;
  }

  /** Returns whether to re-broadcast. */
  private handleQuery(msg: QueryMsg, now: number): boolean {
    this.queryClock.witness(msg.ltime);
    if (msg.ltime < this.queryMinTime) {
      this.count('serf.dropped.query-before-min-time');
      return false;
    }
    const cur = this.queryClock.time();
    if (cur > QUERY_BUFFER_SIZE && msg.ltime < cur - QUERY_BUFFER_SIZE) {
      this.count('serf.dropped.query-too-old');
      this.log('WARN', `serf: received old query ${msg.name} from time ${msg.ltime} (current: ${cur})`);
      return false;
    }
    const added = this.queryRing.add(msg.ltime, msg.id);
    if (added === 'duplicate') return false;
    if (added === 'slot-full') {
      this.count('serf.dropped.query-slot-full');
      return false;
    }
    const rebroadcast = (msg.flags & QUERY_FLAG_NO_BROADCAST) === 0;
    const filterTags = this.config.queryFilterTags === undefined ? this.tags : { ...this.tags, ...this.config.queryFilterTags };
    if (!queryFiltersMatch(msg.filters, this.config.nodeName, filterTags)) return rebroadcast;
    if (msg.addr.ip === '' || msg.addr.port === 0) {
      this.count('serf.dropped.query-no-addr');
      return rebroadcast;
    }
    if ((msg.flags & QUERY_FLAG_ACK) !== 0) {
      const ack: QueryResponseMsg = {
        type: 'queryResponse',
        ltime: msg.ltime,
        id: msg.id,
        from: this.config.nodeName,
        flags: RESPONSE_FLAG_ACK,
        payload: null,
      };
      this.sendResponse(msg, ack, encodeSerfMessage(ack), now);
    }
    const deadlineMs = now + msg.timeoutMs;
    if (msg.name.startsWith(INTERNAL_QUERY_PREFIX)) {
      this.handleInternalQuery(msg, deadlineMs, now);
      return rebroadcast;
    }
    const id = this.nextHandle++;
    this.rememberReceived(id, { msg, deadlineMs, responded: false });
    this.pushEvent({
      type: 'query',
      id,
      name: msg.name,
      payload: msg.payload.slice(),
      ltime: msg.ltime,
      deadlineMs,
      sourceNode: msg.sourceNode,
    });
    return rebroadcast;
  }

  private handleInternalQuery(msg: QueryMsg, deadlineMs: number, now: number): void {
    const answer = (payload: Uint8Array): void => {
      const id = this.nextHandle++;
      this.rememberReceived(id, { msg, deadlineMs, responded: false });
      try {
        this.respond(id, payload, now);
      } catch (e) {
        this.count('serf.dropped.internal-response');
        this.log('ERR', `serf: Failed to respond to ${msg.name}: ${(e as Error).message}`);
      }
    };
    const op = (Object.keys(KEY_QUERY_NAMES) as KeyOp[]).find((k) => KEY_QUERY_NAMES[k] === msg.name);
    if (op !== undefined) {
      const { response, changed } = answerKeyQuery(op, msg.payload, this.keyring, this.config.queryResponseSizeLimit ?? QUERY_RESPONSE_SIZE_LIMIT_DEFAULT);
      if (changed) {
        this.log('INFO', `serf: Received ${op}-key query`);
        this.pushEvent({ type: 'keyring-changed', op });
      }
      answer(response);
      return;
    }
    switch (msg.name) {
      case '_serf_ping':
        return; // the ack (if asked for) is the answer
      case '_serf_conflict': {
        const name = new TextDecoder().decode(msg.payload);
        if (name === this.config.nodeName) return; // the node in question does not vote
        const m = this.members_.get(name);
        answer(
          encodeConflictResponse(
            m === undefined
              ? null
              : { ...snapshotMember(m), status: ['none', 'alive', 'leaving', 'left', 'failed'].indexOf(m.status) },
          ),
        );
        return;
      }
      default:
        this.count('serf.dropped.unknown-internal-query');
        this.log('WARN', `serf: Unhandled internal query '${msg.name}'`);
    }
  }

  /** Send a response (or ack) to the query's originator, and through relayFactor members. */
  private sendResponse(q: QueryMsg, resp: QueryResponseMsg, raw: Uint8Array, now: number): void {
    if (q.sourceNode === this.config.nodeName && this.openByLTime.get(q.ltime) !== undefined) {
      // Our own query: no need to go through the network.
      this.handleQueryResponse(resp, now);
    } else {
      this.pushOutput({ kind: 'user-packet', to: { ...q.addr }, payload: raw });
    }
    if (q.relayFactor === 0) return;
    const candidates: Member[] = [];
    for (const m of this.members_.values()) {
      const name = m.name;
      if (name === this.config.nodeName || m.status !== 'alive' || m.protocolMax < 5) continue;
      if (m.addr.ip === q.addr.ip && m.addr.port === q.addr.port) continue;
      candidates.push(m);
    }
    if (this.members_.size < q.relayFactor + 1) return;
    const relayed = encodeRelay(q.addr, q.sourceNode, raw);
    for (let i = 0; i < q.relayFactor && candidates.length > 0; i++) {
      const [m] = candidates.splice(this.random.int(candidates.length), 1);
      if (m !== undefined) this.pushOutput({ kind: 'user-packet', to: { ...m.addr }, payload: relayed });
    }
  }

  private handleQueryResponse(resp: QueryResponseMsg, now: number): void {
    const handle = this.openByLTime.get(resp.ltime);
    const q = handle === undefined ? undefined : this.openQueries.get(handle);
    if (q === undefined || q.wireId !== resp.id) {
      this.count('serf.dropped.response-unknown-query');
      return;
    }
    if (now >= q.deadlineMs) {
      this.finishQuery(q, now);
      return;
    }
    if ((resp.flags & RESPONSE_FLAG_ACK) !== 0) {
      if (q.acks.has(resp.from)) return;
      q.acks.add(resp.from);
      if (q.key === undefined && q.conflict === undefined) this.pushEvent({ type: 'query-ack', queryId: q.handle, from: resp.from });
      return;
    }
    if (q.responses.has(resp.from)) {
      this.count('serf.dropped.duplicate-response');
      return;
    }
    q.responses.add(resp.from);
    const payload = resp.payload ?? new Uint8Array(0);
    if (q.key !== undefined) {
      addKeyResponse(q.key, resp.from, payload);
    } else if (q.conflict !== undefined) {
      try {
        const m = decodeConflictResponse(payload);
        if (m === null) return;
        q.conflict.responses++;
        const local = this.localAddr();
        if (m.addr.ip === local.ip && m.addr.port === local.port) q.conflict.matching++;
      } catch {
        this.count('serf.dropped.bad-conflict-response');
      }
    } else {
      this.pushEvent({ type: 'query-response', queryId: q.handle, from: resp.from, payload: payload.slice() });
    }
  }

  private finishQuery(q: OpenQuery, _now: number): void {
    this.openQueries.delete(q.handle);
    if (this.openByLTime.get(q.ltime) === q.handle) this.openByLTime.delete(q.ltime);
    if (q.key !== undefined) {
      finishKeyResult(q.key);
      this.pushEvent({ type: 'key-result', opId: q.handle, ...q.key });
    } else if (q.conflict !== undefined) {
      this.conflictQuery = undefined;
      const { responses, matching } = q.conflict;
      const majority = Math.floor(responses / 2) + 1;
      if (matching >= majority) {
        this.log('INFO', `serf: majority in name conflict resolution [${matching} / ${responses}]`);
      } else {
        this.log('WARN', `serf: minority in name conflict resolution, quiting [${matching} / ${responses}]`);
        this.pushOutput({ kind: 'shutdown', reason: `lost the name conflict for '${this.config.nodeName}' [${matching} / ${responses}]` });
      }
    } else {
      this.pushEvent({ type: 'query-done', queryId: q.handle, acks: q.acks.size, responses: q.responses.size });
    }
  }

  private keyOp(op: KeyOp, keyB64: string, now: number): number {
    this.tick(now);
    let key = new Uint8Array(0);
    if (op !== 'list') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(keyB64.trim())) {
        throw new SerfError('ERR_SERF_BAD_KEY', 'key is not valid base64');
      }
      key = new Uint8Array(Buffer.from(keyB64.trim(), 'base64'));
    }
    let alive = 0;
    for (const ms of this.members_.values()) if (ms.status === 'alive') alive++;
    return this.startQuery(
      { name: KEY_QUERY_NAMES[op], payload: encodeKeyRequest(key) },
      now,
      { key: newKeyResult(op, alive) },
    );
  }

  private startConflictResolution(now: number): void {
    if (this.conflictQuery !== undefined || this.stateValue !== 'alive') return;
    this.conflictQuery = this.startQuery(
      { name: '_serf_conflict', payload: new TextEncoder().encode(this.config.nodeName) },
      now,
      { conflict: { responses: 0, matching: 0 } },
    );
  }

  // ---- reap, reconnect, prune (5.10) -----------------------------------------------------------

  private reap(now: number): void {
    const failedTimeout = this.config.reconnectTimeoutMs ?? RECONNECT_TIMEOUT_MS;
    const leftTimeout = this.config.tombstoneTimeoutMs ?? TOMBSTONE_TIMEOUT_MS;
    for (const ms of [...this.members_.values()]) {
      const st = ms.status;
      if (st === 'failed' && now - ms.leaveTimeMs > failedTimeout) this.eraseMember(ms, 'EventMemberReap');
      else if (st === 'left' && now - ms.leaveTimeMs > leftTimeout) this.eraseMember(ms, 'EventMemberReap');
    }
  }

  private reconnect(): void {
    if (this.stateValue !== 'alive') return;
    const failed: Member[] = [];
    for (const ms of this.members_.values()) if (ms.status === 'failed') failed.push(ms);
    if (failed.length === 0) return;
    let alive = this.members_.size - failed.length - this.leftMembers.length;
    if (alive <= 0) alive = 1;
    // Fewer failed members than live ones: try only sometimes, so a big cluster does not
    // hammer a dead node from every member at once.
    if (this.random.float() > failed.length / alive) return;
    const m = failed[this.random.int(failed.length)];
    if (m === undefined) return;
    this.log('INFO', `serf: attempting reconnect to ${m.name} ${fmtAddr(m.addr)}`);
    this.pushOutput({ kind: 'join', seeds: [{ ...m.addr }], node: m.name });
  }

  /**
   * kodama's heal ping (limits.ts): Serf waits for its reconnect timer (30 s, and only with
   * probability failed/alive) to notice that a failed member is reachable again. Instead ping one
   * failed member now and then — cheap, one small UDP packet — and join it the moment it answers.
   */
  private healPing(now: number): void {
    if (this.stateValue !== 'alive') return;
    const failed: MemberRef[] = [];
    let alive = 0;
    for (const ms of this.members_.values()) {
      if (ms.status === 'failed') failed.push(ms);
      else if (ms.status === 'alive') alive++;
    }
    for (const name of this.healDue.keys()) if (this.members_.get(name)?.status !== 'failed') this.healDue.delete(name);
    for (const name of this.healJoinedAt.keys()) if (this.members_.get(name)?.status !== 'failed') this.healJoinedAt.delete(name);
    if (failed.length === 0) {
      this.healIdle = true;
      return;
    }
    if (this.random.float() >= Math.min(1, Math.max(HEAL_PINGS_PER_INTERVAL, failed.length) / Math.max(1, alive))) return;
    const due = failed.filter((ms) => (this.healDue.get(ms.name) ?? 0) <= now);
    if (due.length === 0) return;
    const ms = due[this.random.int(due.length)]!;
    // Failed long ago: fewer pings cluster-wide too (its address may belong to a new server by now).
    const age = now - ms.leaveTimeMs;
    if (age > HEAL_FULL_RATE_MS && this.random.float() >= HEAL_FULL_RATE_MS / age) return;
    const interval = this.config.healIntervalMs ?? 0;
    const backoff = Math.min(HEAL_BACKOFF_MAX_MS, Math.max(interval, age / HEAL_BACKOFF_DIVISOR));
    this.healDue.set(ms.name, now + backoff * (0.75 + 0.5 * this.random.float()));
    this.count('serf.heal-pings');
    this.pushOutput({ kind: 'ping', node: ms.name, addr: { ...ms.addr } });
  }

  private healReply(name: string, addr: Address, now: number): void {
    const ms = this.members_.get(name);
    if (this.stateValue !== 'alive' || ms === undefined || ms.status !== 'failed') return;
    if (now - (this.healJoinedAt.get(name) ?? -Infinity) < HEAL_JOIN_HOLD_MS) return;
    this.healJoinedAt.set(name, now);
    this.count('serf.heal-joins');
    this.log('INFO', `serf: failed member ${name} answers at ${fmtAddr(addr)}: rejoining`);
    this.pushOutput({ kind: 'join', seeds: [{ ...addr }], node: name });
  }

  private prune(ms: MemberRef, now: number): void {
    if (ms.status === 'leaving') {
      // It may still be saying goodbye: erase after serf's broadcast timeout + propagate delay.
      this.pendingPrunes.set(
        ms.name,
        now + (this.config.broadcastTimeoutMs ?? BROADCAST_TIMEOUT_MS) + LEAVE_PROPAGATE_DELAY_MS,
      );
      return;
    }
    this.eraseMember(ms, 'EventMemberReap (forced)');
  }

  private eraseMember(ms: MemberRef, why: string): void {
    const name = ms.name;
    if (name === this.config.nodeName) return;
    const gone = snapshotMember(ms); // the view dies with its slot
    this.members_.delete(name);
    this.coordinates?.forget(name);
    this.coordinateCache.delete(name);
    removeName(this.leftMembers, name);
    this.pendingPrunes.delete(name);
    this.log('INFO', `serf: ${why}: ${name} ${gone.addr.ip}`);
    this.emit('member-reap', gone);
  }

  /** Record the time and arm the periodic tasks on first sight of the clock. */
  private tick(now: number): void {
    this.lastNowMs = Math.max(this.lastNowMs, now);
    if (this.nextReapMs === undefined) {
      this.nextReapMs = now + (this.config.reapIntervalMs ?? REAP_INTERVAL_MS);
      this.nextReconnectMs = now + (this.config.reconnectIntervalMs ?? RECONNECT_INTERVAL_MS);
      this.nextQueueCheckMs = now + QUEUE_CHECK_INTERVAL_MS;
      const heal = this.config.healIntervalMs ?? 0;
      if (heal > 0) this.nextHealMs = now + heal;
    }
  }

  /** Serf's periodic queue check: warn when a queue backs up, prune beyond the maximum. */
  private checkQueues(): void {
    for (const [name, q] of [['Intent', this.intentQueue], ['Event', this.eventQueue], ['Query', this.queryQueue]] as const) {
      const n = q.length;
      const max = this.maxQueueDepth;
      if (n >= QUEUE_DEPTH_WARNING) this.log('WARN', `serf: ${name} queue depth: ${n}`);
      if (n > max) {
        this.log('WARN', `serf: ${name} queue depth (${n}) exceeds limit (${max}), dropping messages!`);
        this.pruneQueue(q, max);
      }
    }
  }

  private localAddr(): Address {
    if (this.config.advertise !== undefined) return { ...this.config.advertise };
    const self = this.members_.get(this.config.nodeName);
    return self === undefined ? { ip: '', port: 0 } : { ...self.addr };
  }

  private pushEvent(e: SerfAnyEvent): void {
    if (this.events.length >= MAX_PENDING_EVENTS) {
      this.events.shift();
      this.count('serf.dropped.event-overflow');
    }
    this.events.push(e);
    this.config.wake?.();
  }

  /** Queries awaiting respond() are capped: a flood with long timeouts must not grow memory. */
  private rememberReceived(id: number, rq: ReceivedQuery): void {
    if (this.received.size >= MAX_OPEN_RECEIVED_QUERIES) {
      const oldest = this.received.keys().next().value;
      if (oldest !== undefined) this.received.delete(oldest);
      this.count('serf.dropped.received-query-overflow');
    }
    this.received.set(id, rq);
  }

  private pushOutput(o: SerfOutput): void {
    if (this.outputs.length >= MAX_PENDING_EVENTS) {
      this.outputs.shift();
      this.count('serf.dropped.output-overflow');
    }
    this.outputs.push(o);
    this.config.wake?.();
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
    for (const ms of this.members_.values()) {
      if (ms.name !== this.config.nodeName && ms.status === 'alive') return true;
    }
    return false;
  }

  private decodeMemberTags(n: NodeInfo): Tags {
    try {
      return sharedTags(n.meta);
    } catch (e) {
      this.count('serf.dropped.bad-tags');
      this.log('ERR', `serf: Failed to decode tags of ${n.name}: ${(e as Error).message}`);
      return {};
    }
  }

  private emit(type: MemberEventType, m: Member): void {
    this.pushEvent({ type, members: [snapshotMember(m)] });
  }

  private count(key: string): void {
    this.counters_[key] = (this.counters_[key] ?? 0) + 1;
  }

  private countBy(key: string, n: number): void {
    if (n > 0) this.counters_[key] = (this.counters_[key] ?? 0) + n;
  }
}

/**
 * Decoded tags per meta: the membership core hands out one interned array per distinct meta in
 * the process (memberlist/intern.ts), so every member table that lists a node shares one decoded,
 * frozen tags object instead of decoding its own (N tables of N members in a simulated cluster).
 * Never handed out: members() and events copy them.
 */
const tagsByMeta = new WeakMap<Uint8Array, Tags>();

function sharedTags(meta: Uint8Array): Tags {
  let t = tagsByMeta.get(meta);
  if (t === undefined) {
    t = Object.freeze(decodeTags(meta));
    tagsByMeta.set(meta, t);
  }
  return t;
}



function removeName(list: string[], name: string): void {
  const i = list.indexOf(name);
  if (i >= 0) list.splice(i, 1);
}

function fmtAddr(a: Address): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}
