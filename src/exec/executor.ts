// The node side of `kodama exec` / `kodama rolling`: answers every `kodama-exec` query — with a
// refusal that says what to do unless exec is enabled here, the cluster is encrypted, the token
// matches and the command is allowed. Accepted commands run as `sh -c` in their own process group
// (so a timeout kills what they started too); their output is buffered for callers to fetch by
// offset (poll), which makes every answer re-askable: a lost UDP answer only delays. Finished
// runs are kept KEEP_FINISHED_MS, then forgotten. Every run and refusal is one log line here.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { tokenMatches } from '../rpc/commands.ts';
import type { LogLevel } from '../agent/log.ts';
import type { AgentQuery } from '../agent/host.ts';
import { commandAllowed } from './config.ts';
import { decodeRequest, encodeAnswer, RESPONSE_LIMIT_BYTES, RESPONSE_OVERHEAD_BYTES, runHeader } from './protocol.ts';
import type { ExecAnswer, ExecRequest, ExecRunStatus } from './protocol.ts';
import { EXEC_QUERY } from './types.ts';
import type { ExecRefusal, ExecSpec } from './types.ts';

export interface Executor {
  counters(): Record<string, number>;
  stop(): Promise<void>;
}

/** What the executor needs of an agent (the Agent class has it all). */
export interface ExecHost {
  readonly nodeName: string;
  readonly logger: { log(level: LogLevel, msg: string): void };
  on(type: 'query', fn: (q: AgentQuery) => void): () => void;
  isEncrypted?(): boolean;
  readonly encrypted?: boolean;
  setServicesDraining?(draining: boolean): void;
  /** Where the `exec` stats section goes (the agent's `stats`). */
  addStats?(fn: () => Record<string, Record<string, string>>): () => void;
}

export interface ExecutorOptions {
  /** Serf's query_response_size_limit of this agent (default 1024). */
  responseLimitBytes?: number;
  /** How long a finished run stays fetchable (default 5 min). */
  keepFinishedMs?: number;
  /** After SIGTERM at the timeout, SIGKILL this much later (default 2 s). */
  killGraceMs?: number;
}

export const KEEP_FINISHED_MS = 5 * 60_000;
/** After the process exited, wait this long for its output pipes (a background child may hold them). */
const PIPE_GRACE_MS = 1000;

interface Run {
  id: string;
  cmd: string;
  origin: string;
  startedAt: number;
  endedAt: number | undefined;
  child: ChildProcess | undefined;
  chunks: Buffer[];
  /** chunks joined, rebuilt lazily after new output arrived. */
  joined: Buffer;
  total: number;
  cut: number;
  exitCode: number | null;
  signal: string | undefined;
  timedOut: boolean;
  timers: NodeJS.Timeout[];
  finished: Promise<void>;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

export function startExecutor(agent: ExecHost, spec: ExecSpec, opts: ExecutorOptions = {}): Executor {
  const node = agent.nodeName;
  const limit = opts.responseLimitBytes ?? RESPONSE_LIMIT_BYTES;
  const keepMs = opts.keepFinishedMs ?? KEEP_FINISHED_MS;
  const graceMs = opts.killGraceMs ?? 2000;
  const runs = new Map<string, Run>();
  const counts: Record<string, number> = { requests: 0, runs_started: 0, runs_finished: 0, runs_timed_out: 0, polls: 0, refused: 0, drains: 0, answer_errors: 0 };
  let stopped = false;

  const encrypted = (): boolean => agent.isEncrypted?.() ?? agent.encrypted ?? false;
  const log = (level: LogLevel, msg: string): void => agent.logger.log(level, `exec: ${msg}`);

  const refuse = (code: ExecRefusal, message: string): ExecAnswer => {
    counts['refused'] = (counts['refused'] ?? 0) + 1;
    counts[code] = (counts[code] ?? 0) + 1;
    return { kind: 'refused', code, message };
  };

  function statusOf(run: Run, off: number, maxBytes = Infinity): ExecRunStatus {
    const done = run.endedAt !== undefined;
    const base = {
      id: run.id,
      done,
      off: Math.min(off, run.total),
      total: run.total,
      cut: run.cut,
      exitCode: run.exitCode,
      ...(run.signal !== undefined ? { signal: run.signal } : {}),
      ...(run.timedOut ? { timedOut: true } : {}),
      durationMs: (run.endedAt ?? Date.now()) - run.startedAt,
    };
    const room = limit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(node, 'utf8') - runHeader(base).length;
    if (run.joined.length !== run.total) run.joined = Buffer.concat(run.chunks, run.total);
    const chunk = run.joined.subarray(base.off, base.off + Math.max(0, Math.min(room, maxBytes)));
    // A run still going reports done=false even if everything is fetched; finished with more to
    // fetch is reported as done too (the caller keeps polling until off reaches total).
    return { ...base, chunk };
  }

  function startRun(id: string, cmd: string, origin: string, timeoutMs: number): Run {
    let settle!: () => void;
    const run: Run = {
      id, cmd, origin, startedAt: Date.now(), endedAt: undefined, child: undefined, chunks: [], joined: Buffer.alloc(0),
      total: 0, cut: 0, exitCode: null, signal: undefined, timedOut: false, timers: [],
      finished: new Promise<void>((r) => (settle = r)),
    };
    runs.set(id, run);
    counts['runs_started'] = (counts['runs_started'] ?? 0) + 1;
    const finish = (code: number | null, signal: string | null): void => {
      if (run.endedAt !== undefined) return;
      run.endedAt = Date.now();
      run.exitCode = code;
      run.signal = signal ?? undefined;
      run.child = undefined;
      for (const t of run.timers) clearTimeout(t);
      counts['runs_finished'] = (counts['runs_finished'] ?? 0) + 1;
      const outcome = code !== null ? `exit ${code}` : `killed by ${signal ?? 'a signal'}`;
      log(code === 0 ? 'INFO' : 'WARN',
        `run by ${origin} \`${cmd}\` → ${outcome}${run.timedOut ? ' (timed out)' : ''} in ${seconds(run.endedAt - run.startedAt)}` +
          `${run.cut > 0 ? ` (${run.cut} bytes of output beyond max_output dropped)` : ''}`);
      const forget = setTimeout(() => runs.delete(id), keepMs);
      forget.unref();
      settle();
    };
    let child: ChildProcess;
    try {
      child = spawn('sh', ['-c', cmd], {
        detached: true, // own process group: the timeout kills everything it started
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, KODAMA_NODE: node, KODAMA_EXEC_RUN: id },
      });
    } catch (e) {
      run.chunks.push(Buffer.from(`kodama: could not start sh: ${(e as Error).message}\n`));
      run.total = run.chunks[0]!.length;
      finish(127, null);
      return run;
    }
    run.child = child;
    const onData = (b: Buffer): void => {
      const room = spec.maxOutputBytes - run.total;
      if (room <= 0) {
        run.cut += b.length;
        return;
      }
      const keep = b.length <= room ? b : b.subarray(0, room);
      run.chunks.push(keep);
      run.total += keep.length;
      run.cut += b.length - keep.length;
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('error', (e) => {
      onData(Buffer.from(`kodama: ${e.message}\n`));
      finish(127, null);
    });
    let exited: { code: number | null; signal: string | null } | undefined;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      const t = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, PIPE_GRACE_MS);
      t.unref();
      run.timers.push(t);
    });
    child.on('close', (code, signal) => finish(exited?.code ?? code, exited?.signal ?? signal));
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const timeout = setTimeout(() => {
      run.timedOut = true;
      counts['runs_timed_out'] = (counts['runs_timed_out'] ?? 0) + 1;
      onData(Buffer.from(`\nkodama: timed out after ${seconds(timeoutMs)}: killing the process group\n`));
      killGroup('SIGTERM');
      const hard = setTimeout(() => killGroup('SIGKILL'), graceMs);
      hard.unref();
      run.timers.push(hard);
    }, timeoutMs);
    timeout.unref();
    run.timers.push(timeout);
    return run;
  }

  function answer(req: ExecRequest | string, origin: string): ExecAnswer {
    if (!spec.enabled) {
      const a = refuse('ERR_EXEC_DISABLED', `exec is not enabled on ${node}: start its agent with -enable-exec and an exec token (-exec-token, KODAMA_EXEC_TOKEN or "exec": {"enabled": true, "token": "…"} in its config)`);
      log('WARN', `refused request by ${origin}: exec is not enabled on this node`);
      return a;
    }
    if (!encrypted()) {
      log('WARN', `refused request by ${origin}: the cluster is not encrypted`);
      return refuse('ERR_EXEC_NOT_ENCRYPTED', `${node} refuses exec on an unencrypted cluster (the token would travel in clear text): give every agent a gossip key with -encrypt <key> (make one with kodama keygen)`);
    }
    if (typeof req === 'string') {
      log('WARN', `refused a bad request by ${origin}: ${req}`);
      return refuse('ERR_EXEC_BAD_REQUEST', `${node} could not read the request: ${req} (are kodama versions mixed?)`);
    }
    if (req.token === '' || !tokenMatches(req.token, spec.token)) {
      const what = req.op === 'run' ? ` \`${req.cmd}\`` : ` (${req.op})`;
      log('WARN', `refused request by ${origin}${what}: ${req.token === '' ? 'no token' : 'wrong token'}`);
      return refuse('ERR_EXEC_TOKEN', req.token === ''
        ? `${node} needs the exec token: pass --token <token> or set KODAMA_EXEC_TOKEN`
        : `wrong exec token for ${node}: pass the token of its exec config with --token or KODAMA_EXEC_TOKEN`);
    }
    switch (req.op) {
      case 'run': {
        const known = runs.get(req.id);
        if (known !== undefined) {
          if (known.cmd !== req.cmd) return refuse('ERR_EXEC_BAD_REQUEST', `${node} already ran another command as run ${req.id}`);
          return { kind: 'run', status: statusOf(known, 0) }; // a re-asked start: never run twice
        }
        if (!commandAllowed(spec.allow, req.cmd)) {
          log('WARN', `refused run by ${origin} \`${req.cmd}\`: not in exec.allow`);
          return refuse('ERR_EXEC_NOT_ALLOWED', `\`${req.cmd}\` is not in ${node}'s exec.allow list: add it (or a glob with *) to "exec": {"allow": […]} in its config`);
        }
        if (stopped) return refuse('ERR_EXEC_DISABLED', `${node} is shutting down`);
        const timeoutMs = Math.min(req.timeoutMs ?? spec.timeoutMs, spec.timeoutMs);
        log('INFO', `run by ${origin} \`${req.cmd}\` started (timeout ${seconds(timeoutMs)})`);
        return { kind: 'run', status: statusOf(startRun(req.id, req.cmd, origin, timeoutMs), 0) };
      }
      case 'poll': {
        counts['polls'] = (counts['polls'] ?? 0) + 1;
        const run = runs.get(req.id);
        if (run === undefined) {
          return refuse('ERR_EXEC_UNKNOWN_RUN', `${node} knows no run ${req.id} (its agent restarted, or the run finished more than ${Math.round(keepMs / 60_000)} min ago)`);
        }
        return { kind: 'run', status: statusOf(run, req.off[node] ?? 0, req.max) };
      }
      case 'drain':
      case 'undrain': {
        counts['drains'] = (counts['drains'] ?? 0) + 1;
        if (agent.setServicesDraining === undefined) return refuse('ERR_EXEC_BAD_REQUEST', `${node} cannot drain its services (agent too old)`);
        agent.setServicesDraining(req.op === 'drain');
        log('INFO', `${req.op} by ${origin}: services ${req.op === 'drain' ? 'draining (tags carry ,drain)' : 'back in rotation'}`);
        return { kind: 'drain', draining: req.op === 'drain' };
      }
    }
  }

  const off = agent.on('query', (q) => {
    if (q.name !== EXEC_QUERY) return;
    counts['requests'] = (counts['requests'] ?? 0) + 1;
    const a = answer(decodeRequest(q.payload), q.sourceNode);
    try {
      q.respond(encodeAnswer(a));
    } catch (e) {
      // Too late (the caller re-asks) or already answered by someone else.
      counts['answer_errors'] = (counts['answer_errors'] ?? 0) + 1;
      log('DEBUG', `could not answer: ${(e as Error).message}`);
    }
  });

  const counters = (): Record<string, number> => ({ ...counts, running: [...runs.values()].filter((r) => r.endedAt === undefined).length, kept: runs.size });
  const offStats = agent.addStats?.(() => ({ exec: Object.fromEntries(Object.entries(counters()).map(([k, v]) => [k, String(v)])) }));
  return {
    counters,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      off();
      offStats?.();
      const live = [...runs.values()].filter((r) => r.endedAt === undefined);
      for (const r of live) {
        if (r.child?.pid !== undefined) {
          try {
            process.kill(-r.child.pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
      await Promise.race([Promise.all(live.map((r) => r.finished)), new Promise((r) => setTimeout(r, 3000).unref())]);
      for (const r of runs.values()) for (const t of r.timers) clearTimeout(t);
      runs.clear();
    },
  };
}
