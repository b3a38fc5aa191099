// Several Memberlist cores on the in-test network (harness.ts): joining, failure detection,
// graceful leave, refutation, meta updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net } from './harness.ts';
import type { MemberEvent } from '../../src/memberlist/api.ts';

function aliveNames(net: Net, viewer: string): string[] {
  return net
    .get(viewer)
    .ml.members()
    .filter((m) => m.state === 'alive')
    .map((m) => m.name)
    .sort();
}

for (const size of [2, 3, 5]) {
  test(`${size} nodes join and all see each other alive`, () => {
    const names = Array.from({ length: size }, (_, i) => `node${i}`);
    const net = Net.cluster(names, size);
    net.run(10_000);
    for (const n of names) {
      assert.deepEqual(aliveNames(net, n), [...names].sort(), `view of ${n}`);
      assert.equal(net.get(n).ml.numMembers(), size);
      // one join event per member, including ourselves
      const joined = net.eventsOf(n, 'join').map((x) => (x.e as Extract<MemberEvent, { type: 'join' }>).node.name);
      assert.deepEqual([...joined].sort(), [...names].sort(), `join events at ${n}`);
      assert.equal(net.eventsOf(n, 'leave').length, 0);
    }
    for (const n of names.slice(1)) {
      const done = net.eventsOf(n, 'join-complete');
      assert.equal(done.length, 1);
      assert.deepEqual(done[0]!.e, { type: 'join-complete', joinId: 1, joined: 1, errors: [] });
    }
  });
}

test('a stopped node is suspected, then declared dead exactly 4 s later (n = 3), others get leave/dead', () => {
  const net = Net.cluster(['a', 'b', 'c'], 7);
  net.run(5000);
  assert.deepEqual(aliveNames(net, 'a'), ['a', 'b', 'c']);
  const stopAt = net.now;
  net.stop('c');
  const suspectAt = new Map<string, number>();
  net.observe = () => {
    for (const v of ['a', 'b']) {
      if (!suspectAt.has(v) && net.stateOf(v, 'c')?.state === 'suspect') suspectAt.set(v, net.now);
    }
  };
  net.run(20_000);
  const deaths: { viewer: string; at: number }[] = [];
  for (const v of ['a', 'b']) {
    const leaves = net.eventsOf(v, 'leave');
    assert.equal(leaves.length, 1, `${v} sees one leave`);
    const e = leaves[0]!.e as Extract<MemberEvent, { type: 'leave' }>;
    assert.equal(e.node.name, 'c');
    assert.equal(e.node.state, 'dead');
    assert.ok(suspectAt.has(v), `${v} suspected c first`);
    deaths.push({ viewer: v, at: e.node.stateChangeMs });
  }
  // The first node to declare c dead did it on its own suspicion timer: min = 4 s for n = 3
  // (k = 0 since n − 2 < SuspicionMult − 2, so no confirmations are waited for).
  deaths.sort((x, y) => x.at - y.at);
  const first = deaths[0]!;
  assert.equal(first.at - suspectAt.get(first.viewer)!, 4000);
  // Detection bound: a probe of c starts within 2 probe rounds, fails after one interval, then 4 s.
  assert.ok(first.at - stopAt <= 2 * 1000 + 1000 + 4000 + 10, `dead after ${first.at - stopAt} ms`);
  // Dead nodes stay listed (for gossip to the dead) until purged after gossipToTheDeadMs (30 s).
  assert.equal(net.stateOf('a', 'c')?.state, 'dead');
  assert.equal(net.get('a').ml.numMembers(), 2, 'alive + suspect count excludes the dead');
  net.run(40_000);
  assert.equal(net.stateOf('a', 'c'), undefined, 'purged at a probe wrap-around after 30 s');
  assert.equal(net.stateOf('b', 'c'), undefined);
});

test('graceful leave: leave-complete for the leaver, state left at the others', () => {
  const net = Net.cluster(['a', 'b', 'c'], 3);
  net.run(5000);
  net.with('c', (ml, now) => ml.leave(now, 5000));
  net.run(3000);
  const done = net.eventsOf('c', 'leave-complete');
  assert.equal(done.length, 1);
  assert.deepEqual(done[0]!.e, { type: 'leave-complete', timedOut: false });
  assert.ok(done[0]!.at - 5000 < 3000, 'the dead-self broadcast went out before the timeout');
  for (const v of ['a', 'b']) {
    const leaves = net.eventsOf(v, 'leave');
    assert.equal(leaves.length, 1);
    const e = leaves[0]!.e as Extract<MemberEvent, { type: 'leave' }>;
    assert.equal(e.node.name, 'c');
    assert.equal(e.node.state, 'left');
  }
  // The leaver, once gone, is not suspected or declared dead later.
  net.stop('c');
  net.run(20_000);
  assert.equal(net.stateOf('a', 'c')?.state, 'left');
});

test('leave with nobody else alive completes at once', () => {
  const net = new Net(4);
  net.add('solo');
  net.with('solo', (ml, now) => ml.leave(now, 5000));
  assert.deepEqual(net.eventsOf('solo', 'leave-complete').map((x) => x.e), [{ type: 'leave-complete', timedOut: false }]);
});

test('leave times out when the broadcast cannot go out', () => {
  // Without eager forwarding: its eager send plus three gossip rounds use up the 4 transmissions
  // of a 2-node cluster within the 500 ms (the broadcast completes, its packets vanished or not).
  const net = Net.cluster(['a', 'b'], 5, (c) => {
    c.eagerGossipNodes = 0;
  });
  net.run(3000);
  net.rules.push((_k, from) => from === 'b'); // b is cut off: its broadcast never leaves
  net.with('b', (ml, now) => ml.leave(now, 500));
  net.run(400);
  assert.equal(net.eventsOf('b', 'leave-complete').length, 0);
  net.run(200);
  // b's queue is still sending (its packets vanish), so the 500 ms timeout decides
  const done = net.eventsOf('b', 'leave-complete');
  assert.deepEqual(done.map((x) => x.e), [{ type: 'leave-complete', timedOut: true }]);
  assert.equal(done[0]!.at, 3500);
});

test('a falsely suspected node refutes with a higher incarnation and is never declared dead', () => {
  const net = Net.cluster(['a', 'b', 'c'], 11);
  net.run(5000);
  const incBefore = net.get('c').ml.localNode().incarnation;
  // c cannot hear anyone for 3.5 s (inbound link down): its peers' probes of it fail.
  const cutFrom = net.now;
  net.rules.push((_k, _from, to) => to === 'c' && net.now < cutFrom + 3500);
  let suspected = false;
  net.observe = () => {
    if (net.stateOf('a', 'c')?.state === 'suspect' || net.stateOf('b', 'c')?.state === 'suspect') suspected = true;
  };
  net.run(15_000);
  assert.ok(suspected, 'c was suspected while cut off');
  const c = net.get('c').ml;
  assert.ok(c.localNode().incarnation > incBefore, 'c bumped its incarnation');
  assert.ok((c.counters().refutations ?? 0) >= 1);
  for (const v of ['a', 'b']) {
    assert.equal(net.eventsOf(v, 'leave').length, 0, `${v} never declared c dead`);
    const st = net.stateOf(v, 'c');
    assert.equal(st?.state, 'alive');
    assert.equal(st?.incarnation, c.localNode().incarnation);
  }
});

test('updateMeta: others get an update event with the new meta and incarnation', () => {
  const net = Net.cluster(['a', 'b', 'c'], 13);
  net.run(5000);
  const c = net.get('c');
  c.delegate.meta = new TextEncoder().encode('role=web');
  net.with('c', (ml, now) => ml.updateMeta(now));
  net.run(2000);
  for (const v of ['a', 'b']) {
    const ups = net.eventsOf(v, 'update');
    assert.equal(ups.length, 1, `${v} got one update`);
    const e = ups[0]!.e as Extract<MemberEvent, { type: 'update' }>;
    assert.equal(e.node.name, 'c');
    assert.equal(new TextDecoder().decode(e.node.meta), 'role=web');
    assert.equal(e.node.incarnation, 2);
  }
  assert.equal(net.eventsOf('c', 'update').length, 1, 'the local node sees its own update too');
});

test('user packets reach the delegate', () => {
  const net = Net.cluster(['a', 'b'], 17);
  net.run(2000);
  net.with('a', (ml) => ml.sendUserPacket(net.get('b').addr, Uint8Array.of(1, 2, 3)));
  net.run(10);
  assert.deepEqual(net.get('b').delegate.received, [Uint8Array.of(1, 2, 3)]);
});

test('ping RTTs reach the delegate for direct acks', () => {
  const net = Net.cluster(['a', 'b'], 19);
  net.run(5000);
  const pings = net.get('a').delegate.pings;
  assert.ok(pings.length >= 3, `${pings.length} pings completed`);
  for (const p of pings) {
    assert.equal(p.node, 'b');
    assert.equal(p.rttMs, 2); // 1 ms each way in the harness
  }
});

test('join with unreachable seeds reports each failure', () => {
  const net = new Net(23);
  net.add('a');
  const id = net.with('a', (ml, now) => ml.join([{ ip: '10.9.9.9', port: 7946 }, { ip: '10.9.9.8', port: 1 }], now));
  net.run(100);
  const done = net.eventsOf('a', 'join-complete');
  assert.equal(done.length, 1);
  const e = done[0]!.e as Extract<MemberEvent, { type: 'join-complete' }>;
  assert.equal(e.joinId, id);
  assert.equal(e.joined, 0);
  assert.equal(e.errors.length, 2);
  assert.match(e.errors[0]!, /Failed to join 10\.9\.9\.9:7946: connection refused/);
});

test('deterministic: the same seed gives the same trace, another seed another', () => {
  const trace = (seed: number): string => {
    const net = Net.cluster(['a', 'b', 'c', 'd'], seed);
    net.run(4000);
    net.stop('d');
    net.run(12_000);
    return JSON.stringify(
      ['a', 'b', 'c'].map((n) => [
        net.get(n).events.map((x) => [x.at, x.e.type, 'node' in x.e ? x.e.node.name : '']),
        net.get(n).ml.counters(),
      ]),
    );
  };
  assert.equal(trace(5), trace(5));
  assert.notEqual(trace(5), trace(6));
});
