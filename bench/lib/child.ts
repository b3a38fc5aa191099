// A simulation measured in a child process of its own: a clean heap to measure, a peak RSS that
// belongs to that run alone, and room for a big heap. The child is this same bench file, run
// with `flag` and `arg`; it prints one JSON line last, which is what this resolves to.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Run `benchFile` (an import.meta.url) as `node [heap flags] --import tsx <file> <flag> <arg>`
 * (old space `heapMb`, a 64 MiB young generation for millions of short-lived decoded messages —
 * ~16 % less CPU — and gc() exposed) and parse its last stdout line. `what` names the run in errors.
 */
export function runJsonChild<T>(benchFile: string, flag: string, arg: string, heapMb: number, what: string): Promise<T> {
  const args = [`--max-old-space-size=${heapMb}`, '--max-semi-space-size=64', '--expose-gc', '--import', 'tsx', fileURLToPath(benchFile), flag, arg];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${what}: child exited with ${signal ?? code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch (e) {
        reject(new Error(`${what}: unreadable child output: ${(e as Error).message}`));
      }
    });
  });
}

// Twice: a GC frees dead typed arrays' memory only when its concurrent sweep ends, and the next
// GC waits for that. Read after one, `arrayBuffers` still counts the stores a simulated node's
// tables outgrew (+20 bytes per member-table entry at 1,000 nodes). The child runs with
// --expose-gc; without it this does nothing.
export function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}
