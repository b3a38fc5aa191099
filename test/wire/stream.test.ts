import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Keyring,
  WireError,
  decodeMessage,
  decodeStream,
  encodeGossip,
  encodeMessage,
  encodeStream,
  encodeStreamMessage,
  streamFrameLength,
  type Message,
} from '../../src/wire/index.ts';
import { V, hex, unhex } from './vectors.ts';

const isCode = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;
const PLAIN = { keyring: null, verifyIncoming: false } as const;
const zeros = (n: number): Uint8Array => new Uint8Array(n);
const k128 = Keyring.fromBase64([V.synKey128]);

/** Feeding the frame one byte at a time: undefined until the last byte, then the exact length,
 *  also with unrelated bytes after it. */
function assertFramesExactly(frame: Uint8Array): void {
  for (let i = 0; i < frame.length; i++) {
    assert.equal(streamFrameLength(frame.subarray(0, i)), undefined, `prefix ${i}/${frame.length}`);
  }
  assert.equal(streamFrameLength(frame), frame.length);
  const more = new Uint8Array(frame.length + 7).fill(0xc1);
  more.set(frame);
  assert.equal(streamFrameLength(more), frame.length);
}

test('synthetic encrypted TCP frame (9.5): AAD is the 5-byte header', () => {
  const ping = unhex(V.pingBA);
  const frame = encodeStream(ping, { compress: false, keyring: k128, randomBytes: () => unhex(V.synNonce) });
  assert.equal(hex(frame), hex(unhex(V.synTcp)));
  assertFramesExactly(frame);
  assert.deepEqual(decodeStream(frame, { keyring: k128, verifyIncoming: true }), decodeMessage(ping));
  // tampering with the length header breaks the tag
  const bad = Uint8Array.from(frame);
  bad[4] = 0x57;
  assert.throws(() => decodeStream(bad, { keyring: k128, verifyIncoming: true }), (e: unknown) => e instanceof WireError);
});

test('captured push/pull (9.3) frames on every prefix, plain and compressed and encrypted', () => {
  const pp = unhex(V.pushPullJoin);
  assertFramesExactly(pp);
  const expected = decodeMessage(pp);
  assert.deepEqual(decodeStream(pp, PLAIN), expected);
  const compressed = encodeStream(pp, { compress: true, keyring: null, randomBytes: zeros });
  assert.equal(compressed[0], 9);
  assert.ok(compressed.length < pp.length);
  assertFramesExactly(compressed);
  assert.deepEqual(decodeStream(compressed, PLAIN), expected);
  const sealed = encodeStream(pp, { compress: true, keyring: k128, randomBytes: zeros });
  assert.equal(sealed[0], 10);
  assert.equal(new DataView(sealed.buffer).getUint32(1), sealed.length - 5);
  assertFramesExactly(sealed);
  assert.deepEqual(decodeStream(sealed, { keyring: k128, verifyIncoming: true }), expected);
});

test('stream ping, ack, err and user messages round trip through framing', () => {
  const msgs: Message[] = [
    { type: 'ping', seqNo: 9, node: 'a' },
    { type: 'ack', seqNo: 9, payload: null },
    { type: 'err', error: 'remote said no' },
    { type: 'user', payload: new Uint8Array([1, 2, 3, 4, 5]) },
    { type: 'pushPull', join: false, nodes: [], userState: new Uint8Array(0) },
  ];
  for (const m of msgs) {
    for (const compress of [false, true]) {
      for (const keyring of [null, k128]) {
        const frame = encodeStream(encodeStreamMessage(m), { compress, keyring, randomBytes: zeros });
        assertFramesExactly(frame);
        const back = decodeStream(frame, { keyring, verifyIncoming: keyring !== null });
        assert.deepEqual(back, m.type === 'ping' ? { ...m, sourceAddr: undefined, sourcePort: undefined, sourceNode: undefined } : m);
      }
    }
  }
  // user message stream form carries {UserMsgLen}
  assert.equal(hex(encodeStreamMessage({ type: 'user', payload: new Uint8Array([0xaa]) })), '0881aa557365724d73674c656e01aa');
});

test('garbage is rejected early: unknown type, oversized declarations, bad headers', () => {
  for (const t of [1, 3, 4, 5, 7, 11, 12, 0xf4, 0xff]) {
    assert.throws(() => streamFrameLength(new Uint8Array([t])), isCode('ERR_WIRE_UNKNOWN_MESSAGE'), `type ${t}`);
  }
  assert.throws(() => streamFrameLength(unhex('0a7fffffff')), isCode('ERR_WIRE_TOO_LARGE'));
  assert.throws(() => streamFrameLength(unhex('0a00000010')), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => streamFrameLength(unhex('0a00000100'), 100), isCode('ERR_WIRE_TOO_LARGE'));
  // push/pull header declaring 30 MB of user state
  const hugeState = new Uint8Array([6, ...encodeGossip({ Join: false, Nodes: 0, UserStateLen: 30_000_000 })]);
  assert.throws(() => streamFrameLength(hugeState), isCode('ERR_WIRE_TOO_LARGE'));
  const negative = new Uint8Array([6, ...encodeGossip({ Join: false, Nodes: -1, UserStateLen: 0 })]);
  assert.throws(() => streamFrameLength(negative), isCode('ERR_WIRE_BAD_VALUE'));
  const userHuge = new Uint8Array([8, ...encodeGossip({ UserMsgLen: 1e9 })]);
  assert.throws(() => streamFrameLength(userHuge), isCode('ERR_WIRE_TOO_LARGE'));
  // a msgpack string header declaring 4 GB inside a ping
  assert.throws(() => streamFrameLength(unhex('0081a44e6f6465dbffffffff')), isCode('ERR_WIRE_TOO_LARGE'));
  // endless bytes that never complete a small limit
  const pad = new Uint8Array(200).fill(0xc0);
  pad.set([0x00, 0xdc, 0xff, 0xff]);
  assert.throws(() => streamFrameLength(pad, 100), isCode('ERR_WIRE_TOO_LARGE'));
  assert.equal(streamFrameLength(pad.subarray(0, 50), 100), undefined);
});

test('decodeStream enforces the encryption policy', () => {
  const ping = encodeMessage({ type: 'ping', seqNo: 1, node: '' });
  const sealed = encodeStream(ping, { compress: false, keyring: k128, randomBytes: zeros });
  assert.throws(() => decodeStream(sealed, PLAIN), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => decodeStream(ping, { keyring: k128, verifyIncoming: true }), isCode('ERR_WIRE_NOT_ENCRYPTED'));
  assert.equal(decodeStream(ping, { keyring: k128, verifyIncoming: false }).type, 'ping');
  const other = new Keyring([new Uint8Array(16).fill(5)]);
  assert.throws(() => decodeStream(sealed, { keyring: other, verifyIncoming: true }), isCode('ERR_WIRE_DECRYPT'));
  assert.throws(() => decodeStream(sealed.subarray(0, 20), { keyring: k128, verifyIncoming: true }), isCode('ERR_WIRE_TRUNCATED'));
  assert.throws(() => decodeStream(unhex(V.nack16), PLAIN), isCode('ERR_WIRE_UNKNOWN_MESSAGE'));
});
