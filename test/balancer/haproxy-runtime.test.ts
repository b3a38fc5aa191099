// The HAProxy driver against real HAProxy 2.6 and real traffic: backend changes go through the
// runtime API only (no reload), under steady load, without failed requests; a killed backend
// costs at most what was in flight to it; slots grow with `add server` and the file follows;
// restart() brings back the same backends.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHaproxyBalancer, HaproxyError } from '../../src/balancer/haproxy/index.ts';
import { parseServersState, sendCommand } from '../../src/balancer/haproxy/runtime.ts';
import type { HaproxyBalancer } from '../../src/balancer/haproxy/index.ts';
import type { Backend } from '../../src/discovery/types.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import type { LoadRun } from '../../src/demo/loadgen.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { WebServer } from '../../src/demo/web-server.ts';
import { HAPROXY, freeFrontendPort as freePort } from './haproxy-helpers.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

interface Setup {
  balancer: HaproxyBalancer;
  port: number;
  dir: string;
  logs: string[];
}

async function setup(t: TestContext, slots: number): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-haproxy-'));
  const logs: string[] = [];
  const balancer = createHaproxyBalancer({
    binary: HAPROXY,
    dir,
    slots,
    reloadDebounceMs: 1000,
    log: (level, msg) => logs.push(`${level} ${msg}`),
  });
  t.after(async () => {
    await balancer.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  await balancer.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port } }]);
  return { balancer, port, dir, logs };
}

/**
 * The invariant "the file on disk equals the running state", checked from the outside: every
 * `server` line of the file against HAProxy's own `show servers state`.
 */
async function assertFileMatchesRunning(balancer: HaproxyBalancer, dir: string, service: string): Promise<void> {
  const cfg = await readFile(balancer.configPath, 'utf8');
  const lines = [...cfg.matchAll(/^ {4}server (\S+) (\S+):(\d+) weight (\d+)( disabled)?(?:\s+#.*?(draining \(weight (\d+)\))?)?$/gm)];
  const running = parseServersState(await sendCommand(join(dir, 'admin.sock'), `show servers state be_${service}`));
  assert.equal(lines.length, running.length, `file has ${lines.length} server lines, HAProxy ${running.length}`);
  for (const m of lines) {
    const [, name, host, port, weight, disabled, draining, drainWeight] = m;
    const row = running.find((r) => r.server === name);
    assert.ok(row !== undefined, `${name} is in the file but not in HAProxy`);
    const maint = row.opState === 0 || (row.adminState & 0x01) !== 0;
    assert.equal(maint, disabled !== undefined, `${name}: maint ${maint} vs file ${m[0]}`);
    if (disabled !== undefined) continue;
    assert.equal(`${row.addr}:${row.port}`, `${host}:${port}`, `${name} address`);
    assert.equal((row.adminState & 0x08) !== 0, draining !== undefined, `${name}: drain vs file ${m[0]}`);
    assert.equal(row.userWeight, Number(draining !== undefined ? drainWeight : weight), `${name} weight`);
  }
}

function backend(w: { node: string; host: string; port: number }, state: Backend['state'] = 'ready', weight = 100): Backend {
  return { id: w.node, host: w.host, port: w.port, weight, state };
}

async function webServers(t: TestContext, names: string[], delayMs: number): Promise<WebServer[]> {
  const ws = await Promise.all(names.map((node) => startWebServer({ node, delayMs })));
  t.after(() => Promise.all(ws.map((w) => w.close())));
  return ws;
}

function load(t: TestContext, port: number, durationMs: number): LoadRun {
  const run = startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 4, durationMs, pauseMs: 5, timeoutMs: 5000 });
  t.after(() => run.stop());
  return run;
}

test('backends added, drained and removed under steady load: 0 failed requests, no reload', async (t) => {
  const { balancer, port, dir } = await setup(t, 4);
  const [a, b, c] = (await webServers(t, ['a', 'b', 'c'], 20)) as [WebServer, WebServer, WebServer];
  await balancer.setBackends('web', [backend(a), backend(b)]);
  const run = load(t, port, 30_000);
  await waitFor('a and b to serve', () => a.requests > 5 && b.requests > 5);

  // A joins: c gets traffic without a reload.
  await balancer.setBackends('web', [backend(a), backend(b), backend(c)]);
  await waitFor('c to get requests', () => c.requests > 5);

  // A leaves gracefully: drain, wait until idle, then remove.
  await balancer.setBackends('web', [backend(a, 'drain'), backend(b), backend(c)]);
  await assertFileMatchesRunning(balancer, dir, 'web');
  const aAtDrain = a.requests;
  await waitFor('a to be idle', async () => {
    const st = await balancer.stats('web');
    return st.find((s) => s.id === 'a')?.activeSessions === 0;
  });
  const aAtRemoval = a.requests;
  // Draining sends nothing new: at most what was already on its way (4 load workers).
  assert.ok(aAtRemoval - aAtDrain <= 4, `a took ${aAtRemoval - aAtDrain} requests while draining`);
  await balancer.setBackends('web', [backend(b), backend(c)]);
  const removedAt = Date.now();
  await assertFileMatchesRunning(balancer, dir, 'web');
  await sleep(500);
  const bBefore = b.requests;
  const cBefore = c.requests;
  await sleep(500);
  const summary = await run.stop();

  t.diagnostic(`ok ${summary.ok}, failed ${summary.failed}, by node ${JSON.stringify(summary.byNode)}, p99 ${summary.p99Ms} ms`);
  assert.equal(summary.failed, 0, `failed requests: ${JSON.stringify(summary.failures.slice(0, 3))}`);
  assert.ok(summary.ok > 100, `too little traffic to judge: ${summary.ok}`);
  // Drained before removal: a took (almost) nothing new once it was draining; nothing after removal.
  assert.ok(a.requests - aAtRemoval <= 0, `a answered ${a.requests - aAtRemoval} requests after it was idle and removed`);
  assert.ok(b.requests > bBefore && c.requests > cBefore, 'b and c keep serving');
  const after = summarise(run.records, removedAt);
  assert.equal(after.byNode.a ?? 0, 0, 'no answer from a after removal');

  const counters = balancer.counters();
  assert.equal(counters.reloads, 0);
  assert.equal(counters.errors, 0);
  assert.ok((counters.runtime_commands ?? 0) > 0);
  // HAProxy's own count agrees: the master never reloaded.
  const proc = await balancer.showProc();
  assert.equal(proc.reloads, 0);
  // The file on disk names exactly b and c.
  const cfg = await readFile(balancer.configPath, 'utf8');
  assert.match(cfg, new RegExp(`server slot\\d+ 127\\.0\\.0\\.1:${b.port} weight 100`));
  assert.match(cfg, new RegExp(`server slot\\d+ 127\\.0\\.0\\.1:${c.port} weight 100`));
  assert.doesNotMatch(cfg, new RegExp(`:${a.port} `));
});

/** An HTTP server that can die abruptly (every socket destroyed at once), like a killed process. */
async function killableServer(t: TestContext, node: string, delayMs: number): Promise<{ node: string; host: string; port: number; requests: () => number; kill: () => void }> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createHttpServer((req, res) => {
    requests++;
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'x-kodama-node': node });
      res.end(`hello from ${node}\n`);
    }, delayMs);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kill = (): void => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  t.after(kill);
  return { node, host: '127.0.0.1', port: (server.address() as AddressInfo).port, requests: () => requests, kill };
}

test('a killed backend costs at most the requests in flight to it, none after it is removed', async (t) => {
  const { balancer, port } = await setup(t, 4);
  const [a, b] = (await webServers(t, ['a', 'b'], 10)) as [WebServer, WebServer];
  const k = await killableServer(t, 'k', 30);
  await balancer.setBackends('web', [backend(a), backend(b), backend(k)]);
  const run = load(t, port, 30_000);
  await waitFor('k to serve', () => k.requests() > 10);

  const killedAt = Date.now();
  k.kill();
  // Detection takes a while in real life; keep it "alive" in HAProxy for a second: new requests
  // sent to it fail to connect and are redispatched.
  await sleep(1000);
  await balancer.setBackends('web', [backend(a), backend(b)]);
  const removedAt = Date.now();
  await sleep(1000);
  const summary = await run.stop();

  const before = summarise(run.records, 0, killedAt);
  const between = summarise(run.records, killedAt, removedAt);
  const after = summarise(run.records, removedAt);
  t.diagnostic(`ok ${summary.ok}, failed ${summary.failed} (${summary.failures.map((f) => f.error ?? f.status).join(', ')}), k answered ${k.requests()}`);
  assert.equal(before.failed, 0);
  // At most the 4 load workers' requests were in flight to k when it died.
  assert.ok(summary.failed <= 4, `failures ${summary.failed}: ${JSON.stringify(summary.failures.slice(0, 4))}`);
  assert.ok(between.ok > 20, `traffic kept flowing while k was dead but listed (${between.ok} ok)`);
  assert.equal(after.failed, 0);
  assert.ok(after.ok > 20);
  assert.equal(balancer.counters().reloads, 0);
});

test('slots grow with add server beyond `slots`; the file lists the new slots; restart() brings back the same backends', async (t) => {
  const { balancer, port, dir } = await setup(t, 1);
  const ws = await webServers(t, ['a', 'b', 'c'], 0);
  const [a, b, c] = ws as [WebServer, WebServer, WebServer];
  await balancer.setBackends('web', [backend(a), backend(b, 'ready', 50), backend(c)]);
  assert.equal(balancer.counters().slot_grows, 2);
  const cfg = await readFile(balancer.configPath, 'utf8');
  assert.match(cfg, new RegExp(`server slot0 127\\.0\\.0\\.1:${a.port} weight 100`));
  assert.match(cfg, new RegExp(`server slot1 127\\.0\\.0\\.1:${b.port} weight 50`));
  assert.match(cfg, new RegExp(`server slot2 127\\.0\\.0\\.1:${c.port} weight 100`));

  const first = await startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 4, durationMs: 10_000, maxRequests: 200, pauseMs: 2 }).done;
  assert.equal(first.failed, 0);
  assert.deepEqual(Object.keys(first.byNode).sort(), ['a', 'b', 'c']);

  // A draining backend survives the restart as draining (the file has it at weight 0).
  await balancer.setBackends('web', [backend(a), backend(b, 'ready', 50), backend(c, 'drain')]);
  await assertFileMatchesRunning(balancer, dir, 'web');
  const cBeforeRestart = c.requests;
  await balancer.restart();
  await assertFileMatchesRunning(balancer, dir, 'web');
  const second = await startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 4, durationMs: 10_000, maxRequests: 200, pauseMs: 2 }).done;
  assert.equal(second.failed, 0);
  assert.deepEqual(Object.keys(second.byNode).sort(), ['a', 'b'], 'the same ready backends answer after restart');
  assert.equal(c.requests, cBeforeRestart, 'the draining backend gets nothing new after restart');
  assert.deepEqual((await balancer.stats('web')).map((s) => s.id).sort(), ['a', 'b', 'c']);
  // HAProxy came back from the file (new master, no reload) and its runtime state was verified.
  const counters = balancer.counters();
  assert.equal(counters.restarts, 1);
  assert.equal(counters.reloads, 0);
  assert.equal(counters.errors, 0);

  // Taking the draining one out and putting it back re-uses its slot: no further growth.
  await balancer.setBackends('web', [backend(a), backend(b, 'ready', 50)]);
  await assertFileMatchesRunning(balancer, dir, 'web');
  await balancer.setBackends('web', [backend(a), backend(b, 'ready', 50), backend(c)]);
  await assertFileMatchesRunning(balancer, dir, 'web');
  assert.equal(balancer.counters().slot_grows, 2);
  await waitFor('c back in rotation', async () => {
    await startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 1, durationMs: 2000, maxRequests: 6 }).done;
    return c.requests > cBeforeRestart;
  });
});

test('a dead HAProxy master is detected; calls say so; restart() brings back the same backends', async (t) => {
  const { balancer, port, logs } = await setup(t, 2);
  const [a, b] = (await webServers(t, ['a', 'b'], 0)) as [WebServer, WebServer];
  await balancer.setBackends('web', [backend(a), backend(b)]);
  const { masterPid } = await balancer.showProc();
  process.kill(masterPid, 'SIGKILL');
  await waitFor('the master death to be noticed', () => balancer.counters().master_deaths === 1);
  assert.ok(logs.some((l) => l.startsWith('ERR') && l.includes('died')), 'logged as an error');
  await assert.rejects(
    balancer.setBackends('web', [backend(a)]),
    (e: unknown) => e instanceof HaproxyError && e.code === 'ERR_HAPROXY_STATE' && /restart\(\)/.test(e.message),
  );

  await balancer.restart();
  const s = await startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 2, durationMs: 10_000, maxRequests: 40 }).done;
  assert.equal(s.failed, 0);
  assert.deepEqual(Object.keys(s.byNode).sort(), ['a', 'b']);
  assert.notEqual((await balancer.showProc()).masterPid, masterPid);
});

test('a backend that moves (same id, new port) or changes weight is updated in place, without failures', async (t) => {
  const { balancer, port } = await setup(t, 2);
  // 5 ms per request: under load there is always a request in flight when a move starts.
  const [a, b, b2] = (await webServers(t, ['a', 'b', 'b2'], 5)) as [WebServer, WebServer, WebServer];
  await balancer.setBackends('web', [backend(a), backend(b)]);
  const run = load(t, port, 30_000);
  await waitFor('a and b to serve', () => a.requests > 5 && b.requests > 5);

  // Node "b" now answers on b2's port (a member-update with another port), back, … 5 moves:
  // once setBackends returned, the old port gets nothing (requests in flight to it end before
  // the slot is re-pointed, so none hands an old connection back to HAProxy's pool).
  let at = b;
  for (let i = 0; i < 5; i++) {
    const to = at === b ? b2 : b;
    await balancer.setBackends('web', [backend(a), { ...backend(to), id: 'b' }]);
    const toBefore = to.requests;
    const oldAfter = at.requests;
    await waitFor('the new port to get requests', () => to.requests > toBefore + 5);
    assert.equal(at.requests, oldAfter, `move ${i + 1}: the old port gets nothing once moved`);
    at = to;
  }
  assert.equal(at, b2, 'five moves end on b2');

  // Weight 300 vs 100: roundrobin sends b about three times as much.
  await balancer.setBackends('web', [backend(a), { ...backend(b2, 'ready', 250), id: 'b' }]);
  const from = Date.now();
  await sleep(1500);
  const summary = await run.stop();
  const share = summarise(run.records, from);
  const ratio = (share.byNode.b2 ?? 0) / Math.max(1, share.byNode.a ?? 0);
  t.diagnostic(`after weight change: ${JSON.stringify(share.byNode)} (ratio ${ratio.toFixed(2)})`);
  assert.ok(ratio > 1.8 && ratio < 3.5, `b2:a = ${ratio}`);
  assert.equal(summary.failed, 0);
  assert.equal(balancer.counters().reloads, 0);
  assert.deepEqual(
    balancer.counters().slot_grows,
    0,
    'two backends in two slots: moving one re-points its slot, no growth',
  );
  assert.match(await readFile(balancer.configPath, 'utf8'), new RegExp(`server slot1 127\\.0\\.0\\.1:${b2.port} weight 250  # b`));
});
