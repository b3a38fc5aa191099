import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckRunner } from '../../src/checks/runner.ts';
import type { CheckResultEvent } from '../../src/checks/runner.ts';
import type { MonitorCheckSpec } from '../../src/checks/types.ts';
import type { ProbeResult, ProbeSpec, ProbeTarget } from '../../src/probes/types.ts';

function spec(name: string, over: Partial<MonitorCheckSpec> = {}): MonitorCheckSpec {
  return {
    name, intervalMs: 100, subscriptions: [], ttlStatus: 2, lowFlapThreshold: 0, highFlapThreshold: 0,
    probe: { kind: 'script', command: `probe-${name}`, timeoutMs: 100 }, ...over,
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function harness(checks: MonitorCheckSpec[], probe: (s: ProbeSpec, t: ProbeTarget) => Promise<ProbeResult>) {
  const logs: string[] = [];
  const events: CheckResultEvent[] = [];
  let activeChanges = 0;
  const runner = new CheckRunner({
    checks,
    log: (level, msg) => logs.push(`${level} ${msg}`),
    onResult: (e) => events.push(e),
    onActiveChange: () => activeChanges++,
    probe,
    random: () => 0,
  });
  return { runner, logs, events, activeChanges: () => activeChanges };
}

test('only checks whose subscriptions match the tags run; a tag change starts and stops them', async (t) => {
  const calls: string[] = [];
  const h = harness([spec('web', { subscriptions: ['role=web'] }), spec('all'), spec('db', { subscriptions: ['role=db'] })], async (s) => {
    calls.push(s.kind === 'script' ? s.command : s.kind);
    return { status: s.kind === 'script' && s.command === 'probe-web' ? 2 : 0, output: 'out', durationMs: 1 };
  });
  t.after(() => h.runner.stop());
  h.runner.start({ role: 'web' });
  assert.deepEqual(h.runner.activeChecks().sort(), ['all', 'web']);
  await until(() => h.runner.records().length === 2, 'two records');
  assert.equal(h.runner.summary(), '2;web=c1');
  assert.ok(!calls.includes('probe-db'));
  assert.ok(h.logs.some((l) => l === 'WARN checks: web is critical (1x): out'), h.logs.join('\n'));
  const changesBefore = h.activeChanges();
  h.runner.setTags({ role: 'db' });
  assert.equal(h.activeChanges(), changesBefore + 1);
  assert.deepEqual(h.runner.activeChecks().sort(), ['all', 'db']);
  assert.ok(!h.runner.records().some((r) => r.name === 'web'), 'a stopped check has no record');
  const webRuns = calls.filter((c) => c === 'probe-web').length;
  await until(() => h.runner.records().length === 2, 'db recorded');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls.filter((c) => c === 'probe-web').length, webRuns, 'web no longer runs');
  assert.equal(h.runner.summary(), '2');
  assert.equal(h.runner.counters()['stopped'], 1);
});

test('a slow probe never overlaps itself; occurrences count up', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  let runs = 0;
  const h = harness([spec('slow')], async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    runs++;
    await new Promise((r) => setTimeout(r, 250)); // 2.5 × the interval
    inFlight--;
    return { status: 1, output: 'slow', durationMs: 250 };
  });
  t.after(() => h.runner.stop());
  h.runner.start({});
  await until(() => runs >= 4, 'four runs', 5000);
  assert.equal(maxInFlight, 1);
  const rec = h.runner.records()[0];
  assert.ok(rec !== undefined && rec.occurrences >= 3);
  assert.equal(h.runner.summary(), `1;slow=w${rec.occurrences}`);
});

test('TTL check: expires to ttl_status with a clear output, recovers with a pushed result', async (t) => {
  const h = harness([spec('hb', { probe: undefined, ttlMs: 200, ttlStatus: 1 })], async () => {
    throw new Error('a TTL check has no probe');
  });
  t.after(() => h.runner.stop());
  h.runner.start({});
  assert.equal(h.runner.records().length, 0, 'no result before the first deadline');
  assert.equal(h.runner.pushResult('hb', 0, 'alive'), undefined);
  assert.equal(h.runner.summary(), '1');
  await until(() => h.runner.records()[0]?.status === 1, 'expiry');
  assert.equal(h.runner.records()[0]?.output, 'TTL expired: no result for 0.2 s');
  await until(() => (h.runner.records()[0]?.occurrences ?? 0) >= 2, 'a second expiry');
  assert.equal(h.runner.pushResult('hb', 0, 'back'), undefined);
  assert.equal(h.runner.records()[0]?.status, 0);
  assert.equal(h.runner.records()[0]?.output, 'back');
  assert.ok(h.events.some((e) => e.previous?.status === 1 && e.record.status === 0));
  assert.ok((h.runner.counters()['ttl_expired'] ?? 0) >= 2);
});

test('pushResult refuses unknown checks, checks not running here and bad statuses', (t) => {
  const h = harness([spec('a', { probe: undefined, ttlMs: 60_000 }), spec('w', { probe: undefined, ttlMs: 60_000, subscriptions: ['role=web'] })], async () => ({ status: 0, output: '', durationMs: 0 }));
  t.after(() => h.runner.stop());
  h.runner.start({ role: 'db' });
  assert.match(h.runner.pushResult('nope', 0, '') ?? '', /no check named "nope"/);
  assert.match(h.runner.pushResult('w', 0, '') ?? '', /does not run on this node/);
  assert.match(h.runner.pushResult('a', 7 as 0, '') ?? '', /status must be 0, 1, 2 or 3/);
  assert.equal(h.runner.pushResult('a', 2, 'x'.repeat(2000)), undefined);
  assert.ok((h.runner.records()[0]?.output.length ?? 0) <= 512);
});

test('a probe that rejects is an unknown result, not a crash; the target defaults to this node', async (t) => {
  const targets: ProbeTarget[] = [];
  const h = harness([spec('boom'), spec('db', { probe: { kind: 'tcp', timeoutMs: 50 }, target: { host: '10.0.0.9', port: 5432 } })], async (s, target) => {
    targets.push(target);
    if (s.kind === 'script') throw new Error('nope');
    return { status: 0, output: '', durationMs: 0 };
  });
  t.after(() => h.runner.stop());
  h.runner.start({});
  await until(() => h.runner.records().length === 2, 'both');
  const boom = h.runner.records().find((r) => r.name === 'boom');
  assert.equal(boom?.status, 3);
  assert.match(boom?.output ?? '', /check failed to run: nope/);
  assert.ok(targets.some((x) => x.host === '127.0.0.1'));
  assert.ok(targets.some((x) => x.host === '10.0.0.9' && x.port === 5432));
});

test('a real script check: exit status and first line (Nagios contract)', async (t) => {
  const { runProbe } = await import('../../src/probes/index.ts');
  const h = harness([spec('real', { probe: { kind: 'script', command: 'echo "DISK WARNING - 91% used"; echo more; exit 1', timeoutMs: 2000 }, intervalMs: 5000 })], runProbe);
  t.after(() => h.runner.stop());
  h.runner.start({});
  await until(() => h.runner.records().length === 1, 'result');
  assert.equal(h.runner.records()[0]?.status, 1);
  assert.equal(h.runner.records()[0]?.output, 'DISK WARNING - 91% used');
});
