import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SerfMessageType,
  decodeSerfMessage,
  encodeSerfBroadcast,
  encodeSerfMessage,
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
    events: new Array(512).fill(null),
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
  assert.equal(dec.events.length, 512);
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

test('user events and queries are recognised but reported as unhandled', () => {
  // 9.2 user event deploy/hello-payload (after the 08 prefix)
  const ev = hex('0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164ad68656c6c6f2d7061796c6f6164');
  assert.deepEqual(decodeSerfMessage(ev), { type: 'unhandled', name: 'userEvent' });
  assert.deepEqual(decodeSerfMessage(Uint8Array.of(SerfMessageType.relay)), { type: 'unhandled', name: 'relay' });
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
