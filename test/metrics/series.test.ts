// The pure part of performance by role: the bounded history, downsampling to a grid, the wire
// form that must fit a query response, and the per-role view (percentiles per step, outliers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIELDS,
  FIELD_NAMES,
  History,
  coarsen,
  decodeSeries,
  downsample,
  encodeSeries,
  encodedSizeAtMost,
  outliersOf,
  planWindow,
  pointsThatFit,
  roleView,
} from '../../src/metrics/series.ts';
import type { Series } from '../../src/metrics/series.ts';
import { encodeMetricsRequest, parseMetricsRequest } from '../../src/metrics/protocol.ts';
import { diskBytes, memUsedPercent, netBytes, procStatCpu, HostSampler } from '../../src/metrics/sampler.ts';
import { monotonicMs, systemClock } from '../../src/transport/clock.ts';

const F = FIELDS.length;
const row = (cpu: number): number[] => Array.from({ length: F }, (_, i) => (i === 0 ? cpu : i));

test('history keeps the newest `capacity` samples, oldest first', () => {
  const h = new History(3);
  for (let i = 0; i < 5; i++) h.push(i * 1000, row(i));
  const seen: [number, number][] = [];
  h.forEach((t, v) => seen.push([t, v(0)]));
  assert.deepEqual(seen, [[2000, 2], [3000, 3], [4000, 4]]);
  assert.equal(h.size, 3);
});

test('downsample: each bucket is the mean of its samples; empty buckets are NaN', () => {
  const h = new History(100);
  // samples at 100 s .. 159 s, cpu = the second
  for (let t = 100; t < 160; t++) h.push(t * 1000, row(t));
  const s = downsample(h, 160, 20, 4, ['cpu', 'rss']);
  const cpu = [...s.fields.get('cpu')!];
  assert.ok(Number.isNaN(cpu[0]!), 'bucket 80-100 s has no sample');
  assert.deepEqual(cpu.slice(1), [109.5, 129.5, 149.5]);
  assert.equal(s.fields.get('rss')![1], FIELD_NAMES.indexOf('rss'));
  const c = coarsen(s, 2);
  assert.equal(c.n, 2);
  assert.equal(c.stepS, 40);
  assert.deepEqual([...c.fields.get('cpu')!], [109.5, 139.5], 'groups end at endS; NaN buckets do not count');
});

test('the wire form round-trips to 1/65534 of each series\' largest value, keeps gaps, and fits the size it promised', () => {
  const arr = (xs: number[]): Float64Array => Float64Array.from(xs);
  const s: Series = {
    endS: 1_765_000_000,
    stepS: 10,
    n: 5,
    fields: new Map([
      ['cpu', arr([0, 12.34, NaN, 99.99, 50])],
      ['net', arr([0, 1.5e9, 3e3, NaN, 7])],
      ['load', arr([0.01, 0.02, 0, 0, 0])],
    ]),
  };
  const asked = ['cpu', 'net', 'load', 'rss'];
  const text = encodeSeries(s, asked);
  assert.ok(Buffer.byteLength(text) <= encodedSizeAtMost(asked.length, 5), text);
  const back = decodeSeries(text, asked)!;
  assert.equal(back.endS, s.endS);
  for (const [f, xs] of s.fields) {
    const ys = back.fields.get(f)!;
    const max = Math.max(...[...xs].filter((x) => !Number.isNaN(x)));
    xs.forEach((x, i) => {
      if (Number.isNaN(x)) assert.ok(Number.isNaN(ys[i]!), `${f}[${i}] stays missing`);
      else assert.ok(Math.abs(ys[i]! - x) <= Math.max(1e-3, max / 65534), `${f}[${i}]: ${x} → ${ys[i]}`);
    });
  }
  assert.ok([...back.fields.get('rss')!].every(Number.isNaN), 'a field the node lacks is all missing');
  for (const bad of ['', 'null', '{"e":1,"s":0,"n":1,"f":[]}', '{"e":1,"s":1,"n":2,"f":[[0,"AAA="]]}', '{"e":1,"s":1,"n":1,"f":[[0,"AAA="],[0,"AAA="],[0,"AAA="]]}']) {
    assert.equal(decodeSeries(bad, ['cpu', 'load']), undefined, bad);
  }
  // An older agent answering fewer fields: the first ones filled, the rest missing.
  const older = decodeSeries(encodeSeries(s, ['cpu']), ['cpu', 'net'])!;
  assert.equal(older.fields.get('cpu')![1]!.toFixed(2), '12.34');
  assert.ok([...older.fields.get('net')!].every(Number.isNaN));
});

test('an answer of every figure at the points that fit stays under the response limit', () => {
  const n = pointsThatFit(FIELD_NAMES.length, 1024 - 128);
  assert.ok(n >= 30, `${n} points: a 5-minute window at 10 s in one answer`);
  const h = new History(400);
  for (let t = 0; t < 400; t++) h.push(t * 10_000, Array.from({ length: F }, () => Math.random() * 1e9));
  const text = encodeSeries(downsample(h, 4000, 10, n, FIELD_NAMES), FIELD_NAMES);
  assert.ok(Buffer.byteLength(text) <= 1024 - 128, `${Buffer.byteLength(text)} bytes`);
});

test('planWindow: whole sampling intervals, aligned end, no more buckets than fit', () => {
  assert.deepEqual(planWindow(1005, 300, 10, 30), { endS: 1010, stepS: 10, n: 30 });
  assert.deepEqual(planWindow(1005, 3600, 10, 30), { endS: 1080, stepS: 120, n: 30 });
  assert.deepEqual(planWindow(1005, 900, 10, 31), { endS: 1020, stepS: 30, n: 30 });
});

test('outliers: the node far from the median is named; an idle spread or two nodes name nobody', () => {
  assert.deepEqual(outliersOf({ a: 1.2, b: 2.0, c: 96 }, 10).map((o) => o.node), ['c']);
  assert.deepEqual(outliersOf({ a: 1.0, b: 1.1, c: 1.3 }, 10), []);
  assert.deepEqual(outliersOf({ a: 1, b: 90 }, 10), []);
  // A wide but even spread is no outlier: 3 robust deviations.
  assert.deepEqual(outliersOf({ a: 10, b: 30, c: 50, d: 70, e: 90 }, 10), []);
  assert.deepEqual(outliersOf({ a: 40, b: 41, c: 42, d: 43, e: 44, f: 2 }, 10).map((o) => o.node), ['f']);
});

test('roleView: percentiles per step across nodes on the asker grid, means per node', () => {
  const mk = (cpu: number[]): Series => ({ endS: 100, stepS: 10, n: cpu.length, fields: new Map([['cpu', Float64Array.from(cpu)]]) });
  const v = roleView('web', new Map([['w1', mk([1, 2, 3])], ['w2', mk([2, 2, 2])], ['w3', mk([90, 95, NaN])]]), { endS: 100, stepS: 10, n: 3 }, ['cpu']);
  const cpu = v.fields[0]!;
  assert.deepEqual(cpu.steps.map((s) => [s.t, s.count, s.min, s.p50, s.max]), [[70, 3, 1, 2, 90], [80, 3, 2, 2, 95], [90, 2, 2, 2, 3]]);
  assert.deepEqual(cpu.outliers.map((o) => o.node), ['w3']);
  assert.equal(cpu.nodes['w3'], 92.5);
  // A node answering on a coarser grid (its limit made it coarsen) still lands in every bucket.
  const coarse: Series = { endS: 100, stepS: 20, n: 2, fields: new Map([['cpu', Float64Array.from([5, 7])]]) };
  const v2 = roleView('web', new Map([['w4', coarse]]), { endS: 100, stepS: 10, n: 4 }, ['cpu']);
  assert.deepEqual(v2.fields[0]!.steps.map((s) => s.p50), [5, 5, 7, 7]);
});

test('a query payload is checked: bad ones refused with why; fields by count or by name', () => {
  assert.equal(encodeMetricsRequest({ endS: 100, stepS: 10, n: 3, fields: [...FIELD_NAMES] }, FIELD_NAMES), '{"e":100,"s":10,"n":3,"f":9}');
  assert.deepEqual(parseMetricsRequest('{"e":100,"s":10,"n":3,"f":2}', FIELD_NAMES), { endS: 100, stepS: 10, n: 3, fields: ['cpu', 'load'] });
  assert.deepEqual(parseMetricsRequest('{"e":100,"s":10,"n":3,"f":20}', ['cpu']), { endS: 100, stepS: 10, n: 3, fields: ['cpu'] }, 'an older agent answers what it knows');
  assert.match(parseMetricsRequest('{"e":100,"s":10,"n":3,"f":0}', FIELD_NAMES) as string, /count must be 1 to 64/);
  assert.deepEqual(parseMetricsRequest('{"e":100,"s":10,"n":3,"f":["cpu","future"]}', FIELD_NAMES), { endS: 100, stepS: 10, n: 3, fields: ['cpu', 'future'] });
  assert.deepEqual(parseMetricsRequest('{"e":100,"s":10,"n":3}', FIELD_NAMES), { endS: 100, stepS: 10, n: 3, fields: [...FIELD_NAMES] });
  assert.match(parseMetricsRequest('nope', FIELD_NAMES) as string, /not JSON/);
  assert.match(parseMetricsRequest('{"e":100,"s":10,"n":99999}', FIELD_NAMES) as string, /'n'/);
  assert.match(parseMetricsRequest('{"e":100,"s":10,"n":3,"f":["x"]}', FIELD_NAMES) as string, /no field/);
});

test('host readers parse /proc as Linux writes it', () => {
  assert.deepEqual(procStatCpu('cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n'), { busy: 161, total: 981 });
  assert.equal(memUsedPercent('MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable:  250 kB\n'), 75);
  assert.equal(diskBytes('   8       0 sda 10 0 100 0 20 0 300 0 0 0 0\n   8       1 sda1 10 0 100 0 20 0 300 0 0 0 0\n', new Set(['sda'])), 400 * 512);
  assert.equal(netBytes('Inter-|   Receive\n face |bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 100 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n'), 150);
});

test('a live sample has every figure on Linux (rates from the second sample on); loop delay from a late timer', async () => {
  const s = new HostSampler();
  const first = s.sample(Date.now());
  assert.ok(Number.isNaN(first[0]!), 'no CPU rate from one sample');
  // An agent timer due in 30 ms while the loop is stalled for 120 ms fires ~90 ms late.
  const fired = new Promise<void>((resolve) => systemClock.setTimer(monotonicMs() + 30, resolve));
  const t = Date.now();
  while (Date.now() - t < 120);
  await fired;
  await new Promise((r) => setTimeout(r, 50));
  const second = s.sample(Date.now());
  FIELD_NAMES.forEach((f, i) => assert.ok(Number.isFinite(second[i]!), `${f} = ${second[i]}`));
  assert.ok(second[FIELD_NAMES.indexOf('rss')]! > 10, 'RSS in MiB');
  assert.ok(second[FIELD_NAMES.indexOf('loop_delay')]! >= 60, `the 120 ms stall shows: ${second[FIELD_NAMES.indexOf('loop_delay')]} ms`);
  // No timer fired since: no figure rather than a made-up 0.
  assert.ok(Number.isNaN(s.sample(Date.now())[FIELD_NAMES.indexOf('loop_delay')]!));
});
