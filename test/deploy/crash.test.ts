// kill -9 of a deploy's coordinator 20 times at random (seeded) moments while it runs a blue-green
// deploy (issue 13): the agent runs with -data-dir (the deploy state, written at every transition)
// and -snapshot (membership and clocks, written as they change), and comes back after every kill
// with the same ports and no -join. Every restart must find both files whole, rejoin the cluster
// from its snapshot alone, and carry the same deploy on; at the end the deploy is over and the
// balancer (real HAProxy, traffic through it all along) applies exactly the route the deploy
// published last, with no request failed.

import { test } from 'node:test';
import { mulberry32 } from '../lib/random.ts';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaySnapshot } from '../../src/agent/snapshot.ts';
import { loadDeploys } from '../../src/deploy/state-file.ts';
import { RpcClient } from '../../src/rpc/client.ts';
import { blueServedGreenKnown, cli, deployStatus, spawnCoordinator, startCluster, until } from './cluster.ts';
import { freePort } from '../lib/agents.ts';

const KILLS = 20;
const FINAL = ['done', 'rolled-back', 'failed', 'aborted'];


async function aliveMembers(rpcAddr: string): Promise<string[]> {
  const c = await RpcClient.connect(rpcAddr, { timeoutMs: 2000 });
  try {
    return (await c.members()).filter((m) => m.status === 'alive').map((m) => m.name);
  } finally {
    c.close();
  }
}

test(`kill -9 of the coordinator ${KILLS} times at random moments of a deploy: every restart finds its state and snapshot whole, rejoins without -join and carries the deploy on to its end`, { timeout: 300_000 }, async (t) => {
  const seed = Number(process.env['KODAMA_CRASH_SEED'] ?? Date.now() % 1_000_000);
  const random = mulberry32(seed);
  const c = await startCluster('deploy-crash');
  t.after(() => c.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'kodama-coord-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const snapshot = join(dataDir, 'serf.snapshot');
  const ports = { rpc: await freePort(), serf: await freePort() };
  const extra = ['-snapshot', snapshot];
  let coord = await spawnCoordinator('coord', c.seed, dataDir, ports, extra);
  t.after(() => coord.stop());

  const sampler = await blueServedGreenKnown(c, coord.rpcAddr);
  sampler.stop(); // a stepped shift serves both colours on purpose
  const load = c.startLoad(280_000);
  await until('load flows', 5000, () => load.records.length > 50);
  const start = await cli(coord.rpcAddr, ['blue-green', '-service', 'web', '-from', 'blue', '-to', 'green', '-steps', '25,50,75,100', '-check-bake', '1s', '-step-bake', '1s', '-bake', '2s', '-drain-timeout', '5s', '-apply-timeout', '10s', '-detach']);
  assert.equal(start.code, 0, `${start.out}${start.err}`);
  const id = (await deployStatus(coord.rpcAddr))?.id;
  assert.ok(id !== undefined);

  const atKill: string[] = [];
  const fail = (k: number, what: string): string => `seed ${seed}, kill ${k + 1}: ${what}\n${coord.proc.report()}`;
  for (let k = 0; k < KILLS; k++) {
    await new Promise((r) => setTimeout(r, Math.floor(random() * 3000)));
    const st = await deployStatus(coord.rpcAddr).catch(() => undefined);
    atKill.push(st === undefined ? '?' : `${st.phase}${st.phase === 'shift' ? st.step : ''}`);
    await coord.kill9();

    const stored = await loadDeploys(dataDir); // throws on a torn or corrupt file
    assert.equal(stored.current?.id, id, fail(k, 'the state file holds the deploy'));
    const replay = replaySnapshot(await readFile(snapshot, 'utf8'));
    assert.equal(replay.badLines, 0, fail(k, 'the snapshot replays whole'));
    assert.ok(replay.aliveNodes.some((n) => n.name === 'lb'), fail(k, `the snapshot knows a peer to rejoin: ${JSON.stringify(replay.aliveNodes)}`));

    coord = await spawnCoordinator('coord', undefined, dataDir, ports, extra);
    await until(`restart ${k + 1} rejoined from its snapshot (seed ${seed})`, 15_000, async () => (await aliveMembers(coord.rpcAddr).catch((): string[] => [])).includes('lb'), 100);
  }

  const end = await until(`the deploy ends after the last restart (seed ${seed})`, 120_000, async () => {
    const s = await deployStatus(coord.rpcAddr).catch(() => undefined);
    return s !== undefined && FINAL.includes(s.phase) ? s : undefined;
  }, 200);
  const sum = await load.stop();
  const resumed = end.events.filter((e) => /resumed after a restart/.test(e.msg)).length;
  t.diagnostic(
    `seed ${seed}: ${KILLS} kills, phases at the kills: ${atKill.join(' ')}; deploy ${end.id} ${end.phase} (${resumed} resumes among its last 50 events); ` +
      `load ${sum.sent} requests, ${sum.failed} failed`,
  );
  assert.equal(end.id, id);
  assert.equal(end.phase, 'done', `${end.phase}: ${end.reason} (seed ${seed})\n${end.events.map((e) => e.msg).join('\n')}`);
  const report = await c.role.report();
  assert.equal(report.services['web']?.routeLTime, end.routeLTime, `the balancer applies the deploy's last route (seed ${seed})`);
  assert.deepEqual(c.ready(), ['g1:green', 'g2:green']);
  assert.deepEqual(sum.failures.map((f) => f.status), [], `no request failed (seed ${seed})`);
  assert.deepEqual((await readdir(join(dataDir, 'deploys'))).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
});
