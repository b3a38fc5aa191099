// planService under routes (issue 6): which backends a split serves, with which weights, and how
// a route takes a colour out (drain like a graceful leave) and brings it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMembers, planService } from '../../src/discovery/backends.ts';
import type { MemberView, ServicePlan, ServiceState } from '../../src/discovery/backends.ts';
import type { RouteEntry } from '../../src/deploy/types.ts';

const SPEC = { service: 'web', minBackends: 0, drainTimeoutMs: 10_000 };

function node(name: string, color: string | undefined, opts: { status?: string; weight?: number; drain?: boolean; noService?: boolean } = {}): MemberView {
  const tags: Record<string, string> = {};
  if (color !== undefined) tags.color = color;
  if (opts.noService !== true) tags['s:web'] = `8080${opts.weight !== undefined ? `,w${opts.weight}` : ''}${opts.drain === true ? ',drain' : ''}`;
  return { name, addr: { ip: '10.0.0.' + name.replace(/\D/g, '') }, tags, status: opts.status ?? 'alive' };
}

function route(weights: Record<string, number>, ltime = 5, service = 'web', tag = 'color'): RouteEntry {
  return { service, tag, weights, by: 'test', ltime };
}

function plan(members: MemberView[], previous: ServiceState, r: RouteEntry | undefined, now = 1000, active?: Record<string, number>, spec = SPEC): ServicePlan {
  return planService(spec, decodeMembers(members), previous, now, active === undefined ? undefined : new Map(Object.entries(active)), r);
}

function set(p: ServicePlan): string[] {
  return p.backends.map((b) => `${b.id}:${b.state}:w${b.weight}`);
}

function changes(p: ServicePlan): string[] {
  return p.changes.map((c) => `${c.kind} ${c.backend.id}${c.kind === 'removed' ? `(${c.reason})` : c.kind === 'held' ? `(${c.why})` : ''}`);
}

/** Fraction of the total ready weight that goes to backends of `value`. */
function fraction(p: ServicePlan, value: string): number {
  let all = 0;
  let mine = 0;
  for (const b of p.state.values()) {
    if (b.state !== 'ready') continue;
    all += b.weight;
    if (b.value === value) mine += b.weight;
  }
  return mine / all;
}

test('route: p = 0 for a served backend drains it (not a failure), then removes it when idle', () => {
  const members = [node('b1', 'blue'), node('b2', 'blue'), node('g1', 'green')];
  const p0 = plan(members, new Map(), undefined);
  assert.deepEqual(set(p0), ['b1:ready:w100', 'b2:ready:w100', 'g1:ready:w100']);
  const p1 = plan(members, p0.state, route({ blue: 0, green: 100 }));
  assert.deepEqual(set(p1), ['b1:drain:w100', 'b2:drain:w100', 'g1:ready:w100']);
  assert.deepEqual(changes(p1), ['drain b1', 'drain b2']);
  assert.equal(p1.guard, undefined);
  // b1 still busy, b2 idle: only b2 leaves.
  const p2 = plan(members, p1.state, route({ blue: 0, green: 100 }), 2000, { b1: 2, b2: 0, g1: 5 });
  assert.deepEqual(set(p2), ['b1:drain:w100', 'g1:ready:w100']);
  assert.deepEqual(changes(p2), ['removed b2(idle)']);
  // Drain timeout for the busy one.
  const p3 = plan(members, p2.state, route({ blue: 0, green: 100 }), 1000 + SPEC.drainTimeoutMs, { b1: 2 });
  assert.deepEqual(set(p3), ['g1:ready:w100']);
  assert.deepEqual(changes(p3), ['removed b1(drain timeout)']);
});

test('route: a never-served backend with p = 0 (or no tag, or an unlisted value) is not added', () => {
  const members = [node('b1', 'blue'), node('g1', 'green'), node('x1', undefined), node('r1', 'red')];
  const p = plan(members, new Map(), route({ blue: 100, green: 0 }));
  assert.deepEqual(set(p), ['b1:ready:w100']);
  assert.deepEqual(changes(p), ['added b1']);
});

test('route: one value with p > 0 keeps the base weights', () => {
  const members = [node('b1', 'blue', { weight: 100 }), node('b2', 'blue', { weight: 50 }), node('g1', 'green')];
  const p = plan(members, new Map(), route({ blue: 100 }));
  assert.deepEqual(set(p), ['b1:ready:w100', 'b2:ready:w50']);
  // Also when the route lists a second value that has no ready backend.
  const q = plan(members.slice(0, 2), new Map(), route({ blue: 10, green: 90 }));
  assert.deepEqual(set(q), ['b1:ready:w100', 'b2:ready:w50']);
});

test('route: several values split by share whatever the node counts, largest weight 256', () => {
  const rows: { name: string; blue: number; green: number; weights: Record<string, number> }[] = [
    { name: '1 vs 1', blue: 1, green: 1, weights: { blue: 10, green: 90 } },
    { name: '3 blue vs 1 green', blue: 3, green: 1, weights: { blue: 10, green: 90 } },
    { name: '1 blue vs 5 green', blue: 1, green: 5, weights: { blue: 10, green: 90 } },
    { name: '4 vs 4 at 50/50', blue: 4, green: 4, weights: { blue: 50, green: 50 } },
    { name: '2 vs 3 at 90/10', blue: 2, green: 3, weights: { blue: 90, green: 10 } },
  ];
  for (const r of rows) {
    const members = [
      ...Array.from({ length: r.blue }, (_, i) => node(`b${i + 1}`, 'blue')),
      ...Array.from({ length: r.green }, (_, i) => node(`g${i + 1}`, 'green')),
    ];
    const p = plan(members, new Map(), route(r.weights));
    const ws = p.backends.map((b) => b.weight);
    assert.equal(Math.max(...ws), 256, r.name);
    assert.ok(ws.every((w) => w >= 1 && Number.isInteger(w)), r.name);
    const want = (r.weights.green ?? 0) / 100;
    // Rounding to integers out of 256 moves a share by well under a point.
    assert.ok(Math.abs(fraction(p, 'green') - want) < 0.01, `${r.name}: green ${fraction(p, 'green')} vs ${want}`);
    for (const b of p.state.values()) assert.equal(b.value, b.id.startsWith('b') ? 'blue' : 'green');
  }
});

test('route: base weights within a value keep their ratio; a tiny share is at least weight 1', () => {
  const members = [node('b1', 'blue', { weight: 100 }), node('b2', 'blue', { weight: 50 }), node('g1', 'green')];
  const p = plan(members, new Map(), route({ blue: 90, green: 10 }));
  // blue: 90×100/150 = 60, 90×50/150 = 30 → scaled 256, 128; green: 10 → 42.67 → 43.
  assert.deepEqual(set(p), ['b1:ready:w256', 'b2:ready:w128', 'g1:ready:w43']);
  const many = [...Array.from({ length: 10 }, (_, i) => node(`b${i + 1}`, 'blue')), node('g1', 'green')];
  const q = plan(many, new Map(), route({ blue: 1, green: 99 }));
  // blue each: 1×100/1000 = 0.1 of green's 99 → 0.26 → rounds to 0 → 1.
  assert.ok(q.backends.filter((b) => b.id.startsWith('b')).every((b) => b.weight === 1));
  assert.equal(q.backends.find((b) => b.id === 'g1')?.weight, 256);
});

test('route: a weight change of a served backend is an update in place', () => {
  const members = [node('b1', 'blue'), node('g1', 'green')];
  const p0 = plan(members, new Map(), route({ blue: 100, green: 0 }));
  const p1 = plan(members, p0.state, route({ blue: 90, green: 10 }, 6));
  assert.deepEqual(set(p1), ['b1:ready:w256', 'g1:ready:w28']);
  assert.deepEqual(changes(p1), ['updated b1', 'added g1']);
});

test('route: empty weights, no route, or a route of another service serve every healthy backend', () => {
  const members = [node('b1', 'blue', { weight: 40 }), node('g1', 'green'), node('x1', undefined)];
  for (const r of [undefined, route({}), route({ blue: 0, green: 100 }, 5, 'api')]) {
    const p = plan(members, new Map(), r);
    assert.deepEqual(set(p), ['b1:ready:w40', 'g1:ready:w100', 'x1:ready:w100'], JSON.stringify(r));
  }
});

test('route: the min_backends guard never holds a route-excluded backend', () => {
  const spec = { ...SPEC, minBackends: 3 };
  const members = [node('b1', 'blue'), node('b2', 'blue'), node('g1', 'green'), node('g2', 'green')];
  const p0 = plan(members, new Map(), undefined, 1000, undefined, spec);
  // The route takes blue out: drained, although that leaves 2 ready < min 3.
  const p1 = plan(members, p0.state, route({ blue: 0, green: 100 }), 1000, undefined, spec);
  assert.deepEqual(set(p1), ['b1:drain:w100', 'b2:drain:w100', 'g1:ready:w100', 'g2:ready:w100']);
  assert.equal(p1.guard, undefined);
  // A route-excluded backend that fails is removed at once, not held.
  const failedBlue = [node('b1', 'blue', { status: 'failed' }), node('b2', 'blue'), node('g1', 'green'), node('g2', 'green')];
  const ready0 = plan(failedBlue, p0.state, route({ blue: 0, green: 100 }), 1000, undefined, spec);
  assert.deepEqual(changes(ready0), ['removed b1(failed)', 'drain b2']);
  assert.equal(ready0.guard, undefined);
  // A served colour that fails is still held (the guard works as before under a route).
  const failedGreen = [node('b1', 'blue'), node('b2', 'blue'), node('g1', 'green', { status: 'failed' }), node('g2', 'green')];
  const p2 = plan(failedGreen, p1.state, route({ blue: 0, green: 100 }), 2000, undefined, spec);
  assert.ok(p2.backends.some((b) => b.id === 'g1' && b.state === 'ready'), set(p2).join(' '));
  assert.match(p2.guard ?? '', /g1 \(failed\)/);
});

test('route: back to 100 % for the old colour re-adds its backends as ready', () => {
  const members = [node('b1', 'blue'), node('b2', 'blue'), node('g1', 'green')];
  const p0 = plan(members, new Map(), route({ blue: 100, green: 0 }, 5));
  assert.deepEqual(set(p0), ['b1:ready:w100', 'b2:ready:w100']);
  const p1 = plan(members, p0.state, route({ blue: 0, green: 100 }, 6));
  // b1 still draining, b2 already removed (idle).
  const p2 = plan(members, p1.state, route({ blue: 0, green: 100 }, 6), 1500, { b1: 1, b2: 0 });
  assert.deepEqual(set(p2), ['b1:drain:w100', 'g1:ready:w100']);
  const p3 = plan(members, p2.state, route({ blue: 100, green: 0 }, 7), 1600);
  assert.deepEqual(set(p3), ['b1:ready:w100', 'b2:ready:w100', 'g1:drain:w100']);
  assert.deepEqual(changes(p3), ['ready b1', 'added b2', 'drain g1']);
});

test('route: a reaped member keeps its last known value (a drained blue stays out)', () => {
  const members = [node('b1', 'blue'), node('g1', 'green')];
  const p0 = plan(members, new Map(), undefined);
  const p1 = plan(members, p0.state, route({ blue: 0, green: 100 }));
  assert.equal(p1.state.get('b1')?.value, 'blue');
  const p2 = plan([node('g1', 'green')], p1.state, route({ blue: 0, green: 100 }), 1200);
  assert.deepEqual(set(p2), ['g1:ready:w100']);
  assert.deepEqual(changes(p2), ['removed b1(gone)']);
});

test('route: the node\'s own drain or leave still wins over a route share', () => {
  const members = [node('b1', 'blue', { drain: true }), node('g1', 'green', { status: 'leaving' }), node('g2', 'green')];
  const prev: ServiceState = plan([node('b1', 'blue'), node('g1', 'green'), node('g2', 'green')], new Map(), undefined).state;
  const p = plan(members, prev, route({ blue: 50, green: 50 }));
  assert.deepEqual(set(p), ['b1:drain:w100', 'g1:drain:w100', 'g2:ready:w100']);
});
