// 1000 nodes each join one seed node; every node must end up listing all 1000 alive.
//
// Cost: memberlist spreads each of the N alive messages from every node that learns it,
// RetransmitMult × ceil(log10(N + 1)) = 16 times, so a join storm is ≈ N² × 16 message receptions
// (≈ 9.3 M stale-alive copies dropped at N = 1000): ≈ 115 s of CPU on one idle core (34 s
// virtual) with the core and wire code as of this commit, most of it in msgpack decoding, the
// broadcast queue's per-call scan of every queued item and alive handling (profiled; sim +
// driver overhead is a few percent). Compression is off in the simulator's configs (LZW on every
// gossip packet would add to that, and changes nothing about membership).
// KODAMA_SIM_CONVERGE_N overrides N for a quick run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useLargeYoungGeneration, withCluster, wallSince } from './helpers.ts';

const FILE = 'test/sim/converge-1000.test.ts';
useLargeYoungGeneration();
const N = Number(process.env['KODAMA_SIM_CONVERGE_N'] ?? 1000);
// Joins are spread over 10 s: a real fleet does not start in the same millisecond, and 999
// simultaneous push/pulls to one node only measure the seed's queueing.
const JOIN_SPREAD_MS = 10_000;
const VIRTUAL_LIMIT_MS = 5 * 60_000;
// The run is synchronous, so node:test's timeout cannot interrupt it: check wall time ourselves.
const WALL_LIMIT_MS = 15 * 60_000;

test(`${N} nodes joining one seed converge (every node lists ${N} alive)`, { timeout: WALL_LIMIT_MS + 60_000 }, async () => {
  const wallStart = performance.now();
  await withCluster(FILE, {}, (c) => {
    c.addNodes(N);
    c.joinAll('node-0001', JOIN_SPREAD_MS);
    const ok = c.runUntil(
      () => {
        if (performance.now() - wallStart > WALL_LIMIT_MS) {
          throw new Error(`wall-time limit ${WALL_LIMIT_MS} ms reached at ${c.clock.now()} ms virtual`);
        }
        return c.converged();
      },
      VIRTUAL_LIMIT_MS,
      1000,
    );
    const f = c.figures();
    console.log(
      `converge N=${N}: ${ok ? 'converged' : 'NOT converged'} at ${c.clock.now()} ms virtual ` +
        `(joins spread over the first ${JOIN_SPREAD_MS} ms), wall ${wallSince(wallStart)} ms; ` +
        `packets/node ${f.packetsPerNode?.toFixed(0)}, streams ${f.streamsOpened}, failed ${f.streamsFailed}, ` +
        `stale alive copies dropped ${c.droppedCounts.get('stale-alive') ?? 0}`,
    );
    assert.ok(ok, `not converged within ${VIRTUAL_LIMIT_MS} ms virtual`);
    for (const n of c.live()) {
      assert.equal(n.core.numMembers(), N, `${n.name} lists ${n.core.numMembers()}`);
      assert.equal(n.joinErrors.length, 0, `${n.name}: ${n.joinErrors.join('; ')}`);
    }
    assert.equal(c.falseDeaths.length, 0);
    assert.deepEqual(c.checkInvariants(), []);
  });
});
