import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextFlapping, percentStateChange, recordResult } from '../../src/checks/history.ts';
import type { CheckRecord, CheckStatus } from '../../src/checks/types.ts';

const flap = { lowFlapThreshold: 20, highFlapThreshold: 30 };

function feed(statuses: CheckStatus[], spec = flap): CheckRecord[] {
  const out: CheckRecord[] = [];
  let r: CheckRecord | undefined;
  statuses.forEach((s, i) => {
    r = recordResult(r, 'disk', { status: s, output: `o${i}`, at: 1000 + i, durationMs: 1 }, spec);
    out.push(r);
  });
  return out;
}

test('occurrences count consecutive equal statuses, capped at 20; lastChangeAt follows changes', () => {
  const recs = feed([0, 0, 2, 2, 2, ...Array<CheckStatus>(30).fill(2)], { lowFlapThreshold: 0, highFlapThreshold: 0 });
  assert.equal(recs[1]?.occurrences, 2);
  assert.equal(recs[2]?.occurrences, 1);
  assert.equal(recs[4]?.occurrences, 3);
  assert.equal(recs.at(-1)?.occurrences, 20);
  assert.equal(recs[4]?.lastChangeAt, 1002);
  assert.equal(recs[0]?.lastChangeAt, 1000);
  assert.equal(recs.at(-1)?.output, 'o34');
});

test('history keeps the last 21, oldest first', () => {
  const seq: CheckStatus[] = Array.from({ length: 30 }, (_, i) => (i % 4) as CheckStatus);
  const last = feed(seq, { lowFlapThreshold: 0, highFlapThreshold: 0 }).at(-1);
  assert.deepEqual(last?.history, seq.slice(-21));
});

test('percent state change: Sensu weights (0.82..1.20 over 20 transitions, divided by 20)', () => {
  const steady = Array<CheckStatus>(21).fill(0);
  assert.equal(percentStateChange(steady), 0);
  // Every result changes: sum of weights 0.82..1.20 = 20.2 → 101 % (Sensu 1.x gives the same).
  const alternating = Array.from({ length: 21 }, (_, i) => (i % 2 === 0 ? 0 : 2) as CheckStatus);
  assert.equal(percentStateChange(alternating), 101);
  // One change, at the newest result: weight 1.2 → 6 %; at the oldest transition: 0.82 → 4 %.
  assert.equal(percentStateChange([...Array<CheckStatus>(20).fill(0), 2]), 6);
  assert.equal(percentStateChange([0, ...Array<CheckStatus>(20).fill(2)]), 4);
  // Changes in the newer half weigh more than the same number in the older half.
  const older: CheckStatus[] = [0, 2, 0, 2, 0, 2, 0, ...Array<CheckStatus>(14).fill(0)];
  const newer: CheckStatus[] = [...Array<CheckStatus>(14).fill(0), 0, 2, 0, 2, 0, 2, 0];
  assert.ok(percentStateChange(newer) > percentStateChange(older));
  assert.equal(percentStateChange(older), 26); // (0.82+0.84+…+0.92)=5.22 → 26 %
  assert.equal(percentStateChange(newer), 34); // (1.10+…+1.20)=6.90 → 34.5 → 34 %
});

test('flapping starts at the high threshold and stops at or below the low one (hysteresis)', () => {
  assert.equal(nextFlapping(false, 29, 20, 30), false);
  assert.equal(nextFlapping(false, 30, 20, 30), true);
  assert.equal(nextFlapping(true, 25, 20, 30), true);
  assert.equal(nextFlapping(true, 21, 20, 30), true);
  assert.equal(nextFlapping(true, 20, 20, 30), false);
  assert.equal(nextFlapping(false, 101, 0, 0), false);
});

test('a check alternating ok/critical starts flapping, and stops once it settles', () => {
  const seq: CheckStatus[] = [...Array<CheckStatus>(5).fill(0), ...Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 2 : 0) as CheckStatus)];
  const recs = feed([...seq, ...Array<CheckStatus>(21).fill(0)]);
  const firstFlap = recs.findIndex((r) => r.flapping);
  assert.ok(firstFlap > 0 && firstFlap < 21, `flapping at ${firstFlap}`);
  assert.ok((recs[firstFlap]?.percentStateChange ?? 0) >= 30);
  assert.equal(recs[firstFlap - 1]?.flapping, false);
  const stop = recs.findIndex((r, i) => i > firstFlap && !r.flapping);
  assert.ok(stop > firstFlap);
  assert.ok((recs[stop]?.percentStateChange ?? 99) <= 20);
  // between start and stop it stayed flapping although the percentage dipped below 30
  assert.ok(recs.slice(firstFlap, stop).every((r) => r.flapping));
  assert.equal(recs.at(-1)?.flapping, false);
  assert.equal(recs.at(-1)?.percentStateChange, 0);
});

test('thresholds 0/0: never flapping', () => {
  const recs = feed(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? 0 : 2) as CheckStatus), { lowFlapThreshold: 0, highFlapThreshold: 0 });
  assert.ok(recs.every((r) => !r.flapping));
  assert.equal(recs.at(-1)?.percentStateChange, 101);
});
