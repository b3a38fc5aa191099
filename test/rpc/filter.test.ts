// members-filtered semantics as serf implements them (Go: regexp.Compile("^" + expr + "$")).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileAnchored, filterMembers, FilterError, MATCH_BUDGET_MS } from '../../src/rpc/filter.ts';
import { member, MEMBERS } from './helpers.ts';

const names = (f: Parameters<typeof filterMembers>[1]): string[] => filterMembers(MEMBERS, f).map((m) => m.name);

test('anchoring is by concatenation, exactly like Go: "a|b" becomes ^a|b$', () => {
  const re = compileAnchored('web|db');
  assert.equal(re.test('web'), true);
  assert.equal(re.test('webX'), true); // ^web matches the start; Go does the same
  assert.equal(re.test('Xdb'), true);
  assert.equal(re.test('Xweb'), false);
  assert.equal(compileAnchored('(web|db)').test('webX'), false);
});

test('leading RE2 flag groups become RegExp flags; invalid patterns are FilterErrors', () => {
  assert.equal(compileAnchored('(?i)WEB-1').test('web-1'), true);
  assert.equal(compileAnchored('(?s)a.b').test('a\nb'), true);
  assert.throws(() => compileAnchored('('), (e: unknown) => e instanceof FilterError && /Failed to compile regex/.test(e.message));
  assert.throws(() => compileAnchored('(?U)a+'), FilterError);
});

test('empty name/status mean any; tags must all match; a missing tag matches as ""', () => {
  assert.deepEqual(names({}), ['web-1', 'web-2', 'db-1', 'v6-node']);
  assert.deepEqual(names({ name: '', status: '', tags: {} }), ['web-1', 'web-2', 'db-1', 'v6-node']);
  assert.deepEqual(names({ status: 'failed|left' }), ['web-2', 'v6-node']);
  assert.deepEqual(names({ tags: { role: 'web', dc: 'x1' } }), ['web-1']);
  assert.deepEqual(names({ tags: { role: '' } }), ['v6-node']);
  assert.deepEqual(names({ tags: { nonexistent: '' } }), ['web-1', 'web-2', 'db-1', 'v6-node']);
  assert.deepEqual(names({ tags: { nonexistent: 'x' } }), []);
  // tag named like an Object.prototype member is just a missing tag
  assert.deepEqual(names({ tags: { constructor: '.+' } }), []);
});

test('a catastrophically backtracking regex is cut off after the budget instead of hanging', () => {
  const victims = [member('a'.repeat(40), [10, 0, 0, 1], 7946, { role: 'a'.repeat(40) }, 'alive'), ...MEMBERS];
  for (const f of [{ name: '(a+)+b' }, { tags: { role: '(a|aa)+c' } }]) {
    const t0 = Date.now();
    assert.throws(() => filterMembers(victims, f), (e: unknown) => e instanceof FilterError && /took over 1000 ms/.test(e.message));
    assert.ok(Date.now() - t0 < MATCH_BUDGET_MS * 5, `returned after ${Date.now() - t0} ms`);
  }
  // ordinary filters on the same members still work
  assert.deepEqual(filterMembers(victims, { name: 'a+' }).map((m) => m.name.length), [40]);
});
