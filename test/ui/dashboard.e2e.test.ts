// End to end: `kodama demo -no-script` (a balancer serving the dashboard + three web nodes, each a
// process) opened in headless Chromium. The page must show every member alive, then — with no
// reload, only through its live stream — turn a SIGKILLed web node failed within the detection
// bound of the local profile. Leaves a screenshot in test-results/ for a human to look at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { UI_SELECTORS } from '../../src/http/types.ts';
import { KODAMA, alive } from '../demo/helpers.ts';
import { CHROMIUM, chromiumMissing } from '../lib/chromium.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCREENSHOT = join(REPO, 'test-results', 'dashboard-failed.png');
const MEMBERS = ['balancer', 'web-1', 'web-2', 'web-3'];
const VICTIM = 'web-2';
/** Demo start: node loads the demo and three node processes on a shared 2-core machine. */
const READY_BOUND_MS = 40_000;
/** Page load + the first stream updates: every member is known to the balancer by then. */
const ALIVE_BOUND_MS = 15_000;
/** Local profile: usually 4–6 s (3 live peers confirm the suspicion); Lifeguard's worst case ~18 s. */
const FAILED_BOUND_MS = 20_000;
/** The demo stops its nodes on SIGTERM; after this it is SIGKILLed. */
const STOP_BOUND_MS = 15_000;

/** What the functions run in the page use of it (this tsconfig has no DOM lib; types only, erased). */
interface PageGlobals {
  document: {
    querySelector(selector: string): object | null;
    querySelectorAll(selector: string): Iterable<{ getAttribute(name: string): string | null }>;
  };
  kodamaE2e?: string;
}

interface Demo {
  proc: ChildProcess;
  /** Everything it printed (stdout + stderr), for failure messages. */
  output(): string;
  exited: Promise<number | null>;
}

function startDemo(): Demo {
  // Default -http-addr (127.0.0.1:8500, or a free port when taken): what a user runs.
  const proc = spawn(KODAMA, ['demo', '--no-script'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** The demo's `cluster ready: web-1 pid N, …; dashboard: URL` line, parsed (bounded). */
function waitReady(demo: Demo, timeoutMs: number): Promise<{ pids: Map<string, number>; url: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not ready within ${timeoutMs} ms:\n${demo.output()}`)), timeoutMs);
    void demo.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited ${code} before it was ready:\n${demo.output()}`));
    });
    createInterface({ input: demo.proc.stdout! }).on('line', (line) => {
      const m = /cluster ready: (.*); dashboard: (\S+)$/.exec(line);
      if (m === null) return;
      clearTimeout(timer);
      const pids = new Map([...m[1]!.matchAll(/(\S+) pid (\d+)/g)].map((x) => [x[1]!, Number(x[2])]));
      resolve({ pids, url: m[2]! });
    });
  });
}

/** What the page shows for each member right now (for failure messages and diagnostics). */
function shownMembers(page: Page): Promise<Record<string, string | null>> {
  return page.evaluate(() => {
    const out: Record<string, string | null> = {};
    for (const el of (globalThis as unknown as PageGlobals).document.querySelectorAll('[data-member]')) out[el.getAttribute('data-member') ?? '?'] = el.getAttribute('data-status');
    return out;
  });
}

async function stopDemo(demo: Demo, pids: number[]): Promise<void> {
  if (demo.proc.exitCode === null && demo.proc.signalCode === null) {
    demo.proc.kill('SIGTERM');
    const hard = setTimeout(() => demo.proc.kill('SIGKILL'), STOP_BOUND_MS);
    await demo.exited;
    clearTimeout(hard);
  }
  // The nodes leave when the demo's pipe closes; whatever is still there now is killed.
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

async function closeBrowser(browser: Browser): Promise<void> {
  // close() can hang on a wedged browser; playwright kills its child when this process exits anyway.
  await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 10_000).unref())]);
}


test('dashboard of `kodama demo`: every member alive, a SIGKILLed web node turns failed live, screenshot saved', { timeout: 120_000 }, async (t) => {
  if (chromiumMissing(t)) return;
  const t0 = Date.now();
  const demo = startDemo();
  const pids: number[] = [];
  t.after(() => stopDemo(demo, pids));
  const { pids: byName, url } = await waitReady(demo, READY_BOUND_MS);
  pids.push(...byName.values());
  assert.deepEqual([...byName.keys()].sort(), ['web-1', 'web-2', 'web-3'], demo.output());
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/ui\/$/);
  assert.match(demo.output(), new RegExp(`^ {2}dashboard: ${url.replace(/[.?/]/g, '\\$&')}$`, 'm'), 'the header names the dashboard');
  const readyMs = Date.now() - t0;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(() => closeBrowser(browser));
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  let loads = 0;
  page.on('load', () => loads++);
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  // A reload would drop this: the failed state must come through the live stream.
  await page.evaluate(() => ((globalThis as unknown as PageGlobals).kodamaE2e = 'same page'));

  const allAlive = MEMBERS.map((n) => `${UI_SELECTORS.member(n)}[data-status="alive"]`);
  const aliveFrom = Date.now();
  try {
    await page.waitForFunction((sels) => sels.every((s) => (globalThis as unknown as PageGlobals).document.querySelector(s) !== null), allAlive, { timeout: ALIVE_BOUND_MS, polling: 100 });
  } catch (e) {
    assert.fail(`not every member shown alive within ${ALIVE_BOUND_MS} ms: page shows ${JSON.stringify(await shownMembers(page))} (${(e as Error).message.split('\n')[0]})`);
  }
  const aliveMs = Date.now() - aliveFrom;
  await page.waitForSelector(`${UI_SELECTORS.liveIndicator}[data-live="true"]`, { timeout: ALIVE_BOUND_MS });

  const victimPid = byName.get(VICTIM)!;
  assert.ok(alive(victimPid), `${VICTIM} (pid ${victimPid}) runs before the kill`);
  const killAt = Date.now();
  process.kill(victimPid, 'SIGKILL');
  try {
    await page.waitForSelector(`${UI_SELECTORS.member(VICTIM)}[data-status="failed"]`, { timeout: FAILED_BOUND_MS, state: 'attached' });
  } catch (e) {
    assert.fail(`${VICTIM} not shown failed within ${FAILED_BOUND_MS} ms of its SIGKILL: page shows ${JSON.stringify(await shownMembers(page))} (${(e as Error).message.split('\n')[0]})`);
  }
  const failedMs = Date.now() - killAt;
  assert.equal(alive(victimPid), false, `${VICTIM} is dead`);
  assert.equal(loads, 1, 'the page was loaded once: never reloaded or navigated away');
  assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).kodamaE2e), 'same page', 'same document as before the kill');
  const shown = await shownMembers(page);
  for (const n of MEMBERS) assert.ok(n in shown, `${n} still shown: ${JSON.stringify(shown)}`);

  // The services panel follows too: the balancer drops the dead backend, and the page re-reads
  // the (cached, 1.5 s) services view soon after a member event — not only at its 4 s refresh.
  const backendGoneBound = 8_000;
  const backendFrom = Date.now();
  try {
    await page.waitForFunction(
      (sel) => (globalThis as unknown as PageGlobals).document.querySelector(sel) === null,
      `[data-backend$="/${VICTIM}"][data-state="ready"]`,
      { timeout: backendGoneBound, polling: 100 },
    );
  } catch (e) {
    assert.fail(`${VICTIM} still shown as a ready backend ${backendGoneBound} ms after it was shown failed (${(e as Error).message.split('\n')[0]})`);
  }
  t.diagnostic(`${VICTIM} gone from the ready backends on the page ${((Date.now() - backendFrom) / 1000).toFixed(1)} s after it was shown failed`);

  // The plots of the last 15 minutes (GET /v1/history, a point every 10 s, re-read every 4 s):
  // the balancer's backends carry the demo's traffic, and the kill shows in the members plot. A
  // backend's first rate needs two samples that both saw it (up to 2 steps after it joined) and
  // the page's next read (4 s): 24 s from the demo's start at worst, plus slack for a busy machine.
  const plotBound = 35_000;
  const plotFrom = Date.now();
  try {
    await page.waitForFunction(
      () => {
        const d = (globalThis as unknown as PageGlobals).document;
        const reqs = [...d.querySelectorAll('[data-chart="backends-balancer"] polyline[data-series$="req/s"]')];
        return d.querySelector('[data-chart="members"] svg[aria-label*="failed 1"]') !== null &&
          d.querySelector('[data-chart="gossip"] polyline[data-points]') !== null &&
          reqs.length >= 2 && reqs.some((l) => Number(l.getAttribute('data-last')) > 0);
      },
      undefined,
      { timeout: plotBound, polling: 250 },
    );
  } catch (e) {
    const charts = await page.evaluate(() => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-chart] svg')].map((x) => x.getAttribute('aria-label')));
    assert.fail(`the plots did not show the traffic and the failure within ${plotBound} ms: ${JSON.stringify(charts)} (${(e as Error).message.split('\n')[0]})`);
  }
  const points = await page.evaluate(() => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('[data-chart] polyline')].map((x) => Number(x.getAttribute('data-points'))));
  assert.ok(points.length >= 8 && points.every((n) => n >= 1), `every drawn line has points: ${JSON.stringify(points)}`);
  t.diagnostic(`plots showed the traffic and ${VICTIM}'s failure ${((Date.now() - plotFrom) / 1000).toFixed(1)} s after the backend check`);

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  t.diagnostic(`demo ready after ${(readyMs / 1000).toFixed(1)} s; all 4 members alive on the page ${(aliveMs / 1000).toFixed(1)} s after load`);
  t.diagnostic(`${VICTIM} shown failed ${(failedMs / 1000).toFixed(1)} s after SIGKILL (bound ${FAILED_BOUND_MS / 1000} s); members shown: ${JSON.stringify(shown)}`);
  t.diagnostic(`screenshot: ${relative(REPO, SCREENSHOT)}`);
});
