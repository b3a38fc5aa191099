// Real serf agents vs kodama agents, side by side in one run: `npm run bench -- serf-compare`.
//
// For N = 30 then N = 100 (override: KODAMA_BENCH_SERF_N=5,30), start N `serf agent`s on
// 127.0.0.1 (profile lan, all joining the first, each with scripts/bench-handler.sh as its event
// handler writing "<time> <node> <event> …" to a file of its own), measure, kill them; then the
// same N of `./bin/kodama agent` with the same flags and handler. Measured for both:
//   - user event propagation: an event (coalesce off) sent through the first agent's RPC; time
//     from the send until each other node's handler started (p50, last node);
//   - failure detection: kill -9 of the last agent; time until each other node's handler ran
//     member-failed for it (p50, last node) — what a user's handler sees, coalescing included;
//   - steady CPU of the whole cluster: Σ utime+stime from /proc over an idle window
//     (KODAMA_BENCH_IDLE_MS, default 20 000) after the join storm's handlers went quiet;
//   - RSS per agent (VmRSS) at the end of that window, mean and max.
// User events and kills are repeated KODAMA_BENCH_REPEATS times (default 3; p50 over all
// samples, last node = median of the repeats' last-node times), since a single kill lands at a
// random phase of the probe cycle. KODAMA_BENCH_KINDS=serf runs one half only; KODAMA_BENCH_KEEP=1 keeps the logs.
// Sizes that would not fit the machine's available memory are skipped and say so.

import { compare, formatTable } from './lib/compare.ts';
import type { Kind } from './lib/cluster.ts';

function envList(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export default async function run(): Promise<void> {
  const sizes = envList('KODAMA_BENCH_SERF_N', '30,100').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('KODAMA_BENCH_SERF_N: comma-separated sizes ≥ 2');
  const kinds = envList('KODAMA_BENCH_KINDS', 'serf,kodama');
  if (kinds.some((k) => k !== 'serf' && k !== 'kodama')) throw new Error('KODAMA_BENCH_KINDS: serf and/or kodama');
  const idleMs = Number(process.env['KODAMA_BENCH_IDLE_MS'] ?? 20_000);
  const started = Date.now();
  const results = await compare({
    sizes,
    kinds: kinds as Kind[],
    idleMs,
    userEventTimeoutMs: 60_000,
    failureTimeoutMs: 120_000,
    repeats: Number(process.env['KODAMA_BENCH_REPEATS'] ?? 3),
    keepFiles: process.env['KODAMA_BENCH_KEEP'] === '1',
    log: (line) => console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s ${line}`),
  });
  console.log('');
  console.log(formatTable(results));
}
