// `bin/kodama exec` against `bin/kodama agent` processes on 127.0.0.1, encrypted with a key from
// `bin/kodama keygen`: exec enabled three ways (config file, -enable-exec -exec-token, and
// -enable-exec with KODAMA_EXEC_TOKEN in the agent's environment), one node without it. Each
// enabled node's own output returns; the disabled one refuses with what to do; every run is a
// line in the node's log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpcMembers, waitFor } from '../interop/harness.ts';
import { KODAMA_BIN, REPO, startKodama, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

const TOKEN = 'proc-exec-token';
const dir = mkdtempSync(join(tmpdir(), 'kodama-exec-'));
const procs: AgentProcess[] = [];

function kodama(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(KODAMA_BIN, args, { cwd: REPO, timeout: 40_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

before(async () => {
  const key = (await kodama(['keygen'])).stdout.trim();
  assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
  const cfg = join(dir, 'exec.json');
  writeFileSync(cfg, JSON.stringify({ exec: { enabled: true, token: TOKEN, timeout: '20s' } }));
  const first = await startKodama('web-a', { encrypt: key, tags: { role: 'web' }, args: ['-config-file', cfg], startTimeoutMs: 40_000 });
  procs.push(first);
  const seed = `127.0.0.1:${first.port}`;
  const rest = await Promise.all([
    startKodama('web-b', { encrypt: key, tags: { role: 'web' }, join: [seed], args: ['-enable-exec', `-exec-token=${TOKEN}`], startTimeoutMs: 40_000 }),
    startKodama('web-c', { encrypt: key, tags: { role: 'web' }, join: [seed], args: ['-enable-exec'], env: { KODAMA_EXEC_TOKEN: TOKEN }, startTimeoutMs: 40_000 }),
    startKodama('db-a', { encrypt: key, tags: { role: 'db' }, join: [seed], startTimeoutMs: 40_000 }),
  ]);
  procs.push(...rest);
  await waitFor('4 members alive', 30_000, async () => ((await rpcMembers(first.rpcAddr))?.filter((m) => m.status === 'alive').length === 4 ? true : undefined), () => first.output());
});

after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('bin/kodama exec: each node enabled (file, flags, env) returns its own output; exit codes summarised; logged on the node', { timeout: 60_000 }, async (t) => {
  const rpc = procs[0]!.rpcAddr;
  const r = await kodama(['exec', `-rpc-addr=${rpc}`, '-role', 'web', '--', 'echo "node=$KODAMA_NODE pid=$$"; [ "$KODAMA_NODE" != web-c ] || exit 4'], { KODAMA_EXEC_TOKEN: TOKEN });
  t.diagnostic(`bin/kodama exec over 3 agent processes: ${r.ms} ms (includes node start)`);
  for (const n of ['web-a', 'web-b', 'web-c']) assert.match(r.stdout, new RegExp(`^${n}: node=${n} pid=\\d+$`, 'm'), r.stdout + r.stderr);
  const pids = [...r.stdout.matchAll(/pid=(\d+)/g)].map((m) => m[1]);
  assert.equal(new Set(pids).size, 3, 'three different shells ran it');
  assert.match(r.stdout, /^web-c\s+4\s/m);
  assert.match(r.stdout, /2\/3 nodes exited 0/);
  assert.equal(r.code, 1);
  for (const p of procs.slice(0, 3)) {
    await waitFor(`${p.name} logs the run`, 5000, () => (/\[(INFO|WARN)\] exec: run by web-a `echo .*` → exit \d in \d+\.\ds/.test(p.output()) ? true : undefined), () => p.output().slice(-2000));
  }
});

test('bin/kodama exec: a node without -enable-exec refuses and says how to enable it; a wrong token is refused', { timeout: 60_000 }, async () => {
  const rpc = procs[0]!.rpcAddr;
  const off = await kodama(['exec', `-rpc-addr=${rpc}`, '-role', 'db', `-token=${TOKEN}`, '--', 'uptime']);
  assert.equal(off.code, 1);
  assert.match(off.stderr, /^db-a: ERR_EXEC_DISABLED: exec is not enabled on db-a: start its agent with -enable-exec/m, off.stdout + off.stderr);
  const wrong = await kodama(['exec', `-rpc-addr=${rpc}`, '-node', 'web-b', '-token=nope', '--', 'uptime']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^web-b: ERR_EXEC_TOKEN: wrong exec token/m);
  await waitFor('web-b logs the refusal', 5000, () => (/exec: refused request by web-a `uptime`: wrong token/.test(procs[1]!.output()) ? true : undefined));
});
