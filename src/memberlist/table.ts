// The node table: every node we know (ourselves included), by name, plus the probe order.
//
// Probing walks `list` round-robin. New nodes go to a random position so that every member's
// probe order differs; at each wrap-around nodes dead or left for longer than
// gossipToTheDeadMs are purged and the list is reshuffled (memberlist resetNodes). Work is
// proportional to what is due: a probe step looks at a few entries, a purge is O(n) once per
// n probes.

import type { NodeInfo, Random } from './api.ts';
import type { Address } from '../wire/types.ts';


export function isDeadOrLeft(n: NodeInfo): boolean {
  return n.state === 'dead' || n.state === 'left';
}

export class NodeTable {
  private readonly byName = new Map<string, NodeInfo>();
  /**
   * Who is advertised at an address, keyed by the ip string the entry already holds (no key
   * string per entry); several ports on one ip (rare: test rigs) share an array.
   */
  private readonly byIp = new Map<string, NodeInfo | NodeInfo[]>();
  private list: NodeInfo[] = [];
  private probeIndex = 0;
  /** alive + suspect entries, kept up to date so numMembers() is O(1) (the simulator polls it). */
  private live = 0;

  constructor(private readonly random: Random) {}

  get size(): number {
    return this.list.length;
  }

  get liveCount(): number {
    return this.live;
  }

  /** Change a node's state; every state change goes through here to keep liveCount right. */
  setState(node: NodeInfo, state: NodeInfo['state'], now: number): void {
    if (node.state === state) return;
    this.live += (isDeadOrLeft(node) ? 0 : -1) + (state === 'dead' || state === 'left' ? 0 : 1);
    node.state = state;
    node.stateChangeMs = now;
  }

  get(name: string): NodeInfo | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The node currently advertised at `addr`, if any (used for the CRC decision). */
  getByAddr(addr: Address): NodeInfo | undefined {
    const v = this.byIp.get(addr.ip);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return v.addr.port === addr.port ? v : undefined;
    return v.find((n) => n.addr.port === addr.port);
  }

  /** Index `node` at its address; a node indexed there before stops being found (last wins). */
  private indexAddr(node: NodeInfo): void {
    const { ip, port } = node.addr;
    const v = this.byIp.get(ip);
    if (v === undefined || (!Array.isArray(v) && v.addr.port === port)) {
      this.byIp.set(ip, node);
    } else if (!Array.isArray(v)) {
      this.byIp.set(ip, [v, node]);
    } else {
      const i = v.findIndex((n) => n.addr.port === port);
      if (i >= 0) v[i] = node;
      else v.push(node);
    }
  }

  /** Forget the index entry at node's current address if it is this node's. */
  private unindexAddr(node: NodeInfo): void {
    const ip = node.addr.ip;
    const v = this.byIp.get(ip);
    if (v === node) {
      this.byIp.delete(ip);
    } else if (Array.isArray(v)) {
      const i = v.indexOf(node);
      if (i < 0) return;
      v.splice(i, 1);
      if (v.length === 1) this.byIp.set(ip, v[0]!);
    }
  }

  all(): readonly NodeInfo[] {
    return this.list;
  }

  /** Insert at a random position of the probe list (swap with the end, as memberlist does). */
  add(node: NodeInfo): void {
    const n = this.list.length;
    const offset = n === 0 ? 0 : this.random.int(n);
    this.list.push(node);
    const other = this.list[offset]!;
    this.list[offset] = node;
    this.list[n] = other;
    this.byName.set(node.name, node);
    this.indexAddr(node);
    if (!isDeadOrLeft(node)) this.live++;
  }

  setAddr(node: NodeInfo, addr: Address): void {
    this.unindexAddr(node);
    node.addr = { ip: addr.ip, port: addr.port };
    this.indexAddr(node);
  }

  /**
   * Next node to probe: round-robin, skipping `selfName` and dead/left nodes; purges and
   * reshuffles at wrap-around. At most one full pass (plus the reset) per call.
   */
  nextProbeTarget(selfName: string, now: number, gossipToTheDeadMs: number): NodeInfo | undefined {
    // Bounded to about two passes (memberlist stops after one, which can skip a tick when the
    // reset lands just before the only live nodes; two passes always find one if it exists).
    let checked = 0;
    for (;;) {
      if (checked > 2 * this.list.length + 1) return undefined;
      if (this.probeIndex >= this.list.length) {
        this.purgeAndShuffle(now, gossipToTheDeadMs);
        this.probeIndex = 0;
        checked++;
        continue;
      }
      const node = this.list[this.probeIndex]!;
      this.probeIndex++;
      if (node.name === selfName || isDeadOrLeft(node)) {
        checked++;
        continue;
      }
      return node;
    }
  }

  /** Drop nodes dead or left for longer than gossipToTheDeadMs, then shuffle (Fisher–Yates). */
  purgeAndShuffle(now: number, gossipToTheDeadMs: number): NodeInfo[] {
    const removed: NodeInfo[] = [];
    const kept: NodeInfo[] = [];
    for (const node of this.list) {
      if (isDeadOrLeft(node) && now - node.stateChangeMs > gossipToTheDeadMs) {
        removed.push(node);
        this.byName.delete(node.name);
        this.unindexAddr(node);
      } else {
        kept.push(node);
      }
    }
    for (let i = kept.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const t = kept[i]!;
      kept[i] = kept[j]!;
      kept[j] = t;
    }
    this.list = kept;
    return removed;
  }

  /**
   * Up to k distinct random nodes for which `exclude` is false. Random draws first (cheap when
   * most nodes qualify, as in memberlist's kRandomNodes); memberlist stops after 3 × n draws and
   * can then miss the only qualifying node of a small cluster (a 2.6% chance per probe with 3
   * nodes: a spurious suspicion). We finish with one scan from a random offset instead.
   */
  kRandom(k: number, exclude: (n: NodeInfo) => boolean): NodeInfo[] {
    const n = this.list.length;
    const out: NodeInfo[] = [];
    if (n === 0 || k <= 0) return out;
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const node = this.list[this.random.int(n)]!;
      if (exclude(node) || out.includes(node)) continue;
      out.push(node);
    }
    if (out.length < k) {
      const start = this.random.int(n);
      for (let i = 0; i < n && out.length < k; i++) {
        const node = this.list[(start + i) % n]!;
        if (exclude(node) || out.includes(node)) continue;
        out.push(node);
      }
    }
    return out;
  }
}
