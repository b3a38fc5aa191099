import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, encodeReport, REPORT_MAX_BYTES } from '../../src/checks/report.ts';
import { MetricsSampler } from '../../src/checks/metrics.ts';
import type { CheckRecord, CheckStatus } from '../../src/checks/types.ts';

const metrics = { load1: 0.5, load5: 0.4, load15: 0.3, memUsedBytes: 1_000_000_000, memTotalBytes: 8_000_000_000, cpuPercent: 12.5 };

function rec(name: string, status: CheckStatus, output: string, history: CheckStatus[] = Array<CheckStatus>(21).fill(status)): CheckRecord {
  return { name, status, output, occurrences: 3, history, flapping: false, percentStateChange: 0, lastRunAt: 1_700_000_000_000, lastChangeAt: 0 };
}

const size = (r: Parameters<typeof encodeReport>[0]): number => Buffer.byteLength(encodeReport(r), 'utf8');

test('small reports carry everything, history as digits, worst first', () => {
  const r = buildReport({ name: 'web-1' }, [rec('a', 0, 'OK'), rec('disk', 2, 'DISK CRITICAL', [0, 0, 2])], metrics);
  assert.equal(r.truncated, undefined);
  assert.equal(r.node, 'web-1');
  assert.deepEqual(r.checks.map((c) => c.name), ['disk', 'a']);
  assert.equal(r.checks[0]?.history, '002');
  assert.equal(r.checks[0]?.output, 'DISK CRITICAL');
  assert.deepEqual(r.metrics, metrics);
});

test('10 checks with long outputs fit in 1024 bytes: outputs clipped first', () => {
  const recs = Array.from({ length: 10 }, (_, i) => rec(`check-number-${i}`, (i % 4) as CheckStatus, `${'OUTPUT '.repeat(70)}#${i}`));
  const r = buildReport({ name: 'web-1', tags: { role: 'web' } }, recs, metrics);
  assert.ok(size(r) <= REPORT_MAX_BYTES, `${size(r)} bytes`);
  assert.equal(r.truncated, true);
  assert.equal(r.checks.length, 10, 'all ten still listed');
  assert.ok(r.checks.every((c) => c.output.length < 100));
  assert.deepEqual(r.tags, { role: 'web' });
  // the failing checks kept their histories as long as room allowed; every status survives
  assert.deepEqual(r.checks.map((c) => c.status).sort(), [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]);
});

test('the wire form leaves out flapping:false and empty outputs; JSON round-trips the rest', () => {
  const r = buildReport({ name: 'n' }, [rec('a', 0, ''), { ...rec('b', 2, 'bad'), flapping: true }], metrics);
  const parsed = JSON.parse(encodeReport(r)) as { checks: Record<string, unknown>[] };
  assert.deepEqual(parsed.checks[0], { name: 'b', status: 2, occurrences: 3, history: '2'.repeat(21), lastRunAt: 1_700_000_000_000, output: 'bad', flapping: true });
  assert.deepEqual(parsed.checks[1], { name: 'a', status: 0, occurrences: 3, history: '0'.repeat(21), lastRunAt: 1_700_000_000_000 });
});

test('when clipping is not enough: histories go, then passing checks, critical ones stay', () => {
  const recs = Array.from({ length: 30 }, (_, i) => rec(`a-rather-long-check-name-${String(i).padStart(2, '0')}`, i < 3 ? 2 : 0, 'x'.repeat(300)));
  const r = buildReport({ name: 'web-1' }, recs, metrics);
  assert.ok(size(r) <= REPORT_MAX_BYTES, `${size(r)} bytes`);
  assert.equal(r.truncated, true);
  assert.ok(r.checks.every((c) => c.history === undefined));
  assert.deepEqual(r.checks.map((c) => c.status), [2, 2, 2]);
});

test('multi-byte outputs are measured in bytes', () => {
  const recs = Array.from({ length: 10 }, (_, i) => rec(`c${i}`, 1, '警告'.repeat(200)));
  const r = buildReport({ name: 'n' }, recs, metrics);
  assert.ok(size(r) <= REPORT_MAX_BYTES, `${size(r)} bytes`);
});

test('the checks filter selects by name', () => {
  const r = buildReport({ name: 'n' }, [rec('a', 0, ''), rec('b', 2, ''), rec('c', 1, '')], metrics, { checks: ['a', 'c'] });
  assert.deepEqual(r.checks.map((c) => c.name).sort(), ['a', 'c']);
});

test('metrics: load, memory and a CPU percent from two samples', () => {
  const m = new MetricsSampler();
  const first = m.sample();
  assert.equal(first.cpuPercent, 0);
  assert.ok(first.memTotalBytes > 0 && first.memUsedBytes > 0 && first.memUsedBytes <= first.memTotalBytes);
  const until = Date.now() + 50;
  while (Date.now() < until) { /* burn a little CPU so the delta is not empty */ }
  const second = m.sample();
  assert.ok(second.cpuPercent >= 0 && second.cpuPercent <= 100);
  assert.ok(second.load1 >= 0);
});
