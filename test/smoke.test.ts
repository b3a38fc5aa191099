import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransmitLimitedQueue, retransmitLimit } from '../src/memberlist/queue.ts';

test('retransmit limit follows mult × ceil(log10(N+1))', () => {
  assert.equal(retransmitLimit(4, 2), 4);
  assert.equal(retransmitLimit(4, 10), 8);
  assert.equal(retransmitLimit(4, 99), 8);
  assert.equal(retransmitLimit(4, 100), 12);
});

test('queue: fewest transmits first, largest fitting, key invalidation, retire at limit', () => {
  let n = 2;
  const q = new TransmitLimitedQueue(1, () => n);
  const done: string[] = [];
  q.queue({ key: 'a', msg: new Uint8Array(10), finished: (t) => done.push(`a1:${t}`) });
  q.queue({ key: 'a', msg: new Uint8Array(11), finished: (t) => done.push(`a2:${t}`) });
  q.queue({ msg: new Uint8Array(30), finished: (t) => done.push(`big:${t}`) });
  assert.deepEqual(done, ['a1:false']);
  assert.equal(q.length, 2);
  // limit 1 transmission (mult 1 × ceil(log10(3))=1): both go once and retire.
  const first = q.getBroadcasts(2, 100);
  assert.deepEqual(first.map((m) => m.length), [30, 11]);
  assert.equal(q.length, 0);
  assert.deepEqual(done.sort(), ['a1:false', 'a2:true', 'big:true']);
  n = 100; // limit 3
  q.queue({ msg: new Uint8Array(50) });
  q.queue({ msg: new Uint8Array(60) });
  assert.deepEqual(q.getBroadcasts(0, 55).map((m) => m.length), [50]);
  // the 60-byte one has fewer transmits now and comes first
  assert.deepEqual(q.getBroadcasts(0, 200).map((m) => m.length), [60, 50]);
  q.prune(1);
  assert.equal(q.length, 1);
});
