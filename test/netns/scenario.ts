// The partition/re-merge scenario on a real test network, shared by test/netns/remerge.test.ts
// (asserts) and bench/remerge.ts (prints figures):
//
//   start N agents (serf and/or kodama) → join them in a given order → all alive everywhere
//   → [optional: let the join gossip settle, then count UDP packets per node for a healthy window]
//   → cut side A | side B → wait until each side sees the other side `failed`
//   → keep the cut for `partitionMs` more (UDP packets per node counted over that window)
//   → heal → poll every node's members every `pollMs` until each sees all N alive
//
// Re-merge time of a node = heal → the first poll at which its view has all N members alive.
// After that (or after the bound), one more poll of every node records what it ends with.

import { createNet, type Net, type UdpCount } from './net.ts';
import { formatViews, joinAll, members, membershipLog, startAgent, statuses, type Agent, type AgentKind } from './agents.ts';
import { falseFailures, waitAllAlive, type FalseFailure } from './checker.ts';

// Protocol timings the waits are derived from (memberlist's LAN profile, which serf and kodama
// use by default): probe interval 1 s; suspicion timeout = SuspicionMult 4 × max(1, log10(n)) ×
// probe interval, which Lifeguard starts at SuspicionMaxTimeoutMult 6 × that and shrinks as
// other members confirm the suspicion.
export const PROBE_INTERVAL_MS = 1000;
export function suspicionMaxMs(n: number): number {
  return 6 * 4 * Math.max(1, Math.log10(n)) * PROBE_INTERVAL_MS;
}
/** Cut → every node sees the other side failed: the longest Lifeguard timeout plus a few probe rounds. */
export function detectBoundMs(n: number): number {
  return suspicionMaxMs(n) + 6 * PROBE_INTERVAL_MS;
}

export interface RemergeSpec {
  /** One kind per node. */
  kinds: AgentKind[];
  /** Node names (default: s<i> for serf, k<i> for kodama). */
  names?: string[];
  /** Node indexes on each side of the cut. */
  sides: [number[], number[]];
  /** Node indexes in join order (each joins the one before it). */
  joinOrder: number[];
  /** How long the cut is kept after every node saw the other side failed. */
  partitionMs: number;
  /** Heal → stop waiting for re-merge (a node not merged by then has remergeMs undefined). */
  remergeBoundMs: number;
  /** Cut → give up waiting for failure detection (throws). Default detectBoundMs(n). */
  detectBoundMs?: number;
  /** Poll interval for member views, default 150 ms. */
  pollMs?: number;
  /** Count UDP packets for this long while healthy, before the cut (0 = skip, the default). */
  baselineMs?: number;
  /** Wait this long after everyone is alive before the healthy window (join gossip settles). Default 0. */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface NodeResult {
  name: string;
  kind: AgentKind;
  side: 0 | 1;
  /** Heal → this node saw all N alive (undefined: not within the bound). */
  remergeMs: number | undefined;
  /** Its view at the end (name → status). */
  finalView: Map<string, string> | undefined;
  /** UDP packets/s it sent while healthy (baseline window), if measured. */
  healthyPps: number | undefined;
  /** UDP packets/s it sent while the other side was failed (all-failed → heal), and how many of those went to the other side. */
  failedPps: number | undefined;
  failedToCutPps: number | undefined;
}

export interface RemergeResult {
  subnet: string;
  firewall: string;
  /** Cut → every node saw the other side failed. */
  detectMs: number;
  /** All failed → heal (the window the failed-packet rates are over). */
  failedWindowMs: number;
  /** Cut → heal. */
  partitionMs: number;
  nodes: NodeResult[];
  /** Max over nodes (undefined if any node did not re-merge within the bound). */
  overallMs: number | undefined;
  /** What is wrong at the end: members not alive, left, missing, nodes not answering. */
  problems: string[];
  /** member-failed handler events, from the cut on, naming a member on the observer's own side. */
  falseFailures: FalseFailure[];
  /** Unix ms of the cut (for formatting falseFailures). */
  cutAtUnixMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function defaultNames(kinds: AgentKind[]): string[] {
  return kinds.map((k, i) => `${k === 'serf' ? 's' : 'k'}${i}`);
}

async function readCounters(net: Net, agents: Agent[]): Promise<Map<string, UdpCount>> {
  const all = await Promise.all(agents.map(async (a) => [a.name, await net.udpSent(a.node)] as const));
  return new Map(all);
}

/** Run the scenario on a fresh network; the network and every agent are gone when it returns or throws. */
export async function runRemerge(spec: RemergeSpec): Promise<RemergeResult> {
  const n = spec.kinds.length;
  const names = spec.names ?? defaultNames(spec.kinds);
  const pollMs = spec.pollMs ?? 150;
  const detectBound = spec.detectBoundMs ?? detectBoundMs(n);
  const started = performance.now();
  const log = (line: string): void => spec.log?.(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`);
  const sideOf = new Map<number, 0 | 1>();
  for (const i of spec.sides[0]) sideOf.set(i, 0);
  for (const i of spec.sides[1]) sideOf.set(i, 1);
  if (sideOf.size !== n || spec.sides[0].length + spec.sides[1].length !== n) throw new Error('runRemerge: sides must split every node exactly once');
  if (new Set(spec.joinOrder).size !== n || spec.joinOrder.some((i) => i < 0 || i >= n)) throw new Error('runRemerge: joinOrder must list every node once');

  const net = await createNet({ nodes: n, names });
  try {
    log(`network ${net.subnet} (${net.firewall}), starting ${n} agents: ${names.map((x, i) => `${x}=${spec.kinds[i]}`).join(' ')}`);
    // One at a time, in join order: starting six node agents at once thrashes two cores.
    const agents: Agent[] = [];
    for (const i of spec.joinOrder) agents[i] = await startAgent(net, net.nodes[i]!, spec.kinds[i]!);
    log(`agents up; joining in order ${spec.joinOrder.map((i) => names[i]).join(' → ')}`);
    await joinAll(spec.joinOrder.map((i) => agents[i]!));
    log('every agent sees every member alive');

    let healthy: Map<string, number> | undefined;
    if ((spec.settleMs ?? 0) > 0) await sleep(spec.settleMs ?? 0);
    if ((spec.baselineMs ?? 0) > 0) {
      const c0 = await readCounters(net, agents);
      const t0 = performance.now();
      await sleep(spec.baselineMs ?? 0);
      const c1 = await readCounters(net, agents);
      const secs = (performance.now() - t0) / 1000;
      healthy = new Map(agents.map((a) => [a.name, ((c1.get(a.name)?.sent ?? 0) - (c0.get(a.name)?.sent ?? 0)) / secs]));
    }

    const sideA = spec.sides[0].map((i) => agents[i]!);
    const sideB = spec.sides[1].map((i) => agents[i]!);
    const other = new Map<string, Agent[]>();
    for (const a of sideA) other.set(a.name, sideB);
    for (const b of sideB) other.set(b.name, sideA);

    const cutAtUnixMs = Date.now();
    await net.cut(
      sideA.map((a) => a.node),
      sideB.map((b) => b.node),
    );
    const cutAt = performance.now();
    log(`cut ${sideA.map((a) => a.name).join(',')} | ${sideB.map((b) => b.name).join(',')}`);

    // Wait until each side sees the other side failed.
    let detectMs = -1;
    let lastViews = new Map<string, Map<string, string> | undefined>();
    for (let i = 0; i < 100_000; i++) {
      const views = await Promise.all(agents.map(async (a) => [a, await members(a)] as const));
      lastViews = new Map(views.map(([a, ms]) => [a.name, ms === undefined ? undefined : statuses(ms)]));
      const done = views.every(([a, ms]) => {
        if (ms === undefined) return false;
        const v = statuses(ms);
        return (other.get(a.name) ?? []).every((o) => v.get(o.name) === 'failed');
      });
      if (done) {
        detectMs = performance.now() - cutAt;
        break;
      }
      if (performance.now() - cutAt >= detectBound) break;
      await sleep(pollMs);
    }
    if (detectMs < 0) {
      const logs = agents.map((a) => membershipLog(a)).join('\n');
      throw new Error(`the sides did not see each other failed within ${detectBound} ms of the cut; last views:\n${formatViews(lastViews)}\nmembership lines of each agent's log:\n${logs}`);
    }
    log(`each side sees the other failed after ${(detectMs / 1000).toFixed(1)} s`);

    const failedAt = performance.now();
    const f0 = await readCounters(net, agents);
    await sleep(spec.partitionMs);
    const f1 = await readCounters(net, agents);
    const failedWindowMs = performance.now() - failedAt;

    await net.heal();
    const healAt = performance.now();
    const partitionMs = healAt - cutAt;
    log(`healed after ${(partitionMs / 1000).toFixed(1)} s of partition (${(failedWindowMs / 1000).toFixed(1)} s with members failed)`);

    const remerge = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const views = await Promise.all(agents.filter((a) => !remerge.has(a.name)).map(async (a) => [a, await members(a)] as const));
      const at = performance.now() - healAt;
      for (const [a, ms] of views) {
        if (ms === undefined) continue;
        const v = statuses(ms);
        if (names.every((x) => v.get(x) === 'alive')) {
          remerge.set(a.name, at);
          log(`${a.name} (${a.kind}) sees all ${n} alive ${(at / 1000).toFixed(2)} s after heal`);
        }
      }
      if (remerge.size === n || performance.now() - healAt >= spec.remergeBoundMs) break;
      await sleep(pollMs);
    }

    // What every node ends with.
    const finalViews = await Promise.all(agents.map(async (a) => [a, await members(a)] as const));
    const problems: string[] = [];
    const nodes: NodeResult[] = [];
    for (const [a, ms] of finalViews) {
      const v = ms === undefined ? undefined : statuses(ms);
      if (v === undefined) problems.push(`${a.name}: no answer on RPC`);
      else {
        for (const x of names) {
          const s = v.get(x);
          if (s === undefined) problems.push(`${a.name}: ${x} is missing`);
          else if (s !== 'alive') problems.push(`${a.name}: ${x} is ${s}`);
        }
      }
      const secs = failedWindowMs / 1000;
      const c0 = f0.get(a.name);
      const c1 = f1.get(a.name);
      nodes.push({
        name: a.name,
        kind: a.kind,
        side: sideOf.get(a.node.index) ?? 0,
        remergeMs: remerge.get(a.name),
        finalView: v,
        healthyPps: healthy?.get(a.name),
        failedPps: c0 && c1 && secs >= 1 ? (c1.sent - c0.sent) / secs : undefined,
        failedToCutPps: c0 && c1 && secs >= 1 ? (c1.toCut - c0.toCut) / secs : undefined,
      });
    }
    const overallMs = remerge.size === n ? Math.max(...remerge.values()) : undefined;
    log(overallMs === undefined ? `NOT re-merged within ${spec.remergeBoundMs} ms: ${names.filter((x) => !remerge.has(x)).join(', ')}` : `re-merged: ${(overallMs / 1000).toFixed(2)} s after heal`);
    for (const p of problems) log(`problem at the end: ${p}`);
    const sideByName = new Map(agents.map((a) => [a.name, sideOf.get(a.node.index)]));
    const wrong = falseFailures(agents, cutAtUnixMs, (observer, subject) => sideByName.get(observer) !== sideByName.get(subject));
    return { subnet: net.subnet, firewall: net.firewall, detectMs, failedWindowMs, partitionMs, nodes, overallMs, problems, falseFailures: wrong, cutAtUnixMs };
  } finally {
    await net.destroy();
  }
}

/** Per-node figures as aligned text lines (for test output and the bench log). */
export function formatNodes(r: RemergeResult): string {
  const f = (x: number | undefined, d = 2): string => (x === undefined ? '—' : x.toFixed(d));
  const lines = ['  node    kind    side  re-merge s  pkts/s failed  (to other side)  pkts/s healthy'];
  for (const x of r.nodes) {
    lines.push(
      `  ${x.name.padEnd(7)} ${x.kind.padEnd(7)} ${(x.side === 0 ? 'A' : 'B').padEnd(5)} ${(x.remergeMs === undefined ? 'not merged' : f(x.remergeMs / 1000)).padStart(10)}  ${f(x.failedPps, 1).padStart(13)}  ${f(x.failedToCutPps, 1).padStart(15)}  ${f(x.healthyPps, 1).padStart(14)}`,
    );
  }
  return lines.join('\n');
}

/**
 * The clusters the fault scenarios run on: kodama-only and mixed (serf and kodama alternating,
 * so index 3 is a kodama node), of KODAMA_NETNS_NODES nodes (6…12, default 6); with
 * KODAMA_NETNS_SERF=1 also serf-only, for Serf's own figures beside kodama's (not in the suite:
 * it tests Serf, not us).
 */
export function faultClusters(): { label: string; kinds: AgentKind[]; baseline: boolean }[] {
  const env = process.env['KODAMA_NETNS_NODES'];
  const n = env === undefined || env === '' ? 6 : Number(env);
  if (!Number.isInteger(n) || n < 6 || n > 12) throw new Error(`KODAMA_NETNS_NODES must be an integer 6…12, got ${env}`);
  const out = [
    { label: `kodama-only ${n}`, kinds: Array.from({ length: n }, (): AgentKind => 'kodama'), baseline: false },
    { label: `mixed ${Math.ceil(n / 2)} serf + ${Math.floor(n / 2)} kodama`, kinds: Array.from({ length: n }, (_, i): AgentKind => (i % 2 === 0 ? 'serf' : 'kodama')), baseline: false },
  ];
  if (process.env['KODAMA_NETNS_SERF'] === '1') out.push({ label: `serf-only ${n} (baseline)`, kinds: Array.from({ length: n }, (): AgentKind => 'serf'), baseline: true });
  return out;
}
/** How long a baseline (serf-only) run waits for every member alive again before reporting "not within". */
export const BASELINE_WAIT_MS = 60_000;

/**
 * After a fault ends: every member alive everywhere. A judged run (kodama-only, mixed) throws past
 * `boundMs`, with the diagnosis; a baseline run (serf-only: Serf's figure, not a verdict on us)
 * waits up to BASELINE_WAIT_MS and reports. Returns the figure as text, e.g. "412 ms" or
 * "not within 60000 ms (bound for kodama 5000 ms)".
 */
export async function allAliveAgain(net: Net, agents: Agent[], names: string[], boundMs: number, what: string, baseline: boolean): Promise<string> {
  if (!baseline) return `${Math.max(...(await waitAllAlive(net, agents, names, boundMs, what)).values()).toFixed(0)} ms`;
  try {
    const back = await waitAllAlive(net, agents, names, BASELINE_WAIT_MS, what);
    const ms = Math.max(...back.values());
    return `${ms.toFixed(0)} ms${ms > boundMs ? ` (past kodama's bound of ${boundMs} ms)` : ''}`;
  } catch {
    return `not within ${BASELINE_WAIT_MS} ms (kodama's bound ${boundMs} ms)`;
  }
}

/** After the join: gossip's retransmissions are over well within this (see remerge.test.ts). */
const CLUSTER_SETTLE_MS = 2_000;

/**
 * A fresh test network with one agent of each kind per node (named s<i> / k<i>), started one at a
 * time, joined in a chain, every member alive everywhere and settled; `fn` runs the scenario, and
 * the network and every agent are gone when this returns or throws.
 */
export async function withCluster(kinds: AgentKind[], fn: (net: Net, agents: Agent[]) => Promise<void>): Promise<void> {
  const net = await createNet({ nodes: kinds.length, names: defaultNames(kinds) });
  try {
    const agents: Agent[] = [];
    // One at a time: starting six node agents at once thrashes two cores.
    for (let i = 0; i < kinds.length; i++) agents.push(await startAgent(net, net.nodes[i]!, kinds[i]!));
    await joinAll(agents);
    await sleep(CLUSTER_SETTLE_MS);
    net.mark(`all ${agents.length} alive everywhere, settled`);
    await fn(net, agents);
  } finally {
    await net.destroy();
  }
}
