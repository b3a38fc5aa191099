// `kodama exec` against in-process agents on 127.0.0.1: the command talks to ops-1's RPC, which
// sends real `kodama-exec` queries through an encrypted cluster; every agent runs the executor
// (exec spec from its options). Refusals (disabled, no/wrong token, allow-list, unencrypted
// cluster), each node's own output and exit code, and output larger than many query answers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { execCommand } from '../../src/cli/exec.ts';
import type { ExecSpec } from '../../src/exec/types.ts';
import { recordIo, until } from './helpers.ts';

const TOKEN = 'exec-test-token';
const on = (allow: string[] = []): ExecSpec => ({ enabled: true, token: TOKEN, allow, timeoutMs: 30_000, maxOutputBytes: 1 << 20 });
const NODES: Record<string, { role: string; exec?: ExecSpec }> = {
  'ops-1': { role: 'ops', exec: on(['uptime', 'echo *']) },
  'web-1': { role: 'web', exec: on() },
  'web-2': { role: 'web', exec: on() },
  'web-3': { role: 'web', exec: on() },
  'db-1': { role: 'db' }, // exec not enabled
};

const agents: Agent[] = [];
const logs = new Map<string, string[]>();
let rpc = '';
let plainRpc = '';

async function cluster(nodes: Record<string, { role: string; exec?: ExecSpec }>, encrypt: string | undefined): Promise<string> {
  const mine: Agent[] = [];
  for (const [name, spec] of Object.entries(nodes)) {
    const lines: string[] = [];
    logs.set(name, lines);
    const a = createAgent({
      nodeName: name,
      bind: '127.0.0.1:0',
      rpcAddr: mine.length === 0 ? '127.0.0.1:0' : null,
      profile: 'local',
      tags: { role: spec.role },
      logSink: (l) => lines.push(l),
      ...(encrypt !== undefined ? { encrypt } : {}),
      ...(spec.exec !== undefined ? { exec: spec.exec } : {}),
    });
    await a.start();
    mine.push(a);
    agents.push(a);
  }
  const first = mine[0]!;
  for (const a of mine.slice(1)) await a.join([`127.0.0.1:${first.bindAddress.port}`]);
  await until('all members alive', 20_000, () => first.members().filter((m) => m.status === 'alive').length === mine.length);
  return `${first.rpcAddress!.host}:${first.rpcAddress!.port}`;
}

before(async () => {
  rpc = await cluster(NODES, randomBytes(32).toString('base64'));
  plainRpc = await cluster({ 'plain-1': { role: 'plain', exec: on() }, 'plain-2': { role: 'plain', exec: on() } }, undefined);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
});

async function kodamaExec(args: string[], env: Record<string, string> = {}, addr = rpc): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const io = recordIo({ KODAMA_RPC_ADDR: addr, ...env });
  const t0 = Date.now();
  const code = await execCommand.run(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join(''), ms: Date.now() - t0 };
}

test('exec: each web node runs the command and its own output returns; exit codes summarised', async (t) => {
  const r = await kodamaExec(['-role', 'web', '-token', TOKEN, '--', 'echo "hello from $KODAMA_NODE pid $$"; test "$KODAMA_NODE" != web-2 || exit 7']);
  t.diagnostic(`3 nodes in ${r.ms} ms`);
  for (const n of ['web-1', 'web-2', 'web-3']) assert.match(r.stdout, new RegExp(`^${n}: hello from ${n} pid \\d+$`, 'm'), r.stdout + r.stderr);
  assert.match(r.stdout, /^web-1\s+0\s+\d+\.\ds$/m);
  assert.match(r.stdout, /^web-2\s+7\s+\d+\.\ds$/m);
  assert.match(r.stdout, /^web-3\s+0\s+\d+\.\ds$/m);
  assert.match(r.stdout, /2\/3 nodes exited 0/);
  assert.doesNotMatch(r.stdout, /ops-1|db-1/);
  assert.equal(r.code, 1);
  // Every run is logged on its node, with who asked and the outcome.
  await until('the run logged on web-2', 5000, () => (logs.get('web-2') ?? []).some((l) => /exec: run by ops-1 `echo .*` → exit 7 in/.test(l)));
  const ok = await kodamaExec(['-role', 'web', '-token', TOKEN, '--', 'echo', 'fine']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /3\/3 nodes exited 0/);
});

test('exec: refused without the token (CLI), with a wrong token (each node), without -enable-exec, and outside the allow-list', async () => {
  const none = await kodamaExec(['-role', 'web', '--', 'uptime']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /exec token is required: pass -token <token> or set KODAMA_EXEC_TOKEN/);

  const wrong = await kodamaExec(['-role', 'web', '--', 'touch /tmp/kodama-exec-should-not-exist'], { KODAMA_EXEC_TOKEN: 'nope' });
  assert.equal(wrong.code, 1);
  for (const n of ['web-1', 'web-2', 'web-3']) {
    assert.match(wrong.stdout, new RegExp(`^${n}\\s+refused \\(ERR_EXEC_TOKEN\\)`, 'm'), wrong.stdout);
    assert.match(wrong.stderr, new RegExp(`^${n}: ERR_EXEC_TOKEN: wrong exec token .*--token or KODAMA_EXEC_TOKEN`, 'm'));
  }
  assert.ok((logs.get('web-1') ?? []).some((l) => /refused request by ops-1 `touch .*`: wrong token/.test(l)));

  const disabled = await kodamaExec(['-role', 'db', '-token', TOKEN, '--', 'uptime']);
  assert.equal(disabled.code, 1);
  assert.match(disabled.stderr, /^db-1: ERR_EXEC_DISABLED: exec is not enabled on db-1: start its agent with -enable-exec/m);

  const notAllowed = await kodamaExec(['-node', 'ops-1', '-token', TOKEN, '--', 'rm', '-rf', '/tmp/x']);
  assert.equal(notAllowed.code, 1);
  assert.match(notAllowed.stderr, /ops-1: ERR_EXEC_NOT_ALLOWED: `rm -rf \/tmp\/x` is not in ops-1's exec.allow list/);
  const allowed = await kodamaExec(['-node', 'ops-1', '-token', TOKEN, '--', 'echo', 'allowed']);
  assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
  assert.match(allowed.stdout, /^ops-1: allowed$/m);
});

test('exec: refused on an unencrypted cluster, even with the right token', async () => {
  const r = await kodamaExec(['-role', 'plain', '-token', TOKEN, '--', 'uptime'], {}, plainRpc);
  assert.equal(r.code, 1);
  for (const n of ['plain-1', 'plain-2']) assert.match(r.stderr, new RegExp(`^${n}: ERR_EXEC_NOT_ENCRYPTED: .*-encrypt <key>`, 'm'), r.stderr);
});

test('exec: output of many answers per node streams in full and in order', async (t) => {
  const r = await kodamaExec(['-role', 'web', '-token', TOKEN, '--', 'seq 1 2000']);
  assert.equal(r.code, 0, r.stderr);
  for (const n of ['web-1', 'web-2', 'web-3']) {
    const mine = r.stdout.split('\n').filter((l) => l.startsWith(`${n}: `)).map((l) => Number(l.slice(n.length + 2)));
    assert.equal(mine.length, 2000, `${n} lines`);
    assert.ok(mine.every((v, i) => v === i + 1), `${n} in order`);
  }
  t.diagnostic(`3 × ${Buffer.byteLength(Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join(''))} bytes in ${r.ms} ms`);
});

test('exec: usage errors', async () => {
  assert.match((await kodamaExec(['-token', TOKEN, '--', 'uptime'])).stderr, /say where to run/);
  assert.match((await kodamaExec(['-role', 'web', '-token', TOKEN])).stderr, /no command given/);
  const nobody = await kodamaExec(['-role', 'nosuch', '-token', TOKEN, '--', 'uptime']);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /no alive member matches role=nosuch/);
  const help = await kodamaExec(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: kodama exec/);
});
