import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from '../../src/balancer/embedded/pool.ts';
import type { Backend } from '../../src/discovery/types.ts';

const be = (id: string, weight = 100, state: Backend['state'] = 'ready', port = 8000): Backend => ({
  id,
  host: '127.0.0.1',
  port,
  weight,
  state,
});

function picks(pool: Pool, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pool.pick()?.id ?? '-');
  return out;
}

function count(ids: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const id of ids) c[id] = (c[id] ?? 0) + 1;
  return c;
}

test('smooth weighted round-robin: nginx order for 5:1:1 and exact shares over a cycle', () => {
  const pool = new Pool('web');
  pool.set([be('a', 5), be('b', 1), be('c', 1)]);
  // nginx's documented sequence for weights {5,1,1}: the heavy backend is spread out.
  assert.deepEqual(picks(pool, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  pool.set([be('x', 10), be('y', 30), be('z', 60)]);
  assert.deepEqual(count(picks(pool, 1000)), { x: 100, y: 300, z: 600 });
});

test('drain, weight 0 and removal take a backend out of rotation at once; stats keep counts', () => {
  const pool = new Pool('web');
  pool.set([be('a'), be('b'), be('c')]);
  assert.deepEqual(count(picks(pool, 30)), { a: 10, b: 10, c: 10 });
  pool.set([be('a'), be('b', 100, 'drain'), be('c', 0)]);
  assert.deepEqual(count(picks(pool, 10)), { a: 10 });
  assert.equal(pool.readyCount(), 1);
  const b = pool.backends.find((x) => x.id === 'b');
  assert.ok(b !== undefined && !b.accepting && !b.removed);
  pool.set([be('a')]);
  assert.ok(b.removed, 'a backend left out of the set is marked removed');
  assert.deepEqual(
    pool.stats().map((s) => s.id),
    ['a'],
  );
  pool.set([]);
  assert.equal(pool.pick(), undefined);
});

test('a retry skips the backends the request already tried; a failed connect cools a backend down', () => {
  const pool = new Pool('web', 60_000);
  pool.set([be('a'), be('b'), be('c')]);
  const first = pool.pick();
  assert.ok(first !== undefined);
  const second = pool.pick(first);
  assert.ok(second !== undefined && second !== first);
  const third = pool.pick(first, second);
  assert.ok(third !== undefined && third !== first && third !== second);
  assert.equal(pool.pick(first, second) === third, true, 'only one candidate left');

  pool.connectFailed(first);
  assert.ok(!picks(pool, 20).includes(first.id), 'a cooling backend gets nothing while others are up');
  // When only cooling backends are left, they are tried rather than refusing the request.
  pool.set([be(first.id)]);
  assert.equal(pool.pick()?.id, first.id);
});

test('an updated address is a new backend; invalid and duplicate entries are dropped and reported', () => {
  const pool = new Pool('web');
  pool.set([be('a', 100, 'ready', 8000)]);
  const old = pool.backends[0];
  assert.ok(old !== undefined);
  old.active = 2;
  const change = pool.set([be('a', 100, 'ready', 9000), be('a', 100, 'ready', 9001), be('', 1), be('bad', 999), be('p', 1, 'ready', 0)]);
  assert.equal(change.invalid.length, 4, change.invalid.join('; '));
  assert.ok(old.removed, 'the old address stops getting work');
  assert.equal(pool.backends.length, 1);
  assert.equal(pool.backends[0]?.port, 9000);
  assert.equal(pool.stats()[0]?.activeSessions, 0);
  const again = pool.set([be('a', 100, 'ready', 9000)]);
  assert.deepEqual([again.added, again.updated, again.removed], [0, 0, 0], 'idempotent');
});

test('connects failing in a row double the cool-down (up to 16 ×); one that works ends it', () => {
  const pool = new Pool('web', 1000);
  pool.set([be('a'), be('b')]);
  const a = pool.backends.find((x) => x.id === 'a');
  assert.ok(a !== undefined);
  const cooldowns: number[] = [];
  const firsts: boolean[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = Date.now();
    firsts.push(pool.connectFailed(a));
    cooldowns.push(Math.round((a.failedUntilMs - t0) / 1000));
  }
  assert.deepEqual(cooldowns, [1, 2, 4, 8, 16, 16, 16, 16]);
  assert.deepEqual(firsts, [true, false, false, false, false, false, false, false], 'only the first failure of a streak is news');
  assert.ok(!picks(pool, 20).includes('a'));
  pool.connectWorked(a);
  assert.equal(a.failStreak, 0);
  assert.ok(picks(pool, 20).includes('a'), 'a backend that answered is back in rotation at once');
  const t0 = Date.now();
  assert.equal(pool.connectFailed(a), true);
  assert.equal(Math.round((a.failedUntilMs - t0) / 1000), 1, 'a new streak starts from one cool-down');
});
