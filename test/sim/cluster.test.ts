import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lanConfig } from '../../src/memberlist/config.ts';
import { Cluster } from '../../src/sim/cluster.ts';
import { withCluster } from './helpers.ts';

const FILE = 'test/sim/cluster.test.ts';

test('10 nodes joining one seed converge; invariants hold; leave is seen as left', async () => {
  await withCluster(FILE, {}, (c) => {
    c.addNodes(10);
    c.joinAll('node-0001');
    assert.ok(c.runUntil(() => c.converged(), 30_000), `not converged after 30 s: ${JSON.stringify(c.figures())}`);
    assert.deepEqual(c.checkInvariants(), []);
    for (const n of c.live()) assert.equal(n.joinErrors.length, 0, `${n.name}: ${n.joinErrors.join('; ')}`);
    c.leave('node-0005');
    const others = c.live().map((n) => n.name);
    assert.ok(c.runUntil(() => c.allSee(others, ['node-0005'], 'left'), 10_000), 'graceful leave not seen as left');
    assert.ok(c.converged());
    assert.equal(c.falseDeaths.length, 0);
    assert.equal(c.eventCounts.get('leave-dead') ?? 0, 0, 'a graceful leave must not look like a failure');
  });
});

test('the same seed gives the same event trace; another seed gives another', () => {
  const run = (seed: number): { hash: string; events: number } => {
    const c = new Cluster({ seed, network: { loss: 0.05, duplicate: 0.02, latencyMinMs: 1, latencyMaxMs: 20 } });
    try {
      c.addNodes(12);
      c.joinAll('node-0001', 2000);
      c.runFor(20_000);
      c.kill('node-0007');
      c.runFor(40_000);
      return { hash: c.traceHash(), events: c.eventCount() };
    } finally {
      c.shutdown();
    }
  };
  const a = run(4242);
  const b = run(4242);
  const other = run(4243);
  assert.ok(a.events > 100, `only ${a.events} events: the trace is too thin to mean anything`);
  assert.equal(a.hash, b.hash);
  assert.equal(a.events, b.events);
  assert.notEqual(a.hash, other.hash);
});

test('the replay line names the run seed and the test file', () => {
  const c = new Cluster({ seed: 777 });
  assert.equal(c.seed, 777);
  assert.equal(
    c.replayHint('test/sim/x.test.ts'),
    'simulation failed: seed=777 (replay: KODAMA_SEED=777 npm run test:unit -- test/sim/x.test.ts)',
  );
});

test('the false-death detector fires when live, reachable nodes are declared dead', async () => {
  // All UDP lost and TCP pings off: every probe fails although every node is up and reachable,
  // which is exactly what the lossy-network test must be able to catch.
  await withCluster(
    FILE,
    { config: (name, addr) => ({ ...lanConfig(name, addr), enableCompression: false, disableTcpPings: true }) },
    (c) => {
      c.addNodes(5);
      c.joinAll('node-0001');
      assert.ok(c.runUntil(() => c.converged(), 30_000));
      assert.equal(c.falseDeaths.length, 0);
      c.network.setLoss(1);
      c.runFor(60_000);
      assert.ok(c.falseDeaths.length > 0, 'no false death recorded');
      assert.equal(c.converged(), false);
    },
  );
});

test('heavy duplication and reordering (20% duplicates, 1–150 ms jitter) change nothing: convergence, no false deaths', async () => {
  await withCluster(FILE, { network: { duplicate: 0.2, latencyMinMs: 1, latencyMaxMs: 150 } }, (c) => {
    c.addNodes(16);
    c.joinAll('node-0001', 1000);
    assert.ok(c.runUntil(() => c.converged(), 30_000), 'did not converge');
    c.runFor(120_000);
    assert.ok(c.network.stats.packetsDuplicated > 100, 'duplication did not happen');
    assert.ok(c.converged());
    assert.deepEqual(c.falseDeaths, []);
    assert.deepEqual(c.checkInvariants(), []);
  });
});

test('a settled cluster built by copying tables behaves as one built by merges: same traffic, a failure seen by all', async () => {
  // seedTables({ settled, copy }) is how the scale bench builds 10,000 nodes; it must give the
  // cluster the merges give (every table full and alive, queues empty), not a quieter one.
  const build = (copy: boolean): { pkts: number; detectMs: number } => {
    const c = new Cluster({ seed: 77 });
    try {
      const nodes = c.addNodes(60);
      c.seedTables({ settled: true, copy });
      assert.ok(c.converged(), 'not converged right after seeding');
      assert.deepEqual(c.checkInvariants(), []);
      // Each node its own probe order: copied tables must not all probe in the same sequence.
      const orders = new Set(nodes.slice(1, 6).map((n) => n.core.table.all().map((r) => r.name).join(',')));
      assert.equal(orders.size, 5, 'copied tables share one probe order');
      c.runFor(20_000);
      const pkts = c.network.stats.packetsSent;
      const k0 = c.clock.now();
      c.kill('node-0030');
      const others = c.live().map((n) => n.name);
      assert.ok(c.runUntil(() => c.allSee(others, ['node-0030'], 'dead'), 60_000), 'the failure was not seen by all');
      return { pkts, detectMs: c.clock.now() - k0 };
    } finally {
      c.shutdown();
    }
  };
  const merged = build(false);
  const copied = build(true);
  // Identical protocol state gives identical idle traffic (the probe orders differ, not the counts).
  assert.equal(copied.pkts, merged.pkts);
  assert.ok(copied.detectMs < 30_000 && merged.detectMs < 30_000, JSON.stringify({ merged, copied }));
  assert.throws(() => new Cluster().seedTables({ copy: true }), /copy needs settled/);
});
