// A healed partition re-merges in about a second (kodama's heal pings, src/serf/limits.ts),
// not at Serf's next reconnect (every 30 s): a 6-node cluster cut 3|3 for 45 s, healed, over
// several seeds, with heal pings on — and, for the figure beside it, off (Serf's behaviour).
// Also what the pings cost while members are failed. KODAMA_SEED replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerfSim } from './harness.ts';
import { localConfig } from '../../src/memberlist/index.ts';
import { seedFromEnv } from '../../src/sim/random.ts';

const N = 6;
const PARTITION_MS = 45_000;
/** The issue's target: every node sees every member alive within 3 s of the heal. */
const REMERGE_BOUND_MS = 3_000;
const PROBE_INTERVAL_MS = localConfig('x', { ip: '127.0.0.1', port: 1 }).probeIntervalMs;

interface Run {
  seed: number;
  remergeMs: number | undefined;
  pingsPerNodePerSec: number;
  healJoins: number;
}

function partitionAndHeal(seed: number, healIntervalMs: number, limitMs: number): Run {
  const sim = new SerfSim({ seed, serf: { healIntervalMs } });
  const names = sim.cluster.addNodes(N).map((n) => n.name);
  const allAlive = (): boolean => names.every((o) => names.every((x) => sim.serf(o).members().find((m) => m.name === x)?.status === 'alive'));
  sim.cluster.joinAll(names[0]!, 1000);
  assert.ok(sim.cluster.runUntil(allAlive, 60_000, 100), `seed ${seed}: the cluster did not converge`);
  const a = names.filter((_, i) => i % 2 === 0);
  const b = names.filter((_, i) => i % 2 === 1);
  sim.cluster.partition(a, b);
  const failedEverywhere = (): boolean =>
    [...a.map((o) => [o, b] as const), ...b.map((o) => [o, a] as const)].every(([o, other]) =>
      other.every((x) => sim.serf(o).members().find((m) => m.name === x)?.status === 'failed'),
    );
  assert.ok(sim.cluster.runUntil(failedEverywhere, 60_000, 100), `seed ${seed}: the sides did not see each other failed`);
  const pingsBefore = names.reduce((s, n) => s + (sim.serf(n).counters()['serf.heal-pings'] ?? 0), 0);
  const failedAt = sim.cluster.clock.now();
  sim.cluster.runFor(PARTITION_MS);
  const pings = names.reduce((s, n) => s + (sim.serf(n).counters()['serf.heal-pings'] ?? 0), 0) - pingsBefore;
  const pingsPerNodePerSec = pings / N / ((sim.cluster.clock.now() - failedAt) / 1000);
  sim.cluster.heal();
  const healAt = sim.cluster.clock.now();
  const merged = sim.cluster.runUntil(allAlive, limitMs, 50);
  const remergeMs = merged ? sim.cluster.clock.now() - healAt : undefined;
  const healJoins = names.reduce((s, n) => s + (sim.serf(n).counters()['serf.heal-joins'] ?? 0), 0);
  sim.cluster.shutdown();
  return { seed, remergeMs, pingsPerNodePerSec, healJoins };
}

test(`a ${N}-node cluster cut 3|3 for ${PARTITION_MS / 1000} s re-merges within ${REMERGE_BOUND_MS / 1000} s of the heal, every seed`, { timeout: 120_000 }, (t) => {
  const base = seedFromEnv(20_261_207);
  const seeds = process.env['KODAMA_SEED'] !== undefined ? [base] : [base, base + 1, base + 2, base + 3, base + 4];
  const runs = seeds.map((seed) => partitionAndHeal(seed, PROBE_INTERVAL_MS, 60_000));
  const serf = partitionAndHeal(base, 0, 60_000);
  for (const r of runs) {
    t.diagnostic(`seed ${r.seed}: re-merged ${r.remergeMs ?? 'never'} ms after the heal; heal pings ${r.pingsPerNodePerSec.toFixed(2)}/node/s while 3 of 6 failed; heal joins ${r.healJoins}`);
  }
  t.diagnostic(`heal pings off (Serf's behaviour), seed ${serf.seed}: re-merged ${serf.remergeMs ?? 'never'} ms after the heal`);
  for (const r of runs) {
    assert.ok(r.remergeMs !== undefined && r.remergeMs <= REMERGE_BOUND_MS, `seed ${r.seed} (KODAMA_SEED=${r.seed} replays it): re-merged after ${r.remergeMs ?? 'never'} ms, bound ${REMERGE_BOUND_MS} ms`);
    // One node pings at most once per probe interval.
    assert.ok(r.pingsPerNodePerSec <= 1000 / PROBE_INTERVAL_MS, `seed ${r.seed}: ${r.pingsPerNodePerSec} heal pings per node per second`);
  }
  assert.equal(serf.pingsPerNodePerSec, 0, 'heal pings off sends none');
});

test('a member dead for an hour is pinged far less than a fresh failure (its address may be a new server\'s)', { timeout: 120_000 }, (t) => {
  const seed = seedFromEnv(20_261_207);
  const sim = new SerfSim({ seed, serf: { healIntervalMs: PROBE_INTERVAL_MS } });
  t.diagnostic(`seed ${seed}`);
  try {
    const names = sim.cluster.addNodes(N).map((n) => n.name);
    sim.cluster.joinAll(names[0]!, 1000);
    const live = names.slice(1);
    assert.ok(sim.cluster.runUntil(() => names.every((o) => sim.serf(o).members().filter((m) => m.status === 'alive').length === N), 60_000, 100));
    sim.cluster.kill(names[0]!);
    assert.ok(sim.cluster.runUntil(() => live.every((o) => sim.serf(o).members().find((m) => m.name === names[0])?.status === 'failed'), 60_000, 100));
    const pings = (): number => live.reduce((s, n) => s + (sim.serf(n).counters()['serf.heal-pings'] ?? 0), 0);
    const rateOver = (ms: number): number => {
      const p0 = pings();
      sim.cluster.runFor(ms);
      return (pings() - p0) / (ms / 1000);
    };
    const fresh = rateOver(60_000);
    sim.cluster.runFor(60 * 60_000);
    const old = rateOver(10 * 60_000);
    t.diagnostic(`pings to one failed member, whole cluster: ${fresh.toFixed(2)}/s in its first minute, ${old.toFixed(3)}/s an hour later`);
    assert.ok(fresh > 0.5, `a fresh failure is pinged: ${fresh}/s`);
    assert.ok(old <= fresh / 10, `an hour later: ${old}/s, fresh ${fresh}/s`);
  } finally {
    sim.cluster.shutdown();
  }
});

// A node cut off from everyone long enough for its kodama peers to purge it (memberlist drops a
// dead node after gossipToTheDead) while a Serf peer still holds it dead at its incarnation: when
// the cut heals and it rejoins through a kodama peer, that peer takes its unchanged alive as a new
// node, but the Serf peer finds it stale (not newer than the death it knows) and, with no heal
// pings, waits for its reconnect timer or a push/pull with it — up to 30 s and more (seen on a
// real network: a serf web node still had the balancer failed 10 s after the heal). The rejoining
// node must announce itself with a newer incarnation, which overrides every stale death.
test('a node rejoining after a long cut is alive again on a Serf peer that still holds it dead, within 3 s of the heal, every seed', { timeout: 120_000 }, (t) => {
  const base = seedFromEnv(20_261_208);
  const seeds = process.env['KODAMA_SEED'] !== undefined ? [base] : [base, base + 1, base + 2, base + 3, base + 4];
  const late: string[] = [];
  for (const seed of seeds) {
    // lb and four kodama peers that purge the dead after 5 s; s, like Serf: no heal pings,
    // memberlist's 30 s gossipToTheDead.
    const serfLike = (name: string): boolean => name === 'node-0006';
    const sim = new SerfSim({
      seed,
      serf: { healIntervalMs: PROBE_INTERVAL_MS },
      serfFor: (name) => (serfLike(name) ? { healIntervalMs: 0 } : {}),
      memberlistFor: (name) => (serfLike(name) ? { gossipToTheDeadMs: 30_000 } : { gossipToTheDeadMs: 5_000 }),
    });
    try {
      const names = sim.cluster.addNodes(6).map((n) => n.name);
      const [lb, s] = [names[0]!, names[5]!];
      const others = names.slice(1);
      const status = (o: string, x: string): string | undefined => sim.serf(o).members().find((m) => m.name === x)?.status;
      sim.cluster.joinAll(names[1]!, 1000);
      assert.ok(sim.cluster.runUntil(() => names.every((o) => names.every((x) => status(o, x) === 'alive')), 60_000, 100), `seed ${seed}: no convergence`);
      sim.cluster.partition([lb], others);
      assert.ok(sim.cluster.runUntil(() => others.every((o) => status(o, lb) === 'failed'), 60_000, 100), `seed ${seed}: lb not failed everywhere`);
      // The kodama peers purge lb from memberlist (5 s); the Serf-like one keeps it dead.
      sim.cluster.runFor(10_000);
      sim.cluster.heal();
      const healAt = sim.cluster.clock.now();
      const back = sim.cluster.runUntil(() => names.every((o) => names.every((x) => status(o, x) === 'alive')), 60_000, 50);
      const ms = sim.cluster.clock.now() - healAt;
      t.diagnostic(`seed ${seed}: every node sees every member alive ${back ? `${ms} ms` : 'not within 60 s'} after the heal (${s} sees lb ${status(s, lb)})`);
      if (!back || ms > REMERGE_BOUND_MS) late.push(`seed ${seed} (KODAMA_SEED=${seed} replays it): ${back ? `${ms} ms` : 'never'}`);
    } finally {
      sim.cluster.shutdown();
    }
  }
  assert.deepEqual(late, [], `re-merged later than ${REMERGE_BOUND_MS} ms after the heal`);
});

// The shape of test/netns/deploy-partition.test.ts's mixed cluster: 7 nodes, two of them Serf
// (no heal pings, and memberlist's plain gossip: no eager or direct sends), cut 2 | 5 until each
// side holds the other failed, kept cut for a while, healed. The Serf peers hear of the other side
// only from the kodama nodes' news, and memberlist's retransmit budget below 10 nodes (4 sends
// per relaying node) left one of them stale for over 10 s in 12 of 1,800 seeded runs (37 over
// 3 s), until its next push/pull or reconnect (30 s; seen in CI: a serf web node with the coordinator and a balancer still failed
// 10 s after the heal). A kodama node that hears of a member back from the dead sends it to
// every live peer in a small cluster (memberlist.ts announceRevivals).
test('two Serf peers in a 7-node cluster see the healed side alive within 10 s, every run (cut 2|5, held 3-28 s)', { timeout: 120_000 }, (t) => {
  const base = seedFromEnv(20_261_209);
  const holds = [3_000, 8_000, 13_000, 18_000, 23_000, 28_000];
  const seeds = process.env['KODAMA_SEED'] !== undefined ? [base] : Array.from({ length: 40 }, (_, i) => base + i);
  const bound = 10_000;
  const late: string[] = [];
  let over3s = 0;
  let runs = 0;
  for (const hold of holds) {
    for (const seed of seeds) {
      const serfLike = (name: string): boolean => name === 'node-0005' || name === 'node-0007';
      const simSeed = seed * 31 + hold;
      const sim = new SerfSim({
        seed: simSeed,
        serf: { healIntervalMs: PROBE_INTERVAL_MS },
        serfFor: (name) => (serfLike(name) ? { healIntervalMs: 0 } : {}),
        // memberlist's LAN gossipToTheDead (30 s), as the agent and Serf run.
        memberlistFor: (name) => (serfLike(name) ? { eagerGossipNodes: 0, ownNewsDirectMax: 0, gossipToTheDeadMs: 30_000 } : { gossipToTheDeadMs: 30_000 }),
      });
      try {
        const names = sim.cluster.addNodes(7).map((n) => n.name);
        const status = (o: string, x: string): string | undefined => sim.serf(o).members().find((m) => m.name === x)?.status;
        const seesAll = (o: string): boolean => names.every((x) => status(o, x) === 'alive');
        sim.cluster.joinAll(names[0]!, 1000);
        assert.ok(sim.cluster.runUntil(() => names.every(seesAll), 60_000, 100), `seed ${seed}: no convergence`);
        const a = names.slice(0, 2);
        const b = names.slice(2);
        sim.cluster.partition(a, b);
        const failed = (side: string[], other: string[]): boolean => side.every((o) => other.every((x) => status(o, x) === 'failed'));
        assert.ok(sim.cluster.runUntil(() => failed(a, b) && failed(b, a), 60_000, 100), `seed ${seed}: the sides did not see each other failed`);
        sim.cluster.runFor(hold);
        sim.cluster.heal();
        const healAt = sim.cluster.clock.now();
        const serfs = names.filter(serfLike);
        const back = sim.cluster.runUntil(() => serfs.every(seesAll), bound, 50);
        const ms = sim.cluster.clock.now() - healAt;
        runs++;
        if (ms > 3_000) over3s++;
        if (!back) late.push(`hold ${hold} ms, seed ${simSeed} (KODAMA_SEED=${seed}): ${serfs.map((s) => `${s} sees ${names.filter((x) => status(s, x) !== 'alive').join(',')} not alive`).join('; ')}`);
      } finally {
        sim.cluster.shutdown();
      }
    }
  }
  t.diagnostic(`${runs} runs: the Serf peers saw everyone alive within 3 s of the heal in ${runs - over3s}, within ${bound / 1000} s in ${runs - late.length}`);
  assert.deepEqual(late, [], `Serf peers still missing members ${bound} ms after the heal`);
});
