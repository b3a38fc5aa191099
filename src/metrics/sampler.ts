// Reads this host's and this process's figures for the history (FIELDS order, series.ts): Linux
// /proc files read synchronously (each read is a few microseconds of kernel formatting, cheaper
// than a thread-pool round trip), statfs for the disk, and Node's own counters for the process.
// Rates (CPU, disk and network bytes) are differences from the previous sample, so the first
// sample has none (NaN). The event-loop delay is how late the agent's own timers fired
// (transport/clock.ts notes it where they fire). Anything unreadable (not Linux, a container without /proc/diskstats)
// is NaN, never an error.

import { readFileSync, readdirSync, statfsSync } from 'node:fs';
import { FIELDS } from './series.ts';
import { takeTimerLateness } from '../transport/clock.ts';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Jiffies busy and in all, from the first line of /proc/stat. */
export function procStatCpu(text: string | undefined): { busy: number; total: number } | undefined {
  const m = text === undefined ? null : /^cpu\s+(.*)$/m.exec(text);
  if (m === null) return undefined;
  const v = m[1]!.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest is inside user already)
  const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Used share of memory as `free` counts it (MemAvailable), percent. */
export function memUsedPercent(text: string | undefined): number {
  if (text === undefined) return NaN;
  const total = /^MemTotal:\s+(\d+)/m.exec(text);
  const avail = /^MemAvailable:\s+(\d+)/m.exec(text);
  if (total === null || avail === null || Number(total[1]) === 0) return NaN;
  return (100 * (Number(total[1]) - Number(avail[1]))) / Number(total[1]);
}

/** Bytes read + written by whole disks (names in `disks`), from /proc/diskstats. */
export function diskBytes(text: string | undefined, disks: ReadonlySet<string>): number {
  if (text === undefined) return NaN;
  let sectors = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !disks.has(f[2]!)) continue;
    sectors += Number(f[5]) + Number(f[9]);
  }
  return sectors * 512;
}

/** Bytes received + sent by every interface but loopback, from /proc/net/dev. */
export function netBytes(text: string | undefined): number {
  if (text === undefined) return NaN;
  let bytes = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (m === null || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    bytes += (f[0] ?? 0) + (f[8] ?? 0);
  }
  return bytes;
}

/** Whole disks (not partitions), without loop and RAM devices. */
function wholeDisks(): Set<string> {
  try {
    return new Set(readdirSync('/sys/block').filter((d) => !/^(loop|ram|zram)/.test(d)));
  } catch {
    return new Set();
  }
}

export class HostSampler {
  private readonly disks = wholeDisks();
  private prev: { tMs: number; cpu: { busy: number; total: number } | undefined; disk: number; net: number; proc: NodeJS.CpuUsage } | undefined;
  /** One sample, FIELDS order. */
  sample(tMs: number, diskPath = '/'): Float64Array {
    const out = new Float64Array(FIELDS.length).fill(NaN);
    const cpu = procStatCpu(read('/proc/stat'));
    const disk = diskBytes(read('/proc/diskstats'), this.disks);
    const net = netBytes(read('/proc/net/dev'));
    const proc = process.cpuUsage();
    const p = this.prev;
    const dt = p === undefined ? 0 : (tMs - p.tMs) / 1000;
    if (p !== undefined && dt > 0) {
      if (cpu !== undefined && p.cpu !== undefined && cpu.total > p.cpu.total) out[0] = (100 * (cpu.busy - p.cpu.busy)) / (cpu.total - p.cpu.total);
      if (disk >= p.disk) out[4] = (disk - p.disk) / dt;
      if (net >= p.net) out[5] = (net - p.net) / dt;
      out[7] = (100 * (proc.user + proc.system - p.proc.user - p.proc.system)) / 1e6 / dt;
    }
    const load = /^(\S+)/.exec(read('/proc/loadavg') ?? '');
    out[1] = load === null ? NaN : Number(load[1]);
    out[2] = memUsedPercent(read('/proc/meminfo'));
    try {
      const s = statfsSync(diskPath);
      const used = s.blocks - s.bfree;
      out[3] = used + s.bavail > 0 ? (100 * used) / (used + s.bavail) : NaN;
    } catch {
      // NaN: no such filesystem
    }
    out[6] = process.memoryUsage.rss() / (1 << 20);
    // The event-loop delay: how late the agent's own timers (gossip every 200 ms, probes, …)
    // fired since the last sample, the worst of them. No wake-up of its own: a 200 ms timer
    // for this alone cost an idle agent half again its CPU, and node:perf_hooks'
    // monitorEventLoopDelay 1 MiB of memory.
    out[8] = Math.max(0, takeTimerLateness() ?? NaN);
    this.prev = { tMs, cpu, disk, net, proc };
    return out;
  }
}
