// Faults on a real test network (issue 13): 6 real agents in network namespaces
// (test/netns/net.ts), kodama-only and mixed serf + kodama, each scenario ending with the
// checker (test/netns/checker.ts): no member-failed for a node the scenario did not take away,
// every member alive everywhere within a bound derived from the protocol, exactly the expected
// members in every view. A failure prints the timeline of faults and each agent's membership log.
//   - a node paused (SIGSTOP) for 10 s, then resumed: the others may declare it failed, but it
//     must get nobody else declared failed (Lifeguard), and comes back alive everywhere;
//   - 20 % random loss on every link, with every packet delayed 50 ± 25 ms (jitter: packets
//     overtake each other; round trips 50–150 ms) for KODAMA_NETNS_LOSS_MS (default 30 s; the
//     issue's figure is 3 minutes: KODAMA_NETNS_LOSS_MS=180000): not one member-failed. Without
//     a C compiler for the delay relay it runs with loss alone and says so.
// (links.test.ts: one-way cuts and flapping links; a file each, so the suite runs them side by side.)
// Needs root (network namespaces) and iptables or nft: otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { delayAvailable, requireNetns } from './net.ts';
import type { AgentKind } from './agents.ts';
import { diagnosis, falseFailures, finalViewProblems, formatFalseFailures } from './checker.ts';
import { PROBE_INTERVAL_MS, allAliveAgain, faultClusters, withCluster } from './scenario.ts';

const PAUSE_MS = 10_000;
const LOSS_PCT = 20;
const LOSS_MS = Number(process.env['KODAMA_NETNS_LOSS_MS'] ?? 30_000);
const DELAY_MS = 50;
const JITTER_MS = 25;
/**
 * Resume → the paused node alive everywhere again. It learns it was declared dead from the gossip
 * the others keep sending the recently dead (every gossip interval, 200 ms) or from its own next
 * probe or push/pull, refutes with a higher incarnation, and the refutation spreads like any
 * news; kodama nodes also ping failed members every probe interval. A few probe intervals are
 * plenty; 10 leaves room for a busy machine.
 */
const RESUME_BOUND_MS = 10 * PROBE_INTERVAL_MS;
/** Loss removed → every member alive everywhere (nobody should have left the alive state). */
const AFTER_LOSS_BOUND_MS = 5 * PROBE_INTERVAL_MS;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function pauseScenario(label: string, kinds: AgentKind[], baseline: boolean): void {
  test(`${label}: a node paused for ${PAUSE_MS / 1000} s gets nobody else declared failed and comes back alive everywhere`, { timeout: 180_000 }, async (t) => {
    if (!requireNetns(t)) return;
    await withCluster(kinds, async (net, agents) => {
      // Index 3: a kodama node in the kodama-only and mixed clusters, so the node under test is ours.
      const target = agents[3]!;
      const names = agents.map((a) => a.name);
      const t0 = Date.now();
      net.pause(target.proc);
      await sleep(PAUSE_MS);
      net.resume(target.proc);
      const back = await allAliveAgain(net, agents, names, RESUME_BOUND_MS, `after resuming ${target.name}`, baseline);
      net.mark(`all alive everywhere again (${back} after the resume)`);
      // Let any late verdict (a suspicion the paused node started on resuming) run out before judging.
      await sleep(RESUME_BOUND_MS);
      const bad = falseFailures(agents, t0, (_observer, subject) => subject === target.name);
      const sawTargetFailed = falseFailures(agents, t0, () => false).filter((f) => f.subject === target.name).length;
      t.diagnostic(`${target.name} paused ${PAUSE_MS} ms: member-failed for it on ${sawTargetFailed} node(s); alive everywhere ${back} after the resume; false failures ${bad.length}`);
      if (baseline) return; // Serf's figures, reported beside kodama's, not judged
      assert.deepEqual(bad, [], `member-failed for nodes nobody paused or cut:\n${formatFalseFailures(bad, t0)}\n${diagnosis(net, agents)}`);
      assert.deepEqual(await finalViewProblems(agents, names), [], diagnosis(net, agents));
    });
  });
}

function lossScenario(label: string, kinds: AgentKind[], baseline: boolean): void {
  const delay = delayAvailable();
  const what = delay.ok ? `${LOSS_PCT} % loss and ${DELAY_MS} ± ${JITTER_MS} ms delay` : `${LOSS_PCT} % loss (no delay: ${delay.why})`;
  test(`${label}: ${what} on every link for ${LOSS_MS / 1000} s declares no member failed`, { timeout: 120_000 + LOSS_MS }, async (t) => {
    if (!requireNetns(t)) return;
    assert.ok(Number.isFinite(LOSS_MS) && LOSS_MS > 0, `KODAMA_NETNS_LOSS_MS must be a positive number of ms, got ${process.env['KODAMA_NETNS_LOSS_MS']}`);
    if (!delay.ok) t.diagnostic(`delay and jitter LEFT OUT: ${delay.why}`);
    await withCluster(kinds, async (net, agents) => {
      const names = agents.map((a) => a.name);
      const t0 = Date.now();
      if (delay.ok) for (const n of net.nodes) await net.delay(n, DELAY_MS, JITTER_MS);
      await Promise.all(net.nodes.map((n) => net.loss(n, LOSS_PCT)));
      await sleep(LOSS_MS);
      const dropped = (await Promise.all(net.nodes.map((n) => net.lossDropped(n)))).reduce((a, b) => a + b, 0);
      await Promise.all(net.nodes.map((n) => net.loss(n, 0)));
      let relayed = 0;
      if (delay.ok) for (const n of net.nodes) relayed += await net.delay(n, 0);
      assert.ok(dropped > 0, 'the loss rules dropped packets');
      if (delay.ok) assert.ok(relayed > 0, 'the delay relays held and sent packets');
      const back = await allAliveAgain(net, agents, names, AFTER_LOSS_BOUND_MS, 'after the loss ended', baseline);
      const bad = falseFailures(agents, t0, () => false);
      t.diagnostic(`${what} for ${LOSS_MS} ms: ${dropped} packets dropped, ${relayed} delayed, false failures ${bad.length}; all alive everywhere ${back} after it ended`);
      if (baseline) return; // Serf's figures, reported beside kodama's, not judged
      assert.deepEqual(bad, [], `member-failed under loss alone:\n${formatFalseFailures(bad, t0)}\n${diagnosis(net, agents)}`);
      assert.deepEqual(await finalViewProblems(agents, names), [], diagnosis(net, agents));
    });
  });
}

for (const c of faultClusters()) pauseScenario(c.label, c.kinds, c.baseline);
for (const c of faultClusters()) lossScenario(c.label, c.kinds, c.baseline);
