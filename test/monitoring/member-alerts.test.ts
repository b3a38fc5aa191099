// Must-show, with real agents: the seed's rule. A monitor + 3 kodama web nodes + a real
// `serf agent`, one script handler writing each alert to a file.
//   - kill -9 of a web node → exactly one member-failed alert (kind member, critical) for it;
//   - a real serf agent killed → one member-failed alert for it too (it has no checks);
//   - SIGTERM (graceful leave) of another web node → no alert, and its checks disappear from
//     `kodama checks -format json`.
// Detection latency (kill → alert file) is printed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MonitoringCluster, sleep, waitFor } from './harness.ts';
import { rpcMembers } from '../interop/harness.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

const WEBS = ['web-1', 'web-2', 'web-3'];

interface ChecksDoc {
  nodes: { node: string; status: string; answered: boolean; checks: { name: string; state: string }[] }[];
}

test('member alerts: kill -9 → one member-failed alert, a real serf node killed → one too, graceful leave → none and its checks are gone', { timeout: 90_000 }, async (t) => {
  const c = new MonitoringCluster();
  t.after(async () => {
    await stopAll();
    await c.stop();
  });
  await c.startMonitor('mon-1');
  const webs = await Promise.all(WEBS.map((w) => c.startWeb(w)));
  const serf = await startSerf('serf-1', { join: [`127.0.0.1:${c.agent('mon-1').port}`], tags: { role: 'legacy' } });
  await Promise.all(webs.map((w) => c.rpcUp(w)));
  await waitFor(
    'monitor sees the 3 web nodes (their check has run: chk 1) and serf-1 alive',
    30_000,
    async () => {
      const ms = await rpcMembers(c.agent('mon-1').rpcAddr);
      const webOk = WEBS.every((w) => ms?.some((m) => m.name === w && m.status === 'alive' && m.tags['chk'] === '1'));
      return webOk && ms?.some((m) => m.name === 'serf-1' && m.status === 'alive') === true ? true : undefined;
    },
    () => `${c.logs()}\n--- serf-1\n${serf.output().slice(-2000)}`,
  );
  // Before anything happens, web-2's check is listed by `kodama checks`.
  const before = JSON.parse((await c.cli(['checks', '-format=json'])).stdout) as ChecksDoc;
  assert.ok(
    before.nodes.some((n) => n.node === 'web-2' && n.answered && n.checks.some((x) => x.name === 'marker')),
    `web-2's marker check is listed first: ${JSON.stringify(before)}`,
  );
  assert.deepEqual(c.alerts(), [], c.describeAlerts());

  // ---- crash a kodama web node and the serf agent at once (three live peers remain to confirm) ----
  const killedAt = Date.now();
  c.crash('web-3');
  serf.signal('SIGKILL');
  const seenAt = new Map<string, number>();
  await waitFor(
    'member-failed alerts for web-3 and serf-1',
    30_000,
    () => {
      for (const n of ['web-3', 'serf-1']) if (!seenAt.has(n) && c.alertsFor(n, 'create', 'member').length > 0) seenAt.set(n, Date.now());
      return seenAt.size === 2 ? true : undefined;
    },
    () => `${c.describeAlerts()}\n${c.logs()}`,
    100,
  );
  for (const [n, at] of seenAt) console.log(`${n}: kill -9 → member-failed alert ${at - killedAt} ms`);

  // ---- graceful leave of web-2 ----
  const leftAt = Date.now();
  c.signal('web-2', 'SIGTERM');
  const code = await Promise.race([c.agent('web-2').exited, sleep(15_000).then(() => 'timeout' as const)]);
  assert.equal(code, 0, `web-2 exits cleanly after its leave (${String(code)})\n${c.agent('web-2').output().slice(-2000)}`);
  await c.waitMembers({ 'web-2': 'left' }, 15_000);
  console.log(`web-2: SIGTERM → left at the monitor after ${Date.now() - leftAt} ms`);
  // Watch long enough for a failure to have been detected and alerted had the leave been taken
  // for one (the crash above took the time printed there).
  const watchMs = Math.max(4000, Math.min(12_000, Math.max(...seenAt.values()) - killedAt));
  await sleep(watchMs);
  assert.deepEqual(c.alertsFor('web-2'), [], `no alert for the node that left:\n${c.describeAlerts()}`);
  const after = await c.cli(['checks', '-format=json']);
  const doc = JSON.parse(after.stdout) as ChecksDoc;
  assert.ok(!doc.nodes.some((n) => n.node === 'web-2'), `web-2's checks are gone from kodama checks: ${after.stdout}`);
  assert.ok(doc.nodes.some((n) => n.node === 'web-1' && n.checks.some((x) => x.name === 'marker')), `web-1 still listed: ${after.stdout}`);

  // Exactly one alert each for the crashed nodes, nothing else at all.
  for (const n of ['web-3', 'serf-1']) {
    const as = c.alertsFor(n);
    assert.equal(as.length, 1, `exactly one alert for ${n}:\n${c.describeAlerts()}`);
    const e = as[0]!;
    assert.equal(e.kind, 'member');
    assert.equal(e.action, 'create');
    assert.equal(e.check.name, 'member');
    assert.equal(e.check.state, 'critical');
    assert.equal(e.monitor, 'mon-1');
  }
  assert.equal(c.alertsFor('serf-1')[0]!.entity.tags['role'], 'legacy');
  assert.equal(c.alerts().length, 2, `only the two member-failed alerts:\n${c.describeAlerts()}`);
});
