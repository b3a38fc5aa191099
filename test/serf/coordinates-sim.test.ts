// Network coordinates on the real membership core in the simulator (virtual clock, seeded): the
// round trips the prober measures from the driver's clock move every node's coordinate until
// the estimates match the simulated network — 5 ms each way between ordinary nodes, and one slow
// node whose every packet leaves 40 ms late.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerfSim } from './harness.ts';
import { distanceMs } from '../../src/serf/coordinate.ts';

test('coordinates in the simulator: estimates match the simulated round trips, a slow node stands apart (seeded)', (t) => {
  const sim = new SerfSim({ seed: 4242, network: { latencyMinMs: 5, latencyMaxMs: 5 } });
  t.diagnostic(`seed ${sim.cluster.seed}`);
  const names = sim.cluster.addNodes(6).map((n) => n.name);
  sim.cluster.joinAll(names[0]!, 1000);
  const slow = names[5]!;
  sim.cluster.setSlow(slow, 40);
  // Every node probes one member per second (local profile): 3 minutes is ~36 probes of each pair.
  sim.cluster.runFor(180_000);
  const est = (a: string, b: string): number => {
    const ca = sim.serf(a).getCoordinate(a);
    const cb = sim.serf(a).getCoordinate(b);
    assert.ok(ca !== undefined && cb !== undefined, `${a} has coordinates for itself and ${b}`);
    return distanceMs(ca, cb);
  };
  const rows: string[] = [];
  for (const a of names) {
    for (const b of names) {
      if (a === b) continue;
      const e = est(a, b);
      const truth = a === slow || b === slow ? 50 : 10;
      rows.push(`${a} → ${b}: ${e.toFixed(1)} ms (simulated ${truth})`);
      assert.ok(Math.abs(e - truth) <= truth * 0.35, `${a} → ${b}: estimate ${e.toFixed(1)} ms, simulated round trip ${truth} ms\n${rows.join('\n')}`);
    }
  }
  t.diagnostic(rows.filter((r) => r.startsWith(names[0]!)).join('; '));
  assert.equal(sim.serf(names[0]!).stats()['coordinate_resets'], '0');
});
