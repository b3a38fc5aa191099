import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abort, buildSpec, newDeploy, published, publishFailed, resumeDeploy, rollback, step } from '../../src/deploy/core.ts';
import type { Action, Machine, MemberObs, Observation } from '../../src/deploy/core.ts';
import type { BackendReport, BalancerReport, DeployPhase, RouteEntry } from '../../src/deploy/types.ts';
import { DeployError } from '../../src/deploy/errors.ts';

// A small world the machine observes: 2 blue + 2 green web nodes, 2 balancers. Balancers apply
// whatever route is published (unless told to lag) and serve backends by the route's weights.

interface World {
  now: number;
  members: MemberObs[];
  route: RouteEntry | undefined;
  ltime: number;
  /** Balancers that do not apply new routes. */
  lagging: Set<string>;
  applied: Map<string, number>;
  /** Per backend id: cumulative requests/errors; active in flight. */
  counters: Map<string, { requests: number; errors: number; active: number }>;
  published: RouteEntry[];
  failPublish: number;
}

function web(name: string, color: string, extra: Record<string, string> = {}): MemberObs {
  return { name, status: 'alive', tags: { color, 's:web': '8080', ...extra } };
}

function world(): World {
  return {
    now: 1_000_000,
    members: [web('b1', 'blue'), web('b2', 'blue'), web('g1', 'green'), web('g2', 'green'), { name: 'lb1', status: 'alive', tags: { lb: 'web' } }, { name: 'lb2', status: 'alive', tags: { lb: 'api,web' } }],
    route: undefined,
    ltime: 10,
    lagging: new Set(),
    applied: new Map(),
    counters: new Map(),
    published: [],
    failPublish: 0,
  };
}

function obs(w: World): Observation {
  const reports = new Map<string, BalancerReport>();
  for (const lb of ['lb1', 'lb2']) {
    if (!w.members.some((m) => m.name === lb && m.status === 'alive')) continue;
    if (!w.lagging.has(lb) && w.route) w.applied.set(lb, w.route.ltime);
    const backends: BackendReport[] = w.members
      .filter((m) => m.tags['s:web'] !== undefined && m.status === 'alive')
      .map((m) => {
        const v = m.tags['color'] ?? '';
        const share = w.route?.weights[v] ?? 100;
        const c = w.counters.get(m.name) ?? { requests: 0, errors: 0, active: 0 };
        return { id: m.name, state: share > 0 ? 'ready' : 'drain', weight: share, value: v, active: c.active, requests: c.requests, errors: c.errors };
      });
    reports.set(lb, { node: lb, driver: 'haproxy', services: { web: { routeLTime: w.applied.get(lb) ?? 0, backends } } });
  }
  return { now: w.now, members: w.members, reports, route: w.route };
}

/** One tick; publishes go through at once (new ltime) unless failPublish > 0. */
function tick(m: Machine, w: World, dtMs = 100): Action[] {
  w.now += dtMs;
  const actions = step(m, obs(w));
  for (const a of actions) {
    if (a.kind !== 'publish') continue;
    if (w.failPublish > 0) {
      w.failPublish--;
      publishFailed(m, 'no agent', w.now);
      continue;
    }
    w.ltime++;
    const e: RouteEntry = { ...a.setting, ltime: w.ltime };
    w.route = e;
    w.published.push(e);
    published(m, e, w.now);
  }
  return actions;
}

function runUntil(m: Machine, w: World, phase: DeployPhase, maxTicks = 2000, dtMs = 100): void {
  for (let i = 0; i < maxTicks && m.state.phase !== phase; i++) tick(m, w, dtMs);
  assert.equal(m.state.phase, phase, `expected ${phase}, events: ${m.state.events.map((e) => `${e.phase}: ${e.msg}`).join(' | ')}`);
}

function deploy(w: World, extra: Record<string, unknown> = {}): Machine {
  const spec = buildSpec({ service: 'web', from: 'blue', to: 'green', checkBakeMs: 1000, bakeMs: 2000, stepBakeMs: 1000, drainTimeoutMs: 3000, applyTimeoutMs: 2000, ...extra }, w.members);
  return newDeploy(spec, 'coord', w.now);
}

const split = (e: RouteEntry | undefined): string => (e ? `blue=${e.weights['blue']} green=${e.weights['green']}` : 'none');

test('buildSpec: defaults (expected = healthy from count) and refusals', () => {
  const w = world();
  const s = buildSpec({ service: 'web', from: 'blue', to: 'green' }, w.members);
  assert.equal(s.expected, 2);
  assert.deepEqual(s.steps, [100]);
  assert.equal(s.tag, 'color');
  for (const bad of [
    { from: 'blue', to: 'blue' },
    { steps: [50, 10, 100] },
    { steps: [10, 50] },
    { steps: [] },
    { expected: 0 },
    { maxErrorRate: 2 },
    { service: 'bad name' },
  ]) {
    assert.throws(() => buildSpec({ service: 'web', from: 'blue', to: 'green', ...bad }, w.members), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_SPEC', JSON.stringify(bad));
  }
});

test('happy path: prepare → check → shift → drain → bake → done, with the routes published in order', () => {
  const w = world();
  const m = deploy(w);
  const phases: DeployPhase[] = [m.state.phase];
  for (let i = 0; i < 500 && m.state.phase !== 'done'; i++) {
    // blue keeps one request in flight until the route drains it
    w.counters.set('b1', { requests: 5, errors: 0, active: m.state.phase === 'drain' && w.now - m.state.phaseSince < 500 ? 1 : 0 });
    tick(m, w);
    if (phases[phases.length - 1] !== m.state.phase) phases.push(m.state.phase);
  }
  assert.deepEqual(phases, ['prepare', 'check', 'shift', 'drain', 'bake', 'done']);
  assert.deepEqual(w.published.map(split), ['blue=100 green=0', 'blue=0 green=100']);
  assert.ok(w.published.every((e) => e.by === m.state.id));
  assert.equal(m.state.routeLTime, w.ltime);
  assert.equal(m.state.reason, 'web serves green only');
});

test('gradual steps 10,50,100: each step baked before the next', () => {
  const w = world();
  const m = deploy(w, { steps: [10, 50, 100] });
  const phases: string[] = [];
  for (let i = 0; i < 1000 && m.state.phase !== 'done'; i++) {
    tick(m, w);
    const p = `${m.state.phase}${m.state.step >= 0 ? `@${m.state.step}` : ''}`;
    if (phases[phases.length - 1] !== p) phases.push(p);
  }
  assert.deepEqual(phases, ['prepare', 'check', 'shift@0', 'bake@0', 'shift@1', 'bake@1', 'shift@2', 'drain@2', 'bake@2', 'done@2']);
  assert.deepEqual(w.published.map(split), ['blue=100 green=0', 'blue=90 green=10', 'blue=50 green=50', 'blue=0 green=100']);
});

test('prepare: no balancer serving the service → aborted; balancers not applying → aborted', () => {
  let w = world();
  w.members = w.members.filter((x) => !x.name.startsWith('lb'));
  let m = deploy(w);
  tick(m, w);
  assert.equal(m.state.phase, 'aborted');
  assert.match(m.state.reason ?? '', /no alive balancer/);

  w = world();
  w.lagging.add('lb2');
  m = deploy(w);
  runUntil(m, w, 'aborted');
  assert.match(m.state.reason ?? '', /did not apply.*lb2/);
  assert.equal(m.state.step, -1);
});

test('check: waits for the expected healthy count for checkBakeMs; a flap restarts the streak; timeout → aborted', () => {
  const w = world();
  w.members[3] = web('g2', 'green', { chk: '2;disk=c3' }); // critical check → not healthy
  const m = deploy(w, { checkTimeoutMs: 5000 });
  runUntil(m, w, 'check');
  for (let i = 0; i < 20; i++) tick(m, w);
  assert.equal(m.state.phase, 'check');
  assert.equal(m.state.figures['green healthy'], '1/2');
  w.members[3] = web('g2', 'green', { chk: '2' });
  for (let i = 0; i < 8; i++) tick(m, w);
  w.members[3] = web('g2', 'green', { 's:web': '8080,drain' }); // draining is not healthy
  tick(m, w);
  w.members[3] = web('g2', 'green');
  for (let i = 0; i < 8; i++) tick(m, w);
  assert.equal(m.state.phase, 'check', 'the streak restarted after the flap');
  runUntil(m, w, 'shift');

  const w2 = world();
  w2.members[2] = { ...web('g1', 'green'), status: 'failed' };
  const m2 = deploy(w2, { checkTimeoutMs: 5000 });
  runUntil(m2, w2, 'aborted');
  assert.match(m2.state.reason ?? '', /not ready within 5000 ms \(1\/2 healthy\)/);
  assert.deepEqual(w2.published.map(split), ['blue=100 green=0']);
});

test('shift: a balancer that does not apply within applyTimeoutMs → rolling-back → rolled-back', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'shift');
  w.lagging.add('lb1');
  tick(m, w); // publishes green=100
  runUntil(m, w, 'rolling-back');
  assert.match(m.state.reason ?? '', /lb1/);
  w.lagging.clear();
  runUntil(m, w, 'rolled-back');
  assert.deepEqual(w.published.map(split), ['blue=100 green=0', 'blue=0 green=100', 'blue=100 green=0']);
});

test('rolling-back: balancers never applying → failed, says who', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'bake');
  w.lagging.add('lb2');
  rollback(m, w.now);
  runUntil(m, w, 'failed');
  assert.match(m.state.reason ?? '', /did not apply.*lb2/);
});

test('drain: waits for no ready/in-flight blue backend; timeout → bake with a warning', () => {
  const w = world();
  const m = deploy(w, { drainTimeoutMs: 1500 });
  runUntil(m, w, 'drain');
  w.counters.set('b2', { requests: 9, errors: 0, active: 3 });
  for (let i = 0; i < 10; i++) tick(m, w);
  assert.equal(m.state.phase, 'drain');
  assert.equal(m.state.figures['blue busy'], '2'); // b2 on both balancers
  runUntil(m, w, 'bake');
  assert.ok(m.state.events.some((e) => /drain timeout after 1500 ms, still busy: lb1\/b2, lb2\/b2/.test(e.msg)));
});

test('bake: health gate (a green node fails) → rollback', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'bake');
  w.members[2] = { ...web('g1', 'green'), status: 'failed' };
  tick(m, w);
  assert.equal(m.state.phase, 'rolling-back');
  assert.match(m.state.reason ?? '', /health gate: 1\/2 green/);
  runUntil(m, w, 'rolled-back');
  assert.equal(split(w.route), 'blue=100 green=0');
});

test('bake: error-rate gate counts only the bake window and only after minRequests', () => {
  const w = world();
  w.counters.set('g1', { requests: 1000, errors: 500, active: 0 }); // before the bake: ignored
  const m = deploy(w, { minRequests: 20, maxErrorRate: 0.1, bakeMs: 60_000 });
  runUntil(m, w, 'bake');
  tick(m, w); // baseline
  w.counters.set('g1', { requests: 1010, errors: 505, active: 0 }); // 5/10 but under minRequests (×2 balancers = 20? no: 10 per balancer → 20)
  w.counters.set('g1', { requests: 1009, errors: 505, active: 0 }); // 9 per balancer = 18 < 20
  tick(m, w);
  assert.equal(m.state.phase, 'bake');
  w.counters.set('g1', { requests: 1100, errors: 505, active: 0 }); // 10/200 = 0.05 ≤ 0.1
  tick(m, w);
  assert.equal(m.state.phase, 'bake');
  assert.equal(m.state.figures['errors/requests'], '10/200');
  w.counters.set('g1', { requests: 1110, errors: 520, active: 0 }); // 40/220 > 0.1
  tick(m, w);
  assert.equal(m.state.phase, 'rolling-back');
  assert.match(m.state.reason ?? '', /error-rate gate: 40\/220/);
});

test('gate during an intermediate step → rollback to blue=100', () => {
  const w = world();
  const m = deploy(w, { steps: [10, 100] });
  runUntil(m, w, 'bake');
  assert.equal(m.state.step, 0);
  w.members[3] = web('g2', 'green', { chk: '1;http=c2' });
  tick(m, w);
  runUntil(m, w, 'rolled-back');
  assert.deepEqual(w.published.map(split), ['blue=100 green=0', 'blue=90 green=10', 'blue=100 green=0']);
});

test('abort: before any shift → aborted (nothing moved); after → rollback; finished → refused', () => {
  let w = world();
  let m = deploy(w);
  runUntil(m, w, 'check');
  abort(m, w.now);
  assert.equal(m.state.phase, 'aborted');
  assert.throws(() => abort(m, w.now), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_STATE');
  assert.throws(() => rollback(m, w.now), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_STATE');

  w = world();
  m = deploy(w);
  runUntil(m, w, 'drain');
  abort(m, w.now, 'operator said so');
  assert.equal(m.state.phase, 'rolling-back');
  runUntil(m, w, 'rolled-back');
  assert.equal(m.state.reason, 'operator said so');
});

test('rollback after done → rolled-back with blue=100 republished', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'done');
  rollback(m, w.now);
  runUntil(m, w, 'rolled-back');
  assert.equal(split(w.route), 'blue=100 green=0');
  assert.equal(w.route?.by, m.state.id);
});

test('superseded: a newer route by someone else stops the deploy without touching it', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'drain');
  w.route = { service: 'web', tag: 'color', weights: { blue: 50, green: 50 }, by: 'manual', ltime: w.ltime + 5 };
  const n = w.published.length;
  tick(m, w);
  assert.equal(m.state.phase, 'failed');
  assert.match(m.state.reason ?? '', /^superseded by manual \(ltime \d+: blue=50 green=50\)/);
  for (let i = 0; i < 5; i++) tick(m, w);
  assert.equal(w.published.length, n);
});

test('publish failure is retried; bounded by applyTimeoutMs', () => {
  const w = world();
  w.failPublish = 3;
  const m = deploy(w);
  runUntil(m, w, 'check');
  assert.equal(w.published.length, 1);

  const w2 = world();
  w2.failPublish = 1000;
  const m2 = deploy(w2);
  runUntil(m2, w2, 'aborted');
  assert.match(m2.state.reason ?? '', /could not publish/);
});

test('resume: every non-final phase re-publishes its split with a fresh ltime and continues', () => {
  for (const [phase, expectSplit, endPhase] of [
    ['prepare', 'blue=100 green=0', 'done'],
    ['check', 'blue=100 green=0', 'done'],
    ['shift', 'blue=0 green=100', 'done'],
    ['drain', 'blue=0 green=100', 'done'],
    ['bake', 'blue=0 green=100', 'done'],
    ['rolling-back', 'blue=100 green=0', 'rolled-back'],
  ] as const) {
    const w = world();
    const m = deploy(w);
    if (phase === 'rolling-back') {
      runUntil(m, w, 'bake');
      rollback(m, w.now);
    } else runUntil(m, w, phase);
    const saved = JSON.parse(JSON.stringify(m.state));
    const before = w.ltime;
    w.now += 5000;
    const { machine, actions } = resumeDeploy(saved, w.now);
    assert.ok(actions.some((a) => a.kind === 'persist'));
    tick(machine, w);
    assert.equal(split(w.route), expectSplit, phase);
    assert.ok((w.route?.ltime ?? 0) > before);
    runUntil(machine, w, endPhase);
  }
});

test('resume of a final deploy does nothing', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'done');
  const { machine, actions } = resumeDeploy(JSON.parse(JSON.stringify(m.state)), w.now);
  assert.deepEqual(actions, []);
  assert.deepEqual(tick(machine, w), []);
});

test('events stay bounded', () => {
  const w = world();
  const m = deploy(w, { steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 100], stepBakeMs: 0 });
  runUntil(m, w, 'done', 5000);
  assert.ok(m.state.events.length <= 50);
});

test('resume: a republish that lost to our own pre-crash entry (higher ltime) is published again', () => {
  const w = world();
  const m = deploy(w);
  runUntil(m, w, 'shift');
  const saved = JSON.parse(JSON.stringify(m.state));
  // the pre-crash publish (green=100) landed at ltime 50, but the restarted clock is behind
  w.route = { service: 'web', tag: 'color', weights: { blue: 0, green: 100 }, by: m.state.id, ltime: 50 };
  const { machine } = resumeDeploy(saved, w.now);
  tick(machine, w); // republishes at ltime 13 — a balancer keeps 50
  w.route = { service: 'web', tag: 'color', weights: { blue: 0, green: 100 }, by: m.state.id, ltime: 50 };
  w.ltime = 50;
  tick(machine, w);
  tick(machine, w);
  assert.equal(machine.state.routeLTime, 51);
  assert.ok(machine.state.events.some((e) => /found our own newer route/.test(e.msg)));
  runUntil(machine, w, 'done');
});
