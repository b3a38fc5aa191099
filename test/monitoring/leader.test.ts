// Two monitors, real agents: only the leader (alive mon=1 member with the lowest name) runs the
// handlers; the other shadows the same incidents. When the leader crashes, the other alerts its
// failure and takes over the open incident without re-alerting it: the recovery is resolved
// exactly once, by the new leader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MonitoringCluster, sleep, waitFor } from './harness.ts';
import { rpcMembers } from '../interop/harness.ts';

test('leader handover: one create from mon-1, mon-1 crashes → mon-2 alerts its failure and resolves the open incident once', { timeout: 90_000 }, async (t) => {
  const c = new MonitoringCluster();
  t.after(() => c.stop());
  await c.startMonitor('mon-1');
  await c.startMonitor('mon-2');
  const webs = await Promise.all(['web-1', 'web-2'].map((w) => c.startWeb(w)));
  await Promise.all(webs.map((w) => c.rpcUp(w)));
  let view = '';
  await waitFor(
    'mon-2 sees both monitors (mon=1) and both web nodes with passing chk tags',
    30_000,
    async () => {
      const ms = await rpcMembers(c.agent('mon-2').rpcAddr);
      view = JSON.stringify(ms?.map((m) => [m.name, m.status, m.tags]));
      const alive = (n: string): boolean => ms?.some((m) => m.name === n && m.status === 'alive') === true;
      const chk = (n: string): boolean => ms?.some((m) => m.name === n && m.tags['chk'] === '1') === true;
      const mon = (n: string): boolean => ms?.some((m) => m.name === n && m.tags['mon'] === '1') === true;
      return alive('web-1') && alive('web-2') && chk('web-1') && chk('web-2') && mon('mon-1') && mon('mon-2') ? true : undefined;
    },
    () => `mon-2's view: ${view}\n${c.logs()}`,
  );

  c.setMarker('web-1', true);
  await waitFor('a create for web-1', 20_000, () => (c.alertsFor('web-1', 'create').length > 0 ? true : undefined), () => `${c.describeAlerts()}\n${c.logs()}`, 100);
  await sleep(2000);
  const creates = c.alertsFor('web-1', 'create');
  assert.equal(creates.length, 1, `one create, from the leader only:\n${c.describeAlerts()}`);
  assert.equal(creates[0]!.monitor, 'mon-1');

  const crashedAt = Date.now();
  c.crash('mon-1');
  await waitFor('mon-2 alerts mon-1 failed', 30_000, () => (c.alertsFor('mon-1', 'create', 'member').length > 0 ? true : undefined), () => `${c.describeAlerts()}\n${c.logs()}`, 100);
  console.log(`mon-1: kill -9 → member-failed alert from mon-2 ${Date.now() - crashedAt} ms`);
  const failed = c.alertsFor('mon-1');
  assert.equal(failed.length, 1, c.describeAlerts());
  assert.equal(failed[0]!.monitor, 'mon-2');

  const recoveredAt = Date.now();
  c.setMarker('web-1', false);
  await waitFor('a resolve for web-1', 20_000, () => (c.alertsFor('web-1', 'resolve').length > 0 ? true : undefined), () => `${c.describeAlerts()}\n${c.logs()}`, 100);
  console.log(`web-1: recovery → resolve from the new leader ${Date.now() - recoveredAt} ms`);
  await sleep(2000);
  const resolves = c.alertsFor('web-1', 'resolve');
  assert.equal(resolves.length, 1, `exactly one resolve:\n${c.describeAlerts()}`);
  assert.equal(resolves[0]!.monitor, 'mon-2');
  assert.equal(c.alertsFor('web-1', 'create').length, 1, `the takeover did not re-alert the open incident:\n${c.describeAlerts()}`);
  assert.deepEqual(c.alertsFor('web-2'), [], c.describeAlerts());
  assert.deepEqual(c.alertsFor('mon-2'), [], c.describeAlerts());
});
