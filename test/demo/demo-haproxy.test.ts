import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { KODAMA, alive, pidsMentioning, runKodama } from './helpers.ts';

test('kodama demo --once --haproxy: every step held with 0 reloads, exit 0, no node or HAProxy left running', async () => {
  const r = await runKodama(['demo', '--once', '--haproxy'], 90_000);
  const out = `${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.timedOut, false, `demo did not finish within 90 s:\n${out}`);
  assert.equal(r.code, 0, out);
  assert.match(r.stdout, /balancer: HAProxy listening on http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(r.stdout, /ok {3}steady load: \d+ answers in 2\.5 s from web-1, web-2, web-3; 0 failed requests/);
  assert.match(r.stdout, /ok {3}web-4 joins: web-4 took its first request \d+\.\d s after turning healthy/);
  assert.match(r.stdout, /ok {3}web-2 leaves: web-2 drained: exit code 0, .*0 failed requests of \d+/);
  assert.match(r.stdout, /ok {3}web-3 killed: \d+ requests? failed before the balancer removed it after [\d.]+ s, 0 after/);
  assert.match(r.stdout, /ok {3}haproxy: HAProxy reloaded 0 times for these joins and leaves/);
  assert.match(r.stdout, /All expectations held\./);
  const pids = [...r.stdout.matchAll(/started: pid (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 4, 'four web nodes started');
  assert.deepEqual(pids.filter(alive), [], 'every web node process is gone');
  const dir = /logs: (\S+)\)/.exec(r.stdout)?.[1];
  assert.ok(dir !== undefined && dir.includes('kodama-demo-'));
  assert.deepEqual(pidsMentioning(dir), [], 'no HAProxy (or anything else) runs from the demo dir');
});

test('kodama demo --haproxy (live) stopped by SIGTERM mid-script: every node and HAProxy stopped, exit 0', async () => {
  const proc = spawn(KODAMA, ['demo', '--haproxy'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hard = setTimeout(() => proc.kill('SIGKILL'), 90_000);
  let out = '';
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => proc.once('close', r));
  await new Promise<void>((resolve) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('STEP 1:')) resolve();
    });
    void closed.then(() => resolve());
  });
  assert.match(out, /STEP 1:/, out);
  const termAt = Date.now();
  proc.kill('SIGTERM');
  const code = await closed;
  clearTimeout(hard);
  assert.equal(code, 0, out);
  assert.ok(Date.now() - termAt < 30_000, 'stopped within 30 s');
  assert.match(out, /Interrupted: stopping the web nodes and the balancer/);
  const pids = [...out.matchAll(/started: pid (\d+)/g)].map((m) => Number(m[1]));
  assert.ok(pids.length >= 3, out);
  assert.deepEqual(pids.filter(alive), [], 'every web node process is gone');
  const dir = /logs: (\S+)\)/.exec(out)?.[1];
  assert.ok(dir !== undefined);
  assert.deepEqual(pidsMentioning(dir), [], 'HAProxy stopped');
});
