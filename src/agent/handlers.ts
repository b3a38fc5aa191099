// Event handlers with serf's script contract (doc 7): `[filter=]script` specs, `/bin/sh -c`,
// SERF_* environment (plus KODAMA_* aliases), member lines or the payload on stdin, the last
// 8 KiB of stdout+stderr, and a query handler's output as its response.
//
// Beyond serf: handlers never block the agent. Design — one serial *lane* per handler spec:
//   - `handle(event)` only appends to the queue of every lane whose filter matches; it never
//     waits, so membership and the RPC see no delay whatever the scripts do.
//   - each lane runs one process at a time, so a handler sees its events in the order they
//     happened (what serf guarantees and what stateful scripts, like an HAProxy rewriter,
//     rely on);
//   - lanes are independent: a hung handler fills only its own queue; other handlers, and
//     later events for them, keep running. (Serf runs every handler for one event before the
//     next event, so a hung script there stalls all of them; we give up only the cross-handler
//     order for one event, which no script can observe anyway.)
//   - each lane's queue is bounded (`queueDepth`); on overflow the *oldest* queued event is
//     dropped (the newest state is the one a script needs), counted and logged (rate-limited);
//   - each run has a timeout (`timeoutMs`); on expiry the whole process group is SIGKILLed
//     (scripts spawn children: `sleep`, pipelines), counted and logged;
//   - a query whose deadline passed while it waited in the queue is skipped: its response
//     could no longer be sent.

import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { LogLevel } from '../serf/log.ts';
import { AgentError } from './errors.ts';
import { monotonicMs } from '../transport/clock.ts';

export type MemberEventName = 'member-join' | 'member-leave' | 'member-failed' | 'member-update' | 'member-reap';
export type HandlerEventName = MemberEventName | 'user' | 'query';

/** What a handler needs of a member (structurally compatible with serf's `Member`). */
export interface HandlerMember {
  name: string;
  addr: { ip: string; port: number };
  tags: Record<string, string>;
}

/** The events the agent hands to handlers (after coalescing). */
export type HandlerEvent =
  | { type: MemberEventName; members: HandlerMember[] }
  | { type: 'user'; name: string; payload: Uint8Array; ltime: number; coalesce?: boolean }
  | {
      type: 'query';
      /** Serf's query id; passed back to `respond`. */
      id: number;
      name: string;
      payload: Uint8Array;
      ltime: number;
      /** Agent clock ms (the clock given to the runner) after which a response is useless. */
      deadlineMs?: number;
    };

/** One filter of a spec: `event` is a HandlerEventName or `*`; `name` narrows user/query. */
export interface EventFilter {
  event: HandlerEventName | '*';
  name: string;
}

export interface HandlerSpec {
  filters: EventFilter[];
  script: string;
}

const VALID_EVENTS: ReadonlySet<string> = new Set([
  'member-join',
  'member-leave',
  'member-failed',
  'member-update',
  'member-reap',
  'user',
  'query',
  '*',
]);

/**
 * Parse a filter list (`member-join,user:deploy`, `*`, empty = `*`). Serf's syntax, also used by
 * the RPC `stream` command. Unknown event names throw (serf refuses to start on them).
 */
export function parseEventFilters(s: string): EventFilter[] {
  const v = s === '' ? '*' : s;
  return v.split(',').map((part) => {
    let event = part;
    let name = '';
    if (part.startsWith('user:')) {
      event = 'user';
      name = part.slice('user:'.length);
    } else if (part.startsWith('query:')) {
      event = 'query';
      name = part.slice('query:'.length);
    }
    if (!VALID_EVENTS.has(event)) {
      throw new AgentError('ERR_AGENT_CONFIG', `Invalid event filter '${part}' (valid: member-join, member-leave, member-failed, member-update, member-reap, user, user:NAME, query, query:NAME, *)`);
    }
    return { event: event as EventFilter['event'], name };
  });
}

/** Parse `[filter=]script`: everything before the first `=` is the filter list. */
export function parseHandlerSpec(spec: string): HandlerSpec {
  const eq = spec.indexOf('=');
  const filter = eq < 0 ? '' : spec.slice(0, eq);
  const script = eq < 0 ? spec : spec.slice(eq + 1);
  if (script.trim() === '') {
    throw new AgentError('ERR_AGENT_CONFIG', `Event handler '${spec}' has no script`);
  }
  return { filters: parseEventFilters(filter), script };
}

export function filterMatches(f: EventFilter, e: HandlerEvent): boolean {
  if (f.event === '*') return true;
  if (f.event !== e.type) return false;
  if (f.name !== '' && (e.type === 'user' || e.type === 'query')) return e.name === f.name;
  return true;
}

function laneKey(spec: HandlerSpec): string {
  return JSON.stringify([spec.script, spec.filters.map((f) => `${f.event}:${f.name}`)]);
}

export function specMatches(spec: HandlerSpec, e: HandlerEvent): boolean {
  return spec.filters.some((f) => filterMatches(f, e));
}

/** Serf's eventClean: TAB and LF inside a field become the two characters `\t` / `\n`. */
function clean(v: string): string {
  return v.replaceAll('\t', '\\t').replaceAll('\n', '\\n');
}

/** Stdin for a member event: `name TAB ip TAB role TAB k=v,k=v LF` per member. */
export function memberLines(members: readonly HandlerMember[]): string {
  let out = '';
  for (const m of members) {
    const tags = Object.entries(m.tags)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out += `${clean(m.name)}\t${m.addr.ip}\t${clean(m.tags['role'] ?? '')}\t${clean(tags)}\n`;
  }
  return out;
}

/** Stdin for a user event or query: the payload, newline-terminated if non-empty. */
export function payloadStdin(payload: Uint8Array): Uint8Array {
  if (payload.length === 0 || payload[payload.length - 1] === 0x0a) return payload;
  const out = new Uint8Array(payload.length + 1);
  out.set(payload);
  out[payload.length] = 0x0a;
  return out;
}

export function handlerStdin(e: HandlerEvent): Uint8Array {
  if (e.type === 'user' || e.type === 'query') return payloadStdin(e.payload);
  return new TextEncoder().encode(memberLines(e.members));
}

/** `SERF_TAG_<KEY>`: key upper-cased, every char outside [A-Z0-9_] → `_` (serf's rule). */
export function tagEnvName(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

export interface HandlerSelf {
  name: string;
  tags: Record<string, string>;
}

/** The variables serf sets for a handler, each also under the KODAMA_ prefix. */
export function handlerEnv(e: HandlerEvent, self: HandlerSelf): Record<string, string> {
  const vars: Record<string, string> = {
    EVENT: e.type,
    SELF_NAME: self.name,
    SELF_ROLE: self.tags['role'] ?? '',
  };
  for (const [k, v] of Object.entries(self.tags)) vars[`TAG_${tagEnvName(k)}`] = v;
  if (e.type === 'user') {
    vars['USER_EVENT'] = e.name;
    vars['USER_LTIME'] = String(e.ltime);
  } else if (e.type === 'query') {
    vars['QUERY_NAME'] = e.name;
    vars['QUERY_LTIME'] = String(e.ltime);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    env[`SERF_${k}`] = v;
    env[`KODAMA_${k}`] = v;
  }
  return env;
}

/** Serf's circbuf size: a handler's output keeps only its last 8 KiB. */
export const HANDLER_OUTPUT_MAX_BYTES = 8192;
export const DEFAULT_HANDLER_QUEUE_DEPTH = 128;
/** Serf has no kill timeout; a hung script must not hold its lane forever. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 60_000;
/** After a kill, how long to wait for the output pipes to close before giving up on them. */
const PIPE_GRACE_MS = 2000;
/** Serf's warnSlow. */
const SLOW_WARN_MS = 1000;
/** Overflow warnings at most this often per lane (a flood must not flood the log). */
const OVERFLOW_LOG_EVERY_MS = 5000;

/** Keeps the last `cap` bytes written, and how many were written in all. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private held = 0;
  total = 0;
  constructor(private readonly cap: number) {}
  write(b: Buffer): void {
    this.total += b.length;
    this.chunks.push(b);
    this.held += b.length;
    while (this.held - (this.chunks[0]?.length ?? 0) >= this.cap && this.chunks.length > 1) {
      this.held -= this.chunks.shift()!.length;
    }
  }
  bytes(): Uint8Array {
    const all = Buffer.concat(this.chunks);
    return all.length > this.cap ? all.subarray(all.length - this.cap) : all;
  }
}

/** The outcome of one handler run (tests and the log see it). */
export interface HandlerRun {
  script: string;
  event: HandlerEventName;
  /** Exit code, or null when killed by a signal. */
  exitCode: number | null;
  timedOut: boolean;
  /** Last 8 KiB of stdout+stderr. */
  output: Uint8Array;
  durationMs: number;
}

export interface HandlerRunnerOptions {
  handlers: readonly (string | HandlerSpec)[];
  self: () => HandlerSelf;
  /** Called with a query handler's output (exit 0, non-empty). Throw/return an error string if it cannot be sent. */
  respond?: (queryId: number, payload: Uint8Array) => string | void;
  /** Queue bound per handler lane. */
  queueDepth?: number;
  /** Per-run kill timeout; 0 = none (serf's behaviour). */
  timeoutMs?: number;
  log?: (level: LogLevel, msg: string) => void;
  /** Base environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Clock for query deadlines and durations (default monotonicMs()). */
  nowMs?: () => number;
  /** Observer for finished runs. */
  onRun?: (run: HandlerRun) => void;
  shell?: string;
}

export interface HandlerCounters {
  /** Events queued onto a lane. */
  queued: number;
  /** Runs started / finished. */
  started: number;
  finished: number;
  /** Non-zero exit or spawn error. */
  failed: number;
  /** Killed by the timeout. */
  timedOut: number;
  /** Oldest queued events dropped because a lane's queue was full. */
  overflowDropped: number;
  /** Queries skipped because their deadline passed while queued. */
  expiredQueries: number;
  /** Queued events of handlers removed by a reload. */
  reloadDropped: number;
  /** Runs abandoned because a process outside the group kept the output pipes open. */
  abandoned: number;
  /** Query responses handed to `respond` / refused by it. */
  responses: number;
  responseErrors: number;
}

interface Lane {
  spec: HandlerSpec;
  /** Identity across reloads: the script and its filters. */
  key: string;
  queue: HandlerEvent[];
  running: { kill: () => void; done: Promise<void> } | null;
  lastOverflowLogMs: number;
  overflowSinceLog: number;
  closed: boolean;
}

/**
 * Runs handler scripts for agent events without ever blocking the caller. See the file
 * comment for the lane design. `reload(specs)` (SIGHUP) keeps the lane (queue and running
 * process) of every handler that is still configured; removed handlers lose their queued
 * events (counted) and their running process finishes.
 */
export class HandlerRunner {
  private lanes: Lane[] = [];
  /** Lanes removed by a reload whose process still runs (close() must still reach them). */
  private readonly retired = new Set<Lane>();
  private readonly counters_: HandlerCounters = {
    queued: 0,
    started: 0,
    finished: 0,
    failed: 0,
    timedOut: 0,
    overflowDropped: 0,
    expiredQueries: 0,
    reloadDropped: 0,
    abandoned: 0,
    responses: 0,
    responseErrors: 0,
  };
  private readonly queueDepth: number;
  private readonly timeoutMs: number;
  private readonly log: (level: LogLevel, msg: string) => void;
  private readonly nowMs: () => number;
  private readonly shell: string;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: HandlerRunnerOptions) {
    this.queueDepth = Math.max(1, opts.queueDepth ?? DEFAULT_HANDLER_QUEUE_DEPTH);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
    this.log = opts.log ?? (() => {});
    this.nowMs = opts.nowMs ?? monotonicMs;
    this.shell = opts.shell ?? '/bin/sh';
    this.lanes = this.makeLanes(opts.handlers);
  }

  private makeLanes(handlers: readonly (string | HandlerSpec)[]): Lane[] {
    return handlers.map((h) => this.makeLane(typeof h === 'string' ? parseHandlerSpec(h) : h));
  }

  private makeLane(spec: HandlerSpec): Lane {
    return {
      spec,
      key: laneKey(spec),
      queue: [],
      running: null,
      lastOverflowLogMs: -Infinity,
      overflowSinceLog: 0,
      closed: false,
    };
  }

  /** The specs in use (after parsing). */
  specs(): HandlerSpec[] {
    return this.lanes.map((l) => l.spec);
  }

  /** Replace the handlers (SIGHUP). Parses first: a bad spec throws and changes nothing. */
  reload(handlers: readonly (string | HandlerSpec)[]): void {
    const specs = handlers.map((h) => (typeof h === 'string' ? parseHandlerSpec(h) : h));
    const old = [...this.lanes];
    const next = specs.map((spec) => {
      const key = laneKey(spec);
      const i = old.findIndex((l) => l.key === key);
      if (i < 0) return this.makeLane(spec);
      return old.splice(i, 1)[0]!;
    });
    for (const lane of old) {
      lane.closed = true;
      this.counters_.reloadDropped += lane.queue.length;
      lane.queue.length = 0;
      if (lane.running) this.retired.add(lane);
    }
    this.lanes = next;
    this.checkIdle();
  }

  /** Queue `e` on every matching lane and return at once. */
  handle(e: HandlerEvent): void {
    if (this.closed) return;
    for (const lane of this.lanes) {
      if (!specMatches(lane.spec, e)) continue;
      if (lane.queue.length >= this.queueDepth) {
        lane.queue.shift();
        this.counters_.overflowDropped++;
        lane.overflowSinceLog++;
        const now = this.nowMs();
        if (now - lane.lastOverflowLogMs >= OVERFLOW_LOG_EVERY_MS) {
          this.log(
            'WARN',
            `agent: handler '${lane.spec.script}' queue full (${this.queueDepth}), dropped ${lane.overflowSinceLog} oldest event(s)`,
          );
          lane.lastOverflowLogMs = now;
          lane.overflowSinceLog = 0;
        }
      }
      lane.queue.push(e);
      this.counters_.queued++;
      this.pump(lane);
    }
  }

  counters(): HandlerCounters {
    return { ...this.counters_ };
  }

  /** Events waiting (not running) per lane, in spec order. */
  queueDepths(): number[] {
    return this.lanes.map((l) => l.queue.length);
  }

  /** Resolves when no lane has anything queued or running (tests, graceful shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drop queued events, kill running handlers, wait (bounded) for them to exit. */
  async close(): Promise<void> {
    this.closed = true;
    const running: Promise<void>[] = [];
    for (const lane of [...this.lanes, ...this.retired]) {
      lane.closed = true;
      lane.queue.length = 0;
      if (lane.running) {
        lane.running.kill();
        running.push(lane.running.done);
      }
    }
    // finish() is forced PIPE_GRACE_MS after a kill, so this wait is bounded.
    await Promise.all(running);
  }

  private isIdle(): boolean {
    return this.retired.size === 0 && this.lanes.every((l) => l.running === null && l.queue.length === 0);
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private pump(lane: Lane): void {
    while (lane.running === null && !lane.closed) {
      const e = lane.queue.shift();
      if (e === undefined) break;
      if (e.type === 'query' && e.deadlineMs !== undefined && this.nowMs() >= e.deadlineMs) {
        this.counters_.expiredQueries++;
        this.log('WARN', `agent: skipped '${lane.spec.script}' for query '${e.name}': deadline passed while queued`);
        continue;
      }
      this.start(lane, e);
    }
    this.checkIdle();
  }

  private start(lane: Lane, e: HandlerEvent): void {
    const script = lane.spec.script;
    const startedMs = this.nowMs();
    const output = new TailBuffer(HANDLER_OUTPUT_MAX_BYTES);
    this.counters_.started++;
    let timedOut = false;
    let settled = false;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));

    // detached: the script leads its own process group, so a kill reaches its children too.
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(this.shell, ['-c', script], {
        env: { ...(this.opts.env ?? process.env), ...handlerEnv(e, this.opts.self()) },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      // Throws synchronously on a NUL byte in the environment, and event and query names
      // come from the network: count it like a failed run, never let it reach the agent.
      this.counters_.finished++;
      this.counters_.failed++;
      this.log('ERR', `agent: Error invoking script '${script}': ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const killGroupOnly = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    // A process that left the group (setsid, a daemon) may still hold our pipes, so 'close'
    // never comes: after a kill, give the pipes a grace period, then stop waiting for them.
    let forceTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      killGroupOnly();
      if (forceTimer === undefined) {
        forceTimer = setTimeout(() => {
          if (settled) return;
          this.counters_.abandoned++;
          this.log('WARN', `agent: Script '${script}' left a process holding its output open; no longer waiting for it`);
          child.stdout.destroy();
          child.stderr.destroy();
          finish(child.exitCode);
        }, PIPE_GRACE_MS);
        forceTimer.unref();
      }
    };
    lane.running = { kill: killGroup, done };

    const slowTimer = setTimeout(() => {
      this.log('WARN', `agent: Script '${script}' slow, execution exceeding ${SLOW_WARN_MS}ms`);
    }, SLOW_WARN_MS);
    slowTimer.unref();
    const killTimer =
      this.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            killGroup();
          }, this.timeoutMs)
        : undefined;
    killTimer?.unref();

    child.stdout.on('data', (b: Buffer) => output.write(b));
    child.stderr.on('data', (b: Buffer) => output.write(b));
    // A script that never reads stdin closes the pipe under us: not an error of ours.
    child.stdin.on('error', () => {});
    child.stdin.end(handlerStdin(e));

    const finish = (exitCode: number | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(slowTimer);
      if (killTimer) clearTimeout(killTimer);
      if (forceTimer) clearTimeout(forceTimer);
      // The shell may exit while a background child still holds the group: reap it.
      if (timedOut) killGroupOnly();
      const durationMs = this.nowMs() - startedMs;
      const out = output.bytes();
      this.counters_.finished++;
      if (output.total > HANDLER_OUTPUT_MAX_BYTES) {
        this.log('WARN', `agent: Script '${script}' generated ${output.total} bytes of output, truncated to ${HANDLER_OUTPUT_MAX_BYTES}`);
      }
      this.log('DEBUG', `agent: Event '${e.type}' script output: ${Buffer.from(out).toString('utf8')}`);
      if (timedOut) {
        this.counters_.timedOut++;
        this.log('ERR', `agent: Script '${script}' killed after ${this.timeoutMs}ms timeout`);
      } else if (spawnError || exitCode !== 0) {
        this.counters_.failed++;
        const why = spawnError ? spawnError.message : `exit status ${exitCode ?? 'signal'}`;
        this.log('ERR', `agent: Error invoking script '${script}': ${why}`);
      } else if (e.type === 'query' && output.total > 0 && this.opts.respond) {
        let err: string | void;
        try {
          err = this.opts.respond(e.id, out);
        } catch (x) {
          err = x instanceof Error ? x.message : String(x);
        }
        if (typeof err === 'string') {
          this.counters_.responseErrors++;
          this.log('WARN', `agent: Failed to respond to query '${e.name}': ${err}`);
        } else {
          this.counters_.responses++;
        }
      }
      this.opts.onRun?.({ script, event: e.type, exitCode: timedOut ? null : exitCode, timedOut, output: out, durationMs });
      lane.running = null;
      resolveDone();
      if (lane.closed) {
        this.retired.delete(lane);
        this.checkIdle();
      } else {
        this.pump(lane);
      }
    };
    child.on('error', (err) => finish(null, err));
    // 'close' (not 'exit'): all output has been read by then.
    child.on('close', (code) => finish(code));
  }
}
