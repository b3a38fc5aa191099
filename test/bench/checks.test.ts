// The monitoring benchmark, small (20 nodes, 1 simulated minute): the figures it prints are
// measured and sane — checks add gossip over the baseline, chk changes go out as tag updates that
// the other nodes apply, bookkeeping is counted — and a seed replays the same run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareChecks, defaultOptions, formatChecksTable, runChecksSim } from '../../bench/checks.bench.ts';
import { SUMMARY_MAX_BYTES } from '../../src/checks/types.ts';

const NODES = 20;
const opts = { ...defaultOptions({}), nodes: NODES, windowMs: 60_000, warmupMs: 30_000 };

test('checks bench at 20 nodes × 10 checks, 1 simulated minute: figures measured and sane', { timeout: 60_000 }, () => {
  const r = compareChecks(opts, 3);
  const table = formatChecksTable(opts, r);
  console.log(table);
  const { baseline: b, checks: k } = r;
  for (const x of [b, k]) {
    assert.ok(x.convergedAtStart && x.convergedAtEnd, `converged (${x.withChecks ? 'checks' : 'baseline'})\n${table}`);
    assert.ok(x.bytesPerNodePerSec > 0 && x.udpBytesSent > 0 && x.udpBytesReceived > 0 && x.streamBytes > 0, table);
    // No loss in this network: what was sent arrived (bar packets still in flight at the end).
    assert.ok(x.udpBytesReceived <= x.udpBytesSent && x.udpBytesReceived > 0.95 * x.udpBytesSent, table);
    assert.ok(x.windowCpuMs > 0, table);
  }
  // Baseline: nothing ran, nothing changed.
  assert.equal(b.checkRuns, 0);
  assert.equal(b.tagUpdates, 0);
  assert.equal(b.memberUpdatesSeen, 0);
  // Every check ran once per 10 s interval of the window.
  assert.equal(k.checkRuns, NODES * 10 * 6, table);
  assert.ok(k.nonPassingResults > 0 && k.nonPassingResults < 0.2 * k.checkRuns, `non-passing share is plausible\n${table}`);
  assert.ok(k.tagUpdates > 0, table);
  assert.ok(k.occurrenceOnlyUpdates <= k.tagUpdates, table);
  // Each update is an alive message every node applies once (the node itself included: Serf
  // reports its own tag change too; the last few may still be on their way when the window
  // closes, and two quick updates may overtake one another).
  assert.ok(k.memberUpdatesSeen <= k.tagUpdates * NODES, table);
  assert.ok(k.memberUpdatesSeen >= 0.5 * k.tagUpdates * NODES, table);
  assert.ok(k.bytesPerNodePerSec >= b.bytesPerNodePerSec, `checks add gossip\n${table}`);
  assert.ok(k.bookkeepingUsPerNodePerSec > 0 && k.bookkeepingWallUsPerNodePerSec > 0, table);
  assert.ok(k.maxChkBytes > 0 && k.maxChkBytes <= SUMMARY_MAX_BYTES, table);
  assert.match(table, /gossip B\/s per node \(sent\+recv\)\t\d+\t\d+\t\+\d+/);
  assert.match(table, /chk tag updates: \d+/);
  assert.ok(r.isolatedUsPerResult > 0, table);
  // The what-if (occurrences clamped at 3 in the tag) can only remove updates, never add any.
  const w = r.capped;
  assert.ok(w !== undefined && w.occurrenceCap === 3 && w.checkRuns === k.checkRuns, table);
  assert.ok(w.tagUpdates <= k.tagUpdates && w.tagUpdates > 0, table);
  assert.match(table, /what-if, occurrences in chk capped at 3/);
});

test('checks bench: the same seed replays the same run (results, updates, bytes)', { timeout: 60_000 }, () => {
  const small = { ...opts, nodes: 8, windowMs: 40_000, failProbability: 0.05 };
  const a = runChecksSim(small);
  const b = runChecksSim(small);
  assert.ok(a.tagUpdates > 0);
  assert.deepEqual(
    [b.checkRuns, b.nonPassingResults, b.tagUpdates, b.memberUpdatesSeen, b.udpBytesSent, b.streamBytes],
    [a.checkRuns, a.nonPassingResults, a.tagUpdates, a.memberUpdatesSeen, a.udpBytesSent, a.streamBytes],
  );
  const other = runChecksSim({ ...small, seed: small.seed + 1 });
  assert.notDeepEqual([other.nonPassingResults, other.tagUpdates, other.udpBytesSent], [a.nonPassingResults, a.tagUpdates, a.udpBytesSent]);
});
