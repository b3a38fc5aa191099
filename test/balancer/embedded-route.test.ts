// Routes through the embedded proxy (issue 6): the same blue → 10/90 → green cutover as the
// HAProxy test, under load: 0 failed, the split as asked, blue takes nothing new once drained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEmbeddedBalancer } from '../../src/balancer/embedded/index.ts';
import { runRouteSplit } from './route-split.ts';

test('embedded: blue 100 → 10/90 → green 100 under load: 0 failed, split within ±3 points, blue flat after the drain', { timeout: 60_000 }, async (t) => {
  const lb = createEmbeddedBalancer({});
  await lb.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 0 } }]);
  t.after(() => lb.stop());
  const f = await runRouteSplit(t, lb, `http://127.0.0.1:${lb.boundPort('web') ?? 0}/`, { splitRequests: 400 });
  t.diagnostic(
    `load: ok ${f.load.ok}, failed ${f.load.failed}, ${f.load.requestsPerSec} req/s; split weights ${JSON.stringify(f.splitWeights)}: ` +
      `green ${(f.greenShare * 100).toFixed(1)} % of ${f.splitRequests}; drain ${f.drainMs} ms, proxy count growth while draining ` +
      `${f.blueStatsDuringDrain}, blue servers +${f.blueServerDuringDrain} / +${f.blueServerAfterRemoval} after removal`,
  );
  assert.equal(f.load.failed, 0, `failed: ${JSON.stringify(f.load.failures.slice(0, 3))}`);
  // Smooth weighted round-robin is exact up to one cycle of 568 picks; allow for the window edges.
  assert.ok(Math.abs(f.greenShare - 0.9) <= 0.03, `green share ${f.greenShare}`);
  assert.equal(f.blueStatsDuringDrain, 0);
  assert.ok(f.blueServerDuringDrain <= 4);
  assert.equal(f.blueServerAfterRemoval, 0);
  assert.equal(f.blueAnswersAfterRemoval, 0);
  assert.deepEqual(f.removedChanges, ['b1(idle)', 'b2(idle)']);
  assert.equal(f.greenErrors, 0);
  assert.ok(f.greenRequests > 0);
});

test('embedded: per-backend errors count 5xx answers and failed connects, requests count everything sent', { timeout: 20_000 }, async (t) => {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(req.url === '/fail' ? 500 : 200);
    res.end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const okPort = (server.address() as AddressInfo).port;
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  const lb = createEmbeddedBalancer({});
  await lb.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 0 } }]);
  t.after(() => lb.stop());
  const url = `http://127.0.0.1:${lb.boundPort('web') ?? 0}`;
  await lb.setBackends('web', [{ id: 'five', host: '127.0.0.1', port: okPort, weight: 100, state: 'ready' }]);
  for (const path of ['/', '/', '/fail', '/fail', '/fail']) await (await fetch(url + path)).arrayBuffer();
  const five = (await lb.stats('web')).find((s) => s.id === 'five');
  await lb.setBackends('web', [{ id: 'dead', host: '127.0.0.1', port: deadPort, weight: 100, state: 'ready' }]);
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await fetch(url + '/');
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  const deadStats = (await lb.stats('web')).find((s) => s.id === 'dead');
  t.diagnostic(`five: ${JSON.stringify(five)}; dead: ${JSON.stringify(deadStats)}, clients got ${statuses.join(',')}`);
  assert.deepEqual(five, { id: 'five', activeSessions: 0, totalSessions: 5, errors: 3 });
  assert.deepEqual(statuses, [503, 503]);
  assert.ok(deadStats !== undefined && deadStats.errors >= 2 && deadStats.errors === deadStats.totalSessions, JSON.stringify(deadStats));
});
