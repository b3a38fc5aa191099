// Proxy overhead: the same HTTP load (16 keep-alive connections, no pause) sent directly to a web
// backend, through kodama's embedded proxy, and through HAProxy — one run, requests/s and p50/p99
// latency, ratios against direct. Backend, proxy and load generator are separate processes
// (src/demo/bench-child.ts), so on a 2-core machine the proxy does not share an event loop with
// either end. Figures are for reading, not asserted; `PROXY_BENCH_SECONDS` sets the run length.

import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LoadSummary } from '../src/demo/loadgen.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(ROOT, 'src', 'demo', 'bench-child.ts');
const CONCURRENCY = 16;
const SECONDS = Number(process.env.PROXY_BENCH_SECONDS ?? 5);
const WARMUP_MS = 1000;
/** Young-generation caps to compare with node's default (PROXY_BENCH_SEMI="1,2,4"). */
const SEMI_SPACES = (process.env.PROXY_BENCH_SEMI ?? '1,2,4').split(',').filter((x) => x !== '').map(Number);
/** More node flag sets to compare, `;`-separated (PROXY_BENCH_ARGS="--a --b;--c"). */
const EXTRA_ARGS = (process.env.PROXY_BENCH_ARGS ?? '').split(';').map((x) => x.trim()).filter((x) => x !== '');

/** The V8 flags bin/kodama's shebang starts every agent with (`#!/usr/bin/env -S node <flags>`). */
function binFlags(): string[] {
  const first = readFileSync(join(ROOT, 'bin', 'kodama'), 'utf8').split('\n', 1)[0] ?? '';
  return first.replace(/^#!\S*env -S node\s*/, '').split(/\s+/).filter((x) => x.startsWith('--'));
}

const children = new Set<ChildProcess>();
function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** SIGTERM (a proxy child stops its HAProxy), wait for the exit; SIGKILL after 10 s. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** Start a bench child and read its one JSON line (bounded). */
function child<T>(args: string[], timeoutMs: number, nodeArgs: string[] = []): Promise<{ proc: ChildProcess; value: T }> {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', CHILD, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-2000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`bench child ${args[0]} gave no answer within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench child ${args[0]} exited ${code}: ${err}`));
    });
    createInterface({ input: proc.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ proc, value: JSON.parse(line) as T });
    });
  });
}

/** RSS, its anonymous part (MiB) and CPU seconds of a running process, from /proc. */
function usage(pid: number): { rssMiB: number; anonMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMiB: kb('VmRSS') / 1024, anonMiB: kb('RssAnon') / 1024, cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK };
}
const CLK_TCK = 100;

async function measure(url: string): Promise<LoadSummary> {
  const { value } = await child<LoadSummary>(['load', url, String(CONCURRENCY), String(SECONDS * 1000), String(WARMUP_MS)], SECONDS * 1000 + 60_000);
  return value;
}

function haproxyAvailable(): boolean {
  const r = spawnSync('haproxy', ['-v'], { timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

export default async function run(): Promise<void> {
  process.once('exit', killAll);
  const dir = mkdtempSync(join(tmpdir(), 'kodama-proxy-bench-'));
  try {
    const backend = await child<{ port: number }>(['backend'], 30_000);
    const target = `127.0.0.1:${backend.value.port}`;
    const rows: { name: string; sum: LoadSummary }[] = [];
    const proxies: { name: string; requests: number; cpuS: number; rssMiB: number; anonMiB: number }[] = [];

    console.log(`load: ${CONCURRENCY} keep-alive connections, ${SECONDS} s after ${WARMUP_MS} ms warm-up, each target in turn`);
    rows.push({ name: 'direct', sum: await measure(`http://${target}/`) });

    // The embedded proxy as node sizes it by default and with the young generation bin/kodama
    // starts the agent with (--max-semi-space-size, MiB): what the cap costs at full load.
    const bin = binFlags();
    const variants: { name: string; args: string[] }[] = [
      { name: 'embedded proxy', args: [] },
      ...(bin.length > 0 ? [{ name: `embedded, bin/kodama's ${bin.join(' ')}`, args: bin }] : []),
      ...SEMI_SPACES.map((semi) => ({ name: `embedded, semi ${semi} MiB`, args: [`--max-semi-space-size=${semi}`] })),
      ...EXTRA_ARGS.map((a) => ({ name: `embedded, ${a}`, args: a.split(/\s+/) })),
    ];
    for (const { name, args: nodeArgs } of variants) {
      const embedded = await child<{ port: number }>(['proxy', 'embedded', target], 30_000, nodeArgs);
      const load = measure(`http://127.0.0.1:${embedded.value.port}/`);
      await new Promise((r) => setTimeout(r, WARMUP_MS + 300)); // the child's start, then its warm-up
      const before = usage(embedded.proc.pid!);
      const sum = await load;
      const after = usage(embedded.proc.pid!);
      rows.push({ name, sum });
      proxies.push({ name, requests: sum.ok, cpuS: after.cpuS - before.cpuS, rssMiB: after.rssMiB, anonMiB: after.anonMiB });
      await stopChild(embedded.proc);
    }

    if (haproxyAvailable()) {
      const ha = await child<{ port: number }>(['proxy', 'haproxy', target, join(dir, 'haproxy')], 30_000);
      rows.push({ name: 'haproxy', sum: await measure(`http://127.0.0.1:${ha.value.port}/`) });
      await stopChild(ha.proc);
    } else {
      console.log('haproxy: not installed (apt-get install haproxy), skipped');
    }

    const direct = rows[0]!.sum;
    const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'req/s vs direct', 'p99 vs direct'];
    const table = rows.map(({ name, sum }) => [
      name,
      sum.requestsPerSec.toFixed(0),
      sum.p50Ms.toFixed(1),
      sum.p99Ms.toFixed(1),
      String(sum.failed),
      (sum.requestsPerSec / Math.max(1, direct.requestsPerSec)).toFixed(2),
      (sum.p99Ms / Math.max(0.001, direct.p99Ms)).toFixed(2),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
    for (const r of [head, ...table]) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
    console.log('embedded proxy process (load generator and backend are others): CPU for the whole load, RSS and anonymous RSS at its end');
    const base = proxies[0]!;
    for (const p of proxies) {
      const perK = (p.cpuS / Math.max(1, p.requests)) * 1000 * 1000;
      const basePerK = (base.cpuS / Math.max(1, base.requests)) * 1000 * 1000;
      console.log(
        `  ${p.name.padEnd(26)} CPU ${perK.toFixed(0).padStart(5)} ms per 1000 req (${(perK / basePerK).toFixed(2)}×)  RSS ${p.rssMiB.toFixed(1)} MiB, anon ${p.anonMiB.toFixed(1)} MiB`,
      );
    }
  } finally {
    await Promise.all([...children].map((c) => stopChild(c)));
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
