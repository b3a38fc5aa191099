import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LamportClock } from '../../src/serf/lamport.ts';

test('lamport clock: increment, witness newer, ignore older', () => {
  const c = new LamportClock();
  assert.equal(c.time(), 0);
  assert.equal(c.increment(), 1);
  c.witness(5);
  assert.equal(c.time(), 6);
  c.witness(3);
  assert.equal(c.time(), 6);
  c.witness(6); // equal to current still moves past it
  assert.equal(c.time(), 7);
});
