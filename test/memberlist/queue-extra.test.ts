import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransmitLimitedQueue, retransmitLimit } from '../../src/memberlist/queue.ts';

test('a broadcast with extraTransmits is sent that many times beyond the retransmit limit', () => {
  const q = new TransmitLimitedQueue(2, () => 5);
  const limit = retransmitLimit(2, 5);
  assert.equal(limit, 2);
  let finished = 0;
  q.queue({ key: 'self', msg: new Uint8Array([1]), extraTransmits: 4, finished: () => finished++ });
  q.queue({ key: 'other', msg: new Uint8Array([2]) });
  const sends = { self: 0, other: 0 };
  for (let i = 0; i < 20 && q.length > 0; i++) {
    for (const m of q.getBroadcasts(2, 1400)) {
      if (m[0] === 1) sends.self++;
      else sends.other++;
    }
  }
  assert.deepEqual(sends, { self: limit + 4, other: limit });
  assert.equal(finished, 1);
  assert.equal(q.length, 0);
});
