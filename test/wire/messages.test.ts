import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WireError,
  asBytes,
  asMap,
  asString,
  asUint,
  cacheNodeStates,
  decodeMessage,
  decodeMsgpack,
  decodeNodeState,
  decodeStructAt,
  encodeGossip,
  encodeGossipAfter,
  encodeMessage,
  encodeRpc,
  shareEncoded,
  MessageType,
  NodeStateCode,
  type AliveMsg,
  type Message,
  type MsgMap,
  type PushNodeState,
} from '../../src/wire/index.ts';
import { V, hex, unhex } from './vectors.ts';

const LOCAL = new Uint8Array([127, 0, 0, 1]);
const VSN = [1, 5, 2, 2, 5, 5] as const;

/** decode → fields → re-encode must reproduce the captured bytes exactly. */
function golden(h: string, expected: Message): void {
  const bytes = unhex(h);
  const msg = decodeMessage(bytes);
  assert.deepEqual(msg, expected);
  assert.equal(hex(encodeMessage(msg)), hex(bytes));
}

/** Parts of a captured compound (07 N lens… parts…) starting at `at`. */
function parts(buf: Uint8Array, at: number): Uint8Array[] {
  assert.equal(buf[at], 7);
  const n = buf[at + 1]!;
  const lens: number[] = [];
  for (let i = 0; i < n; i++) lens.push((buf[at + 2 + 2 * i]! << 8) | buf[at + 3 + 2 * i]!);
  let p = at + 2 + 2 * n;
  return lens.map((l) => {
    const part = buf.subarray(p, p + l);
    p += l;
    return part;
  });
}

test('ping b→a (9.1) with Source* fields', () => {
  golden(V.pingBA, {
    type: 'ping',
    seqNo: 1,
    node: 'a',
    sourceAddr: LOCAL,
    sourcePort: 7947,
    sourceNode: 'b',
  });
});

test('ping without Source* omits the keys (omitempty)', () => {
  const enc = encodeMessage({ type: 'ping', seqNo: 7, node: 'x', sourceAddr: new Uint8Array(0), sourcePort: 0, sourceNode: '' });
  assert.equal(hex(enc), '0082a44e6f6465a178a55365714e6f07');
  assert.deepEqual(decodeMessage(enc), {
    type: 'ping',
    seqNo: 7,
    node: 'x',
    sourceAddr: undefined,
    sourcePort: undefined,
    sourceNode: undefined,
  });
});

test('ack a→b (9.1) with a 130-byte coordinate payload (da 00 82)', () => {
  const bytes = unhex(V.ackAB);
  const msg = decodeMessage(bytes);
  assert.equal(msg.type, 'ack');
  assert.ok(msg.type === 'ack' && msg.payload !== null);
  assert.equal(msg.seqNo, 1);
  assert.equal(msg.payload.length, 130);
  assert.equal(msg.payload[0], 1);
  const coord = asMap(decodeMsgpack(msg.payload.subarray(1), { strings: 'utf8' }));
  assert.equal(coord.Error, 1.5);
  assert.equal(coord.Height, 1e-5);
  assert.equal(hex(encodeMessage(msg)), hex(bytes));
  // nil payload (TCP fallback path) encodes as c0
  assert.equal(hex(encodeMessage({ type: 'ack', seqNo: 3, payload: null })), '0282a75061796c6f6164c0a55365714e6f03');
  assert.deepEqual(decodeMessage(unhex('0282a75061796c6f6164c0a55365714e6f03')), { type: 'ack', seqNo: 3, payload: null });
});

test('indirect ping a→b about c (9.1) and nack (9.1)', () => {
  golden(V.indirectAB, {
    type: 'indirectPing',
    seqNo: 16,
    target: LOCAL,
    port: 7948,
    node: 'c',
    nack: true,
    sourceAddr: LOCAL,
    sourcePort: 7946,
    sourceNode: 'a',
  });
  golden(V.nack16, { type: 'nack', seqNo: 16 });
});

test('alive messages from the captured gossip compound and tag change (9.1)', () => {
  const [a, b] = parts(unhex(V.gossipCompoundCrc), 5);
  const aliveA: AliveMsg = {
    type: 'alive',
    incarnation: 1,
    node: 'a',
    addr: LOCAL,
    port: 7946,
    meta: unhex('ff82a4726f6c65a3776562a26463a27831'),
    vsn: VSN,
  };
  golden(hex(a!), aliveA);
  golden(hex(b!), { ...aliveA, node: 'b', port: 7947, meta: unhex('ff81a4726f6c65a26462') });
  const tagChange = unhex(V.aliveB2Crc).subarray(5);
  const m = decodeMessage(tagChange);
  assert.ok(m.type === 'alive');
  assert.equal(m.incarnation, 2);
  assert.equal(hex(m.meta), 'ff82a4726f6c65a26462a66e6577746167a27631');
  assert.equal(hex(encodeMessage(m)), hex(tagChange));
});

test('suspect and dead (9.1), including the ping+suspect probe compound', () => {
  const [ping, suspect] = parts(unhex(V.pingSuspectCrc), 5);
  golden(hex(ping!), { type: 'ping', seqNo: 18, node: 'c', sourceAddr: LOCAL, sourcePort: 7946, sourceNode: 'a' });
  golden(hex(suspect!), { type: 'suspect', incarnation: 1, node: 'c', from: 'a' });
  golden(hex(unhex(V.suspectCrc).subarray(5)), { type: 'suspect', incarnation: 1, node: 'c', from: 'a' });
  const [nack, dead] = parts(unhex(V.nackDead), 0);
  golden(hex(nack!), { type: 'nack', seqNo: 21 });
  golden(hex(dead!), { type: 'dead', incarnation: 1, node: 'c', from: 'a' });
});

test('user messages carry raw Serf bytes (9.2)', () => {
  const join = unhex(V.joinIntentCrc).subarray(5);
  const m = decodeMessage(join);
  assert.ok(m.type === 'user');
  assert.equal(hex(m.payload), '0182a54c54696d6501a44e6f6465a162');
  assert.equal(hex(encodeMessage(m)), hex(join));
  golden(V.queryAck, { type: 'user', payload: unhex(V.queryAck).subarray(1) });
});

test('push/pull join request (9.3): header, node state, raw user state', () => {
  const bytes = unhex(V.pushPullJoin);
  assert.equal(bytes.length, 689);
  const m = decodeMessage(bytes);
  assert.ok(m.type === 'pushPull');
  assert.equal(m.join, true);
  assert.deepEqual(m.nodes, [
    { name: 'b', addr: LOCAL, port: 7947, meta: unhex('ff81a4726f6c65a26462'), incarnation: 1, state: 'alive', vsn: VSN },
  ]);
  assert.equal(m.userState.length, 585);
  assert.equal(m.userState[0], 2);
  const serf = asMap(decodeMsgpack(m.userState.subarray(1), { strings: 'utf8' }));
  assert.equal(asUint(serf.LTime), 1);
  assert.equal(hex(encodeMessage(m)), hex(bytes));
  // every node state survives a round trip
  const many: Message = {
    type: 'pushPull',
    join: false,
    nodes: (['alive', 'suspect', 'dead', 'left'] as const).map((state, i) => ({
      name: `n${i}`, addr: LOCAL, port: 8000 + i, meta: new Uint8Array(0), incarnation: i, state, vsn: VSN,
    })),
    userState: new Uint8Array(0),
  };
  assert.deepEqual(decodeMessage(encodeMessage(many)), many);
});

test('err reply round trip', () => {
  const m: Message = { type: 'err', error: 'Encryption is configured but remote state is not encrypted' };
  const enc = encodeMessage(m);
  assert.equal(enc[0], 13);
  assert.deepEqual(decodeMessage(enc), m);
});

test('short Vsn is zero-padded, long Vsn cut to 6', () => {
  // alive with Vsn "0102" (2 bytes)
  const short = unhex('0486a441646472a47f000001ab496e6361726e6174696f6e01a44d657461a0a44e6f6465a161a4506f7274cd1f0aa356736ea20102');
  const m = decodeMessage(short);
  assert.ok(m.type === 'alive');
  assert.deepEqual(m.vsn, [1, 2, 0, 0, 0, 0]);
  const noVsn = decodeMessage(unhex('0481a44e6f6465a161'));
  assert.ok(noVsn.type === 'alive');
  assert.deepEqual(noVsn.vsn, [0, 0, 0, 0, 0, 0]);
  assert.equal(noVsn.meta.length, 0);
});

test('decoder is liberal: any key order, str8/bin values, extra keys', () => {
  // nack as {"Extra": 1, "SeqNo": cd0010} with d9 key
  assert.deepEqual(decodeMessage(unhex('0b82a5457874726101d9055365714e6fcd0010')), { type: 'nack', seqNo: 16 });
  // suspect with keys in reverse order and bin Node
  const s = decodeMessage(unhex('0383a44e6f6465c40163ab496e6361726e6174696f6e05a446726f6da161'));
  assert.deepEqual(s, { type: 'suspect', incarnation: 5, node: 'c', from: 'a' });
});

test('bad messages throw WireError with a code, never anything else', () => {
  const cases: Array<[string, string]> = [
    ['', 'ERR_WIRE_TRUNCATED'],
    ['00', 'ERR_WIRE_TRUNCATED'],
    ['0081a55365714e6f', 'ERR_WIRE_TRUNCATED'],
    ['07', 'ERR_WIRE_UNKNOWN_MESSAGE'],
    ['0c', 'ERR_WIRE_UNKNOWN_MESSAGE'],
    ['ff00', 'ERR_WIRE_UNKNOWN_MESSAGE'],
    ['0001', 'ERR_WIRE_TYPE'], // ping body not a map
    ['0081a55365714e6fa178', 'ERR_WIRE_TYPE'], // SeqNo is a string
    ['0081a55365714e6fff', 'ERR_WIRE_BAD_VALUE'], // SeqNo negative
    ['0683a44a6f696ec3a54e6f646573ce7fffffffac5573657253746174654c656e00', 'ERR_WIRE_TRUNCATED'], // 2^31 nodes
    ['0683a44a6f696ec3a54e6f64657300ac5573657253746174654c656ecd0100', 'ERR_WIRE_TRUNCATED'], // user state missing
    ['0683a44a6f696ec3a54e6f646573ffac5573657253746174654c656e00', 'ERR_WIRE_BAD_VALUE'], // Nodes -1
    ['0683a44a6f696ec3a54e6f64657301ac5573657253746174654c656e0081a5537461746509', 'ERR_WIRE_BAD_VALUE'], // state 9
  ];
  for (const [h, code] of cases) {
    assert.throws(
      () => decodeMessage(unhex(h)),
      (e: unknown) => e instanceof WireError && e.code === code,
      `${h} → ${code}`,
    );
  }
});

test('push/pull node states: the field-by-field writer and reader give what the generic codec gives', () => {
  // Seeded, so a failure replays: odd shapes included (reordered keys, nil, wide integers,
  // str8/bin values, an unknown key, a 16-byte address, long meta, non-ASCII names).
  let x = 0x2a17;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const states = ['alive', 'suspect', 'dead', 'left'] as const;
  const bytesOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rnd(256));
  const nodes = Array.from({ length: 300 }, (_, i) => ({
    name: rnd(10) === 0 ? `ノード-${i}` : rnd(10) === 0 ? `n${'x'.repeat(40)}${i}` : `node-${i}`,
    addr: rnd(8) === 0 ? bytesOf(16) : Uint8Array.of(10, 0, i >> 8, i & 0xff),
    port: [0, 7946, 65535][rnd(3)]!,
    meta: rnd(4) === 0 ? bytesOf(rnd(3) === 0 ? 300 : rnd(20)) : new Uint8Array(0),
    incarnation: [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 40][rnd(10)]!,
    state: states[rnd(4)]!,
    vsn: VSN,
  }));
  const msg: Message = { type: 'pushPull', join: true, nodes, userState: Uint8Array.of(1, 2, 3) };
  // Writer: byte for byte what the generic encoder makes of the same maps.
  const generic = [
    encodeGossipAfter([MessageType.pushPull], { Join: true, Nodes: nodes.length, UserStateLen: 3 }),
    ...nodes.map((n) =>
      encodeGossip({ Addr: n.addr, Incarnation: n.incarnation, Meta: n.meta, Name: n.name, Port: n.port, State: NodeStateCode[n.state], Vsn: Uint8Array.from(n.vsn) }),
    ),
    Uint8Array.of(1, 2, 3),
  ];
  const flat = new Uint8Array(generic.reduce((s, b) => s + b.length, 0));
  generic.reduce((at, b) => (flat.set(b, at), at + b.length), 0);
  assert.equal(hex(encodeMessage(msg)), hex(flat));
  assert.deepEqual(decodeMessage(flat), msg);

  // Reader: odd encodings of the same fields decode as decodeNodeState decodes them.
  const odd: Uint8Array[] = nodes.map((n, i) => {
    const m: Record<string, unknown> = { Name: n.name, Addr: n.addr, Port: n.port, Incarnation: n.incarnation, State: NodeStateCode[n.state], Vsn: Uint8Array.from(n.vsn), Meta: n.meta };
    if (i % 7 === 0) delete m.Meta;
    if (i % 11 === 0) m.Vsn = null;
    if (i % 13 === 0) m.Extra = 5;
    if (i % 17 === 0) m.Vsn = Uint8Array.of(1, 2);
    if (i % 5 === 0) m.Name = null;
    return i % 3 === 0 ? encodeRpc(m as MsgMap) : encodeGossip(m as MsgMap); // rpc: bin and str8
  });
  const head = encodeGossipAfter([MessageType.pushPull], { Join: false, Nodes: odd.length, UserStateLen: 0 });
  const buf = new Uint8Array(head.length + odd.reduce((s, b) => s + b.length, 0));
  buf.set(head);
  odd.reduce((at, b) => (buf.set(b, at), at + b.length), head.length);
  // Without the cache of decoded states (a real agent), with it (the simulator: the second
  // decode comes from it), and with it off again.
  for (const cache of [0, 1024, 1024, 0]) {
    cacheNodeStates(cache);
    const decoded = decodeMessage(buf);
    assert.ok(decoded.type === 'pushPull');
    assert.deepEqual(
      decoded.nodes,
      odd.map((b) => decodeNodeState(decodeStructAt(b, 0).value)),
    );
    assert.deepEqual(decodeMessage(flat), msg);
  }
  // Alive messages are written the same way.
  for (const n of nodes) {
    const alive: Message = { type: 'alive', incarnation: n.incarnation, node: n.name, addr: n.addr, port: n.port, meta: n.meta, vsn: n.vsn };
    const generic = encodeGossipAfter([MessageType.alive], { Addr: n.addr, Incarnation: n.incarnation, Meta: n.meta, Node: n.name, Port: n.port, Vsn: Uint8Array.from(n.vsn) });
    assert.equal(hex(encodeMessage(alive)), hex(generic));
  }
  // Alive messages in odd shapes decode as the generic reading of their fields does.
  nodes.forEach((n, i) => {
    const m: Record<string, unknown> = { Node: n.name, Addr: n.addr, Port: n.port, Incarnation: n.incarnation, Vsn: Uint8Array.from(n.vsn), Meta: n.meta };
    if (i % 7 === 0) delete m.Meta;
    if (i % 11 === 0) m.Vsn = null;
    if (i % 13 === 0) m.State = 2; // not an alive field: ignored
    if (i % 17 === 0) m.Vsn = Uint8Array.of(1, 2);
    if (i % 19 === 0) m.Name = 'other'; // neither
    if (i % 5 === 0) m.Node = null;
    const body = i % 3 === 0 ? encodeRpc(m as MsgMap) : encodeGossip(m as MsgMap);
    const bytes = new Uint8Array(1 + body.length + (i % 4 === 0 ? 3 : 0)); // trailing bytes are ignored
    bytes[0] = MessageType.alive;
    bytes.set(body, 1);
    const f = asMap(decodeStructAt(body, 0).value);
    const expected = {
      type: 'alive',
      incarnation: asUint(f.Incarnation),
      node: asString(f.Node),
      addr: asBytes(f.Addr) ?? new Uint8Array(0),
      port: asUint(f.Port),
      meta: asBytes(f.Meta) ?? new Uint8Array(0),
      vsn: [0, 1, 2, 3, 4, 5].map((k) => asBytes(f.Vsn)?.[k] ?? 0),
    };
    // Without the simulator's cache, with it (twice: the second from it), without again.
    try {
      for (const cache of [0, 64, 64, 0]) {
        cacheNodeStates(cache);
        assert.deepEqual(decodeMessage(bytes), expected, `alive ${i}, cache ${cache}`);
      }
    } finally {
      cacheNodeStates(0);
    }
  });
  // A state code out of range still fails as before.
  const bad = encodeGossip({ Name: 'b', State: 9 });
  const badHead = encodeGossipAfter([MessageType.pushPull], { Join: false, Nodes: 1, UserStateLen: 0 });
  const badMsg = new Uint8Array(badHead.length + bad.length);
  badMsg.set(badHead);
  badMsg.set(bad, badHead.length);
  assert.throws(() => decodeMessage(badMsg), (e: unknown) => e instanceof WireError && /unknown node state 9/.test(e.message));
});

test('decoded-state cache: states of one name that differ only past the key, a full cache, a push/pull at an offset of its buffer', () => {
  // Names long enough that states of one name share their first 32 bytes (the cache's key) and
  // differ only in incarnation, state or meta further on.
  const long = (i: number): string => `a-rather-long-member-name-${i}.fleet.example`;
  const make = (count: number, variant: number): PushNodeState[] =>
    Array.from({ length: count }, (_, i) => ({
      name: long(i),
      addr: Uint8Array.of(10, 1, i >> 8, i & 255),
      port: 7946,
      meta: Uint8Array.of(variant % 2),
      incarnation: 1 + (variant >> 1),
      state: (['alive', 'suspect', 'dead', 'left'] as const)[variant % 4]!,
      vsn: [1, 5, 5, 2, 5, 5],
    }));
  const msg = (nodes: PushNodeState[]): Message => ({ type: 'pushPull', join: false, nodes, userState: Uint8Array.of(1, 2) });
  try {
    // A cache smaller than what goes through it: cleared when full, answers stay right.
    for (const max of [7, 4096]) {
      cacheNodeStates(max);
      for (let round = 0; round < 3; round++) {
        for (let variant = 0; variant < 6; variant++) {
          const m = msg(make(20, variant));
          const bytes = encodeMessage(m);
          assert.deepEqual(decodeMessage(bytes), m, `max ${max}, round ${round}, variant ${variant}`);
          // The same bytes inside a larger buffer (as a stream frame hands them over), then cut short.
          const framed = new Uint8Array(bytes.length + 11);
          framed.set(bytes, 5);
          assert.deepEqual(decodeMessage(framed.subarray(5, 5 + bytes.length)), m);
          assert.throws(() => decodeMessage(bytes.subarray(0, bytes.length - 40)), WireError);
        }
      }
    }
  } finally {
    cacheNodeStates(0);
  }
});

test('shareEncoded: equal broadcasts share one array while the simulator caches, none when off', () => {
  const alive = (node: string, incarnation: number): Message => ({
    type: 'alive',
    incarnation,
    node,
    addr: Uint8Array.of(10, 0, 0, 1),
    port: 7946,
    meta: new Uint8Array(0),
    vsn: [1, 5, 5, 2, 5, 5],
  });
  const off = encodeMessage(alive('web-1', 1));
  assert.equal(shareEncoded(off), off);
  try {
    cacheNodeStates(64);
    const first = shareEncoded(encodeMessage(alive('web-1', 1)));
    const again = encodeMessage(alive('web-1', 1));
    assert.equal(shareEncoded(again), first);
    // Another incarnation (same first bytes, same key), another node, a suspect of it: their own.
    for (const m of [alive('web-1', 2), alive('web-10', 1), { type: 'suspect', incarnation: 1, node: 'web-1', from: 'web-2' } as Message]) {
      const bytes = encodeMessage(m);
      assert.equal(shareEncoded(bytes), bytes);
      assert.equal(shareEncoded(encodeMessage(m)), bytes);
      assert.deepEqual(decodeMessage(bytes), m);
    }
    // More distinct messages than the cache holds (it starts over): still equal bytes back.
    for (let i = 0; i < 200; i++) {
      const bytes = encodeMessage(alive(`db-${i % 70}`, 1 + (i % 3)));
      assert.deepEqual(shareEncoded(bytes), bytes);
    }
  } finally {
    cacheNodeStates(0);
  }
  const after = encodeMessage(alive('web-1', 1));
  assert.equal(shareEncoded(after), after);
});
