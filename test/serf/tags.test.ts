import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTags, encodeTags, parseTag } from '../../src/serf/tags.ts';
import { SerfError } from '../../src/serf/errors.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('tags decode from the Meta real agents send (9.1)', () => {
  assert.deepEqual({ ...decodeTags(hex('ff82a4726f6c65a3776562a26463a27831')) }, { role: 'web', dc: 'x1' });
  assert.deepEqual({ ...decodeTags(hex('ff80')) }, {});
});

test('tags encode as ff + msgpack map with old-spec strings', () => {
  assert.equal(toHex(encodeTags({ role: 'db' }, 5)), 'ff81a4726f6c65a26462');
  assert.equal(toHex(encodeTags({}, 5)), 'ff80');
  // a 40-byte value uses da 00 28 (old spec), never d9
  const long = 'x'.repeat(40);
  assert.ok(toHex(encodeTags({ k: long }, 5)).includes('da0028'));
  assert.deepEqual({ ...decodeTags(encodeTags({ k: long, role: 'ü' }, 5)) }, { k: long, role: 'ü' });
});

test('legacy meta (protocol 2, or no ff) is the role', () => {
  assert.deepEqual(decodeTags(new TextEncoder().encode('web')), { role: 'web' });
  assert.deepEqual(decodeTags(new Uint8Array(0)), { role: '' });
  assert.equal(new TextDecoder().decode(encodeTags({ role: 'lb', other: 'dropped' }, 2)), 'lb');
});

test('tags over 512 bytes are refused', () => {
  assert.throws(
    () => encodeTags({ big: 'v'.repeat(600) }, 5),
    (e: unknown) => e instanceof SerfError && e.code === 'ERR_SERF_TAGS_TOO_LARGE',
  );
  assert.equal(encodeTags({ big: 'v'.repeat(500) }, 5).length, 1 + 1 + 4 + 3 + 500);
});

test('corrupt tag maps throw a SerfError', () => {
  for (const h of ['ff', 'ff81', 'ff81a16b', 'ff92a161a162', 'ff81a16b81a161a162']) {
    assert.throws(
      () => decodeTags(hex(h)),
      (e: unknown) => e instanceof SerfError && e.code === 'ERR_SERF_BAD_MESSAGE',
      h,
    );
  }
});

test('parseTag splits at the first =', () => {
  assert.deepEqual(parseTag('role=web'), ['role', 'web']);
  assert.deepEqual(parseTag('expr=a=b'), ['expr', 'a=b']);
  assert.deepEqual(parseTag('empty='), ['empty', '']);
  assert.throws(() => parseTag('novalue'), SerfError);
  assert.throws(() => parseTag('=v'), SerfError);
});

test('decoded tags come out in sorted key order whatever order the sender used', () => {
  // ff 82 a7 "version" a1 "7" a4 "role" a4 "serf": Go's random map order, version first.
  const meta = Uint8Array.from(Buffer.from('ff82a776657273696f6ea137a4726f6c65a473657266', 'hex'));
  assert.deepEqual(Object.keys(decodeTags(meta)), ['role', 'version']);
  assert.deepEqual(decodeTags(meta), { role: 'serf', version: '7' });
});
