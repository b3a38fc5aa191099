// The agent's logger: serf's line format (`2026/11/24 21:00:00 [INFO] serf: …`), a level filter,
// a pluggable sink, and per-key rate limiting for noisy warnings (a peer with the wrong key
// sends a dropped packet every probe interval; one line per window says so, with a count).

import { LOG_LEVELS } from '../serf/log.ts';
import type { LogLevel } from '../serf/log.ts';
import { AgentError } from './errors.ts';

export type { LogLevel } from '../serf/log.ts';

export function parseLogLevel(s: string): LogLevel {
  const up = s.toUpperCase();
  // serf accepts "warning"/"error" spellings too (logutils maps them).
  const alias: Record<string, LogLevel> = { WARNING: 'WARN', ERROR: 'ERR' };
  const lvl = (alias[up] ?? up) as LogLevel;
  if (!LOG_LEVELS.includes(lvl)) {
    throw new AgentError('ERR_AGENT_CONFIG', `Invalid log level: ${s}. Valid log levels are: ${LOG_LEVELS.join(', ')}`);
  }
  return lvl;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Go's log.LstdFlags timestamp, local time. */
export function formatTimestamp(d: Date): string {
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Receives each formatted line without trailing newline. Default: stdout, as serf. */
  sink?: (line: string) => void;
  /** Wall clock for timestamps and rate-limit windows (tests pass a fake). */
  wallClockMs?: () => number;
}

const RING_LINES = 512;

export class Logger {
  private minRank: number;
  private readonly sink: (line: string) => void;
  private readonly wallClockMs: () => number;
  private readonly limited = new Map<string, { windowStartMs: number; suppressed: number }>();
  /** The last lines, whatever the level filter (serf's monitor replays these). */
  private readonly ring: string[] = [];
  private readonly subscribers = new Set<(line: string) => void>();

  constructor(opts: LoggerOptions) {
    this.minRank = LOG_LEVELS.indexOf(opts.level);
    this.sink = opts.sink ?? ((line) => process.stdout.write(`${line}\n`));
    this.wallClockMs = opts.wallClockMs ?? Date.now;
  }

  /** SIGHUP reload changes the level of a running agent (serf's logFilter.SetMinLevel). */
  setLevel(level: LogLevel): void {
    this.minRank = LOG_LEVELS.indexOf(level);
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.minRank;
  }

  log(level: LogLevel, msg: string): void {
    const line = `${formatTimestamp(new Date(this.wallClockMs()))} [${level}] ${msg}`;
    this.ring.push(line);
    if (this.ring.length > RING_LINES) this.ring.shift();
    if (this.enabled(level)) this.sink(line);
    for (const fn of [...this.subscribers]) {
      try {
        fn(line);
      } catch {
        // A broken subscriber (closed RPC connection) must not break logging; drop it.
        this.subscribers.delete(fn);
      }
    }
  }

  /**
   * Log at most once per `windowMs` for `key`; the next line after a quiet window reports how
   * many were suppressed.
   */
  logLimited(key: string, windowMs: number, level: LogLevel, msg: string): void {
    const now = this.wallClockMs();
    const st = this.limited.get(key);
    if (st !== undefined && now - st.windowStartMs < windowMs) {
      st.suppressed++;
      return;
    }
    const suffix = st !== undefined && st.suppressed > 0 ? ` (${st.suppressed} similar suppressed)` : '';
    this.limited.set(key, { windowStartMs: now, suppressed: 0 });
    // Bound the table: keys are reason×peer, and peers can be spoofed.
    if (this.limited.size > 1024) {
      const oldest = this.limited.keys().next().value;
      if (oldest !== undefined) this.limited.delete(oldest);
    }
    this.log(level, msg + suffix);
  }

  recentLines(): string[] {
    return [...this.ring];
  }

  /**
   * Every line, whatever the level filter (serf's `monitor` filters per client): the recent
   * ring first, then live lines until the returned function is called.
   */
  subscribe(fn: (line: string) => void): () => void {
    try {
      for (const line of this.ring) fn(line);
    } catch {
      return () => false; // broken from the start: never subscribed
    }
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}
