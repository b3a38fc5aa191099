// `kodama demo -no-script` without a browser: the dashboard's address when the default port is
// taken, the API behind it seeing the whole cluster, steady traffic lines not repeated when stdout is
// a pipe, and a clean stop on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { KODAMA, alive } from './helpers.ts';

/** Holds 127.0.0.1:8500 if it is free (if it is not, someone else holds it: same situation). */
function hold8500(): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(8500, '127.0.0.1', () => resolve(srv));
  });
}

test('kodama demo -no-script with 127.0.0.1:8500 taken: dashboard on a free port, API sees every member, steady traffic not repeated into a pipe, SIGTERM stops every node', { timeout: 90_000 }, async (t) => {
  const held = await hold8500();
  t.after(() => held?.close());
  const proc = spawn(KODAMA, ['demo', '--no-script'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hard = setTimeout(() => proc.kill('SIGKILL'), 80_000);
  t.after(() => {
    clearTimeout(hard);
    proc.kill('SIGKILL');
  });
  let out = '';
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => proc.once('close', r));
  let readyAt = Date.now();
  const ready = await new Promise<RegExpExecArray | null>((resolve) => {
    const bound = setTimeout(() => resolve(null), 45_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /cluster ready: (.*); dashboard: (\S+)\n/.exec(out);
      if (m !== null) {
        readyAt = Date.now();
        clearTimeout(bound);
        resolve(m);
      }
    });
    void closed.then(() => resolve(null));
  });
  assert.ok(ready !== null, `no "cluster ready" line within 45 s:\n${out}`);
  const pids = [...ready[1]!.matchAll(/web-\d pid (\d+)/g)].map((m) => Number(m[1]));
  t.after(() => {
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
  });
  assert.equal(pids.length, 3, ready[0]);
  const url = new URL(ready[2]!);
  assert.equal(url.hostname, '127.0.0.1');
  assert.notEqual(url.port, '8500', 'not the taken default port');
  assert.equal(url.pathname, '/ui/');
  assert.ok(out.includes(`  dashboard: ${url.href}\n`), `the header names it:\n${out}`);

  const page = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  // The balancer knows every node before the demo says ready (they are its backends).
  const members = (await (await fetch(new URL('/v1/members', url), { signal: AbortSignal.timeout(10_000) })).json()) as {
    members: { name: string; status: string }[];
  };
  assert.deepEqual(
    members.members.map((m) => `${m.name} ${m.status}`).sort(),
    ['balancer alive', 'web-1 alive', 'web-2 alive', 'web-3 alive'],
  );
  assert.match(out, /Live view \(no script: web-1, web-2 and web-3 serve\); dashboard: http:\/\/127\.0\.0\.1:\d+\/ui\/\nPress Ctrl-C/);
  assert.doesNotMatch(out, /STEP 1/, 'no script step ran');

  // Its stdout is a pipe, not a terminal: steady traffic is not repeated every second (a demo
  // left running into a log file). The old view printed a line per second: 5+ here.
  await new Promise((r) => setTimeout(r, Math.max(0, readyAt + 6000 - Date.now())));
  const live = out.slice(out.indexOf('Press Ctrl-C'));
  const trafficLines = live.split('\n').filter((l) => / traffic: /.test(l));
  assert.ok(trafficLines.length <= 2, `traffic lines in the 6 s after "cluster ready" (the set did not change):\n${live}`);

  const termAt = Date.now();
  proc.kill('SIGTERM');
  const code = await closed;
  assert.equal(code, 0, out);
  assert.ok(Date.now() - termAt < 30_000, 'stopped within 30 s');
  assert.deepEqual(pids.filter(alive), [], 'every web node process is gone');
});
