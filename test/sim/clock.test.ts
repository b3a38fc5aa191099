import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/sim/clock.ts';
import { SimError } from '../../src/sim/errors.ts';
import { SeededRandom } from '../../src/sim/random.ts';

test('timers fire in time order, ties in the order they were set, time jumps to each', () => {
  const c = new VirtualClock();
  const seen: string[] = [];
  c.setTimer(30, () => seen.push(`c@${c.now()}`));
  c.setTimer(10, () => seen.push(`a@${c.now()}`));
  c.setTimer(10, () => seen.push(`b@${c.now()}`));
  c.setTimer(50, () => seen.push('late'));
  c.runUntil(40);
  assert.deepEqual(seen, ['a@10', 'b@10', 'c@30']);
  assert.equal(c.now(), 40);
  assert.equal(c.pending(), 1);
  c.runFor(10);
  assert.deepEqual(seen.at(-1), 'late');
});

test('cancelled timers never fire; past times fire at now, not inside setTimer', () => {
  const c = new VirtualClock({ startMs: 100 });
  let fired = 0;
  const h = c.setTimer(150, () => fired++);
  h.cancel();
  h.cancel(); // idempotent
  c.setTimer(5, () => {
    assert.equal(c.now(), 100);
    fired += 10;
  });
  assert.equal(fired, 0);
  c.runUntil(200);
  assert.equal(fired, 10);
  assert.equal(c.pending(), 0);
  assert.throws(() => c.runUntil(150), (e: unknown) => e instanceof SimError && e.code === 'ERR_SIM_TIME');
});

test('timers armed by timers run in the same call when due', () => {
  const c = new VirtualClock();
  const seen: number[] = [];
  const tick = (): void => {
    seen.push(c.now());
    if (seen.length < 5) c.setTimer(c.now() + 100, tick);
  };
  c.setTimer(0, tick);
  c.runUntil(1000);
  assert.deepEqual(seen, [0, 100, 200, 300, 400]);
});

test('a timer loop at the same instant throws ERR_SIM_MAX_STEPS instead of hanging', () => {
  const c = new VirtualClock({ maxSteps: 1000 });
  const loop = (): void => {
    c.setTimer(c.now(), loop);
  };
  c.setTimer(0, loop);
  assert.throws(() => c.runFor(1), (e: unknown) => e instanceof SimError && e.code === 'ERR_SIM_MAX_STEPS');
});

test('heap order holds for many random timers with cancellations (compaction path)', () => {
  const c = new VirtualClock();
  const r = new SeededRandom(3);
  const fired: Array<[number, number]> = [];
  const handles = [];
  for (let i = 0; i < 5000; i++) {
    const at = r.int(1000);
    handles.push({ at, i, h: c.setTimer(at, () => fired.push([c.now(), i])) });
  }
  const cancelled = new Set<number>();
  for (const x of handles) {
    if (x.i % 3 !== 0) {
      x.h.cancel();
      cancelled.add(x.i);
    }
  }
  assert.equal(c.pending(), 5000 - cancelled.size);
  c.runUntil(1000);
  assert.equal(fired.length, 5000 - cancelled.size);
  for (let k = 1; k < fired.length; k++) {
    const [t0, i0] = fired[k - 1]!;
    const [t1, i1] = fired[k]!;
    assert.ok(t0 < t1 || (t0 === t1 && i0 < i1), `out of order at ${k}`);
  }
  for (const [, i] of fired) assert.ok(!cancelled.has(i));
});

test('runUntilTrue stops at the first check that holds, or at the deadline', () => {
  const c = new VirtualClock();
  let x = 0;
  c.setTimer(250, () => (x = 1));
  assert.equal(c.runUntilTrue(() => x === 1, 10_000, 100), true);
  assert.equal(c.now(), 300);
  assert.equal(c.runUntilTrue(() => false, 1000, 100), false);
  assert.equal(c.now(), 1000);
});
