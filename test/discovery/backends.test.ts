import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMembers, drainingIds, nextDrainDeadline, planService } from '../../src/discovery/backends.ts';
import type { MemberView, ServiceState, TrackedBackend } from '../../src/discovery/backends.ts';

const SPEC = { service: 'web', minBackends: 0, drainTimeoutMs: 10_000 };

function member(name: string, status: string, tags: Record<string, string>, ip = '10.0.0.' + name.replace(/\D/g, '')): MemberView {
  return { name, addr: { ip }, tags, status };
}

function tracked(id: string, port: number, state: 'ready' | 'drain', extra: Partial<TrackedBackend> = {}): TrackedBackend {
  return { id, host: '10.0.0.' + id.replace(/\D/g, ''), port, weight: 100, state, ...extra };
}

function stateOf(...bs: TrackedBackend[]): ServiceState {
  return new Map(bs.map((b) => [b.id, b]));
}

/** Short summary of a plan: "id:state:port" per backend and "kind id[reason]" per change. */
function summary(p: ReturnType<typeof planService>): { set: string[]; changes: string[] } {
  return {
    set: p.backends.map((b) => `${b.id}:${b.state}:${b.port}:w${b.weight}`),
    changes: p.changes.map((c) => `${c.kind} ${c.backend.id}${c.kind === 'removed' ? `(${c.reason})` : c.kind === 'held' ? `(${c.why})` : ''}`),
  };
}

interface Row {
  name: string;
  members: MemberView[];
  prev: TrackedBackend[];
  now?: number;
  active?: Record<string, number>;
  min?: number;
  set: string[];
  changes: string[];
  guard?: RegExp;
}

const rows: Row[] = [
  {
    name: 'an alive member with the tag is added ready, on its Serf address',
    members: [member('web-1', 'alive', { 's:web': '8081' }), member('lb', 'alive', { role: 'lb' })],
    prev: [],
    set: ['web-1:ready:8081:w100'],
    changes: ['added web-1'],
  },
  {
    name: 'other services and weights are read from the tag',
    members: [member('web-1', 'alive', { 's:web': '8081,w5', 's:api': '9000' })],
    prev: [],
    set: ['web-1:ready:8081:w5'],
    changes: ['added web-1'],
  },
  {
    name: 'nothing changes when nothing changed',
    members: [member('web-1', 'alive', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'ready')],
    set: ['web-1:ready:8081:w100'],
    changes: [],
  },
  {
    name: 'a new port or weight updates in place',
    members: [member('web-1', 'alive', { 's:web': '8090,w50' })],
    prev: [tracked('web-1', 8081, 'ready')],
    set: ['web-1:ready:8090:w50'],
    changes: ['updated web-1'],
  },
  {
    name: ',drain on a served backend drains it',
    members: [member('web-1', 'alive', { 's:web': '8081,drain' }), member('web-2', 'alive', { 's:web': '8082' })],
    prev: [tracked('web-1', 8081, 'ready'), tracked('web-2', 8082, 'ready')],
    set: ['web-1:drain:8081:w100', 'web-2:ready:8082:w100'],
    changes: ['drain web-1'],
  },
  {
    name: 'a member leaving or left is drained (serf leave keeps its tags)',
    members: [member('web-1', 'leaving', { 's:web': '8081' }), member('web-2', 'left', { 's:web': '8082' })],
    prev: [tracked('web-1', 8081, 'ready'), tracked('web-2', 8082, 'ready')],
    set: ['web-1:drain:8081:w100', 'web-2:drain:8082:w100'],
    changes: ['drain web-1', 'drain web-2'],
  },
  {
    name: 'a draining or leaving node we never served is not added',
    members: [member('web-1', 'alive', { 's:web': '8081,drain' }), member('web-2', 'left', { 's:web': '8082' })],
    prev: [],
    set: [],
    changes: [],
  },
  {
    name: 'a draining backend with 0 active sessions is removed (idle)',
    members: [member('web-1', 'alive', { 's:web': '8081,drain' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 900 })],
    now: 1000,
    active: { 'web-1': 0 },
    set: [],
    changes: ['removed web-1(idle)'],
  },
  {
    name: 'a draining backend still busy stays until the drain timeout',
    members: [member('web-1', 'left', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 })],
    now: 10_999,
    active: { 'web-1': 3 },
    set: ['web-1:drain:8081:w100'],
    changes: [],
  },
  {
    name: 'a draining backend is removed at the drain timeout even when busy',
    members: [member('web-1', 'left', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 })],
    now: 11_000,
    active: { 'web-1': 3 },
    set: [],
    changes: ['removed web-1(drain timeout)'],
  },
  {
    name: 'unknown sessions (no stats for it) never count as idle',
    members: [member('web-1', 'left', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 })],
    now: 2000,
    active: { other: 0 },
    set: ['web-1:drain:8081:w100'],
    changes: [],
  },
  {
    name: 'a draining node that comes back healthy is ready again',
    members: [member('web-1', 'alive', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 })],
    set: ['web-1:ready:8081:w100'],
    changes: ['ready web-1'],
  },
  {
    name: 'a failed member is removed at once when enough remain',
    min: 1,
    members: [member('web-1', 'failed', { 's:web': '8081' }), member('web-2', 'alive', { 's:web': '8082' })],
    prev: [tracked('web-1', 8081, 'ready'), tracked('web-2', 8082, 'ready')],
    set: ['web-2:ready:8082:w100'],
    changes: ['removed web-1(failed)'],
  },
  {
    name: 'a tag gone (unhealthy) or unreadable is removed at once',
    members: [member('web-1', 'alive', {}), member('web-2', 'alive', { 's:web': 'eighty' }), member('web-3', 'alive', { 's:web': '8083' })],
    prev: [tracked('web-1', 8081, 'ready'), tracked('web-2', 8082, 'ready'), tracked('web-3', 8083, 'ready')],
    min: 1,
    set: ['web-3:ready:8083:w100'],
    changes: ['removed web-1(unhealthy)', 'removed web-2(unhealthy)'],
  },
  {
    name: 'a failed draining backend is removed at once',
    members: [member('web-1', 'failed', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 })],
    set: [],
    changes: ['removed web-1(failed)'],
  },
  {
    name: 'a member reaped from the list is removed',
    members: [],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 1000 }), tracked('web-2', 8082, 'ready')],
    set: [],
    changes: ['removed web-1(gone)', 'removed web-2(gone)'],
  },
  {
    name: 'guard: the last backend failing is kept, with a reason',
    min: 1,
    members: [member('web-1', 'failed', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'ready')],
    set: ['web-1:ready:8081:w100'],
    changes: ['held web-1(failed)'],
    guard: /keeping web-1 \(failed\) in rotation: removing would leave 0 ready backend\(s\), below min_backends 1/,
  },
  {
    name: 'guard: keeps just enough, most recently lost first',
    min: 2,
    now: 5000,
    members: [
      member('web-1', 'failed', { 's:web': '8081' }),
      member('web-2', 'alive', {}),
      member('web-3', 'failed', { 's:web': '8083' }),
      member('web-4', 'alive', { 's:web': '8084' }),
    ],
    prev: [
      tracked('web-1', 8081, 'ready', { held: { sinceMs: 1000, why: 'failed' } }),
      tracked('web-2', 8082, 'ready'),
      tracked('web-3', 8083, 'ready'),
      tracked('web-4', 8084, 'ready'),
    ],
    set: ['web-2:ready:8082:w100', 'web-4:ready:8084:w100'],
    changes: ['held web-2(unhealthy)', 'removed web-1(failed)', 'removed web-3(failed)'],
    guard: /keeping web-2 \(unhealthy\) in rotation: removing would leave 1 ready/,
  },
  {
    name: 'guard: a held backend goes as soon as a healthy one arrives',
    min: 1,
    members: [member('web-1', 'failed', { 's:web': '8081' }), member('web-5', 'alive', { 's:web': '8085' })],
    prev: [tracked('web-1', 8081, 'ready', { held: { sinceMs: 1000, why: 'failed' } })],
    set: ['web-5:ready:8085:w100'],
    changes: ['added web-5', 'removed web-1(failed)'],
  },
  {
    name: 'guard: an already held backend is not reported again',
    min: 1,
    members: [member('web-1', 'failed', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'ready', { held: { sinceMs: 1000, why: 'failed' } })],
    set: ['web-1:ready:8081:w100'],
    changes: [],
    guard: /keeping web-1/,
  },
  {
    name: 'guard: a held backend that recovers is ready again',
    min: 1,
    members: [member('web-1', 'alive', { 's:web': '8081' })],
    prev: [tracked('web-1', 8081, 'ready', { held: { sinceMs: 1000, why: 'failed' } })],
    set: ['web-1:ready:8081:w100'],
    changes: ['ready web-1'],
  },
  {
    name: 'guard: graceful drains are never held (a planned leave may empty the set)',
    min: 1,
    members: [member('web-1', 'alive', { 's:web': '8081,drain' })],
    prev: [tracked('web-1', 8081, 'ready')],
    set: ['web-1:drain:8081:w100'],
    changes: ['drain web-1'],
  },
  {
    name: 'guard: draining backends do not count as ready',
    min: 1,
    members: [member('web-1', 'alive', { 's:web': '8081,drain' }), member('web-2', 'failed', { 's:web': '8082' })],
    prev: [tracked('web-1', 8081, 'drain', { drainSinceMs: 0 }), tracked('web-2', 8082, 'ready')],
    now: 100,
    set: ['web-1:drain:8081:w100', 'web-2:ready:8082:w100'],
    changes: ['held web-2(failed)'],
    guard: /keeping web-2 \(failed\)/,
  },
];

for (const row of rows) {
  test(`plan: ${row.name}`, () => {
    const plan = planService(
      { ...SPEC, minBackends: row.min ?? SPEC.minBackends },
      decodeMembers(row.members),
      stateOf(...row.prev),
      row.now ?? 1000,
      row.active === undefined ? undefined : new Map(Object.entries(row.active)),
    );
    assert.deepEqual(summary(plan), { set: row.set, changes: row.changes });
    if (row.guard === undefined) assert.equal(plan.guard, undefined);
    else assert.match(plan.guard ?? '', row.guard);
  });
}

test('a drain walks ready → drain → removed over successive plans (the role loop)', () => {
  const members = decodeMembers([member('web-1', 'alive', { 's:web': '8081' }), member('web-2', 'alive', { 's:web': '8082' })]);
  let p = planService(SPEC, members, new Map(), 0);
  assert.deepEqual(summary(p).set, ['web-1:ready:8081:w100', 'web-2:ready:8082:w100']);
  const leaving = decodeMembers([member('web-1', 'alive', { 's:web': '8081,drain' }), member('web-2', 'alive', { 's:web': '8082' })]);
  p = planService(SPEC, leaving, p.state, 100);
  assert.deepEqual(drainingIds(p.state), ['web-1']);
  assert.equal(nextDrainDeadline(p.state, SPEC.drainTimeoutMs), 10_100);
  p = planService(SPEC, leaving, p.state, 300, new Map([['web-1', 2], ['web-2', 5]]));
  assert.deepEqual(summary(p).changes, []);
  p = planService(SPEC, leaving, p.state, 500, new Map([['web-1', 0], ['web-2', 5]]));
  assert.deepEqual(summary(p), { set: ['web-2:ready:8082:w100'], changes: ['removed web-1(idle)'] });
  assert.deepEqual(drainingIds(p.state), []);
  assert.equal(nextDrainDeadline(p.state, SPEC.drainTimeoutMs), undefined);
});

test('decodeMembers reports unreadable service tags per member', () => {
  const d = decodeMembers([member('web-1', 'alive', { 's:web': '8081', 's:api': 'x', 's:bad name': '1' })]);
  assert.deepEqual(d.get('web-1')?.invalid, ['s:api', 's:bad name']);
  assert.deepEqual([...(d.get('web-1')?.services.keys() ?? [])], ['web']);
});
