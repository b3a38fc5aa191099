// Eager forwarding (src/memberlist/eager.ts) on the core alone: what triggers a round, what it
// sends, what it takes from the retransmit budget, and what never triggers one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, TestDelegate } from './harness.ts';
import { isSerfNews, SeenNews, SERF_QUERY, SERF_USER_EVENT } from '../../src/memberlist/eager.ts';
import { TransmitLimitedQueue } from '../../src/memberlist/queue.ts';
import { encodeMessage } from '../../src/wire/messages.ts';
import { encodePacket } from '../../src/wire/packet.ts';

test('SeenNews remembers what it saw, forgets the oldest beyond its capacity', () => {
  const seen = new SeenNews(2);
  const a = Uint8Array.of(SERF_USER_EVENT, 1);
  const b = Uint8Array.of(SERF_USER_EVENT, 2);
  const c = Uint8Array.of(SERF_QUERY, 3);
  assert.equal(seen.add(a), true);
  assert.equal(seen.add(a.slice()), false, 'same bytes, another buffer');
  assert.equal(seen.add(b), true);
  assert.equal(seen.add(c), true);
  assert.equal(seen.size, 2);
  assert.equal(seen.add(a), true, 'the oldest was forgotten');
  assert.equal(isSerfNews(a) && isSerfNews(c), true);
  assert.equal(isSerfNews(Uint8Array.of(5, 0)), false, 'a query response is not news');
  assert.equal(isSerfNews(Uint8Array.of(1, 0)), false, 'nor a join intent');
});

test('a broadcast queued with transmissions already made keeps only the rest of its budget', () => {
  const q = new TransmitLimitedQueue(4, () => 9); // limit 4 × ceil(log10(10)) = 4
  q.queue({ msg: Uint8Array.of(1) }, 3);
  assert.equal(q.getBroadcasts(0, 100).length, 1);
  assert.equal(q.length, 0, 'one more transmission and it is done');
  let finished: boolean | undefined;
  q.queue({ msg: Uint8Array.of(2), finished: (t) => (finished = t) }, 4);
  assert.equal(q.length, 0);
  assert.equal(finished, true, 'sent its whole budget already');
});

/** Packets each node sent, by virtual ms. */
function countPackets(net: Net): Map<string, number[]> {
  const sent = new Map<string, number[]>();
  net.rules.push((kind, from) => {
    if (kind === 'packet') {
      const l = sent.get(from) ?? [];
      l.push(net.now);
      sent.set(from, l);
    }
    return false;
  });
  return sent;
}

test('fresh news goes to eagerGossipNodes peers at once (news about itself, in a small cluster: to every peer), each node forwards it eagerly once, out of its budget', () => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  for (const [eager, direct] of [
    [0, 16],
    [3, 0],
    [3, 5], // 6 peers: more than it may tell directly
    [3, 16],
  ] as const) {
    const net = Net.cluster(names, 7, (c) => {
      c.eagerGossipNodes = eager;
      c.ownNewsDirectMax = direct;
    });
    net.run(15_000); // joined, queues drained
    const sent = countPackets(net);
    const before = new Map(names.map((n) => [n, net.get(n).ml.counters()]));
    const t0 = net.now;
    net.get('b').delegate.meta = new TextEncoder().encode('role=web');
    net.with('b', (ml, now) => ml.updateMeta(now));
    net.run(30);
    const atOnce = (sent.get('b') ?? []).filter((t) => t === t0).length;
    const reached = names.filter((n) => n !== 'b' && net.eventsOf(n, 'update').some((x) => x.at <= t0 + 30)).length;
    net.run(3000);
    const d = (n: string, k: string): number => (net.get(n).ml.counters()[k] ?? 0) - (before.get(n)?.[k] ?? 0);
    if (eager === 0) {
      assert.equal(atOnce, 0, 'memberlist waits for its gossip round');
      for (const n of names) assert.equal(d(n, 'eager-rounds'), 0);
      continue;
    }
    if (direct >= 6) {
      // News about itself, 6 peers ≤ ownNewsDirectMax: every peer told at once, no eager round.
      assert.equal(atOnce, 6, 'a packet to every peer the moment the news is queued');
      assert.equal(reached, 6, `${reached} of 6 peers had the new meta within 30 ms (1 ms links)`);
      assert.equal(d('b', 'eager-rounds'), 0);
      assert.equal(d('b', 'own-news-direct'), 6);
    } else {
      assert.equal(atOnce, 3, 'three packets the moment the news is queued');
      assert.ok(reached >= 4, `${reached} of 6 peers had the new meta within 30 ms (1 ms links)`);
    }
    let rounds = 0;
    for (const n of names) {
      assert.ok(d(n, 'eager-rounds') <= 1, `${n} forwarded one piece of news eagerly ${d(n, 'eager-rounds')} times`);
      assert.ok(d(n, 'eager-packets') <= 3 * d(n, 'eager-rounds'));
      rounds += d(n, 'eager-rounds');
    }
    assert.ok(rounds >= 4, `b or the peers it told forwarded it: ${rounds} rounds`);
    for (const n of names) assert.equal(net.stateOf(n, 'b')?.meta.length, 8, `${n} has b's meta`);
  }
});

/** Keeps the Serf news it is handed as pending broadcasts, like Serf's queues. */
class NewsDelegate extends TestDelegate {
  pending: Uint8Array[] = [];
  override notifyMsg(payload: Uint8Array): void {
    super.notifyMsg(payload);
    if (isSerfNews(payload)) this.pending.push(payload.slice());
  }
  override getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let used = 0;
    for (const m of this.pending) {
      if (used + m.length + overhead > limit) break;
      used += m.length + overhead;
      out.push(m);
    }
    return out;
  }
}

test('Serf news triggers one round per new payload; a burst in one packet is one round; rounds are a gossip interval apart', () => {
  const net = Net.cluster(['a', 'b', 'c', 'd'], 11);
  net.run(10_000);
  const a = net.get('a');
  const d = new NewsDelegate();
  (a.ml as unknown as { delegate: unknown }).delegate = d;
  const user = (payload: Uint8Array): Uint8Array => encodeMessage({ type: 'user', payload });
  const SEAL = { compress: false, keyring: null, crc: false, randomBytes: (n: number) => new Uint8Array(n) };
  const ev1 = Uint8Array.of(SERF_USER_EVENT, 1, 1);
  const q1 = Uint8Array.of(SERF_QUERY, 1, 2);
  const c0 = a.ml.counters();
  const from = net.get('b').addr;
  // Two pieces of news and a query response in one compound packet: one round.
  net.with('a', (ml, now) => ml.handlePacket(from, encodePacket([user(ev1), user(q1), user(Uint8Array.of(5, 9))], SEAL), now));
  net.run(1);
  const c1 = a.ml.counters();
  assert.equal((c1['eager-serf-news'] ?? 0) - (c0['eager-serf-news'] ?? 0), 2);
  assert.equal((c1['eager-rounds'] ?? 0) - (c0['eager-rounds'] ?? 0), 1);
  // The round skipped b (it sent us the news): c and d only.
  assert.equal((c1['eager-packets'] ?? 0) - (c0['eager-packets'] ?? 0), 2);
  // The same news again: nothing.
  net.with('a', (ml, now) => ml.handlePacket(from, encodePacket([user(ev1)], SEAL), now));
  net.run(1);
  assert.equal(a.ml.counters()['eager-serf-news'], c1['eager-serf-news']);
  // New news 50 ms later waits for the next slot, a gossip interval after the first round.
  const t1 = net.now;
  net.run(48);
  net.with('a', (ml, now) => ml.handlePacket(from, encodePacket([user(Uint8Array.of(SERF_USER_EVENT, 2, 2))], SEAL), now));
  net.run(100);
  assert.equal(a.ml.counters()['eager-rounds'], c1['eager-rounds'], 'no second round within the gossip interval');
  net.run(200 - (net.now - t1) + 5);
  assert.equal((a.ml.counters()['eager-rounds'] ?? 0) - (c1['eager-rounds'] ?? 0), 1, 'the second round came at its slot');
});

test('a member back from the dead, heard of by a packet, goes straight to every other live peer in a small cluster (not to its sender, not to itself); off with ownNewsDirectMax 0', () => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (const direct of [16, 0]) {
    const net = Net.cluster(names, 5, (c) => {
      c.ownNewsDirectMax = direct;
    });
    net.run(15_000);
    // f goes quiet until everyone holds it dead; then b tells a it is back (a refutation).
    net.rules.push((_kind, from, to) => from === 'f' || to === 'f');
    for (let i = 0; i < 60 && !names.slice(0, 5).every((n) => net.stateOf(n, 'f')?.state === 'dead'); i++) net.run(1000);
    assert.ok(names.slice(0, 5).every((n) => net.stateOf(n, 'f')?.state === 'dead'), 'everyone holds f dead');
    net.rules.length = 0;
    const f = net.stateOf('a', 'f')!;
    const alive = encodeMessage({ type: 'alive', incarnation: f.incarnation + 1, node: 'f', addr: Uint8Array.from(f.addr.ip.split('.').map(Number)), port: f.addr.port, meta: f.meta, vsn: f.vsn });
    const SEAL = { compress: false, keyring: null, crc: false, randomBytes: (n: number) => new Uint8Array(n) };
    const sent = countPackets(net);
    const t0 = net.now;
    const c0 = net.get('a').ml.counters()['revived-direct'] ?? 0;
    net.with('a', (ml, now) => ml.handlePacket(net.get('b').addr, encodePacket([alive], SEAL), now));
    net.run(5);
    assert.equal(net.stateOf('a', 'f')?.state, 'alive');
    const told = names.filter((n) => n !== 'a' && n !== 'b' && n !== 'f' && net.stateOf(n, 'f')?.state === 'alive' && net.eventsOf(n, 'join').some((x) => x.at > t0 && x.at <= t0 + 5));
    const atOnce = (sent.get('a') ?? []).filter((t) => t === t0).length;
    if (direct > 0) {
      assert.equal((net.get('a').ml.counters()['revived-direct'] ?? 0) - c0, 3, 'c, d and e told directly');
      assert.deepEqual(told, ['c', 'd', 'e'], 'every other live peer has f alive within 5 ms (1 ms links)');
      assert.ok(atOnce >= 3, `${atOnce} packets at once`);
    } else {
      assert.equal((net.get('a').ml.counters()['revived-direct'] ?? 0) - c0, 0, 'memberlist leaves it to gossip');
    }
  }
});
