// The serf-vs-kodama measurements on a running AgentCluster. Latencies come from the
// timestamps the handler script itself wrote ($EPOCHREALTIME when the agent started it) minus
// the harness's Date.now() at the trigger — both CLOCK_REALTIME on one machine — so how often
// the harness polls the files only bounds how long it waits, not the figures.

import { RpcClient } from '../../src/rpc/client.ts';
import type { AgentCluster, HandlerEvent } from './cluster.ts';
import { cpuMs, killHard, rssBytes, sleep } from './procs.ts';

export interface Spread {
  /** Trigger → handler start on each node that got there, over every repeat. */
  samplesMs: number[];
  /** Per repeat: the last node's time (undefined for a repeat where some node never got there). */
  lastsMs: Array<number | undefined>;
  /** User event only, per repeat: when the sending node's own handler started. */
  originsMs: number[];
  /** Handler runs seen / expected, over every repeat. */
  reached: number;
  expected: number;
}

/** Median of everything (p50), median over repeats of the last-node time (undefined if any repeat fell short). */
export function summarize(s: Spread): { p50Ms?: number; lastMs?: number; originMs?: number } {
  const med = (xs: number[]): number | undefined => percentile([...xs].sort((a, b) => a - b), 50);
  const complete = s.lastsMs.every((x) => x !== undefined) && s.lastsMs.length > 0;
  const out: { p50Ms?: number; lastMs?: number; originMs?: number } = {};
  const p50 = med(s.samplesMs);
  if (p50 !== undefined) out.p50Ms = p50;
  const last = complete ? med(s.lastsMs as number[]) : undefined;
  if (last !== undefined) out.lastMs = last;
  const origin = med(s.originsMs);
  if (origin !== undefined) out.originMs = origin;
  return out;
}

export function mergeSpreads(a: Spread | undefined, b: Spread): Spread {
  if (a === undefined) return b;
  return {
    samplesMs: [...a.samplesMs, ...b.samplesMs],
    lastsMs: [...a.lastsMs, ...b.lastsMs],
    originsMs: [...a.originsMs, ...b.originsMs],
    reached: a.reached + b.reached,
    expected: a.expected + b.expected,
  };
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
    samplesMs: sorted,
    lastsMs: [sorted.length === expected ? sorted[sorted.length - 1] : undefined],
    originsMs: [],
    reached: sorted.length,
    expected,
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
  return { ...spread, originsMs: own.samplesMs };
}

/**
 * kill -9 `victim` and time how long until every other live agent's handler ran member-failed
 * for it. (Both agents coalesce member events — serf's agent: 3 s window / 1 s quiescence — so
 * this is the time a user's handler sees: detection, dissemination and coalescing.)
 */
export async function measureFailure(c: AgentCluster, victimName: string, timeoutMs: number): Promise<Spread> {
  const victim = c.agents.find((a) => a.name === victimName);
  if (victim === undefined) throw new Error(`no agent ${victimName}`);
  const others = c.running().filter((a) => a !== victim).map((a) => a.name);
  const t0 = Date.now();
  killHard(victim.proc.child);
  await victim.proc.exited;
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
