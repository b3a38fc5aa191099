// Serf on the real membership core in the simulator, wired the way a runtime must wire it:
// Serf outputs → Driver (user packets, reconnect joins, meta updates), a timer for
// Serf.pollTimeout(), and every typed event recorded per node.
import { Cluster } from '../../src/sim/cluster.ts';
import type { SimNode } from '../../src/sim/cluster.ts';
import type { SimNetworkOptions } from '../../src/sim/network.ts';
import { SeededRandom } from '../../src/sim/random.ts';
import { localConfig, type MemberlistConfig } from '../../src/memberlist/index.ts';
import { Serf } from '../../src/serf/serf.ts';
import type { SerfAnyEvent, SerfConfig } from '../../src/serf/serf.ts';
import { carryOutSerfOutputs } from '../../src/transport/serf-outputs.ts';
import type { TimerHandle } from '../../src/transport/transport.ts';
import type { Keyring } from '../../src/wire/index.ts';

export interface SerfSimOptions {
  keyring?: (name: string) => Keyring | null;
  tags?: (name: string) => Record<string, string>;
  serf?: Partial<SerfConfig>;
  /** Per node, on top of `serf` (e.g. one node without heal pings, as Serf runs). */
  serfFor?: (name: string) => Partial<SerfConfig>;
  /** Per node, on top of the local profile. */
  memberlistFor?: (name: string) => Partial<MemberlistConfig>;
  seed?: number;
  network?: SimNetworkOptions;
  /** Answer `query` events as a handler would (undefined = no answer). */
  onQuery?: (node: string, name: string, payload: Uint8Array) => Uint8Array | undefined;
}

export class SerfSim {
  readonly cluster: Cluster;
  readonly serfs = new Map<string, Serf>();
  readonly events = new Map<string, SerfAnyEvent[]>();
  /** Virtual ms at which each event was drained, same order as `events`. */
  readonly eventTimes = new Map<string, number[]>();
  readonly shutdowns = new Map<string, string>();
  private readonly timers = new Map<string, TimerHandle>();
  private readonly scheduled = new Set<string>();
  private readonly keyrings = new Map<string, Keyring | null>();
  private readonly onQuery: SerfSimOptions['onQuery'];

  constructor(opts: SerfSimOptions = {}) {
    this.onQuery = opts.onQuery;
    this.cluster = new Cluster({
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
      ...(opts.network === undefined ? {} : { network: opts.network }),
      config: (name, addr) => {
        const kr = opts.keyring?.(name) ?? null;
        this.keyrings.set(name, kr);
        return { ...localConfig(name, addr), enableCompression: false, keyring: kr, ...opts.memberlistFor?.(name) };
      },
      delegate: (name) => {
        const s = new Serf({
          nodeName: name,
          tags: opts.tags?.(name) ?? { role: 'sim' },
          protocolVersion: 5,
          // LAN's epidemic limit (4): the local profile's 2 lets a query miss a node now and then.
          retransmitMult: 4,
          prefixBroadcasts: false,
          gossipIntervalMs: localConfig(name, { ip: '127.0.0.1', port: 1 }).gossipIntervalMs,
          keyring: this.keyrings.get(name) ?? null,
          random: new SeededRandom(hashName(name) ^ (opts.seed ?? 7)),
          wake: () => this.schedule(name),
          ...opts.serf,
          ...opts.serfFor?.(name),
        });
        this.serfs.set(name, s);
        this.events.set(name, []);
        this.eventTimes.set(name, []);
        return s;
      },
      onEvent: (observer, e, now) => {
        this.serf(observer.name).handleMemberEvent(e, now);
        this.pump(observer);
      },
    });
  }

  serf(name: string): Serf {
    const s = this.serfs.get(name);
    if (s === undefined) throw new Error(`no serf ${name}`);
    return s;
  }

  /** Run `fn` against a node's Serf at the current time, then pump its outputs. */
  command<T>(name: string, fn: (s: Serf, now: number) => T): T {
    const r = fn(this.serf(name), this.cluster.clock.now());
    this.pump(this.cluster.node(name));
    return r;
  }

  eventsOf(name: string, type?: SerfAnyEvent['type']): SerfAnyEvent[] {
    const all = this.events.get(name) ?? [];
    return type === undefined ? all : all.filter((e) => e.type === type);
  }

  /** When `name` drained its latest `type` event about `member` (undefined = never). */
  memberEventAt(name: string, type: string, member: string): number | undefined {
    const evs = this.events.get(name) ?? [];
    const times = this.eventTimes.get(name) ?? [];
    for (let i = evs.length - 1; i >= 0; i--) {
      const e = evs[i]!;
      if (e.type === type && 'members' in e && e.members[0]?.name === member) return times[i];
    }
    return undefined;
  }

  /** Names of nodes still running. */
  live(): string[] {
    return this.cluster.live().map((n) => n.name);
  }

  private schedule(name: string): void {
    if (this.scheduled.has(name)) return;
    this.scheduled.add(name);
    this.cluster.clock.setTimer(this.cluster.clock.now(), () => {
      this.scheduled.delete(name);
      const n = this.cluster.nodes.get(name);
      if (n !== undefined) this.pump(n);
    });
  }

  private pump(n: SimNode): void {
    if (n.killed) return;
    const s = this.serf(n.name);
    const go = carryOutSerfOutputs(s, n.driver, {
      shutdown: (reason) => {
        this.shutdowns.set(n.name, reason);
        s.shutdown();
        this.cluster.kill(n.name);
        return true;
      },
    });
    if (!go) return;
    const log = this.events.get(n.name)!;
    const times = this.eventTimes.get(n.name)!;
    let answered = false;
    for (let e = s.pollTypedEvent(), i = 0; e !== undefined && i < 100_000; e = s.pollTypedEvent(), i++) {
      log.push(e);
      times.push(this.cluster.clock.now());
      if (e.type === 'query' && this.onQuery !== undefined) {
        const answer = this.onQuery(n.name, e.name, e.payload);
        if (answer !== undefined) {
          s.respond(e.id, answer, this.cluster.clock.now());
          answered = true;
        }
      }
    }
    if (answered) {
      this.pump(n);
      return;
    }
    this.timers.get(n.name)?.cancel();
    const at = s.pollTimeout();
    if (at !== undefined) {
      this.timers.set(
        n.name,
        this.cluster.clock.setTimer(at, () => {
          if (n.killed) return;
          s.handleTimeout(this.cluster.clock.now());
          this.pump(n);
        }),
      );
    }
  }
}

function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Trials of one user event in a settled 8-node cluster, trial t on seed `seedBase + t`: how many
 * had not reached every node 1 s after node-0002 sent it (scripts/event-spread.ts,
 * test/sim/own-news.test.ts). A trial that throws logs its seed (and `replay`, if given) first.
 */
export function userEventMisses(o: { trials: number; seedBase: number; serf: Partial<SerfConfig>; replay?: (seed: number) => string }): number {
  let missed = 0;
  for (let t = 0; t < o.trials; t++) {
    const seed = o.seedBase + t;
    const sim = new SerfSim({ seed, serf: o.serf });
    const c = sim.cluster;
    try {
      c.addNodes(8);
      c.joinAll('node-0001', 200);
      c.runUntil(() => c.converged(), 20_000);
      c.runFor(2000 + (t % 5) * 97);
      sim.command('node-0002', (s, now) => s.userEvent('probe', new Uint8Array([1]), false, now));
      const got = (): boolean => sim.live().every((n) => sim.eventsOf(n, 'user').length > 0);
      c.runUntil(got, 1000, 20);
      if (!got()) missed++;
    } catch (e) {
      console.error(`simulation failed: seed=${seed}${o.replay === undefined ? '' : ` (${o.replay(seed)})`}`);
      throw e;
    } finally {
      c.shutdown();
    }
  }
  return missed;
}
