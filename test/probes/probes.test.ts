// Probes against real local servers and scripts: Nagios statuses, one-line outputs, timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProbe } from '../../src/probes/index.ts';
import { startWebServer } from '../../src/demo/web-server.ts';

const HOST = '127.0.0.1';

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on (bound by the OS, then released). */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  const port = await listen(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const http = (path: string, extra: { expectStatus?: number; host?: string; timeoutMs?: number } = {}) => ({
  kind: 'http' as const,
  path,
  expectStatus: extra.expectStatus ?? 200,
  timeoutMs: extra.timeoutMs ?? 2000,
  ...(extra.host !== undefined ? { host: extra.host } : {}),
});

test('http: expected status is ok (0), another status is critical (2) and says both', async (t) => {
  const web = await startWebServer({ node: 'w1' });
  t.after(() => web.close());
  const target = { host: web.host, port: web.port };
  const ok = await runProbe(http('/health'), target);
  assert.equal(ok.status, 0);
  assert.equal(ok.output, 'GET /health: HTTP 200');
  assert.ok(ok.durationMs >= 0 && ok.durationMs < 2000);
  web.setHealthy(false);
  const bad = await runProbe(http('/health'), target);
  assert.equal(bad.status, 2);
  assert.equal(bad.output, 'GET /health: HTTP 503, expected 200');
  assert.equal((await runProbe(http('/health', { expectStatus: 503 }), target)).status, 0);
  assert.equal(web.requests, 0, 'health checks are not counted as page requests');
});

test('http: the Host header is sent when configured', async (t) => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.host ?? '');
    res.writeHead(req.headers.host === 'web.example' ? 204 : 421).end();
  });
  const port = await listen(server);
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  assert.equal((await runProbe(http('/', { expectStatus: 204, host: 'web.example' }), { host: HOST, port })).status, 0);
  const without = await runProbe(http('/', { expectStatus: 204 }), { host: HOST, port });
  assert.equal(without.status, 2);
  assert.deepEqual(seen, ['web.example', `${HOST}:${port}`]);
});

test('http: no answer within the timeout is critical, "timed out after N ms"', async (t) => {
  const sockets = new Set<Socket>();
  const server = createServer(() => {
    // never answers
  });
  server.on('connection', (s) => sockets.add(s));
  const port = await listen(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const r = await runProbe(http('/slow', { timeoutMs: 200 }), { host: HOST, port });
  assert.equal(r.status, 2);
  assert.equal(r.output, 'GET /slow: timed out after 200 ms');
  assert.ok(r.durationMs >= 190 && r.durationMs < 1500, `took ${r.durationMs} ms`);
});

test('http and tcp: a closed port is critical and names the refusal', async () => {
  const port = await closedPort();
  const h = await runProbe(http('/health'), { host: HOST, port });
  assert.equal(h.status, 2);
  assert.match(h.output, /ECONNREFUSED/);
  const c = await runProbe({ kind: 'tcp', timeoutMs: 1000 }, { host: HOST, port });
  assert.equal(c.status, 2);
  assert.match(c.output, new RegExp(`^TCP ${HOST}:${port}: .*ECONNREFUSED`));
});

test('tcp: a listening port is ok', async (t) => {
  const server = createTcpServer((s) => s.end());
  const port = await listen(server);
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const r = await runProbe({ kind: 'tcp', timeoutMs: 1000 }, { host: HOST, port });
  assert.deepEqual([r.status, r.output], [0, `TCP ${HOST}:${port}: connected`]);
});

const script = (command: string, timeoutMs = 5000) => ({ kind: 'script' as const, command, timeoutMs });
const target = { host: '127.0.0.9', port: 4242 };

test('script: Nagios exit codes, first line of stdout, >3 is unknown', async () => {
  const cases: [string, number, string][] = [
    ['echo "OK - load 0.1"; echo "second line"', 0, 'OK - load 0.1'],
    ['echo "WARNING - load 6"; exit 1', 1, 'WARNING - load 6'],
    ['echo "CRITICAL - load 12"; exit 2', 2, 'CRITICAL - load 12'],
    ['echo "UNKNOWN - no data"; exit 3', 3, 'UNKNOWN - no data'],
    ['exit 7', 3, 'exit status 7'],
    ['exit 2', 2, 'exit status 2'],
    ['kill -9 $$', 3, 'killed by SIGKILL'],
    ['echo "$KODAMA_CHECK_HOST:$KODAMA_CHECK_PORT"', 0, '127.0.0.9:4242'],
    ['/nonexistent/plugin', 3, 'exit status 127'],
  ];
  for (const [command, status, output] of cases) {
    const r = await runProbe(script(command), target);
    assert.deepEqual([r.status, r.output], [status, output], command);
  }
});

test('script: a timeout kills the whole process group and is critical', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-probe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'child.pid');
  // The shell starts a grandchild and waits for it: only a group kill reaches both.
  const r = await runProbe(script(`sleep 30 & echo $! > ${pidFile}; wait`, 300), target);
  assert.equal(r.status, 2);
  assert.equal(r.output, 'script timed out after 300 ms');
  assert.ok(r.durationMs >= 290 && r.durationMs < 3000, `took ${r.durationMs} ms`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  assert.ok(pid > 0);
  let alive = true;
  for (let i = 0; i < 100 && alive; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((res) => setTimeout(res, 20));
    } catch {
      alive = false;
    }
  }
  if (alive) process.kill(pid, 'SIGKILL');
  assert.equal(alive, false, 'the grandchild sleep was killed');
});

test('script: a finished script that left a child behind does not wait for it', async () => {
  const r = await runProbe(script('sleep 30 & echo done', 5000), target);
  assert.deepEqual([r.status, r.output], [0, 'done']);
  assert.ok(r.durationMs < 2000, `took ${r.durationMs} ms`);
});

test('http: a server that does not speak HTTP is critical, not a crash', async (t) => {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.end('SSH-2.0-OpenSSH\r\n');
  });
  const port = await listen(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const r = await runProbe(http('/health'), { host: HOST, port });
  assert.equal(r.status, 2);
  assert.match(r.output, /^GET \/health: .*[Pp]arse [Ee]rror/);
});
