import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keyring, WireError, decryptPayload, encryptPayload, encryptedLength } from '../../src/wire/index.ts';
import { V, hex, unhex } from './vectors.ts';

const isCode = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;

test('captured 51-byte encrypted datagram (9.5) opens to the join intent', () => {
  const ring = Keyring.fromBase64([V.capturedKey]);
  const plain = decryptPayload(ring.keys(), unhex(V.capturedEncrypted), null);
  assert.equal(hex(plain), hex(unhex(V.joinIntentCrc)));
});

test('synthetic vectors (9.5): vsn 1 and vsn 0 (PKCS#7), AES-128 and AES-256, TCP AAD', () => {
  const ping = unhex(V.pingBA);
  const nonce = unhex(V.synNonce);
  const k128 = Keyring.fromBase64([V.synKey128]).primary();
  const k256 = new Uint8Array(32).map((_, i) => i);
  assert.equal(hex(encryptPayload(1, k128, ping, null, nonce)), hex(unhex(V.synV1)));
  assert.equal(hex(encryptPayload(0, k128, ping, null, nonce)), hex(unhex(V.synV0)));
  assert.equal(hex(encryptPayload(1, k256, ping, null, nonce)), hex(unhex(V.synV1Aes256)));
  const tcp = unhex(V.synTcp);
  assert.equal(hex(encryptPayload(1, k128, ping, tcp.subarray(0, 5), nonce)), hex(tcp.subarray(5)));
  for (const v of [V.synV1, V.synV0]) assert.equal(hex(decryptPayload([k128], unhex(v), null)), hex(ping));
  assert.equal(hex(decryptPayload([k128], tcp.subarray(5), tcp.subarray(0, 5))), hex(ping));
  // without the AAD the stream body does not verify
  assert.throws(() => decryptPayload([k128], tcp.subarray(5), null), isCode('ERR_WIRE_DECRYPT'));
  assert.equal(encryptedLength(1, 59), 88);
  assert.equal(encryptedLength(0, 59), 93);
  assert.equal(encryptedLength(0, 64), 1 + 12 + 80 + 16);
});

test('decrypt tries every key in order; wrong keys and malformed input → ERR_WIRE_DECRYPT', () => {
  const k128 = Keyring.fromBase64([V.synKey128]).primary();
  const other = new Uint8Array(16).fill(9);
  const other2 = new Uint8Array(24).fill(3);
  const msg = unhex(V.synV1);
  assert.equal(hex(decryptPayload([other, other2, k128], msg, null)), hex(unhex(V.pingBA)));
  assert.throws(() => decryptPayload([other, other2], msg, null), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => decryptPayload([k128], new Uint8Array(0), null), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => decryptPayload([k128], msg.subarray(0, 28), null), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => decryptPayload([k128], unhex(V.synV0).subarray(0, 44), null), isCode('ERR_WIRE_DECRYPT'));
  const v2 = Uint8Array.from(msg);
  v2[0] = 2;
  assert.throws(() => decryptPayload([k128], v2, null), isCode('ERR_WIRE_DECRYPT'));
  const flipped = Uint8Array.from(msg);
  flipped[40]! ^= 1;
  assert.throws(() => decryptPayload([k128], flipped, null), isCode('ERR_WIRE_DECRYPT'));
  // empty plaintext round trip (vsn 1 → 29 bytes, vsn 0 → 45 bytes)
  const nonce = new Uint8Array(12);
  assert.equal(encryptPayload(1, k128, new Uint8Array(0), null, nonce).length, 29);
  assert.equal(decryptPayload([k128], encryptPayload(0, k128, new Uint8Array(0), null, nonce), null).length, 0);
});

test('keyring: primary first, install/use/remove, dedupe, size checks', () => {
  const a = new Uint8Array(16).fill(1);
  const b = new Uint8Array(24).fill(2);
  const c = new Uint8Array(32).fill(3);
  const ring = new Keyring([a, b, a]);
  assert.equal(ring.keys().length, 2);
  assert.deepEqual(ring.primary(), a);
  ring.install(c);
  ring.install(c);
  assert.deepEqual(ring.keys(), [a, b, c]);
  ring.use(c);
  assert.deepEqual(ring.keys(), [c, a, b]);
  assert.throws(() => ring.remove(c), isCode('ERR_WIRE_KEYRING'));
  ring.remove(a);
  assert.deepEqual(ring.keys(), [c, b]);
  assert.throws(() => ring.use(a), isCode('ERR_WIRE_KEYRING'));
  assert.throws(() => ring.install(new Uint8Array(15)), isCode('ERR_WIRE_BAD_VALUE'));
  assert.throws(() => new Keyring([]), isCode('ERR_WIRE_KEYRING'));
  assert.throws(() => Keyring.fromBase64(['not base64!']), isCode('ERR_WIRE_BAD_VALUE'));
  assert.throws(() => Keyring.fromBase64(['AAAA']), isCode('ERR_WIRE_BAD_VALUE'));
  // the ring keeps its own copies
  const keys = ring.keys();
  keys.pop();
  assert.equal(ring.keys().length, 2);
});
