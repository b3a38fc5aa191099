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

// The queue's order, checked against the plainest model of it: every queued item in one list,
// sorted (fewest transmits, longest, newest) before each pick.
test('queue: random queues, replacements, picks and prunes take what the plain model takes', () => {
  const seed = 20261207;
  let x = seed;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  type M = { key: string | undefined; len: number; id: number; transmits: number; tag: number };
  let n = 50;
  const q = new TransmitLimitedQueue(2, () => n);
  let model: M[] = [];
  let nextId = 1;
  const finished: string[] = [];
  const modelFinished: string[] = [];
  for (let step = 0; step < 5000; step++) {
    const op = rnd(10);
    if (op < 5) {
      const key = rnd(3) === 0 ? undefined : `k${rnd(40)}`;
      const len = [20, 20, 20, 35, 60, 7][rnd(6)]!;
      const tag = step;
      const msg = new Uint8Array(len);
      msg[0] = tag & 255;
      msg[1] = tag >> 8;
      q.queue({ key, msg, finished: (t) => finished.push(`${tag}:${t}`) });
      if (key !== undefined) {
        const old = model.find((m) => m.key === key);
        if (old !== undefined) {
          model = model.filter((m) => m !== old);
          modelFinished.push(`${old.tag}:false`);
        }
      }
      model.push({ key, len, id: nextId++, transmits: 0, tag });
    } else if (op < 9) {
      const overhead = rnd(4);
      const limit = 10 + rnd(200);
      const got = q.getBroadcasts(overhead, limit).map((m) => m[0]! | (m[1]! << 8));
      const max = retransmitLimit(2, n);
      const want: number[] = [];
      const taken: M[] = [];
      let used = 0;
      const sorted = [...model].sort((a, b) => a.transmits - b.transmits || b.len - a.len || b.id - a.id);
      for (const m of sorted) {
        if (m.len + overhead <= limit - used) {
          used += m.len + overhead;
          want.push(m.tag);
          taken.push(m);
        }
      }
      for (const m of taken) {
        m.transmits++;
        if (m.transmits >= max) {
          model = model.filter((o) => o !== m);
          modelFinished.push(`${m.tag}:true`);
        }
      }
      assert.deepEqual(got, want, `seed ${seed}, step ${step}`);
    } else if (rnd(4) === 0) {
      const keep = rnd(30);
      q.prune(keep);
      if (model.length > keep) {
        const byAge = [...model].sort((a, b) => a.id - b.id).slice(0, model.length - keep);
        model = model.filter((m) => !byAge.includes(m));
        for (const m of byAge) modelFinished.push(`${m.tag}:false`);
      }
    } else {
      n = 2 + rnd(2000);
    }
    assert.equal(q.length, model.length, `seed ${seed}, step ${step}`);
    assert.deepEqual(finished, modelFinished, `seed ${seed}, step ${step}`);
  }
});
