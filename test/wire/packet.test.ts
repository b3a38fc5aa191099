import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Keyring,
  WireError,
  crc32,
  decodePacket,
  encodeCompound,
  encodeMessage,
  encodePacket,
  lzwCompress,
  lzwDecompress,
  compressMessage,
  type Message,
} from '../../src/wire/index.ts';
import { V, hex, unhex } from './vectors.ts';

const isCode = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;
const PLAIN = { keyring: null, verifyIncoming: false } as const;
const noRandom = (n: number): Uint8Array => new Uint8Array(n);
const SEAL = { compress: false, keyring: null, randomBytes: noRandom } as const;

/** Captured datagram → messages → re-encoded with the same options → identical bytes. */
function roundTrip(h: string, crc: boolean, expectTypes: string[]): Message[] {
  const bytes = unhex(h);
  const { messages, errors } = decodePacket(bytes, PLAIN);
  assert.deepEqual(errors, []);
  assert.deepEqual(messages.map((m) => m.type), expectTypes);
  const again = encodePacket(messages.map(encodeMessage), { ...SEAL, crc });
  assert.equal(hex(again), hex(bytes));
  return messages;
}

test('CRC-32/IEEE matches the captured headers', () => {
  assert.equal(crc32(unhex(V.pingBA)).toString(16), '3d31284f');
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(new TextEncoder().encode('123456789')).toString(16), 'cbf43926');
});

test('captured UDP datagrams (9.1, 9.2) decode and re-encode byte for byte', () => {
  const [a, b] = roundTrip(V.gossipCompoundCrc, true, ['alive', 'alive']);
  assert.ok(a?.type === 'alive' && b?.type === 'alive');
  assert.deepEqual([a.node, b.node], ['a', 'b']);
  roundTrip(V.aliveB2Crc, true, ['alive']);
  roundTrip(V.pingSuspectCrc, true, ['ping', 'suspect']);
  roundTrip(V.suspectCrc, true, ['suspect']);
  roundTrip(V.nackDead, false, ['nack', 'dead']);
  roundTrip(V.pingBA, false, ['ping']);
  roundTrip(V.ackAB, false, ['ack']);
  roundTrip(V.indirectAB, false, ['indirectPing']);
  for (const h of [V.joinIntentCrc, V.leaveIntentCrc, V.userEventCrc]) roundTrip(h, true, ['user']);
  roundTrip(V.queryAck, false, ['user']);
});

test('CRC mismatch drops the whole datagram', () => {
  const bad = unhex(V.suspectCrc);
  bad[bad.length - 1]! ^= 0x01;
  assert.throws(() => decodePacket(bad, PLAIN), isCode('ERR_WIRE_CRC'));
  // a hasCrc header is only recognised outermost: inside a compound it is an unknown message
  const inner = encodeCompound([unhex(V.nack16), unhex(V.suspectCrc)]);
  const r = decodePacket(inner, PLAIN);
  assert.deepEqual(r.messages.map((m) => m.type), ['nack']);
  assert.equal(r.errors[0]?.code, 'ERR_WIRE_UNKNOWN_MESSAGE');
});

test('LZW: synthetic vectors (9.4) and round trips across table resets', () => {
  const te = new TextEncoder();
  assert.equal(hex(lzwCompress(new Uint8Array(0))), '000302');
  assert.equal(hex(lzwCompress(te.encode('a'))), '00c30404');
  assert.equal(hex(lzwCompress(te.encode('TOBEORNOTTOBEORTOBEORNOT'))), '00a93c1152e48914274fa80824687061c183090302');
  assert.equal(hex(lzwCompress(new Uint8Array(40))), '0001081c48b0a0c18308090604');
  for (const h of ['000302', '00c30404', '00a93c1152e48914274fa80824687061c183090302', '0001081c48b0a0c18308090604']) {
    assert.equal(hex(lzwCompress(lzwDecompress(unhex(h), 1000))), h);
  }
  // Inputs that run the code table full several times (the 4095 reset) and end at awkward points.
  let x = 12345;
  for (const n of [4094, 4095, 4096, 8191, 20000, 70000]) {
    const input = new Uint8Array(n).map(() => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 24) & 0x3f;
    });
    const c = lzwCompress(input);
    assert.deepEqual(lzwDecompress(c, n), input, `round trip ${n}`);
  }
});

test('LZW decoder rejects bombs, truncation and invalid codes with WireError', () => {
  const bomb = lzwCompress(new Uint8Array(1 << 20));
  assert.ok(bomb.length < 6000);
  assert.throws(() => lzwDecompress(bomb, 65536), isCode('ERR_WIRE_TOO_LARGE'));
  assert.equal(lzwDecompress(bomb, 1 << 20).length, 1 << 20);
  const ok = lzwCompress(new TextEncoder().encode('hello hello hello'));
  assert.throws(() => lzwDecompress(ok.subarray(0, ok.length - 2), 1000), isCode('ERR_WIRE_LZW'));
  // clear, then code 300 (not yet defined)
  assert.throws(() => lzwDecompress(unhex('005902'), 1000), isCode('ERR_WIRE_LZW'));
  assert.throws(() => lzwDecompress(new Uint8Array(0), 1000), isCode('ERR_WIRE_LZW'));
});

test('captured compressed ack (9.4) decodes and re-encodes byte for byte', () => {
  const bytes = unhex(V.compressedAck);
  assert.equal(bytes.length, 113);
  const { messages } = decodePacket(bytes, PLAIN);
  assert.equal(messages.length, 1);
  const ack = encodeMessage(messages[0]!);
  assert.equal(hex(ack), hex(unhex(V.ackAB)));
  assert.equal(hex(encodePacket([ack], { ...SEAL, compress: true, crc: false })), hex(bytes));
});

test('compression is used only when it makes the datagram shorter', () => {
  const nack = unhex(V.nack16);
  assert.equal(hex(encodePacket([nack], { ...SEAL, compress: true, crc: false })), hex(nack));
  const parts = [unhex(V.pingBA), unhex(V.pingBA), unhex(V.pingBA)];
  const packed = encodePacket(parts, { ...SEAL, compress: true, crc: true });
  assert.equal(packed[0], 12);
  assert.equal(packed[5], 9);
  assert.ok(packed.length < encodeCompound(parts).length);
  const { messages } = decodePacket(packed, PLAIN);
  assert.equal(messages.length, 3);
});

test('truncated compound keeps the complete parts and reports the rest', () => {
  const full = unhex(V.nackDead);
  const cut = full.subarray(0, full.length - 3);
  const r = decodePacket(cut, PLAIN);
  assert.deepEqual(r.messages, [{ type: 'nack', seqNo: 21 }]);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]?.code, 'ERR_WIRE_TRUNCATED');
  // nothing usable → throws
  assert.throws(() => decodePacket(full.subarray(0, 4), PLAIN), isCode('ERR_WIRE_TRUNCATED'));
  assert.throws(() => decodePacket(new Uint8Array(0), PLAIN), isCode('ERR_WIRE_TRUNCATED'));
  // a bad part among good ones
  const mixed = encodeCompound([unhex(V.nack16), unhex('0b81a55365714e6fa178'), new Uint8Array(0), unhex(V.nack16)]);
  const m = decodePacket(mixed, PLAIN);
  assert.equal(m.messages.length, 2);
  assert.equal(m.errors.length, 2);
  assert.throws(() => encodeCompound(new Array<Uint8Array>(256).fill(unhex(V.nack16))), isCode('ERR_WIRE_TOO_LARGE'));
  assert.throws(() => encodePacket([], { ...SEAL, crc: false }), isCode('ERR_WIRE_BAD_VALUE'));
});

test('compound/compress nesting is bounded', () => {
  let buf = unhex(V.nack16);
  for (let depth = 1; depth <= 6; depth++) {
    buf = depth % 2 === 1 ? encodeCompound([buf]) : compressMessage(buf);
    if (depth <= 4) {
      assert.deepEqual(decodePacket(buf, PLAIN).messages, [{ type: 'nack', seqNo: 16 }], `depth ${depth}`);
    } else {
      assert.throws(() => decodePacket(buf, PLAIN), isCode('ERR_WIRE_NESTING'), `depth ${depth}`);
    }
  }
});

test('encrypted datagrams: captured 51 bytes, synthetic vector, key rotation, plaintext policy', () => {
  const ring = Keyring.fromBase64([V.capturedKey]);
  const captured = decodePacket(unhex(V.capturedEncrypted), { keyring: ring, verifyIncoming: true });
  assert.equal(captured.messages.length, 1);
  assert.equal(hex(encodeMessage(captured.messages[0]!)), hex(unhex(V.joinIntentCrc).subarray(5)));

  const k128 = Keyring.fromBase64([V.synKey128]);
  const nonce = unhex(V.synNonce);
  const sealed = encodePacket([unhex(V.pingBA)], { compress: false, crc: false, keyring: k128, randomBytes: () => nonce });
  assert.equal(hex(sealed), hex(unhex(V.synV1)));
  // vsn 0 (protocol 1 peers) is accepted on receive
  assert.equal(decodePacket(unhex(V.synV0), { keyring: k128, verifyIncoming: true }).messages[0]?.type, 'ping');
  // secondary key still decrypts
  const rotated = new Keyring([new Uint8Array(32).fill(7), k128.primary()]);
  assert.equal(decodePacket(sealed, { keyring: rotated, verifyIncoming: true }).messages[0]?.type, 'ping');
  // wrong key
  assert.throws(() => decodePacket(sealed, { keyring: ring, verifyIncoming: true }), isCode('ERR_WIRE_DECRYPT'));
  // plaintext while encryption is required / tolerated
  const plain = unhex(V.suspectCrc);
  assert.throws(() => decodePacket(plain, { keyring: ring, verifyIncoming: true }), isCode('ERR_WIRE_NOT_ENCRYPTED'));
  assert.equal(decodePacket(plain, { keyring: ring, verifyIncoming: false }).messages[0]?.type, 'suspect');
  // encrypted datagram at a node without a keyring is garbage (vsn byte 01 = indirect ping)
  assert.throws(() => decodePacket(sealed, PLAIN), (e: unknown) => e instanceof WireError);
  // full pipeline: compound → compress → crc → encrypt and back
  let calls = 0;
  const out = encodePacket([unhex(V.pingBA), unhex(V.pingBA), unhex(V.ackAB)], {
    compress: true, crc: true, keyring: k128, randomBytes: (n) => { calls++; return new Uint8Array(n).fill(calls); },
  });
  assert.equal(calls, 1);
  assert.deepEqual(
    decodePacket(out, { keyring: k128, verifyIncoming: true }).messages.map((m) => m.type),
    ['ping', 'ping', 'ack'],
  );
});
