// What every fault scenario checks at its end (issue 13), from every node's RPC and its event
// handler's log, never by eye:
//   - false failures: member-failed handler events that name a member the scenario never cut off
//     from that observer, paused or killed (counted, and listed with when and who saw whom);
//   - after the heal: every healthy member alive in every node's view within a bound derived from
//     the protocol's timings, and then exactly the expected members, each once, all alive (no
//     member lost, none extra, none stuck failed or left).
// A failure prints the network's timeline of injected faults and each agent's membership lines.

import { readFileSync } from 'node:fs';
import { members, membershipLog, statuses, type Agent } from './agents.ts';
import type { Net } from './net.ts';

/** One line of scripts/bench-handler.sh: when the agent started the handler, and for what. */
export interface HandlerRecord {
  /** Unix time, ms. */
  atMs: number;
  self: string;
  event: string;
  /** Members named on stdin (member-* events). */
  members: string[];
}

export function handlerRecords(a: Agent): HandlerRecord[] {
  let text: string;
  try {
    text = readFileSync(a.eventsFile, 'utf8');
  } catch {
    return []; // no event yet
  }
  const out: HandlerRecord[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const atMs = Number(f[0]) * 1000;
    if (!Number.isFinite(atMs)) continue;
    out.push({ atMs, self: f[1] ?? '', event: f[2] ?? '', members: f[4] === '-' || f[4] === undefined ? [] : f[4].split(',') });
  }
  return out;
}

export interface FalseFailure {
  atMs: number;
  observer: string;
  subject: string;
}

/**
 * member-failed events since `sinceMs` (unix ms) naming a member for which `expected(observer,
 * subject)` is false: a node the scenario did not take away from that observer.
 */
export function falseFailures(agents: Agent[], sinceMs: number, expected: (observer: string, subject: string) => boolean): FalseFailure[] {
  const out: FalseFailure[] = [];
  for (const a of agents) {
    for (const r of handlerRecords(a)) {
      if (r.event !== 'member-failed' || r.atMs < sinceMs) continue;
      for (const m of r.members) if (!expected(a.name, m)) out.push({ atMs: r.atMs, observer: a.name, subject: m });
    }
  }
  return out.sort((x, y) => x.atMs - y.atMs);
}

export function formatFalseFailures(list: FalseFailure[], t0Ms: number): string {
  return list.map((f) => `  +${((f.atMs - t0Ms) / 1000).toFixed(1)} s: ${f.observer} ran member-failed for ${f.subject}`).join('\n');
}

/** The timeline and each agent's membership lines: what a failing scenario prints. */
export function diagnosis(net: Net, agents: Agent[]): string {
  return `timeline of the scenario:\n${net.timeline().map((l) => `  ${l}`).join('\n')}\nmembership lines of each agent's log:\n${agents.map((a) => membershipLog(a, 15)).join('\n')}`;
}

/**
 * Poll every agent until each sees every name in `names` alive; returns, per agent, ms from the
 * call until it did. Throws after `boundMs` with the last views and the diagnosis.
 */
export async function waitAllAlive(net: Net, agents: Agent[], names: string[], boundMs: number, what: string, pollMs = 150): Promise<Map<string, number>> {
  const t0 = performance.now();
  const seen = new Map<string, number>();
  let last = new Map<string, Map<string, string> | undefined>();
  for (let i = 0; i < 100_000; i++) {
    const pending = agents.filter((a) => !seen.has(a.name));
    const views = await Promise.all(pending.map(async (a) => [a, await members(a)] as const));
    const at = performance.now() - t0;
    for (const [a, ms] of views) {
      const v = ms === undefined ? undefined : statuses(ms);
      last.set(a.name, v);
      if (v !== undefined && names.every((n) => v.get(n) === 'alive')) seen.set(a.name, at);
    }
    if (seen.size === agents.length) return seen;
    if (at >= boundMs) break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  last = new Map([...last].filter(([n]) => !seen.has(n)));
  const views = [...last].map(([n, v]) => `  ${n}: ${v === undefined ? '(no answer)' : [...v].map(([m, s]) => `${m}=${s}`).join(' ')}`).join('\n');
  throw new Error(`${what}: not every node saw all ${names.length} alive within ${boundMs} ms; still waiting:\n${views}\n${diagnosis(net, agents)}`);
}

/** Every agent lists exactly `names`, each once, all alive: what is wrong, one line each. */
export async function finalViewProblems(agents: Agent[], names: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const a of agents) {
    const ms = await members(a);
    if (ms === undefined) {
      problems.push(`${a.name}: no answer on RPC`);
      continue;
    }
    const counts = new Map<string, number>();
    for (const m of ms) counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
    for (const [n, c] of counts) if (c > 1) problems.push(`${a.name}: ${n} listed ${c} times`);
    for (const n of names) {
      const m = ms.find((x) => x.name === n);
      if (m === undefined) problems.push(`${a.name}: ${n} missing`);
      else if (m.status !== 'alive') problems.push(`${a.name}: ${n} is ${m.status}`);
    }
    for (const m of ms) if (!names.includes(m.name)) problems.push(`${a.name}: unexpected member ${m.name} (${m.status})`);
  }
  return problems;
}
