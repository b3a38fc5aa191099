// Node state transitions: alive / suspect / dead handling and refutation (doc §4.2, §4.8).
//
// Every piece of news about a node — from gossip, from a push/pull merge, or from our own
// probes — ends up in one of aliveNode / suspectNode / deadNode. They decide, by incarnation
// number, whether the news is fresh; fresh news updates the table, is re-broadcast (keyed by
// node name, so newer news replaces older in the queue) and produces member events. News that
// accuses us is refuted with a higher incarnation instead.

import type { MemberEvent, NodeInfo } from './api.ts';
import type { Awareness } from './awareness.ts';
import type { MemberlistConfig } from './config.ts';
import { Suspicion, suspicionConfirmationsK, suspicionTimeoutMs } from './suspicion.ts';
import { isDeadOrLeft, type NodeRef, type NodeTable } from './table.ts';
import type { TimerHandle, TimerSet } from './timers.ts';
import { ipToBytes } from '../wire/addr.ts';
import type { Address, Message, Vsn } from '../wire/types.ts';

/** What the state machine needs from its owner. */
export interface StateHost {
  readonly config: MemberlistConfig;
  readonly table: NodeTable;
  readonly awareness: Awareness;
  readonly timers: TimerSet;
  hasLeft(): boolean;
  /** Queue a broadcast about node `key`; `finished` runs once it leaves the queue. */
  broadcast(key: string, msg: Message, finished?: () => void): void;
  emit(e: MemberEvent): void;
  drop(reason: string, detail: string, from?: Address): void;
  /** Bump a counter that is not a drop (e.g. refutations). */
  count(key: string, by?: number): void;
}

export interface AliveNews {
  incarnation: number;
  node: string;
  addr: Address;
  /**
   * `addr.ip` as the 4 bytes it arrived in, when the caller has them: the re-broadcast reuses
   * them instead of parsing the string back (a parse per merged entry and per gossiped alive).
   */
  ip4?: Uint8Array | undefined;
  meta: Uint8Array;
  vsn: readonly number[];
}

export interface SuspectNews {
  incarnation: number;
  node: string;
  from: string;
}

export type DeadNews = SuspectNews;

interface ActiveSuspicion {
  s: Suspicion;
  timer: TimerHandle;
  /** stateChangeMs of the node when the suspicion started: identifies this suspicion. */
  changeMs: number;
}

/** A plain copy of an entry, good for as long as anyone keeps it (a table view is not). */
export function snapshot(n: NodeInfo): NodeInfo {
  return {
    name: n.name,
    addr: n.addr, // interned and frozen (intern.ts): shared, never changed
    meta: n.meta,
    incarnation: n.incarnation,
    state: n.state,
    vsn: n.vsn,
    stateChangeMs: n.stateChangeMs,
  };
}

function bytesEqual(a: Uint8Array | readonly number[], b: Uint8Array | readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The wire layer zero-fills a missing Vsn; all zeros means "not sent" (old peers). */
export function hasVsn(v: readonly number[]): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return true;
  return false;
}

/**
 * Vsn tuples are read-only and nearly every member of a cluster carries the same one, so one
 * shared array per distinct tuple replaces an array per table entry (~80 bytes each, N of them on
 * every node). The cache holds only tuples of byte-sized versions and at most VSN_CACHE_MAX of
 * them, so hostile input cannot grow it.
 */
const VSN_CACHE_MAX = 64;
const vsnCache = new Map<number, Vsn>();

export function toVsn(v: readonly number[]): Vsn {
  const t: Vsn = [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0, v[4] ?? 0, v[5] ?? 0];
  let key = 0;
  for (const x of t) {
    if (!Number.isInteger(x) || x < 0 || x > 255) return t;
    key = key * 256 + x; // 6 bytes: exact in a double
  }
  const hit = vsnCache.get(key);
  if (hit !== undefined) return hit;
  if (vsnCache.size < VSN_CACHE_MAX) vsnCache.set(key, t);
  return t;
}

export class NodeStates {
  private readonly suspicions = new Map<string, ActiveSuspicion>();
  /** Our own incarnation counter (starts at 0, the first alive uses 1). */
  private incarnation = 0;

  constructor(private readonly host: StateHost) {}

  /** > 0 while merging a push/pull: known entries there are routine, not dropped input. */
  private quietDepth = 0;

  /** Run `fn` (a push/pull merge) with stale news counted but not reported one by one. */
  quietly(fn: () => void): void {
    this.quietDepth++;
    try {
      fn();
    } finally {
      this.quietDepth--;
      if (this.quietDepth === 0 && this.staleAlives > 0) {
        this.host.count('stale-alive', this.staleAlives);
        this.staleAlives = 0;
      }
    }
  }

  /** Stale alives seen by staleAlive during a merge, counted once at its end. */
  private staleAlives = 0;

  private stale(reason: string, detail: () => string): void {
    if (this.quietDepth > 0) this.host.count(reason);
    else this.host.drop(reason, detail());
  }

  nextIncarnation(): number {
    return ++this.incarnation;
  }

  /** Number of nodes with a running suspicion timer (for tests and stats). */
  get suspicionCount(): number {
    return this.suspicions.size;
  }

  suspicionOf(name: string): Suspicion | undefined {
    return this.suspicions.get(name)?.s;
  }

  clear(): void {
    for (const a of this.suspicions.values()) a.timer.cancel();
    this.suspicions.clear();
  }

  private stopSuspicion(name: string): void {
    const a = this.suspicions.get(name);
    if (a === undefined) return;
    a.timer.cancel();
    this.suspicions.delete(name);
  }

  /**
   * The shortcut of the push/pull merge and of gossiped alives: an alive about another node that
   * aliveNode would drop as stale (known at this address, not newer, sane versions) is counted as
   * it would count it, and true is returned; false means "not sure: call aliveNode".
   */
  staleAlive(slot: number, name: string, incarnation: number, ip: Uint8Array, port: number, vsn: readonly number[]): boolean {
    if (slot < 0 || name === this.host.config.name) return false;
    if (hasVsn(vsn)) {
      const pMin = vsn[0] ?? 0;
      const pMax = vsn[1] ?? 0;
      if (pMin === 0 || pMax === 0 || pMin > pMax) return false;
    }
    if (!this.host.table.aliveIsStale(slot, incarnation, ip, port)) return false;
    if (this.quietDepth > 0) this.staleAlives++;
    else this.stale('stale-alive', () => `alive for ${name} incarnation ${incarnation}: not newer than known`);
    return true;
  }

  /**
   * `bootstrap` is true only for our own announcements (start, updateMeta): they take effect
   * instead of being refuted. `notify` runs when the resulting broadcast leaves the queue.
   */
  aliveNode(a: AliveNews, now: number, bootstrap: boolean, notify?: () => void): void {
    const { config, table } = this.host;
    const isLocal = a.node === config.name;
    if (isLocal && this.host.hasLeft()) {
      this.host.drop('alive-after-leave', `alive about ourselves after leaving`);
      return;
    }
    if (hasVsn(a.vsn)) {
      const [pMin, pMax] = a.vsn;
      if (pMin === 0 || pMax === 0 || (pMin ?? 0) > (pMax ?? 0)) {
        this.host.drop('alive-bad-vsn', `alive for ${a.node} with protocol versions ${a.vsn.join(',')}`);
        return;
      }
    }
    let state = table.get(a.node);
    let updatesNode = false;
    if (state === undefined) {
      // A new node starts Dead at incarnation 0, so an alive with incarnation 0 is never taken.
      // The table interns name, address and meta (one copy per process, never the view into
      // the received buffer).
      state = table.add({ name: a.node, addr: a.addr, ip4: a.ip4, meta: a.meta, incarnation: 0, state: 'dead', vsn: a.vsn, stateChangeMs: now });
    } else if (state.addr.ip !== a.addr.ip || state.addr.port !== a.addr.port) {
      const reclaim = config.deadNodeReclaimTimeMs > 0 && now - state.stateChangeMs > config.deadNodeReclaimTimeMs;
      if (state.state === 'left' || (state.state === 'dead' && reclaim)) {
        updatesNode = true;
      } else {
        const other: NodeInfo = {
          name: a.node,
          addr: { ip: a.addr.ip, port: a.addr.port },
          meta: a.meta,
          incarnation: a.incarnation,
          state: 'alive',
          vsn: toVsn(a.vsn),
          stateChangeMs: now,
        };
        this.host.emit({ type: 'conflict', existing: snapshot(state), other });
        this.host.drop(
          'alive-conflict',
          `${a.node} claimed from ${a.addr.ip}:${a.addr.port}, known at ${state.addr.ip}:${state.addr.port}`,
        );
        return;
      }
    }

    if (a.incarnation <= state.incarnation && !isLocal && !updatesNode) {
      this.stale('stale-alive', () => `alive for ${a.node} incarnation ${a.incarnation} ≤ ${state.incarnation}`);
      return;
    }
    if (a.incarnation < state.incarnation && isLocal) {
      this.stale('stale-alive', () => `alive for ourselves with old incarnation ${a.incarnation}`);
      return;
    }

    this.stopSuspicion(a.node);
    const oldState = state.state;
    const oldMeta = state.meta;

    if (!bootstrap && isLocal) {
      // Someone gossips an alive about us that is not ours: same incarnation with the same
      // content is just our own news echoing back; anything else must be overridden.
      if (a.incarnation === state.incarnation && bytesEqual(a.meta, state.meta) && bytesEqual(a.vsn, state.vsn)) {
        return;
      }
      this.refute(state, a.incarnation);
    } else {
      this.host.broadcast(
        a.node,
        { type: 'alive', incarnation: a.incarnation, node: a.node, addr: a.ip4 ?? ipBytesOf(a), port: a.addr.port, meta: a.meta, vsn: toVsn(a.vsn) },
        notify,
      );
      if (hasVsn(a.vsn)) state.vsn = toVsn(a.vsn);
      state.incarnation = a.incarnation;
      if (!bytesEqual(state.meta, a.meta)) state.meta = a.meta;
      if (state.addr.ip !== a.addr.ip || state.addr.port !== a.addr.port) table.setAddr(state, a.addr);
      if (state.state !== 'alive') table.setState(state, 'alive', now);
    }

    if (oldState === 'dead' || oldState === 'left') {
      this.host.emit({ type: 'join', node: snapshot(state) });
    } else if (!bytesEqual(oldMeta, state.meta)) {
      this.host.emit({ type: 'update', node: snapshot(state) });
    }
  }

  suspectNode(s: SuspectNews, now: number): void {
    const { config, table } = this.host;
    const state = table.get(s.node);
    if (state === undefined) {
      this.host.drop('suspect-unknown', `suspect about unknown node ${s.node}`);
      return;
    }
    if (s.incarnation < state.incarnation) {
      this.stale('stale-suspect', () => `suspect for ${s.node} incarnation ${s.incarnation} < ${state.incarnation}`);
      return;
    }
    const active = this.suspicions.get(s.node);
    if (active !== undefined) {
      // Already suspected: an independent accuser is a Lifeguard confirmation.
      if (active.s.confirm(s.from, now)) {
        this.host.broadcast(s.node, { type: 'suspect', incarnation: s.incarnation, node: s.node, from: s.from });
        active.timer.cancel();
        const changeMs = active.changeMs;
        active.timer = this.host.timers.at(active.s.deadlineMs, (t) => this.suspicionExpired(s.node, changeMs, t));
      }
      return;
    }
    if (state.state !== 'alive') return;
    if (state.name === config.name) {
      this.refute(state, s.incarnation);
      return;
    }
    this.host.broadcast(s.node, { type: 'suspect', incarnation: s.incarnation, node: s.node, from: s.from });
    state.incarnation = s.incarnation;
    table.setState(state, 'suspect', now);
    this.host.count('suspicions');

    const n = table.size;
    const k = suspicionConfirmationsK(config.suspicionMult, n);
    const minMs = suspicionTimeoutMs(config.suspicionMult, n, config.probeIntervalMs);
    const maxMs = config.suspicionMaxTimeoutMult * minMs;
    const sus = new Suspicion(s.from, k, minMs, maxMs, now);
    const changeMs = now;
    const timer = this.host.timers.at(sus.deadlineMs, (t) => this.suspicionExpired(s.node, changeMs, t));
    this.suspicions.set(s.node, { s: sus, timer, changeMs });
  }

  private suspicionExpired(name: string, changeMs: number, now: number): void {
    const state = this.host.table.get(name);
    // Only the suspicion that started at changeMs may kill the node; a refutation in between
    // changed the state (and its change time).
    if (state === undefined || state.state !== 'suspect' || state.stateChangeMs !== changeMs) return;
    this.deadNode({ incarnation: state.incarnation, node: name, from: this.host.config.name }, now);
  }

  deadNode(d: DeadNews, now: number, notify?: () => void): void {
    const { config, table } = this.host;
    const state = table.get(d.node);
    if (state === undefined) {
      this.host.drop('dead-unknown', `dead about unknown node ${d.node}`);
      return;
    }
    if (d.incarnation < state.incarnation) {
      this.stale('stale-dead', () => `dead for ${d.node} incarnation ${d.incarnation} < ${state.incarnation}`);
      return;
    }
    this.stopSuspicion(d.node);
    if (isDeadOrLeft(state)) return;
    if (state.name === config.name && !this.host.hasLeft()) {
      this.refute(state, d.incarnation);
      return;
    }
    this.host.broadcast(d.node, { type: 'dead', incarnation: d.incarnation, node: d.node, from: d.from }, notify);
    state.incarnation = d.incarnation;
    table.setState(state, d.node === d.from ? 'left' : 'dead', now);
    this.host.emit({ type: 'leave', node: snapshot(state) });
  }

  /** Override an accusation about us at incarnation `accusedInc` with a newer alive. */
  refute(me: NodeRef, accusedInc: number): void {
    let inc = this.nextIncarnation();
    if (accusedInc >= inc) {
      this.incarnation = accusedInc + 1;
      inc = this.incarnation;
    }
    me.incarnation = inc;
    // Having to refute hints that we are the slow one (Lifeguard).
    this.host.awareness.applyDelta(1);
    this.host.count('refutations');
    this.host.broadcast(me.name, {
      type: 'alive',
      incarnation: inc,
      node: me.name,
      addr: me.ipBytes,
      port: me.addr.port,
      meta: me.meta,
      vsn: me.vsn,
    });
  }
}

function ipBytesOf(a: { addr: Address }): Uint8Array {
  return ipToBytes(a.addr.ip);
}
