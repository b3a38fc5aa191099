import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo } from '../../src/memberlist/api.ts';
import { Serf } from '../../src/serf/serf.ts';
import { SeededRandom } from '../../src/sim/random.ts';
import type { SerfEvent } from '../../src/serf/serf.ts';
import { decodeSerfMessage, encodeSerfBroadcast } from '../../src/serf/messages.ts';
import { encodeTags } from '../../src/serf/tags.ts';

function node(name: string, port: number, tags: Record<string, string> = {}, state: NodeInfo['state'] = 'alive'): NodeInfo {
  return {
    name,
    addr: { ip: '127.0.0.1', port },
    meta: encodeTags(tags, 5),
    incarnation: 1,
    state,
    vsn: [1, 5, 2, 2, 5, 5],
    stateChangeMs: 0,
  };
}

function newSerf(name = 'self'): Serf {
  return new Serf({ nodeName: name, tags: { role: 'kodama' }, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom([...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261)) });
}

function drain(s: Serf): SerfEvent[] {
  const out: SerfEvent[] = [];
  for (let e = s.pollEvent(), i = 0; e !== undefined && i < 1000; e = s.pollEvent(), i++) out.push(e);
  return out;
}

function statusOf(s: Serf, name: string): string | undefined {
  return s.members().find((m) => m.name === name)?.status;
}

/** Strip the memberlist 08 prefix and decode. */
function broadcastsOf(s: Serf): ReturnType<typeof decodeSerfMessage>[] {
  return s.getBroadcasts(2, 65000).map((b) => {
    assert.equal(b[0], 8);
    return decodeSerfMessage(b.subarray(1));
  });
}

test('memberlist join/leave drive alive → failed, and a join brings it back', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('self', 7946, { role: 'kodama' }) }, 0);
  s.handleMemberEvent({ type: 'join', node: node('b', 7947, { role: 'db' }) }, 1);
  assert.deepEqual(
    drain(s).map((e) => [e.type, e.members[0]?.name, e.members[0]?.tags['role']]),
    [
      ['member-join', 'self', 'kodama'],
      ['member-join', 'b', 'db'],
    ],
  );
  s.handleMemberEvent({ type: 'leave', node: node('b', 7947, {}, 'dead') }, 2);
  assert.equal(statusOf(s, 'b'), 'failed');
  assert.deepEqual(drain(s).map((e) => e.type), ['member-failed']);
  s.handleMemberEvent({ type: 'join', node: node('b', 7947, { role: 'db2' }) }, 3);
  assert.equal(statusOf(s, 'b'), 'alive');
  assert.equal(s.members().find((m) => m.name === 'b')?.tags['role'], 'db2');
  assert.deepEqual(drain(s).map((e) => e.type), ['member-join']);
});

test('a leave intent before memberlist dead makes the member left, not failed', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('b', 7947) }, 0);
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 5, node: 'b', prune: false }).subarray(1), 1);
  assert.equal(statusOf(s, 'b'), 'leaving');
  // accepted → re-broadcast once (with the memberlist prefix)
  assert.deepEqual(broadcastsOf(s), [{ type: 'leave', ltime: 5, node: 'b', prune: false }]);
  // the same intent again is old news: not queued again
  const queued = s.intentQueueLength();
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 5, node: 'b', prune: false }).subarray(1), 2);
  assert.equal(s.intentQueueLength(), queued);
  drain(s);
  s.handleMemberEvent({ type: 'leave', node: node('b', 7947, {}, 'dead') }, 3);
  assert.equal(statusOf(s, 'b'), 'left');
  assert.deepEqual(drain(s).map((e) => e.type), ['member-leave']);
  assert.ok(s.clock.time() > 5, 'clock witnessed the intent');
});

test('a newer join intent cancels leaving; a leave intent turns failed into left (forced)', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('b', 7947) }, 0);
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 5, node: 'b', prune: false }).subarray(1), 1);
  s.notifyMsg(encodeSerfBroadcast({ type: 'join', ltime: 4, node: 'b' }).subarray(1), 1);
  assert.equal(statusOf(s, 'b'), 'leaving', 'older join ignored');
  s.notifyMsg(encodeSerfBroadcast({ type: 'join', ltime: 6, node: 'b' }).subarray(1), 1);
  assert.equal(statusOf(s, 'b'), 'alive');
  s.handleMemberEvent({ type: 'leave', node: node('b', 7947, {}, 'dead') }, 2);
  assert.equal(statusOf(s, 'b'), 'failed');
  drain(s);
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 9, node: 'b', prune: false }).subarray(1), 3);
  assert.equal(statusOf(s, 'b'), 'left');
  assert.deepEqual(drain(s).map((e) => e.type), ['member-leave']);
});

test('intents about unknown nodes are buffered and applied when memberlist reports them', () => {
  const s = newSerf();
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 3, node: 'c', prune: false }).subarray(1), 0);
  assert.equal(s.intentQueueLength(), 1, 'new intent re-broadcast');
  s.handleMemberEvent({ type: 'join', node: node('c', 7948) }, 1);
  assert.equal(statusOf(s, 'c'), 'leaving');
  // an expired intent is forgotten (5 min)
  const t = newSerf();
  t.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 3, node: 'c', prune: false }).subarray(1), 0);
  t.notifyMsg(new Uint8Array(0), 6 * 60 * 1000); // advances time (and is counted as bad)
  t.handleMemberEvent({ type: 'join', node: node('c', 7948) }, 6 * 60 * 1000);
  assert.equal(statusOf(t, 'c'), 'alive');
  assert.equal(t.counters()['serf.dropped.bad-message'], 1);
});

test('a leave intent about ourselves while alive is refuted with a newer join intent', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 10, node: 'self', prune: false }).subarray(1), 1);
  assert.equal(statusOf(s, 'self'), 'alive');
  const b = broadcastsOf(s);
  assert.equal(b.length, 1);
  assert.equal(b[0]?.type, 'join');
  assert.ok(b[0]?.type === 'join' && b[0].ltime > 10 && b[0].node === 'self');
});

test('join-complete with peers broadcasts a join intent; a failed join does not', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  s.handleMemberEvent({ type: 'join-complete', joinId: 1, joined: 0, errors: ['refused'] }, 0);
  assert.equal(s.intentQueueLength(), 0);
  s.handleMemberEvent({ type: 'join-complete', joinId: 2, joined: 1, errors: [] }, 0);
  assert.deepEqual(broadcastsOf(s), [{ type: 'join', ltime: 1, node: 'self' }]);
});

test('graceful leave: intent goes out until the retransmit limit, then leaveBroadcastDone', () => {
  const s = newSerf();
  s.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  s.handleMemberEvent({ type: 'join', node: node('b', 7947) }, 0);
  s.leave(1);
  assert.equal(s.state, 'leaving');
  assert.equal(statusOf(s, 'self'), 'leaving');
  assert.equal(s.leaveBroadcastDone(), false);
  assert.throws(() => s.leave(2), /Leave already in progress/);
  let sends = 0;
  for (let i = 0; i < 20 && !s.leaveBroadcastDone(); i++) {
    const got = broadcastsOf(s);
    assert.deepEqual(got, [{ type: 'leave', ltime: 1, node: 'self', prune: false }]);
    sends++;
  }
  // retransmitMult 2 × ceil(log10(2 + 1)) = 2 transmissions
  assert.equal(sends, 2);
  assert.equal(s.leaveBroadcastDone(), true);
  s.markLeft();
  assert.equal(s.state, 'left');
  // alone in the cluster there is nothing to wait for
  const lone = newSerf();
  lone.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  lone.leave(0);
  assert.equal(lone.leaveBroadcastDone(), true);
});

test('push/pull state round-trips between two Serfs: left members and status times', () => {
  const a = newSerf('a');
  a.handleMemberEvent({ type: 'join', node: node('a', 1) }, 0);
  a.handleMemberEvent({ type: 'join', node: node('x', 2) }, 0);
  a.handleMemberEvent({ type: 'join', node: node('y', 3) }, 0);
  a.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 20, node: 'x', prune: false }).subarray(1), 0);
  a.handleMemberEvent({ type: 'leave', node: node('x', 2, {}, 'dead') }, 0);
  assert.equal(statusOf(a, 'x'), 'left');

  const b = newSerf('b');
  b.handleMemberEvent({ type: 'join', node: node('x', 2) }, 0);
  b.handleMemberEvent({ type: 'join', node: node('y', 3) }, 0);
  b.handleMemberEvent({ type: 'leave', node: node('x', 2, {}, 'dead') }, 0);
  assert.equal(statusOf(b, 'x'), 'failed');
  drain(b);
  b.mergeRemoteState(a.localState(false), false, 1);
  assert.equal(statusOf(b, 'x'), 'left', 'a left member from push/pull turns failed into left');
  assert.deepEqual(drain(b).map((e) => e.type), ['member-leave']);
  assert.ok(b.clock.time() >= 21);
  // a bad remote state is counted and changes nothing
  b.mergeRemoteState(Uint8Array.of(2, 0xc1), true, 2);
  b.mergeRemoteState(encodeSerfBroadcast({ type: 'join', ltime: 1, node: 'q' }).subarray(1), true, 2);
  assert.equal(b.counters()['serf.dropped.bad-push-pull'], 2);
});

test('tags: nodeMeta carries them, setTags replaces them, oversized tags are refused', () => {
  const s = newSerf();
  assert.deepEqual([...s.nodeMeta(512)], [...encodeTags({ role: 'kodama' }, 5)]);
  s.setTags({ role: 'web', dc: 'x1' });
  assert.deepEqual([...s.nodeMeta(512)], [...encodeTags({ role: 'web', dc: 'x1' }, 5)]);
  assert.throws(() => s.setTags({ big: 'v'.repeat(600) }), /over the limit/);
  assert.deepEqual(s.localTags(), { role: 'web', dc: 'x1' });
});

test('garbage messages are counted, never thrown', () => {
  const s = newSerf();
  const inputs = [
    new Uint8Array(0),
    Uint8Array.of(200),
    Uint8Array.of(1, 0xc1),
    Uint8Array.of(3, 0x91, 0x01), // user event that is an array, not a map
    Uint8Array.of(4), // query without body
    Uint8Array.of(9, 0x80), // relay without destination
    Uint8Array.of(7, 0x80), // a key request is only valid inside a query payload
  ];
  for (const i of inputs) s.notifyMsg(i, 0);
  const c = s.counters();
  assert.equal(c['serf.dropped.bad-message'], 6);
  assert.equal(c['serf.unhandled.keyRequest'], 1);
  assert.deepEqual(drain(s), []);
  // a member with corrupt meta still joins, with no tags
  s.handleMemberEvent({ type: 'join', node: { ...node('z', 9), meta: Uint8Array.of(0xff, 0x81) } }, 0);
  assert.deepEqual(s.members().find((m) => m.name === 'z')?.tags, {});
  assert.equal(s.counters()['serf.dropped.bad-tags'], 1);
});

test('prefixBroadcasts: false hands the core bare Serf messages', () => {
  const s = new Serf({ nodeName: 'self', tags: {}, protocolVersion: 5, retransmitMult: 2, prefixBroadcasts: false, random: new SeededRandom(216) });
  s.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  s.handleMemberEvent({ type: 'join-complete', joinId: 1, joined: 1, errors: [] }, 0);
  s.notifyMsg(encodeSerfBroadcast({ type: 'leave', ltime: 3, node: 'c', prune: false }).subarray(1), 0);
  const got = s.getBroadcasts(3, 1000);
  assert.equal(got.length, 2);
  assert.deepEqual(
    got.map((b) => decodeSerfMessage(b)).sort((a, b) => a.type.localeCompare(b.type)),
    [
      { type: 'join', ltime: 1, node: 'self' },
      { type: 'leave', ltime: 3, node: 'c', prune: false },
    ],
  );
});

test('leaveIntent names every alive peer (not self, not failed) for direct delivery', () => {
  const s = newSerf();
  assert.equal(s.leaveIntent(), undefined);
  s.handleMemberEvent({ type: 'join', node: node('self', 7946) }, 0);
  s.handleMemberEvent({ type: 'join', node: node('b', 7947) }, 0);
  s.handleMemberEvent({ type: 'join', node: node('c', 7948) }, 0);
  s.handleMemberEvent({ type: 'leave', node: node('c', 7948, {}, 'dead') }, 0);
  s.leave(1);
  const li = s.leaveIntent();
  assert.deepEqual(li?.to, [{ ip: '127.0.0.1', port: 7947 }]);
  assert.deepEqual(li && decodeSerfMessage(li.payload), { type: 'leave', ltime: 1, node: 'self', prune: false });
});

test('the intent buffer for unknown nodes is capped against floods of made-up names', () => {
  const s = newSerf();
  const t0 = performance.now();
  for (let i = 0; i < 20_000; i++) {
    s.notifyMsg(encodeSerfBroadcast({ type: 'join', ltime: i, node: `fake-${i}` }).subarray(1), i);
  }
  assert.ok(performance.now() - t0 < 5000, 'a flood stays cheap per message');
  assert.equal(s.counters()['serf.dropped.intent-buffer-full'], 20_000 - 8192);
  assert.ok(s.intentQueueLength() <= 4096 * 1.25, 'the re-broadcast queue is pruned too');
  assert.ok((s.counters()['serf.dropped.queue-pruned'] ?? 0) > 0);
});

test('with min_queue_depth the queue limit is twice the cluster, not a fixed 4096 (serf#557), and every pruned broadcast is counted', () => {
  const s = new Serf({ nodeName: 'self', tags: { role: 'kodama' }, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom(7), minQueueDepth: 100 });
  s.handleMemberEvent({ type: 'join', node: node('self', 7946, { role: 'kodama' }) }, 0);
  for (let i = 0; i < 299; i++) s.handleMemberEvent({ type: 'join', node: node(`m${i}`, 8000 + i, {}) }, 1);
  // 300 members: the limit is 600 (a floor of 100). A storm of 1000 intents about nodes not yet
  // known queues each for re-broadcast; beyond 600 (+25 % slack before a prune) the oldest go.
  for (let i = 0; i < 1000; i++) s.notifyMsg(encodeSerfBroadcast({ type: 'join', ltime: i + 1, node: `new-${i}` }).subarray(1), 2);
  const left = s.intentQueueLength();
  assert.ok(left >= 600 && left <= 750, `queue holds ${left}, limit 600`);
  assert.equal(s.counters()['serf.dropped.queue-pruned'], 1000 - left, 'each pruned broadcast counted once');
  // A small cluster keeps the floor.
  const small = new Serf({ nodeName: 'self', tags: {}, protocolVersion: 5, retransmitMult: 2, random: new SeededRandom(8), minQueueDepth: 100 });
  for (let i = 0; i < 1000; i++) small.notifyMsg(encodeSerfBroadcast({ type: 'join', ltime: i + 1, node: `new-${i}` }).subarray(1), 2);
  assert.ok(small.intentQueueLength() <= 125, `floor 100 (+25 %): ${small.intentQueueLength()}`);
});

test('nodeMeta never throws: a limit below the tags advertises none', () => {
  const s = newSerf();
  const meta = s.nodeMeta(3);
  assert.ok(meta.length <= 3);
  assert.equal(s.counters()['serf.tags-too-large'], 1);
});
