// Child-process bookkeeping for the cluster benchmarks: free ports, spawning agents into their
// own process group with output going to a file (the harness reads no pipes, so it adds no CPU
// of its own while the cluster idles), killing every one of them on exit or Ctrl-C, and reading
// CPU time and RSS from /proc.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const live = new Set<ChildProcess>();

/** SIGKILL a child's whole process group (the agent and any handler it is running). */
export function killHard(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Group already gone: fall back to the process itself.
    try {
      child.kill('SIGKILL');
    } catch {
      // already reaped
    }
  }
}

/** Kill every child this module started and has not seen exit. Safe to call any number of times. */
export function killAllChildren(): void {
  for (const c of live) killHard(c);
  live.clear();
}

let hooksInstalled = false;
/** Kill the children when the process exits or is interrupted (Ctrl-C, SIGTERM). */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAllChildren);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: killing ${live.size} agents`);
      killAllChildren();
      process.exit(130);
    });
  }
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  hasExited(): boolean;
}

/**
 * Start `file args` in a new process group (so a terminal Ctrl-C reaches only the harness, which
 * then SIGKILLs the agents, and so kill -9 of a node takes its running handler with it), stdout
 * and stderr appended to `logFile`.
 */
export function spawnLogged(file: string, args: string[], logFile: string, cwd: string, env?: NodeJS.ProcessEnv): Spawned {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(file, args, { cwd, stdio: ['ignore', fd, fd], detached: true, env: env ?? process.env });
  } finally {
    closeSync(fd);
  }
  live.add(child);
  let done = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(child);
      resolve(code ?? (signal === null ? null : -1));
    });
    child.once('error', () => {
      done = true;
      live.delete(child);
      resolve(-1);
    });
  });
  if (child.pid === undefined) done = true;
  return { child, pid: child.pid ?? -1, exited, hasExited: () => done };
}

async function tryPort(port: number): Promise<number | undefined> {
  const tcp = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!ok) return undefined;
  const actual = (tcp.address() as { port: number }).port;
  const udp = createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(actual, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((r) => tcp.close(() => r()));
  if (udpOk) await new Promise<void>((r) => udp.close(() => r()));
  return udpOk ? actual : undefined;
}

const handedOut = new Set<number>();

/** A port free for TCP *and* UDP on 127.0.0.1 (memberlist uses both on one port), never handed out twice. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await tryPort(0);
    if (p !== undefined && !handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free TCP+UDP port found in 50 tries');
}

const CLK_TCK = 100; // Linux USER_HZ: /proc reports utime/stime in 1/100 s on every mainstream kernel

/** utime + stime of one process in ms, or undefined if it is gone. */
export function cpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command (which may hold spaces): state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Resident set size of one process in bytes, or undefined if it is gone. */
export function rssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
}

/** MemAvailable from /proc/meminfo in bytes (undefined if unreadable). */
export function memAvailableBytes(): number | undefined {
  try {
    const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
