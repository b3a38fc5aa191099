import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  F64,
  WireError,
  asArray,
  asBool,
  asBytes,
  asInt,
  asMap,
  asString,
  asUint,
  bytesToIp,
  decodeMsgpack,
  decodeMsgpackPrefix,
  encodeGossip,
  encodeGossipString,
  encodeRpc,
  ipToBytes,
  skipMsgpackPrefix,
  decodeStructAt,
  type MsgValue,
} from '../../src/wire/index.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const G = { strings: 'bytes' } as const;
const U = { strings: 'utf8' } as const;

function assertWireError(fn: () => unknown, code?: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WireError, `expected WireError, got ${String(e)}`);
    if (code !== undefined) assert.equal(e.code, code);
    return;
  }
  assert.fail('expected a WireError');
}

test('strings: old spec for gossip, new spec for RPC, at every length boundary', () => {
  const cases: Array<[number, string, string]> = [
    // length, gossip header, rpc header
    [0, 'a0', 'a0'],
    [31, 'bf', 'bf'],
    [32, 'da0020', 'd920'],
    [255, 'da00ff', 'd9ff'],
    [256, 'da0100', 'da0100'],
    [65535, 'daffff', 'daffff'],
    [65536, 'db00010000', 'db00010000'],
  ];
  for (const [len, gh, rh] of cases) {
    const s = 'x'.repeat(len);
    const body = '78'.repeat(len);
    assert.equal(hex(encodeGossip(s)), gh + body, `gossip string ${len}`);
    assert.equal(hex(encodeRpc(s)), rh + body, `rpc string ${len}`);
    // bytes: gossip uses the same str family; RPC uses bin.
    const b = new Uint8Array(len).fill(0x78);
    assert.equal(hex(encodeGossip(b)), gh + body, `gossip bytes ${len}`);
    const binHead = len < 256 ? `c4${len.toString(16).padStart(2, '0')}` : len < 65536 ? `c5${len.toString(16).padStart(4, '0')}` : `c6${len.toString(16).padStart(8, '0')}`;
    assert.equal(hex(encodeRpc(b)), binHead + body, `rpc bytes ${len}`);
    // gossip output never contains d9 or bin headers
    const g = encodeGossip(s);
    assert.ok(g[0] !== 0xd9 && !(g[0]! >= 0xc4 && g[0]! <= 0xc6));
    // round trip both ways
    assert.deepEqual(decodeMsgpack(g, G), b);
    assert.equal(decodeMsgpack(encodeRpc(s), U), s);
    assert.deepEqual(decodeMsgpack(encodeRpc(b), U), b);
  }
});

test('utf-8 strings count bytes, not UTF-16 units', () => {
  const s = 'é'.repeat(16) + '😀'; // 32 + 4 bytes
  const g = encodeGossip(s);
  assert.equal(hex(g.subarray(0, 3)), 'da0024');
  assert.equal(decodeMsgpack(g, U), s);
  assert.equal(asString(decodeMsgpack(g, G)), s);
});

test('integers use the smallest encoding of the value, including negatives and uint64', () => {
  const cases: Array<[number | bigint, string]> = [
    [0, '00'],
    [127, '7f'],
    [128, 'cc80'],
    [255, 'ccff'],
    [256, 'cd0100'],
    [7946, 'cd1f0a'],
    [65535, 'cdffff'],
    [65536, 'ce00010000'],
    [461882688, 'ce1b87c540'],
    [4294967295, 'ceffffffff'],
    [4294967296, 'cf0000000100000000'],
    [Number.MAX_SAFE_INTEGER, 'cf001fffffffffffff'],
    [18446744073709551615n, 'cfffffffffffffffff'],
    [2n ** 40n, 'cf0000010000000000'],
    [5n, '05'],
    [-1, 'ff'],
    [-32, 'e0'],
    [-33, 'd0df'],
    [-128, 'd080'],
    [-129, 'd1ff7f'],
    [-32768, 'd18000'],
    [-32769, 'd2ffff7fff'],
    [-2147483648, 'd280000000'],
    [-2147483649, 'd3ffffffff7fffffff'],
    [-(2n ** 63n), 'd38000000000000000'],
  ];
  for (const [v, h] of cases) {
    assert.equal(hex(encodeGossip(v)), h, `encode ${v}`);
    assert.equal(hex(encodeRpc(v)), h, `encode rpc ${v}`);
    const d = decodeMsgpack(unhex(h), G);
    const big = typeof v === 'bigint' ? v : BigInt(v);
    const safe = big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER);
    assert.deepEqual(d, safe ? Number(big) : big, `decode ${h}`);
  }
  assertWireError(() => encodeGossip(2n ** 64n), 'ERR_WIRE_BAD_VALUE');
  assertWireError(() => encodeGossip(-(2n ** 63n) - 1n), 'ERR_WIRE_BAD_VALUE');
});

test('decoder accepts any integer width for any value', () => {
  for (const h of ['05', 'cc05', 'cd0005', 'ce00000005', 'cf0000000000000005', 'd005', 'd10005', 'd200000005', 'd30000000000000005']) {
    assert.equal(asUint(decodeMsgpack(unhex(h), G)), 5, h);
  }
  assert.equal(asInt(decodeMsgpack(unhex('d0fe'), G)), -2);
  assertWireError(() => asUint(decodeMsgpack(unhex('ff'), G)), 'ERR_WIRE_BAD_VALUE');
  assertWireError(() => asUint(decodeMsgpack(unhex('cfffffffffffffffff'), G)), 'ERR_WIRE_BAD_VALUE');
});

test('floats: non-integers and F64 always use float64 (cb), float32 decodes', () => {
  assert.equal(hex(encodeGossip(1.5)), 'cb3ff8000000000000');
  assert.equal(hex(encodeGossip(new F64(0))), 'cb0000000000000000');
  assert.equal(hex(encodeGossip(1e-5)), 'cb3ee4f8b588e368f1');
  assert.equal(hex(encodeGossip(new F64(3))), 'cb4008000000000000');
  assert.equal(decodeMsgpack(unhex('cb3ff8000000000000'), G), 1.5);
  assert.equal(decodeMsgpack(unhex('ca3fc00000'), G), 1.5);
  assert.equal(hex(encodeGossip(NaN)).slice(0, 2), 'cb');
});

test('maps: keys sorted by byte order, undefined omitted, nested containers', () => {
  const v = { Vsn: new Uint8Array([1, 5, 2, 2, 5, 5]), Port: 7947, Node: 'b', Meta: undefined, Addr: new Uint8Array([127, 0, 0, 1]) };
  assert.equal(hex(encodeGossip(v)), '84a441646472a47f000001a44e6f6465a162a4506f7274cd1f0ba356736ea6010502020505');
  // 'Z' (0x5a) sorts before 'a' (0x61): byte order, not case-insensitive
  assert.equal(hex(encodeGossip({ a: 1, Z: 2 })), '82a15a02a16101');
  // empty / nil
  assert.equal(hex(encodeGossip({})), '80');
  assert.equal(hex(encodeGossip([])), '90');
  assert.equal(hex(encodeGossip(null)), 'c0');
  assert.equal(hex(encodeGossip(new Uint8Array(0))), 'a0');
  assert.equal(hex(encodeRpc(new Uint8Array(0))), 'c400');
  assert.equal(hex(encodeGossip(true)), 'c3');
  assert.equal(hex(encodeGossip(false)), 'c2');
  // 16 entries → map16 / array16
  const big: Record<string, MsgValue> = {};
  for (let i = 0; i < 16; i++) big[`k${String(i).padStart(2, '0')}`] = i;
  assert.equal(hex(encodeGossip(big).subarray(0, 3)), 'de0010');
  assert.equal(hex(encodeGossip(new Array<MsgValue>(16).fill(0)).subarray(0, 3)), 'dc0010');
  assert.equal(hex(encodeGossip(new Array<MsgValue>(65536).fill(0)).subarray(0, 5)), 'dd00010000');
  // round trip of nested values (gossip decode gives bytes for strings)
  const nested = { A: [1, -2, { B: null, C: [true, false] }], D: 'x' };
  const back = asMap(decodeMsgpack(encodeGossip(nested), U));
  assert.equal(back.D, 'x');
  assert.deepEqual(asArray(back.A)[0], 1);
  assert.equal(Object.getPrototypeOf(back), null);
});

test('decoder accepts str8, bin, map keys of any string kind, any key order, missing fields', () => {
  // {"Node": "a"} with d9 value, bin key
  const m = asMap(decodeMsgpack(unhex('81c4044e6f6465d90161'), G));
  assert.deepEqual(m.Node, new Uint8Array([0x61]));
  assert.equal(asString(m.Node), 'a');
  assert.equal(asString(m.Missing), '');
  assert.equal(asBytes(m.Missing), null);
  assert.equal(asUint(m.Missing), 0);
  assert.equal(asBool(m.Missing), false);
  assert.deepEqual(asArray(m.Missing), []);
  assert.equal(asString(null), '');
  // utf8 mode: str → string, bin → bytes
  const u = asMap(decodeMsgpack(unhex('82a161c40101a162a178'), U));
  assert.deepEqual(u.a, new Uint8Array([1]));
  assert.equal(u.b, 'x');
  assertWireError(() => asString(5), 'ERR_WIRE_TYPE');
  assertWireError(() => asMap([]), 'ERR_WIRE_TYPE');
  assertWireError(() => asBool(1), 'ERR_WIRE_TYPE');
  assertWireError(() => asArray('x'), 'ERR_WIRE_TYPE');
  assertWireError(() => asUint(1.5), 'ERR_WIRE_TYPE');
});

test('truncated, oversized, deep and malformed input only ever throws WireError', () => {
  const full = encodeGossip({ Name: 'node', List: [1, 2, 3], Data: new Uint8Array(300), N: 70000 });
  for (let i = 0; i < full.length; i++) {
    assertWireError(() => decodeMsgpack(full.subarray(0, i), G), 'ERR_WIRE_TRUNCATED');
    assert.equal(decodeMsgpackPrefix(full.subarray(0, i), 0, G), undefined, `prefix ${i}`);
  }
  assertWireError(() => decodeMsgpack(new Uint8Array([...full, 0]), G), 'ERR_WIRE_BAD_VALUE');
  // A 4-billion-entry array header must not allocate.
  assertWireError(() => decodeMsgpack(unhex('ddffffffff00'), G), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => decodeMsgpack(unhex('dd0000100000'), G), 'ERR_WIRE_TRUNCATED');
  assertWireError(() => decodeMsgpack(unhex('dbffffffff'), G), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => decodeMsgpack(unhex('dfffffffff'), G), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => decodeMsgpack(unhex('c1'), G), 'ERR_WIRE_TYPE');
  assertWireError(() => decodeMsgpack(unhex('d40100'), G), 'ERR_WIRE_TYPE');
  assertWireError(() => decodeMsgpack(unhex('81c0c0'), G), 'ERR_WIRE_TYPE'); // nil key
  assertWireError(() => decodeMsgpack(new Uint8Array(0), G), 'ERR_WIRE_TRUNCATED');
  const deep = new Uint8Array(100).fill(0x91);
  assertWireError(() => decodeMsgpack(deep, G), 'ERR_WIRE_NESTING');
  assertWireError(() => decodeMsgpack(unhex('929191919100'), { strings: 'bytes', maxDepth: 3 }), 'ERR_WIRE_NESTING');
  assertWireError(() => decodeMsgpack(unhex('93000000'), { strings: 'bytes', maxItems: 2 }), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => decodeMsgpack(unhex('a3616263'), { strings: 'bytes', maxBytes: 2 }), 'ERR_WIRE_TOO_LARGE');
  // oversized declarations are errors in prefix mode too, not "need more"
  assertWireError(() => decodeMsgpackPrefix(unhex('dbffffffff'), 0, G), 'ERR_WIRE_TOO_LARGE');
  const deepArr: MsgValue = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]];
  assertWireError(() => encodeGossip(deepArr), 'ERR_WIRE_NESTING');
});

test('decodeMsgpackPrefix decodes consecutive objects and reports their ends', () => {
  const a = encodeGossip({ Join: true, Nodes: 1, UserStateLen: 3 });
  const b = encodeGossip('hi');
  const buf = new Uint8Array([0x06, ...a, ...b, 1, 2, 3]);
  const first = decodeMsgpackPrefix(buf, 1, U);
  assert.ok(first);
  assert.equal(first.end, 1 + a.length);
  assert.equal(asMap(first.value).Join, true);
  const second = decodeMsgpackPrefix(buf, first.end, U);
  assert.deepEqual(second, { value: 'hi', end: 1 + a.length + b.length });
});

test('IP addresses: 4/16 bytes to Go-style text and back', () => {
  assert.deepEqual(ipToBytes('127.0.0.1'), new Uint8Array([127, 0, 0, 1]));
  assert.equal(bytesToIp(new Uint8Array([10, 1, 2, 3])), '10.1.2.3');
  assert.equal(bytesToIp(ipToBytes('::1')), '::1');
  assert.equal(bytesToIp(ipToBytes('fe80::1%eth0')), 'fe80::1');
  assert.equal(bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(bytesToIp(ipToBytes('::ffff:10.0.0.1')), '10.0.0.1');
  assert.equal(bytesToIp(ipToBytes('[::]')), '::');
  assert.equal(ipToBytes('1:2:3:4:5:6:7:8').length, 16);
  for (const badIp of ['', '1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', 'localhost']) {
    assertWireError(() => ipToBytes(badIp), 'ERR_WIRE_BAD_VALUE');
  }
  assertWireError(() => bytesToIp(new Uint8Array(5)), 'ERR_WIRE_BAD_VALUE');
});

test('skipMsgpackPrefix finds the same end as decoding, on every prefix, without building values', () => {
  const values: MsgValue[] = [
    0, -1, 200, -200, 70000, -70000, 2 ** 40, -(2 ** 40), 1.5, new F64(2), true, false, null,
    'x'.repeat(40), new Uint8Array(300), [1, [2, [3, 'abc']]], { A: { B: [null, 1.25] }, C: new Uint8Array(3) },
    new Array<MsgValue>(20).fill('ab'),
  ];
  for (const spec of [encodeGossip, encodeRpc]) {
    for (const v of values) {
      const enc = new Uint8Array([...spec(v), 0xc1]); // a trailing byte that must not be consumed
      for (let i = 0; i <= enc.length; i++) {
        const part = enc.subarray(0, i);
        assert.equal(skipMsgpackPrefix(part, 0, G), decodeMsgpackPrefix(part, 0, G)?.end, `${hex(enc)} prefix ${i}`);
      }
    }
  }
  // 32-bit float and the limits/errors of the decoder apply as well
  assert.equal(skipMsgpackPrefix(unhex('ca3fc00000'), 0, G), 5);
  assertWireError(() => skipMsgpackPrefix(unhex('dbffffffff'), 0, G), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => skipMsgpackPrefix(unhex('ddffffffff'), 0, G), 'ERR_WIRE_TOO_LARGE');
  assertWireError(() => skipMsgpackPrefix(new Uint8Array(100).fill(0x91), 0, G), 'ERR_WIRE_NESTING');
  assertWireError(() => skipMsgpackPrefix(unhex('c1'), 0, G), 'ERR_WIRE_TYPE');
  assert.equal(skipMsgpackPrefix(unhex('dd0000100000'), 0, G), undefined);
});

test('hostile keys (__proto__, toString) are plain own properties, in both map kinds', () => {
  // {"__proto__": {"x": 1}, "toString": 1, "SeqA": 2}
  const enc = unhex('83a95f5f70726f746f5f5f81a17801a8746f537472696e6701a45365714102');
  for (const m of [asMap(decodeMsgpack(enc, U)), asMap(decodeStructAt(enc, 0).value)]) {
    assert.deepEqual(Object.keys(m).sort(), ['SeqA', '__proto__', 'toString']);
    assert.equal(m.toString, 1);
    assert.equal(Object.prototype.hasOwnProperty.call(m, '__proto__'), true);
    assert.equal('hasOwnProperty' in m, false, 'nothing inherited from Object.prototype');
    assert.equal(({} as Record<string, unknown>).x, undefined, 'Object.prototype untouched');
  }
  assertWireError(() => decodeStructAt(unhex('82a161'), 0), 'ERR_WIRE_TRUNCATED');
});

test('encodeGossipString gives encodeGossip\'s bytes for strings of every header size', () => {
  for (const s of ['', 'a', 'node-0001', 'x'.repeat(31), 'x'.repeat(32), 'ノード'.repeat(20), 'y'.repeat(70_000)]) {
    assert.deepEqual(encodeGossipString(s), encodeGossip(s), `length ${s.length}`);
  }
});
