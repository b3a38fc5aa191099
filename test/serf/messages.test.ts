import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeConflictResponse,
  decodeFilter,
  decodeKeyRequest,
  decodeKeyResponse,
  decodeSerfMessage,
  encodeConflictResponse,
  encodeKeyRequest,
  encodeKeyResponse,
  encodeNodeFilter,
  encodeRelay,
  encodeSerfBroadcast,
  encodeSerfMessage,
  encodeTagFilter,
} from '../../src/serf/messages.ts';
import { SerfError } from '../../src/serf/errors.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// 9.2: captured from real agents (memberlist user prefix 08, CRC header stripped).
const JOIN_B_1 = '080182a54c54696d6501a44e6f6465a162';
const LEAVE_B_3 = '080083a54c54696d6503a44e6f6465a162a55072756e65c2';

test('join intent encodes byte-for-byte like serf (9.2) and decodes back', () => {
  assert.equal(toHex(encodeSerfBroadcast({ type: 'join', ltime: 1, node: 'b' })), JOIN_B_1);
  assert.deepEqual(decodeSerfMessage(hex(JOIN_B_1).subarray(1)), { type: 'join', ltime: 1, node: 'b' });
});

test('leave intent encodes byte-for-byte like serf (9.2) and decodes back', () => {
  assert.equal(toHex(encodeSerfBroadcast({ type: 'leave', ltime: 3, node: 'b', prune: false })), LEAVE_B_3);
  assert.deepEqual(decodeSerfMessage(hex(LEAVE_B_3).subarray(1)), {
    type: 'leave',
    ltime: 3,
    node: 'b',
    prune: false,
  });
});

// 9.3: the user state of a captured push/pull join request (512 nil event slots).
const PP_PREFIX = '0286aa4576656e744c54696d6501a64576656e7473dc0200';
const PP_SUFFIX =
  'a54c54696d6501ab4c6566744d656d6265727390aa51756572794c54696d6501ac5374617475734c54696d657381a16200';

test('push/pull user state matches the captured join request (9.3)', () => {
  const golden = PP_PREFIX + 'c0'.repeat(512) + PP_SUFFIX;
  const enc = encodeSerfMessage({
    type: 'pushPull',
    ltime: 1,
    statusLTimes: { b: 0 },
    leftMembers: [],
    eventLTime: 1,
    events: [],
    queryLTime: 1,
  });
  assert.equal(toHex(enc), golden);
  assert.equal(enc.length, 585); // UserStateLen in the captured header
  const dec = decodeSerfMessage(hex(golden));
  assert.equal(dec.type, 'pushPull');
  if (dec.type !== 'pushPull') return;
  assert.equal(dec.ltime, 1);
  assert.equal(dec.eventLTime, 1);
  assert.equal(dec.queryLTime, 1);
  assert.deepEqual({ ...dec.statusLTimes }, { b: 0 });
  assert.deepEqual(dec.leftMembers, []);
  assert.equal(dec.events.length, 0, 'nil slots are not events');
});

test('push/pull with left members and nil fields decodes', () => {
  const enc = encodeSerfMessage({
    type: 'pushPull',
    ltime: 7,
    statusLTimes: { a: 3, gone: 5 },
    leftMembers: ['gone'],
    eventLTime: 2,
    events: [],
    queryLTime: 4,
  });
  const dec = decodeSerfMessage(enc);
  assert.deepEqual(dec.type === 'pushPull' && { ...dec.statusLTimes }, { a: 3, gone: 5 });
  assert.deepEqual(dec.type === 'pushPull' && dec.leftMembers, ['gone']);
  // Go sends nil for an empty LeftMembers slice from older versions: accept c0.
  const nilLeft = hex('0283a54c54696d6505ab4c6566744d656d62657273c0ac5374617475734c54696d657380');
  const d2 = decodeSerfMessage(nilLeft);
  assert.deepEqual(d2.type === 'pushPull' && [d2.ltime, d2.leftMembers, d2.eventLTime], [5, [], 0]);
});

// 9.2 golden bytes, after the CRC header and memberlist's 08.
const USER_EVENT = '0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164ad68656c6c6f2d7061796c6f6164';
const QUERY_LOAD =
  '048ba441646472a47f000001a746696c74657273c0a5466c61677301a24944ce1b87c540a54c54' +
  '696d6501a44e616d65a46c6f6164a75061796c6f6164ac70696e672d7061796c6f6164a4506f7274cd1f0bab52' +
  '656c6179466163746f7200aa536f757263654e6f6465a162a754696d656f7574ce77359400';
const QUERY_FILTERED =
  '048ba441646472a47f000001a746696c7465727392a40091a161b40182a445787072a3772e2aa3' +
  '546167a4726f6c65a5466c61677301a24944ce1057a26ba54c54696d6502a44e616d65a866696c7465726564a7' +
  '5061796c6f6164a27070a4506f7274cd1f0bab52656c6179466163746f7200aa536f757263654e6f6465a162a7' +
  '54696d656f7574ce77359400';
const QUERY_ACK = '0585a5466c61677301a446726f6da162a24944ce1b87c540a54c54696d6501a75061796c6f6164c0';

test('user event matches the captured bytes (9.2) both ways', () => {
  const msg = { type: 'userEvent', ltime: 1, name: 'deploy', payload: new TextEncoder().encode('hello-payload'), cc: true } as const;
  assert.equal(toHex(encodeSerfMessage(msg)), USER_EVENT);
  assert.deepEqual(decodeSerfMessage(hex(USER_EVENT)), msg);
});

test('queries match the captured bytes (9.2): plain and with node + tag filters', () => {
  const base = {
    type: 'query',
    addr: { ip: '127.0.0.1', port: 7947 },
    sourceNode: 'b',
    flags: 1,
    relayFactor: 0,
    timeoutMs: 2000,
  } as const;
  const q1 = { ...base, ltime: 1, id: 461882688, filters: [], name: 'load', payload: new TextEncoder().encode('ping-payload') };
  assert.equal(toHex(encodeSerfMessage(q1)), QUERY_LOAD);
  assert.deepEqual(decodeSerfMessage(hex(QUERY_LOAD)), q1);
  const filters = [encodeNodeFilter(['a']), encodeTagFilter('role', 'w.*')];
  assert.equal(toHex(filters[0]!), '0091a161');
  const q2 = { ...base, ltime: 2, id: 0x1057a26b, filters, name: 'filtered', payload: new TextEncoder().encode('pp') };
  assert.equal(toHex(encodeSerfMessage(q2)), QUERY_FILTERED);
  assert.deepEqual(decodeSerfMessage(hex(QUERY_FILTERED)), q2);
  assert.deepEqual(decodeFilter(filters[1]!), { kind: 'tag', tag: 'role', expr: 'w.*' });
});

test('query ack, response and relay match the captured shapes (9.2)', () => {
  const ack = { type: 'queryResponse', ltime: 1, id: 461882688, from: 'b', flags: 1, payload: null } as const;
  assert.equal(toHex(encodeSerfMessage(ack)), QUERY_ACK);
  assert.deepEqual(decodeSerfMessage(hex(QUERY_ACK)), ack);
  const resp = { ...ack, flags: 0, payload: Uint8Array.of(1, 2, 3) };
  assert.deepEqual(decodeSerfMessage(encodeSerfMessage(resp)), resp);
  const relay = encodeRelay({ ip: '127.0.0.1', port: 7947 }, 'b', hex(QUERY_ACK));
  // 09 + {DestAddr:{IP:7f000001, Port:7947, Zone:""}, DestName:"b"} + 05 + ack
  assert.equal(
    toHex(relay),
    '0982' +
      'a8' + Buffer.from('DestAddr').toString('hex') +
      '83a24950a47f000001a4506f7274cd1f0ba45a6f6e65a0' +
      'a8' + Buffer.from('DestName').toString('hex') + 'a162' +
      QUERY_ACK,
  );
  const dec = decodeSerfMessage(relay);
  assert.deepEqual(dec.type === 'relay' && { dest: dec.dest, destName: dec.destName, inner: toHex(dec.inner) }, {
    dest: { ip: '127.0.0.1', port: 7947 },
    destName: 'b',
    inner: QUERY_ACK,
  });
});

test('key request and response payloads match the captured bytes (9.7)', () => {
  assert.equal(toHex(encodeKeyRequest(new Uint8Array(0))), '0781a34b6579a0');
  const key16 = hex('6d7505f682e3198f7f0f11b948673bb5');
  assert.equal(toHex(encodeKeyRequest(key16)), '0781a34b6579b06d7505f682e3198f7f0f11b948673bb5');
  assert.deepEqual([...decodeKeyRequest(hex('0781a34b6579b06d7505f682e3198f7f0f11b948673bb5'))], [...key16]);
  const key32 = encodeKeyRequest(new Uint8Array(32).fill(7));
  assert.equal(toHex(key32.subarray(0, 9)), '0781a34b6579da0020');
  const golden = '0884a44b657973c0a74d657373616765a0aa5072696d6172794b6579a0a6526573756c74c3';
  assert.equal(toHex(encodeKeyResponse({ result: true, message: '', keys: null, primaryKey: '' })), golden);
  assert.deepEqual(decodeKeyResponse(hex(golden)), { result: true, message: '', keys: null, primaryKey: '' });
});

test('conflict response: a member or 06 c0 for an unknown name', () => {
  assert.equal(toHex(encodeConflictResponse(null)), '06c0');
  assert.equal(decodeConflictResponse(hex('06c0')), null);
  const m = {
    name: 'a',
    addr: { ip: '127.0.0.1', port: 7946 },
    tags: { role: 'x' },
    status: 1,
    protocolMin: 1,
    protocolMax: 5,
    protocolCur: 2,
    delegateMin: 2,
    delegateMax: 5,
    delegateCur: 5,
  };
  assert.deepEqual(decodeConflictResponse(encodeConflictResponse(m)), { name: 'a', addr: { ip: '127.0.0.1', port: 7946 } });
});

test('malformed serf messages throw SerfError with a stable code', () => {
  const bad = [
    new Uint8Array(0),
    Uint8Array.of(42),
    Uint8Array.of(1), // join without body
    hex('0182a54c54696d65a162a44e6f6465a162'), // LTime is a string
    hex('0182a54c54696d65ff'), // truncated / invalid msgpack
    hex('0191a162'), // array instead of map
    hex('0181a54c54696d65d0ff'), // negative LTime
  ];
  for (const b of bad) {
    assert.throws(
      () => decodeSerfMessage(b),
      (e: unknown) => e instanceof SerfError && e.code === 'ERR_SERF_BAD_MESSAGE',
      toHex(b),
    );
  }
});
