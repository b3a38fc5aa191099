// Unit tests of the core's small pure parts: suspicion formula, awareness bounds, timer order,
// probe-list behaviour of the node table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Awareness } from '../../src/memberlist/awareness.ts';
import {
  remainingSuspicionMs,
  Suspicion,
  suspicionConfirmationsK,
  suspicionTimeoutMs,
} from '../../src/memberlist/suspicion.ts';
import { TimerSet } from '../../src/memberlist/timers.ts';
import { NodeTable } from '../../src/memberlist/table.ts';
import { Interners } from '../../src/memberlist/intern.ts';
import { encodeLocalState, pushPullScaleMs } from '../../src/memberlist/pushpull.ts';
import { decodeMessage, encodeMessage, type Message } from '../../src/wire/index.ts';
import { lanConfig, localConfig, wanConfig } from '../../src/memberlist/config.ts';
import type { NodeInfo, Random } from '../../src/memberlist/api.ts';

/** Small deterministic PRNG (mulberry32) for tests. */
export function testRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    float: next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256)),
  };
}

test('suspicion min timeout follows mult × max(1, log10 n) × interval', () => {
  assert.equal(suspicionTimeoutMs(4, 3, 1000), 4000); // n=3: log10 < 1 → 4 s (observed on real serf)
  assert.equal(suspicionTimeoutMs(4, 1, 1000), 4000);
  assert.equal(suspicionTimeoutMs(4, 100, 1000), 8000);
  assert.equal(suspicionTimeoutMs(4, 1000, 1000), 12000);
  // log10(50) = 1.69897 → truncated to 1698 ms per interval-second, × 4 = 6792 ms
  assert.equal(suspicionTimeoutMs(4, 50, 1000), 6792);
  assert.equal(suspicionTimeoutMs(6, 3, 5000), 30000);
});

test('confirmations k: suspicionMult − 2, or 0 when the cluster is too small', () => {
  assert.equal(suspicionConfirmationsK(4, 3), 0);
  assert.equal(suspicionConfirmationsK(4, 4), 2);
  assert.equal(suspicionConfirmationsK(4, 10), 2);
  assert.equal(suspicionConfirmationsK(6, 5), 0);
  assert.equal(suspicionConfirmationsK(6, 6), 4);
});

test('remaining suspicion time shrinks logarithmically from max to min with confirmations', () => {
  const min = 4000;
  const max = 24000;
  // c=0 → max, c=k → min
  assert.equal(remainingSuspicionMs(0, 2, 0, min, max), 24000);
  assert.equal(remainingSuspicionMs(2, 2, 0, min, max), 4000);
  // c=1, k=2: frac = ln2/ln3 = 0.6309 → 24 − 0.6309×20 = 11.381 s
  assert.equal(remainingSuspicionMs(1, 2, 0, min, max), 11381);
  // elapsed is subtracted, may go negative (fire at once)
  assert.equal(remainingSuspicionMs(1, 2, 1381, min, max), 10000);
  assert.ok(remainingSuspicionMs(2, 2, 5000, min, max) < 0);
});

test('Suspicion: starts at max with k ≥ 1, at min with k = 0; counts distinct confirmers only', () => {
  const small = new Suspicion('a', 0, 4000, 24000, 1000);
  assert.equal(small.deadlineMs, 5000);
  assert.equal(small.confirm('b', 2000), false, 'k = 0: no confirmations counted');

  const s = new Suspicion('a', 2, 4000, 24000, 0);
  assert.equal(s.deadlineMs, 24000);
  assert.equal(s.confirm('a', 100), false, 'the original accuser does not confirm');
  assert.equal(s.confirm('b', 1000), true);
  assert.equal(s.deadlineMs, 11381);
  assert.equal(s.confirm('b', 1500), false, 'same confirmer twice');
  assert.equal(s.confirm('c', 2000), true);
  assert.equal(s.deadlineMs, 4000);
  assert.equal(s.confirm('d', 2500), false, 'capped at k');
  assert.equal(s.numConfirmations, 2);
  const late = new Suspicion('a', 2, 4000, 24000, 0);
  late.confirm('b', 20000);
  assert.equal(late.deadlineMs, 20000, 'overdue after a confirmation → fires at once');
});

test('awareness stays within [0, max − 1] and scales the probe interval', () => {
  const a = new Awareness(8);
  a.applyDelta(-1);
  assert.equal(a.healthScore(), 0);
  a.applyDelta(3);
  assert.equal(a.scaleTimeoutMs(1000), 4000);
  a.applyDelta(100);
  assert.equal(a.healthScore(), 7);
  assert.equal(a.scaleTimeoutMs(1000), 8000);
  a.applyDelta(-2);
  assert.equal(a.healthScore(), 5);
});

test('timers run in due order, ties in insertion order; cancelled ones never run', () => {
  const t = new TimerSet();
  const ran: string[] = [];
  t.at(30, () => ran.push('c'));
  t.at(10, () => ran.push('a1'));
  const x = t.at(20, () => ran.push('x'));
  t.at(10, () => ran.push('a2'));
  t.at(20, (now) => {
    ran.push('b');
    t.at(now, () => ran.push('b-child')); // due now: runs in the same pass
  });
  x.cancel();
  assert.equal(t.next(), 10);
  assert.equal(t.runDue(25), 4);
  assert.deepEqual(ran, ['a1', 'a2', 'b', 'b-child']);
  assert.equal(t.next(), 30);
  t.runDue(30);
  assert.equal(t.next(), undefined);
  assert.equal(t.size, 0);
});

test('timers: heavy cancellation keeps the heap bounded', () => {
  const t = new TimerSet();
  for (let i = 0; i < 10_000; i++) t.at(1000 + i, () => {}).cancel();
  assert.equal(t.size, 0);
  assert.ok((t as unknown as { heap: unknown[] }).heap.length < 200);
});

function node(name: string, state: NodeInfo['state'] = 'alive', changeMs = 0): NodeInfo {
  return { name, addr: { ip: '10.0.0.1', port: 7946 }, meta: new Uint8Array(0), incarnation: 1, state, vsn: [1, 5, 2, 2, 5, 5], stateChangeMs: changeMs };
}

test('node table: round-robin probing skips self and dead, purges old dead at wrap-around', () => {
  const t = new NodeTable(testRandom(1));
  for (const n of ['self', 'a', 'b', 'c']) t.add(node(n));
  t.add(node('gone', 'dead', 0));
  t.add(node('recent', 'left', 9000));
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) seen.push(t.nextProbeTarget('self', 10_000, 5000)!.name);
  // Every live node once per round, never self or dead/left.
  assert.deepEqual(seen.slice(0, 3).sort(), ['a', 'b', 'c']);
  assert.deepEqual(seen.slice(3, 6).sort(), ['a', 'b', 'c']);
  // 'gone' (dead for 10 s > 5 s) was purged at the wrap-around, 'recent' (1 s) kept.
  assert.equal(t.get('gone'), undefined);
  assert.ok(t.get('recent') !== undefined);
  assert.equal(t.size, 5);
});

test('node table: nothing to probe when alone', () => {
  const t = new NodeTable(testRandom(2));
  t.add(node('self'));
  assert.equal(t.nextProbeTarget('self', 0, 1000), undefined);
});

test('node table: kRandom returns distinct matching nodes, bounded draws', () => {
  const t = new NodeTable(testRandom(3));
  for (let i = 0; i < 20; i++) t.add(node(`n${i}`, i % 2 === 0 ? 'alive' : 'dead'));
  const picked = t.kRandom(3, (n) => n.state !== 'alive');
  assert.equal(picked.length, 3);
  assert.equal(new Set(picked).size, 3);
  for (const p of picked) assert.equal(p.state, 'alive');
  assert.deepEqual(t.kRandom(3, () => true), []);
});

test('push/pull interval scales above 32 nodes', () => {
  assert.equal(pushPullScaleMs(30_000, 32), 30_000);
  assert.equal(pushPullScaleMs(30_000, 33), 60_000);
  assert.equal(pushPullScaleMs(30_000, 64), 60_000);
  assert.equal(pushPullScaleMs(30_000, 65), 90_000);
  assert.equal(pushPullScaleMs(30_000, 1000), 180_000);
});

test('config profiles match memberlist LAN/WAN/local defaults', () => {
  const lan = lanConfig('a', { ip: '127.0.0.1', port: 7946 });
  assert.equal(lan.probeIntervalMs, 1000);
  assert.equal(lan.probeTimeoutMs, 500);
  assert.equal(lan.suspicionMult, 4);
  assert.equal(lan.udpBufferSize, 1400);
  assert.deepEqual(lan.delegateVersions, { min: 2, max: 5, cur: 5 });
  const wan = wanConfig('a', { ip: '127.0.0.1', port: 7946 });
  assert.equal(wan.probeIntervalMs, 5000);
  assert.equal(wan.suspicionMult, 6);
  assert.equal(wan.gossipNodes, 4);
  const local = localConfig('a', { ip: '127.0.0.1', port: 7946 });
  assert.equal(local.probeTimeoutMs, 200);
  assert.equal(local.indirectChecks, 1);
  // kodama's local profile deliberately retransmits as LAN does (memberlist: 2); see config.ts.
  assert.equal(local.retransmitMult, 4);
});

test('node table: tables share interned names, addresses and meta, and give them back when entries are purged', () => {
  const ids = new Interners();
  const tables = [new NodeTable(testRandom(4), ids), new NodeTable(testRandom(5), ids), new NodeTable(testRandom(6), ids)];
  const meta = (i: number): Uint8Array => new Uint8Array([i % 3, 7]);
  for (const t of tables) {
    for (let i = 0; i < 50; i++) t.add({ ...node(`n${i}`), addr: { ip: `10.0.0.${i}`, port: 7946 }, meta: meta(i) });
  }
  // One copy per distinct value in the process, however many tables list it.
  assert.equal(ids.names.size, 50);
  assert.equal(ids.addrs.size, 50);
  assert.equal(ids.metas.size, 3);
  assert.equal(ids.vsns.size, 1);
  const [a, b] = [tables[0]!.get('n7')!, tables[1]!.get('n7')!];
  assert.equal(a.meta, b.meta, 'the same bytes, shared');
  assert.deepEqual([...a.meta], [1, 7]);
  assert.deepEqual(a.addr, { ip: '10.0.0.7', port: 7946 });
  assert.equal(tables[2]!.getByAddr({ ip: '10.0.0.7', port: 7946 })!.name, 'n7');
  assert.equal(tables[2]!.getByAddr({ ip: '10.0.0.7', port: 1 }), undefined);

  // Changing one table's entry leaves the others as they were.
  a.meta = new Uint8Array([9]);
  a.incarnation = 5;
  tables[0]!.setAddr(a, { ip: '10.9.9.9', port: 1 });
  assert.deepEqual([...b.meta], [1, 7]);
  assert.equal(b.incarnation, 1);
  assert.equal(tables[1]!.getByAddr({ ip: '10.0.0.7', port: 7946 })!.name, 'n7');
  assert.equal(tables[0]!.getByAddr({ ip: '10.0.0.7', port: 7946 }), undefined);
  assert.equal(tables[0]!.getByAddr({ ip: '10.9.9.9', port: 1 })!.name, 'n7');
  assert.equal(ids.metas.size, 4);

  // Every node dead long enough is purged; the last table to let go frees the values.
  for (const t of tables) {
    for (const r of t.all()) t.setState(r, 'dead', 0);
    assert.equal(t.liveCount, 0);
    t.purgeAndShuffle(10_000, 5000);
    assert.equal(t.size, 0);
  }
  assert.deepEqual([ids.names.size, ids.addrs.size, ids.metas.size, ids.vsns.size], [0, 0, 0, 0]);
  // Slots and ids are reused: a new fleet in the same tables grows nothing.
  const before = tables[0]!.ownBytes;
  for (let i = 0; i < 50; i++) tables[0]!.add({ ...node(`m${i}`), addr: { ip: `10.1.0.${i}`, port: 7946 } });
  assert.equal(tables[0]!.ownBytes, before);
  assert.equal(ids.names.size, 50);
  assert.equal(tables[0]!.get('n7'), undefined);
  assert.equal(tables[0]!.get('m7')!.addr.ip, '10.1.0.7');
});

test('push/pull from the table: the bytes encodeMessage gives for the same states, names new to the process included', () => {
  // Names are encoded on first use while the message is being written: that must not disturb it.
  for (const cacheEncodings of [false, true]) {
  const ids = new Interners();
  ids.cacheEncodings = cacheEncodings;
  const t = new NodeTable(testRandom(7), ids);
  const states = ['alive', 'suspect', 'dead', 'left'] as const;
  for (let i = 0; i < 40; i++) {
    t.add({ ...node(`fresh-${i}-${'z'.repeat(i)}`, states[i % 4]!, i), incarnation: i * 1000, meta: Uint8Array.of(i) });
  }
  const user = Uint8Array.of(9, 8, 7);
  const bytes = encodeLocalState(t, true, user);
  const expected: Message = {
    type: 'pushPull',
    join: true,
    nodes: t.all().map((r) => ({ name: r.name, addr: r.ipBytes, port: r.addr.port, meta: r.meta, incarnation: r.incarnation, state: r.state, vsn: r.vsn })),
    userState: user,
  };
  assert.deepEqual(bytes, encodeMessage(expected));
  assert.deepEqual(encodeLocalState(t, true, user), bytes, 'the second time, from the cached names');
  const back = decodeMessage(bytes);
  assert.ok(back.type === 'pushPull');
  // In probe order (as memberlist; see writeStates), which is not the order of the table's slots.
  assert.deepEqual(back.nodes.map((n) => n.name), t.all().map((r) => r.name));
  assert.notDeepEqual(back.nodes.map((n) => n.name), t.all().sort((a, b) => a.slot - b.slot).map((r) => r.name), 'slot order is another (else this test shows nothing about order)');
  // A changed entry is written anew, not from what was kept.
  t.get('fresh-3-zzz')!.incarnation = 77;
  const changed = decodeMessage(encodeLocalState(t, true, user));
  assert.ok(changed.type === 'pushPull');
  assert.equal(changed.nodes.find((n) => n.name === 'fresh-3-zzz')!.incarnation, 77);
  // Purged entries leave free slots (skipped), which new entries then take.
  const purged = t.purgeAndShuffle(1_000_000, 1000);
  assert.ok(purged.length > 0);
  t.add({ ...node('late-comer', 'alive', 0), incarnation: 3 });
  const after = decodeMessage(encodeLocalState(t, false, user));
  assert.ok(after.type === 'pushPull');
  assert.deepEqual(after.nodes.map((n) => n.name).sort(), t.all().map((r) => r.name).sort());
  }
});

test('node table: an alive is stale only at exactly the known ip and port, IPv4 or IPv6, not newer', () => {
  const ids = new Interners();
  const t = new NodeTable(testRandom(3), ids);
  t.add({ ...node('v4', 'alive', 0), addr: { ip: '10.1.2.3', port: 7946 }, incarnation: 5 });
  t.add({ ...node('v6', 'alive', 0), addr: { ip: 'fd00::1', port: 7946 }, incarnation: 5 });
  const v4 = t.slotFor('v4');
  const v6 = t.slotFor('v6');
  const b4 = Uint8Array.of(10, 1, 2, 3);
  const b6 = Uint8Array.of(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
  assert.equal(t.aliveIsStale(v4, 5, b4, 7946), true);
  assert.equal(t.aliveIsStale(v4, 4, b4, 7946), true);
  assert.equal(t.aliveIsStale(v4, 6, b4, 7946), false, 'newer');
  assert.equal(t.aliveIsStale(v4, 5, b4, 7947), false, 'other port');
  assert.equal(t.aliveIsStale(v4, 5, Uint8Array.of(10, 1, 2, 4), 7946), false, 'other ip');
  const mapped = new Uint8Array(16);
  mapped.set([0xff, 0xff, 10, 1, 2, 3], 10);
  assert.equal(t.aliveIsStale(v4, 5, mapped, 7946), false, 'the same ip written in 16 bytes is another address on the wire');
  assert.equal(t.aliveIsStale(v6, 5, b6, 7946), true);
  assert.equal(t.aliveIsStale(v6, 5, Uint8Array.of(...b6.subarray(0, 15), 2), 7946), false);
  assert.equal(t.aliveIsStale(v6, 5, b4, 7946), false);
  assert.equal(t.aliveIsStale(-1, 5, b4, 7946), false, 'not listed');
});
