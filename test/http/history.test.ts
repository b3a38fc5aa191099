// The dashboard's history (src/http/history.ts) on a fake source and clock: rates per second over
// the step, a counter that went back (a restarted balancer) counts from zero, checks by role by
// each node's worst state, the ring keeps the window only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { History, checksByRole } from '../../src/http/history.ts';
import type { Member } from '../../src/serf/serf.ts';
import type { ServicesResponse } from '../../src/http/types.ts';

function member(name: string, status: string, tags: Record<string, string>): Member {
  return { name, status, tags, addr: { ip: '127.0.0.1', port: 1 } } as unknown as Member;
}

function services(requests: number, errors: number): ServicesResponse {
  return {
    services: [{ name: 'web', nodes: [], route: null, balancers: [{ node: 'lb', driver: 'embedded', routeLTime: 0, backends: [{ id: 'w1', state: 'ready', active: 0, requests, errors } as ServicesResponse['services'][number]['balancers'][number]['backends'][number]] }] }],
    missing: [],
  };
}

test('history: rates per second, resets, checks by role, a bounded window', async () => {
  let now = 1_000_000;
  let gossip = { probeFailures: 0, suspicions: 0, refutations: 0 };
  let svc = services(0, 0);
  const members = [
    member('web-1', 'alive', { role: 'web', chk: '2' }),
    member('web-2', 'alive', { role: 'web', chk: '2;disk=c1' }),
    member('web-3', 'alive', { role: 'web', chk: '1;load=w2' }),
    member('db-1', 'failed', { role: 'db', chk: '1;x=c1' }),
    member('lb', 'alive', { role: 'lb' }),
  ];
  const h = new History({ members: () => members, gossipCounters: () => gossip, services: () => Promise.resolve(svc) }, { stepMs: 10_000, windowMs: 30_000, now: () => now });
  await h.sample();
  let r = h.response();
  assert.equal(r.points.length, 1);
  assert.equal(r.points[0]!.gossip, null);
  assert.equal(r.points[0]!.backends, null);
  assert.deepEqual(r.points[0]!.members, { alive: 4, leaving: 0, left: 0, failed: 1 });
  assert.deepEqual(r.points[0]!.checks, { web: { passing: 1, warning: 1, critical: 1, unknown: 0 } }, 'failed nodes and nodes without chk are not counted');

  now += 10_000;
  gossip = { probeFailures: 5, suspicions: 2, refutations: 1 };
  svc = services(1000, 30);
  await h.sample();
  r = h.response();
  assert.deepEqual(r.points[1]!.gossip, { probe_failures: 0.5, suspicions: 0.2, refutations: 0.1 });
  assert.deepEqual(r.points[1]!.backends, { lb: { 'web/w1': { requests: 100, errors: 3 } } });

  now += 10_000;
  svc = services(200, 0); // the balancer restarted: its counters began again
  await h.sample();
  assert.deepEqual(h.response().points[2]!.backends, { lb: { 'web/w1': { requests: 20, errors: 0 } } });

  now += 10_000;
  await h.sample();
  r = h.response();
  assert.equal(r.points.length, 3, 'the window holds 30 s at 10 s steps');
  assert.equal(r.points[0]!.t, 1_010_000);
  assert.equal(r.windowMs, 30_000);
});

test('checksByRole: unknown ranks above warning, below critical; nodes without a role are under ""', () => {
  const out = checksByRole([
    member('a', 'alive', { chk: '2;x=u1,y=w1' }),
    member('b', 'alive', { chk: '3;x=c1,y=u1' }),
    member('c', 'alive', { chk: 'garbage' }),
  ]);
  assert.deepEqual(out, { '': { passing: 0, warning: 0, critical: 1, unknown: 1 } });
});
