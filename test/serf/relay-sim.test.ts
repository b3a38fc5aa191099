// Relay factor under packet loss (simulator): a query's answers are single UDP datagrams, so
// with 20% loss about a fifth never arrive; relaying each answer through 3 more members makes
// losing all copies unlikely. Also: a user event reaches all 40 nodes despite the loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerfSim } from './harness.ts';
import type { QueryResponseEvent } from '../../src/serf/serf.ts';

const N = 40;
const ROUNDS = 4;

test(`relay factor 3 recovers query answers lost to 20% UDP loss (${N} nodes)`, { timeout: 60_000 }, (t) => {
  const sim = new SerfSim({ network: { loss: 0.2 }, onQuery: (node) => new TextEncoder().encode(node) });
  t.diagnostic(`seed ${sim.cluster.seed}`);
  try {
    const names = sim.cluster.addNodes(N).map((n) => n.name);
    sim.cluster.joinAll(names[0]!, 2000);
    assert.ok(
      sim.cluster.runUntil(() => names.every((o) => sim.serf(o).members().filter((m) => m.status === 'alive').length === N), 120_000),
      'converged despite loss',
    );
    const origin = names[0]!;
    const answered = (relayFactor: number): number => {
      let total = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const id = sim.command(origin, (s, now) => s.query({ name: 'who', payload: new Uint8Array(0), relayFactor, timeoutMs: 3000 }, now));
        sim.cluster.runFor(3500);
        total += sim.eventsOf(origin, 'query-response').filter((e) => (e as QueryResponseEvent).queryId === id).length;
      }
      return total / (ROUNDS * N);
    };
    const plain = answered(0);
    const relayed = answered(3);
    t.diagnostic(`answers received: relay 0 → ${(plain * 100).toFixed(1)}%, relay 3 → ${(relayed * 100).toFixed(1)}% (loss 20%)`);
    assert.ok(plain < 0.92, `without relay some answers are lost (${plain})`);
    // (Misses left are nodes the query itself never reached through the lossy gossip.)
    assert.ok(relayed > 0.95, `with relay nearly all arrive (${relayed})`);
    assert.ok(relayed > plain);

    sim.command(names[5]!, (s, now) => s.userEvent('lossy', new Uint8Array(0), false, now));
    assert.ok(sim.cluster.runUntil(() => names.every((n) => sim.eventsOf(n, 'user').length === 1), 20_000, 50), 'event reached all nodes');
  } finally {
    sim.cluster.shutdown();
  }
});
