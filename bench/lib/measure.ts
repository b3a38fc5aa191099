// The four serf-vs-kodama measurements on a running AgentCluster. Latencies come from the
// timestamps the handler script itself wrote ($EPOCHREALTIME when the agent started it) minus
// the harness's Date.now() at the trigger — both CLOCK_REALTIME on one machine — so how often
// the harness polls the files only bounds how long it waits, not the figures.

import { RpcClient } from '../../src/rpc/client.ts';
import type { AgentCluster, HandlerEvent } from './cluster.ts';
import { cpuMs, killHard, rssBytes, sleep } from './procs.ts';

export interface Spread {
  /** User event only: when the sending node's own handler started. */
  originMs?: number | undefined;
  /** Nodes whose handler ran / nodes expected to run it. */
  reached: number;
  expected: number;
  p50Ms: number | undefined;
  /** Time for the last node (undefined unless every expected node got there). */
  lastMs: number | undefined;
}

export interface Idle {
  windowMs: number;
  /** Sum of utime+stime over all agents during the window, as % of one core. */
  cpuPctOfCore: number;
  rssMeanBytes: number;
  rssMaxBytes: number;
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function toSpread(latencies: Map<string, number>, expected: number): Spread {
  const sorted = [...latencies.values()].sort((a, b) => a - b);
  return {
    reached: sorted.length,
    expected,
    p50Ms: percentile(sorted, 50),
    lastMs: sorted.length === expected ? sorted[sorted.length - 1] : undefined,
  };
}

/**
 * Wait until handler events stop arriving (the join storm's coalesced member-join runs): no new
 * bytes for `quietMs`, bounded by `timeoutMs`. Returns false if it never calmed down.
 */
export async function waitHandlersQuiet(c: AgentCluster, quietMs: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let bytes = c.eventBytes();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(250);
    const now = c.eventBytes();
    if (now !== bytes) {
      bytes = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return true;
    }
  }
  return false;
}

/** CPU of the whole cluster over an idle window, and RSS per agent at its end. */
export async function measureIdle(c: AgentCluster, windowMs: number): Promise<Idle> {
  const pids = c.running().map((a) => a.proc.pid);
  const before = pids.map((p) => cpuMs(p));
  const t0 = performance.now();
  await sleep(windowMs);
  const elapsed = performance.now() - t0;
  let used = 0;
  pids.forEach((p, i) => {
    const a = before[i];
    const b = cpuMs(p);
    if (a !== undefined && b !== undefined) used += b - a;
  });
  const rss = pids.map((p) => rssBytes(p)).filter((x): x is number => x !== undefined);
  return {
    windowMs: elapsed,
    cpuPctOfCore: (used / elapsed) * 100,
    rssMeanBytes: rss.length === 0 ? 0 : rss.reduce((s, x) => s + x, 0) / rss.length,
    rssMaxBytes: rss.length === 0 ? 0 : Math.max(...rss),
  };
}

/**
 * Send one user event (coalesce off, so no handler-side coalescing window) through the first
 * agent's RPC and time how long until every *other* agent's handler ran it.
 */
export async function measureUserEvent(c: AgentCluster, eventName: string, timeoutMs: number): Promise<Spread> {
  const origin = c.agents[0];
  if (origin === undefined) throw new Error('empty cluster');
  const others = c.running().filter((a) => a !== origin).map((a) => a.name);
  const client = await RpcClient.connect(origin.rpcAddr, { timeoutMs: 5000 });
  let t0: number;
  try {
    t0 = Date.now();
    await client.userEvent(eventName, new TextEncoder().encode('bench'), false);
  } finally {
    client.close();
  }
  const match = (e: HandlerEvent): boolean => e.event === 'user' && e.userEvent === eventName;
  const spread = await waitSpread(c, others, timeoutMs, match, t0);
  // The origin runs its own handler too, with no network in between: what is left is the
  // agent's RPC → event → handler start path, which tells propagation apart from local overhead.
  const own = await waitSpread(c, [origin.name], 2000, match, t0);
  return { ...spread, originMs: own.p50Ms };
}

/**
 * kill -9 the last agent and time how long until every other agent's handler ran member-failed
 * for it. (Both agents coalesce member events — serf's agent: 3 s window / 1 s quiescence — so
 * this is the time a user's handler sees, detection plus dissemination plus coalescing.)
 */
export async function measureFailure(c: AgentCluster, timeoutMs: number): Promise<Spread> {
  const victim = c.agents[c.agents.length - 1];
  if (victim === undefined || c.agents.length < 2) throw new Error('need at least two agents');
  const others = c.running().filter((a) => a !== victim).map((a) => a.name);
  const t0 = Date.now();
  killHard(victim.proc.child);
  return waitSpread(c, others, timeoutMs, (e) => e.event === 'member-failed' && e.members.includes(victim.name), t0);
}

async function waitSpread(
  c: AgentCluster,
  expectedNodes: string[],
  timeoutMs: number,
  match: (e: HandlerEvent) => boolean,
  t0: number,
): Promise<Spread> {
  const expected = new Set(expectedNodes);
  const deadline = Date.now() + timeoutMs;
  const latencies = new Map<string, number>();
  while (true) {
    latencies.clear();
    for (const e of c.readEvents()) {
      if (!expected.has(e.self) || !match(e) || e.tMs < t0 - 1) continue;
      const prev = latencies.get(e.self);
      const l = e.tMs - t0;
      if (prev === undefined || l < prev) latencies.set(e.self, l);
    }
    if (latencies.size >= expected.size || Date.now() >= deadline) break;
    await sleep(250);
  }
  return toSpread(latencies, expected.size);
}
