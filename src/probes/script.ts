// Script probe (Nagios plugin contract): `sh -c <command>`; exit 0 ok, 1 warning, 2 critical,
// 3 and anything else unknown; the first line of stdout is the output. The script runs in its own
// process group so a timeout kills everything it started (a plugin that forks a `curl` must not
// leave it behind), and reports critical: a check that hangs says the service is not answering.
//
// The target is passed as KODAMA_CHECK_HOST / KODAMA_CHECK_PORT, so one script can serve every
// service (`check_http -H "$KODAMA_CHECK_HOST" -p "$KODAMA_CHECK_PORT"`).

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { ProbeResult, ProbeStatus, ProbeTarget } from './types.ts';
import { clipOutput } from './types.ts';

/** Only the first line is used; do not buffer a chatty script's whole output. */
const MAX_STDOUT_BYTES = 64 * 1024;
/** After the script exits, how long to wait for its stdout to close (a leftover child may hold it). */
const CLOSE_GRACE_MS = 100;

export function probeScript(spec: { command: string; timeoutMs: number }, target: ProbeTarget): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    let stdout = '';
    let stdoutBytes = 0;
    let exitCode: number | null | undefined;
    let exitSignal: NodeJS.Signals | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    const child = spawn('sh', ['-c', spec.command], {
      detached: true, // own process group: kill(-pid) reaches the grandchildren
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, KODAMA_CHECK_HOST: target.host, KODAMA_CHECK_PORT: String(target.port) },
    });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the whole group is already gone
      }
    };
    const finish = (status: ProbeStatus, output: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      killGroup(); // leftovers of a finished script, or the hung script itself
      child.stdout?.destroy();
      resolve({ status, output: clipOutput(output), durationMs: performance.now() - started });
    };
    const fromExit = (): void => {
      const first = stdout.split('\n', 1)[0]?.trim() ?? '';
      if (exitCode === null || exitCode === undefined) {
        finish(3, first !== '' ? first : `killed by ${exitSignal ?? 'a signal'}`);
        return;
      }
      const status: ProbeStatus = exitCode === 0 || exitCode === 1 || exitCode === 2 ? exitCode : 3;
      finish(status, first !== '' ? first : `exit status ${exitCode}`);
    };
    const timer = setTimeout(() => finish(2, `script timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (stdoutBytes >= MAX_STDOUT_BYTES) return;
      stdoutBytes += chunk.length;
      stdout += chunk.toString('utf8');
    });
    child.once('error', (e) => finish(3, `script could not start: ${e.message}`));
    child.once('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      graceTimer = setTimeout(fromExit, CLOSE_GRACE_MS);
    });
    child.once('close', () => {
      if (exitCode !== undefined) fromExit();
    });
  });
}
