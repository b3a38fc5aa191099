// Must-show of issue 6: killing the coordinator agent (kill -9) mid-deploy and restarting it with
// the same -data-dir resumes the deploy (re-publishing its split at a fresh ltime) or rolls it
// back — never half-switched: the balancer serves one colour at any sampled instant and, at the
// end, reports the route ltime the deploy published last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stateFilePath } from '../../src/deploy/state-file.ts';
import { blueServedGreenKnown, cli, deployStatus, spawnCoordinator, startCluster, until } from './cluster.ts';
import { freePort } from '../lib/agents.ts';

test('kill -9 of the coordinator mid-bake, restart with the same -data-dir: the deploy resumes and ends, the balancer never serves both colours', { timeout: 90_000 }, async (t) => {
  const c = await startCluster('deploy-resume');
  t.after(() => c.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'kodama-coord-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const ports = { rpc: await freePort(), serf: await freePort() };
  let coord = await spawnCoordinator('coord', c.seed, dataDir, ports);
  t.after(() => coord.stop());

  const sampler = await blueServedGreenKnown(c, coord.rpcAddr);
  const { mixtures } = sampler;
  t.after(() => sampler.stop());
  const load = c.startLoad(80_000);
  await until('load flows', 5000, () => load.records.length > 50);

  const start = await cli(coord.rpcAddr, ['blue-green', '-service', 'web', '-from', 'blue', '-to', 'green', '-check-bake', '1s', '-bake', '6s', '-drain-timeout', '10s', '-apply-timeout', '10s', '-detach']);
  assert.equal(start.code, 0, `${start.out}${start.err}`);
  const before = await until('bake', 30_000, async () => {
    const s = await deployStatus(coord.rpcAddr);
    return s?.phase === 'bake' ? s : undefined;
  }, 100);
  await new Promise((r) => setTimeout(r, 1000));
  const killAt = Date.now();
  await coord.kill9();
  const onDisk = JSON.parse(await readFile(stateFilePath(dataDir), 'utf8')) as { current: { phase: string; routeLTime: number } };
  assert.equal(onDisk.current.phase, 'bake', 'the state file says bake at the kill');
  await new Promise((r) => setTimeout(r, 1000));

  coord = await spawnCoordinator('coord', c.seed, dataDir, ports);
  const restartedAt = Date.now();
  const end = await until('the resumed deploy ends', 40_000, async () => {
    const s = await deployStatus(coord.rpcAddr).catch(() => undefined);
    return s !== undefined && ['done', 'rolled-back', 'failed', 'aborted'].includes(s.phase) ? s : undefined;
  }, 200);
  const endedAt = Date.now();
  assert.ok(end.phase === 'done' || end.phase === 'rolled-back', `ended ${end.phase}: ${end.reason}`);
  assert.equal(end.id, before.id);
  assert.ok(end.events.some((e) => /resumed after a restart in phase bake/.test(e.msg)), end.events.map((e) => e.msg).join(' | '));
  assert.ok(end.routeLTime > before.routeLTime, `re-published at a fresh ltime (${before.routeLTime} → ${end.routeLTime})`);
  assert.ok(coord.lines.some((l) => /resumed in phase bake/.test(l)), coord.lines.slice(-10).join('\n'));

  // The balancer applied exactly the deploy's last route and serves what it says.
  const report = await c.role.report();
  assert.equal(report.services['web']?.routeLTime, end.routeLTime);
  assert.equal(c.lb.routes.get('web')?.by, end.id);
  assert.deepEqual(c.ready(), end.phase === 'done' ? ['g1:green', 'g2:green'] : ['b1:blue', 'b2:blue']);

  const sum = await load.stop();
  sampler.stop();
  t.diagnostic(
    `deploy ${end.id} ${end.phase}; ltime at kill ${onDisk.current.routeLTime}, after resume ${end.routeLTime}; ` +
      `restart → end ${endedAt - restartedAt} ms (kill → restart ${restartedAt - killAt} ms); load ${sum.sent} requests, ${sum.failed} failed ` +
      `(${sum.failures.map((f) => `${f.status}@kill${f.startMs - killAt >= 0 ? '+' : ''}${f.startMs - killAt}ms`).join(', ')}); ` +
      `ready-set samples ${sampler.samples()}, mixtures ${mixtures.length}`,
  );
  assert.deepEqual(mixtures, []);
  assert.ok(sampler.samples() > 100);
  // No request fails because of the kill or the resume (the only failures the HAProxy driver
  // currently produces are at the cutover itself, before the kill — see blue-green.test.ts).
  assert.deepEqual(sum.failures.filter((f) => f.startMs >= killAt).map((f) => f.status), []);
});
