// Rise/fall hysteresis of a service's health (pure; time is a number we pass in).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthTracker } from '../../src/discovery/health.ts';
import type { ProbeStatus } from '../../src/probes/types.ts';

const r = (status: ProbeStatus, output = `status ${status}`) => ({ status, output });

/** Feed statuses to check 0 and list the health after each one. */
function run(t: HealthTracker, statuses: ProbeStatus[], check = 0): string[] {
  return statuses.map((s, i) => {
    t.record(check, r(s), 1000 + i);
    return t.health;
  });
}

test('one check, rise 2 fall 2: starting until two passes, then flaps only after two failures', () => {
  const t = new HealthTracker([{ rise: 2, fall: 2 }], 0);
  assert.equal(t.health, 'starting');
  assert.equal(t.advertisement(), 'none');
  assert.deepEqual(run(t, [0, 0, 2, 0, 2, 2, 0, 2, 0, 0]), [
    'starting', 'healthy', // rise met on the 2nd pass
    'healthy', 'healthy', // one failure is not enough; the pass resets the streak
    'healthy', 'unhealthy', // two in a row
    'unhealthy', 'unhealthy', // one pass is not enough
    'unhealthy', 'healthy',
  ]);
});

test('warning (1) counts as passing; unknown (3) as failing', () => {
  const t = new HealthTracker([{ rise: 1, fall: 1 }], 0);
  assert.deepEqual(run(t, [1, 3, 1, 2, 0]), ['healthy', 'unhealthy', 'healthy', 'unhealthy', 'healthy']);
});

test('failures while starting make it unhealthy (not stuck in starting)', () => {
  const t = new HealthTracker([{ rise: 3, fall: 2 }], 0);
  assert.deepEqual(run(t, [2, 2, 0, 0, 0]), ['starting', 'unhealthy', 'unhealthy', 'unhealthy', 'healthy']);
});

test('the service is healthy iff every check is', () => {
  const t = new HealthTracker([{ rise: 1, fall: 1 }, { rise: 1, fall: 1 }], 0);
  t.record(0, r(0), 1);
  assert.equal(t.health, 'starting', 'check 1 has not passed yet');
  t.record(1, r(0), 2);
  assert.equal(t.health, 'healthy');
  const tr = t.record(1, r(2, 'GET /health: HTTP 503, expected 200'), 3);
  assert.deepEqual(tr, { health: 'unhealthy', previous: 'healthy', output: 'GET /health: HTTP 503, expected 200' });
  assert.equal(t.since, 3);
  assert.equal(t.record(0, r(0), 4), undefined, 'no transition: check 1 still down');
  assert.equal(t.health, 'unhealthy');
  assert.deepEqual(t.checkStates().map((c) => c.state), ['up', 'down']);
});

test('a service without checks is healthy at once', () => {
  const t = new HealthTracker([], 5);
  assert.equal(t.health, 'healthy');
  assert.equal(t.advertisement(), 'ready');
  assert.equal(t.since, 5);
});

test('transitions are reported once, with the previous state and time', () => {
  const t = new HealthTracker([{ rise: 2, fall: 1 }], 0);
  assert.equal(t.record(0, r(0), 10), undefined);
  assert.deepEqual(t.record(0, r(0, 'ok'), 20), { health: 'healthy', previous: 'starting', output: 'ok' });
  assert.equal(t.record(0, r(0), 30), undefined);
  assert.equal(t.since, 20);
  assert.equal(t.lastOutput, 'status 0');
});

test('drain is sticky; a healthy service advertises drain, an unhealthy one nothing', () => {
  const healthy = new HealthTracker([{ rise: 1, fall: 1 }], 0);
  healthy.record(0, r(0), 1);
  assert.deepEqual(healthy.drain(2), { health: 'draining', previous: 'healthy', output: '' });
  assert.equal(healthy.advertisement(), 'drain');
  assert.equal(healthy.drain(3), undefined);
  assert.equal(healthy.record(0, r(2), 4), undefined, 'checks no longer move a draining service');
  assert.equal(healthy.health, 'draining');
  assert.equal(healthy.advertisement(), 'drain');

  const sick = new HealthTracker([{ rise: 1, fall: 1 }], 0);
  sick.record(0, r(2), 1);
  sick.drain(2);
  assert.equal(sick.health, 'draining');
  assert.equal(sick.advertisement(), 'none');
  const starting = new HealthTracker([{ rise: 2, fall: 2 }], 0);
  starting.drain(1);
  assert.equal(starting.advertisement(), 'none');
});
