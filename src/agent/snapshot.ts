// The snapshot file (`-snapshot`, doc 8.1): serf's append-only text log of who was alive and how
// far the three Lamport clocks got, so a restarted agent rejoins its old peers without `-join`
// and neither replays old user events nor answers old queries.
//
// Records, one per line (the same file a real serf agent reads and writes):
//   alive: <name> <ip:port>    not-alive: <name>    clock: <n>    event-clock: <n>
//   query-clock: <n>           leave                 # comment    coordinate: … (ignored)
//
// Writing: lines are buffered and flushed by an append once 500 ms passed since the last flush,
// by `tick()` (the agent calls it every 500 ms with the member clock), and on leave/close.
// When the file outgrows max(128 KiB, 2 × 128 B × alive nodes) it is compacted: alive lines +
// the three clocks go to `<path>.compact`, fsync, rename over the file. A write error is logged
// and counted, never thrown at the agent; a failed compaction is retried at most every 30 s.
// A full disk can leave half a line at the end of the file: the bytes that did not fit are kept
// and written first at the next flush (so the line is completed, not repeated), and a file that
// ends in half a line when it is opened (a crash mid-write, a full disk) is cut back to its last
// whole line before anything is appended, so the next record never lands glued to a torn one.
//
// `replaySnapshot` is pure (text in, state out) so it is tested without files.

import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import type { LogLevel } from '../serf/log.ts';
import { monotonicMs } from '../transport/clock.ts';

export interface PreviousNode {
  name: string;
  /** `ip:port` (`[v6]:port`), as written in the file. */
  addr: string;
}

export interface SnapshotReplay {
  aliveNodes: PreviousNode[];
  /** Member clock − 1 (last value used). */
  lastClock: number;
  lastEventClock: number;
  lastQueryClock: number;
  /** Lines that were not understood (logged, skipped). */
  badLines: number;
}

const FLUSH_INTERVAL_MS = 500;
const SNAPSHOT_BYTES_PER_NODE = 128;
const COMPACTION_THRESHOLD = 2;
const MIN_COMPACT_BYTES = 128 * 1024;
const ERROR_RECOVERY_INTERVAL_MS = 30_000;

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function parseClock(s: string): number | undefined {
  if (!/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Replay a snapshot's text. `leave` resets the alive set and clocks unless `rejoinAfterLeave`
 * (`-rejoin`). A final line without LF is ignored, as serf does (it may be half written).
 */
export function replaySnapshot(
  text: string,
  opts: { rejoinAfterLeave?: boolean; log?: (level: LogLevel, msg: string) => void } = {},
): SnapshotReplay {
  const log = opts.log ?? (() => {});
  const alive = new Map<string, string>();
  let lastClock = 0;
  let lastEventClock = 0;
  let lastQueryClock = 0;
  let badLines = 0;
  const lines = text.split('\n');
  lines.pop(); // the part after the last LF: empty, or an unterminated line
  for (const line of lines) {
    if (line.startsWith('alive: ')) {
      const info = line.slice('alive: '.length);
      const i = info.lastIndexOf(' ');
      if (i < 0) {
        log('WARN', `serf: Failed to parse address: ${line}`);
        badLines++;
        continue;
      }
      const name = info.slice(0, i);
      // re-insert so the map order follows the latest record
      alive.delete(name);
      alive.set(name, info.slice(i + 1));
    } else if (line.startsWith('not-alive: ')) {
      alive.delete(line.slice('not-alive: '.length));
    } else if (line.startsWith('clock: ') || line.startsWith('event-clock: ') || line.startsWith('query-clock: ')) {
      const colon = line.indexOf(': ');
      const kind = line.slice(0, colon);
      const n = parseClock(line.slice(colon + 2));
      if (n === undefined) {
        log('WARN', `serf: Failed to convert ${kind} time: ${line}`);
        badLines++;
        continue;
      }
      if (kind === 'clock') lastClock = n;
      else if (kind === 'event-clock') lastEventClock = n;
      else lastQueryClock = n;
    } else if (line.startsWith('coordinate: ') || line.startsWith('#')) {
      continue;
    } else if (line === 'leave') {
      if (opts.rejoinAfterLeave) {
        log('INFO', 'serf: Ignoring previous leave in snapshot');
        continue;
      }
      alive.clear();
      lastClock = 0;
      lastEventClock = 0;
      lastQueryClock = 0;
    } else {
      log('WARN', `serf: Unrecognized snapshot line: ${line}`);
      badLines++;
    }
  }
  return {
    aliveNodes: [...alive].map(([name, addr]) => ({ name, addr })),
    lastClock,
    lastEventClock,
    lastQueryClock,
    badLines,
  };
}

/** `ip:port` as Go's net.TCPAddr prints it (brackets around IPv6). */
export function formatSnapshotAddr(addr: { ip: string; port: number }): string {
  return addr.ip.includes(':') ? `[${addr.ip}]:${addr.port}` : `${addr.ip}:${addr.port}`;
}

/** What the agent restores into Serf at start (serf.Create does the same). */
export interface SnapshotClocks {
  /** Witness these on the member / event / query clocks. */
  clock: number;
  eventClock: number;
  queryClock: number;
  /** Events and queries below these are old: drop them. */
  eventMinTime: number;
  queryMinTime: number;
}

export interface SnapshotterOptions {
  /** `-rejoin`: ignore a recorded `leave` on replay. */
  rejoinAfterLeave?: boolean;
  log?: (level: LogLevel, msg: string) => void;
  /** Monotonic ms for flush timing (default monotonicMs()). */
  nowMs?: () => number;
  /** Compaction floor (default 128 KiB); tests lower it. */
  minCompactBytes?: number;
}

/** Member events as the snapshot needs them (structurally serf's `SerfEvent`). */
export interface SnapshotMemberEvent {
  type: string;
  members: readonly { name: string; addr: { ip: string; port: number } }[];
}

export class Snapshotter {
  readonly replayed: SnapshotReplay;
  private fd: number | null;
  private buffered = '';
  /** Bytes of a flush that failed part-way (a full disk): written before anything newer. */
  private unwritten: Buffer | undefined;
  private offsetBytes: number;
  private lastFlushMs: number;
  private lastCompactFailMs = -Infinity;
  private readonly alive = new Map<string, string>();
  private lastClock: number;
  private lastEventClock: number;
  private lastQueryClock: number;
  private readonly log: (level: LogLevel, msg: string) => void;
  private readonly nowMs: () => number;
  private readonly minCompactBytes: number;
  private errors = 0;
  private compactions = 0;
  private skippedNames = 0;
  private tornBytes = 0;
  private writeFailing = false;
  private lastWriteErrorLogMs = -Infinity;
  private droppedBytes = 0;

  /** Open (creating if needed) and replay `path`. Throws if the file cannot be opened or read. */
  constructor(
    readonly path: string,
    opts: SnapshotterOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.nowMs = opts.nowMs ?? monotonicMs;
    this.minCompactBytes = opts.minCompactBytes ?? MIN_COMPACT_BYTES;
    this.fd = openSync(path, 'a', 0o644);
    const bytes = readFileSync(path);
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end < bytes.length) {
      // Half a record at the end: replay ignores it, and an append after it would glue the next
      // record to it. Cut it off.
      this.tornBytes = bytes.length - end;
      this.log('WARN', `serf: snapshot ${path} ended in a partial line (${this.tornBytes} bytes, from a crash or a full disk): dropped it`);
      ftruncateSync(this.fd, end);
    }
    const text = bytes.subarray(0, end).toString('utf8');
    this.offsetBytes = end;
    this.replayed = replaySnapshot(text, { rejoinAfterLeave: opts.rejoinAfterLeave ?? false, log: this.log });
    for (const n of this.replayed.aliveNodes) this.alive.set(n.name, n.addr);
    this.lastClock = this.replayed.lastClock;
    this.lastEventClock = this.replayed.lastEventClock;
    this.lastQueryClock = this.replayed.lastQueryClock;
    this.lastFlushMs = this.nowMs();
  }

  /** Clocks to restore into Serf. */
  clocks(): SnapshotClocks {
    return {
      clock: this.replayed.lastClock,
      eventClock: this.replayed.lastEventClock,
      queryClock: this.replayed.lastQueryClock,
      eventMinTime: this.replayed.lastEventClock + 1,
      queryMinTime: this.replayed.lastQueryClock + 1,
    };
  }

  /**
   * Nodes to rejoin, in random order (serf tries them one by one until one answers), without
   * ourselves. Use `name/addr` when joining so a node that changed name is not mistaken.
   */
  previousNodes(selfName: string, random: () => number = Math.random): PreviousNode[] {
    const nodes = this.replayed.aliveNodes.filter((n) => n.name !== selfName);
    for (let i = nodes.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = nodes[i]!;
      nodes[i] = nodes[j]!;
      nodes[j] = t;
    }
    return nodes;
  }

  /** Record a member event; `memberClock` is Serf's member clock now. */
  memberEvent(e: SnapshotMemberEvent, memberClock?: number): void {
    if (e.type === 'member-join') {
      for (const m of e.members) {
        if (!this.recordable(m.name)) continue;
        const addr = formatSnapshotAddr(m.addr);
        this.alive.set(m.name, addr);
        this.append(`alive: ${m.name} ${addr}\n`);
      }
    } else if (e.type === 'member-leave' || e.type === 'member-failed') {
      for (const m of e.members) {
        if (!this.recordable(m.name)) continue;
        this.alive.delete(m.name);
        this.append(`not-alive: ${m.name}\n`);
      }
    }
    if (memberClock !== undefined) this.updateClock(memberClock);
  }

  userEvent(ltime: number): void {
    if (ltime <= this.lastEventClock) return;
    this.lastEventClock = ltime;
    this.append(`event-clock: ${ltime}\n`);
  }

  query(ltime: number): void {
    if (ltime <= this.lastQueryClock) return;
    this.lastQueryClock = ltime;
    this.append(`query-clock: ${ltime}\n`);
  }

  /** Serf's clock ticker: record the member clock if it moved, flush if due. Call every 500 ms. */
  tick(memberClock: number): void {
    this.updateClock(memberClock);
    if ((this.buffered !== '' || this.unwritten !== undefined) && this.nowMs() - this.lastFlushMs >= FLUSH_INTERVAL_MS) this.flush();
  }

  /** Graceful leave: append `leave` and flush, so a restart does not rejoin. */
  leave(): void {
    this.append('leave\n');
    this.flush();
  }

  /** Flush and close (shutdown). Idempotent. */
  close(): void {
    this.flush();
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // nothing left to do with it
      }
      this.fd = null;
    }
  }

  stats(): { aliveNodes: number; offsetBytes: number; errors: number; compactions: number; skippedNames: number; tornBytes: number; droppedBytes: number } {
    return {
      aliveNodes: this.alive.size,
      offsetBytes: this.offsetBytes,
      errors: this.errors,
      compactions: this.compactions,
      skippedNames: this.skippedNames,
      tornBytes: this.tornBytes,
      droppedBytes: this.droppedBytes,
    };
  }

  /**
   * Node names come from the network; a line break in one would let a peer write its own
   * records (`leave`, `alive: evil …`) into our file. Such members are not recorded (serf does).
   */
  private recordable(name: string): boolean {
    if (!/[\r\n]/.test(name)) return true;
    this.skippedNames++;
    this.log('WARN', `serf: not recording member ${JSON.stringify(name)} in the snapshot: line break in its name`);
    return false;
  }

  private updateClock(memberClock: number): void {
    const lastSeen = memberClock - 1;
    if (lastSeen > this.lastClock) {
      this.lastClock = lastSeen;
      this.append(`clock: ${lastSeen}\n`);
    }
  }

  private append(line: string): void {
    if (this.fd === null) return;
    this.buffered += line;
    this.offsetBytes += Buffer.byteLength(line);
    let needCompact = this.offsetBytes > this.maxSizeBytes();
    if (this.nowMs() - this.lastFlushMs >= FLUSH_INTERVAL_MS) {
      try {
        this.flushOrThrow();
      } catch (err) {
        this.writeFailed('Failed to update snapshot', err);
        // rewriting the file from memory is serf's way to recover from a broken append
        needCompact = true;
      }
    }
    // A failing compaction is retried at most every 30 s, so a broken disk costs one log line
    // per 30 s, not one per member event.
    const now = this.nowMs();
    if (needCompact && now - this.lastCompactFailMs >= ERROR_RECOVERY_INTERVAL_MS) {
      try {
        this.compact();
        if (this.lastCompactFailMs > -Infinity || this.writeFailing) this.log('INFO', 'serf: Finished compaction, successfully recovered from error state');
        this.lastCompactFailMs = -Infinity;
        this.writeFailing = false;
      } catch (err) {
        this.errors++;
        this.lastCompactFailMs = now;
        this.log('ERR', `serf: Failed to update snapshot: compaction failed, will retry after 30s: ${errMessage(err)}`);
      }
    }
  }

  private flush(): void {
    try {
      this.flushOrThrow();
    } catch (err) {
      this.writeFailed('Failed to flush snapshot', err);
    }
  }

  /** Count a failed write; log it at most every 30 s (a full disk must not flood the log). */
  private writeFailed(what: string, err: unknown): void {
    this.errors++;
    this.writeFailing = true;
    const now = this.nowMs();
    if (now - this.lastWriteErrorLogMs < ERROR_RECOVERY_INTERVAL_MS) return;
    this.lastWriteErrorLogMs = now;
    this.log('ERR', `serf: ${what}: ${errMessage(err)} (${this.errors} failed write${this.errors === 1 ? '' : 's'} so far; kept in memory, retried)`);
  }

  private flushOrThrow(): void {
    this.lastFlushMs = this.nowMs();
    if (this.fd === null) return;
    if (this.buffered !== '') {
      const fresh = Buffer.from(this.buffered);
      this.buffered = '';
      this.unwritten = this.unwritten === undefined ? fresh : Buffer.concat([this.unwritten, fresh]);
    }
    const data = this.unwritten;
    if (data === undefined) return;
    let off = 0;
    try {
      while (off < data.length) off += writeSync(this.fd, data, off);
      this.unwritten = undefined;
      if (this.writeFailing) {
        this.writeFailing = false;
        this.log('INFO', 'serf: snapshot writes succeed again');
      }
    } catch (err) {
      // What did not fit waits for the next flush; past the compaction size only the end of the
      // torn line is kept (the compaction that follows rewrites everything from memory anyway).
      let rest = data.subarray(off);
      if (rest.length > this.maxSizeBytes()) {
        const nl = rest.indexOf(0x0a);
        const keep = off > 0 && nl >= 0 ? nl + 1 : 0;
        this.droppedBytes += rest.length - keep;
        rest = rest.subarray(0, keep);
      }
      this.unwritten = rest.length > 0 ? rest : undefined;
      throw err;
    }
  }

  private maxSizeBytes(): number {
    return Math.max(this.minCompactBytes, this.alive.size * SNAPSHOT_BYTES_PER_NODE * COMPACTION_THRESHOLD);
  }

  private compact(): void {
    if (this.fd === null) return;
    let text = '';
    for (const [name, addr] of this.alive) text += `alive: ${name} ${addr}\n`;
    text += `clock: ${this.lastClock}\nevent-clock: ${this.lastEventClock}\nquery-clock: ${this.lastQueryClock}\n`;
    const tmp = `${this.path}.compact`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      const data = Buffer.from(text);
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      // a half-written copy only takes the space a full disk lacks
      try {
        unlinkSync(tmp);
      } catch {
        // gone already
      }
      throw err;
    }
    closeSync(fd);
    // Everything buffered is contained in the compacted state; drop it with the old file.
    this.buffered = '';
    this.unwritten = undefined;
    closeSync(this.fd);
    this.fd = null;
    try {
      renameSync(tmp, this.path);
    } finally {
      // reopen whatever is at the path now, so later appends still land somewhere
      this.fd = openSync(this.path, 'a', 0o644);
    }
    this.offsetBytes = Buffer.byteLength(text);
    this.lastFlushMs = this.nowMs();
    this.compactions++;
  }
}
