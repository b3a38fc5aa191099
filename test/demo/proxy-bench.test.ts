// Smoke test of `npm run bench -- proxy` (1 s per target): it measures all three targets with
// the same load, prints the table with ratios against direct, and leaves no process behind.
// Figures are only checked for plausibility; the bench is for reading them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { pidsWithEnv } from './helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('proxy bench: direct, embedded proxy and HAProxy measured in one run, no failures, nothing left running', async () => {
  // Marks every process of this run (HAProxy included: it inherits the environment).
  const mark = `KODAMA_TEST_RUN=${randomUUID()}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', 'proxy'], {
    cwd: ROOT,
    env: { ...process.env, PROXY_BENCH_SECONDS: '1', KODAMA_TEST_RUN: mark.slice('KODAMA_TEST_RUN='.length) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const kill = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => proc.once('close', r));
  clearTimeout(kill);
  assert.equal(code, 0, out);
  assert.match(out, /target +req\/s +p50 ms +p99 ms +failed +req\/s vs direct +p99 vs direct/);
  const row = (name: string): number[] => {
    const m = new RegExp(`^${name} +(\\d+) +([\\d.]+) +([\\d.]+) +(\\d+) +([\\d.]+) +([\\d.]+)$`, 'm').exec(out);
    assert.ok(m !== null, `row ${name} in:\n${out}`);
    return m.slice(1).map(Number);
  };
  for (const name of ['direct', 'embedded proxy', 'haproxy']) {
    const [rps, p50, p99, failed] = row(name);
    assert.ok(rps! > 100, `${name}: ${rps} req/s`);
    assert.ok(p99! >= p50! && p50! > 0, `${name}: p50 ${p50} p99 ${p99}`);
    assert.equal(failed, 0, `${name}: failed requests`);
  }
  assert.deepEqual(row('direct').slice(4), [1, 1], 'direct is the reference');
  // A child's exit may still be in flight when the bench's own exit is seen: wait a little.
  const deadline = Date.now() + 5000;
  while (pidsWithEnv(mark).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pidsWithEnv(mark), [], 'no bench child or HAProxy left');
});
