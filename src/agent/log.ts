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

/** One log line as data: what `-log-json` prints and syslog receives. */
export interface LogRecord {
  /** Date.now() ms. */
  timeMs: number;
  level: LogLevel;
  /** The message's `subsystem:` prefix (serf, memberlist, balancer, …); `agent` when it has none. */
  subsystem: string;
  /** The message without that prefix. */
  message: string;
  fields: Record<string, string | number | boolean>;
}

const SUBSYSTEM = /^([a-z][a-z0-9_.-]{0,31}): /;

export function logRecord(timeMs: number, level: LogLevel, msg: string, fields: Record<string, string | number | boolean> = {}): LogRecord {
  const m = SUBSYSTEM.exec(msg);
  return m === null
    ? { timeMs, level, subsystem: 'agent', message: msg, fields }
    : { timeMs, level, subsystem: m[1]!, message: msg.slice(m[0].length), fields };
}

/** `-log-json`: one object per line, {time (RFC 3339, UTC), level, subsystem, message, fields}. */
export function formatJsonRecord(r: LogRecord): string {
  return JSON.stringify({ time: new Date(r.timeMs).toISOString(), level: r.level, subsystem: r.subsystem, message: r.message, fields: r.fields });
}

export interface LoggerOptions {
  level: LogLevel;
  /** Receives each formatted line without trailing newline. Default: stdout, as serf. */
  sink?: (line: string) => void;
  /**
   * Receives each line that passes the level filter as a record (and its text line), instead of
   * `sink`: JSON output, syslog. The ring and subscribers (`monitor`) keep the text lines.
   */
  recordSink?: (r: LogRecord, line: string) => void;
  /** Wall clock for timestamps and rate-limit windows (tests pass a fake). */
  wallClockMs?: () => number;
}

const RING_LINES = 512;

export class Logger {
  private minRank: number;
  private readonly sink: (line: string) => void;
  private readonly recordSink: ((r: LogRecord, line: string) => void) | undefined;
  private readonly wallClockMs: () => number;
  private readonly limited = new Map<string, { windowStartMs: number; suppressed: number }>();
  /** The last lines, whatever the level filter (serf's monitor replays these). */
  private readonly ring: string[] = [];
  private readonly subscribers = new Set<(line: string) => void>();

  constructor(opts: LoggerOptions) {
    this.minRank = LOG_LEVELS.indexOf(opts.level);
    this.sink = opts.sink ?? ((line) => process.stdout.write(`${line}\n`));
    this.recordSink = opts.recordSink;
    this.wallClockMs = opts.wallClockMs ?? Date.now;
  }

  /** SIGHUP reload changes the level of a running agent (serf's logFilter.SetMinLevel). */
  setLevel(level: LogLevel): void {
    this.minRank = LOG_LEVELS.indexOf(level);
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.minRank;
  }

  /** `fields`: structured values for the JSON output and syslog (the text line shows `msg` only). */
  log(level: LogLevel, msg: string, fields?: Record<string, string | number | boolean>): void {
    const now = this.wallClockMs();
    const line = `${formatTimestamp(new Date(now))} [${level}] ${msg}`;
    this.ring.push(line);
    if (this.ring.length > RING_LINES) this.ring.shift();
    if (this.enabled(level)) {
      if (this.recordSink !== undefined) this.recordSink(logRecord(now, level, msg, fields), line);
      else this.sink(line);
    }
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
