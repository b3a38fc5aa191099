// Performance by role end to end: three `bin/kodama agent` web nodes sampling every second and a
// real `serf agent` in the same role (it cannot answer). One web node is put under load (its RPC
// hammered by this test, so its own process burns CPU); `bin/kodama metrics -role web` names it
// as the outlier, prints per-step figures, and names the serf agent as silent; GET
// /v1/performance says the same in the documented schema; the dashboard (headless Chromium)
// draws the web role's band with the median and the loaded node marked, and leaves a screenshot.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { chromium } from 'playwright-core';
import { KODAMA_BIN, REPO, freePort, startKodama, startSerf, stopAll } from '../lib/agents.ts';
import { apiValidator } from '../http/schemas.ts';
import type { AgentProcess } from '../lib/agents.ts';
import { RpcClient } from '../../src/rpc/client.ts';
import { CHROMIUM } from '../lib/chromium.ts';

const web: AgentProcess[] = [];
let serf: AgentProcess;
let http = '';
const SCREENSHOT = join(REPO, 'test-results', 'dashboard-roles.png');

before(async () => {
  http = `127.0.0.1:${await freePort()}`;
  const first = await startKodama('web-1', { tags: { role: 'web' }, args: ['-metrics-interval', '1s', '-http-addr', http] });
  web.push(first);
  for (const n of ['web-2', 'web-3']) web.push(await startKodama(n, { tags: { role: 'web' }, join: [first.addr], args: ['-metrics-interval', '1s'] }));
  serf = await startSerf('web-serf', { tags: { role: 'web' }, join: [first.addr] });
  const c = await RpcClient.connect(first.rpcAddr);
  try {
    let alive = 0;
    for (let i = 0; i < 300 && alive < 4; i++) {
      alive = (await c.members()).filter((m) => m.status === 'alive').length;
      if (alive < 4) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(alive, 4, 'web-1 sees the 4 members alive within 30 s');
  } finally {
    c.close();
  }
});

after(() => stopAll());

function kodama(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(KODAMA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Keep `addr`'s agent busy answering RPC `stats` until `ms` pass (8 requests in flight). */
async function hammer(addr: string, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let n = 0;
  const loop = async (): Promise<void> => {
    let c: RpcClient | undefined;
    try {
      c = await RpcClient.connect(addr);
      for (let i = 0; i < 10_000_000 && Date.now() < end; i++) {
        await c.stats();
        n++;
      }
    } catch {
      // the agent stopped (the test ended early): no more load to make
    } finally {
      c?.close();
    }
  };
  await Promise.all(Array.from({ length: 8 }, loop));
  return n;
}

test('kodama metrics -role web: the loaded node is named as the outlier; per-step figures; the serf agent is named silent', { timeout: 120_000 }, async (t) => {
  // Load for 12 s before the first look; the later looks still see only loaded seconds.
  const load = hammer(web[2]!.rpcAddr, 45_000);
  await new Promise((r) => setTimeout(r, 12_000));
  // The last 10 s, all of it under load (the window ends at the current, partial step).
  const text = await kodama(['metrics', '-rpc-addr', web[0]!.rpcAddr, '-role', 'web', '-since', '10s', '-step', '2s', '-field', 'proc_cpu', '-timeout', '3s']);
  t.diagnostic(`kodama metrics -role web -since 10s -step 2s -field proc_cpu:\n${text.stdout}${text.stderr}`);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^role web: 3 nodes \(web-1, web-2, web-3\), \d\d:\d\d:\d\d-\d\d:\d\d:\d\d UTC in 5 steps of 2s$/m);
  assert.match(text.stdout, /^proc_cpu %\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+web-3 \([\d.]+ vs median [\d.]+\)$/m);
  assert.match(text.stdout, /^proc_cpu %: agent CPU \(of one core\), per step$/m);
  assert.equal((text.stdout.match(/^\d\d:\d\d:\d\d\s+\d\s/gm) ?? []).length, 5, 'one row per step');
  assert.match(text.stdout, /^rss MiB\s+\d/m);
  assert.match(text.stdout, /no answer from: web-serf/);

  const json = await kodama(['metrics', '-rpc-addr', web[0]!.rpcAddr, '-role', 'web', '-since', '10s', '-step', '2s', '-format', 'json', '-timeout', '3s']);

  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout) as { stepS: number; n: number; roles: { role: string; nodes: string[]; fields: { field: string; outliers: { node: string }[]; steps: { count: number }[]; nodes: Record<string, number> }[] }[]; silent: string[] };
  assert.equal(r.roles.length, 1);
  const pc = r.roles[0]!.fields.find((f) => f.field === 'proc_cpu')!;
  assert.deepEqual(pc.outliers.map((o) => o.node), ['web-3'], JSON.stringify(pc.nodes));
  assert.equal(pc.steps.length, 5);
  assert.ok(pc.steps.filter((s) => s.count === 3).length >= 4, `every node has a sample in every step but the current one: ${JSON.stringify(pc.steps)}`);
  // Host figures are the same machine for all three: nobody stands out there.
  assert.deepEqual(r.roles[0]!.fields.find((f) => f.field === 'mem')!.outliers, []);
  assert.deepEqual(r.silent, ['web-serf']);
  assert.ok(serf.hasExited() === false, 'the serf agent ignored the query and kept running');

  // The HTTP API: the same figures, in the schema docs/api.md gives.
  const { validate } = apiValidator();
  const res = await fetch(`http://${http}/v1/performance?since=10s&role=web`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as typeof r;
  validate('PerformanceResponse', body);
  assert.deepEqual(body.roles.map((x) => x.role), ['web']);
  assert.deepEqual(body.roles[0]!.fields.find((f) => f.field === 'proc_cpu')!.outliers.map((o) => o.node), ['web-3']);
  assert.deepEqual(body.silent, ['web-serf']);
  const bad = await fetch(`http://${http}/v1/performance?since=forever`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /since must be a duration from 10s to 7 days/);

  // The dashboard: the web role's band, its median and web-3 marked, drawn from that read.
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is missing: apt-get install chromium`);
    t.diagnostic(`SKIPPED the dashboard part: ${CHROMIUM} is missing`);
  } else {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
      await page.goto(`http://${http}/ui/`, { waitUntil: 'load', timeout: 15_000 });
      await page.waitForSelector('#perf-field option[value="proc_cpu"]', { state: 'attached', timeout: 15_000 });
      await page.selectOption('#perf-since', '1m');
      await page.selectOption('#perf-field', 'proc_cpu');
      // #roles[data-window] is the drawn answer's window in seconds: 60 once the 1-minute read is in.
      const chart = '#roles[data-window="60"] figure[data-role="web"][data-field="proc_cpu"]';
      try {
        await page.waitForSelector(`${chart} polyline[data-outlier="web-3"]`, { state: 'attached', timeout: 20_000 });
      } catch (e) {
        const now = await page.$eval('section.roles', (el) => `${el.querySelector('#roles')?.getAttribute('data-window')} · ${el.textContent}`);
        throw new Error(`${(e as Error).message}\nthe panel shows: ${now}`);
      }
      const shown = await page.$eval(chart, (el) => ({
        band: Number(el.querySelector('polygon[data-band]')?.getAttribute('data-points') ?? 0),
        median: Number(el.querySelector('polyline[data-median]')?.getAttribute('data-points') ?? 0),
        legend: el.querySelector('.legend')?.textContent ?? '',
        caption: el.querySelector('figcaption')?.textContent ?? '',
      }));
      t.diagnostic(`dashboard: ${JSON.stringify(shown)}`);
      assert.ok(shown.band >= 2 && shown.median === shown.band, JSON.stringify(shown));
      assert.match(shown.caption, /^web · 3 nodes · agent CPU/);
      assert.match(shown.legend, /outlier web-3 [\d.]+ % vs median [\d.]+ %/);
      mkdirSync(join(REPO, 'test-results'), { recursive: true });
      await page.locator('section.roles').screenshot({ path: SCREENSHOT });
      t.diagnostic(`screenshot: ${relative(REPO, SCREENSHOT)}`);
    } finally {
      await Promise.race([browser.close(), new Promise((res2) => setTimeout(res2, 10_000).unref())]);
    }
  }
  t.diagnostic(`${await load} RPC requests answered by web-3 in 45 s`);
});
