// A CliIo that records output, for running commands in-process; a bounded wait.
import assert from 'node:assert/strict';
import type { CliIo } from '../../src/cli/io.ts';

export interface RecordedIo extends CliIo {
  out: string[];
  err: string[];
}

export function recordIo(env: Record<string, string | undefined> = {}): RecordedIo {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, env, stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
}

/** Poll `cond` every 50 ms until it holds; fail after `timeoutMs` naming `what`. */
export async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
