// Seeded property test of every decoder that faces the network. Properties:
//  1. whatever bytes arrive, decodePacket / streamFrameLength / decodeStream either return or
//     throw a WireError — never another exception, never a hang (each call is timed);
//  2. every randomly generated message survives encode → decode unchanged, alone, inside packets
//     (compound/compress/crc/encrypt) and inside streams.
// The seed is printed; `KODAMA_SEED=<n> npm run test:unit -- fuzz` replays a run exactly.
import { test } from 'node:test';
import { mulberry32 } from '../lib/random.ts';
import assert from 'node:assert/strict';
import {
  Keyring,
  WireError,
  compressMessage,
  decodeMessage,
  decodePacket,
  decodeStream,
  encodeCompound,
  encodeGossip,
  encodeGossipAfter,
  encodeMessage,
  encodePacket,
  encodeStream,
  encodeStreamMessage,
  lzwCompress,
  streamFrameLength,
  type Message,
  type PushNodeState,
  type Vsn,
} from '../../src/wire/index.ts';

const SEED = process.env.KODAMA_SEED !== undefined ? Number(process.env.KODAMA_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
// A fixed number of inputs (not "as many as fit in N seconds") so a seed replays exactly.
const INPUTS = 100_000;
// ~10 s on an idle 2-core box. The guards only catch hangs: one call inflating a 20 MiB LZW bomb
// to the limit takes ~150 ms idle; 5 s for one call or 120 s for all means stuck, even when busy.
const HANG_TOTAL_MS = 120_000;
const SLOW_CALL_MS = 5_000;


const rand = mulberry32(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
const bytes = (n: number): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const u32 = (): number => pick([0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, int(4294967296), int(1000)]);

function str(): string {
  const n = int(12);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rand();
    // mostly ASCII names, some multi-byte and astral characters (never lone surrogates)
    s += r < 0.8 ? String.fromCharCode(0x61 + int(26)) : r < 0.95 ? String.fromCharCode(0x100 + int(0x7000)) : String.fromCodePoint(0x1f600 + int(80));
  }
  return s;
}

const ip = (): Uint8Array => bytes(rand() < 0.8 ? 4 : 16);
const vsn = (): Vsn => [int(256), int(256), int(256), int(256), int(256), int(256)];
const opt = <T>(f: () => T): T | undefined => (rand() < 0.5 ? undefined : f());
const nonEmptyStr = (): string => str() || 'x';

function nodeState(): PushNodeState {
  return {
    name: str(),
    addr: ip(),
    port: int(65536),
    meta: bytes(int(40)),
    incarnation: u32(),
    state: pick(['alive', 'suspect', 'dead', 'left'] as const),
    vsn: vsn(),
  };
}

function message(): Message {
  switch (int(10)) {
    case 0:
      return { type: 'ping', seqNo: u32(), node: str(), sourceAddr: opt(ip), sourcePort: opt(() => 1 + int(65535)), sourceNode: opt(nonEmptyStr) };
    case 1:
      return {
        type: 'indirectPing', seqNo: u32(), target: ip(), port: int(65536), node: str(), nack: rand() < 0.5,
        sourceAddr: opt(ip), sourcePort: opt(() => 1 + int(65535)), sourceNode: opt(nonEmptyStr),
      };
    case 2:
      return { type: 'ack', seqNo: u32(), payload: rand() < 0.3 ? null : bytes(int(300)) };
    case 3:
      return { type: 'nack', seqNo: u32() };
    case 4:
      return { type: 'suspect', incarnation: u32(), node: str(), from: str() };
    case 5:
      return { type: 'alive', incarnation: u32(), node: str(), addr: ip(), port: int(65536), meta: bytes(int(60)), vsn: vsn() };
    case 6:
      return { type: 'dead', incarnation: u32(), node: str(), from: str() };
    case 7:
      return { type: 'pushPull', join: rand() < 0.5, nodes: Array.from({ length: int(6) }, nodeState), userState: bytes(int(100)) };
    case 8:
      return { type: 'user', payload: bytes(int(200)) };
    default:
      return { type: 'err', error: str() };
  }
}

const ring = new Keyring([bytes(16), bytes(32)]);
const otherRing = new Keyring([bytes(24)]);
const nonce = (n: number): Uint8Array => bytes(n);

// Oversized declarations and bombs, built once.
const hostile: Uint8Array[] = [
  new Uint8Array([7, 255, ...new Uint8Array(510).fill(0xff)]), // 255 parts of 65535 bytes, no data
  new Uint8Array([7, 255]),
  new Uint8Array([0, 0xdb, 0xff, 0xff, 0xff, 0xff]), // ping body: 4 GB string
  new Uint8Array([0, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]), // 4 G element array
  new Uint8Array([0, 0xdf, 0x7f, 0xff, 0xff, 0xff]), // 2 G entry map
  new Uint8Array([6, ...encodeGossip({ Join: true, Nodes: 2 ** 31, UserStateLen: 2 ** 31 })]),
  new Uint8Array([8, ...encodeGossip({ UserMsgLen: 2 ** 40 })]),
  new Uint8Array([10, 0xff, 0xff, 0xff, 0xff]),
  new Uint8Array(200).fill(0x91), // deeply nested arrays
  encodeGossipAfter([9], { Algo: 0, Buf: lzwCompress(new Uint8Array(2 * 1024 * 1024)) }), // 2 MiB bomb for UDP
  encodeGossipAfter([9], { Algo: 7, Buf: new Uint8Array(4) }),
  encodeGossipAfter([9], { Algo: 0, Buf: bytes(64) }),
];
// A stream-sized bomb: 21 MiB of zeros in ~100 KB, above MAX_STREAM_BYTES once inflated.
const streamBomb = encodeGossipAfter([9], { Algo: 0, Buf: lzwCompress(new Uint8Array(21 * 1024 * 1024)) });
hostile.push(streamBomb);
let nested = encodeMessage({ type: 'nack', seqNo: 1 });
for (let i = 0; i < 8; i++) {
  nested = i % 2 === 0 ? encodeCompound([nested, nested]) : compressMessage(nested);
  hostile.push(nested);
}

let calls = 0;
let slowest = 0;
const codes = new Map<string, number>();

function guarded(label: string, input: Uint8Array, f: () => unknown): void {
  const t0 = performance.now();
  try {
    f();
  } catch (e) {
    if (!(e instanceof WireError)) {
      assert.fail(`${label}: non-WireError ${String(e)} (seed ${SEED}) input ${Buffer.from(input.subarray(0, 64)).toString('hex')}`);
    }
    codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
  }
  const dt = performance.now() - t0;
  if (dt > slowest) slowest = dt;
  if (dt > SLOW_CALL_MS) assert.fail(`${label} took ${dt.toFixed(0)} ms (seed ${SEED})`);
  calls++;
}

/** Every network-facing decoder on one input. */
function attack(input: Uint8Array): void {
  guarded('decodePacket', input, () => {
    // Whatever the decoder accepts, the encoder reproduces: no value it yields is unencodable
    // or changes on a second pass.
    for (const m of decodePacket(input, { keyring: null, verifyIncoming: false }).messages) {
      assert.deepEqual(decodeMessage(encodeMessage(m)), m, `re-encode of accepted input (seed ${SEED})`);
    }
  });
  guarded('streamFrameLength', input, () => streamFrameLength(input, rand() < 0.5 ? undefined : int(4096)));
  guarded('decodeStream', input, () => {
    const m = decodeStream(input, { keyring: null, verifyIncoming: false });
    const again = encodeStreamMessage(m);
    assert.equal(streamFrameLength(again), again.length);
    assert.deepEqual(decodeStream(again, { keyring: null, verifyIncoming: false }), m, `stream re-encode (seed ${SEED})`);
  });
  if (rand() < 0.25) {
    guarded('decodePacket+keyring', input, () => decodePacket(input, { keyring: ring, verifyIncoming: rand() < 0.5 }));
    guarded('decodeStream+keyring', input, () => decodeStream(input, { keyring: ring, verifyIncoming: rand() < 0.5 }));
  }
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  const d = Math.min(del, b.length - at);
  const out = new Uint8Array(b.length - d + ins.length);
  out.set(b.subarray(0, at));
  out.set(ins, at);
  out.set(b.subarray(at + d), at + ins.length);
  return out;
}

const SPECIAL = [0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xd9, 0xdb, 0xdd, 0xdf, 0xff, 7, 9, 12];

function mutate(input: Uint8Array): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input);
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e++) {
    const at = int(b.length + 1);
    switch (int(5)) {
      case 0:
        if (at < b.length) b[at] = (b[at] as number) ^ (1 << int(8));
        break;
      case 1:
        if (at < b.length) b[at] = pick(SPECIAL);
        break;
      case 2:
        b = splice(b, at, 0, Uint8Array.of(int(256)));
        break;
      case 3:
        b = splice(b, at, 1 + int(8), new Uint8Array(0));
        break;
      default: {
        const from = int(b.length + 1);
        b = splice(b, at, 0, b.slice(from, from + 16));
      }
    }
  }
  return b;
}

function validPacket(): Uint8Array {
  const parts = Array.from({ length: 1 + int(5) }, () => encodeMessage(message()));
  return encodePacket(parts, {
    compress: rand() < 0.5,
    crc: rand() < 0.5,
    keyring: rand() < 0.2 ? ring : null,
    randomBytes: nonce,
  });
}

function validStream(): Uint8Array {
  return encodeStream(encodeStreamMessage(message()), { compress: rand() < 0.5, keyring: rand() < 0.2 ? ring : null, randomBytes: nonce });
}

// Valid inputs to mutate come from pools that are refreshed slowly: generating (and compressing,
// encrypting) a fresh one per input would spend most of the time budget outside the decoders.
const POOL_SIZE = 300;
const packetPool: Uint8Array[] = [];
const streamPool: Uint8Array[] = [];
function fromPool(pool: Uint8Array[], make: () => Uint8Array): Uint8Array {
  if (pool.length < POOL_SIZE) {
    const fresh = make();
    pool.push(fresh);
    return fresh;
  }
  if (rand() < 0.05) pool[int(POOL_SIZE)] = make();
  return pool[int(POOL_SIZE)] as Uint8Array;
}

/** Property 2: round trips. */
function roundTrip(): void {
  const msgs = Array.from({ length: 1 + int(4) }, message);
  const encoded = msgs.map(encodeMessage);
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i] as Message;
    // The decoder always materialises the optional Source* keys.
    const expect = m.type === 'ping' || m.type === 'indirectPing' ? { ...m, sourceAddr: m.sourceAddr, sourcePort: m.sourcePort, sourceNode: m.sourceNode } : m;
    assert.deepEqual(decodeMessage(encoded[i] as Uint8Array), expect, `message round trip (seed ${SEED})`);
    calls++;
  }
  const useRing = rand() < 0.3;
  const packet = encodePacket(encoded, { compress: rand() < 0.5, crc: rand() < 0.5, keyring: useRing ? ring : null, randomBytes: nonce });
  const back = decodePacket(packet, { keyring: useRing ? ring : null, verifyIncoming: useRing });
  assert.deepEqual(back.errors, []);
  assert.deepEqual(back.messages.map(encodeMessage), encoded, `packet round trip (seed ${SEED})`);
  if (useRing) {
    assert.throws(() => decodePacket(packet, { keyring: otherRing, verifyIncoming: true }), WireError);
  }
  // Streams carry only ping, ack, err, push/pull and user messages.
  let one = message();
  while (!['ping', 'ack', 'err', 'pushPull', 'user'].includes(one.type)) one = message();
  const frame = encodeStream(encodeStreamMessage(one), { compress: rand() < 0.5, keyring: useRing ? ring : null, randomBytes: nonce });
  assert.equal(streamFrameLength(frame), frame.length);
  for (let k = 0; k < 3; k++) {
    const cut = int(frame.length);
    assert.equal(streamFrameLength(frame.subarray(0, cut)), undefined, `prefix ${cut}/${frame.length} (seed ${SEED})`);
  }
  assert.deepEqual(encodeMessage(decodeStream(frame, { keyring: useRing ? ring : null, verifyIncoming: useRing })), encodeMessage(one));
  calls += 3;
}

test(`wire fuzz: only WireError, no hangs, round trips hold (KODAMA_SEED=${SEED})`, () => {
  console.log(`wire fuzz seed: KODAMA_SEED=${SEED}`);
  const start = performance.now();
  let inputs = 0;
  // Truncations at every length of a few valid packets and streams.
  for (let k = 0; k < 20; k++) {
    const p = rand() < 0.5 ? validPacket() : validStream();
    for (let n = 0; n < p.length; n++) {
      attack(p.subarray(0, n));
      inputs++;
    }
  }
  for (const h of hostile) {
    attack(h);
    inputs++;
  }
  while (inputs < INPUTS) {
    if (performance.now() - start > HANG_TOTAL_MS) assert.fail(`fuzz exceeded ${HANG_TOTAL_MS} ms after ${inputs} inputs (seed ${SEED})`);
    const r = rand();
    if (r < 0.3) attack(bytes(int(r < 0.1 ? 8 : 200)));
    else if (r < 0.6) attack(mutate(fromPool(packetPool, validPacket)));
    else if (r < 0.8) attack(mutate(fromPool(streamPool, validStream)));
    else if (r < 0.85) attack(mutate(pick(hostile).subarray(0, 600)));
    else roundTrip();
    inputs++;
  }
  const ms = performance.now() - start;
  console.log(
    `wire fuzz: ${inputs} inputs, ${calls} decoder calls in ${ms.toFixed(0)} ms, slowest call ${slowest.toFixed(1)} ms; ` +
      `errors by code ${JSON.stringify(Object.fromEntries([...codes].sort()))}`,
  );
  // The fuzz must actually reach the interesting failure kinds, or it proves little.
  for (const code of ['ERR_WIRE_TRUNCATED', 'ERR_WIRE_TYPE', 'ERR_WIRE_UNKNOWN_MESSAGE', 'ERR_WIRE_TOO_LARGE', 'ERR_WIRE_LZW', 'ERR_WIRE_DECRYPT', 'ERR_WIRE_NESTING', 'ERR_WIRE_CRC']) {
    assert.ok((codes.get(code) ?? 0) > 0, `fuzz never produced ${code} (seed ${SEED})`);
  }
});
