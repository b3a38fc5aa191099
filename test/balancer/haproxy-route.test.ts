// Routes through real HAProxy 2.6 (issue 6): a blue → green cutover in route steps under steady
// load is runtime-API only (0 reloads), fails no request, splits 10/90 as asked, and the drained
// blue fleet takes nothing new. Also: the per-backend error figures come from HAProxy's counters.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHaproxyBalancer } from '../../src/balancer/haproxy/index.ts';
import type { HaproxyBalancer } from '../../src/balancer/haproxy/index.ts';
import { HAPROXY, freeFrontendPort } from './haproxy-helpers.ts';
import { runRouteSplit } from './route-split.ts';

async function setup(t: TestContext): Promise<{ balancer: HaproxyBalancer; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-haproxy-route-'));
  const balancer = createHaproxyBalancer({ binary: HAPROXY, dir, slots: 4, reloadDebounceMs: 1000, log: () => undefined });
  t.after(async () => {
    await balancer.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const port = await freeFrontendPort();
  await balancer.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port } }]);
  return { balancer, port };
}

test('HAProxy: blue 100 → 10/90 → green 100 under load: 0 reloads, 0 failed, split within ±4 points, blue flat after the drain', { timeout: 60_000 }, async (t) => {
  const { balancer, port } = await setup(t);
  const f = await runRouteSplit(t, balancer, `http://127.0.0.1:${port}/`);
  t.diagnostic(
    `load: ok ${f.load.ok}, failed ${f.load.failed}, ${f.load.requestsPerSec} req/s, p99 ${f.load.p99Ms} ms; ` +
      `split weights ${JSON.stringify(f.splitWeights)}: green ${(f.greenShare * 100).toFixed(1)} % of ${f.splitRequests}; ` +
      `drain ${f.drainMs} ms (blue in flight at drain ${f.blueStatsAtDrain}, HAProxy stot growth while draining ${f.blueStatsDuringDrain}, ` +
      `blue servers: +${f.blueServerDuringDrain} while draining, +${f.blueServerAfterRemoval} after removal); ` +
      `removed ${f.removedChanges.join(', ')}; green requests ${f.greenRequests}, errors ${f.greenErrors}`,
  );
  assert.equal(f.load.failed, 0, `failed: ${JSON.stringify(f.load.failures.slice(0, 3))}`);
  assert.ok(Math.abs(f.greenShare - 0.9) <= 0.04, `green share ${f.greenShare}`);
  // Drain is a runtime state change: HAProxy picks no blue server for anything new, so its own
  // count of requests sent to blue does not move; the servers see at most what was on its way.
  assert.equal(f.blueStatsDuringDrain, 0);
  assert.ok(f.blueServerDuringDrain <= 4, `blue servers took ${f.blueServerDuringDrain} while draining (4 load workers)`);
  assert.equal(f.blueServerAfterRemoval, 0);
  assert.equal(f.blueAnswersAfterRemoval, 0);
  assert.deepEqual(f.removedChanges, ['b1(idle)', 'b2(idle)']);
  assert.equal(f.greenErrors, 0);
  assert.ok(f.greenRequests > 0);
  assert.deepEqual(f.rollbackServed, ['b1:ready', 'b2:ready'], 'back to blue: green drained and removed');
  assert.equal(balancer.counters().reloads, 0);
  assert.equal((await balancer.showProc()).reloads, 0, "HAProxy's master reloaded");
});

test('HAProxy: direct cutover blue 100 → green 100 (green never served before) and back under load: 0 failed, 0 reloads', { timeout: 60_000 }, async (t) => {
  const { balancer, port } = await setup(t);
  const f = await runRouteSplit(t, balancer, `http://127.0.0.1:${port}/`, { direct: true });
  t.diagnostic(`load: ok ${f.load.ok}, failed ${f.load.failed}, p99 ${f.load.p99Ms} ms; drain ${f.drainMs} ms; blue after removal +${f.blueServerAfterRemoval}; back: ${f.rollbackServed.join(' ')}`);
  // One set drains blue and adds green: green must be in rotation before blue leaves it.
  assert.equal(f.load.failed, 0, `failed: ${JSON.stringify(f.load.failures.slice(0, 3))}`);
  assert.equal(f.blueServerAfterRemoval, 0);
  assert.deepEqual(f.rollbackServed, ['b1:ready', 'b2:ready']);
  assert.equal((await balancer.showProc()).reloads, 0);
});

test('HAProxy: per-backend errors count 5xx answers and failed connects, requests count everything sent', { timeout: 30_000 }, async (t) => {
  const { balancer, port } = await setup(t);
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(req.url === '/fail' ? 500 : 200);
    res.end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const okPort = (server.address() as AddressInfo).port;
  // A port nobody listens on: bind one, close it.
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  await balancer.setBackends('web', [{ id: 'five', host: '127.0.0.1', port: okPort, weight: 100, state: 'ready' }]);
  for (const path of ['/', '/', '/fail', '/fail', '/fail']) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    await res.arrayBuffer();
  }
  const five = (await balancer.stats('web')).find((s) => s.id === 'five');
  await balancer.setBackends('web', [{ id: 'dead', host: '127.0.0.1', port: deadPort, weight: 100, state: 'ready' }]);
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    await res.arrayBuffer();
  }
  const deadStats = (await balancer.stats('web')).find((s) => s.id === 'dead');
  t.diagnostic(`five: ${JSON.stringify(five)}; dead: ${JSON.stringify(deadStats)}`);
  assert.equal(five?.totalSessions, 5);
  assert.equal(five?.errors, 3);
  // The dead backend reused a slot: figures start from 0 when it got the slot.
  assert.ok(deadStats !== undefined && deadStats.errors >= 2, JSON.stringify(deadStats));
  assert.ok(deadStats.totalSessions >= 2);
});
