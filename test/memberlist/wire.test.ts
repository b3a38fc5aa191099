// What the core puts on the wire and what it refuses: packet-level checks through the wire
// codec, encryption, version checks, malformed and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net } from './harness.ts';
import { Keyring } from '../../src/wire/keyring.ts';
import { encodeMessage } from '../../src/wire/messages.ts';
import { decodePacket, encodePacket } from '../../src/wire/packet.ts';
import { decodeStream, encodeStream } from '../../src/wire/stream.ts';
import { ipToBytes } from '../../src/wire/addr.ts';
import type { MemberEvent } from '../../src/memberlist/api.ts';
import type { Message } from '../../src/wire/types.ts';

const plain = { compress: false, keyring: null, randomBytes: (n: number) => new Uint8Array(n) };

function packet(...msgs: Message[]): Uint8Array {
  return encodePacket(msgs.map(encodeMessage), { ...plain, crc: false });
}

function drained(net: Net, name: string): { reason: string; detail: string }[] {
  return net.eventsOf(name, 'dropped').map((x) => x.e as Extract<MemberEvent, { type: 'dropped' }>);
}

test('the ping a probe sends decodes to the expected fields', () => {
  const net = new Net(51);
  const a = net.add('a');
  net.add('b');
  net.join('b', ['a']);
  net.run(200);
  const pings: Message[] = [];
  net.rules.push((k, from, to, bytes) => {
    if (k === 'packet' && from === 'a' && to === 'b') {
      for (const m of decodePacket(bytes, { keyring: null, verifyIncoming: false }).messages) if (m.type === 'ping') pings.push(m);
    }
    return false;
  });
  net.run(3000);
  assert.ok(pings.length >= 2);
  const p = pings[0]!;
  assert.equal(p.type, 'ping');
  if (p.type !== 'ping') return;
  assert.equal(p.node, 'b');
  assert.deepEqual(p.sourceAddr, ipToBytes(a.addr.ip));
  assert.equal(p.sourcePort, 7946);
  assert.equal(p.sourceNode, 'a');
  assert.ok(p.seqNo >= 1);
  const second = pings[1]!;
  assert.ok(second.type === 'ping' && second.seqNo > p.seqNo, 'sequence numbers increase');
});

test('answering pings: ack to SourceAddr:SourcePort with the same SeqNo; wrong node → no ack', () => {
  const net = new Net(53);
  const a = net.add('a');
  const b = net.add('b'); // not joined: a sees b only as a sender of datagrams
  const acks: { to: string; seq: number }[] = [];
  net.rules.push((k, _from, to, bytes) => {
    if (k === 'packet') {
      for (const m of decodePacket(bytes, { keyring: null, verifyIncoming: false }).messages) {
        if (m.type === 'ack') acks.push({ to, seq: m.seqNo });
      }
    }
    return false;
  });
  // From b's address, asking for the ack to go to b (SourceAddr) — and one for another node.
  a.ml.handlePacket(
    { ip: '10.9.9.9', port: 1 },
    packet({ type: 'ping', seqNo: 77, node: 'a', sourceAddr: ipToBytes(b.addr.ip), sourcePort: 7946, sourceNode: 'b' }),
    net.now,
  );
  a.ml.handlePacket(b.addr, packet({ type: 'ping', seqNo: 78, node: 'zzz' }), net.now);
  net.pump(a);
  net.run(10);
  assert.deepEqual(acks, [{ to: 'b', seq: 77 }]);
  assert.deepEqual(
    drained(net, 'a').map((d) => d.reason),
    ['ping-wrong-node'],
  );
});

test('encryption: nodes with the same key join; a different key is not admitted', () => {
  const k1 = Keyring.fromBase64(['T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=']);
  const k2 = Keyring.fromBase64(['hnHmLBWO0mSkH9Y9bGjN5Q==']);
  const net = new Net(57);
  net.add('a', (c) => (c.keyring = k1));
  net.add('b', (c) => (c.keyring = k1));
  net.add('c', (c) => (c.keyring = k2));
  const sawPlain: boolean[] = [];
  net.rules.push((k, _f, _t, bytes) => {
    if (k === 'packet') {
      try {
        decodePacket(bytes, { keyring: null, verifyIncoming: false });
        sawPlain.push(true);
      } catch {
        // undecodable without a key: encrypted
      }
    }
    return false;
  });
  net.join('b', ['a']);
  net.join('c', ['a']);
  net.run(5000);
  const bDone = net.eventsOf('b', 'join-complete')[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.equal(bDone.joined, 1);
  const cDone = net.eventsOf('c', 'join-complete')[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.equal(cDone.joined, 0);
  assert.equal(cDone.errors.length, 1);
  assert.deepEqual(
    net.get('a').ml.members().map((m) => m.name).sort(),
    ['a', 'b'],
  );
  assert.ok((net.get('a').ml.counters()['stream-decrypt'] ?? 0) >= 1, 'a refused c’s stream');
  assert.equal(sawPlain.length, 0, 'no datagram left in plaintext');
});

test('encryption: plaintext datagrams are dropped when a keyring is set', () => {
  const net = new Net(59);
  const a = net.add('a', (c) => (c.keyring = Keyring.fromBase64(['hnHmLBWO0mSkH9Y9bGjN5Q=='])));
  a.ml.handlePacket({ ip: '10.0.0.9', port: 7946 }, packet({ type: 'ping', seqNo: 1, node: 'a' }), 0);
  net.pump(a);
  assert.deepEqual(drained(net, 'a').map((d) => d.reason), ['packet-decrypt']);
  assert.equal(a.ml.pollOutput(), undefined, 'no ack for a plaintext ping');
});

test('a push/pull with an incompatible Vsn is refused on both sides', () => {
  const net = new Net(61);
  net.add('a');
  net.add('b', (c) => (c.delegateVersions = { min: 2, max: 5, cur: 1 })); // Serf protocol 1 < 2
  net.join('b', ['a']);
  net.run(3000);
  const done = net.eventsOf('b', 'join-complete')[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.equal(done.joined, 0);
  assert.match(done.errors[0]!, /Node 'b' delegate protocol version \(1\) is incompatible: \[2, 5\]/);
  assert.deepEqual(net.get('a').ml.members().map((m) => m.name), ['a']);
  assert.ok(drained(net, 'a').some((d) => d.reason === 'pushpull-incompatible'));
});

test('alive news: incarnation 0 and bad protocol versions are never accepted', () => {
  const net = new Net(63);
  const a = net.add('a');
  const alive = (node: string, incarnation: number, vsn: [number, number, number, number, number, number]): Message => ({
    type: 'alive',
    incarnation,
    node,
    addr: ipToBytes('10.0.0.50'),
    port: 7946,
    meta: new Uint8Array(0),
    vsn,
  });
  a.ml.handlePacket({ ip: '10.0.0.50', port: 7946 }, packet(alive('x', 0, [1, 5, 2, 2, 5, 5])), 0);
  a.ml.handlePacket({ ip: '10.0.0.50', port: 7946 }, packet(alive('y', 3, [0, 5, 2, 2, 5, 5])), 0);
  a.ml.handlePacket({ ip: '10.0.0.50', port: 7946 }, packet(alive('z', 3, [4, 2, 2, 2, 5, 5])), 0);
  net.pump(a);
  assert.deepEqual(
    a.ml.members().filter((m) => m.state === 'alive').map((m) => m.name),
    ['a'],
  );
  assert.deepEqual(drained(net, 'a').map((d) => d.reason), ['stale-alive', 'alive-bad-vsn', 'alive-bad-vsn']);
  assert.equal(net.eventsOf('a', 'join').length, 1, 'only our own join');
  // incarnation 1 is accepted
  a.ml.handlePacket({ ip: '10.0.0.50', port: 7946 }, packet(alive('x', 1, [1, 5, 2, 2, 5, 5])), 0);
  net.pump(a);
  assert.equal(net.stateOf('a', 'x')?.state, 'alive');
});

test('a known name from another address raises a conflict and is not taken over', () => {
  const net = Net.cluster(['a', 'b'], 67);
  net.run(2000);
  const a = net.get('a');
  a.ml.handlePacket(
    { ip: '10.0.0.77', port: 7946 },
    packet({ type: 'alive', incarnation: 9, node: 'b', addr: ipToBytes('10.0.0.77'), port: 7946, meta: new Uint8Array(0), vsn: [1, 5, 2, 2, 5, 5] }),
    net.now,
  );
  net.pump(a);
  const conflicts = net.eventsOf('a', 'conflict').map((x) => x.e as Extract<MemberEvent, { type: 'conflict' }>);
  assert.equal(conflicts.length, 1);
  assert.equal(conflicts[0]!.existing.addr.ip, net.get('b').addr.ip);
  assert.equal(conflicts[0]!.other.addr.ip, '10.0.0.77');
  assert.equal(net.stateOf('a', 'b')?.addr.ip, net.get('b').addr.ip);
  assert.equal(net.stateOf('a', 'b')?.incarnation, 1);
});

test('garbage datagrams and streams are dropped and counted, never thrown', () => {
  const net = Net.cluster(['a', 'b'], 71);
  net.run(1000);
  const a = net.get('a');
  const junk = [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(200, 1, 2), Uint8Array.of(7, 5, 0, 9), Uint8Array.of(4, 0x81, 0xa1)];
  for (const j of junk) a.ml.handlePacket(net.get('b').addr, j, net.now);
  a.ml.handleStreamRequest(9001, net.get('b').addr, Uint8Array.of(6, 0xc1), net.now);
  a.ml.handleStreamReply(424242, Uint8Array.of(1), net.now);
  const outs = [];
  for (let o = a.ml.pollOutput(); o !== undefined; o = a.ml.pollOutput()) outs.push(o);
  net.pump(a);
  const reasons = drained(net, 'a').map((d) => d.reason);
  assert.ok(reasons.filter((r) => r === 'packet-decode' || r === 'message-decode').length >= junk.length - 1, reasons.join(','));
  assert.ok(reasons.includes('stream-decode'));
  assert.ok(reasons.includes('stream-unknown'));
  // The undecodable stream got an err reply, which the initiator reports as a remote error.
  const reply = outs.find((o) => o.kind === 'stream-reply' && o.id === 9001);
  assert.ok(reply !== undefined && reply.kind === 'stream-reply');
  const err = decodeStream(reply.bytes, { keyring: null, verifyIncoming: false });
  assert.equal(err.type, 'err');
  // The cluster still works.
  net.run(3000);
  assert.equal(net.stateOf('b', 'a')?.state, 'alive');
});

test('a join answered with an err message reports "remote error"', () => {
  const net = new Net(73);
  const a = net.add('a');
  a.ml.join([{ ip: '10.0.0.200', port: 7946 }], 0);
  const open = a.ml.pollOutput();
  assert.ok(open !== undefined && open.kind === 'stream-open');
  assert.equal(open.expectReply, true);
  const req = decodeStream(open.bytes, { keyring: null, verifyIncoming: false });
  assert.ok(req.type === 'pushPull' && req.join);
  a.ml.handleStreamReply(open.id, encodeStream(encodeMessage({ type: 'err', error: 'boom' }), plain), 5);
  net.pump(a);
  const done = net.eventsOf('a', 'join-complete')[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.deepEqual(done.errors, ['Failed to join 10.0.0.200:7946: remote error: boom']);
});

test('a push/pull that lists us as dead makes us refute with a higher incarnation', () => {
  const net = new Net(79);
  const a = net.add('a');
  a.ml.join([{ ip: '10.0.0.200', port: 7946 }], 0);
  const open = a.ml.pollOutput();
  assert.ok(open !== undefined && open.kind === 'stream-open');
  const remote: Message = {
    type: 'pushPull',
    join: true,
    nodes: [
      { name: 'a', addr: ipToBytes(a.addr.ip), port: 7946, meta: new Uint8Array(0), incarnation: 5, state: 'dead', vsn: [1, 5, 2, 2, 5, 5] },
      { name: 'r', addr: ipToBytes('10.0.0.200'), port: 7946, meta: new Uint8Array(0), incarnation: 3, state: 'alive', vsn: [1, 5, 2, 2, 5, 5] },
    ],
    userState: new Uint8Array(0),
  };
  a.ml.handleStreamReply(open.id, encodeStream(encodeMessage(remote), plain), 5);
  net.pump(a);
  assert.equal(a.ml.localNode().incarnation, 6);
  assert.equal(a.ml.localNode().state, 'alive');
  assert.equal(net.stateOf('a', 'r')?.state, 'alive');
  const done = net.eventsOf('a', 'join-complete')[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.equal(done.joined, 1);
});

test('outputs stop after shutdown', () => {
  const net = Net.cluster(['a', 'b'], 83);
  net.run(1000);
  const a = net.get('a').ml;
  a.shutdown();
  assert.equal(a.pollTimeout(), undefined);
  a.handlePacket(net.get('b').addr, packet({ type: 'ping', seqNo: 1, node: 'a' }), net.now);
  a.handleTimeout(net.now + 10_000);
  assert.equal(a.pollOutput(), undefined);
});

test('gossip and piggybacked packets stay within udpBufferSize; several broadcasts go as one compound', () => {
  for (const encrypted of [false, true]) {
    const keyring = encrypted ? Keyring.fromBase64(['hnHmLBWO0mSkH9Y9bGjN5Q==']) : null;
    const names = Array.from({ length: 30 }, (_, i) => `a-rather-long-node-name-to-fill-datagrams-${i}`);
    let max = 0;
    let compounds = 0;
    const net = new Net(89);
    net.rules.push((k, _f, _t, bytes) => {
      if (k === 'packet') {
        max = Math.max(max, bytes.length);
        // A compound (7), bare or behind the CRC header (12 + CRC-32) peers of protocol 5 get.
        if (!encrypted && (bytes[0] === 7 || (bytes[0] === 12 && bytes[5] === 7))) compounds++;
      }
      return false;
    });
    for (const n of names) {
      net.add(n, (c) => {
        c.enableCompression = false;
        c.keyring = keyring;
      });
    }
    for (const n of names.slice(1)) net.join(n, [names[0]!]);
    net.run(20_000);
    assert.ok(max <= 1400, `largest datagram ${max} bytes (encrypted: ${encrypted})`);
    assert.ok(max > 1000, `datagrams were filled (${max} bytes)`);
    if (!encrypted) assert.ok(compounds > 0);
    for (const n of names) assert.equal(net.get(n).ml.numMembers(), names.length);
  }
});

test('delegate broadcasts ride along with memberlist gossip, prefixed with the user type', () => {
  const net = Net.cluster(['a', 'b', 'c'], 97);
  net.run(3000);
  const a = net.get('a');
  const pending = [Uint8Array.of(0xaa, 1), Uint8Array.of(0xaa, 2)];
  a.delegate.getBroadcasts = (overhead: number, limit: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    let used = 0;
    while (pending.length > 0 && used + pending[0]!.length + overhead <= limit) {
      const m = pending.shift()!;
      used += m.length + overhead;
      out.push(m);
    }
    return out;
  };
  net.run(1000);
  const got = [...net.get('b').delegate.received, ...net.get('c').delegate.received];
  assert.deepEqual(
    got.map((p) => Array.from(p)).sort(),
    [
      [0xaa, 1],
      [0xaa, 2],
    ],
  );
});

test('a delegate that throws costs a counted drop, not the node; a join still completes', () => {
  const net = Net.cluster(['a', 'b'], 101);
  net.run(2000);
  const b = net.get('b');
  b.delegate.notifyMsg = (): void => {
    throw new Error('delegate bug');
  };
  b.delegate.mergeRemoteState = (): void => {
    throw new Error('bad remote state');
  };
  net.with('a', (ml) => ml.sendUserPacket(b.addr, Uint8Array.of(9)));
  net.run(10);
  assert.ok(drained(net, 'b').some((d) => d.reason === 'message-handler' && /delegate bug/.test(d.detail)));
  net.get('a').delegate.localState = (): Uint8Array => Uint8Array.of(1, 2, 3);
  const id = net.join('b', ['a']);
  net.run(100);
  const done = net.eventsOf('b', 'join-complete').map((x) => x.e as Extract<MemberEvent, { type: 'join-complete' }>);
  const mine = done.find((d) => d.joinId === id);
  assert.ok(mine !== undefined, 'join completed');
  assert.equal(mine.joined, 0);
  assert.match(mine.errors[0]!, /merge failed: bad remote state/);
  net.run(3000);
  assert.equal(net.stateOf('a', 'b')?.state, 'alive');
});
