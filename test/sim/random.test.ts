import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom, seedFromEnv } from '../../src/sim/random.ts';
import { SimError } from '../../src/sim/errors.ts';

test('same seed gives the same stream; different seeds differ', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const c = new SeededRandom(43);
  const sa = Array.from({ length: 100 }, () => a.next32());
  const sb = Array.from({ length: 100 }, () => b.next32());
  const sc = Array.from({ length: 100 }, () => c.next32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
});

test('float is in [0,1) with a sane mean; int(n) covers [0,n) roughly uniformly', () => {
  const r = new SeededRandom(7);
  let sum = 0;
  const N = 100_000;
  for (let i = 0; i < N; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    sum += f;
  }
  assert.ok(Math.abs(sum / N - 0.5) < 0.01, `mean ${sum / N}`);
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < N; i++) counts[r.int(10)]!++;
  for (const c of counts) assert.ok(Math.abs(c - N / 10) < N / 100, `bucket ${c}`);
  assert.throws(() => r.int(0), (e: unknown) => e instanceof SimError && e.code === 'ERR_SIM_RANGE');
  assert.throws(() => r.chance(1.5), (e: unknown) => e instanceof SimError && e.code === 'ERR_SIM_RANGE');
  assert.equal(r.chance(0), false);
  assert.equal(r.chance(1), true);
});

test('bytes(n) has the right length and is not constant', () => {
  const r = new SeededRandom(1);
  const b = r.bytes(13);
  assert.equal(b.length, 13);
  assert.ok(new Set(b).size > 3);
});

test('fork depends on seed and label only, not on how much the parent was used', () => {
  const p1 = new SeededRandom(99);
  const p2 = new SeededRandom(99);
  for (let i = 0; i < 1000; i++) p2.next32();
  const f1 = p1.fork('node-1');
  const f2 = p2.fork('node-1');
  assert.deepEqual([f1.next32(), f1.next32()], [f2.next32(), f2.next32()]);
  const g = p1.fork('node-2');
  assert.notEqual(p1.fork('node-1').next32(), g.next32());
  // forking does not advance the parent
  const q1 = new SeededRandom(5);
  const q2 = new SeededRandom(5);
  q1.fork('x');
  assert.equal(q1.next32(), q2.next32());
});

test('seedFromEnv: KODAMA_SEED overrides the default, garbage is refused', () => {
  assert.equal(seedFromEnv(12, {}), 12);
  assert.equal(seedFromEnv(12, { KODAMA_SEED: '777' }), 777);
  assert.throws(() => seedFromEnv(12, { KODAMA_SEED: 'abc' }), SimError);
});
