import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alive, runKodama } from './helpers.ts';

test('kodama demo --once (embedded proxy): every step held, exit 0, no node left running', async () => {
  const r = await runKodama(['demo', '--once'], 90_000);
  const out = `${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.timedOut, false, `demo did not finish within 90 s:\n${out}`);
  assert.equal(r.code, 0, out);
  assert.match(r.stdout, /balancer: embedded proxy listening on http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(r.stdout, /^ {2}dashboard: http:\/\/127\.0\.0\.1:\d+\/ui\/$/m, 'the header names the dashboard');
  assert.match(r.stdout, /cluster ready: web-1 pid \d+, web-2 pid \d+, web-3 pid \d+; dashboard: http:\/\/127\.0\.0\.1:\d+\/ui\/\n/);
  assert.match(r.stdout, /balancer: web backends = web-1, web-2, web-3\n/);
  assert.match(r.stdout, /ok {3}steady load: \d+ answers in 2\.5 s from web-1, web-2, web-3; 0 failed requests/);
  assert.match(r.stdout, /ok {3}web-4 joins: web-4 took its first request \d+\.\d s after turning healthy/);
  assert.match(r.stdout, /ok {3}web-2 leaves: web-2 drained: exit code 0, set to drain after [\d.]+ s, removed after [\d.]+ s, .*0 failed requests of \d+/);
  assert.match(r.stdout, /ok {3}web-3 killed: \d+ requests? failed before the balancer removed it after [\d.]+ s, 0 after/);
  assert.match(r.stdout, /traffic: \d+ req\/s {2}\[web-1 \d+ \| web-4 \d+\] {2}failed 0/);
  assert.match(r.stdout, /All expectations held\./);
  assert.doesNotMatch(r.stdout, /^\[[ \d.]+s\] FAIL /m);
  const pids = [...r.stdout.matchAll(/started: pid (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 4, 'four web nodes started');
  assert.deepEqual(pids.filter(alive), [], 'every web node process is gone');
});

test('kodama demo --help documents the script and flags; a bad flag exits 1', async () => {
  const help = await runKodama(['demo', '--help'], 30_000);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: kodama demo \[options\]/);
  for (const s of ['-once', '-haproxy', 'web-4 joins', 'web-2 leaves', 'web-3 is killed', 'Ctrl-C', 'apt-get install haproxy', '-http-addr=127.0.0.1:8500', '-no-script', 'dashboard: http://127.0.0.1:PORT/ui/', 'cluster ready: web-1 pid N']) {
    assert.ok(help.stdout.includes(s), `help mentions ${s}`);
  }
  const bad = await runKodama(['demo', '--nope'], 30_000);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /flag provided but not defined: -nope/);
  const both = await runKodama(['demo', '--no-script', '--once'], 30_000);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /-no-script cannot be used with -once/);
  const addr = await runKodama(['demo', '--http-addr', 'nope'], 30_000);
  assert.equal(addr.code, 1);
  assert.match(addr.stderr, /invalid value "nope" for -http-addr: want host:port/);
  assert.equal(both.stdout + addr.stdout, '', 'nothing started');
});

test('kodama demo --haproxy without HAProxy says how to install it and exits 1', async () => {
  const r = await runKodama(['demo', '--once', '--haproxy', '--haproxy-binary', '/nonexistent/haproxy'], 30_000);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot run HAProxy \("\/nonexistent\/haproxy": ENOENT\)/);
  assert.match(r.stderr, /apt-get install haproxy/);
  assert.equal(r.stdout, '', 'nothing started');
});
