// Quiet starts (issue 19): `kodama agent` balancers in a cluster with no route serve their
// backends as soon as they know them — no start-up wait, no "no route sync" line. Real agents
// (bin/kodama), real pages, requests through the embedded proxy. Speed is asserted by order and
// absence in the balancer's own log, never by a wall-clock bound: the old wait (3 s) always
// logged "balancer: serving (no route sync within 3000 ms …)" *before* its first backend.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../interop/harness.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { WebServer } from '../../src/demo/web-server.ts';
import { freePort, startKodama, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';
import { getText } from '../lib/http.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-balancer-start-'));
const pages: WebServer[] = [];
after(async () => {
  await stopAll();
  for (const p of pages) await p.close();
  rmSync(dir, { recursive: true, force: true });
});


/** Every node answers through the proxy within a few requests (round-robin). */
async function answering(url: string, nodes: string[], out: () => string): Promise<void> {
  await waitFor(`${nodes.join(', ')} answering through ${url}`, 20_000, async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4 * nodes.length; i++) seen.add((await getText(url)) ?? 'failed');
    return nodes.every((n) => seen.has(`hello from ${n}\n`)) ? true : undefined;
  }, out);
}

/** A config file: an optional service (a real page, checked) and an optional balancer. */
async function config(name: string, o: { page?: boolean; lbPort?: number }): Promise<string> {
  const body: Record<string, unknown> = {};
  if (o.page === true) {
    const page = await startWebServer({ node: name });
    pages.push(page);
    body['services'] = [{ name: 'web', port: page.port, checks: [{ http: '/health', interval: '200ms', rise: 1, fall: 1 }] }];
  }
  if (o.lbPort !== undefined) body['balancer'] = { services: { web: { bind: `127.0.0.1:${o.lbPort}` } } };
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

function lines(a: AgentProcess): string[] {
  return a.output().split('\n');
}

const readyLine = (node: string): RegExp => new RegExp(`balancer: web: \\+ ${node} 127\\.0\\.0\\.1:\\d+ ready`);

test('one node (web + balancer), alone beyond the 3 s bound, then a second web node: each served once known, never "no route sync"', { timeout: 90_000 }, async () => {
  const lbPort = await freePort();
  const n1 = await startKodama('n1', { args: [`-config-file=${await config('n1', { page: true, lbPort })}`] });
  const url = `http://127.0.0.1:${lbPort}/`;
  await answering(url, ['n1'], () => n1.output());
  // Served with no wait: nothing about serving (the old wait's line) came before its own backend.
  const log = lines(n1);
  const ready = log.findIndex((l) => readyLine('n1').test(l));
  assert.ok(ready >= 0, n1.output());
  assert.deepEqual(log.slice(0, ready).filter((l) => l.includes('balancer: serving')), [], n1.output());

  // Alone for longer than the old bound: still nothing to say.
  await new Promise((r) => setTimeout(r, 3500));
  assert.ok(!n1.output().includes('balancer: serving'), n1.output());

  const n2 = await startKodama('n2', { args: [`-config-file=${await config('n2', { page: true })}`], join: [n1.addr] });
  await answering(url, ['n1', 'n2'], () => `${n1.output()}\n${n2.output()}`);
  const after2 = lines(n1);
  const synced = after2.findIndex((l) => l.includes('balancer: serving (route table synced from peers; routes known for: none)'));
  assert.ok(synced >= 0 && synced < after2.findIndex((l) => readyLine('n2').test(l)), n1.output());
  assert.ok(!n1.output().includes('no route sync'), n1.output());
});

test('a balancer joining web nodes (no route anywhere) serves them once the route sync answers, not at the wait bound', { timeout: 90_000 }, async () => {
  const w1 = await startKodama('w1', { args: [`-config-file=${await config('w1', { page: true })}`] });
  const w2 = await startKodama('w2', { args: [`-config-file=${await config('w2', { page: true })}`], join: [w1.addr] });
  const lbPort = await freePort();
  const lb = await startKodama('lb', { args: [`-config-file=${await config('lb', { lbPort })}`], join: [w1.addr] });
  const url = `http://127.0.0.1:${lbPort}/`;
  await answering(url, ['w1', 'w2'], () => `${lb.output()}\n${w1.output()}\n${w2.output()}`);
  const log = lines(lb);
  const serving = log.filter((l) => l.includes('balancer: serving'));
  assert.equal(serving.length, 1, lb.output());
  assert.match(serving[0]!, /serving \(route table synced from peers; routes known for: none\)/);
  const first = Math.min(log.findIndex((l) => readyLine('w1').test(l)), log.findIndex((l) => readyLine('w2').test(l)));
  assert.ok(log.indexOf(serving[0]!) < first, lb.output());
});
