// Heal pings at size: N simulated nodes (100 in the suite; KODAMA_HEAL_N=1000 for the figure in
// docs/ARCHITECTURE.md — about N² work, minutes at 1,000), 10 % of them cut off (each side sees
// the other failed). While the cut lasts the pings must stay cheap (src/serf/limits.ts: the big
// side sends about as many per interval as members failed, the small side one per node), and when
// it heals they must not storm: a few heal joins (push/pulls) per member cut off, not one per
// node, and every node sees every member alive again. KODAMA_SEED replays it.
// Measured (seed 20261207): N = 100: pings 1.0/node/s on the 10-node side, 0.11 on the other;
// every node sees all alive 1.5 s after the heal, 16 heal joins. N = 1,000 (13 min wall): 1.0 and
// 0.11/node/s; 8.5 s, 231 heal joins (a storm would be ~1,000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerfSim } from './harness.ts';
import { localConfig } from '../../src/memberlist/index.ts';
import { seedFromEnv } from '../../src/sim/random.ts';
import { HEAL_PINGS_PER_INTERVAL } from '../../src/serf/limits.ts';
import { useLargeYoungGeneration } from '../sim/helpers.ts';

useLargeYoungGeneration();
const N = Number(process.env['KODAMA_HEAL_N'] ?? 100);
const CUT = Math.round(N / 10);
const PARTITION_MS = 60_000;
const PROBE_INTERVAL_MS = localConfig('x', { ip: '127.0.0.1', port: 1 }).probeIntervalMs;

test(`${N} nodes, ${CUT} cut off for ${PARTITION_MS / 1000} s: heal pings stay cheap and the heal does not storm`, { timeout: 900_000 }, (t) => {
  const seed = seedFromEnv(20_261_207);
  const wall = performance.now();
  const sim = new SerfSim({ seed, serf: { healIntervalMs: PROBE_INTERVAL_MS } });
  t.diagnostic(`seed ${seed}`);
  try {
    const names = sim.cluster.addNodes(N).map((n) => n.name);
    sim.cluster.seedTables({ settled: true });
    sim.cluster.runFor(2000);
    const small = names.slice(0, CUT);
    const big = names.slice(CUT);
    const sum = (ns: string[], key: string): number => ns.reduce((s, n) => s + (sim.serf(n).counters()[key] ?? 0), 0);
    sim.cluster.partition(small, big);
    const sees = (o: string, x: string, st: string): boolean => sim.serf(o).members().find((m) => m.name === x)?.status === st;
    const split = (): boolean => sees(big[0]!, small[0]!, 'failed') && sees(small[0]!, big[0]!, 'failed') && sees(big.at(-1)!, small.at(-1)!, 'failed');
    assert.ok(sim.cluster.runUntil(split, 300_000, 1000), 'the sides did not see each other failed');
    sim.cluster.runFor(10_000);
    const p0 = { small: sum(small, 'serf.heal-pings'), big: sum(big, 'serf.heal-pings') };
    const t0 = sim.cluster.clock.now();
    sim.cluster.runFor(PARTITION_MS);
    const secs = (sim.cluster.clock.now() - t0) / 1000;
    const rate = { small: (sum(small, 'serf.heal-pings') - p0.small) / secs, big: (sum(big, 'serf.heal-pings') - p0.big) / secs };
    t.diagnostic(`while cut: heal pings per second, whole side: ${CUT}-node side ${rate.small.toFixed(1)}, ${N - CUT}-node side ${rate.big.toFixed(1)}; per node ${(rate.small / CUT).toFixed(3)} / ${(rate.big / (N - CUT)).toFixed(4)}`);
    const j0 = sum(names, 'serf.heal-joins');
    sim.cluster.heal();
    const healAt = sim.cluster.clock.now();
    const allAlive = (): boolean => names.every((o) => sim.serf(o).members().every((m) => m.status === 'alive'));
    const merged = sim.cluster.runUntil(allAlive, 120_000, 500);
    const mergeMs = sim.cluster.clock.now() - healAt;
    const joins = sum(names, 'serf.heal-joins') - j0;
    t.diagnostic(`healed: every node sees ${N} alive after ${merged ? mergeMs : 'never'} ms; heal joins ${joins}; wall ${Math.round(performance.now() - wall)} ms`);
    // A node pings at most once per interval; the big side, together, about max(K, failed) times
    // per interval (Serf's reconnect odds), the small side about once per node.
    const perInterval = 1000 / PROBE_INTERVAL_MS;
    assert.ok(rate.small / CUT <= perInterval && rate.big / (N - CUT) <= perInterval, `a node pinged more than once per interval: ${JSON.stringify(rate)}`);
    assert.ok(rate.big <= 1.5 * Math.max(HEAL_PINGS_PER_INTERVAL, CUT) * perInterval, `${N - CUT}-node side: ${rate.big} pings/s`);
    assert.ok(merged, 'every node sees every member alive again');
    // A storm would be a push/pull from (nearly) every node: N. One round of Serf's own reconnect
    // (every 30 s, odds failed/alive) makes about 2 × CUT: every small-side node once, the big
    // side about as many as members failed. Heal pings make about as many, in seconds.
    assert.ok(joins <= Math.max(20, 3 * CUT), `heal joins after the heal: ${joins}, more than 3 per member cut off (N = ${N})`);
  } finally {
    sim.cluster.shutdown();
  }
});
