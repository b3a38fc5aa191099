// Alert handlers: where the leader monitor's AlertEvents go.
//
//   script   `sh -c <command>` with the AlertEvent JSON on stdin and KODAMA_ALERT_* in the
//            environment; own process group, killed whole at the timeout (a paging script that
//            forked a curl must not outlive it); exit status ≠ 0 = failure.
//   webhook  HTTP POST of the JSON; timeout; non-2xx = failure.
//   log      one JSON line appended to a file, or to the agent log when no path is given.
//
// Each handler has one serial lane: its alerts run one at a time in the order decided (a resolve
// never overtakes its create), and a hung handler delays only its own lane. Lanes are bounded;
// when one is full the oldest waiting alert is dropped and counted.

import { spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AlertEvent, HandlerSpec } from './types.ts';

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERR';

export interface AlertHandlersOptions {
  log?: (level: Level, msg: string) => void;
  /** Alerts waiting per handler before the oldest is dropped (default 128). */
  queueDepth?: number;
}

export const DEFAULT_QUEUE_DEPTH = 128;
/** A log handler has no timeout in the spec; a stuck disk still must not hold its lane forever. */
const LOG_TIMEOUT_MS = 10_000;
/** Script output kept for the failure log line. */
const MAX_OUTPUT_BYTES = 4096;
/** After the timeout kill, how long to wait for the exit before giving up on the process. */
const KILL_GRACE_MS = 2_000;

type Outcome = 'ok' | 'failed' | 'timeout';

interface Lane {
  spec: HandlerSpec;
  queue: AlertEvent[];
  running: boolean;
  counters: { runs: number; failures: number; timeouts: number; dropped: number };
}

export class AlertHandlers {
  private readonly lanes = new Map<string, Lane>();
  private readonly log: (level: Level, msg: string) => void;
  private readonly depth: number;
  private readonly idleWaiters: (() => void)[] = [];
  private closed = false;
  /** Running scripts' process groups, killed on close(). */
  private readonly groups = new Set<number>();
  private unknown = 0;

  constructor(handlers: readonly HandlerSpec[], opts: AlertHandlersOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.depth = Math.max(1, opts.queueDepth ?? DEFAULT_QUEUE_DEPTH);
    for (const spec of handlers) {
      this.lanes.set(spec.name, { spec, queue: [], running: false, counters: { runs: 0, failures: 0, timeouts: 0, dropped: 0 } });
    }
  }

  /**
   * New handler specs (a reload): a handler whose spec changed runs its next alerts with the new
   * one (its queue and counters stay); a removed one drops what it had queued; an added one gets
   * a lane. Returns the names by fate.
   */
  setHandlers(handlers: readonly HandlerSpec[]): { added: string[]; changed: string[]; removed: string[] } {
    const out = { added: [] as string[], changed: [] as string[], removed: [] as string[] };
    const next = new Map(handlers.map((h) => [h.name, h]));
    for (const [name, lane] of this.lanes) {
      if (next.has(name)) continue;
      lane.counters.dropped += lane.queue.length;
      lane.queue.length = 0;
      this.lanes.delete(name);
      out.removed.push(name);
    }
    for (const spec of handlers) {
      const lane = this.lanes.get(spec.name);
      if (lane === undefined) {
        this.lanes.set(spec.name, { spec, queue: [], running: false, counters: { runs: 0, failures: 0, timeouts: 0, dropped: 0 } });
        out.added.push(spec.name);
      } else if (JSON.stringify(lane.spec) !== JSON.stringify(spec)) {
        lane.spec = spec;
        out.changed.push(spec.name);
      }
    }
    return out;
  }

  /** Queue an alert on a handler's lane; false when the handler is unknown or we are closed. */
  dispatch(handler: string, event: AlertEvent): boolean {
    const lane = this.lanes.get(handler);
    if (lane === undefined || this.closed) {
      if (lane === undefined) this.unknown++;
      else lane.counters.dropped++;
      return false;
    }
    lane.queue.push(event);
    if (lane.queue.length > this.depth) {
      lane.queue.shift();
      lane.counters.dropped++;
      this.log('WARN', `monitor: handler ${handler} is behind, dropped its oldest waiting alert`);
    }
    this.pump(lane);
    return true;
  }

  /** Totals and per handler (`<name>.runs` …). */
  counters(): Record<string, number> {
    const out: Record<string, number> = { runs: 0, failures: 0, timeouts: 0, dropped: 0, unknown_handler: this.unknown };
    for (const [name, lane] of this.lanes) {
      for (const [k, v] of Object.entries(lane.counters)) {
        out[k] = (out[k] ?? 0) + v;
        out[`${name}.${k}`] = v;
      }
      out[`${name}.queued`] = lane.queue.length;
    }
    return out;
  }

  /** Resolves when every lane is empty and nothing runs. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop taking alerts; waiting ones are dropped; running scripts are killed. */
  async close(): Promise<void> {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      lane.counters.dropped += lane.queue.length;
      lane.queue.length = 0;
    }
    for (const pgid of this.groups) killGroup(pgid);
    await this.idle();
  }

  private isIdle(): boolean {
    for (const lane of this.lanes.values()) if (lane.running || lane.queue.length > 0) return false;
    return true;
  }

  private pump(lane: Lane): void {
    if (lane.running) return;
    const event = lane.queue.shift();
    if (event === undefined) {
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    lane.running = true;
    lane.counters.runs++;
    void this.run(lane.spec, event)
      .catch((e: unknown) => ({ outcome: 'failed' as Outcome, detail: (e as Error).message }))
      .then(({ outcome, detail }) => {
        if (outcome === 'failed') lane.counters.failures++;
        if (outcome === 'timeout') lane.counters.timeouts++;
        if (outcome !== 'ok') {
          this.log('WARN', `monitor: handler ${lane.spec.name} ${outcome === 'timeout' ? 'timed out' : 'failed'} on ${event.action} ${event.entity.name}/${event.check.name}: ${detail}`);
        }
        lane.running = false;
        this.pump(lane);
      });
  }

  private run(spec: HandlerSpec, event: AlertEvent): Promise<{ outcome: Outcome; detail: string }> {
    const json = JSON.stringify(event);
    switch (spec.type) {
      case 'script':
        return this.runScript(spec.command, spec.timeoutMs, event, json);
      case 'webhook':
        return runWebhook(spec.url, spec.timeoutMs, json);
      case 'log':
        if (spec.path === undefined || spec.path === '') {
          this.log('INFO', `monitor: alert ${json}`);
          return Promise.resolve({ outcome: 'ok', detail: '' });
        }
        return withTimeout(
          appendFile(spec.path, json + '\n').then(() => ({ outcome: 'ok' as Outcome, detail: '' })),
          LOG_TIMEOUT_MS,
        );
    }
  }

  private runScript(command: string, timeoutMs: number, event: AlertEvent, json: string): Promise<{ outcome: Outcome; detail: string }> {
    return new Promise((resolve) => {
      let done = false;
      let output = '';
      let timedOut = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const child = spawn('sh', ['-c', command], {
        detached: true, // own process group: the timeout kill reaches what it forked
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          KODAMA_ALERT_ACTION: event.action,
          KODAMA_ALERT_NODE: event.entity.name,
          KODAMA_ALERT_CHECK: event.check.name,
          KODAMA_ALERT_STATUS: String(event.check.status),
          KODAMA_ALERT_STATE: event.check.state,
          KODAMA_ALERT_OUTPUT: event.check.output,
        },
      });
      const pgid = child.pid;
      if (pgid !== undefined) this.groups.add(pgid);
      const finish = (outcome: Outcome, detail: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        if (pgid !== undefined) {
          killGroup(pgid); // leftovers of a finished script
          this.groups.delete(pgid);
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ outcome, detail });
      };
      const collect = (chunk: Buffer): void => {
        if (output.length < MAX_OUTPUT_BYTES) output += chunk.toString('utf8');
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      // A script that does not read stdin gets EPIPE: that is its business, not a failure.
      child.stdin?.on('error', () => {});
      child.stdin?.end(json);
      const timer = setTimeout(() => {
        timedOut = true;
        if (pgid !== undefined) killGroup(pgid);
        graceTimer = setTimeout(() => finish('timeout', `killed after ${timeoutMs} ms (no exit seen)`), KILL_GRACE_MS);
      }, timeoutMs);
      child.once('error', (e) => finish('failed', `could not start: ${e.message}`));
      child.once('exit', (code, signal) => {
        const first = output.split('\n', 1)[0]?.trim() ?? '';
        if (timedOut) finish('timeout', `killed after ${timeoutMs} ms`);
        else if (code === 0) finish('ok', '');
        else finish('failed', `${code !== null ? `exit status ${code}` : `killed by ${signal ?? 'a signal'}`}${first !== '' ? `: ${first}` : ''}`);
      });
    });
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already
  }
}

function withTimeout<T extends { outcome: Outcome; detail: string }>(p: Promise<T>, timeoutMs: number): Promise<{ outcome: Outcome; detail: string }> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<{ outcome: Outcome; detail: string }>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: 'timeout', detail: `no completion after ${timeoutMs} ms` }), timeoutMs);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function runWebhook(url: string, timeoutMs: number, json: string): Promise<{ outcome: Outcome; detail: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: Outcome, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ outcome, detail });
    };
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      finish('failed', `bad url ${url}`);
      return;
    }
    const body = Buffer.from(json, 'utf8');
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
      method: 'POST',
      agent: false, // one connection per alert: nothing pooled outlives it
      headers: { 'content-type': 'application/json', 'content-length': body.length, 'user-agent': 'kodama-monitor' },
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish('timeout', `no answer after ${timeoutMs} ms`);
    }, timeoutMs);
    req.on('error', (e) => finish('failed', e.message));
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.resume(); // drain the body; we only care about the status
      res.on('end', () => finish(code >= 200 && code < 300 ? 'ok' : 'failed', `HTTP ${code}`));
      res.on('error', (e) => finish('failed', e.message));
    });
    req.end(body);
  });
}
