// A tiny in-test network for driving several Memberlist cores directly: one virtual time
// variable, a FIFO of in-flight deliveries (packets by address; stream-open → the target's
// handleStreamRequest → its stream-reply → the initiator's handleStreamReply), and per-test
// drop rules. No sockets, no real time; every run is bounded in steps and virtual time.

import { Memberlist } from '../../src/memberlist/memberlist.ts';
import { lanConfig, type MemberlistConfig } from '../../src/memberlist/config.ts';
import type { Delegate, MemberEvent, NodeInfo, Output, Random } from '../../src/memberlist/api.ts';
import type { Address } from '../../src/wire/types.ts';

export function testRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    float: next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256)),
  };
}

export class TestDelegate implements Delegate {
  meta: Uint8Array = new Uint8Array(0);
  received: Uint8Array[] = [];
  pings: { node: string; rttMs: number }[] = [];
  nodeMeta(): Uint8Array {
    return this.meta;
  }
  notifyMsg(payload: Uint8Array): void {
    this.received.push(payload);
  }
  getBroadcasts(_overhead: number, _limit: number): Uint8Array[] {
    return [];
  }
  localState(): Uint8Array {
    return new Uint8Array(0);
  }
  mergeRemoteState(): void {}
  ackPayload(): Uint8Array | null {
    return null;
  }
  notifyPingComplete(node: NodeInfo, rttMs: number): void {
    this.pings.push({ node: node.name, rttMs });
  }
}

export interface TestNode {
  name: string;
  addr: Address;
  ml: Memberlist;
  delegate: TestDelegate;
  /** Events with the virtual time they were drained at. */
  events: { at: number; e: MemberEvent }[];
  stopped: boolean;
}

export type Kind = 'packet' | 'stream';
/** Return true to drop. `bytes` is the request (streams) or datagram (packets). */
export type DropRule = (kind: Kind, from: string, to: string, bytes: Uint8Array) => boolean;

interface Delivery {
  at: number;
  seq: number;
  run: () => void;
}

const LATENCY_MS = 1;

export class Net {
  now = 0;
  readonly nodes = new Map<string, TestNode>();
  private readonly byAddr = new Map<string, TestNode>();
  private inflight: Delivery[] = [];
  private seq = 0;
  private nextInboundId = 1;
  /** inbound stream id → where its reply goes */
  private readonly inbound = new Map<number, { initiator: TestNode; id: number }>();
  rules: DropRule[] = [];
  /** Called after every delivery or timer run (observers record states here). */
  observe: (() => void) | undefined;
  private ipCounter = 1;

  constructor(private readonly seed = 1) {}

  add(name: string, tweak?: (c: MemberlistConfig) => void, addr?: Address): TestNode {
    const a = addr ?? { ip: `10.0.0.${this.ipCounter++}`, port: 7946 };
    const config = lanConfig(name, a);
    tweak?.(config);
    const delegate = new TestDelegate();
    const ml = new Memberlist(config, delegate, testRandom(this.seed * 1000 + this.nodes.size + 1));
    const node: TestNode = { name, addr: a, ml, delegate, events: [], stopped: false };
    this.nodes.set(name, node);
    this.byAddr.set(`${a.ip}|${a.port}`, node);
    ml.start(this.now);
    this.pump(node);
    return node;
  }

  get(name: string): TestNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** Kill a node: it stops answering and sending, like a crashed process. */
  stop(name: string): void {
    const n = this.get(name);
    n.stopped = true;
    n.ml.shutdown();
  }

  join(name: string, seeds: string[]): number {
    const n = this.get(name);
    const id = n.ml.join(seeds.map((s) => this.get(s).addr), this.now);
    this.pump(n);
    return id;
  }

  /** Run fn against a node's core now, then collect its outputs. */
  with<T>(name: string, fn: (ml: Memberlist, now: number) => T): T {
    const n = this.get(name);
    const r = fn(n.ml, this.now);
    this.pump(n);
    return r;
  }

  private schedule(at: number, run: () => void): void {
    this.inflight.push({ at, seq: this.seq++, run });
  }

  private dropped(kind: Kind, from: TestNode, to: string, bytes: Uint8Array): boolean {
    return this.rules.some((r) => r(kind, from.name, to, bytes));
  }

  pump(node: TestNode): void {
    for (let i = 0; i < 100_000; i++) {
      const o = node.ml.pollOutput();
      if (o === undefined) break;
      this.route(node, o);
    }
    for (let i = 0; i < 100_000; i++) {
      const e = node.ml.pollEvent();
      if (e === undefined) break;
      node.events.push({ at: this.now, e });
    }
  }

  private route(from: TestNode, o: Output): void {
    const at = this.now + LATENCY_MS;
    switch (o.kind) {
      case 'packet': {
        const to = this.byAddr.get(`${o.to.ip}|${o.to.port}`);
        if (to === undefined || this.dropped('packet', from, to.name, o.bytes)) return;
        this.schedule(at, () => {
          if (to.stopped) return;
          to.ml.handlePacket(from.addr, o.bytes, this.now);
          this.pump(to);
        });
        return;
      }
      case 'stream-open': {
        const to = this.byAddr.get(`${o.to.ip}|${o.to.port}`);
        const fail = (reason: string): void =>
          this.schedule(at, () => {
            if (from.stopped) return;
            from.ml.handleStreamFailed(o.id, reason, this.now);
            this.pump(from);
          });
        if (to === undefined || to.stopped || this.dropped('stream', from, to.name, o.bytes)) {
          fail('connection refused');
          return;
        }
        this.schedule(at, () => {
          if (to.stopped) {
            fail('connection reset');
            return;
          }
          const inId = this.nextInboundId++;
          this.inbound.set(inId, { initiator: from, id: o.id });
          to.ml.handleStreamRequest(inId, from.addr, o.bytes, this.now);
          this.pump(to);
        });
        return;
      }
      case 'stream-reply':
      case 'stream-close': {
        const back = this.inbound.get(o.id);
        if (back === undefined) return;
        this.inbound.delete(o.id);
        const bytes = o.kind === 'stream-reply' ? o.bytes : null;
        this.schedule(at, () => {
          if (back.initiator.stopped) return;
          if (bytes === null) back.initiator.ml.handleStreamFailed(back.id, 'EOF', this.now);
          else back.initiator.ml.handleStreamReply(back.id, bytes, this.now);
          this.pump(back.initiator);
        });
        return;
      }
    }
  }

  /** Advance virtual time to `untilMs`, delivering everything due in order. */
  runUntil(untilMs: number, maxSteps = 2_000_000): void {
    for (let step = 0; step < maxSteps; step++) {
      let nextDelivery: Delivery | undefined;
      for (const d of this.inflight) {
        if (nextDelivery === undefined || d.at < nextDelivery.at || (d.at === nextDelivery.at && d.seq < nextDelivery.seq)) nextDelivery = d;
      }
      let nextTimer: TestNode | undefined;
      let timerAt = Infinity;
      for (const n of this.nodes.values()) {
        if (n.stopped) continue;
        const t = n.ml.pollTimeout();
        if (t !== undefined && t < timerAt) {
          timerAt = t;
          nextTimer = n;
        }
      }
      const dAt = nextDelivery?.at ?? Infinity;
      const at = Math.min(dAt, timerAt);
      if (at > untilMs) {
        this.now = untilMs;
        return;
      }
      this.now = Math.max(this.now, at);
      if (nextDelivery !== undefined && dAt <= timerAt) {
        this.inflight.splice(this.inflight.indexOf(nextDelivery), 1);
        nextDelivery.run();
      } else if (nextTimer !== undefined) {
        nextTimer.ml.handleTimeout(this.now);
        this.pump(nextTimer);
      }
      this.observe?.();
    }
    throw new Error(`runUntil(${untilMs}) exceeded ${maxSteps} steps at t=${this.now}`);
  }

  run(forMs: number): void {
    this.runUntil(this.now + forMs);
  }

  /** The state `viewer` has for `subject`, or undefined. */
  stateOf(viewer: string, subject: string): NodeInfo | undefined {
    return this.get(viewer).ml.members().find((m) => m.name === subject);
  }

  eventsOf(name: string, type: MemberEvent['type']): { at: number; e: MemberEvent }[] {
    return this.get(name).events.filter((x) => x.e.type === type);
  }

  /** Start `names[0]`'s cluster: everyone else joins the first node. */
  static cluster(names: string[], seed = 1, tweak?: (c: MemberlistConfig) => void): Net {
    const net = new Net(seed);
    for (const n of names) net.add(n, tweak);
    for (const n of names.slice(1)) net.join(n, [names[0]!]);
    return net;
  }
}
