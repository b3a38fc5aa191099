// Measures how often a node's own tag (meta) update misses some peer for more than 3 s in a
// 5-node cluster with the `local` profile on the simulator (no loss). MULT sets the retransmit
// multiplier (default 2, memberlist's local value). Figures (200 trials): MULT=2 → 33 misses,
// up to 15 s (the next push/pull); MULT=4 → 0. Hence kodama's `local` profile uses 4.
// Run: MULT=2 node --import tsx scripts/meta-spread.ts [trials=200]
import { localConfig } from '../src/memberlist/config.ts';
import { Cluster } from '../src/sim/cluster.ts';
import type { Delegate } from '../src/memberlist/api.ts';

const trials = Number(process.argv[2] ?? 200);
let misses = 0;
let worst = 0;
for (let t = 0; t < trials; t++) {
  const metas = new Map<string, Uint8Array>();
  const delegate = (name: string): Delegate => ({
    nodeMeta: () => metas.get(name) ?? new Uint8Array([0]),
    notifyMsg: () => {},
    getBroadcasts: () => [],
    localState: () => new Uint8Array(0),
    mergeRemoteState: () => {},
    ackPayload: () => null,
  });
  const c = new Cluster({ seed: 1000 + t, config: (n, a) => ({ ...localConfig(n, a), enableCompression: false, retransmitMult: Number(process.env.MULT ?? 2) }), delegate });
  try {
    c.addNodes(5);
    c.joinAll('node-0001', 200);
    c.runUntil(() => c.converged(), 20_000);
    c.runFor(3000 + (t % 7) * 137);
    const subject = c.node('node-0003');
    metas.set('node-0003', new Uint8Array([t % 250 + 1, 7]));
    subject.driver.updateMeta();
    const start = c.clock.now();
    const seen = (): boolean => c.live().every((n) => n.name === 'node-0003' || n.driver.withCore((core) => core.members().find((m) => m.name === 'node-0003')?.meta[1] === 7));
    c.runUntil(seen, 3_000, 50);
    if (!seen()) {
      misses++;
      const missing = c.live().filter((n) => n.name !== 'node-0003' && !n.driver.withCore((core) => core.members().find((m) => m.name === 'node-0003')?.meta[1] === 7));
      const states = missing.map((n) => `${n.name} sees ${JSON.stringify(n.driver.withCore((core) => core.members().map((m) => [m.name, m.state])))}`);
      c.runUntil(seen, 20_000, 50);
      const took = c.clock.now() - start;
      worst = Math.max(worst, took);
      console.log(`trial ${t}: ${took} ms; ${states.join('; ')}`);
    }
  } finally {
    c.shutdown();
  }
}
console.log(`trials ${trials}: ${misses} took > 3 s (worst ${worst} ms)`);
