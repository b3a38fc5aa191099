// `./bin/kodama agent` as a user runs it: flags in both spellings, -join by DNS name, the text
// output of `kodama members`, SIGINT → graceful leave and exit 0, a failed -join → exit 1.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, waitFor, waitStatuses } from '../interop/harness.ts';
import { KODAMA_BIN, REPO, freePort, startKodama, stopAll } from '../lib/agents.ts';

after(() => stopAll());

function kodama(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KODAMA_BIN, args, { cwd: REPO, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

test('kodama agent: join by name, members text output, SIGINT leaves gracefully', { timeout: 60_000 }, async () => {
  const a = await startKodama('cli-a', { tags: { role: 'web', dc: 'x1' } });
  await waitFor('cli-a RPC', 15_000, async () => ((await kodama(['members', `-rpc-addr=${a.rpcAddr}`])).code === 0 ? true : undefined), () => a.output());
  const b = await startKodama('cli-b', { tags: { role: 'db' }, join: [`localhost:${a.port}`] });
  await waitStatuses(a.rpcAddr, { 'cli-a': 'alive', 'cli-b': 'alive' }, 20_000, () => a.output() + b.output());

  const m = await kodama(['members', '-rpc-addr', a.rpcAddr]);
  assert.equal(m.code, 0, m.stderr);
  const lines = m.stdout.trimEnd().split('\n').sort();
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, new RegExp(`^cli-a  127\\.0\\.0\\.1:${a.port}  alive  dc=x1,role=web$`));
  assert.match(lines[1]!, new RegExp(`^cli-b  127\\.0\\.0\\.1:${b.port}  alive  role=db$`));
  const filtered = await kodama(['members', `-rpc-addr=${a.rpcAddr}`, '-tag', 'role=d.*']);
  assert.deepEqual(filtered.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), ['cli-b']);

  b.signal('SIGINT');
  await waitStatuses(a.rpcAddr, { 'cli-b': 'left' }, 15_000, () => b.output());
  const code = await exitWithin(b, 10_000);
  assert.equal(code, 0, b.output());
  assert.match(b.output(), /Caught signal: SIGINT[\s\S]*graceful leave complete/);
  assert.match(a.output(), /\[INFO\] serf: EventMemberLeave: cli-b 127\.0\.0\.1/);
});

test('kodama agent: a -join nobody answers exits 1 and says why', { timeout: 30_000 }, async () => {
  const port = await freePort();
  const c = await startKodama('cli-c', { join: [`127.0.0.1:${port}`], ready: false, expectExit: true });
  const code = await exitWithin(c, 20_000);
  assert.equal(code, 1, c.output());
  assert.match(c.output(), /Failed to join: Failed to join 127\.0\.0\.1:\d+: /);
});

test('kodama agent --help documents config sources and signals; a bad config file exits 1 naming the key', { timeout: 30_000 }, async () => {
  const h = await kodama(['agent', '--help']);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /-config-file=foo/);
  assert.match(h.stdout, /-retry-join=addr/);
  assert.match(h.stdout, /SIGTERM\s+graceful leave, then exit: leave_on_terminate defaults to TRUE in\s+kodama \(serf's default is false\)/);
  assert.match(h.stdout, /KODAMA_NODE/);
  const dir = mkdtempSync(join(tmpdir(), 'kodama-cli-agent-'));
  try {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ node_name: 'x', leave_on_terminat: true }));
    const r = await kodama(['agent', `-config-file=${bad}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Config has invalid keys: leave_on_terminat \(did you mean leave_on_terminate\?\)/);
    assert.match(r.stderr, /kodama agent -h/);
    // serf's -iface: an interface this host lacks, or lacking the -bind address, is refused.
    const noIface = await kodama(['agent', '-node=x', '-iface=nosuch0', '-rpc-addr=127.0.0.1:0']);
    assert.equal(noIface.code, 1);
    assert.match(noIface.stderr, /Invalid network interface: no interface named 'nosuch0' \(have: .*lo/);
    const wrongIp = await kodama(['agent', '-node=x', '-iface=lo', '-bind=127.0.0.2:0', '-rpc-addr=127.0.0.1:0']);
    assert.equal(wrongIp.code, 1);
    assert.match(wrongIp.stderr, /Interface 'lo' has no '127\.0\.0\.2' address/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
