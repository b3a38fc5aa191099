// A balancer cut off from its web nodes while traffic flows (issue 13; Synapse's
// `use_previous_backends` lesson): on a real test network, a kodama balancer (embedded proxy,
// min_backends 1) and three web nodes — kodama agents with an HTTP-checked service, or in the
// mixed cluster one plain `serf agent` advertising `s:web=8080` as a tag — each with a real page
// server in its namespace; traffic from the host through the balancer all along. The balancer is
// cut off from every web node for longer than it takes to declare them all failed (no peer can
// confirm its suspicions, so Lifeguard's longest timeout applies). Checked, from the balancer's
// own stats every 250 ms: it never has fewer than one ready backend (the guard holds the last
// ones it knew), and it did see every web node failed; after the heal every web node is ready
// again within a bound, and no request fails outside the cut (plus that bound).
// Needs root (network namespaces) and iptables or nft: otherwise it skips, saying why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNet, requireNetns } from './net.ts';
import { joinAll, members, startAgent, statuses, type Agent, type AgentKind } from './agents.ts';
import { diagnosis, waitAllAlive } from './checker.ts';
import { PROBE_INTERVAL_MS, suspicionMaxMs } from './scenario.ts';
import { FRONT_PORT, PAGE_PORT, get, readyBackends, startPage } from './web.ts';

/**
 * The cut lasts until the balancer has declared every web node failed, and then HOLD_MS more.
 * Nobody can confirm its suspicions, so each runs Lifeguard's longest timeout (24 s for 4 nodes)
 * after its first failed probe; its probes of the three come up to a few (awareness-stretched:
 * every probe without an answer or a nack raises it) probe intervals apart. Bounded by
 * MAX_CUT_MS.
 */
const MAX_CUT_MS = suspicionMaxMs(4) + 45 * PROBE_INTERVAL_MS;
const HOLD_MS = 5_000;
/** Heal → every web node ready on the balancer: re-merge (~1 s, heal pings) + health checks (500 ms) + the role's coalescing. */
const BACK_BOUND_MS = 10 * PROBE_INTERVAL_MS;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function scenario(label: string, webKinds: AgentKind[]): void {
  test(`${label}: a balancer cut off from every web node keeps its last backends (never none) and serves them all again after the heal`, { timeout: 240_000 }, async (t) => {
    if (!requireNetns(t)) return;
    const names = ['lb', ...webKinds.map((k, i) => `${k === 'serf' ? 's' : 'w'}${i + 1}`)];
    const net = await createNet({ nodes: names.length, names });
    const load: { at: number; ok: boolean }[] = [];
    let stopLoad = false;
    let loader: Promise<void> | undefined;
    try {
      const lbConfig = join(net.dir, 'lb.json');
      writeFileSync(lbConfig, JSON.stringify({ balancer: { driver: 'embedded', services: { web: { bind: `0.0.0.0:${FRONT_PORT}`, mode: 'http', min_backends: 1, drain_timeout: '5s' } } } }));
      const webConfig = join(net.dir, 'web.json');
      writeFileSync(webConfig, JSON.stringify({ services: [{ name: 'web', port: PAGE_PORT, checks: [{ http: '/health', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 }] }] }));
      const agents: Agent[] = [await startAgent(net, net.nodes[0]!, 'kodama', { args: ['-config-file', lbConfig] })];
      for (let i = 0; i < webKinds.length; i++) {
        const node = net.nodes[i + 1]!;
        await startPage(net, node);
        const kind = webKinds[i]!;
        agents.push(await startAgent(net, node, kind, { args: kind === 'serf' ? ['-tag', `s:web=${PAGE_PORT}`] : ['-config-file', webConfig] }));
      }
      const lb = agents[0]!;
      const webs = agents.slice(1);
      await joinAll(agents);
      const front = await net.forward(lb.node, FRONT_PORT);
      for (let i = 0; i < 200 && (await readyBackends(lb)) !== webs.length; i++) await sleep(100);
      assert.equal(await readyBackends(lb), webs.length, `all ${webs.length} web nodes ready on the balancer\n${diagnosis(net, agents)}`);
      net.mark(`${webs.length} web nodes ready on the balancer; traffic starts`);
      loader = (async () => {
        for (let i = 0; i < 1_000_000 && !stopLoad; i++) {
          load.push({ at: Date.now(), ok: await get(front) });
          await sleep(20);
        }
      })();
      await sleep(2000);

      const cutAt = Date.now();
      await net.cut([lb.node], webs.map((w) => w.node));
      let minReady = Infinity;
      let samples = 0;
      let allFailedAt: number | undefined;
      let lastView = '';
      while (Date.now() - cutAt < MAX_CUT_MS && (allFailedAt === undefined || Date.now() - allFailedAt < HOLD_MS)) {
        const r = await readyBackends(lb);
        if (r !== undefined) {
          minReady = Math.min(minReady, r);
          samples++;
        }
        const view = await members(lb);
        if (view !== undefined) {
          const st = statuses(view);
          lastView = webs.map((w) => `${w.name}=${st.get(w.name) ?? 'missing'}`).join(' ');
          if (allFailedAt === undefined && webs.every((w) => st.get(w.name) === 'failed')) {
            allFailedAt = Date.now();
            net.mark(`the balancer sees every web node failed (${((allFailedAt - cutAt) / 1000).toFixed(1)} s after the cut)`);
          }
        }
        await sleep(250);
      }
      await net.heal();
      const healAt = Date.now();
      const back = await waitAllAlive(net, agents, names, BACK_BOUND_MS, 'after the heal');
      for (let i = 0; i < 200 && (await readyBackends(lb)) !== webs.length && Date.now() - healAt < BACK_BOUND_MS; i++) await sleep(100);
      const readyAfter = await readyBackends(lb);
      await sleep(2000);
      stopLoad = true;
      await loader;
      const outside = load.filter((x) => !x.ok && (x.at < cutAt || x.at > healAt + BACK_BOUND_MS));
      const inside = load.filter((x) => x.at >= cutAt && x.at <= healAt);
      t.diagnostic(
        `cut ${((healAt - cutAt) / 1000).toFixed(1)} s; ready backends on the balancer during it: min ${minReady} over ${samples} samples; ` +
          `every web node failed in its view ${allFailedAt === undefined ? `never (last: ${lastView})` : `${((allFailedAt - cutAt) / 1000).toFixed(1)} s after the cut`}; all alive everywhere ${Math.max(...back.values()).toFixed(0)} ms after the heal; ` +
          `requests ${load.length}, failed inside the cut ${inside.filter((x) => !x.ok).length}/${inside.length}, outside ${outside.length}`,
      );
      assert.ok(allFailedAt !== undefined, `the balancer declared every web node failed during the cut (else the scenario tested nothing; last: ${lastView})\n${diagnosis(net, agents)}`);
      assert.ok(samples >= 10 && minReady >= 1, `ready backends never below 1 (min ${minReady} over ${samples} samples)\n${diagnosis(net, agents)}`);
      assert.equal(readyAfter, webs.length, `every web node ready again within ${BACK_BOUND_MS} ms of the heal\n${diagnosis(net, agents)}`);
      assert.equal(outside.length, 0, `requests failed outside the cut: ${outside.map((x) => new Date(x.at).toISOString()).join(', ')}\n${diagnosis(net, agents)}`);
    } finally {
      stopLoad = true;
      await loader?.catch(() => {});
      await net.destroy();
    }
  });
}

scenario('kodama-only', ['kodama', 'kodama', 'kodama']);
scenario('mixed (one web node a serf agent with an s:web tag)', ['kodama', 'serf', 'kodama']);
