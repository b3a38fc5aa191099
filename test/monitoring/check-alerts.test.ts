// Must-show, with real agents: 5 web nodes + 1 monitor whose script handler (filter occurrences 2)
// writes each alert to a file.
//   1. A check failing on 2 of the 5 web nodes → exactly one create per failing node, sent only
//      once the check has ≥ 2 occurrences; nothing for the 3 healthy nodes. Recovery → exactly
//      one resolve per node.
//   2. A silence on one node's check → no alert while it is silenced (the check is seen failing
//      meanwhile); when the silence expires the held alert fires.
// Latencies (marker → alert file) are printed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MonitoringCluster, sleep, waitFor } from './harness.ts';
import { rpcMembers } from '../interop/harness.ts';

const WEBS = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
const FAILING = ['web-2', 'web-4'];
/** After the expected alerts arrived: how long we keep watching for unwanted extra ones. */
const SETTLE_MS = 3000;

test('checks → alerts through a script handler: occurrences filter, one create and one resolve per failing node, silences hold alerts until they expire', { timeout: 90_000 }, async (t) => {
  const c = new MonitoringCluster({ occurrences: 2 });
  t.after(() => c.stop());
  await c.startMonitor('mon-1');
  const webs = await Promise.all(WEBS.map((w) => c.startWeb(w)));
  await Promise.all(webs.map((w) => c.rpcUp(w)));
  // Formed: the monitor sees every web node alive, each publishing an all-passing `chk` tag.
  await waitFor(
    'monitor sees 5 web nodes with passing chk tags',
    30_000,
    async () => {
      const ms = await rpcMembers(c.agent('mon-1').rpcAddr);
      const ok = WEBS.every((w) => ms?.some((m) => m.name === w && m.status === 'alive' && m.tags['chk'] === '1'));
      return ok ? true : undefined;
    },
    () => c.logs(),
  );
  assert.deepEqual(c.alerts(), [], `no alert while everything passes:\n${c.describeAlerts()}`);

  // ---- 1. two of five fail ----
  const failedAt = Date.now();
  for (const w of FAILING) c.setMarker(w, true);
  const createdAt = new Map<string, number>();
  await waitFor(
    'a create for each failing node',
    25_000,
    () => {
      for (const w of FAILING) if (!createdAt.has(w) && c.alertsFor(w, 'create').length > 0) createdAt.set(w, Date.now());
      return createdAt.size === FAILING.length ? true : undefined;
    },
    () => `${c.describeAlerts()}\n${c.logs()}`,
    100,
  );
  await sleep(SETTLE_MS);
  for (const w of FAILING) {
    const creates = c.alertsFor(w, 'create');
    assert.equal(creates.length, 1, `exactly one create for ${w}:\n${c.describeAlerts()}`);
    const e = creates[0]!;
    assert.equal(e.kind, 'check');
    assert.equal(e.check.name, 'marker');
    assert.equal(e.check.state, 'critical');
    assert.equal(e.check.status, 2);
    assert.ok(e.check.occurrences >= 2, `occurrences filter honoured: alerted at ${e.check.occurrences} occurrences`);
    assert.equal(e.monitor, 'mon-1');
    assert.equal(e.entity.tags['role'], 'web');
    console.log(`${w}: marker → create alert ${createdAt.get(w)! - failedAt} ms (alerted at ${e.check.occurrences} occurrences)`);
  }
  for (const w of WEBS.filter((x) => !FAILING.includes(x))) {
    assert.deepEqual(c.alertsFor(w), [], `no alert for healthy ${w}:\n${c.describeAlerts()}`);
  }

  const recoveredAt = Date.now();
  for (const w of FAILING) c.setMarker(w, false);
  const resolvedAt = new Map<string, number>();
  await waitFor(
    'a resolve for each recovered node',
    25_000,
    () => {
      for (const w of FAILING) if (!resolvedAt.has(w) && c.alertsFor(w, 'resolve').length > 0) resolvedAt.set(w, Date.now());
      return resolvedAt.size === FAILING.length ? true : undefined;
    },
    () => `${c.describeAlerts()}\n${c.logs()}`,
    100,
  );
  await sleep(SETTLE_MS);
  for (const w of FAILING) {
    assert.equal(c.alertsFor(w, 'resolve').length, 1, `exactly one resolve for ${w}:\n${c.describeAlerts()}`);
    assert.equal(c.alertsFor(w, 'create').length, 1, `still exactly one create for ${w}:\n${c.describeAlerts()}`);
    const r = c.alertsFor(w, 'resolve')[0]!;
    assert.equal(r.check.name, 'marker');
    assert.equal(r.check.state, 'passing');
    console.log(`${w}: recovery → resolve alert ${resolvedAt.get(w)! - recoveredAt} ms`);
  }
  assert.equal(c.alerts().length, 2 * FAILING.length, `only those four alerts:\n${c.describeAlerts()}`);

  // ---- 2. a silenced check: held while silenced, alerted once the silence expires ----
  const silenceMs = 12_000;
  const add = await c.cli(['silence', 'add', '-node=web-3', '-check=marker', `-expire=${silenceMs / 1000}s`, '-reason=e2e']);
  assert.equal(add.code, 0, `silence add: ${add.stdout}${add.stderr}`);
  // The monitor knows the silence before the check starts failing; its expiry is the one the
  // CLI stamped (the CLI's own start-up time is already gone from it).
  const expiresAt = await waitFor('the monitor lists the silence', 10_000, async () => {
    const l = await c.cli(['silence', 'list', '-format=json']);
    if (l.code !== 0) return undefined;
    const doc = JSON.parse(l.stdout) as { silences: { node?: string; check?: string; expires_at: number | null }[] };
    const s = doc.silences.find((x) => x.node === 'web-3' && x.check === 'marker');
    return s?.expires_at ?? undefined;
  });
  assert.ok(expiresAt > Date.now() + 3000, `the silence still has a while to run (expires in ${expiresAt - Date.now()} ms)`);
  c.setMarker('web-3', true);
  // While silenced, the check is seen failing (≥ 2 occurrences: past the filter) and nothing alerts.
  await waitFor(
    'web-3/marker critical with ≥ 2 occurrences in kodama checks',
    Math.max(1000, expiresAt - Date.now() - 1000),
    async () => {
      const r = await c.cli(['checks', '-node=web-3', '-format=json']);
      const doc = JSON.parse(r.stdout) as { nodes: { node: string; checks: { name: string; state: string; occurrences: number }[] }[] };
      const chk = doc.nodes.find((n) => n.node === 'web-3')?.checks.find((x) => x.name === 'marker');
      return chk !== undefined && chk.state === 'critical' && chk.occurrences >= 2 ? true : undefined;
    },
    () => c.logs(),
  );
  for (let i = 0; i < 200 && Date.now() < expiresAt - 300; i++) {
    assert.deepEqual(c.alertsFor('web-3'), [], `no alert for web-3 while silenced:\n${c.describeAlerts()}`);
    await sleep(200);
  }
  assert.deepEqual(c.alertsFor('web-3'), [], `no alert for web-3 while silenced:\n${c.describeAlerts()}`);
  await waitFor('the held alert once the silence expired', 15_000, () => (c.alertsFor('web-3', 'create').length > 0 ? true : undefined), () => `${c.describeAlerts()}\n${c.logs()}`, 100);
  const heldAlertAt = Date.now();
  assert.ok(heldAlertAt >= expiresAt - 250, `the held alert came ${expiresAt - heldAlertAt} ms before the silence expired`);
  const held = c.alertsFor('web-3', 'create');
  assert.equal(held.length, 1, c.describeAlerts());
  assert.equal(held[0]!.check.name, 'marker');
  assert.equal(held[0]!.check.silenced, false);
  console.log(`web-3: silence expired → held alert ${heldAlertAt - expiresAt} ms later (occurrences ${held[0]!.check.occurrences})`);
  c.setMarker('web-3', false);
  await waitFor('web-3 resolve', 15_000, () => (c.alertsFor('web-3', 'resolve').length > 0 ? true : undefined), () => c.describeAlerts(), 100);
  await sleep(1000);
  assert.equal(c.alertsFor('web-3').length, 2, c.describeAlerts());
});
