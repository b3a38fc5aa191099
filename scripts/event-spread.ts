// Measures how often a user event a node originates misses some node for more than 1 s in an
// 8-node cluster on the simulator (no loss). MULT sets Serf's retransmit multiplier (default 2,
// memberlist's `local` value). Figures (200 trials), before a node sent the events it starts to
// every peer of a small cluster (ownNewsDirectMax): MULT=2 → 109; MULT=4 → 4 (hence kodama's
// `local` profile uses 4); with it, 0 and 0 (test/sim/own-news.test.ts compares with it off).
// Run: MULT=2 node --import tsx scripts/event-spread.ts [trials=200]
import { userEventMisses } from '../test/serf/harness.ts';

const trials = Number(process.argv[2] ?? 200);
const misses = userEventMisses({ trials, seedBase: 5000, serf: { retransmitMult: Number(process.env.MULT ?? 2) } });
console.log(`trials ${trials}: ${misses} missed a node for > 1 s`);
