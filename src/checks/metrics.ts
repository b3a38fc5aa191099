// Performance figures a node reports with its checks (`kodama checks --aggregate`): load, memory
// and CPU. CPU percent needs two samples: the first call primes it (0), later calls report the
// busy share since the previous call.

import { readFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { ChecksReport } from './types.ts';

export type NodeMetrics = ChecksReport['metrics'];

interface CpuTotals { busy: number; total: number }

function cpuTotals(): CpuTotals {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/** MemAvailable counts reclaimable cache as free (what `free` shows); os.freemem() does not everywhere. */
function memAvailableBytes(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const m = /^MemAvailable:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

export class MetricsSampler {
  private last: CpuTotals | undefined;

  sample(): NodeMetrics {
    const [l1 = 0, l5 = 0, l15 = 0] = loadavg();
    const total = totalmem();
    const available = memAvailableBytes() ?? freemem();
    const now = cpuTotals();
    let cpuPercent = 0;
    if (this.last !== undefined) {
      const dTotal = now.total - this.last.total;
      const dBusy = now.busy - this.last.busy;
      cpuPercent = dTotal > 0 ? Math.max(0, Math.min(100, (dBusy / dTotal) * 100)) : 0;
    }
    this.last = now;
    const r2 = (x: number): number => Math.round(x * 100) / 100;
    return {
      load1: r2(l1),
      load5: r2(l5),
      load15: r2(l15),
      memUsedBytes: Math.max(0, total - available),
      memTotalBytes: total,
      cpuPercent: Math.round(cpuPercent * 10) / 10,
    };
  }
}
