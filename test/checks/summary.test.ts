import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSummary, encodeSummary, summarize } from '../../src/checks/summary.ts';
import { SUMMARY_MAX_BYTES } from '../../src/checks/types.ts';
import type { CheckRecord, CheckStatus } from '../../src/checks/types.ts';

function rec(name: string, status: CheckStatus, occurrences = 1, flapping = false): CheckRecord {
  return { name, status, output: '', occurrences, history: [status], flapping, percentStateChange: 0, lastRunAt: 0, lastChangeAt: 0 };
}

test('all passing encodes as the count only', () => {
  assert.equal(encodeSummary(summarize([rec('a', 0), rec('b', 0, 7)])), '2');
  assert.equal(encodeSummary(summarize([])), '0');
  assert.deepEqual(decodeSummary('2'), { total: 2, entries: [], omitted: 0 });
});

test('the types.ts example round-trips; worst first', () => {
  const s = summarize([rec('load', 1, 1, true), rec('disk', 2, 3), ...Array.from({ length: 8 }, (_, i) => rec(`ok${i}`, 0))]);
  assert.equal(encodeSummary(s), '10;disk=c3,load=w1f');
  assert.deepEqual(decodeSummary('10;disk=c3,load=w1f'), {
    total: 10,
    entries: [
      { name: 'disk', status: 2, occurrences: 3, flapping: false },
      { name: 'load', status: 1, occurrences: 1, flapping: true },
    ],
    omitted: 0,
  });
  assert.deepEqual(decodeSummary('10;disk=c3,+4')?.omitted, 4);
});

test('occurrences beyond 20 read as 20, so a steady failure stops changing the tag', () => {
  const a = encodeSummary(summarize([rec('disk', 2, 20)]));
  const b = encodeSummary(summarize([rec('disk', 2, 25)]));
  assert.equal(a, '1;disk=c20');
  assert.equal(a, b);
});

test('a passing check that flaps is listed as p', () => {
  const v = encodeSummary(summarize([rec('x', 0, 2, true)]));
  assert.equal(v, '1;x=p2f');
  assert.equal(decodeSummary(v)?.entries[0]?.status, 0);
});

test('over the size cap: the worst are kept and +K counts the rest', () => {
  const recs: CheckRecord[] = [];
  for (let i = 0; i < 30; i++) recs.push(rec(`warning-check-${String(i).padStart(2, '0')}`, 1, 2));
  recs.push(rec('zz-critical', 2, 1));
  recs.push(rec('yy-unknown', 3, 1));
  const v = encodeSummary(summarize(recs));
  assert.ok(v.length <= SUMMARY_MAX_BYTES, `${v.length} bytes`);
  const d = decodeSummary(v);
  assert.ok(d !== undefined);
  assert.equal(d.total, 32);
  assert.equal(d.entries[0]?.name, 'zz-critical');
  assert.equal(d.entries[1]?.name, 'yy-unknown');
  assert.equal(d.entries.length + d.omitted, 32);
  assert.ok(d.omitted > 0);
  assert.match(v, /,\+\d+$/);
});

test('decode rejects malformed values without throwing', () => {
  for (const bad of ['', 'x', '-1', '3;', '3;disk', '3;disk=x1', '3;disk=c0', '3;disk=c21', '1;a=c1,b=c1', '3;a=c1,a=w1',
    '3;+2,a=c1', '3;a=p1', '01', '3;a b=c1', '3;a=c1,,b=c1', 'x'.repeat(5000)]) {
    assert.equal(decodeSummary(bad), undefined, bad);
  }
  assert.equal(decodeSummary(undefined as unknown as string), undefined);
});

test('encoding is deterministic whatever the record order', () => {
  const r = [rec('b', 2, 1), rec('a', 2, 1), rec('c', 1, 4)];
  assert.equal(encodeSummary(summarize(r)), encodeSummary(summarize([...r].reverse())));
  assert.equal(encodeSummary(summarize(r)), '3;a=c1,b=c1,c=w3');
});

test('occurrences are published at steps 1, 2, 3, 5, 10, 20 only (fewer tag updates)', () => {
  const published = Array.from({ length: 25 }, (_, i) => encodeSummary(summarize([rec('d', 2, i + 1)])));
  assert.deepEqual([...new Set(published)], ['1;d=c1', '1;d=c2', '1;d=c3', '1;d=c5', '1;d=c10', '1;d=c20']);
  assert.equal(published[3], '1;d=c3', 'a 4th occurrence is published as 3');
  assert.equal(published[24], '1;d=c20', 'capped at 20');
});
