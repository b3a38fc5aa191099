// Must-show of issue 6 (deploys) through real HAProxy under steady load: a blue → green cutover
// with `kodama deploy blue-green` finishes with 0 failed requests and blue takes nothing after
// its drain; `kodama deploy rollback` after done and an automatic rollback (a green node fails
// its health check during bake) also fail no request; the balancer never serves blue and green
// together (every route here is 100/0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import { blueServedGreenKnown, cli, deployStatus, startCluster, until } from './cluster.ts';
import { freePort } from '../lib/agents.ts';

const FAST = ['-check-bake', '1s', '-drain-timeout', '10s', '-apply-timeout', '10s'];

test('blue → green under HAProxy load via kodama deploy: done, blue flat after its drain; rollback after done; health-gate rollback; error-rate-gate rollback; never both colours ready', { timeout: 90_000 }, async (t) => {
  const c = await startCluster('deploy-bg');
  t.after(() => c.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'kodama-coord-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const rpcAddr = `127.0.0.1:${await freePort()}`;
  const coordLines: string[] = [];
  const coord = createAgent({ nodeName: 'coord', bind: '127.0.0.1:0', rpcAddr, profile: 'local', dataDir, logLevel: 'INFO', logSink: (l) => coordLines.push(l) });
  await coord.start();
  t.after(() => coord.stop());
  assert.ok((await coord.join([c.seed])).num > 0);

  // Sample what HAProxy serves every 25 ms for the whole test: never both colours.
  const sampler = await blueServedGreenKnown(c, rpcAddr);
  const { mixtures } = sampler;
  t.after(() => sampler.stop());

  const load = c.startLoad(80_000);
  await until('load flows', 5000, () => load.records.length > 50);
  const blueCount = (): number => (c.webs.get('b1')?.page.requests ?? 0) + (c.webs.get('b2')?.page.requests ?? 0);

  // 1. the cutover, followed live by the CLI
  const t0 = Date.now();
  let blueAtBake: number | undefined;
  const live: string[] = [];
  const r1 = await cli(rpcAddr, ['blue-green', '-service', 'web', '-from', 'blue', '-to', 'green', '-bake', '3s', ...FAST], (line) => {
    live.push(`${Date.now() - t0}ms ${line}`);
    if (/ bake .*drained/.test(line)) blueAtBake = blueCount();
  });
  const cutoverMs = Date.now() - t0;
  assert.equal(r1.code, 0, `${r1.out}\n${r1.err}`);
  assert.match(r1.out, /: done: web serves green only/);
  for (const p of ['check', 'shift', 'drain', 'bake']) assert.match(r1.out, new RegExp(` ${p} `), `live line for ${p}`);
  assert.ok(blueAtBake !== undefined, `no drain line in ${r1.out}`);
  await new Promise((r) => setTimeout(r, 1000));
  const blueAfter = blueCount();
  assert.deepEqual(c.ready(), ['g1:green', 'g2:green']);
  const st1 = await deployStatus(rpcAddr);
  assert.equal(st1?.phase, 'done');
  const report = await c.role.report();
  assert.equal(report.services['web']?.routeLTime, st1.routeLTime, 'the balancer applied the deploy’s last route');

  // 2. `kodama deploy rollback` after done
  const t1 = Date.now();
  const r2 = await cli(rpcAddr, ['rollback', '-reason', 'e2e: back to blue']);
  const rollbackMs = Date.now() - t1;
  assert.equal(r2.code, 0, `${r2.out}\n${r2.err}`);
  assert.match(r2.out, /rolled-back/);
  await until('blue serves again', 10_000, () => c.ready().join(' ') === 'b1:blue b2:blue');

  // 3. a new deploy whose bake fails its health gate (g2's health check starts failing)
  const t2 = Date.now();
  const watcher = cli(rpcAddr, ['blue-green', '-service', 'web', '-from', 'blue', '-to', 'green', '-bake', '30s', ...FAST]);
  await until('deploy 3 bakes', 30_000, async () => (await deployStatus(rpcAddr))?.phase === 'bake', 100);
  const sickAt = Date.now();
  const g2 = c.webs.get('g2');
  assert.ok(g2);
  g2.page.healthy = false;
  const r3 = await watcher;
  const gateMs = Date.now() - sickAt;
  assert.equal(r3.code, 1, r3.out);
  assert.match(r3.out, /rolled-back: health gate: 1\/2 green node\(s\) healthy/);
  await until('blue serves after the automatic rollback', 10_000, () => c.ready().join(' ') === 'b1:blue b2:blue');
  const autoMs = Date.now() - t2;

  // 4. the error-rate gate: during bake g1's page starts answering 500
  g2.page.healthy = true;
  const t3 = Date.now();
  const watcher4 = cli(rpcAddr, ['blue-green', '-service', 'web', '-from', 'blue', '-to', 'green', '-bake', '30s', '-max-error-rate', '0.05', '-min-requests', '20', ...FAST]);
  await until('deploy 4 bakes', 30_000, async () => (await deployStatus(rpcAddr))?.phase === 'bake', 100);
  const failingAt = Date.now();
  const g1 = c.webs.get('g1');
  assert.ok(g1);
  g1.page.failing = true;
  const r4 = await watcher4;
  const errorGateMs = Date.now() - failingAt;
  assert.equal(r4.code, 1, r4.out);
  assert.match(r4.out, /rolled-back: error-rate gate: \d+\/\d+ = [\d.]+ > 0.05 on green/);
  await until('blue serves after the error-rate rollback', 10_000, () => c.ready().join(' ') === 'b1:blue b2:blue');
  const stopFailingAt = Date.now();
  g1.page.failing = false;
  const deploy4Ms = Date.now() - t3;

  const sum = await load.stop();
  // The 500s g1 answered on purpose are the gate's input, not deploy failures. The page decides
  // when it answers (10 ms after the request started), so the window opens a little earlier.
  const from500 = failingAt - 100;
  const on500 = load.records.filter((r) => r.status === 500 && r.node === 'g1' && r.startMs >= from500 && r.startMs <= stopFailingAt).length;
  const unexpected = load.records.filter((r) => !r.ok && !(r.status === 500 && r.node === 'g1' && r.startMs >= from500 && r.startMs <= stopFailingAt));
  sampler.stop();
  t.diagnostic(
    `load: ${sum.sent} requests, ${sum.failed} failed, ${sum.requestsPerSec} req/s, p99 ${sum.p99Ms} ms, by node ${JSON.stringify(sum.byNode)}; ` +
      `cutover ${cutoverMs} ms (bake 3 s), blue requests at bake ${blueAtBake} → ${blueAfter} 1 s after done; ` +
      `rollback after done ${rollbackMs} ms; health gate → rolled-back ${gateMs} ms after g2 turned sick (deploy 3 in all ${autoMs} ms); ` +
      `error-rate gate → rolled-back ${errorGateMs} ms after g1 answered 500 (${on500} answers of 500 in that time; deploy 4 in all ${deploy4Ms} ms); ` +
      `ready-set samples ${sampler.samples()}, mixtures ${mixtures.length}`,
  );
  const rel = (ms: number): string => `cutover+${ms - t0} rollback+${ms - t1} deploy3+${ms - t2} deploy4+${ms - t3}`;
  t.diagnostic(`failures other than g1's deliberate 500s: ${unexpected.map((f) => `${rel(f.startMs)} ${f.status}${f.node ? ` from ${f.node}` : ''}`).join('; ') || 'none'}`);
  t.diagnostic(`live output of the cutover:\n${live.join('\n')}`);
  assert.equal(blueAfter, blueAtBake, 'blue took requests after its drain');
  assert.deepEqual(mixtures, []);
  assert.ok(sampler.samples() > 100);
  // Only g1's deliberate 500s may fail: every cutover and rollback itself loses nothing (the
  // HAProxy driver puts new backends in rotation before it drains old ones).
  assert.deepEqual(unexpected.map((f) => `${rel(f.startMs)} ${f.status}`), []);
});
