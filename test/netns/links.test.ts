// Links that misbehave without anyone failing (issue 13), on a real test network: 6 real agents
// in network namespaces, kodama-only and mixed serf + kodama, ending with the checker
// (test/netns/checker.ts):
//   - one node deaf to another (a one-way cut) for 20 s: not one member-failed;
//   - a link flapping 2 s down / 2 s up five times: not one member-failed.
// Needs root (network namespaces) and iptables or nft: otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from './net.ts';
import type { AgentKind } from './agents.ts';
import { diagnosis, falseFailures, finalViewProblems, formatFalseFailures } from './checker.ts';
import { PROBE_INTERVAL_MS, allAliveAgain, faultClusters, withCluster } from './scenario.ts';

const ONE_WAY_MS = 20_000;
const FLAP_MS = 2_000;
const FLAPS = 5;
/** The fault removed → every member alive everywhere (nobody should have left the alive state). */
const AFTER_BOUND_MS = 5 * PROBE_INTERVAL_MS;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Asymmetric reachability is no failure: with B deaf to A, B's pings of A go out and A's acks
 * are lost, A's pings of B are lost — and both get their answer through the indirect probes the
 * other nodes relay (memberlist's ping-req), so neither is even declared failed.
 */
function oneWayScenario(label: string, kinds: AgentKind[], baseline: boolean): void {
  test(`${label}: one node deaf to another (one-way cut) for ${ONE_WAY_MS / 1000} s declares no member failed`, { timeout: 120_000 }, async (t) => {
    if (!requireNetns(t)) return;
    await withCluster(kinds, async (net, agents) => {
      const names = agents.map((a) => a.name);
      const [a, b] = [agents[0]!, agents[3]!];
      const t0 = Date.now();
      await net.cutOneWay([a.node], [b.node]);
      await sleep(ONE_WAY_MS);
      const dropped = (await net.udpSent(a.node)).toCut;
      await net.heal();
      const back = await allAliveAgain(net, agents, names, AFTER_BOUND_MS, 'after the one-way cut ended', baseline);
      const bad = falseFailures(agents, t0, () => false);
      t.diagnostic(`${b.name} deaf to ${a.name} for ${ONE_WAY_MS} ms: ${dropped} UDP packets of ${a.name} sent into the cut, false failures ${bad.length}; all alive everywhere ${back} after it ended`);
      assert.ok(dropped > 0, `${a.name} sent packets into the cut`);
      if (baseline) return; // Serf's figures, reported beside kodama's, not judged
      assert.deepEqual(bad, [], `member-failed with a one-way cut alone:\n${formatFalseFailures(bad, t0)}\n${diagnosis(net, agents)}`);
      assert.deepEqual(await finalViewProblems(agents, names), [], diagnosis(net, agents));
    });
  });
}

/** A link that goes down and up every FLAP_MS: each outage is shorter than any suspicion timeout. */
function flapScenario(label: string, kinds: AgentKind[], baseline: boolean): void {
  test(`${label}: a link flapping (${FLAP_MS / 1000} s down, ${FLAP_MS / 1000} s up, ${FLAPS} times) declares no member failed`, { timeout: 120_000 }, async (t) => {
    if (!requireNetns(t)) return;
    await withCluster(kinds, async (net, agents) => {
      const names = agents.map((a) => a.name);
      const [a, b] = [agents[1]!, agents[4]!];
      const t0 = Date.now();
      for (let i = 0; i < FLAPS; i++) {
        await net.cut([a.node], [b.node]);
        await sleep(FLAP_MS);
        await net.heal();
        await sleep(FLAP_MS);
      }
      const back = await allAliveAgain(net, agents, names, AFTER_BOUND_MS, 'after the flapping ended', baseline);
      const bad = falseFailures(agents, t0, () => false);
      t.diagnostic(`${a.name}–${b.name} flapped ${FLAPS} times: false failures ${bad.length}; all alive everywhere ${back} after`);
      if (baseline) return; // Serf's figures, reported beside kodama's, not judged
      assert.deepEqual(bad, [], `member-failed with a flapping link alone:\n${formatFalseFailures(bad, t0)}\n${diagnosis(net, agents)}`);
      assert.deepEqual(await finalViewProblems(agents, names), [], diagnosis(net, agents));
    });
  });
}

for (const c of faultClusters()) oneWayScenario(c.label, c.kinds, c.baseline);
for (const c of faultClusters()) flapScenario(c.label, c.kinds, c.baseline);
