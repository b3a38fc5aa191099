// Measures how often a user event a node originates misses some node for more than 1 s in an
// 8-node cluster on the simulator (no loss). MULT sets Serf's retransmit multiplier (default 2,
// memberlist's `local` value). Figures (200 trials): MULT=2 → 109; MULT=4 → 4. Hence kodama's
// `local` profile uses 4.
// Run: MULT=2 node --import tsx scripts/event-spread.ts [trials=200]
import { SerfSim } from '../test/serf/harness.ts';

const trials = Number(process.argv[2] ?? 200);
let misses = 0;
for (let t = 0; t < trials; t++) {
  const sim = new SerfSim({ seed: 5000 + t, serf: { retransmitMult: Number(process.env.MULT ?? 2) } });
  const c = sim.cluster;
  try {
    c.addNodes(8);
    c.joinAll('node-0001', 200);
    c.runUntil(() => c.converged(), 20_000);
    c.runFor(2000 + (t % 5) * 97);
    sim.command('node-0002', (s, now) => s.userEvent('probe', new Uint8Array([1]), false, now));
    const got = (): boolean => sim.live().every((n) => sim.eventsOf(n, 'user').length > 0);
    c.runUntil(got, 1000, 20);
    if (!got()) misses++;
  } finally {
    c.shutdown();
  }
}
console.log(`trials ${trials}: ${misses} missed a node for > 1 s`);
