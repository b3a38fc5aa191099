// The dashboard in headless Chromium against a real agent whose API needs a token: the page asks
// for it (a wrong one is refused, the right one kept for the tab), goes live, shows the member,
// and after a reload draws it by the load event with the kept token;
// when the agent dies the live indicator says so, and when it is back on the same address the
// page reconnects by itself (backoff) — no reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { freePort, startKodama } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';
import { CHROMIUM, chromiumMissing } from '../lib/chromium.ts';

const TOKEN = 'ui-test-token-7';
/** node starts the agent on a shared 2-core machine. */
const START_BOUND_MS = 30_000;
/** Backoff 1, 2, 4, 8 s (+20 %) while the agent restarts: live again well within this. */
const RECONNECT_BOUND_MS = 30_000;

/** The agent (its bind port from this file's slot; the same RPC and HTTP ports on a restart), up by its banner and RPC. */
function startAgent(httpPort: number, rpcPort: number): Promise<AgentProcess> {
  return startKodama('ui-t1', {
    rpcPort,
    tags: { role: 'probe' },
    args: ['-http-addr', `127.0.0.1:${httpPort}`, '-http-token', TOKEN],
    startTimeoutMs: START_BOUND_MS,
  });
}

async function waitApi(base: string, agent: AgentProcess, boundMs: number): Promise<void> {
  const until = Date.now() + boundMs;
  while (Date.now() < until) {
    if (agent.hasExited()) throw new Error(agent.report());
    try {
      const r = await fetch(`${base}/v1/agent`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`agent API not up within ${boundMs} ms:\n${agent.output()}`);
}


test('dashboard: asks for the token, goes live, says when the agent is gone, reconnects by itself', async (t) => {
  if (chromiumMissing(t)) return;
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${httpPort}`;
  let agent = await startAgent(httpPort, rpcPort);
  t.after(() => agent.kill());
  await waitApi(base, agent, START_BOUND_MS);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await page.goto(`${base}/ui/`);
  await page.waitForSelector('#token-form:not([hidden])', { timeout: 10_000 });
  assert.equal(await page.getAttribute('#connection', 'data-live'), 'false');
  assert.match(await page.textContent('#connection') ?? '', /token needed/);

  await page.fill('#token-form input', 'not-the-token');
  await page.click('#token-form button');
  await page.waitForSelector('#token-form:not([hidden]) #token-error:text("refused")', { timeout: 10_000 });

  await page.fill('#token-form input', TOKEN);
  await page.click('#token-form button');
  await page.waitForSelector('#connection[data-live="true"]', { timeout: 10_000 });
  await page.waitForSelector('[data-role="probe"] [data-member="ui-t1"][data-status="alive"]', { timeout: 10_000 });
  assert.equal(await page.isHidden('#token-form'), true);
  assert.equal(await page.evaluate('sessionStorage.getItem("kodama-http-token")'), TOKEN, 'kept for this tab');
  assert.match(await page.textContent('#agent') ?? '', /ui-t1/);

  // A reload keeps the token (this tab): the first snapshot is read with it (?token=, the page's
  // JSON-module read) and drawn by the load event — no token form, no wait for the stream.
  await page.reload({ waitUntil: 'load', timeout: 10_000 });
  assert.equal(await page.locator('[data-member="ui-t1"][data-status="alive"]').count(), 1, 'the member is drawn when the page has loaded');
  assert.equal(await page.isHidden('#token-form'), true, 'the stored token was used');
  const snapshotReads = (await page.evaluate("performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/v1/snapshot'))")) as string[];
  assert.equal(snapshotReads.length, 1, `one snapshot read: ${JSON.stringify(snapshotReads)}`);
  assert.match(snapshotReads[0]!, /\/v1\/snapshot\?token=/, 'the module read, with the token in its URL');
  await page.waitForSelector('#connection[data-live="true"]', { timeout: 10_000 });

  await agent.kill();
  const down = Date.now();
  await page.waitForSelector('#connection[data-live="false"]', { timeout: 10_000 });
  t.diagnostic(`indicator offline ${Date.now() - down} ms after the agent died: "${(await page.textContent('#connection'))?.trim()}"`);

  const restarted = Date.now();
  agent = await startAgent(httpPort, rpcPort);
  await waitApi(base, agent, START_BOUND_MS);
  const up = Date.now();
  await page.waitForSelector('#connection[data-live="true"]', { timeout: RECONNECT_BOUND_MS });
  t.diagnostic(`agent back ${up - restarted} ms after restart; page live again ${Date.now() - up} ms later, no reload`);
  // The restarted agent's member list is read again: still one card, alive.
  await page.waitForSelector('[data-member="ui-t1"][data-status="alive"]', { timeout: 10_000 });
  assert.equal(await page.locator('[data-member]').count(), 1);
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
