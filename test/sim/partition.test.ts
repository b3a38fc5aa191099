// A 50/50 partition: each side declares the other dead; after the partition ends, Serf's
// reconnect (a push/pull-join to a failed member) heals it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lanConfig } from '../../src/memberlist/config.ts';
import { withCluster, wallSince } from './helpers.ts';

const FILE = 'test/sim/partition.test.ts';
const N = 20;
const RECONNECT_INTERVAL_MS = 30_000; // Serf's ReconnectInterval default

test(`a ${N / 2}/${N / 2} partition: both sides mark the other dead, reconnect heals it within the bound`, async () => {
  const wallStart = performance.now();
  await withCluster(FILE, { reconnect: { intervalMs: RECONNECT_INTERVAL_MS } }, (c) => {
    const cfg = lanConfig('x', { ip: '127.0.0.1', port: 7946 });
    const nodes = c.addNodes(N).map((n) => n.name);
    c.joinAll('node-0001', 1000);
    assert.ok(c.runUntil(() => c.converged(), 60_000), 'cluster did not converge before the partition');

    const a = nodes.slice(0, N / 2);
    const b = nodes.slice(N / 2);
    c.partition(a, b);
    const splitAtMs = c.clock.now();
    const split = (): boolean => c.allSee(a, b, 'dead') && c.allSee(b, a, 'dead');
    assert.ok(c.runUntil(split, 120_000), 'the two sides did not declare each other dead');
    const splitMs = c.clock.now() - splitAtMs;
    // Stay split past GossipToTheDeadTime, so memberlist alone has forgotten the other side;
    // only Serf's failed list remembers it.
    c.runFor(cfg.gossipToTheDeadMs + 30_000);
    for (const name of nodes) {
      const n = c.node(name);
      assert.equal(n.failed.size, N / 2, `${name} should remember the ${N / 2} failed members of the other side`);
    }
    assert.ok(c.allSee(a, a, 'alive') && c.allSee(b, b, 'alive'), 'each side must stay healthy on its own');

    // Bound on healing after the partition ends:
    //  - reconnect: each node runs Serf's reconnect every ReconnectInterval; with the other half
    //    failed, probability = failed / alive = 1, so every node push/pull-joins a failed member
    //    at its next tick: ≤ ReconnectInterval;
    //  - a push/pull that lists the other side's nodes as dead makes the receiver suspect them
    //    (doc 3.2), they refute within one Lifeguard minimum suspicion timeout, SuspicionMult ×
    //    log10(N) × ProbeInterval, or their alive was already ahead;
    //  - gossip then spreads the N/2 alive messages: 2 × (log_{fanout+1}(N) + ln N) rounds.
    const minSuspicionMs = cfg.suspicionMult * Math.max(1, Math.log10(N)) * cfg.probeIntervalMs;
    const rounds = Math.log(N) / Math.log(cfg.gossipNodes + 1) + Math.log(N);
    const disseminationMs = 2 * Math.ceil(rounds) * cfg.gossipIntervalMs;
    const boundMs = RECONNECT_INTERVAL_MS + minSuspicionMs + disseminationMs;
    c.heal();
    const healAtMs = c.clock.now();
    const healed = c.runUntil(() => c.converged(), boundMs + 60_000, 250);
    const healMs = c.clock.now() - healAtMs;
    console.log(
      `partition N=${N}: split seen after ${splitMs} ms; healed ${healMs} ms after the partition ended ` +
        `(bound ${Math.round(boundMs)} ms); reconnects ${c.eventCounts.get('reconnect') ?? 0}; wall ${wallSince(wallStart)} ms`,
    );
    assert.ok(healed, `not healed within ${boundMs + 60_000} ms`);
    assert.ok(healMs <= boundMs, `healed after ${healMs} ms, bound ${Math.round(boundMs)} ms`);
    for (const name of nodes) assert.equal(c.node(name).failed.size, 0, `${name} still lists failed members`);
    assert.deepEqual(c.checkInvariants(), []);
  });
});

test('without reconnect, memberlist alone does not heal a partition that outlasts GossipToTheDeadTime', async () => {
  await withCluster(FILE, {}, (c) => {
    const cfg = lanConfig('x', { ip: '127.0.0.1', port: 7946 });
    const nodes = c.addNodes(8).map((n) => n.name);
    c.joinAll('node-0001', 500);
    assert.ok(c.runUntil(() => c.converged(), 60_000));
    c.partition(nodes.slice(0, 4), nodes.slice(4));
    c.runFor(60_000 + cfg.gossipToTheDeadMs + 30_000);
    c.heal();
    c.runFor(5 * cfg.pushPullIntervalMs);
    assert.equal(c.converged(), false, 'healed without anyone to contact: the reconnect policy would be pointless');
  });
});
