// Start-up cost of one idle agent: `npm run bench -- startup`.
//
// - exec → `==> kodama agent running!` on the agent's stdout (a pipe, read as it arrives), for
//   one agent alone and for 3 started at once (the serf-compare cluster starts 3 at a time), and
//   the CPU the agent used by then (Σ over its threads of /proc/PID/task/*/schedstat: less
//   sensitive than wall time to others' work on a shared machine);
// - VmRSS and RssAnon (/proc/PID/status) and the thread count after 5 s idle (KODAMA_BENCH_IDLE_MS);
// - the same for bare node (`node -e 'setInterval(() => {}, 1e9)'`, its "banner" = exec → first
//   output line) beside it: the floor no Node program gets under.
// - per subsystem (KODAMA_BENCH_SUBSYSTEMS=0 skips it): the same agent with one config section
//   that starts it (services, checks, balancer, monitor, deploys, http), start and memory after
//   the idle wait, 3 rounds alternating with a plain agent, and what each adds to the plain one.
// Rounds alternate kodama and node (KODAMA_BENCH_STARTS rounds, default 10), so both see the
// same machine; medians. Agents bind 127.0.0.1 on free ports and are SIGKILLed after measuring.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KODAMA_BIN, REPO, freePort } from '../test/lib/agents.ts';
import { installExitHooks, killHard, sleep } from './lib/procs.ts';

interface Sample {
  bannerMs: number;
  cpuMs: number;
  rssKiB?: number;
  anonKiB?: number;
  threads?: number;
}

function threadCpuMs(pid: number): number {
  let total = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    }
  } catch {
    // gone
  }
  return total;
}

function status(pid: number): { rssKiB: number; anonKiB: number; threads: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKiB: field('VmRSS'), anonKiB: field('RssAnon'), threads: field('Threads') };
  } catch {
    return undefined;
  }
}

/** Start `file args`, wait for `marker` on stdout; then (idleMs > 0) wait and read its memory; kill it. */
async function one(file: string, args: string[], marker: string, idleMs: number): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(file, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  try {
    const bannerMs = await new Promise<number>((resolve, reject) => {
      let out = '';
      const limit = setTimeout(() => reject(new Error(`${file}: no "${marker}" within 30 s`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(marker)) {
          clearTimeout(limit);
          child.stdout.removeAllListeners('data');
          child.stdout.resume();
          resolve(performance.now() - t0);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(limit);
        reject(new Error(`${file} exited (${code}) before "${marker}": ${out.slice(-500)}`));
      });
    });
    const cpuMs = threadCpuMs(child.pid ?? -1);
    if (idleMs <= 0) return { bannerMs, cpuMs };
    await sleep(idleMs);
    return { bannerMs, cpuMs, ...status(child.pid ?? -1) };
  } finally {
    killHard(child);
  }
}

async function agentArgs(i: number): Promise<string[]> {
  return ['agent', `-node=startup-${i}`, `-bind=127.0.0.1:${await freePort()}`, `-rpc-addr=127.0.0.1:${await freePort()}`];
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] ?? NaN);
};

export default async function run(): Promise<void> {
  installExitHooks();
  const rounds = Number(process.env['KODAMA_BENCH_STARTS'] ?? 10);
  const idleMs = Number(process.env['KODAMA_BENCH_IDLE_MS'] ?? 5000);
  const BANNER = '==> kodama agent running!';
  const bare = ['-e', "process.stdout.write('up\\n'); setInterval(() => {}, 1e9)"];
  // One warm-up each (page cache; and the code cache if a build just replaced it).
  await one(KODAMA_BIN, await agentArgs(0), BANNER, 0);
  await one(process.execPath, bare, 'up', 0);

  const alone: Sample[] = [];
  const three: Sample[] = [];
  const node: Sample[] = [];
  const idle: Sample[] = [];
  const nodeIdle: Sample[] = [];
  for (let r = 0; r < rounds; r++) {
    alone.push(await one(KODAMA_BIN, await agentArgs(1), BANNER, 0));
    node.push(await one(process.execPath, bare, 'up', 0));
    const args = await Promise.all([2, 3, 4].map(agentArgs));
    three.push(...(await Promise.all(args.map((a) => one(KODAMA_BIN, a, BANNER, 0)))));
  }
  // Memory: fewer rounds (each idles), alternating too.
  for (let r = 0; r < Math.min(3, rounds); r++) {
    idle.push(await one(KODAMA_BIN, await agentArgs(5), BANNER, idleMs));
    nodeIdle.push(await one(process.execPath, bare, 'up', idleMs));
  }

  const ms = (x: number): string => x.toFixed(0).padStart(8);
  const mib = (kib: number): string => (kib / 1024).toFixed(1).padStart(8);
  const row = (label: string, start: Sample[], mem: Sample[]): string =>
    `${label.padEnd(22)}${ms(median(start.map((s) => s.bannerMs)))}${ms(median(start.map((s) => s.cpuMs)))}` +
    (mem.length > 0
      ? `${mib(median(mem.map((s) => s.rssKiB ?? NaN)))}${mib(median(mem.map((s) => s.anonKiB ?? NaN)))}${String(median(mem.map((s) => s.threads ?? NaN))).padStart(8)}`
      : '');
  console.log(`${rounds} rounds (median); memory after ${idleMs / 1000} s idle, ${idle.length} runs`);
  console.log(`${''.padEnd(22)}${'start ms'.padStart(8)}${'cpu ms'.padStart(8)}${'RSS MiB'.padStart(8)}${'anon'.padStart(8)}${'threads'.padStart(8)}`);
  console.log(row('kodama agent, alone', alone, idle));
  console.log(row('kodama agent, 3 at once', three, []));
  console.log(row('bare node (floor)', node, nodeIdle));
  if (process.env['KODAMA_BENCH_SUBSYSTEMS'] !== '0') await subsystems(idleMs, BANNER, row);
}

/** One config section per subsystem; what each adds to a plain agent's start and memory. */
async function subsystems(idleMs: number, banner: string, row: (label: string, start: Sample[], mem: Sample[]) => string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-startup-'));
  try {
    const sections: Record<string, () => Promise<unknown>> = {
      plain: async () => ({}),
      services: async () => ({ services: [{ name: 'web', port: 18080 }] }),
      checks: async () => ({ tags: { role: 'w' }, checks: [{ name: 'hb', ttl: '30s', subscriptions: ['role=w'] }] }),
      balancer: async () => ({ balancer: { driver: 'embedded', services: { web: { bind: `127.0.0.1:${await freePort()}`, mode: 'http' } } } }),
      monitor: async () => ({ monitoring: { handlers: { audit: { type: 'log', path: join(dir, 'alerts.log') } } } }),
      deploys: async () => ({ data_dir: join(dir, 'data') }),
      http: async () => ({ http_addr: `127.0.0.1:${await freePort()}` }),
    };
    const samples = new Map<string, Sample[]>(Object.keys(sections).map((k) => [k, []]));
    for (let r = 0; r < 3; r++) {
      for (const [name, section] of Object.entries(sections)) {
        const file = join(dir, `${name}.json`);
        writeFileSync(file, JSON.stringify(await section()));
        samples.get(name)!.push(await one(KODAMA_BIN, [...(await agentArgs(6)), `-config-file=${file}`], banner, idleMs));
      }
    }
    const plain = samples.get('plain')!;
    const delta = (xs: Sample[], f: (s: Sample) => number, unit: number, digits: number): string => {
      const d = (median(xs.map(f)) - median(plain.map(f))) / unit;
      return `${d >= 0 ? '+' : ''}${d.toFixed(digits)}`;
    };
    console.log(`per subsystem: one config section each, ${plain.length} rounds (median), added to a plain agent`);
    for (const [name, xs] of samples) {
      const added = name === 'plain' ? '' : `   ${delta(xs, (s) => s.bannerMs, 1, 0)} ms, ${delta(xs, (s) => s.rssKiB ?? NaN, 1024, 1)} MiB (${delta(xs, (s) => s.anonKiB ?? NaN, 1024, 1)} anon)`;
      console.log(`${row(`  ${name}`, xs, xs)}${added}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
