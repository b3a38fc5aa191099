import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import { deployCommand } from '../../src/cli/deploy.ts';
import { freePort } from '../lib/agents.ts';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await deployCommand.run(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {} });
  return { code, out, err };
}

test('kodama deploy: every subcommand has -help; usage errors say what is wrong', async () => {
  const top = await run(['--help']);
  assert.equal(top.code, 0);
  for (const sub of ['blue-green', 'status', 'abort', 'rollback', 'route']) {
    assert.match(top.out, new RegExp(`\\n    ${sub} `));
    for (const h of ['-help', '--help', '-h']) {
      const r = await run([sub, h]);
      assert.equal(r.code, 0, `${sub} ${h}`);
      assert.match(r.out, new RegExp(`^Usage: kodama deploy ${sub}`));
    }
  }
  assert.equal((await run([])).code, 1);
  const unknown = await run(['blue-red']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /Unknown subcommand: blue-red/);
  const cases: [string[], RegExp][] = [
    [['blue-green', '-from', 'blue', '-to', 'green'], /-service is required/],
    [['blue-green', '-service', 'web', '-to', 'green'], /-from is required/],
    [['blue-green', '-service', 'web', '-from', 'a', '-to', 'b', '-steps', '10,x'], /-steps must be percentages/],
    [['blue-green', '-service', 'web', '-from', 'a', '-to', 'b', '-bake', '3 parsecs'], /invalid duration/],
    [['blue-green', '-service', 'web', '-from', 'a', '-to', 'b', '-expected', '1.5'], /invalid value "1.5" for flag -expected/],
    [['status', '-format', 'xml'], /-format must be text or json/],
    [['route', 'blue=100'], /-service is required/],
    [['route', '-service', 'web', 'blue=101'], /VALUE=PERCENT \(0..100\), got "blue=101"/],
    [['abort', 'now'], /unexpected argument: now/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, re, args.join(' '));
  }
});

test('kodama deploy against agents: no agent → connect error; agent without data dir → says how; with one: route, status, refusals', { timeout: 30_000 }, async (t) => {
  const nobody = await run(['status', '-rpc-addr', `127.0.0.1:${await freePort()}`]);
  assert.equal(nobody.code, 1);
  assert.match(nobody.err, /Error connecting to agent/);

  const plainRpc = `127.0.0.1:${await freePort()}`;
  const plain = createAgent({ nodeName: 'plain', bind: '127.0.0.1:0', rpcAddr: plainRpc, profile: 'local', logSink: () => undefined });
  await plain.start();
  t.after(() => plain.stop());
  const noDir = await run(['status', '-rpc-addr', plainRpc]);
  assert.equal(noDir.code, 1);
  assert.match(noDir.err, /start it with -data-dir/);

  const dataDir = await mkdtemp(join(tmpdir(), 'kodama-cli-deploy-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const rpc = `127.0.0.1:${await freePort()}`;
  const a = createAgent({ nodeName: 'coord', bind: '127.0.0.1:0', rpcAddr: rpc, profile: 'local', dataDir, logSink: () => undefined });
  await a.start();
  t.after(() => a.stop());
  const none = await run(['status', '-rpc-addr', rpc]);
  assert.equal(none.code, 0, none.err);
  assert.match(none.out, /No deploy on this agent yet/);
  const abort = await run(['abort', '-rpc-addr', rpc]);
  assert.equal(abort.code, 1);
  assert.match(abort.err, /no deploy on coord to abort/);

  const route = await run(['route', '-rpc-addr', rpc, '-service', 'web', 'blue=10', 'green=90']);
  assert.equal(route.code, 0, route.err);
  assert.match(route.out, /route web: color blue=10 green=90 \(ltime \d+\)/);
  assert.deepEqual({ ...a.routes.get('web')?.weights }, { blue: 10, green: 90 });

  // No balancer serves `web` in this one-node cluster: the deploy aborts before moving anything.
  const bg = await run(['blue-green', '-rpc-addr', rpc, '-service', 'web', '-from', 'blue', '-to', 'green', '-check-bake', '0s']);
  assert.equal(bg.code, 1);
  assert.match(bg.out, /aborted: no alive balancer serves web/);
  const st = await run(['status', '-rpc-addr', rpc, '-format', 'json']);
  const parsed = JSON.parse(st.out) as { current: { phase: string; spec: { expected: number } } };
  assert.equal(parsed.current.phase, 'aborted');
  const text = await run(['status', '-rpc-addr', rpc]);
  assert.match(text.out, /phase {3}aborted/);
  assert.match(text.out, /reason {2}no alive balancer/);
});
