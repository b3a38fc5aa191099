// Cluster harness: N × (Memberlist core + the production Driver + a SimTransport) on one virtual
// clock and one simulated network. Tests script faults (kill, partition, loss, slowness) and
// assert on what the nodes themselves believe (their member tables and events).
//
// Determinism: every random choice comes from one seed — the network's stream, one fork per node
// (keyed by name, so adding a node does not perturb the others), one fork per node for the
// reconnect policy. The event trace is hashed as it is produced; the same seed gives the same hash.
//
// Serf's reconnect (doc 5.10) is an opt-in policy here: memberlist forgets a dead node after
// GossipToTheDeadTime, so after a long partition nobody on either side would ever contact the
// other again. Serf keeps failed members for ReconnectTimeout (24 h) and every ReconnectInterval,
// with probability failed / (members − failed − left), push/pull-joins one random failed member;
// that push/pull is what heals the split.

import { createHash, type Hash } from 'node:crypto';
import type { Delegate, MemberEvent, NodeInfo } from '../memberlist/api.ts';
import { lanConfig, type MemberlistConfig } from '../memberlist/config.ts';
import { Memberlist } from '../memberlist/memberlist.ts';
import { Driver } from '../transport/driver.ts';
import type { TimerHandle } from '../transport/transport.ts';
import { ipToBytes } from '../wire/addr.ts';
import { cacheNodeStates, encodeMessage } from '../wire/messages.ts';
import { processInterners } from '../memberlist/intern.ts';
import type { Address, PushNodeState } from '../wire/types.ts';
import { VirtualClock } from './clock.ts';
import { SimError } from './errors.ts';
import { SimNetwork, addressKey, type SimNetworkOptions, type SimTransport } from './network.ts';
import { SeededRandom, seedFromEnv } from './random.ts';

/** Decoded member states the simulator keeps (wire/messages.ts cacheNodeStates). */
export const SIM_STATE_CACHE = 1 << 16;

/** The seed a run uses when KODAMA_SEED is not set. */
export const DEFAULT_SEED = 20_260_101;

export interface ReconnectPolicy {
  /** Serf's ReconnectInterval (30 s). */
  intervalMs: number;
}

export interface ClusterOptions {
  /** Default: KODAMA_SEED, else DEFAULT_SEED. */
  seed?: number;
  network?: SimNetworkOptions;
  /**
   * Per-node memberlist config. Default: LAN profile with compression off — LZW in the
   * simulator costs CPU on every gossip packet and changes nothing about membership behaviour.
   */
  config?: (name: string, addr: Address) => MemberlistConfig;
  /** Serf's reconnect of failed members; off unless given. */
  reconnect?: ReconnectPolicy;
  /** Keep every event line in memory (for debugging small runs); the hash is always kept. */
  keepTrace?: boolean;
  /** Bound on timers fired per run call (runaway protection). */
  maxSteps?: number;
  /** A memberlist Delegate per node (default none). */
  delegate?: (name: string) => Delegate | null;
  /** Sees every member event of every node, after the harness recorded it. */
  onEvent?: (observer: SimNode, e: MemberEvent, nowMs: number) => void;
}

export interface SimNode {
  readonly name: string;
  readonly addr: Address;
  readonly core: Memberlist;
  readonly driver: Driver;
  readonly transport: SimTransport;
  /** Killed (crashed host) or stopped: no longer part of the live set. */
  killed: boolean;
  /** Left gracefully (leave-complete seen or leave requested). */
  left: boolean;
  /** Serf-style failed list (name → address), fed by this node's own events. */
  readonly failed: Map<string, Address>;
  reconnectTimer: TimerHandle | undefined;
  joinsCompleted: number;
  joinErrors: string[];
}

/** A 'leave' with state dead about a node that was live and reachable from the observer. */
export interface FalseDeath {
  atMs: number;
  observer: string;
  subject: string;
}

export class Cluster {
  readonly seed: number;
  readonly clock: VirtualClock;
  readonly network: SimNetwork;
  readonly nodes = new Map<string, SimNode>();
  readonly falseDeaths: FalseDeath[] = [];
  /** Invariant violations seen while events flowed (checked again by checkInvariants()). */
  readonly violations: string[] = [];
  /** Counts of member events by type (leave split into leave-dead / leave-left) across all nodes. */
  readonly eventCounts = new Map<string, number>();
  /** Counts of 'dropped' events by reason across all nodes. */
  readonly droppedCounts = new Map<string, number>();
  readonly trace: string[] = [];
  /** Time each (observer → subject) was last seen dead via an event, for detection-time figures. */
  readonly deadSeenAt = new Map<string, Map<string, number>>();

  private readonly root: SeededRandom;
  private readonly configFor: (name: string, addr: Address) => MemberlistConfig;
  private readonly reconnect: ReconnectPolicy | undefined;
  private readonly keepTrace: boolean;
  private readonly delegateFor: ((name: string) => Delegate | null) | undefined;
  private readonly onEventHook: ClusterOptions['onEvent'];
  private readonly hash: Hash = createHash('sha256');
  private events = 0;
  /** Time each node was killed (for "never alive again" checks). */
  private readonly killedAt = new Map<string, number>();
  private nextIndex = 1;

  constructor(opts: ClusterOptions = {}) {
    // Thousands of nodes in one process encode and decode the same member states over and over:
    // keep them (off in a real agent, where they would only cost memory).
    processInterners.cacheEncodings = true;
    cacheNodeStates(SIM_STATE_CACHE);
    this.seed = opts.seed ?? seedFromEnv(DEFAULT_SEED);
    this.root = new SeededRandom(this.seed);
    this.clock = new VirtualClock(opts.maxSteps === undefined ? {} : { maxSteps: opts.maxSteps });
    this.network = new SimNetwork(this.clock, this.root.fork('network'), opts.network ?? {});
    this.configFor = opts.config ?? ((name, addr) => ({ ...lanConfig(name, addr), enableCompression: false }));
    this.reconnect = opts.reconnect;
    this.keepTrace = opts.keepTrace ?? false;
    this.delegateFor = opts.delegate;
    this.onEventHook = opts.onEvent;
  }

  /** Create and start one node (it knows only itself until it joins). */
  addNode(name = `node-${String(this.nextIndex).padStart(4, '0')}`): SimNode {
    this.nextIndex++;
    if (this.nodes.has(name)) throw new SimError('ERR_SIM_NODE', `node ${name} already exists`);
    const transport = this.network.createTransport();
    const addr = transport.localAddress;
    const core = new Memberlist(this.configFor(name, addr), this.delegateFor?.(name) ?? null, this.root.fork(`node/${name}`));
    const node: SimNode = {
      name,
      addr,
      core,
      transport,
      driver: undefined as unknown as Driver, // set right below; the event handler needs `node`
      killed: false,
      left: false,
      failed: new Map(),
      reconnectTimer: undefined,
      joinsCompleted: 0,
      joinErrors: [],
    };
    (node as { driver: Driver }).driver = new Driver(core, transport, this.clock, (e) => this.onEvent(node, e));
    this.nodes.set(name, node);
    node.driver.start();
    if (this.reconnect !== undefined) this.armReconnect(node, this.root.fork(`reconnect/${name}`), true);
    return node;
  }

  /** Create `n` nodes named node-0001 … */
  addNodes(n: number): SimNode[] {
    const out: SimNode[] = [];
    for (let i = 0; i < n; i++) out.push(this.addNode());
    return out;
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new SimError('ERR_SIM_NODE', `no node named ${name}`);
    return n;
  }

  /** `name` push/pull-joins the given nodes. */
  join(name: string, targets: string[]): void {
    this.node(name).driver.join(targets.map((t) => this.node(t).addr));
  }

  /**
   * Every other live node joins `seed`. `spreadMs` spaces the joins evenly over that much virtual
   * time (a thousand simultaneous push/pulls to one node is a thundering herd no test intends).
   */
  joinAll(seed: string, spreadMs = 0): void {
    const seedNode = this.node(seed);
    const others = [...this.nodes.values()].filter((n) => n !== seedNode && this.isLive(n));
    others.forEach((n, i) => {
      const atMs = this.clock.now() + (others.length > 1 ? Math.floor((spreadMs * i) / others.length) : 0);
      this.clock.setTimer(atMs, () => {
        if (this.isLive(n)) n.driver.join([seedNode.addr]);
      });
    });
  }

  /**
   * Shortcut to a converged cluster for benchmarks: hand every live node one push/pull stream
   * listing every live node alive (incarnation 1, meta from `meta` or empty — a Serf node wants
   * its encoded tags there), through its transport, so it goes
   * through the core's real stream handling and merge path — as if each node had just done a
   * push/pull with an all-knowing peer. The merges queue alive re-broadcasts, as real ones do.
   *
   * `settled: true` then empties each node's broadcast queue right after its merge: the state
   * the cluster reaches once that re-broadcast storm (N² alive messages, each sent up to the
   * retransmit limit) has drained, without simulating it — at N = 5000 the storm alone is
   * ~400 million message receptions and, while it lasts, N² queued broadcasts in memory.
   *
   * `copy: true` (with `settled`) goes through the merge on the first live node only; every other
   * node's table gets a copy of its entries (NodeTable.copyEntriesFrom: same values, each node
   * its own probe order), without the N² merges — at N = 10,000 the merges alone are 10⁸ entries
   * and minutes of wall time. No member events are emitted for the copied entries, so it is for
   * memberlist-only clusters (a Serf layer learns its members from those events).
   *
   * `aged: true` also moves each node's next periodic push/pull to a random point of its scaled
   * interval, as in a cluster that has been running (Memberlist.spreadPushPull); without it,
   * nodes created together all push/pull within their first unscaled interval.
   */
  seedTables(opts: { settled?: boolean; copy?: boolean; aged?: boolean; meta?: (name: string) => Uint8Array } = {}): void {
    const live = this.live();
    const states: PushNodeState[] = live.map((n) => ({
      name: n.name,
      addr: ipToBytes(n.addr.ip),
      port: n.addr.port,
      meta: opts.meta?.(n.name) ?? new Uint8Array(0),
      incarnation: 1,
      state: 'alive',
      vsn: [1, 5, 2, 2, 5, 5],
    }));
    const bytes = encodeMessage({ type: 'pushPull', join: false, nodes: states, userState: new Uint8Array(0) });
    const from = this.network.deadAddress();
    if (opts.copy === true && opts.settled !== true) throw new SimError('ERR_SIM_RANGE', 'seedTables: copy needs settled');
    for (const n of live) {
      if (opts.copy === true && n !== live[0]) n.core.table.copyEntriesFrom(live[0]!.core.table);
      else n.transport.deliverStream(from, bytes, () => undefined);
      // Settled: the news of the merge, and each node's announcement of itself, has spread.
      if (opts.settled === true) n.core.discardBroadcasts();
    }
    // Aged: as if running for a while, each node's next push/pull at a random point of its scaled
    // interval (Memberlist.spreadPushPull), not all in the first 30 s.
    if (opts.aged === true) for (const n of live) n.core.spreadPushPull(this.clock.now());
  }

  /** Crash a node: the network drops everything to/from it and its process stops. */
  kill(name: string): void {
    const n = this.node(name);
    if (n.killed) return;
    n.killed = true;
    this.killedAt.set(name, this.clock.now());
    this.network.kill(n.addr);
    n.reconnectTimer?.cancel();
    n.driver.stop();
  }

  /** Graceful leave; the node stops once leave-complete arrives. */
  leave(name: string, timeoutMs = 5000): void {
    const n = this.node(name);
    n.left = true;
    n.driver.leave(timeoutMs);
  }

  partition(groupA: string[], groupB: string[]): void {
    this.network.partition(
      groupA.map((x) => this.node(x).addr),
      groupB.map((x) => this.node(x).addr),
    );
  }

  heal(): void {
    this.network.heal();
  }

  setSlow(name: string, extraMs: number): void {
    this.network.setSlow(this.node(name).addr, extraMs);
  }

  runFor(ms: number): void {
    this.clock.runFor(ms);
  }

  /** Run until `cond` holds (checked every `checkEveryMs`) or `limitMs` passes; returns whether it held. */
  runUntil(cond: () => boolean, limitMs: number, checkEveryMs = 500): boolean {
    return this.clock.runUntilTrue(cond, this.clock.now() + limitMs, checkEveryMs);
  }

  isLive(n: SimNode): boolean {
    return !n.killed && !n.left;
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => this.isLive(n));
  }

  /** Every live node sees exactly the live set alive (and nothing else alive or suspect). */
  converged(): boolean {
    const live = this.live();
    const liveNames = new Set(live.map((n) => n.name));
    // Cheap filter first: the count of alive+suspect members must match.
    for (const n of live) if (n.core.numMembers() !== live.length) return false;
    for (const n of live) {
      for (const m of n.core.members()) {
        const shouldBeAlive = liveNames.has(m.name);
        if (shouldBeAlive !== (m.state === 'alive')) return false;
      }
    }
    return true;
  }

  /** Whether every observer sees every subject in `state` ('dead' also accepts purged). */
  allSee(observers: string[], subjects: string[], state: NodeInfo['state']): boolean {
    for (const o of observers) {
      const view = new Map(this.node(o).core.members().map((m) => [m.name, m.state]));
      for (const s of subjects) {
        const st = view.get(s);
        if (state === 'dead' ? st !== undefined && st !== 'dead' : st !== state) return false;
      }
    }
    return true;
  }

  /** How many live nodes see `subject` with the given incarnation (or newer) as alive. */
  countSeeing(subject: string, minIncarnation: number): number {
    let c = 0;
    for (const n of this.live()) {
      const m = n.core.members().find((x) => x.name === subject);
      if (m !== undefined && m.state === 'alive' && m.incarnation >= minIncarnation) c++;
    }
    return c;
  }

  /**
   * sha256 of the event trace so far: one line per member event (time, observer, event, subject,
   * state, incarnation), then the per-reason counts of 'dropped' events.
   */
  traceHash(): string {
    const h = this.hash.copy();
    for (const [reason, n] of [...this.droppedCounts].sort((a, b) => (a[0] < b[0] ? -1 : 1))) h.update(`dropped ${reason} ${n}\n`);
    return h.digest('hex');
  }

  eventCount(): number {
    return this.events;
  }

  /**
   * Check the cluster's safety invariants now; returns violations (empty = fine). Also returns
   * anything recorded while events flowed.
   */
  checkInvariants(): string[] {
    const out = [...this.violations];
    for (const n of this.live()) {
      const self = n.core.localNode();
      if (self.name !== n.name) out.push(`${n.name}: local node is named ${self.name}`);
      if (self.state !== 'alive') out.push(`${n.name}: sees itself ${self.state}`);
      for (const m of n.core.members()) {
        const known = this.nodes.get(m.name);
        if (known === undefined) {
          out.push(`${n.name}: knows a node nobody created: ${m.name}`);
          continue;
        }
        if (addressKey(m.addr) !== addressKey(known.addr)) {
          out.push(`${n.name}: ${m.name} at ${addressKey(m.addr)}, really ${addressKey(known.addr)}`);
        }
        if (m.incarnation < 1) out.push(`${n.name}: ${m.name} has incarnation ${m.incarnation}`);
      }
    }
    return out;
  }

  /** Figures for reports: packets per node, events, network drops. */
  figures(): Record<string, number> {
    const s = this.network.stats;
    const n = Math.max(1, this.nodes.size);
    return {
      nodes: this.nodes.size,
      virtualMs: this.clock.now(),
      packetsSent: s.packetsSent,
      packetsPerNode: s.packetsSent / n,
      packetBytesPerNode: s.packetBytesSent / n,
      packetsLost: s.packetsDropped.loss,
      streamsOpened: s.streamsOpened,
      streamsFailed: s.streamsFailed,
      events: this.events,
    };
  }

  /** The replay line printed when a simulation test fails. */
  replayHint(file: string): string {
    return `simulation failed: seed=${this.seed} (replay: KODAMA_SEED=${this.seed} npm run test:unit -- ${file})`;
  }

  /** Drop everything (timers stay on the clock but every driver is stopped). */
  shutdown(): void {
    for (const n of this.nodes.values()) {
      n.reconnectTimer?.cancel();
      if (!n.killed) {
        n.killed = true;
        n.driver.stop();
      }
    }
  }

  // ---- internals ----

  private count(key: string): void {
    this.eventCounts.set(key, (this.eventCounts.get(key) ?? 0) + 1);
  }

  private onEvent(observer: SimNode, e: MemberEvent): void {
    const now = this.clock.now();
    let line: string;
    switch (e.type) {
      case 'join':
      case 'update':
      case 'leave': {
        const subject = e.node.name;
        line = `${now} ${observer.name} ${e.type} ${subject} ${e.node.state} ${e.node.incarnation}`;
        this.count(e.type === 'leave' ? `leave-${e.node.state}` : e.type);
        this.trackSerfFailed(observer, e);
        if (e.type === 'leave' && e.node.state === 'dead') {
          let m = this.deadSeenAt.get(subject);
          if (m === undefined) this.deadSeenAt.set(subject, (m = new Map()));
          m.set(observer.name, now);
          const s = this.nodes.get(subject);
          if (s !== undefined && this.isLive(s) && this.network.canReach(observer.addr, s.addr)) {
            this.falseDeaths.push({ atMs: now, observer: observer.name, subject });
          }
        }
        if (e.type === 'join') {
          const killedAtMs = this.killedAt.get(subject);
          const seenDead = this.deadSeenAt.get(subject)?.get(observer.name);
          if (killedAtMs !== undefined && seenDead !== undefined && seenDead >= killedAtMs) {
            this.violations.push(`${now}: ${observer.name} saw killed node ${subject} come back alive`);
          }
        }
        break;
      }
      case 'conflict':
        line = `${now} ${observer.name} conflict ${e.existing.name}`;
        this.count('conflict');
        this.violations.push(`${now}: ${observer.name} reported a name conflict for ${e.existing.name}`);
        break;
      case 'join-complete':
        line = `${now} ${observer.name} join-complete ${e.joined}`;
        this.count('join-complete');
        observer.joinsCompleted++;
        if (e.errors.length > 0) observer.joinErrors.push(...e.errors);
        break;
      case 'ping-reply':
        line = `${now} ${observer.name} ping-reply ${e.name}`;
        this.count('ping-reply');
        break;
      case 'leave-complete':
        line = `${now} ${observer.name} leave-complete ${e.timedOut}`;
        this.count('leave-complete');
        // The agent exits after a leave; stop outside the driver's drain loop.
        if (observer.left) {
          this.clock.setTimer(now, () => {
            observer.reconnectTimer?.cancel();
            observer.driver.stop();
          });
        }
        break;
      case 'dropped':
        // Thousands per simulated second in big clusters (every stale gossip copy): counted, and
        // the counts enter the hash at digest time, instead of a hashed line each.
        this.droppedCounts.set(e.reason, (this.droppedCounts.get(e.reason) ?? 0) + 1);
        this.events++;
        return;
    }
    this.events++;
    this.onEventHook?.(observer, e, now);
    this.hash.update(line);
    this.hash.update('\n');
    if (this.keepTrace) this.trace.push(line);
  }

  /** Serf's failed-member list as this node's own events build it (member-failed / -join / -leave). */
  private trackSerfFailed(observer: SimNode, e: MemberEvent & { node: NodeInfo }): void {
    if (e.node.name === observer.name) return;
    if (e.type === 'leave' && e.node.state === 'dead') observer.failed.set(e.node.name, e.node.addr);
    else if (e.type === 'join' || (e.type === 'leave' && e.node.state === 'left')) observer.failed.delete(e.node.name);
  }

  private armReconnect(node: SimNode, rng: SeededRandom, first: boolean): void {
    const policy = this.reconnect;
    if (policy === undefined) return;
    // Serf's ticker starts when the agent does; nodes start at different times in reality, so
    // the first tick gets a random phase instead of all nodes reconnecting in lockstep.
    const delayMs = first ? 1 + rng.int(policy.intervalMs) : policy.intervalMs;
    node.reconnectTimer = this.clock.setTimer(this.clock.now() + delayMs, () => {
      if (!this.isLive(node)) return;
      this.reconnectOnce(node, rng);
      this.armReconnect(node, rng, false);
    });
  }

  private reconnectOnce(node: SimNode, rng: SeededRandom): void {
    const failed = [...node.failed.entries()];
    if (failed.length === 0) return;
    // Serf: members − failed − left = the members it considers alive; memberlist's alive+suspect
    // count is the same set (Serf keeps failed/left members longer than memberlist does).
    const numAlive = Math.max(1, node.core.numMembers());
    const prob = failed.length / numAlive;
    if (rng.float() > prob) return;
    const [, addr] = failed[rng.int(failed.length)]!;
    this.count('reconnect');
    node.driver.join([addr]);
  }
}
