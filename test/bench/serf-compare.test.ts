// The serf-vs-kodama benchmark harness itself, at N = 5: it starts real agents, sees every
// node's handler run the user event and member-failed, reads CPU and RSS from /proc, prints
// the table with ratios, and leaves no process behind. Figures are not asserted beyond
// "measured and plausible"; the bench is for reading them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { compare, formatTable } from '../../bench/lib/compare.ts';
import type { KindResult } from '../../bench/lib/compare.ts';
import { kodamaHasHandlers } from '../../bench/lib/cluster.ts';
import { cpuMs } from '../../bench/lib/procs.ts';
import { mergeSpreads, summarize } from '../../bench/lib/measure.ts';
import type { Kind } from '../../bench/lib/cluster.ts';

const N = 5;

/**
 * `missing` = what this agent cannot do yet (serf can do everything): kodama's handlers or its
 * RPC `event` may not be wired in the tree this runs on, and the harness says so in a note.
 */
function assertMeasured(r: KindResult, missing: { handlers: boolean; userEventRpc: boolean }): void {
  const expectedNotes = r.notes.filter(
    (n) => (missing.handlers && n.startsWith('no -event-handler')) || (missing.userEventRpc && /^user event: .*not supported/.test(n)),
  );
  assert.deepEqual(r.notes, expectedNotes, `${r.kind}: ${r.notes.join('; ')}`);
  assert.ok(r.idle !== undefined, `${r.kind}: idle measured`);
  // ≥ 0, not > 0: five idle serf agents can use less than one clock tick (10 ms) in the window.
  assert.ok(Number.isFinite(r.idle.cpuPctOfCore) && r.idle.cpuPctOfCore >= 0 && r.idle.cpuPctOfCore < 200, `${r.kind}: idle CPU ${r.idle.cpuPctOfCore}%`);
  // An agent is at least a few MiB resident and (at N = 5) far below a GiB.
  assert.ok(r.idle.rssMeanBytes > 4 * 2 ** 20 && r.idle.rssMaxBytes < 2 ** 30, `${r.kind}: RSS ${r.idle.rssMeanBytes}`);
  assert.ok(r.idle.rssMaxBytes >= r.idle.rssMeanBytes);
  if (missing.handlers) return;
  const spreads = [['member-failed', r.failure]] as Array<[string, KindResult['failure']]>;
  if (!missing.userEventRpc) spreads.push(['user event', r.userEvent]);
  for (const [what, s] of spreads) {
    assert.ok(s !== undefined, `${r.kind}: ${what} measured`);
    assert.equal(s.expected, N - 1, `${r.kind}: ${what} expected on every other node`);
    assert.equal(s.reached, N - 1, `${r.kind}: ${what} reached every other node`);
    const { p50Ms, lastMs } = summarize(s);
    assert.ok(p50Ms !== undefined && lastMs !== undefined && p50Ms >= 0 && p50Ms <= lastMs, `${r.kind}: ${what} ${p50Ms} ≤ ${lastMs}`);
  }
  // Detection can't beat one probe interval (lan: 1 s) plus the quiescent coalescing window (1 s).
  const failP50 = r.failure ? summarize(r.failure).p50Ms : undefined;
  assert.ok((failP50 ?? 0) > 1000, `${r.kind}: failure p50 ${failP50} ms is implausibly fast`);
  assert.ok(Number.isInteger(r.falseFailures) && r.falseFailures! >= 0, `${r.kind}: healthy members reported failed counted (${r.falseFailures})`);
}

test('serf-compare harness at N = 5: both kinds measured, table with ratios, no process left', { timeout: 240_000 }, async () => {
  const kodamaHandlers = kodamaHasHandlers();
  const kinds: Kind[] = ['serf', 'kodama'];
  const lines: string[] = [];
  const results = await compare({
    sizes: [N],
    kinds,
    idleMs: 2000,
    userEventTimeoutMs: 30_000,
    failureTimeoutMs: 60_000,
    repeats: 1,
    keepFiles: false,
    log: (l) => lines.push(l),
  });
  const ctx = `\n${lines.join('\n')}`;
  assert.equal(results.length, 2, ctx);
  const [serf, kodama] = results;
  assert.ok(serf !== undefined && kodama !== undefined);
  assertMeasured(serf, { handlers: false, userEventRpc: false });
  const kodamaUserEvent = !kodama.notes.some((n) => /^user event: .*not supported/.test(n));
  assertMeasured(kodama, { handlers: !kodamaHandlers, userEventRpc: !kodamaUserEvent });

  const table = formatTable(results);
  assert.match(table, /N = 5 agents/);
  assert.match(table, /healthy members reported failed\s+\d+\s+\d+/);
  // CPU and RSS exist for both kinds, so their ratio is a number.
  assert.match(table, /RSS per agent, mean \(MiB\)\s+[\d.]+\s+[\d.]+\s+[\d.]+×/);
  // Idle CPU is read in clock ticks (10 ms): five idle serf agents over the test's 2 s may use
  // none, and a ratio to 0 is n/a, not a figure.
  if ((serf.idle?.cpuPctOfCore ?? 0) > 0) assert.match(table, /idle CPU, whole cluster \(% core\)\s+[\d.]+\s+[\d.]+\s+[\d.]+×/);
  else assert.match(table, /idle CPU, whole cluster \(% core\)\s+0\.0\s+[\d.]+\s+n\/a/);
  // Whatever kodama cannot do yet shows as n/a with the reason under the table, never as a figure.
  if (!kodamaHandlers) assert.match(table, /kodama: no -event-handler/);
  else assert.match(table, /failure → handler p50 \(ms\)\s+\d+\s+\d+\s+[\d.]+×/);
  if (kodamaHandlers && kodamaUserEvent) assert.match(table, /user event p50 \(ms\)\s+\d+\s+\d+\s+[\d.]+×/);
  else assert.match(table, /user event p50 \(ms\)\s+\d+\s+n\/a\s+n\/a/);

  // Progress lines came out while it ran, and every agent is gone (its /proc entry too).
  assert.ok(lines.some((l) => l.includes('[serf N=5] kill -9')), ctx);
  assert.equal(serf.pids.length, N);
  assert.equal(kodama.pids.length, N);
  const alive = [...serf.pids, ...kodama.pids].filter((p) => existsSync(`/proc/${p}`));
  assert.deepEqual(alive, [], 'every agent killed');
});

test('cpuMs reads this process and nothing for a pid that does not exist', () => {
  const mine = cpuMs(process.pid);
  assert.ok(mine !== undefined && mine >= 0);
  assert.equal(cpuMs(2 ** 22 + 12345), undefined);
});

test('repeats merge: p50 over every sample, last node = median of the repeats, n/a if one fell short', () => {
  const one = (samples: number[], expected: number) => ({
    samplesMs: samples,
    lastsMs: [samples.length === expected ? Math.max(...samples) : undefined],
    originsMs: [1],
    reached: samples.length,
    expected,
  });
  const all = [one([10, 20, 30], 3), one([40, 50, 60], 3), one([5, 6, 700], 3)].reduce(
    (acc: ReturnType<typeof one> | undefined, s) => mergeSpreads(acc, s),
    undefined,
  );
  assert.ok(all !== undefined);
  assert.deepEqual(summarize(all), { p50Ms: 30, lastMs: 60, originMs: 1 });
  assert.equal(all.reached, 9);
  const short = mergeSpreads(all, one([1, 2], 3));
  assert.equal(summarize(short).lastMs, undefined);
  assert.equal(short.reached, 11);
  assert.equal(short.expected, 12);
});
