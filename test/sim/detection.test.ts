// A crashed node is declared dead by every other node, within the bound memberlist's own
// formulas give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lanConfig } from '../../src/memberlist/config.ts';
import { withCluster, wallSince } from './helpers.ts';

const FILE = 'test/sim/detection.test.ts';
const N = 32;

test(`a killed node is dead at all ${N - 1} others within the SWIM + Lifeguard bound`, async () => {
  const wallStart = performance.now();
  await withCluster(FILE, {}, (c) => {
    const cfg = lanConfig('x', { ip: '127.0.0.1', port: 7946 });
    c.addNodes(N);
    c.joinAll('node-0001', 1000);
    assert.ok(c.runUntil(() => c.converged(), 60_000), 'cluster did not converge before the kill');

    // Upper bound on detection, in ms, from the moment of the kill (LAN profile, N nodes):
    //  1. First probe of the victim: each node walks its shuffled probe list round-robin, one
    //     target per ProbeInterval (health 0 in a healthy cluster). If its pointer is already past
    //     the victim it finishes the pass, reshuffles, and meets the victim within the next one:
    //     ≤ 2 × (N − 1) × ProbeInterval for any single node. (Usually one of the N − 1 probers gets
    //     there within a second or two; this is the worst case of a single prober.)
    //  2. That probe fails at its deadline: ProbeInterval after the ping (ProbeTimeout plus the
    //     indirect probes and the TCP fallback all run inside it; relays send nacks, so health
    //     stays 0 and the deadline is not scaled).
    //  3. Lifeguard suspicion: the timer starts at its maximum, SuspicionMaxTimeoutMult ×
    //     SuspicionMult × log10(N) × ProbeInterval, and only shrinks with confirmations, so the
    //     maximum bounds it.
    //  4. Dissemination of the dead message by gossip: an epidemic with fanout GossipNodes reaches
    //     all N nodes in about log_{fanout+1}(N) + ln(N) rounds of GossipInterval; we allow twice
    //     that for loss-free but jittery delivery.
    const probeMs = 2 * (N - 1) * cfg.probeIntervalMs;
    const probeDeadlineMs = cfg.probeIntervalMs;
    const minSuspicionMs = cfg.suspicionMult * Math.max(1, Math.log10(N)) * cfg.probeIntervalMs;
    const maxSuspicionMs = cfg.suspicionMaxTimeoutMult * minSuspicionMs;
    const rounds = Math.log(N) / Math.log(cfg.gossipNodes + 1) + Math.log(N);
    const disseminationMs = 2 * Math.ceil(rounds) * cfg.gossipIntervalMs;
    const boundMs = probeMs + probeDeadlineMs + maxSuspicionMs + disseminationMs;

    const victim = 'node-0017';
    const killedAtMs = c.clock.now();
    c.kill(victim);
    const others = c.live().map((n) => n.name);
    const everyone = (): boolean => others.every((o) => c.deadSeenAt.get(victim)?.has(o) === true);
    c.runUntil(everyone, boundMs + 30_000, 250);
    const seen = c.deadSeenAt.get(victim) ?? new Map<string, number>();
    const missing = others.filter((o) => !seen.has(o));
    assert.deepEqual(missing, [], `not declared dead by ${missing.length} nodes`);
    const times = [...seen.values()].map((t) => t - killedAtMs);
    const firstMs = Math.min(...times);
    const lastMs = Math.max(...times);
    console.log(
      `detection N=${N}: first dead at +${firstMs} ms, all ${others.length} at +${lastMs} ms; ` +
        `bound ${Math.round(boundMs)} ms (probe ${probeMs} + deadline ${probeDeadlineMs} + suspicion max ${Math.round(maxSuspicionMs)} ` +
        `[min ${Math.round(minSuspicionMs)}] + gossip ${disseminationMs}); wall ${wallSince(wallStart)} ms`,
    );
    assert.ok(lastMs <= boundMs, `detected after ${lastMs} ms, bound ${boundMs} ms`);
    // Sanity: detection cannot beat probe deadline + minimum suspicion timeout.
    assert.ok(firstMs >= minSuspicionMs, `dead after ${firstMs} ms, quicker than the minimum suspicion ${minSuspicionMs} ms`);
    assert.equal(c.falseDeaths.length, 0, `false deaths: ${JSON.stringify(c.falseDeaths.slice(0, 5))}`);
    assert.deepEqual(c.checkInvariants(), []);
    // The dead node stays dead (nobody can refute for it).
    c.runFor(20_000);
    assert.ok(c.allSee(others, [victim], 'dead'));
    assert.ok(c.converged());
  });
});
