// Eager forwarding (src/memberlist/eager.ts, and Serf's direct sends of news a node starts) in
// the simulator, same seed with it off (eagerGossipNodes 0: memberlist's and Serf's behaviour)
// and on (the default, 3), Serf on every node wired as the agent wires it (src/sim/news.ts):
//  - user events and a failure notice reach all 60 nodes in clearly less time;
//  - under 15 % loss with three slow nodes and a user event a second, news costs about the
//    packets it cost without (the stated bound: packets per node per second ≤ 1.2× the mean and
//    ≤ 1.3× the busiest node's without, bytes ≤ 1.1×; seeds 1–8 and the default measured
//    1.08–1.13×, 1.09–1.20× and 0.99–1.03×), every node
//    triggered at most one eager round per user event, sent ≤ eagerGossipNodes packets per
//    eager round and ran ≤ one eager round per gossip interval, and user events reached about as
//    many nodes as without (≥ 99.5 % of deliveries; 15 % loss costs memberlist a few anyway).
//    The slow nodes stay under the probe timeout (+100…200 ms): a node slow enough to miss it
//    (+300 ms) makes false suspicions and refutations come and go by chance, each a piece of
//    news with an eager round of its own, and the packet ratio then varies with the seed
//    (1.1–1.35× over nine seeds) — within the structural bound checked here all the same.
// Replay a failure with the seed it prints: KODAMA_SEED=<seed> npm run test:unit -- eager-spread
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SEED } from '../../src/sim/cluster.ts';
import { NewsSim, percentile, type NewsSimOptions, type PacketWindow } from '../../src/sim/news.ts';
import { seedFromEnv } from '../../src/sim/random.ts';

const FILE = 'test/sim/eager-spread.test.ts';
const SEED = seedFromEnv(DEFAULT_SEED);
const N = 60;
const EAGER = 3;
const GOSSIP_INTERVAL_MS = 200;

function withSim<T>(opts: Omit<NewsSimOptions, 'seed'>, fn: (sim: NewsSim) => T): T {
  const sim = new NewsSim({ seed: SEED, ...opts });
  try {
    return fn(sim);
  } catch (e) {
    console.error(`simulation failed: seed=${SEED} (replay: KODAMA_SEED=${SEED} npm run test:unit -- ${FILE})`);
    throw e;
  } finally {
    sim.shutdown();
  }
}

interface SpreadFigures {
  userP50: number;
  userLastMean: number;
  /** (event, node) deliveries missing 1.5 s after the send, of `userPairs`. */
  userMissed: number;
  userPairs: number;
  deadLast: number;
  deadReachedAll: boolean;
}

/** Six user events 1.5 s apart from different origins, then one node killed. */
function spreadRun(eagerGossipNodes: number): SpreadFigures {
  return withSim({ eagerGossipNodes }, (sim) => {
    sim.build(N);
    const names = sim.live().map((n) => n.name);
    const delays: number[] = [];
    const lasts: number[] = [];
    let missed = 0;
    let pairs = 0;
    for (let i = 0; i < 6; i++) {
      const origin = names[(i * 11) % N]!;
      const sent = sim.userEvent(origin, `ev-${i}`);
      sim.cluster.runFor(1500);
      const s = sim.userSpread(`ev-${i}`, origin, sent);
      missed += s.expected - s.delays.length;
      pairs += s.expected;
      delays.push(...s.delays);
      lasts.push(s.delays.at(-1) ?? Infinity);
    }
    const victim = names[N - 1]!;
    sim.cluster.kill(victim);
    const deadReachedAll = sim.cluster.runUntil(() => sim.deadReachedAll(victim), 60_000, 100);
    const dead = sim.deadSpread(victim); // from the first node that declared it dead
    delays.sort((a, b) => a - b);
    return {
      userP50: percentile(delays, 50),
      userLastMean: lasts.reduce((a, b) => a + b, 0) / lasts.length,
      userMissed: missed,
      userPairs: pairs,
      deadLast: dead.delays.at(-1) ?? Infinity,
      deadReachedAll,
    };
  });
}

const fmt = (f: SpreadFigures): string =>
  `user event p50 ${f.userP50} ms, last node ${f.userLastMean.toFixed(0)} ms (mean of 6; ${f.userMissed} of ${f.userPairs} missing); failure notice: last node ${f.deadLast} ms after the first declaration`;

test(`${N} nodes: with eager forwarding a user event and a failure notice reach everyone in clearly less time`, { timeout: 60_000 }, () => {
  const off = spreadRun(0);
  const on = spreadRun(EAGER);
  console.log(`seed ${SEED}, N=${N}, LAN\n  eager off: ${fmt(off)}\n  eager ${EAGER}:   ${fmt(on)}`);
  for (const f of [off, on]) {
    // 8 transmissions a node (N < 100) miss a node now and then even without loss (≈ e^-8 per
    // node and event, with or without eager forwarding); push/pull repairs it later.
    assert.ok(f.userMissed <= 3, `user events missed ${f.userMissed} of ${f.userPairs} deliveries`);
    assert.ok(f.deadReachedAll, 'the failure notice missed a node');
  }
  // Off: about one hop per gossip interval (p50 ~250 ms, last ~500). On: network speed (1–5 ms a
  // hop) for the ~95 % the eager wave reaches, the next gossip rounds for the rest.
  assert.ok(on.userP50 <= 0.3 * off.userP50, `user event p50 ${on.userP50} ms vs ${off.userP50} without`);
  assert.ok(on.userLastMean <= 0.6 * off.userLastMean, `user event last node ${on.userLastMean} ms vs ${off.userLastMean} without`);
  assert.ok(on.deadLast <= 0.5 * off.deadLast, `failure notice spread ${on.deadLast} ms vs ${off.deadLast} without`);
});

interface LoadFigures {
  window: PacketWindow;
  /** (event, node) pairs that never delivered, of `pairs`. */
  missed: number;
  pairs: number;
  events: number;
  /** Per live node: Serf news that triggered a round, eager rounds, eager packets. */
  maxSerfTriggers: number;
  maxRounds: number;
  maxPacketsPerRound: number;
}

/** 15 % loss, three slow nodes; 20 s with a user event a second and one node killed. */
function loadRun(eagerGossipNodes: number): LoadFigures {
  return withSim({ eagerGossipNodes, network: { latencyMinMs: 2, latencyMaxMs: 20 } }, (sim) => {
    sim.build(N);
    const names = sim.live().map((n) => n.name);
    sim.cluster.network.setLoss(0.15);
    for (const [i, slowMs] of [[7, 100], [23, 150], [41, 200]] as const) sim.cluster.setSlow(names[i]!, slowMs);
    const before = new Map(sim.live().map((n) => [n.name, n.core.counters()]));
    const windowMs = 20_000;
    const events: [string, string][] = [];
    const window = sim.measurePackets(() => {
      sim.cluster.kill(names[N - 1]!);
      for (let i = 0; i < windowMs / 1000; i++) {
        const origin = names[(i * 17) % (N - 1)]!;
        sim.userEvent(origin, `load-${i}`);
        events.push([`load-${i}`, origin]);
        sim.cluster.runFor(1000);
      }
    });
    sim.cluster.runFor(5000); // stragglers: a lost packet or two more
    let maxSerfTriggers = 0;
    let maxRounds = 0;
    let maxPacketsPerRound = 0;
    for (const n of sim.live()) {
      const a = before.get(n.name) ?? {};
      const b = n.core.counters();
      const d = (k: string): number => (b[k] ?? 0) - (a[k] ?? 0);
      maxSerfTriggers = Math.max(maxSerfTriggers, d('eager-serf-news'));
      maxRounds = Math.max(maxRounds, d('eager-rounds'));
      if (d('eager-rounds') > 0) maxPacketsPerRound = Math.max(maxPacketsPerRound, d('eager-packets') / d('eager-rounds'));
    }
    let missed = 0;
    let pairs = 0;
    for (const [e, o] of events) {
      const s = sim.userSpread(e, o, 0);
      missed += s.expected - s.delays.length;
      pairs += s.expected;
    }
    return {
      window,
      missed,
      pairs,
      events: events.length,
      maxSerfTriggers,
      maxRounds,
      maxPacketsPerRound,
    };
  });
}

test(`${N} nodes, 15% loss, three slow nodes: eager forwarding costs about the packets news cost without it, each event forwarded eagerly at most once per node`, { timeout: 60_000 }, () => {
  const off = loadRun(0);
  const on = loadRun(EAGER);
  const w = (x: PacketWindow): string =>
    `${x.packetsPerNodeS.toFixed(2)} packets/node/s (busiest ${x.maxPacketsPerNodeS.toFixed(2)}), ${x.bytesPerNodeS.toFixed(0)} B/node/s`;
  console.log(
    `seed ${SEED}, N=${N}, 15% loss, slow nodes +100/+150/+200 ms, a user event per second + one kill over 20 s\n` +
      `  eager off: ${w(off.window)}\n  eager ${EAGER}:   ${w(on.window)}; per node at most ${on.maxSerfTriggers} eager triggers by ${on.events} user events, ` +
      `${on.maxRounds} eager rounds, ${on.maxPacketsPerRound.toFixed(2)} packets per round`,
  );
  // At 15 % loss an epidemic of 8 transmissions a node (N < 100) misses a node now and then, with
  // or without eager forwarding (8 seeds × 20 events: 4 of 9440 deliveries missing off, 5 on).
  console.log(`  deliveries missing: off ${off.missed}/${off.pairs}, on ${on.missed}/${on.pairs}`);
  assert.ok(off.missed <= 0.005 * off.pairs && on.missed <= 0.005 * on.pairs, 'user events missed too many nodes');
  assert.ok(on.window.packetsPerNodeS <= 1.2 * off.window.packetsPerNodeS, 'mean packets per node per second over the bound');
  assert.ok(on.window.maxPacketsPerNodeS <= 1.3 * off.window.maxPacketsPerNodeS, 'busiest node over the bound');
  assert.ok(on.window.bytesPerNodeS <= 1.1 * off.window.bytesPerNodeS, 'bytes per node per second over the bound');
  // No storm: one eager trigger per event per node at most, ≤ EAGER packets a round, ≤ one round
  // per gossip interval (the window and the 5 s after it).
  assert.ok(on.maxSerfTriggers <= on.events, `a node triggered ${on.maxSerfTriggers} eager rounds for ${on.events} events`);
  assert.ok(on.maxPacketsPerRound <= EAGER);
  assert.ok(on.maxRounds <= 25_000 / GOSSIP_INTERVAL_MS);
  assert.ok(on.maxRounds > 0, 'eager forwarding never ran');
  assert.equal(off.maxRounds, 0, 'eager rounds ran while off');
});
