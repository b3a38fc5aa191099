import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBalancerReport, encodeBalancerReport } from '../../src/discovery/backends-report.ts';
import type { BackendReport, BalancerReport } from '../../src/deploy/types.ts';

function backend(i: number, extra: Partial<BackendReport> = {}): BackendReport {
  return { id: `web-${String(i).padStart(2, '0')}`, state: 'ready', weight: 256, value: i % 2 === 0 ? 'blue' : 'green', active: 0, requests: 1000 + i, errors: i % 3, ...extra };
}

function report(n: number, extra: (i: number) => Partial<BackendReport> = () => ({})): BalancerReport {
  return {
    node: 'lb-1',
    driver: 'haproxy',
    services: { web: { routeLTime: 42, backends: Array.from({ length: n }, (_, i) => backend(i, extra(i))) } },
  };
}

const enc = new TextEncoder();

test('backends report: a small report round-trips unchanged', () => {
  const r = report(3);
  const b = encodeBalancerReport(r, 1024);
  assert.ok(b.byteLength <= 1024);
  const d = decodeBalancerReport(b);
  assert.ok(d !== undefined);
  assert.equal(d.node, 'lb-1');
  assert.equal(d.driver, 'haproxy');
  assert.deepEqual(Object.keys(d.services), ['web']);
  assert.deepEqual(d.services.web, r.services.web);
});

test('backends report: an oversized report drops backends to fit and counts them', () => {
  const r = report(40);
  for (const limit of [1024, 600, 300]) {
    const b = encodeBalancerReport(r, limit);
    assert.ok(b.byteLength <= limit, `${b.byteLength} <= ${limit}`);
    const d = decodeBalancerReport(b);
    const web = d?.services.web;
    assert.ok(web !== undefined);
    assert.equal(web.routeLTime, 42);
    assert.ok(web.backends.length > 0 && web.backends.length < 40);
    assert.equal(web.backends.length + (web.truncated ?? 0), 40, 'every backend listed or counted');
    // Listed ones are the originals, untouched.
    for (const x of web.backends) assert.deepEqual(x, r.services.web?.backends.find((y) => y.id === x.id));
  }
});

test('backends report: backends with work in flight are the last left out', () => {
  // Backends 30 (drain, active) and 5 (ready, active) must survive; idle ones go first.
  const r = report(40, (i) => (i === 30 ? { state: 'drain', active: 3 } : i === 5 ? { active: 7 } : {}));
  const d = decodeBalancerReport(encodeBalancerReport(r, 400));
  const ids = d?.services.web?.backends.map((b) => b.id) ?? [];
  assert.ok(ids.includes('web-30') && ids.includes('web-05'), ids.join(','));
  assert.ok((d?.services.web?.truncated ?? 0) > 0);
});

test('backends report: the input is not modified by truncation', () => {
  const r = report(40);
  encodeBalancerReport(r, 300);
  assert.equal(r.services.web?.backends.length, 40);
  assert.equal(r.services.web?.truncated, undefined);
});

test('backends report: malformed answers decode to undefined, never throw', () => {
  const good = JSON.parse(new TextDecoder().decode(encodeBalancerReport(report(2), 1024))) as Record<string, unknown>;
  const bad: unknown[] = [
    'not json',
    'null',
    '[]',
    '"text"',
    { ...good, node: '' },
    { ...good, node: 7 },
    { ...good, driver: 'nginx' },
    { ...good, services: [] },
    { ...good, services: { web: { routeLTime: -1, backends: [] } } },
    { ...good, services: { web: { routeLTime: 1.5, backends: [] } } },
    { ...good, services: { web: { routeLTime: 1, backends: {} } } },
    { ...good, services: { web: { routeLTime: 1, backends: [], truncated: 'x' } } },
    { ...good, services: { web: { routeLTime: 1, backends: [{ id: 'a', state: 'up', weight: 1, active: 0, requests: 0, errors: 0 }] } } },
    { ...good, services: { web: { routeLTime: 1, backends: [{ id: 'a', state: 'ready', weight: 1, active: 0, requests: 0 }] } } },
    { ...good, services: { web: { routeLTime: 1, backends: [{ id: 'a', state: 'ready', weight: 1, value: 3, active: 0, requests: 0, errors: 0 }] } } },
    { ...good, services: { web: { routeLTime: 1, backends: [null] } } },
  ];
  for (const x of bad) {
    const bytes = enc.encode(typeof x === 'string' ? x : JSON.stringify(x));
    assert.equal(decodeBalancerReport(bytes), undefined, typeof x === 'string' ? x : JSON.stringify(x));
  }
  assert.equal(decodeBalancerReport(new Uint8Array([0xff, 0xfe, 0x7b])), undefined);
  assert.ok(decodeBalancerReport(enc.encode(JSON.stringify(good))) !== undefined, 'the unmodified answer decodes');
});

test('backends report: a service named __proto__ is data', () => {
  const r: BalancerReport = { node: 'lb', driver: 'embedded', services: JSON.parse('{"__proto__":{"routeLTime":1,"backends":[]}}') as BalancerReport['services'] };
  const d = decodeBalancerReport(encodeBalancerReport(r, 1024));
  assert.ok(d !== undefined);
  assert.deepEqual(Object.keys(d.services), ['__proto__']);
  assert.equal(d.services['__proto__']?.routeLTime, 1);
});
