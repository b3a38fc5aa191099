// MonitorCore: turns what the cluster gossips (each member's status and its `chk` tag) into
// alerts, Sensu style. Pure: time comes in as `now` (Date.now() ms, the clock silences expire
// on), no I/O, no timers; the role (monitor-role.ts) feeds it and drains pollAlerts().
//
// Every monitor runs the same state machine on the same inputs. Only the *leader* (the alive
// member tagged mon=1 with the lowest name, as this core sees the cluster) hands alerts out;
// the others record the same decisions without emitting them (shadow), so when the leader dies
// its successor already knows which incidents were alerted and does not page twice.
//
// Incidents are keyed by (node, check); the member itself is the check named `member`. Each
// handler has its own filters, so each incident remembers per handler what that handler was
// last told (`alerted` = the status of the last create it got, undefined = nothing yet).

import { decodeSummary } from './summary.ts';
import { SilenceStore } from './silences.ts';
import { MAX_OCCURRENCES, MONITOR_TAG, STATE_OF, SUMMARY_TAG } from './types.ts';
import type { AlertEvent, CheckState, CheckStatus, CheckSummary, HandlerSpec, MonitoringSpec, Silence, SilenceOp } from './types.ts';

export type MonitorMemberStatus = 'alive' | 'leaving' | 'left' | 'failed' | 'none';
export interface MonitorMember {
  name: string;
  addr: string;
  status: MonitorMemberStatus;
  tags: Record<string, string>;
}
export type MonitorEventType = 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap';

export interface MonitorCoreOptions {
  /**
   * Members join one event at a time: a monitor that has just joined may learn of a failing
   * node before it learns of the lower-named monitor that leads (and alerted it long ago). So
   * after each member-join (and the first view), alerts wait settleMs and go out only if this
   * node still leads then. 0 = off (default); a join storm extends it to at most settleMaxMs.
   */
  settleMs?: number;
  settleMaxMs?: number;
}

/** The check name of member-failed alerts. */
export const MEMBER_CHECK = 'member';
/** Alerts waiting for pollAlerts(); beyond this the oldest are dropped (counted). */
export const MAX_PENDING_ALERTS = 10_000;

interface HandlerState {
  /** Status of the last create this handler got (undefined: none, so no resolve either). */
  alerted: CheckStatus | undefined;
  /** A flapping event went out for the current flapping episode. */
  flapSent: boolean;
  /** Held by a silence at the last evaluation (counted once per hold, not per evaluation). */
  held: boolean;
}

interface Incident {
  node: string;
  check: string;
  kind: 'check' | 'member';
  status: CheckStatus;
  occurrences: number;
  flapping: boolean;
  handlers: Map<string, HandlerState>;
}

interface MemberState {
  m: MonitorMember;
  /** The raw `chk` tag last applied (a change = one tag update). */
  rawSummary: string | undefined;
  summary: CheckSummary | undefined;
}

function key(node: string, check: string): string {
  return `${node}\u0000${check}`;
}

export class MonitorCore {
  private readonly members = new Map<string, MemberState>();
  private readonly incidents = new Map<string, Incident>();
  private readonly store = new SilenceStore();
  private readonly handlerByName = new Map<string, HandlerSpec>();
  private outbox: { handler: string; event: AlertEvent }[] = [];
  private leader: string;
  /** Set while applying a change that this node led into (see applyMembers). */
  private alsoEmitting = false;
  private readonly stats: Record<string, number> = {
    alerts_create: 0,
    alerts_resolve: 0,
    alerts_flapping: 0,
    alerts_shadowed: 0,
    alerts_dropped: 0,
    alerts_held_silenced: 0,
    incidents_dropped_left: 0,
    summaries_malformed: 0,
    unknown_handlers: 0,
    silence_ops_applied: 0,
    silence_ops_refused: 0,
    silences_expired: 0,
  };

  private readonly settleMs: number;
  private readonly settleMaxMs: number;
  /** Alerts decided while the view settles; handed out (or not) when it ends. */
  private settling: { handler: string; event: AlertEvent; also: boolean }[] = [];
  private settleUntil = -Infinity;
  private settleStartedAt = -Infinity;

  constructor(
    private readonly self: string,
    private spec: MonitoringSpec,
    private readonly checkHandlers: (check: string, node: string) => string[] = () => [],
    opts: MonitorCoreOptions = {},
  ) {
    for (const h of spec.handlers) this.handlerByName.set(h.name, h);
    this.leader = self;
    this.settleMs = Math.max(0, opts.settleMs ?? 0);
    this.settleMaxMs = Math.max(this.settleMs, opts.settleMaxMs ?? this.settleMs * 5);
  }

  /** New monitoring config (a reload): handlers by name and the default/member lists. */
  setSpec(spec: MonitoringSpec): void {
    this.spec = spec;
    this.handlerByName.clear();
    for (const h of spec.handlers) this.handlerByName.set(h.name, h);
  }

  /** A full view of the members (e.g. agent.members() at start): members missing from it are forgotten. */
  handleMembers(members: readonly MonitorMember[], now: number): void {
    this.settle(now);
    const seen = new Set(members.map((m) => m.name));
    for (const name of [...this.members.keys()]) if (!seen.has(name)) this.forget(name);
    this.applyMembers(members, now);
  }

  handleMemberEvent(type: MonitorEventType, members: readonly MonitorMember[], now: number): void {
    if (type === 'member-reap') {
      for (const m of members) this.forget(m.name);
      this.recomputeLeader([]);
      return;
    }
    if (type === 'member-join') this.settle(now);
    this.applyMembers(members, now);
  }

  /**
   * Alerts caused by a change go out if this node leads before *or* after it: when the leader
   * fails its successor reports that; when it comes back, the one who reported the failure
   * (leader until then) sends the resolve; the returning node's own core never saw itself fail.
   */
  private applyMembers(members: readonly MonitorMember[], now: number): void {
    const before = this.leader;
    this.recomputeLeader(members);
    // Only a change that moves leadership away from us: the alerts it causes concern the
    // members in this update (the returning leader), nothing decided earlier.
    this.alsoEmitting = before === this.self && this.leader !== this.self;
    try {
      for (const m of members) this.applyMember(m, now);
    } finally {
      this.alsoEmitting = false;
    }
  }

  handleSilenceOp(op: SilenceOp, now: number): void {
    if (op.op === 'add') {
      if (this.store.add(op.silence, now)) this.stats['silence_ops_applied']!++;
      else this.stats['silence_ops_refused']!++;
      return;
    }
    if (this.store.remove(op.id) === undefined) {
      this.stats['silence_ops_refused']!++;
      return;
    }
    this.stats['silence_ops_applied']!++;
    this.reevaluateAll(now); // held incidents alert now
  }

  /** Silence expiry and the end of a settle window. */
  handleTimeout(now: number): void {
    if (this.settling.length > 0 && now >= this.settleUntil) {
      const held = this.settling;
      this.settling = [];
      for (const a of held) this.deliver(a.handler, a.event, a.also);
    }
    const gone = this.store.expire(now);
    if (gone.length === 0) return;
    this.stats['silences_expired']! += gone.length;
    this.reevaluateAll(now);
  }

  pollTimeout(): number | undefined {
    const expiry = this.store.nextExpiry();
    if (this.settling.length === 0) return expiry;
    return expiry === undefined ? this.settleUntil : Math.min(expiry, this.settleUntil);
  }

  private settle(now: number): void {
    if (this.settleMs === 0) return;
    if (now >= this.settleUntil) {
      this.handleTimeout(now); // what the last window held goes out before a new one starts
      this.settleStartedAt = now;
    }
    this.settleUntil = Math.min(now + this.settleMs, this.settleStartedAt + this.settleMaxMs);
  }

  isLeader(): boolean {
    return this.leader === this.self;
  }

  /** Which monitor this core thinks leads. */
  leaderName(): string {
    return this.leader;
  }

  pollAlerts(): { handler: string; event: AlertEvent }[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  silences(): Silence[] {
    return this.store.list();
  }

  counters(): Record<string, number> {
    return { ...this.stats, incidents_open: this.incidents.size, silences: this.store.size, leader: this.isLeader() ? 1 : 0 };
  }

  /** Open incidents (for status output and tests). */
  openIncidents(): { node: string; check: string; status: CheckStatus; alerted: boolean }[] {
    return [...this.incidents.values()].map((i) => ({
      node: i.node,
      check: i.check,
      status: i.status,
      alerted: [...i.handlers.values()].some((h) => h.alerted !== undefined),
    }));
  }

  // ---- members ----

  private recomputeLeader(update: readonly MonitorMember[]): void {
    // Fold the update in first so leadership reflects the statuses this event carries.
    const view = new Map<string, MonitorMember>();
    for (const [n, st] of this.members) view.set(n, st.m);
    for (const m of update) view.set(m.name, m);
    let best: string | undefined;
    for (const m of view.values()) {
      if (m.status !== 'alive' || m.tags[MONITOR_TAG] !== '1') continue;
      if (best === undefined || m.name < best) best = m.name;
    }
    // Not yet in our own member list (starting up): we are a monitor, so we count ourselves.
    if (!view.has(this.self) && (best === undefined || this.self < best)) best = this.self;
    this.leader = best ?? this.self;
  }

  private forget(name: string): void {
    this.members.delete(name);
    for (const [k, i] of this.incidents) if (i.node === name) this.incidents.delete(k);
  }

  private applyMember(m: MonitorMember, now: number): void {
    const prev = this.members.get(m.name);
    const prevStatus = prev?.m.status;
    const st: MemberState = prev ?? { m, rawSummary: undefined, summary: undefined };
    st.m = { ...m, tags: { ...m.tags } };
    this.members.set(m.name, st);

    if (m.status === 'left' || m.status === 'leaving') {
      // Left on purpose: untracked silently, no alert and no resolve.
      let dropped = 0;
      for (const [k, i] of this.incidents) {
        if (i.node === m.name) {
          this.incidents.delete(k);
          dropped++;
        }
      }
      this.stats['incidents_dropped_left']! += dropped;
      st.rawSummary = undefined;
      st.summary = undefined;
      return;
    }
    if (m.status === 'failed') {
      if (prevStatus !== 'failed' && !this.incidents.has(key(m.name, MEMBER_CHECK))) {
        const inc: Incident = { node: m.name, check: MEMBER_CHECK, kind: 'member', status: 2, occurrences: 1, flapping: false, handlers: new Map() };
        this.incidents.set(key(m.name, MEMBER_CHECK), inc);
        this.evaluate(inc, now, false);
      }
      return; // dependency: no check alerts while the node is failed
    }
    if (m.status !== 'alive') return;
    const memberInc = this.incidents.get(key(m.name, MEMBER_CHECK));
    if (memberInc !== undefined) this.close(memberInc, now); // back (rejoined)

    const raw = m.tags[SUMMARY_TAG];
    const tagChanged = raw !== st.rawSummary;
    if (tagChanged) {
      if (raw === undefined) {
        st.summary = { total: 0, entries: [], omitted: 0 }; // no checks (e.g. a serf agent)
      } else {
        const s = decodeSummary(raw);
        if (s === undefined) {
          this.stats['summaries_malformed']!++;
          // Keep what we knew: a garbled tag must not resolve (or raise) anything; what we
          // knew is still evaluated (e.g. the node just came back from failed).
          st.rawSummary = raw;
          if (st.summary !== undefined) this.applySummary(m.name, st.summary, false, now);
          return;
        }
        st.summary = s;
      }
      st.rawSummary = raw;
    }
    this.applySummary(m.name, st.summary ?? { total: 0, entries: [], omitted: 0 }, tagChanged, now);
  }

  private applySummary(node: string, s: CheckSummary, tagChanged: boolean, now: number): void {
    const listed = new Set<string>();
    for (const e of s.entries) {
      listed.add(e.name);
      const k = key(node, e.name);
      let inc = this.incidents.get(k);
      if (inc === undefined) {
        inc = { node, check: e.name, kind: 'check', status: e.status, occurrences: e.occurrences, flapping: e.flapping, handlers: new Map() };
        this.incidents.set(k, inc);
      }
      const changed = inc.status !== e.status || inc.occurrences !== e.occurrences || inc.flapping !== e.flapping;
      inc.status = e.status;
      inc.occurrences = e.occurrences;
      if (inc.flapping && !e.flapping) for (const h of inc.handlers.values()) h.flapSent = false;
      inc.flapping = e.flapping;
      if (!inc.flapping && inc.status === 0) {
        this.close(inc, now);
        continue;
      }
      this.evaluate(inc, now, tagChanged && changed);
    }
    for (const inc of [...this.incidents.values()]) {
      if (inc.node !== node || inc.kind !== 'check' || listed.has(inc.check)) continue;
      // Not listed: passing, unless the tag had to leave entries out for size (then unknown: keep).
      if (s.omitted > 0) continue;
      this.close(inc, now);
    }
  }

  // ---- decisions ----

  private handlersFor(inc: Incident): HandlerSpec[] {
    let names: string[];
    if (inc.kind === 'member') names = this.spec.memberHandlers.length > 0 ? this.spec.memberHandlers : this.spec.defaultHandlers;
    else {
      const own = this.checkHandlers(inc.check, inc.node);
      names = own.length > 0 ? own : this.spec.defaultHandlers;
    }
    const out: HandlerSpec[] = [];
    for (const n of names) {
      const h = this.handlerByName.get(n);
      if (h === undefined) this.stats['unknown_handlers']!++;
      else out.push(h);
    }
    return out;
  }

  private silenceFor(inc: Incident, now: number): Silence | undefined {
    const m = this.members.get(inc.node)?.m;
    return this.store.match(inc.node, m?.tags['role'], inc.check, now);
  }

  /**
   * Decide what each handler hears about an open incident. `update`: this call comes from a tag
   * update that changed this check (what state_changes_only=false alerts on).
   */
  private evaluate(inc: Incident, now: number, update: boolean): void {
    const m = this.members.get(inc.node)?.m;
    if (m === undefined) return;
    // Dependencies: a node that is not alive has no check alerts (its tag is frozen anyway).
    if (inc.kind === 'check' && m.status !== 'alive') return;
    if (inc.kind === 'member' && m.status !== 'failed') return;
    const silenced = this.silenceFor(inc, now) !== undefined;
    for (const h of this.handlersFor(inc)) {
      let hs = inc.handlers.get(h.name);
      if (hs === undefined) {
        hs = { alerted: undefined, flapSent: false, held: false };
        inc.handlers.set(h.name, hs);
      }
      const f = h.filters;
      if (f.notSilenced && silenced) {
        if (!hs.held) this.stats['alerts_held_silenced']!++;
        hs.held = true;
        continue; // held: re-evaluated when the silence goes
      }
      hs.held = false;
      if (inc.flapping) {
        // One flapping event per episode; no create/resolve while it lasts.
        if (!hs.flapSent) {
          hs.flapSent = true;
          this.emit(h.name, 'flapping', inc, m, silenced, now);
        }
        continue;
      }
      if (inc.status === 0) continue;
      if (!f.severities.includes(STATE_OF[inc.status] as Exclude<CheckState, 'passing'>)) continue;
      if (inc.kind === 'check' && inc.occurrences < Math.min(f.occurrences, MAX_OCCURRENCES)) continue;
      const again = f.stateChangesOnly ? hs.alerted !== inc.status : hs.alerted !== inc.status || update;
      if (!again) continue;
      hs.alerted = inc.status;
      this.emit(h.name, 'create', inc, m, silenced, now);
    }
  }

  /** The incident is over: resolve to every handler that got a create, then forget it. */
  private close(inc: Incident, now: number): void {
    this.incidents.delete(key(inc.node, inc.check));
    const m = this.members.get(inc.node)?.m;
    if (m === undefined) return;
    const silenced = this.silenceFor(inc, now) !== undefined;
    for (const [name, hs] of inc.handlers) {
      // Resolves always pass for alerted incidents: whoever got paged learns it is over.
      if (hs.alerted === undefined) continue;
      this.emit(name, 'resolve', { ...inc, status: 0, occurrences: 1 }, m, silenced, now);
    }
  }

  private reevaluateAll(now: number): void {
    for (const inc of [...this.incidents.values()]) this.evaluate(inc, now, false);
  }

  private emit(handler: string, action: AlertEvent['action'], inc: Incident, m: MonitorMember, silenced: boolean, now: number): void {
    const state = STATE_OF[inc.status];
    const output =
      inc.kind === 'member'
        ? action === 'resolve'
          ? `member ${inc.node} is alive again`
          : `member ${inc.node} failed`
        : action === 'resolve'
          ? `${inc.check} is passing again`
          : action === 'flapping'
            ? `${inc.check} is flapping`
            : `${inc.check} is ${state} (${inc.occurrences}x)`;
    const event: AlertEvent = {
      action,
      kind: inc.kind,
      entity: { name: inc.node, address: m.addr, tags: { ...m.tags } },
      check: { name: inc.check, status: inc.status, state, output, occurrences: inc.occurrences, history: [inc.status], silenced },
      timestamp: now,
      monitor: this.self,
    };
    if (now < this.settleUntil) {
      this.settling.push({ handler, event, also: this.alsoEmitting });
      if (this.settling.length > MAX_PENDING_ALERTS) {
        this.settling.shift();
        this.stats['alerts_dropped']!++;
      }
      return;
    }
    this.deliver(handler, event, this.alsoEmitting);
  }

  /**
   * Into the outbox when this node leads (settled alerts: leads when the window ends), or when
   * it led into the change that caused the alert (`also`, see applyMembers).
   */
  private deliver(handler: string, event: AlertEvent, also: boolean): void {
    if (!this.isLeader() && !also) {
      this.stats['alerts_shadowed']!++;
      return;
    }
    const counter = event.action === 'create' ? 'alerts_create' : event.action === 'resolve' ? 'alerts_resolve' : 'alerts_flapping';
    this.stats[counter]!++;
    this.outbox.push({ handler, event });
    if (this.outbox.length > MAX_PENDING_ALERTS) {
      this.outbox.shift();
      this.stats['alerts_dropped']!++;
    }
  }
}
