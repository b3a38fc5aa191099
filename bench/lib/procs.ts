// Process helpers for the cluster benchmarks: SIGKILL of a node's process group, the
// harness-wide exit hooks, and CPU time and RSS from /proc. The agents themselves (spawned into
// their own process groups, output to a file so the harness reads no pipes and adds no CPU of its
// own while the cluster idles; ports from a slot of this process's own) come from
// test/lib/agents.ts, the one way tests and benchmarks start agents.

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { killAllNow, liveAgents } from '../../test/lib/agents.ts';

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

let hooksInstalled = false;
/**
 * Kill the agents when the process exits or is interrupted (Ctrl-C, SIGTERM): the agents run in
 * process groups of their own, so a terminal's Ctrl-C reaches only the harness, which SIGKILLs them.
 */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: killing ${liveAgents().length} agents`);
      killAllNow();
      process.exit(130);
    });
  }
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
