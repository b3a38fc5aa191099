// Issue 4's must-show script through real HAProxy (Debian's 2.6): the same script as the
// embedded proxy, plus 0 reloads for ordinary joins/leaves and a restart that brings back the
// same backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { HaproxyBalancer } from '../../src/balancer/haproxy/index.ts';
import { answeredBy, fmt, runMustShow, startScenario, until } from './scenario.ts';
import { summarise } from '../../src/demo/loadgen.ts';

test('HAProxy: join ≤ 1 s, graceful leave 0 failures, kill -9 only until removed, 0 reloads, restart keeps the backends', { timeout: 120_000 }, async (t) => {
  const sc = await startScenario({ driver: 'haproxy' });
  t.after(() => sc.close());
  const driver = sc.role.driver as HaproxyBalancer;
  assert.equal(driver.kind, 'haproxy');
  const f = await runMustShow(sc, 'haproxy');

  // One more join so the restart has two backends to bring back.
  await sc.addWeb('web-4');
  await sc.waitBackends('web-3 and web-4 ready', 20_000, (bs) => bs.map((b) => `${b.id}:${b.state}`).join() === 'web-3:ready,web-4:ready');
  const counters = sc.role.counters();
  console.log(`[haproxy] figures ${JSON.stringify(f)}; counters ${JSON.stringify(counters)}`);
  assert.equal(counters.reloads, 0, 'no reload for 4 joins, a graceful leave and a death');
  assert.ok((counters.runtime_commands ?? 0) > 0);
  assert.equal((await driver.showProc()).reloads, 0, "HAProxy master's own reload count");

  // --- restart HAProxy under load: the same backends come back.
  const load = sc.startLoad(30_000);
  await until('load reaches web-3 and web-4', 10_000, () => answeredBy(load.records, 'web-3').length > 0 && answeredBy(load.records, 'web-4').length > 0);
  const before = sc.backends();
  const restartAt = Date.now();
  await driver.restart();
  const restartedAt = Date.now();
  await until('both answer after the restart', 10_000, () => {
    const after = load.records.filter((r) => r.startMs >= restartedAt && r.ok);
    return after.some((r) => r.node === 'web-3') && after.some((r) => r.node === 'web-4') ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 500));
  const during = summarise(load.records, restartAt, restartedAt);
  const after = summarise(load.records, restartedAt, Date.now());
  console.log(`[haproxy] restart took ${restartedAt - restartAt} ms; during: ${fmt(during)}; after: ${fmt(after)}`);
  assert.deepEqual(sc.backends(), before);
  assert.deepEqual(Object.keys(after.byNode).sort(), ['web-3', 'web-4'], 'traffic reaches the same nodes');
  assert.equal(after.failed, 0);
  const stats = await driver.stats('web');
  assert.deepEqual(stats.map((s) => s.id).sort(), ['web-3', 'web-4']);
  const cfg = await readFile(driver.configPath, 'utf8');
  for (const n of ['web-3', 'web-4']) assert.ok(cfg.includes(`127.0.0.1:${sc.nodes.get(n)?.port}`), `${n} in ${driver.configPath}`);
  await load.stop();
  assert.equal(sc.role.counters().reloads, 0, 'a restart is not a reload');
});
