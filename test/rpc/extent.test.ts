// msgpackExtent: the framing the server relies on must agree with the real decoder on where an
// object ends, on every prefix, and must refuse declared sizes beyond the budget up front.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMsgpackPrefix, encodeRpc, F64, type MsgValue } from '../../src/wire/index.ts';
import { msgpackExtent } from '../../src/rpc/extent.ts';

const SAMPLES: MsgValue[] = [
  0, 127, 128, 65535, 2 ** 32, -1, -33, -40000, -(2 ** 40), 2n ** 63n, new F64(1.5), 0.25, true, false, null,
  '', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300), 'w'.repeat(70000),
  new Uint8Array(0), new Uint8Array(200), new Uint8Array(70000),
  [], [1, 2, 3], Array.from({ length: 20 }, (_, i) => i), Array.from({ length: 70000 }, () => 0),
  {}, { a: 1, b: [1, { c: 'd' }] }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  { Members: [{ Name: 'n', Addr: new Uint8Array([127, 0, 0, 1]), Tags: { role: 'web' }, Port: 7946 }] },
];

test('extent of every sample equals the decoder end, with trailing bytes present', () => {
  for (const v of SAMPLES) {
    const enc = encodeRpc(v);
    const buf = new Uint8Array(enc.length + 3);
    buf.set(enc, 0);
    buf.set([0x01, 0x02, 0x03], enc.length);
    const ext = msgpackExtent(buf, 0, 1 << 20);
    assert.deepEqual(ext, { kind: 'complete', end: enc.length });
    assert.equal(decodeMsgpackPrefix(buf, 0, { strings: 'utf8' })?.end, enc.length);
  }
});

test('every strict prefix is incomplete (never complete, never an error)', () => {
  for (const v of SAMPLES) {
    const enc = encodeRpc(v);
    const step = enc.length > 2000 ? 997 : 1;
    for (let n = 0; n < enc.length; n += step) {
      assert.deepEqual(msgpackExtent(enc.subarray(0, n), 0, 1 << 20), { kind: 'incomplete' }, `prefix ${n}/${enc.length}`);
    }
  }
});

test('budget: an object ending exactly at the budget fits, one byte more is too large', () => {
  const enc = encodeRpc({ Name: 'x'.repeat(100) });
  assert.equal(msgpackExtent(enc, 0, enc.length).kind, 'complete');
  assert.equal(msgpackExtent(enc, 0, enc.length - 1).kind, 'too-large');
  // offsets other than 0 count from the offset
  const padded = new Uint8Array([9, 9, ...enc]);
  assert.deepEqual(msgpackExtent(padded, 2, enc.length), { kind: 'complete', end: enc.length + 2 });
});

test('declared sizes beyond the budget are refused from the header bytes alone', () => {
  const budget = 1024;
  const cases: [string, number[]][] = [
    ['str32 4 GiB', [0xdb, 0xff, 0xff, 0xff, 0xff]],
    ['bin32 4 GiB', [0xc6, 0xff, 0xff, 0xff, 0xff]],
    ['ext32', [0xc9, 0x00, 0x10, 0x00, 0x00]],
    ['map32 2^32-1 entries', [0xdf, 0xff, 0xff, 0xff, 0xff]],
    ['array16 65535 items', [0xdc, 0xff, 0xff]],
    ['str16 inside a map', [0x81, 0xa1, 0x41, 0xda, 0xff, 0xff]],
    ['nested arrays', [0x91, 0x91, 0xdd, 0x00, 0x01, 0x00, 0x00]],
  ];
  for (const [name, bytes] of cases) {
    assert.equal(msgpackExtent(new Uint8Array(bytes), 0, budget).kind, 'too-large', name);
  }
  // a length field cut short still needs more bytes (unless the field alone busts the budget)
  assert.equal(msgpackExtent(new Uint8Array([0xdb, 0x00]), 0, budget).kind, 'incomplete');
  assert.equal(msgpackExtent(new Uint8Array([0xdb, 0x00]), 0, 3).kind, 'too-large');
});

test('the never-used byte 0xc1 is malformed wherever it appears', () => {
  assert.deepEqual(msgpackExtent(new Uint8Array([0xc1]), 0, 100), { kind: 'malformed', byte: 0xc1 });
  assert.equal(msgpackExtent(new Uint8Array([0x82, 0xa1, 0x41, 0x01, 0xa1, 0x42, 0xc1]), 0, 100).kind, 'malformed');
});
