// Serf features across a simulated cluster (real core + Driver + SimTransport, virtual time):
// user events, queries (filters, acks, responses, relay), key rotation, force-leave prune,
// reconnect and reap, push/pull replay. KODAMA_SEED replays a run; the seed is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerfSim } from './harness.ts';
import type { KeyResultEvent, QueryResponseEvent, UserEvent } from '../../src/serf/serf.ts';
import { Keyring } from '../../src/wire/index.ts';

const N = 10;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function converge(sim: SerfSim, names: string[]): void {
  sim.cluster.joinAll(names[0]!, 1000);
  const ok = sim.cluster.runUntil(
    () => names.every((o) => names.every((x) => sim.serf(o).members().find((m) => m.name === x)?.status === 'alive')),
    60_000,
  );
  assert.ok(ok, 'every Serf sees every node alive');
}

test(`user events reach all ${N} nodes exactly once; queries honour filters, ack, respond, relay`, { timeout: 60_000 }, (t) => {
  const sim = new SerfSim({
    tags: (name) => ({ role: Number(name.slice(-1)) % 2 === 0 ? 'web' : 'db' }),
    onQuery: (node, name, payload) => (name === 'load' ? enc(`${node}:${dec(payload)}`) : undefined),
  });
  t.diagnostic(`seed ${sim.cluster.seed}`);
  try {
    const names = sim.cluster.addNodes(N).map((n) => n.name);
    converge(sim, names);

    // User event: once everywhere, the sender included; a second event with another name too.
    const sender = names[3]!;
    const t0 = sim.cluster.clock.now();
    sim.command(sender, (s, now) => s.userEvent('deploy', enc('v1'), true, now));
    sim.command(sender, (s, now) => s.userEvent('restart', enc(''), false, now));
    const delivered = (n: string): UserEvent[] => sim.eventsOf(n, 'user') as UserEvent[];
    assert.ok(sim.cluster.runUntil(() => names.every((n) => delivered(n).length === 2), 10_000, 20), 'both events everywhere');
    const spreadMs = sim.cluster.clock.now() - t0;
    sim.cluster.runFor(10_000); // gossip keeps re-sending for a while: duplicates must be dropped
    for (const n of names) {
      const evs = delivered(n);
      // (CC is not carried by push/pull replay, as in serf, so only the sender's copy shows it.)
      assert.deepEqual(evs.map((e) => `${e.name}/${dec(e.payload)}`).sort(), ['deploy/v1', 'restart/'], n);
    }
    assert.deepEqual(delivered(sender).map((e) => `${e.name}/${e.coalesce}`), ['deploy/true', 'restart/false']);
    t.diagnostic(`user events reached all ${N} nodes within ${spreadMs} ms (virtual)`);
    assert.throws(() => sim.command(sender, (s, now) => s.userEvent('big', new Uint8Array(600), false, now)), /exceeds configured limit of 512 bytes before encoding/);

    // Query with ack, tag filter role=web (unanchored regex "we") and a node filter.
    const origin = names[1]!;
    const web = names.filter((n) => Number(n.slice(-1)) % 2 === 0);
    const q = sim.command(origin, (s, now) =>
      s.query({ name: 'load', payload: enc('p'), requestAck: true, filterTags: { role: 'we' }, timeoutMs: 3000 }, now),
    );
    sim.cluster.runFor(3500);
    const acks = sim.eventsOf(origin, 'query-ack').filter((e) => e.type === 'query-ack' && e.queryId === q).map((e) => (e as { from: string }).from);
    const resps = sim.eventsOf(origin, 'query-response').filter((e) => (e as QueryResponseEvent).queryId === q) as QueryResponseEvent[];
    assert.deepEqual([...acks].sort(), [...web].sort(), 'acks from exactly the web nodes');
    assert.deepEqual(resps.map((r) => dec(r.payload)).sort(), web.map((n) => `${n}:p`).sort());
    const done = sim.eventsOf(origin, 'query-done').find((e) => e.type === 'query-done' && e.queryId === q);
    assert.deepEqual(done, { type: 'query-done', queryId: q, acks: web.length, responses: web.length });
    // Nodes outside the filter never saw the query as an event.
    for (const n of names.filter((x) => !web.includes(x))) assert.equal(sim.eventsOf(n, 'query').length, 0, n);

    // Node filter + relay factor 2: one responder, its answer arrives once despite 3 copies.
    const target = names[7]!;
    const q2 = sim.command(origin, (s, now) =>
      s.query({ name: 'load', payload: enc('r'), filterNodes: [target], relayFactor: 2, timeoutMs: 3000 }, now),
    );
    sim.cluster.runFor(3500);
    const r2 = sim.eventsOf(origin, 'query-response').filter((e) => (e as QueryResponseEvent).queryId === q2) as QueryResponseEvent[];
    assert.deepEqual(r2.map((r) => `${r.from} ${dec(r.payload)}`), [`${target} ${target}:r`]);
    assert.ok((sim.serf(origin).counters()['serf.dropped.duplicate-response'] ?? 0) >= 1, 'relayed copies arrived and were deduplicated');
    assert.ok((sim.serf(target).counters()['serf.msg.query'] ?? 0) >= 1);
    // _serf_ping: acks only, no events on any node.
    const p = sim.command(origin, (s, now) => s.query({ name: '_serf_ping', payload: new Uint8Array(0), requestAck: true, timeoutMs: 2000 }, now));
    sim.cluster.runFor(2500);
    assert.equal(sim.eventsOf(origin, 'query-ack').filter((e) => e.type === 'query-ack' && e.queryId === p).length, N);
    for (const n of names) assert.ok(!sim.eventsOf(n, 'query').some((e) => e.type === 'query' && e.name.startsWith('_serf_')), n);
    assert.deepEqual(sim.cluster.violations, []);
  } finally {
    sim.cluster.shutdown();
  }
});

test('key rotation by internal queries: install, use, remove, list across an encrypted cluster', { timeout: 60_000 }, (t) => {
  const k1 = Buffer.alloc(16, 1).toString('base64');
  const k2 = Buffer.alloc(32, 2).toString('base64');
  const rings = new Map<string, Keyring>();
  const sim = new SerfSim({
    keyring: (name) => {
      const r = Keyring.fromBase64([k1]);
      rings.set(name, r);
      return r;
    },
  });
  t.diagnostic(`seed ${sim.cluster.seed}`);
  try {
    const names = sim.cluster.addNodes(6).map((n) => n.name);
    converge(sim, names);
    const op = (fn: (origin: string) => number, origin: string): KeyResultEvent => {
      const id = fn(origin);
      let res: KeyResultEvent | undefined;
      assert.ok(
        sim.cluster.runUntil(() => {
          res = sim.eventsOf(origin, 'key-result').find((e) => (e as KeyResultEvent).opId === id) as KeyResultEvent | undefined;
          return res !== undefined;
        }, 20_000, 100),
        'key op finished',
      );
      return res!;
    };
    const install = op((o) => sim.command(o, (s, now) => s.installKey(k2, now)), names[2]!);
    assert.equal(install.error, '');
    assert.equal(install.numResp, 6);
    assert.equal(install.numNodes, 6);
    for (const n of names) assert.equal(rings.get(n)!.keys().length, 2, n);
    assert.equal(sim.eventsOf(names[4]!, 'keyring-changed').length, 1);

    const use = op((o) => sim.command(o, (s, now) => s.useKey(k2, now)), names[5]!);
    assert.equal(use.error, '');
    for (const n of names) assert.equal(Buffer.from(rings.get(n)!.primary()).toString('base64'), k2, n);

    const badRemove = op((o) => sim.command(o, (s, now) => s.removeKey(k2, now)), names[0]!);
    assert.equal(badRemove.error, '6/6 nodes reported failure');
    assert.equal(Object.values(badRemove.messages)[0], 'Removing the primary key is not allowed');

    const remove = op((o) => sim.command(o, (s, now) => s.removeKey(k1, now)), names[0]!);
    assert.equal(remove.error, '');
    const list = op((o) => sim.command(o, (s, now) => s.listKeys(now)), names[1]!);

    assert.deepEqual(list.keys, { [k2]: 6 });
    assert.deepEqual(list.primaryKeys, { [k2]: 6 });
    // No partition: everyone still alive, and gossip still flows (a fresh event reaches all).
    sim.command(names[3]!, (s, now) => s.userEvent('after-rotation', enc('x'), false, now));
    assert.ok(sim.cluster.runUntil(() => names.every((n) => sim.eventsOf(n, 'user').length === 1), 10_000, 50));
    for (const o of names) for (const m of sim.serf(o).members()) assert.equal(m.status, 'alive', `${o} sees ${m.name}`);
  } finally {
    sim.cluster.shutdown();
  }
});

test('force-leave prune reaps everywhere; failed members reconnect after a partition, then reap', { timeout: 60_000 }, (t) => {
  const sim = new SerfSim({ serf: { reconnectIntervalMs: 2000, reapIntervalMs: 1000, reconnectTimeoutMs: 20_000 } });
  t.diagnostic(`seed ${sim.cluster.seed}`);
  try {
    const names = sim.cluster.addNodes(6).map((n) => n.name);
    converge(sim, names);
    const statusAt = (o: string, x: string): string | undefined => sim.serf(o).members().find((m) => m.name === x)?.status;

    // Partition one node away until everyone marks it failed, then heal: reconnect rejoins it.
    const cut = names[5]!;
    const rest = names.filter((n) => n !== cut);
    sim.cluster.partition([cut], rest);
    assert.ok(sim.cluster.runUntil(() => rest.every((o) => statusAt(o, cut) === 'failed'), 30_000), 'partitioned node failed');
    sim.cluster.heal();
    assert.ok(sim.cluster.runUntil(() => rest.every((o) => statusAt(o, cut) === 'alive'), 30_000), 'reconnect brought it back');

    // A crash, then force-leave -prune from one node: everyone erases it with member-reap.
    const victim = names[4]!;
    const others = names.filter((n) => n !== victim);
    sim.cluster.kill(victim);
    assert.ok(sim.cluster.runUntil(() => others.every((o) => statusAt(o, victim) === 'failed'), 30_000));
    sim.command(names[0]!, (s, now) => s.forceLeave(victim, true, now));
    assert.ok(sim.cluster.runUntil(() => others.every((o) => statusAt(o, victim) === undefined), 10_000, 50), 'pruned everywhere');
    for (const o of others) {
      assert.ok(sim.eventsOf(o, 'member-leave').length + sim.eventsOf(o, 'member-reap').length >= 1, o);
      assert.ok(sim.eventsOf(o, 'member-reap').some((e) => 'members' in e && e.members[0]?.name === victim), `${o} reaped the victim`);
    }

    // Another crash, no force-leave: reaped after reconnectTimeout (20 s) by the reaper.
    const late = names[3]!;
    const rest2 = others.filter((n) => n !== late);
    sim.cluster.kill(late);
    assert.ok(sim.cluster.runUntil(() => rest2.every((o) => statusAt(o, late) === 'failed'), 60_000));
    assert.ok(sim.cluster.runUntil(() => rest2.every((o) => statusAt(o, late) === undefined), 60_000), 'reaped everywhere');
    // Each observer keeps the failed member for reconnectTimeout after *its own* failure
    // verdict (those differ by seconds), and reaps within one reap interval after that.
    const kept: number[] = [];
    for (const o of rest2) {
      const failedAt = sim.memberEventAt(o, 'member-failed', late);
      const reapedAt = sim.memberEventAt(o, 'member-reap', late);
      assert.ok(failedAt !== undefined && reapedAt !== undefined, o);
      kept.push(reapedAt - failedAt);
      assert.ok(reapedAt - failedAt >= 20_000 && reapedAt - failedAt <= 21_000 + 100, `${o}: kept ${reapedAt - failedAt} ms`);
    }
    t.diagnostic(`failed member kept ${Math.min(...kept)}..${Math.max(...kept)} ms before reap (timeout 20000, reap every 1000)`);
  } finally {
    sim.cluster.shutdown();
  }
});

test('push/pull carries the event buffer: a late joiner replays old events only when asked to', { timeout: 60_000 }, (t) => {
  const sim = new SerfSim();
  t.diagnostic(`seed ${sim.cluster.seed}`);
  try {
    const names = sim.cluster.addNodes(3).map((n) => n.name);
    converge(sim, names);
    sim.command(names[0]!, (s, now) => s.userEvent('old', enc('1'), false, now));
    sim.cluster.runFor(5000);
    const replayer = sim.cluster.addNode('replayer').name;
    const ignorer = sim.cluster.addNode('ignorer').name;
    sim.command(replayer, (s) => s.prepareJoin(true));
    sim.command(ignorer, (s) => s.prepareJoin(false));
    sim.cluster.join(replayer, [names[1]!]);
    sim.cluster.join(ignorer, [names[2]!]);
    sim.cluster.runFor(5000);
    assert.deepEqual(sim.eventsOf(replayer, 'user').map((e) => (e as UserEvent).name), ['old']);
    assert.deepEqual(sim.eventsOf(ignorer, 'user'), []);
    // New events reach both.
    sim.command(names[0]!, (s, now) => s.userEvent('new', enc('2'), false, now));
    assert.ok(sim.cluster.runUntil(() => [replayer, ignorer].every((n) => sim.eventsOf(n, 'user').some((e) => (e as UserEvent).name === 'new')), 10_000, 50));
  } finally {
    sim.cluster.shutdown();
  }
});
