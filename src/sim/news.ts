// News spread in the simulator: a Serf per node on the real membership core, wired the way the
// agent wires it (Serf behind the plain Delegate hooks, Serf's outputs → the Driver, a pump after
// every input), to measure how fast user events and failure notices reach every node and what
// that costs in packets — with eager forwarding (memberlist/eager.ts) on or off, same seed.
//
// Used by test/sim/eager-spread.test.ts (asserts), bench/sim.bench.ts `spread` and bench/scale.ts
// (figures), and bench/metrics-query.bench.ts (queries: `answer` responds as an agent's
// subsystem would, responses are recorded per query).
//
// The cluster is built settled (Cluster.seedTables with each node's encoded tags as meta) and
// then left to run until quiet, so a measurement sees only the news it injects plus the
// cluster's own background (probes, acks, periodic push/pull).

import type { Delegate, MemberEvent } from '../memberlist/api.ts';
import { lanConfig, localConfig, type MemberlistConfig } from '../memberlist/config.ts';
import { Serf } from '../serf/serf.ts';
import type { QueryParams } from '../serf/serf.ts';
import { carryOutSerfOutputs } from '../transport/serf-outputs.ts';
import type { TimerHandle } from '../transport/transport.ts';
import type { Address } from '../wire/types.ts';
import { Cluster, type SimNode } from './cluster.ts';
import type { SimNetworkOptions } from './network.ts';
import { SeededRandom } from './random.ts';

export interface NewsSimOptions {
  seed: number;
  /** eagerGossipNodes of memberlist and Serf alike (0 = memberlist's and Serf's own behaviour). */
  eagerGossipNodes: number;
  /** Timing profile (default lan: 200 ms gossip interval). */
  profile?: 'lan' | 'local';
  network?: SimNetworkOptions;
  /**
   * Serf's eagerGossipNodes alone (default: eagerGossipNodes). The agent does not set it, so its
   * Serf uses the default (3) whatever memberlist's is.
   */
  serfEagerGossipNodes?: number;
  /** Answers a query delivered to `node` (undefined: no answer), as the agent's answerQuery does. */
  answer?: (node: string, name: string, payload: Uint8Array, now: number) => Uint8Array | undefined;
}

/** What came back to one query this simulation sent. */
export interface QueryRecord {
  origin: string;
  sentMs: number;
  /** responder → virtual ms the origin received its answer, and the answer's size. */
  responses: Map<string, { atMs: number; bytes: number }>;
  /** Virtual ms Serf closed it (its timeout); undefined while open. */
  doneMs: number | undefined;
}

/** Figures of one piece of news: per-node delays in ms, sorted ascending. */
export interface Spread {
  delays: number[];
  /** Nodes that should have heard it. */
  expected: number;
}

export interface PacketWindow {
  ms: number;
  /** Packets and bytes sent, per live node per second: mean and the busiest node. */
  packetsPerNodeS: number;
  bytesPerNodeS: number;
  maxPacketsPerNodeS: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export class NewsSim {
  readonly cluster: Cluster;
  readonly serfs = new Map<string, Serf>();
  /** event name → node → virtual ms the node delivered it. */
  readonly userSeen = new Map<string, Map<string, number>>();
  /** user events this node delivered (distinct), for the at-most-once check. */
  readonly delivered = new Map<string, number>();
  /** origin + local query id → what came back. */
  readonly queries = new Map<string, QueryRecord>();
  private readonly pumpQueued = new Set<string>();
  private readonly serfTimers = new Map<string, TimerHandle>();
  private readonly answer: NewsSimOptions['answer'];

  constructor(opts: NewsSimOptions) {
    this.answer = opts.answer;
    const profile = opts.profile ?? 'lan';
    const configFor = (name: string, addr: Address): MemberlistConfig => ({
      ...(profile === 'lan' ? lanConfig(name, addr) : localConfig(name, addr)),
      enableCompression: false,
      eagerGossipNodes: opts.eagerGossipNodes,
    });
    this.cluster = new Cluster({
      seed: opts.seed,
      ...(opts.network === undefined ? {} : { network: opts.network }),
      config: configFor,
      delegate: (name) => {
        const cfg = configFor(name, { ip: '127.0.0.1', port: 1 });
        const serf = new Serf({
          nodeName: name,
          tags: { role: 'sim' },
          protocolVersion: 5,
          retransmitMult: cfg.retransmitMult,
          prefixBroadcasts: false,
          gossipIntervalMs: cfg.gossipIntervalMs,
          eagerGossipNodes: opts.serfEagerGossipNodes ?? opts.eagerGossipNodes,
          random: new SeededRandom(opts.seed).fork(`serf/${name}`),
          wake: () => this.schedulePump(name),
        });
        this.serfs.set(name, serf);
        // Exactly the hooks the agent hands the core (src/agent/agent.ts), nothing more.
        const d: Delegate = {
          nodeMeta: (limit) => serf.nodeMeta(limit),
          notifyMsg: (payload, now) => {
            serf.notifyMsg(payload, now);
            this.schedulePump(name);
          },
          getBroadcasts: (overhead, limit) => serf.getBroadcasts(overhead, limit),
          localState: (join) => serf.localState(join),
          mergeRemoteState: (state, join, now) => {
            serf.mergeRemoteState(state, join, now);
            this.schedulePump(name);
          },
          ackPayload: () => serf.ackPayload(),
          notifyPingComplete: (node, rttMs, payload) => serf.notifyPingComplete(node, rttMs, payload),
        };
        return d;
      },
      onEvent: (observer, e, now) => this.onMemberEvent(observer, e, now),
    });
  }

  /** `n` nodes, every table full (settled), then `quietMs` of virtual time to calm down. */
  build(n: number, quietMs = 5000): void {
    const c = this.cluster;
    c.addNodes(n);
    c.seedTables({ settled: true, meta: (name) => this.serf(name).nodeMeta(512) });
    c.runFor(quietMs);
  }

  serf(name: string): Serf {
    const s = this.serfs.get(name);
    if (s === undefined) throw new Error(`no serf ${name}`);
    return s;
  }

  live(): SimNode[] {
    return this.cluster.live();
  }

  /** A user event from `origin`, now; returns the virtual ms it was sent. */
  userEvent(origin: string, name: string, payload = new Uint8Array(8)): number {
    const now = this.cluster.clock.now();
    this.serf(origin).userEvent(name, payload, false, now);
    this.pump(this.cluster.node(origin));
    return now;
  }

  /** A query from `origin`, now; its record fills in as answers arrive (see `queries`). */
  query(origin: string, params: QueryParams): QueryRecord {
    const now = this.cluster.clock.now();
    const id = this.serf(origin).query(params, now);
    const rec: QueryRecord = { origin, sentMs: now, responses: new Map(), doneMs: undefined };
    this.queries.set(`${origin}/${id}`, rec);
    this.pump(this.cluster.node(origin));
    return rec;
  }

  /** Delays (ms after `sentMs`) at which the other live nodes delivered event `name`. */
  userSpread(name: string, origin: string, sentMs: number): Spread {
    const seen = this.userSeen.get(name) ?? new Map<string, number>();
    const delays: number[] = [];
    let expected = 0;
    for (const n of this.live()) {
      if (n.name === origin) continue;
      expected++;
      const t = seen.get(n.name);
      if (t !== undefined) delays.push(t - sentMs);
    }
    return { delays: delays.sort((a, b) => a - b), expected };
  }

  /** Every live node but `origin` delivered event `name`. */
  userReachedAll(name: string, origin: string): boolean {
    const seen = this.userSeen.get(name);
    if (seen === undefined) return false;
    for (const n of this.live()) if (n.name !== origin && !seen.has(n.name)) return false;
    return true;
  }

  /**
   * Delays at which the live nodes saw `subject` dead, measured from `fromMs` (the kill, or the
   * first declaration when undefined: then the figures are the notice's spread alone).
   */
  deadSpread(subject: string, fromMs?: number): Spread {
    const seen = this.cluster.deadSeenAt.get(subject) ?? new Map<string, number>();
    const live = this.live();
    const times: number[] = [];
    for (const n of live) {
      const t = seen.get(n.name);
      if (t !== undefined) times.push(t);
    }
    const t0 = fromMs ?? Math.min(...times);
    return { delays: times.map((t) => t - t0).sort((a, b) => a - b), expected: live.length };
  }

  deadReachedAll(subject: string): boolean {
    const seen = this.cluster.deadSeenAt.get(subject);
    if (seen === undefined) return false;
    return this.live().every((n) => seen.has(n.name));
  }

  /** Run `fn` (which runs the clock) and return what the live nodes sent meanwhile. */
  measurePackets(fn: () => void): PacketWindow {
    const c = this.cluster;
    const before = new Map(this.live().map((n) => [n.name, { p: n.transport.counters.packetsSent, b: n.transport.counters.packetBytesSent }]));
    const t0 = c.clock.now();
    fn();
    const ms = c.clock.now() - t0;
    let packets = 0;
    let bytes = 0;
    let maxPackets = 0;
    let nodes = 0;
    for (const n of this.live()) {
      const b = before.get(n.name);
      if (b === undefined) continue;
      nodes++;
      const p = n.transport.counters.packetsSent - b.p;
      packets += p;
      bytes += n.transport.counters.packetBytesSent - b.b;
      maxPackets = Math.max(maxPackets, p);
    }
    const perS = 1000 / Math.max(1, ms);
    const per = Math.max(1, nodes);
    return { ms, packetsPerNodeS: (packets / per) * perS, bytesPerNodeS: (bytes / per) * perS, maxPacketsPerNodeS: maxPackets * perS };
  }

  shutdown(): void {
    for (const t of this.serfTimers.values()) t.cancel();
    this.cluster.shutdown();
  }

  // ---- wiring ----

  private onMemberEvent(observer: SimNode, e: MemberEvent, now: number): void {
    this.serf(observer.name).handleMemberEvent(e, now);
    this.pump(observer);
  }

  /** As the agent's schedulePump (a microtask): drain Serf after the core's call returns. */
  private schedulePump(name: string): void {
    if (this.pumpQueued.has(name)) return;
    this.pumpQueued.add(name);
    const clock = this.cluster.clock;
    clock.setTimer(clock.now(), () => {
      this.pumpQueued.delete(name);
      const n = this.cluster.nodes.get(name);
      if (n !== undefined) this.pump(n);
    });
  }

  private pump(n: SimNode): void {
    if (n.killed) return;
    const s = this.serf(n.name);
    const clock = this.cluster.clock;
    const go = carryOutSerfOutputs(s, n.driver, {
      shutdown: () => {
        this.cluster.kill(n.name);
        return true;
      },
    });
    if (!go) return;
    for (let e = s.pollTypedEvent(), i = 0; e !== undefined && i < 100_000; e = s.pollTypedEvent(), i++) {
      if (e.type === 'query') {
        const a = this.answer?.(n.name, e.name, e.payload, clock.now());
        if (a !== undefined) {
          s.respond(e.id, a, clock.now());
          this.schedulePump(n.name);
        }
        continue;
      }
      if (e.type === 'query-response' || e.type === 'query-done') {
        const rec = this.queries.get(`${n.name}/${e.queryId}`);
        if (rec !== undefined && e.type === 'query-response') rec.responses.set(e.from, { atMs: clock.now(), bytes: e.payload.length });
        if (rec !== undefined && e.type === 'query-done') rec.doneMs = clock.now();
        continue;
      }
      if (e.type !== 'user') continue;
      let seen = this.userSeen.get(e.name);
      if (seen === undefined) this.userSeen.set(e.name, (seen = new Map()));
      if (!seen.has(n.name)) {
        seen.set(n.name, clock.now());
        this.delivered.set(n.name, (this.delivered.get(n.name) ?? 0) + 1);
      }
    }
    this.serfTimers.get(n.name)?.cancel();
    const at = s.pollTimeout();
    if (at !== undefined) {
      this.serfTimers.set(
        n.name,
        clock.setTimer(at, () => {
          if (n.killed) return;
          s.handleTimeout(clock.now());
          this.pump(n);
        }),
      );
    }
  }
}
