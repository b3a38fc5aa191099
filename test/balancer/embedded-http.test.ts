// The embedded proxy in HTTP mode under real traffic: demo web servers behind it, the demo load
// generator in front (a few workers with a small pause, light on a shared CPU).
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createEmbeddedBalancer } from '../../src/balancer/embedded/index.ts';
import type { EmbeddedBalancer, EmbeddedBalancerOptions } from '../../src/balancer/embedded/index.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import type { LoadRun } from '../../src/demo/loadgen.ts';
import type { Backend } from '../../src/discovery/types.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface Target {
  node: string;
  host: string;
  port: number;
}

const be = (w: Target, weight = 100, state: Backend['state'] = 'ready'): Backend => ({
  id: w.node,
  host: w.host,
  port: w.port,
  weight,
  state,
});

async function startProxy(t: TestContext, opts: EmbeddedBalancerOptions = {}): Promise<{ lb: EmbeddedBalancer; url: string }> {
  const lb = createEmbeddedBalancer(opts);
  await lb.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 0 } }]);
  t.after(() => lb.stop());
  return { lb, url: `http://127.0.0.1:${lb.boundPort('web') ?? 0}/` };
}

async function web(t: TestContext, node: string, delayMs = 0): Promise<Awaited<ReturnType<typeof startWebServer>>> {
  const w = await startWebServer({ node, delayMs });
  t.after(() => w.close());
  return w;
}

function load(t: TestContext, url: string): LoadRun {
  const run = startLoad({ url, concurrency: 4, durationMs: 30_000, pauseMs: 5, timeoutMs: 3000 });
  t.after(() => run.stop());
  return run;
}

/** A web server that can die abruptly: listener and every connection cut at once. */
async function startKillable(t: TestContext, node: string, delayMs: number): Promise<Target & { requests: number; kill(): void }> {
  const sockets = new Set<Socket>();
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(200, { 'x-kodama-node': node });
        res.end(`hello from ${node}\n`);
      }, delayMs),
    );
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const kill = (): void => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  t.after(kill);
  return {
    node,
    host: '127.0.0.1',
    port,
    get requests() {
      return state.requests;
    },
    kill,
  };
}

/** A port nothing listens on (bound then released). */
async function deadPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

test('distribution follows weights (1:3) under load', async (t) => {
  const a = await web(t, 'a');
  const b = await web(t, 'b');
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a, 50), be(b, 150)]);
  const run = load(t, url);
  await waitFor('400 answers', () => run.records.length >= 400, 20_000);
  const s = await run.stop();
  assert.equal(s.failed, 0);
  const share = (s.byNode.b ?? 0) / s.ok;
  assert.ok(Math.abs(share - 0.75) < 0.02, `b got ${(share * 100).toFixed(1)}% of ${s.ok}, want 75%`);
  const stats = await lb.stats('web');
  assert.equal(stats.find((x) => x.id === 'b')?.totalSessions, b.requests);
  assert.equal(lb.counters().requests, s.sent);
});

test('backends added, drained and removed under steady load: 0 failed; a newcomer is used within 1 s', async (t) => {
  const a = await web(t, 'a', 20);
  const b = await web(t, 'b', 20);
  const c = await web(t, 'c', 20);
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a), be(b)]);
  const run = load(t, url);
  await waitFor('traffic on a and b', () => a.requests > 20 && b.requests > 20);

  const addedAt = Date.now();
  await lb.setBackends('web', [be(a), be(b), be(c)]);
  await waitFor('first request on c', () => c.firstRequestAt !== undefined, 3000);
  const firstMs = (c.firstRequestAt ?? Infinity) - addedAt;
  assert.ok(firstMs <= 1000, `c got its first request ${firstMs} ms after it was added`);
  await waitFor('traffic on c', () => c.requests > 20);

  await lb.setBackends('web', [be(a), be(b, 100, 'drain'), be(c)]);
  const bTotalAtDrain = (await lb.stats('web')).find((x) => x.id === 'b')?.totalSessions;
  await waitFor('b idle', async () => (await lb.stats('web')).find((x) => x.id === 'b')?.activeSessions === 0);
  const bServed = b.requests;
  await sleep(300);
  assert.equal(b.requests, bServed, 'a drained backend gets no new request');
  assert.equal((await lb.stats('web')).find((x) => x.id === 'b')?.totalSessions, bTotalAtDrain);
  await lb.setBackends('web', [be(a), be(c)]);
  const removedAt = Date.now();
  await waitFor('traffic after removal', () => summarise(run.records, removedAt).ok > 50);

  const s = await run.stop();
  assert.equal(s.failed, 0, JSON.stringify(s.failures.slice(0, 3)));
  assert.ok(s.ok > 100, `${s.ok} answers`);
  assert.equal(b.requests, bServed);
  assert.deepEqual(
    (await lb.stats('web')).map((x) => x.id),
    ['a', 'c'],
  );
  assert.equal(lb.counters().upstream_errors, 0);
});

test('a killed backend costs at most the requests in flight to it, none after; removal is final', async (t) => {
  const a = await startKillable(t, 'a', 30);
  const b = await startKillable(t, 'b', 30);
  const c = await startKillable(t, 'c', 30);
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a), be(b), be(c)]);
  const run = load(t, url);
  await waitFor('traffic on every backend', () => a.requests > 10 && b.requests > 10 && c.requests > 10);

  const killedAt = Date.now();
  b.kill();
  // The cluster has not noticed yet: the proxy still lists b and has to route around it.
  await waitFor('answers after the kill', () => summarise(run.records, killedAt + 1).ok > 30);
  const connectFailures = lb.counters().connect_failures;
  await lb.setBackends('web', [be(a), be(c)]);
  const removedAt = Date.now();
  await waitFor('answers after removal', () => summarise(run.records, removedAt).ok > 30);
  const s = await run.stop();

  const failures = run.records.filter((r) => !r.ok);
  assert.ok(failures.length <= 4, `at most the 4 requests in flight fail, got ${failures.length}`);
  for (const f of failures) assert.ok(f.startMs <= killedAt, `failure started after the kill: ${JSON.stringify(f)}`);
  assert.ok(connectFailures >= 1, 'the dead backend was tried and routed around');
  assert.equal(summarise(run.records, killedAt + 1).failed, 0);
  // Traffic kept flowing. The waits above guarantee > 30 answers after the kill and ≥ 33 requests
  // started before it (at most 4 of them lost): ≥ 60 in all. A fixed "> 100" failed once on a
  // loaded CI machine.
  assert.ok(s.ok >= 60, `answers: ${s.ok}`);
  assert.deepEqual(
    (await lb.stats('web')).map((x) => x.id),
    ['a', 'c'],
  );
});

test('no backend → 503 saying so; the first backend set brings it back', async (t) => {
  const { lb, url } = await startProxy(t);
  const r = await get(url);
  assert.equal(r.status, 503);
  assert.match(r.body, /no backend available for service "web"/);
  assert.equal(lb.counters().no_backend, 1);
  const a = await web(t, 'a');
  await lb.setBackends('web', [be(a)]);
  const ok = await get(url);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'hello from a\n');
  // Everything drained → 503 again, not a hang.
  await lb.setBackends('web', [be(a, 100, 'drain')]);
  assert.equal((await get(url)).status, 503);
});

test('a dead backend costs a retry, not a failure; a POST body reaches the live backend intact', async (t) => {
  const echo: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-kodama-node': 'echo', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => echo.close());
  const live = { node: 'live', host: '127.0.0.1', port: (echo.address() as AddressInfo).port };
  // The proxy first: a port freed by deadPort() could otherwise be handed to the proxy's own
  // listener (bind to port 0), and the "dead" backend would be the proxy itself — a request
  // looping through it (seen in CI: X-Forwarded-For with 100 hops).
  const { lb, url } = await startProxy(t);
  const dead = { node: 'dead', host: '127.0.0.1', port: await deadPort() };
  // The dead backend is listed first with a big weight: it is picked first.
  await lb.setBackends('web', [be(dead, 200), be(live, 1)]);
  const big = 'x'.repeat(200_000);
  const r = await get(`${url}submit?q=1`, {
    method: 'POST',
    body: big,
    headers: { 'x-forwarded-for': '10.0.0.1', 'x-custom': 'yes', 'proxy-authorization': 'secret' },
  });
  assert.equal(r.status, 201);
  const seen = JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string>; body: string };
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/submit?q=1');
  assert.equal(seen.body.length, big.length);
  assert.equal(seen.headers['x-custom'], 'yes');
  assert.equal(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  assert.equal(seen.headers['proxy-authorization'], undefined, 'hop-by-hop headers are not forwarded');
  assert.equal(r.headers.get('keep-alive'), 'timeout=30', "the client sees the proxy's own keep-alive, not the backend's");
  const c = lb.counters();
  assert.ok(c.connect_failures >= 1 && c.retries >= 1, JSON.stringify(c));
  assert.equal(c.upstream_errors, 0);
  // With every backend dead, the answer says none could be reached.
  await lb.setBackends('web', [be(dead)]);
  const none = await get(url);
  assert.equal(none.status, 503);
  assert.match(none.body, /could be reached/);
});

test('upstream failures after sending: reset or non-HTTP answer → 502, silence → 504 (counted)', async (t) => {
  const rude = createServer((req) => req.socket.destroy());
  const silent = createServer(() => {});
  for (const s of [rude, silent]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.after(() => {
      s.closeAllConnections();
      s.close();
    });
  }
  const { lb, url } = await startProxy(t, { requestTimeoutMs: 300 });
  await lb.setBackends('web', [be({ node: 'rude', host: '127.0.0.1', port: (rude.address() as AddressInfo).port })]);
  const r502 = await get(url);
  assert.equal(r502.status, 502);
  // A backend that answers something that is not HTTP is an upstream error too.
  const liar = createTcpServer((s) => {
    s.on('error', () => {});
    s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  t.after(() => liar.close());
  await lb.setBackends('web', [be({ node: 'liar', host: '127.0.0.1', port: (liar.address() as AddressInfo).port })]);
  assert.equal((await get(url)).status, 502);
  await lb.setBackends('web', [be({ node: 'silent', host: '127.0.0.1', port: (silent.address() as AddressInfo).port })]);
  const started = Date.now();
  const r504 = await get(url);
  assert.equal(r504.status, 504);
  assert.ok(Date.now() - started >= 250, 'the timeout was waited for');
  const c = lb.counters();
  assert.equal(c.upstream_errors, 3);
  assert.equal(c.timeouts, 1);
  assert.equal((await lb.stats('web'))[0]?.activeSessions, 0, 'failed requests are not left counted as active');
});

test('setFrontends adds and removes a listener without disturbing the other', async (t) => {
  const a = await web(t, 'a');
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a)]);
  await lb.setBackends('api', [be(a)]);
  const run = load(t, url);
  await waitFor('traffic', () => run.records.length > 50);
  const web0 = { service: 'web', mode: 'http' as const, bind: { host: '127.0.0.1', port: lb.boundPort('web') ?? 0 } };
  await lb.setFrontends([web0, { service: 'api', mode: 'http', bind: { host: '127.0.0.1', port: 0 } }]);
  const apiPort = lb.boundPort('api');
  assert.ok(apiPort !== undefined && apiPort > 0);
  assert.equal((await get(`http://127.0.0.1:${apiPort}/`)).status, 200);
  assert.equal(lb.counters().frontends, 2);
  await lb.setFrontends([web0]);
  assert.equal(lb.boundPort('api'), undefined);
  await assert.rejects(get(`http://127.0.0.1:${apiPort}/`), 'the removed frontend no longer listens');
  const after = Date.now();
  await waitFor('traffic after the change', () => summarise(run.records, after).ok > 30);
  const s = await run.stop();
  assert.equal(s.failed, 0);
  assert.equal(lb.counters().frontends, 1);
  await assert.rejects(lb.setFrontends([web0, web0]), { code: 'ERR_PROXY_CONFIG' });
});

function rawExchange(port: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.setTimeout(3000, () => s.destroy());
    s.write(payload);
  });
}

test('hostile input is answered 400/405/431 and dropped; the proxy keeps serving', async (t) => {
  const a = await web(t, 'a');
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a)]);
  const port = lb.boundPort('web') ?? 0;
  const garbage = [
    '\x00\x01\x02\x03 garbage\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'GET /\x7f HTTP/1.1\r\n\r\n',
    `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
    'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n',
  ];
  for (const g of garbage) {
    const answer = await rawExchange(port, g);
    assert.match(answer, /^HTTP\/1\.1 4(00|05|31) /, `answer to ${JSON.stringify(g.slice(0, 40))}: ${answer.slice(0, 60)}`);
  }
  // A client that hangs up mid-request.
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
  await sleep(50);
  s.destroy();
  // HTTP/1.0 without Host still reaches the backend (the proxy supplies one).
  const h10 = await rawExchange(port, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(h10, /^HTTP\/1\.1 200 [\s\S]*hello from a/);
  const ok = await get(url);
  assert.equal(ok.status, 200);
  assert.ok(lb.counters().bad_requests >= garbage.length);
  await waitFor('no request left active', async () => (await lb.stats('web'))[0]?.activeSessions === 0, 2000);
});

test('pooled connections to a drained or removed backend are closed once idle', async (t) => {
  const open = new Set<Socket>();
  const server = createServer((req, res) => {
    req.resume();
    res.end('ok');
  });
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const target = { node: 'k', host: '127.0.0.1', port: (server.address() as AddressInfo).port };
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(target)]);
  await Promise.all([get(url), get(url), get(url)]);
  assert.ok(open.size >= 1, 'the proxy keeps upstream connections alive');
  await lb.setBackends('web', [be(target, 100, 'drain')]);
  await waitFor('pooled connections closed after drain', () => open.size === 0, 2000);
  await lb.setBackends('web', [be(target)]);
  await get(url);
  assert.equal(open.size, 1);
  await lb.setBackends('web', []);
  await waitFor('pooled connections closed after removal', () => open.size === 0, 2000);
});

test('a client that shuts its write side after the request still gets the answer', async (t) => {
  const a = await web(t, 'a', 50);
  const { lb } = await startProxy(t);
  await lb.setBackends('web', [be(a)]);
  const answer = await new Promise<string>((resolve) => {
    const s = connect({ port: lb.boundPort('web') ?? 0, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.setTimeout(3000, () => s.destroy());
    s.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 200 [\s\S]*hello from a/);
});

test('stop() lets a request in flight finish, then the port is closed', async (t) => {
  const a = await web(t, 'a', 300);
  const { lb, url } = await startProxy(t);
  await lb.setBackends('web', [be(a)]);
  const pending = get(url);
  await waitFor('request in flight', async () => (await lb.stats('web'))[0]?.activeSessions === 1, 2000);
  await lb.stop();
  const r = await pending;
  assert.equal(r.status, 200);
  await assert.rejects(
    new Promise((resolve, reject) => {
      const req = request(url, resolve);
      req.on('error', reject);
      req.end();
    }),
  );
});

test('stop() is bounded: a request stuck on a silent backend is cut after the grace period', async (t) => {
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const { lb, url } = await startProxy(t, { closeGraceMs: 300 });
  await lb.setBackends('web', [be({ node: 'silent', host: '127.0.0.1', port: (silent.address() as AddressInfo).port })]);
  const pending = get(url).then(
    (r) => `status ${r.status}`,
    (e: Error) => `error ${e.name}`,
  );
  await waitFor('request in flight', async () => (await lb.stats('web'))[0]?.activeSessions === 1, 2000);
  const started = Date.now();
  await lb.stop();
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= 250 && tookMs < 2000, `stop took ${tookMs} ms (grace 300 ms)`);
  assert.match(await pending, /^error/, 'the stuck request was cut, not answered');
});
