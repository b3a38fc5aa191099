// Event coalescing as serf's agent configures it (doc 5.11), sans-I/O: `handle(event, now)`,
// `pollTimeout()`, `handleTimeout(now)`, `pollEvent()`. No clock, no timer.
//
// Two independent windows, like serf's two coalesce loops:
//   - member events (join/leave/failed/update/reap): a window opens with the first event and
//     flushes `coalescePeriodMs` later, or earlier once `quiescentPeriodMs` pass with no new
//     event. Per member only its latest event is kept; at flush it is dropped if it equals the
//     last event flushed for that member (updates always pass); one event per type lists the
//     members.
//   - user events with `coalesce: true`: same timing; per event name only the events with the
//     highest LTime are kept.
// Everything else (queries, user events without coalesce) passes straight through.
//
// Two deliberate differences from serf: the per-window map is cleared after a flush (serf keeps
// it, so it re-emits stale updates on later flushes), and a member's "last flushed" entry is
// forgotten once it is reaped, so that map is bounded by the members we know.

import type { MemberEventName } from './handlers.ts';

/** Anything with a `type`; member events carry `members`, user events `name`/`ltime`/`coalesce`. */
export interface CoalescableEvent {
  type: string;
}

interface MemberEventLike {
  type: MemberEventName;
  members: readonly { name: string }[];
}

interface UserEventLike {
  type: 'user';
  name: string;
  ltime: number;
  coalesce?: boolean;
}

export interface CoalescerOptions {
  /** Member events; 0 disables member coalescing (serf agent: 3 s / 1 s). */
  coalescePeriodMs?: number;
  quiescentPeriodMs?: number;
  /** User events with CC; 0 disables (serf agent: 3 s / 1 s). */
  userCoalescePeriodMs?: number;
  userQuiescentPeriodMs?: number;
}

const MEMBER_TYPES: ReadonlySet<string> = new Set(['member-join', 'member-leave', 'member-failed', 'member-update', 'member-reap']);

function isMemberEvent(e: CoalescableEvent): e is CoalescableEvent & MemberEventLike {
  return MEMBER_TYPES.has(e.type) && Array.isArray((e as Partial<MemberEventLike>).members);
}

function isCoalescedUserEvent(e: CoalescableEvent): e is CoalescableEvent & UserEventLike {
  return e.type === 'user' && (e as Partial<UserEventLike>).coalesce === true;
}

/** One coalescing window: opened at `openedMs`, last input at `lastMs`. */
interface Window {
  openedMs: number;
  lastMs: number;
}

export class Coalescer<E extends CoalescableEvent> {
  private readonly out: E[] = [];
  private outHead = 0;
  private readonly cPeriodMs: number;
  private readonly qPeriodMs: number;
  private readonly ucPeriodMs: number;
  private readonly uqPeriodMs: number;

  private memberWindow: Window | null = null;
  /** name → the member's latest event and its member entry, in first-seen order. */
  private latest = new Map<string, { event: E & MemberEventLike; member: MemberEventLike['members'][number] }>();
  private readonly lastFlushed = new Map<string, string>();

  private userWindow: Window | null = null;
  private userLatest = new Map<string, { ltime: number; events: E[] }>();

  constructor(opts: CoalescerOptions = {}) {
    this.cPeriodMs = opts.coalescePeriodMs ?? 3000;
    this.qPeriodMs = opts.quiescentPeriodMs ?? 1000;
    this.ucPeriodMs = opts.userCoalescePeriodMs ?? 3000;
    this.uqPeriodMs = opts.userQuiescentPeriodMs ?? 1000;
  }

  handle(e: E, now: number): void {
    if (isMemberEvent(e) && this.cPeriodMs > 0 && this.qPeriodMs > 0) {
      this.memberWindow = this.touch(this.memberWindow, now);
      for (const m of e.members) {
        // delete first so the map order follows the latest event
        this.latest.delete(m.name);
        this.latest.set(m.name, { event: e, member: m });
      }
      return;
    }
    if (isCoalescedUserEvent(e) && this.ucPeriodMs > 0 && this.uqPeriodMs > 0) {
      this.userWindow = this.touch(this.userWindow, now);
      const cur = this.userLatest.get(e.name);
      if (cur === undefined || cur.ltime < e.ltime) {
        this.userLatest.set(e.name, { ltime: e.ltime, events: [e] });
      } else if (cur.ltime === e.ltime) {
        cur.events.push(e);
      }
      return;
    }
    this.out.push(e);
  }

  private touch(w: Window | null, now: number): Window {
    return w === null ? { openedMs: now, lastMs: now } : { openedMs: w.openedMs, lastMs: now };
  }

  private dueMs(w: Window | null, cPeriodMs: number, qPeriodMs: number): number | undefined {
    if (w === null) return undefined;
    return Math.min(w.openedMs + cPeriodMs, w.lastMs + qPeriodMs);
  }

  /** Absolute time (same clock as `now`) of the next flush, or undefined if nothing is held. */
  pollTimeout(): number | undefined {
    const a = this.dueMs(this.memberWindow, this.cPeriodMs, this.qPeriodMs);
    const b = this.dueMs(this.userWindow, this.ucPeriodMs, this.uqPeriodMs);
    if (a === undefined) return b;
    if (b === undefined) return a;
    return Math.min(a, b);
  }

  handleTimeout(now: number): void {
    const a = this.dueMs(this.memberWindow, this.cPeriodMs, this.qPeriodMs);
    if (a !== undefined && now >= a) this.flushMembers();
    const b = this.dueMs(this.userWindow, this.ucPeriodMs, this.uqPeriodMs);
    if (b !== undefined && now >= b) this.flushUser();
  }

  /** Flush both windows now (shutdown; serf flushes on shutdown too). */
  flush(): void {
    this.flushMembers();
    this.flushUser();
  }

  pollEvent(): E | undefined {
    if (this.outHead >= this.out.length) return undefined;
    const e = this.out[this.outHead++];
    if (this.outHead > 1024 && this.outHead * 2 > this.out.length) {
      this.out.splice(0, this.outHead);
      this.outHead = 0;
    }
    return e;
  }

  /** Events held in open windows (members + user events). */
  held(): number {
    let n = this.latest.size;
    for (const v of this.userLatest.values()) n += v.events.length;
    return n;
  }

  private flushMembers(): void {
    this.memberWindow = null;
    const byType = new Map<string, { template: E & MemberEventLike; members: MemberEventLike['members'][number][] }>();
    for (const [name, { event, member }] of this.latest) {
      const prev = this.lastFlushed.get(name);
      if (prev === event.type && event.type !== 'member-update') continue;
      if (event.type === 'member-reap') this.lastFlushed.delete(name);
      else this.lastFlushed.set(name, event.type);
      let group = byType.get(event.type);
      if (group === undefined) {
        group = { template: event, members: [] };
        byType.set(event.type, group);
      }
      group.members.push(member);
    }
    this.latest = new Map();
    for (const { template, members } of byType.values()) {
      this.out.push({ ...template, members });
    }
  }

  private flushUser(): void {
    this.userWindow = null;
    for (const { events } of this.userLatest.values()) this.out.push(...events);
    this.userLatest = new Map();
  }
}
