// A CliIo that records output, for running commands in-process.
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
