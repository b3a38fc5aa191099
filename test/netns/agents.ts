// Real agents inside a test network (test/netns/net.ts): `./bin/kodama agent` and `serf agent`
// with the same flags, each in its node's namespace (`-bind <ip>:7946`, RPC on the namespace's
// own loopback), counted as started only after its own banner (as test/lib/agents.ts does: the
// banner, paths and death reports come from there; ports need no slot, each namespace has its own).
// Their RPC is reached from the test through Net.forward, so member views are read with the
// project's RPC client (one process per poll of the CLI would be far too slow to poll every
// 150 ms on two cores).

import { join as joinPath } from 'node:path';
import { RpcClient } from '../../src/rpc/client.ts';
import type { RpcMember } from '../../src/rpc/backend.ts';
import { BANNER, KODAMA_BIN, REPO, SERF_BIN, describeProcess } from '../lib/agents.ts';
import type { Kind } from '../lib/agents.ts';
import type { Net, NetNode, NsProc } from './net.ts';

/** The event handler both kinds run: appends "<time> <self> <event> <user-event> <members>" to a file. */
export const HANDLER = `${REPO}scripts/bench-handler.sh`;
export const GOSSIP_PORT = 7946;
export const RPC_PORT = 7373;

export type AgentKind = Kind;

export interface Agent {
  kind: AgentKind;
  name: string;
  node: NetNode;
  proc: NsProc;
  /** `<ip>:7946`, what others join. */
  gossipAddr: string;
  /** Host-reachable address of its RPC (through the namespace relay). */
  rpcAddr: string;
  /** Where its event handler writes (one line per event). */
  eventsFile: string;
}

export interface StartAgentOptions {
  /** More agent flags (after the common ones). */
  args?: string[];
  /** Default 30 s (node loads kodama at start; two cores may be busy). */
  timeoutMs?: number;
  logLevel?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Start one agent of `kind` named after the node, in its namespace; resolves after its banner. */
export async function startAgent(net: Net, node: NetNode, kind: AgentKind, o: StartAgentOptions = {}): Promise<Agent> {
  const eventsFile = joinPath(net.dir, `${node.name}.events`);
  const args = [
    'agent',
    '-node',
    node.name,
    '-bind',
    `${node.ip}:${GOSSIP_PORT}`,
    '-rpc-addr',
    `127.0.0.1:${RPC_PORT}`,
    '-log-level',
    o.logLevel ?? 'debug',
    '-event-handler',
    `${HANDLER} ${eventsFile}`,
    ...(o.args ?? []),
  ];
  const proc = net.spawn(node, kind === 'kodama' ? KODAMA_BIN : SERF_BIN, args, {
    cwd: REPO,
    watch: [BANNER[kind]],
    name: `${kind} ${node.name}`,
  });
  const timeoutMs = o.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && !proc.saw(BANNER[kind]); i++) {
    if (proc.hasExited()) throw new Error(`${kind} agent ${node.name} exited while starting: ${report(proc)}`);
    if (Date.now() >= deadline) throw new Error(`${kind} agent ${node.name}: no banner within ${timeoutMs} ms: ${report(proc)}`);
    await sleep(50);
  }
  const rpcAddr = await net.forward(node, RPC_PORT);
  return { kind, name: node.name, node, proc, gossipAddr: `${node.ip}:${GOSSIP_PORT}`, rpcAddr, eventsFile };
}

function report(p: NsProc): string {
  const { exitCode: code, signalCode: signal } = p.child;
  return describeProcess(p.name, p.pid, code === null && signal === null ? undefined : { code, signal }, p.output());
}

/** Members as the agent sees them, through its RPC; undefined when it does not answer within `timeoutMs`. */
export async function members(a: Agent, timeoutMs = 2000): Promise<RpcMember[] | undefined> {
  let c: RpcClient | undefined;
  try {
    c = await RpcClient.connect(a.rpcAddr, { timeoutMs });
    return await c.members();
  } catch {
    return undefined;
  } finally {
    c?.close();
  }
}

/** name → status of one agent's view. */
export function statuses(ms: RpcMember[]): Map<string, string> {
  return new Map(ms.map((m) => [m.name, m.status]));
}

/** Ask `a` (through its RPC) to join `addrs`; returns how many it joined. */
export async function join(a: Agent, addrs: string[]): Promise<number> {
  const c = await RpcClient.connect(a.rpcAddr, { timeoutMs: 10_000 });
  try {
    return await c.join(addrs, false);
  } finally {
    c.close();
  }
}

/**
 * Join the agents one at a time, each to every agent before it, then wait until every agent sees
 * every other as alive (bounded). Each join is a push/pull with every earlier agent, so both ends
 * know each other at once; a chain (each joining only the one before) leaves the rest to gossip,
 * whose few retransmissions in a small cluster can miss a node (seen: serf-only 8, s1 knowing 4 of
 * 8 after 30 s), and then only the next periodic push/pull — every 30 s — repairs it, past any
 * bound a test can afford for its set-up.
 */
export async function joinAll(agents: Agent[], timeoutMs = 30_000): Promise<void> {
  for (let i = 1; i < agents.length; i++) {
    const a = agents[i] as Agent;
    const earlier = agents.slice(0, i);
    const n = await join(a, earlier.map((e) => e.gossipAddr));
    if (n !== earlier.length) throw new Error(`${a.name} joined ${n} of ${earlier.map((e) => `${e.name} (${e.gossipAddr})`).join(', ')}`);
  }
  const names = agents.map((a) => a.name);
  await waitViews(agents, (view) => names.every((n) => view.get(n) === 'alive'), timeoutMs, 'every agent to see every member alive');
}

/**
 * Poll every agent's view every `pollMs` until `ok` holds for all of them; throws after
 * `timeoutMs` with each agent's last view.
 */
export async function waitViews(
  agents: Agent[],
  ok: (view: Map<string, string>, a: Agent) => boolean,
  timeoutMs: number,
  what: string,
  pollMs = 150,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = new Map<string, Map<string, string> | undefined>();
  for (let i = 0; i < 100_000; i++) {
    const views = await Promise.all(agents.map(async (a) => [a, await members(a)] as const));
    last = new Map(views.map(([a, ms]) => [a.name, ms === undefined ? undefined : statuses(ms)]));
    if (views.every(([a, ms]) => ms !== undefined && ok(statuses(ms), a))) return;
    if (Date.now() >= deadline) break;
    await sleep(pollMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last views:\n${formatViews(last)}`);
}

/**
 * The last `max` lines of an agent's own log about membership (suspicions, refutations, deaths,
 * member events, stale news): what a failed wait prints, so a rare failure can be read afterwards.
 */
export function membershipLog(a: Agent, max = 25): string {
  const lines = a.proc
    .output()
    .split('\n')
    .filter((l) => /suspect|refut|dead|fail|stale|EventMember|incarnation|conflict/i.test(l));
  return lines.slice(-max).map((l) => `    ${a.name}| ${l}`).join('\n');
}

export function formatViews(views: Map<string, Map<string, string> | undefined>): string {
  return [...views]
    .map(([name, v]) => `  ${name}: ${v === undefined ? '(no answer)' : [...v].map(([n, s]) => `${n}=${s}`).join(' ')}`)
    .join('\n');
}
