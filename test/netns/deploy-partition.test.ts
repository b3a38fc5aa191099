// A blue-green deploy whose coordinator is partitioned mid-deploy (issue 13), on a real test
// network: coordinator `coord` (kodama, -data-dir), two embedded balancers lb1 and lb2, blue web
// nodes b1 b2 and green web nodes g1 g2, each with a page server (in the mixed cluster b2 and g2
// are plain `serf agent`s advertising `s:web=8080` and their colour as tags). The route starts at
// blue 100 / green 0; the deploy shifts to 50 % green and bakes; then the coordinator and lb1 are
// cut off from everyone else until each side has declared the other failed, and healed.
//
// Checked: during the cut the deploy does not move on (it rolls back: its green fleet is gone from
// its view) — it never reaches done; after the heal both balancers converge, within a bound, on
// the same route, the one with the highest Lamport time, which is the deploy's last word
// (rolled back: blue 100 / green 0), and every member is alive everywhere.
// Needs root (network namespaces) and iptables or nft: otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '../../src/rpc/client.ts';
import type { DeployState } from '../../src/deploy/types.ts';
import { createNet, requireNetns } from './net.ts';
import { joinAll, startAgent, type Agent, type AgentKind } from './agents.ts';
import { diagnosis, finalViewProblems, waitAllAlive } from './checker.ts';
import { PROBE_INTERVAL_MS, detectBoundMs } from './scenario.ts';
import { FRONT_PORT, PAGE_PORT, balancerStat, startPage } from './web.ts';

/** Heal → both balancers on the newest route: the heal's push/pull carries the route events (~1 s), plus a few resyncs. */
const CONVERGE_BOUND_MS = 15 * PROBE_INTERVAL_MS;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function call(a: Agent, op: string, args: unknown): Promise<unknown> {
  const c = await RpcClient.connect(a.rpcAddr, { timeoutMs: 5000 });
  try {
    return await c.call(op, args);
  } finally {
    c.close();
  }
}

async function deployState(coord: Agent): Promise<DeployState | undefined> {
  const st = (await call(coord, 'deploy.status', {}).catch(() => undefined)) as { current: DeployState | null } | undefined;
  return st?.current ?? undefined;
}

/** The route a balancer serves: "ltime 12 blue=0 green=100", "none", or undefined when it does not answer. */
const servedRoute = (lb: Agent): Promise<string | undefined> => balancerStat(lb, 'route.web');

const ltimeOf = (route: string | undefined): number => Number(/^ltime (\d+)/.exec(route ?? '')?.[1] ?? 0);

function scenario(label: string, kinds: Record<string, AgentKind>): void {
  test(`${label}: a blue-green deploy whose coordinator is partitioned mid-shift never ends done on one side; after the heal both balancers serve the same, newest route`, { timeout: 300_000 }, async (t) => {
    if (!requireNetns(t)) return;
    const names = ['coord', 'lb1', 'lb2', 'b1', 'b2', 'g1', 'g2'];
    const net = await createNet({ nodes: names.length, names });
    const agents: Agent[] = [];
    try {
      const lbConfig = join(net.dir, 'lb.json');
      writeFileSync(lbConfig, JSON.stringify({ balancer: { driver: 'embedded', services: { web: { bind: `0.0.0.0:${FRONT_PORT}`, mode: 'http', min_backends: 1, drain_timeout: '2s' } } } }));
      const webConfig = join(net.dir, 'web.json');
      writeFileSync(webConfig, JSON.stringify({ services: [{ name: 'web', port: PAGE_PORT, checks: [{ http: '/health', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 }] }] }));
      const dataDir = join(net.dir, 'coord-data');
      mkdirSync(dataDir);
      for (const name of names) {
        const node = net.node(name);
        const kind = kinds[name] ?? 'kodama';
        let args: string[];
        if (name === 'coord') args = ['-data-dir', dataDir];
        else if (name.startsWith('lb')) args = ['-config-file', lbConfig];
        else {
          await startPage(net, node);
          const color = name.startsWith('b') ? 'blue' : 'green';
          args = kind === 'serf' ? ['-tag', `s:web=${PAGE_PORT}`, '-tag', `color=${color}`] : ['-config-file', webConfig, '-tag', `color=${color}`];
        }
        agents.push(await startAgent(net, node, kind, { args }));
      }
      const by = (n: string): Agent => agents.find((a) => a.name === n)!;
      const coord = by('coord');
      const lbs = [by('lb1'), by('lb2')];
      await joinAll(agents);
      net.mark('all alive everywhere');

      const start = (await call(coord, 'deploy.route', { service: 'web', weights: { blue: 100, green: 0 } })) as { ltime: number };
      for (let i = 0; i < 200 && !(await Promise.all(lbs.map(servedRoute))).every((r) => ltimeOf(r) === start.ltime); i++) await sleep(100);
      assert.deepEqual(await Promise.all(lbs.map(servedRoute)), lbs.map(() => `ltime ${start.ltime} blue=100 green=0`), `both balancers on the starting route\n${diagnosis(net, agents)}`);
      net.mark(`route blue 100 / green 0 (ltime ${start.ltime}) on both balancers`);

      await call(coord, 'deploy.start', { service: 'web', from: 'blue', to: 'green', steps: [50, 100], checkBakeMs: 1000, stepBakeMs: 600_000, bakeMs: 5000, drainTimeoutMs: 5000, applyTimeoutMs: 10_000 });
      let baking: DeployState | undefined;
      for (let i = 0; i < 300 && baking === undefined; i++) {
        const s = await deployState(coord);
        if (s?.phase === 'bake' && s.step === 0) baking = s;
        else if (s !== undefined && ['done', 'rolled-back', 'failed', 'aborted'].includes(s.phase)) throw new Error(`the deploy ended ${s.phase} before the cut: ${s.reason}\n${s.events.map((e) => e.msg).join('\n')}`);
        else await sleep(100);
      }
      assert.ok(baking !== undefined, `the deploy reached the 50 % bake\n${diagnosis(net, agents)}`);
      const shifted = await Promise.all(lbs.map(servedRoute));
      assert.deepEqual(shifted, lbs.map(() => `ltime ${baking.routeLTime} blue=50 green=50`), 'both balancers serve the 50 % step');
      net.mark(`deploy ${baking.id} baking at 50 % green (ltime ${baking.routeLTime})`);

      // The coordinator and lb1 | everyone else.
      const sideA = [coord, lbs[0]!];
      const sideB = agents.filter((a) => !sideA.includes(a));
      const cutAt = Date.now();
      await net.cut(sideA.map((a) => a.node), sideB.map((a) => a.node));
      const phases: string[] = [];
      let lastPhase = '';
      const bound = detectBoundMs(names.length) + 10 * PROBE_INTERVAL_MS;
      let sawFailed = false;
      while (Date.now() - cutAt < bound) {
        const s = await deployState(coord);
        const p = s === undefined ? '?' : `${s.phase}${s.phase === 'bake' || s.phase === 'shift' ? `@${s.spec.steps[s.step]}%` : ''}`;
        if (p !== lastPhase) {
          phases.push(`+${((Date.now() - cutAt) / 1000).toFixed(1)} s ${p}`);
          net.mark(`coordinator's deploy: ${p}${s?.reason !== undefined ? ` (${s.reason})` : ''}`);
          lastPhase = p;
        }
        if (s !== undefined && ['done', 'rolled-back', 'failed', 'aborted'].includes(s.phase)) {
          sawFailed = true;
          break;
        }
        await sleep(250);
      }
      // Keep the cut a little longer: route news in flight on one side only.
      await sleep(5000);
      const during = await Promise.all(lbs.map(servedRoute));
      await net.heal();
      const healAt = Date.now();
      net.mark(`healed; during the cut the balancers served: ${during.join(' | ')}`);
      await waitAllAlive(net, agents, names, 10 * PROBE_INTERVAL_MS, 'after the heal');

      const end = await deployState(coord);
      let routes: (string | undefined)[] = [];
      let convergedMs: number | undefined;
      for (let i = 0; i < 1000 && Date.now() - healAt < CONVERGE_BOUND_MS; i++) {
        routes = await Promise.all(lbs.map(servedRoute));
        const want = end?.routeLTime ?? -1;
        if (routes.every((r) => ltimeOf(r) === want)) {
          convergedMs = Date.now() - healAt;
          break;
        }
        await sleep(100);
      }
      const finalEnd = await deployState(coord);
      t.diagnostic(
        `deploy phases after the cut: ${phases.join(', ')}; balancers during the cut: ${during.join(' | ')}; ` +
          `after the heal: ${routes.join(' | ')} ${convergedMs === undefined ? 'NOT converged' : `${convergedMs} ms after the heal`}; deploy ends ${finalEnd?.phase} (${finalEnd?.reason ?? ''})`,
      );
      assert.ok(sawFailed || finalEnd?.phase !== 'done', `the deploy never ends done while its green fleet is cut off (phases: ${phases.join(', ')})`);
      assert.notEqual(finalEnd?.phase, 'done', `the deploy did not complete across the partition: ${finalEnd?.events.map((e) => e.msg).join('\n')}`);
      assert.ok(convergedMs !== undefined, `both balancers serve the deploy's last route (ltime ${end?.routeLTime}) within ${CONVERGE_BOUND_MS} ms of the heal: ${routes.join(' | ')}\n${diagnosis(net, agents)}`);
      assert.equal(routes[0], routes[1], 'the same route on both balancers');
      if (finalEnd?.phase === 'rolled-back') assert.match(routes[0] ?? '', / blue=100 green=0$/, 'rolled back: all traffic on blue');
      assert.deepEqual(await finalViewProblems(agents, names), [], `every member alive once everywhere\n${diagnosis(net, agents)}`);
    } finally {
      await net.destroy();
    }
  });
}

scenario('kodama-only', {});
scenario('mixed (b2 and g2 serf agents)', { b2: 'serf', g2: 'serf' });
