// Runs `./bin/kodama …` as a child process with a hard bound: SIGINT at the bound (the demo
// cleans up its nodes on interrupt), SIGKILL 15 s later if it is still there.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KODAMA = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'kodama');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function runKodama(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<CliRun> {
  const proc = spawn(KODAMA, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const soft = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGINT');
  }, timeoutMs);
  const hard = setTimeout(() => proc.kill('SIGKILL'), timeoutMs + 15_000);
  return new Promise((resolve) => {
    proc.once('close', (code) => {
      clearTimeout(soft);
      clearTimeout(hard);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Whether a process with this pid is still running (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Pids whose command line mentions `text` (e.g. a demo's temp dir in HAProxy's -f path). */
export function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && alive(Number(e))) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Pids whose environment holds `KEY=value` (children inherit it: finds what a run left behind). */
export function pidsWithEnv(entry: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(entry) && alive(Number(e))) out.push(Number(e));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}
