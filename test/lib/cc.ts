// Small C helpers the tests build with the system's C compiler (what Node cannot do: a TUN relay,
// a Unix datagram socket): built once per source text into the temp dir, so parallel test files
// and reruns share the binary.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The binary built from `src` (a path); throws with the compiler's message (install gcc and libc6-dev). */
export function buildC(src: string, name: string): string {
  const text = readFileSync(src);
  const out = join(tmpdir(), `kodama-${name}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync('cc', ['-O2', '-o', tmp, src], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`cannot build ${name} (cc ${src}): ${r.error?.message ?? r.stderr.trim()} — install gcc and libc6-dev`);
  renameSync(tmp, out); // atomic: a parallel build of the same source lands the same bytes
  return out;
}
