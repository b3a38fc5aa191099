// A web node that runs the real `serf agent` (no kodama on it): its tag `s:web=<port>` is all
// the balancer needs. Two such nodes serve a page each; `serf leave` on one drains it with 0
// failed requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { WebServer } from '../../src/demo/web-server.ts';
import { summarise } from '../../src/demo/loadgen.ts';
import { answeredBy, fmt, startScenario, until } from './scenario.ts';
import { startSerf, stopAll } from '../lib/agents.ts';

function serfLeave(rpcAddr: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('serf', ['leave', `-rpc-addr=${rpcAddr}`], { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`serf leave: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

test('real serf agents tagged s:web=<port> are balanced; `serf leave` drains one with 0 failures', { timeout: 90_000 }, async (t) => {
  const sc = await startScenario({ driver: 'embedded' });
  const pages: WebServer[] = [];
  t.after(async () => {
    await stopAll();
    await sc.close();
    for (const p of pages) await p.close();
  });
  const seed = `127.0.0.1:${sc.lb.bindAddress.port}`;
  const nodes = [];
  const startedAt = Date.now();
  for (const name of ['serf-web-1', 'serf-web-2']) {
    const page = await startWebServer({ node: name, delayMs: 20 });
    pages.push(page);
    nodes.push(await startSerf(name, { tags: { role: 'web', 's:web': String(page.port) }, join: [seed] }));
  }
  const readyAt = await sc.waitBackends('both serf nodes ready', 20_000, (bs) => bs.filter((b) => b.state === 'ready').length === 2);
  assert.deepEqual(sc.backends(), ['serf-web-1:ready', 'serf-web-2:ready']);
  const added = sc.lines.find((l) => /balancer: web: \+ serf-web-1 127\.0\.0\.1:\d+ ready/.test(l.line));
  assert.ok(added !== undefined && added.line.includes(`:${pages[0]?.port} ready`), 'backend = serf address + tag port');

  const load = sc.startLoad(40_000);
  await until('both serf nodes answer', 10_000, () => answeredBy(load.records, 'serf-web-1').length > 0 && answeredBy(load.records, 'serf-web-2').length > 0);

  const leaveAt = Date.now();
  await serfLeave(nodes[0]!.rpcAddr);
  const drain = await sc.waitLog(/balancer: web: serf-web-1 \S+ drain$/, 15_000, leaveAt);
  const removed = await sc.waitLog(/balancer: web: - serf-web-1 \S+ removed \((idle|drain timeout)\)/, 15_000, leaveAt);
  await new Promise((r) => setTimeout(r, 1000));
  const s = await load.stop();
  const window = summarise(load.records, leaveAt, Date.now());
  const lateToLeaver = load.records.filter((r) => r.node === 'serf-web-1' && r.startMs > removed.at);
  console.log(
    `[serf-node] both serf nodes served ${readyAt - startedAt} ms after starting them; serf leave → drain after ${drain.at - leaveAt} ms, ` +
      `${removed.line.replace(/.*removed/, 'removed')} after ${removed.at - leaveAt} ms; leave window: ${fmt(window)}; whole run: ${fmt(s)}`,
  );
  assert.equal(s.failed, 0, `failures: ${JSON.stringify(s.failures.slice(0, 3))}`);
  assert.deepEqual(lateToLeaver, [], 'nothing sent to the serf node after it was removed');
  assert.deepEqual(sc.backends(), ['serf-web-2:ready']);
  assert.ok((pages[0]?.requests ?? 0) > 0 && (pages[1]?.requests ?? 0) > 0);
});
