// Failure detection paths: indirect probes, TCP fallback, nacks and awareness, Lifeguard
// confirmations in a larger cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net } from './harness.ts';
import { decodePacket } from '../../src/wire/packet.ts';
import type { MemberEvent } from '../../src/memberlist/api.ts';

function everSuspected(net: Net, viewers: string[], subject: string): () => boolean {
  let seen = false;
  const prev = net.observe;
  net.observe = () => {
    prev?.();
    for (const v of viewers) if (net.stateOf(v, subject)?.state === 'suspect') seen = true;
  };
  return () => seen;
}

test('probe succeeds through an indirect ping when the direct path is dropped', () => {
  const net = Net.cluster(['a', 'b', 'c'], 31);
  net.run(5000);
  // a and c cannot exchange datagrams directly; both can reach b.
  net.rules.push((k, from, to) => k === 'packet' && ((from === 'a' && to === 'c') || (from === 'c' && to === 'a')));
  // TCP would also rescue the probe; cut it to prove the indirect path alone suffices.
  net.rules.push((k, from, to) => k === 'stream' && ((from === 'a' && to === 'c') || (from === 'c' && to === 'a')));
  const suspected = everSuspected(net, ['a', 'b', 'c'], 'c');
  const suspectedA = everSuspected(net, ['a', 'b', 'c'], 'a');
  net.run(30_000);
  assert.equal(suspected(), false, 'c never suspected');
  assert.equal(suspectedA(), false, 'a never suspected');
  assert.ok((net.get('a').ml.counters()['indirect-probes'] ?? 0) > 0, 'a used relays');
  assert.equal(net.get('a').ml.counters()['probe-failures'] ?? 0, 0);
  assert.equal(net.stateOf('a', 'c')?.state, 'alive');
});

test('probe succeeds through the TCP fallback when all UDP to the target is dropped', () => {
  const net = Net.cluster(['a', 'b', 'c'], 37);
  net.run(5000);
  net.rules.push((k, _from, to) => k === 'packet' && to === 'c');
  const suspected = everSuspected(net, ['a', 'b'], 'c');
  net.run(30_000);
  assert.equal(suspected(), false, 'c never suspected by a or b');
  assert.ok((net.get('a').ml.counters()['probe-tcp-only'] ?? 0) > 0, 'a succeeded over TCP only');
  assert.equal(net.eventsOf('a', 'leave').length, 0);
});

test('without TCP pings the same UDP outage gets the node suspected and declared dead', () => {
  const net = Net.cluster(['a', 'b', 'c'], 37, (c) => {
    c.disableTcpPings = true;
  });
  net.run(5000);
  net.rules.push((k, _from, to) => k === 'packet' && to === 'c');
  net.run(30_000);
  const leaves = net.eventsOf('a', 'leave').map((x) => (x.e as Extract<MemberEvent, { type: 'leave' }>).node);
  assert.deepEqual(leaves.map((n) => [n.name, n.state]), [['c', 'dead']]);
});

/** Does this datagram carry a nack? */
function hasNack(bytes: Uint8Array): boolean {
  try {
    return decodePacket(bytes, { keyring: null, verifyIncoming: false }).messages.some((m) => m.type === 'nack');
  } catch {
    return false;
  }
}

test('awareness: missing nacks raise the health score, received nacks keep it low', () => {
  const run = (dropNacks: boolean): number => {
    // d stays suspect (not dead) through the window, so a keeps probing it: the score follows
    // a's own probes, not how soon the others' confirmations declare d dead (a seed's luck).
    const net = Net.cluster(['a', 'b', 'c', 'd'], 41, (c) => {
      c.suspicionMult = 30;
    });
    net.run(5000);
    net.stop('d');
    if (dropNacks) net.rules.push((k, _from, to, bytes) => k === 'packet' && to === 'a' && hasNack(bytes));
    let maxScore = 0;
    net.observe = () => {
      maxScore = Math.max(maxScore, net.get('a').ml.healthScore());
    };
    net.run(20_000);
    return maxScore;
  };
  // As in memberlist, a relay's nack (sent probeTimeout after it got the request) only beats
  // the probe deadline once the interval is stretched: the first failure counts +2 (both
  // relays' nacks late), later ones count only nacks that really went missing.
  const withNacks = run(false);
  const withoutNacks = run(true);
  assert.ok(withNacks <= 2, `relays answered with nacks: score stayed at ${withNacks}`);
  // 3–4 over seeds 38–49: the later failures count the missing nacks.
  assert.ok(withoutNacks >= 3 && withoutNacks > withNacks, `health rose to ${withoutNacks} when the relays' nacks went missing (${withNacks} with them)`);
});

test('awareness stretches the probe deadline: a degraded node waits longer before suspecting', () => {
  const suspectDelay = (score: number): number => {
    const net = Net.cluster(['a', 'b'], 43, (c) => {
      c.disableTcpPings = true;
    });
    net.run(3000);
    const cutAt = net.now;
    net.rules.push((k, _from, to) => k === 'packet' && to === 'b');
    net.get('a').ml.awareness.applyDelta(score);
    let at = -1;
    net.observe = () => {
      if (at < 0 && net.stateOf('a', 'b')?.state === 'suspect') at = net.now;
    };
    net.run(12_000);
    assert.ok(at > 0, 'b was suspected');
    return at - cutAt;
  };
  const healthy = suspectDelay(0);
  const degraded = suspectDelay(3);
  assert.ok(healthy >= 1000 && healthy <= 2000, `healthy: suspected after ${healthy} ms`);
  // The probe in flight at the cut may still succeed (score 3 → 2): 3–4 intervals.
  assert.ok(degraded >= 2999 && degraded <= 5000, `score 3: suspected after ${degraded} ms`);
});

test('awareness decays by one per successful probe', () => {
  const net = Net.cluster(['a', 'b'], 44);
  net.run(3000);
  const a = net.get('a').ml;
  a.awareness.applyDelta(5);
  net.run(3100);
  assert.ok(a.healthScore() <= 2 && a.healthScore() >= 1, `score ${a.healthScore()} after ~3 probes`);
  net.run(5000);
  assert.equal(a.healthScore(), 0);
});

test('Lifeguard: confirmations from other nodes shorten the suspicion timeout (n = 6, k = 2)', () => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const net = Net.cluster(names, 47);
  net.run(8000);
  const suspectAt = new Map<string, number>();
  net.observe = () => {
    for (const v of names.slice(0, 5)) {
      if (!suspectAt.has(v) && net.stateOf(v, 'f')?.state === 'suspect') suspectAt.set(v, net.now);
    }
  };
  net.stop('f');
  net.run(60_000);
  const firstSuspect = Math.min(...suspectAt.values());
  const deadAt = Math.min(
    ...names.slice(0, 5).map((v) => {
      const ev = net.eventsOf(v, 'leave')[0]?.e as Extract<MemberEvent, { type: 'leave' }> | undefined;
      assert.ok(ev !== undefined, `${v} saw f leave`);
      assert.equal(ev.node.state, 'dead');
      return ev.node.stateChangeMs;
    }),
  );
  const took = deadAt - firstSuspect;
  // min = 4 × log10(6) × 1 s = 3112 ms, max = 6 × min = 18672 ms; confirmations pull it down.
  assert.ok(took >= 3112, `dead after ${took} ms ≥ min`);
  assert.ok(took < 18_672, `dead after ${took} ms < max (confirmations counted)`);
});
