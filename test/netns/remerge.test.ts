// Re-merge after a partition heals, on a real network (issue 18): 6 agents in network
// namespaces (test/netns/net.ts), all alive everywhere; cut 3 | 3; wait until each side sees the
// other side failed; keep the cut for KODAMA_REMERGE_PARTITION_MS more (default 15 s); heal;
// every node must see all 6 alive within the bound, and none may end as left or missing. The measured times are printed (`npm run bench -- remerge` compares serf and kodama).
// Needs root (network namespaces) and iptables or nft: otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireNetns } from './net.ts';
import { detectBoundMs, formatNodes, runRemerge, type RemergeResult } from './scenario.ts';
import type { AgentKind } from './agents.ts';
import { formatFalseFailures } from './checker.ts';

/**
 * Heal → every node sees all 6 alive. kodama pings failed members (heal pings, src/serf/limits.ts)
 * and joins one the moment it answers: ~1 s (0.6 s measured; 0.75–1.35 s in the simulator over 5
 * seeds), so the target of 3 s holds with margin. In the mixed cluster only the kodama
 * nodes ping; the serf nodes learn the other side from gossip and push/pull: 5 s. (Serf alone
 * waits for its reconnect timer, every 30 s: `npm run bench -- remerge` shows it beside kodama.)
 */
const REMERGE_BOUND_KODAMA_ONLY_MS = 3_000;
const REMERGE_BOUND_MIXED_MS = 5_000;

/** After all 6 see each other alive: gossip's retransmissions are over in well under a second. */
const SETTLE_MS = 2_000;
const PARTITION_MS = Number(process.env['KODAMA_REMERGE_PARTITION_MS'] ?? 15_000);
const N = 6;
/** Side A = nodes 0-2, side B = nodes 3-5. */
const SIDES: [number[], number[]] = [
  [0, 1, 2],
  [3, 4, 5],
];

function report(label: string, r: RemergeResult): void {
  const overall = r.overallMs === undefined ? 'NOT re-merged' : `${(r.overallMs / 1000).toFixed(2)} s`;
  console.log(
    `${label}: re-merge after heal ${overall} (failure seen ${(r.detectMs / 1000).toFixed(1)} s after the cut; ` +
      `cut for ${(r.partitionMs / 1000).toFixed(1)} s, ${(r.failedWindowMs / 1000).toFixed(1)} s of it with the other side failed; false failures ${r.falseFailures.length}; ${r.subnet} via ${r.firewall})`,
  );
  console.log(formatNodes(r));
}

function scenario(label: string, kinds: AgentKind[], boundMs: number): void {
  test(`${label}: every node sees all ${N} alive within ${boundMs / 1000} s of healing a 3|3 partition`, { timeout: 240_000 }, async (t) => {
    if (!requireNetns(t)) return;
    assert.ok(Number.isFinite(PARTITION_MS) && PARTITION_MS >= 0, `KODAMA_REMERGE_PARTITION_MS must be a number of ms, got ${process.env['KODAMA_REMERGE_PARTITION_MS']}`);
    const r = await runRemerge({
      kinds,
      sides: SIDES,
      joinOrder: [0, 1, 2, 3, 4, 5],
      partitionMs: PARTITION_MS,
      // The join's news done spreading before the cut. A cut across news in flight (say a
      // refutation by a node a busy machine let be suspected while joining) leaves one node
      // knowing a newer incarnation of a node across the cut than its side: its side's suspect and
      // dead messages are then stale to it, so its own suspicion gets no confirmation and runs
      // Lifeguard's full 24 s after its first probe of that node, past the detection bound
      // (seen once in CI: k1 still saw k5 alive 30 s after the cut, s0 and s2 had it failed).
      settleMs: SETTLE_MS,
      remergeBoundMs: boundMs,
      detectBoundMs: detectBoundMs(N),
      log: (line) => console.log(`[${label}] ${line}`),
    });
    report(label, r);
    const late = r.nodes.filter((x) => x.remergeMs === undefined).map((x) => x.name);
    assert.deepEqual(late, [], `not every node saw all ${N} alive within ${boundMs} ms of the heal`);
    assert.deepEqual(r.problems, [], 'after re-merge every node must see every member alive (none left or missing)');
    assert.deepEqual(r.falseFailures, [], `member-failed only for the other side of the cut:\n${formatFalseFailures(r.falseFailures, r.cutAtUnixMs)}`);
    for (const x of r.nodes) assert.equal(x.finalView?.size, N, `${x.name} sees ${x.finalView?.size} members`);
  });
}

scenario('kodama-only', ['kodama', 'kodama', 'kodama', 'kodama', 'kodama', 'kodama'], REMERGE_BOUND_KODAMA_ONLY_MS);
// Each side holds both kinds: serf, kodama, serf | kodama, serf, kodama.
scenario('mixed 3 serf + 3 kodama', ['serf', 'kodama', 'serf', 'kodama', 'serf', 'kodama'], REMERGE_BOUND_MIXED_MS);
