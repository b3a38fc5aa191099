// The caller side of `kodama exec` / `kodama rolling`, over the local agent's RPC: every request
// is a `kodama-exec` query filtered to the nodes it is for. Query answers travel as UDP and may
// be lost, so nothing here waits for one answer: a start is re-sent (same run id: a node never
// runs it twice) to the nodes still silent, and polls ask each running node for its output from
// the offset we hold, every POLL_INTERVAL_MS (at once while a node has more to send). A node is
// lost when it is failed or has not answered for lostAfterMs.

import { randomBytes } from 'node:crypto';
import type { RpcClient } from '../rpc/index.ts';
import { runQuery } from '../cli/query-run.ts';
import { decodeAnswer, encodeRequest, QUERY_LIMIT_BYTES, QUERY_OVERHEAD_BYTES } from './protocol.ts';
import type { ExecAnswer, ExecRequest, ExecRunStatus } from './protocol.ts';
import { EXEC_QUERY } from './types.ts';
import type { ExecNodeResult, ExecRefusal } from './types.ts';
import { ExecError } from './errors.ts';

export const POLL_INTERVAL_MS = 250;
export const RESEND_AFTER_MS = 500;
/** One query round waits this long for its answers at most. */
const ROUND_TIMEOUT_MS = 1500;
/** Room for the asking agent's node name in the query message. */
const SOURCE_NAME_ROOM = 64;

export interface TargetFilter {
  /** Tag role=… */
  role?: string;
  /** Node names (any of). */
  nodes?: string[];
  /** Any other tag that must match exactly. */
  tags?: Record<string, string>;
}

export interface Targets {
  /** Alive (or leaving) members to ask, sorted. */
  alive: string[];
  /** Failed members that match: reported lost without asking. */
  failed: string[];
}

/** Members matching the filter. Throws ExecError ERR_EXEC_NO_NODES when none would run. */
export async function resolveTargets(client: RpcClient, f: TargetFilter): Promise<Targets> {
  const members = await client.members();
  const names = new Set(members.map((m) => m.name));
  for (const n of f.nodes ?? []) {
    if (!names.has(n)) throw new ExecError('ERR_EXEC_NO_NODES', `no member is named ${n} (see kodama members)`);
  }
  const want = { ...(f.tags ?? {}), ...(f.role !== undefined ? { role: f.role } : {}) };
  const match = members.filter(
    (m) =>
      (f.nodes === undefined || f.nodes.length === 0 || f.nodes.includes(m.name)) &&
      Object.entries(want).every(([k, v]) => m.tags[k] === v),
  );
  const alive = match.filter((m) => m.status === 'alive' || m.status === 'leaving').map((m) => m.name).sort();
  const failed = match.filter((m) => m.status === 'failed').map((m) => m.name).sort();
  if (alive.length === 0) {
    const what = [f.role !== undefined ? `role=${f.role}` : '', ...(f.nodes ?? [])].filter((s) => s !== '').join(', ');
    throw new ExecError('ERR_EXEC_NO_NODES', `no alive member matches ${what === '' ? 'the filters' : what} (see kodama members${f.role !== undefined ? ` -role ${f.role}` : ''})`);
  }
  return { alive, failed };
}

function querySize(payload: Uint8Array, nodes: readonly string[]): number {
  let n = payload.length + QUERY_OVERHEAD_BYTES + SOURCE_NAME_ROOM + EXEC_QUERY.length;
  for (const name of nodes) n += Buffer.byteLength(name, 'utf8') + 3;
  return n;
}

/** Split `nodes` into groups whose query (built by `payloadFor`) fits Serf's query limit. */
export function batchesFor(nodes: readonly string[], payloadFor: (group: string[]) => Uint8Array): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (const n of nodes) {
    const next = [...cur, n];
    if (cur.length > 0 && querySize(payloadFor(next), next) > QUERY_LIMIT_BYTES) {
      out.push(cur);
      cur = [n];
    } else cur = next;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * One query `name` to `nodes`; returns when each has answered, at timeoutMs, or when interrupted.
 * Raw answers go to onAnswer as they come (one per node).
 */
export async function askRaw(
  client: RpcClient,
  name: string,
  payload: Uint8Array,
  nodes: readonly string[],
  timeoutMs: number,
  onAnswer: (node: string, payload: Uint8Array) => void,
  interrupt?: AbortSignal,
): Promise<'done' | 'interrupted'> {
  const enough = new AbortController();
  const pending = new Set(nodes);
  const onUser = (): void => enough.abort();
  interrupt?.addEventListener('abort', onUser, { once: true });
  let over = false;
  try {
    await runQuery(
      client,
      { name, payload, filterNodes: [...nodes], filterTags: {}, requestAck: false, relayFactor: 0, timeoutMs },
      {
        result: (r) => {
          if (over || r.type !== 'response' || !pending.delete(r.from)) return;
          onAnswer(r.from, r.payload ?? new Uint8Array(0));
          // Abort on a later turn (see collectAnswers in src/cli/checks.ts).
          if (pending.size === 0) setTimeout(() => enough.abort(), 0);
        },
      },
      enough.signal,
    );
  } finally {
    over = true;
    interrupt?.removeEventListener('abort', onUser);
  }
  return interrupt?.aborted === true ? 'interrupted' : 'done';
}

/** askRaw for `kodama-exec`: answers decoded (undefined = not an exec answer). */
export function askOnce(
  client: RpcClient,
  payload: Uint8Array,
  nodes: readonly string[],
  timeoutMs: number,
  onAnswer: (node: string, a: ExecAnswer | undefined) => void,
  interrupt?: AbortSignal,
): Promise<'done' | 'interrupted'> {
  return askRaw(client, EXEC_QUERY, payload, nodes, timeoutMs, (node, p) => onAnswer(node, decodeAnswer(p)), interrupt);
}

/**
 * Send `req` to every node, re-asking the silent ones every RESEND_AFTER_MS until each answered
 * or `timeoutMs` passed. Returns the answers by node (silent nodes are missing).
 */
export async function askAll(
  client: RpcClient,
  nodes: readonly string[],
  payloadFor: (group: string[]) => Uint8Array,
  timeoutMs: number,
  interrupt?: AbortSignal,
  onAnswer?: (node: string, a: ExecAnswer) => void,
): Promise<Map<string, ExecAnswer>> {
  const answers = new Map<string, ExecAnswer>();
  const deadline = Date.now() + timeoutMs;
  while (interrupt?.aborted !== true) {
    const missing = nodes.filter((n) => !answers.has(n));
    const left = deadline - Date.now();
    if (missing.length === 0 || left <= 0) break;
    const roundMs = Math.max(200, Math.min(RESEND_AFTER_MS, left));
    await Promise.all(
      batchesFor(missing, payloadFor).map((group) =>
        askOnce(client, payloadFor(group), group, roundMs, (node, a) => {
          if (a === undefined || answers.has(node)) return;
          answers.set(node, a);
          onAnswer?.(node, a);
        }, interrupt),
      ),
    );
  }
  return answers;
}

export interface ExecRunOptions {
  token: string;
  command: string;
  /** Asked of each node (it caps it at its own exec timeout). */
  timeoutMs?: number;
  /** How long a node may stay silent before it is lost (default 10 s). */
  lostAfterMs?: number;
  /** How long to wait for the nodes to accept the start (default 8 s). */
  startTimeoutMs?: number;
  pollIntervalMs?: number;
  runId?: string;
  interrupt?: AbortSignal;
  /** Output bytes of a node as they arrive, in order. */
  onOutput?: (node: string, bytes: Uint8Array) => void;
  /** A node's outcome as soon as it is known. */
  onResult?: (r: ExecNodeResult) => void;
  /** Test hook and diagnostics: called with each poll query's node group. */
  onPoll?: (nodes: string[]) => void;
}

interface NodeState {
  node: string;
  phase: 'starting' | 'running' | 'final';
  off: number;
  out: Buffer[];
  lastHeard: number;
  /** Output bytes the node holds (from its last answer). */
  total: number;
  /** Slices that arrived ahead of `off` (pipelined polls), by offset. */
  ahead: Map<number, Buffer>;
  /** The node's final status, once an answer said done (finalized when off reaches its total). */
  done: ExecRunStatus | undefined;
  result: ExecNodeResult | undefined;
}

/** Output bytes asked per slice while a node's output piles up (fits any node name ≤ 200 bytes). */
export const SLICE_BYTES = 600;
/** Slices asked at once per node (one query each) while its output piles up. */
export const MAX_SLICES = 4;

export function newRunId(): string {
  return `x-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Rejects the command up front when it cannot fit in a query (with room for a node name). */
export function checkCommandFits(token: string, command: string): void {
  const payload = encodeRequest({ op: 'run', token, id: newRunId(), cmd: command, timeoutMs: 1 << 30 });
  if (querySize(payload, ['x'.repeat(64)]) > QUERY_LIMIT_BYTES) {
    throw new ExecError('ERR_EXEC_TOO_LONG', `the command is too long to send (${Buffer.byteLength(command)} bytes; a query carries at most ${QUERY_LIMIT_BYTES} bytes with the token): put it in a script on the nodes and run that`);
  }
}

/**
 * Run a command on `targets` (from resolveTargets) and follow it to the end: returns one result
 * per node (alive and failed targets), in node order.
 */
export async function runOnNodes(client: RpcClient, targets: Targets, o: ExecRunOptions): Promise<ExecNodeResult[]> {
  checkCommandFits(o.token, o.command);
  const id = o.runId ?? newRunId();
  const lostAfterMs = o.lostAfterMs ?? 10_000;
  const pollMs = o.pollIntervalMs ?? POLL_INTERVAL_MS;
  const started = Date.now();
  const states = new Map<string, NodeState>();
  for (const n of targets.alive) states.set(n, { node: n, phase: 'starting', off: 0, out: [], lastHeard: started, total: 0, ahead: new Map(), done: undefined, result: undefined });

  const finalize = (s: NodeState, r: Omit<ExecNodeResult, 'node' | 'output'>): void => {
    if (s.phase === 'final') return;
    s.phase = 'final';
    s.result = { node: s.node, output: Buffer.concat(s.out).toString('utf8'), ...r };
    o.onResult?.(s.result);
  };
  const lost = (s: NodeState, why?: { code: ExecRefusal; message: string }): void =>
    finalize(s, { exitCode: null, lost: true, durationMs: Date.now() - started, ...(why !== undefined ? { refused: why } : {}) });

  const apply = (node: string, a: ExecAnswer): void => {
    const s = states.get(node);
    if (s === undefined || s.phase === 'final') return;
    s.lastHeard = Date.now();
    if (a.kind === 'refused') {
      if (a.code === 'ERR_EXEC_UNKNOWN_RUN' && s.phase === 'running') lost(s, { code: a.code, message: a.message });
      else finalize(s, { exitCode: null, refused: { code: a.code, message: a.message }, durationMs: Date.now() - started });
      return;
    }
    if (a.kind !== 'run') return;
    s.phase = 'running';
    const st = a.status;
    s.total = Math.max(s.total, st.total);
    if (st.done) s.done = st;
    // Answers may come out of order (pipelined slices, late answers to older polls): keep what
    // lies ahead, take what continues what we hold, ignore what we have.
    if (st.chunk.length > 0 && st.off > s.off) {
      if (s.ahead.size < MAX_SLICES * 4) s.ahead.set(st.off, Buffer.from(st.chunk));
    } else if (st.chunk.length > 0) s.ahead.set(st.off, Buffer.from(st.chunk));
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const [at, buf] of s.ahead) {
        if (at > s.off) continue;
        s.ahead.delete(at);
        if (at + buf.length <= s.off) continue;
        const fresh = buf.subarray(s.off - at);
        s.out.push(fresh);
        s.off += fresh.length;
        o.onOutput?.(node, fresh);
        progressed = true;
      }
    }
    const end = s.done;
    if (end !== undefined && s.off >= end.total) {
      finalize(s, {
        exitCode: end.exitCode,
        ...(end.signal !== undefined ? { signal: end.signal } : {}),
        durationMs: end.durationMs,
      });
      if (end.cut > 0 && s.result !== undefined) s.result.output += `\n[kodama: ${end.cut} bytes beyond the node's max_output were dropped]\n`;
    }
  };

  for (const n of targets.failed) {
    const r: ExecNodeResult = { node: n, exitCode: null, lost: true, output: '', durationMs: 0 };
    o.onResult?.(r);
    states.set(n, { node: n, phase: 'final', off: 0, out: [], lastHeard: started, total: 0, ahead: new Map(), done: undefined, result: r });
  }

  // Start: re-sent to the silent ones (same id: never run twice).
  const runPayload = (): Uint8Array =>
    encodeRequest({ op: 'run', token: o.token, id, cmd: o.command, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
  await askAll(client, targets.alive, runPayload, o.startTimeoutMs ?? 8000, o.interrupt, apply);
  for (const s of states.values()) if (s.phase === 'starting') lost(s);

  let lastMembersCheck = Date.now();
  for (let round = 0; o.interrupt?.aborted !== true; round++) {
    const running = [...states.values()].filter((s) => s.phase === 'running');
    if (running.length === 0) break;
    const now = Date.now();
    for (const s of running) if (now - s.lastHeard > lostAfterMs) lost(s);
    if (now - lastMembersCheck >= 1000) {
      lastMembersCheck = now;
      const failed = new Set((await client.members()).filter((m) => m.status === 'failed' || m.status === 'left').map((m) => m.name));
      for (const s of running) if (failed.has(s.node)) lost(s);
    }
    const ask = running.filter((s) => s.phase === 'running');
    if (ask.length === 0) continue;
    // Slice 0 asks every running node from what we hold; while a node's output piles up, slices
    // 1.. ask the following SLICE_BYTES ranges at the same time (one query each).
    const slices = (st: NodeState): number => Math.min(MAX_SLICES, Math.max(1, Math.ceil((st.total - st.off) / SLICE_BYTES)));
    const rounds: Promise<unknown>[] = [];
    for (let k = 0; k < MAX_SLICES; k++) {
      const who = ask.filter((st) => slices(st) > k).map((st) => st.node);
      if (who.length === 0) break;
      const pollPayload = (group: string[]): Uint8Array =>
        encodeRequest({ op: 'poll', token: o.token, id, max: SLICE_BYTES, off: Object.fromEntries(group.map((n) => [n, (states.get(n)?.off ?? 0) + k * SLICE_BYTES])) });
      for (const group of batchesFor(who, pollPayload)) {
        o.onPoll?.(group);
        rounds.push(askOnce(client, pollPayload(group), group, ROUND_TIMEOUT_MS, (node, a) => {
          if (a !== undefined) apply(node, a);
        }, o.interrupt));
      }
    }
    const roundStart = Date.now();
    await Promise.all(rounds);
    // More output waiting somewhere: ask again at once; otherwise at the poll interval.
    const hurry = [...states.values()].some((s) => s.phase === 'running' && s.off < s.total);
    const wait = hurry ? 0 : pollMs - (Date.now() - roundStart);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (o.interrupt?.aborted === true) {
    for (const s of states.values()) if (s.phase !== 'final') lost(s);
  }
  return [...states.values()].map((s) => s.result!).sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

/** drain / undrain the services of `nodes`; returns the answers by node (silent nodes missing). */
export async function setDraining(
  client: RpcClient,
  nodes: readonly string[],
  token: string,
  draining: boolean,
  timeoutMs = 5000,
  interrupt?: AbortSignal,
): Promise<Map<string, ExecAnswer>> {
  const req: ExecRequest = { op: draining ? 'drain' : 'undrain', token };
  return askAll(client, nodes, () => encodeRequest(req), timeoutMs, interrupt);
}

