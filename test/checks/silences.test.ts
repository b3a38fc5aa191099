import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SILENCES, SilenceStore, encodeSilenceOp, parseSilenceOp } from '../../src/checks/silences.ts';
import type { Silence } from '../../src/checks/types.ts';

const T0 = 1_700_000_000_000;

function sil(id: string, extra: Partial<Silence> = {}): Silence {
  return { id, createdAt: T0, ...extra };
}

test('match: every named field must match, unnamed fields match anything', () => {
  const st = new SilenceStore();
  st.add(sil('a', { node: 'web-1' }), T0);
  st.add(sil('b', { role: 'db', check: 'disk' }), T0);
  const rows: [string, string | undefined, string, string | undefined][] = [
    ['web-1', 'web', 'disk', 'a'],
    ['web-1', undefined, 'member', 'a'],
    ['web-2', 'web', 'disk', undefined],
    ['db-1', 'db', 'disk', 'b'],
    ['db-1', 'db', 'load', undefined],
    ['db-1', undefined, 'disk', undefined],
  ];
  for (const [node, role, check, want] of rows) {
    assert.equal(st.match(node, role, check, T0)?.id, want, `${node}/${role}/${check}`);
  }
});

test('expiry: a silence stops matching at expiresAt; expire() returns and drops it; nextExpiry tracks the soonest', () => {
  const st = new SilenceStore();
  assert.equal(st.nextExpiry(), undefined);
  st.add(sil('x', { check: 'disk', expiresAt: T0 + 60_000 }), T0);
  st.add(sil('y', { check: 'load', expiresAt: T0 + 30_000 }), T0);
  st.add(sil('z', { check: 'cpu' }), T0);
  assert.equal(st.nextExpiry(), T0 + 30_000);
  assert.equal(st.match('n', undefined, 'disk', T0 + 59_999)?.id, 'x');
  assert.equal(st.match('n', undefined, 'disk', T0 + 60_000), undefined, 'not in force at expiresAt');
  assert.deepEqual(st.expire(T0 + 30_000).map((s) => s.id), ['y']);
  assert.equal(st.nextExpiry(), T0 + 60_000);
  assert.deepEqual(st.expire(T0 + 100_000).map((s) => s.id), ['x']);
  assert.equal(st.nextExpiry(), undefined);
  assert.deepEqual(st.list().map((s) => s.id), ['z'], 'no expiry = until removed');
});

test('add refuses an already expired silence and a full store; same id replaces; remove', () => {
  const st = new SilenceStore();
  assert.equal(st.add(sil('old', { node: 'a', expiresAt: T0 - 1 }), T0), false);
  for (let i = 0; i < MAX_SILENCES; i++) assert.equal(st.add(sil(`s${i}`, { node: 'a' }), T0), true);
  assert.equal(st.add(sil('one-more', { node: 'a' }), T0), false);
  assert.equal(st.add(sil('s5', { node: 'b' }), T0), true, 'replacing keeps the size');
  assert.equal(st.size, MAX_SILENCES);
  assert.equal(st.match('b', undefined, 'c', T0)?.id, 's5');
  assert.equal(st.remove('s5')?.id, 's5');
  assert.equal(st.remove('s5'), undefined);
  assert.equal(st.match('b', undefined, 'c', T0), undefined);
});

test('list: newest first', () => {
  const st = new SilenceStore();
  st.add(sil('a', { node: 'n', createdAt: T0 }), T0);
  st.add(sil('b', { node: 'n', createdAt: T0 + 2 }), T0);
  st.add(sil('c', { node: 'n', createdAt: T0 + 1 }), T0);
  assert.deepEqual(st.list().map((s) => s.id), ['b', 'c', 'a']);
});

test('parse/encode round trip of add and remove', () => {
  const add = { op: 'add' as const, silence: sil('k1', { role: 'web', check: 'disk', expiresAt: T0 + 3_600_000, reason: 'maintenance', creator: 'ops' }) };
  const r1 = parseSilenceOp(encodeSilenceOp(add));
  assert.deepEqual(r1, { ok: true, op: add });
  const r2 = parseSilenceOp(new TextEncoder().encode(encodeSilenceOp({ op: 'remove', id: 'k1' })));
  assert.deepEqual(r2, { ok: true, op: { op: 'remove', id: 'k1' } });
});

test('parse rejects bad payloads with a reason, never throws', () => {
  const bad: [string | Uint8Array, RegExp][] = [
    ['', /not JSON/],
    ['{', /not JSON/],
    [new Uint8Array([0xff, 0xfe]), /not JSON/],
    ['[]', /object/],
    ['null', /object/],
    ['{"op":"mute"}', /op must be/],
    ['{"op":"add"}', /silence must be an object/],
    ['{"op":"add","silence":{"id":"a b","node":"x"}}', /id/],
    ['{"op":"add","silence":{"id":"a"}}', /must name a node, a role or a check/],
    ['{"op":"add","silence":{"id":"a","node":7}}', /node must be a string/],
    ['{"op":"add","silence":{"id":"a","node":"x","expiresAt":"soon"}}', /expiresAt/],
    ['{"op":"add","silence":{"id":"a","node":"x","expiresAt":-5}}', /expiresAt/],
    ['{"op":"remove"}', /id/],
    ['x'.repeat(2000), /larger than/],
  ];
  for (const [payload, why] of bad) {
    const r = parseSilenceOp(payload);
    assert.equal(r.ok, false, String(payload).slice(0, 40));
    if (!r.ok) assert.match(r.reason, why, String(payload).slice(0, 40));
  }
});
