import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertHandlers } from '../../src/checks/alert-handlers.ts';
import type { AlertEvent, HandlerFilters } from '../../src/checks/types.ts';

const F: HandlerFilters = { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true };

function alert(node: string, action: AlertEvent['action'] = 'create', check = 'disk'): AlertEvent {
  return {
    action,
    kind: 'check',
    entity: { name: node, address: '10.0.0.1', tags: { role: 'web' } },
    check: { name: check, status: action === 'resolve' ? 0 : 2, state: action === 'resolve' ? 'passing' : 'critical', output: 'disk 95% full', occurrences: 3, history: [2], silenced: false },
    timestamp: Date.now(),
    monitor: 'mon-1',
  };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-alerts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '') : [];
}

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, rej) => (timer = setTimeout(() => rej(new Error(`not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

test('script: event JSON on stdin and KODAMA_ALERT_* env; one lane keeps order', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'out');
  const cmd = `read -r json; echo "$KODAMA_ALERT_ACTION $KODAMA_ALERT_NODE $KODAMA_ALERT_CHECK $KODAMA_ALERT_STATUS $KODAMA_ALERT_STATE [$KODAMA_ALERT_OUTPUT] $json" >> ${out}`;
  const h = new AlertHandlers([{ name: 'ops', type: 'script', command: cmd, timeoutMs: 5000, filters: F }]);
  t.after(() => h.close());
  for (let i = 1; i <= 8; i++) h.dispatch('ops', alert(`web-${i}`, i % 2 === 0 ? 'resolve' : 'create'));
  await within(20_000, h.idle());
  const got = lines(out);
  assert.equal(got.length, 8);
  got.forEach((l, i) => {
    const n = i + 1;
    const action = n % 2 === 0 ? 'resolve' : 'create';
    assert.ok(l.startsWith(`${action} web-${n} disk ${n % 2 === 0 ? '0 passing' : '2 critical'} [disk 95% full] {`), l);
    const ev = JSON.parse(l.slice(l.indexOf('{'))) as AlertEvent;
    assert.equal(ev.entity.name, `web-${n}`);
    assert.equal(ev.action, action);
  });
  assert.equal(h.counters()['ops.runs'], 8);
  assert.equal(h.counters()['failures'], 0);
});

test('script: non-zero exit is a failure (logged); a hung script is killed with its process group at the timeout and delays only its own lane', async (t) => {
  const dir = tmp(t);
  const fast = join(dir, 'fast');
  const pidFile = join(dir, 'pid');
  const logs: string[] = [];
  const h = new AlertHandlers(
    [
      { name: 'hung', type: 'script', command: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 500, filters: F },
      { name: 'fast', type: 'script', command: `cat > /dev/null; echo ok >> ${fast}`, timeoutMs: 5000, filters: F },
      { name: 'bad', type: 'script', command: 'echo nope >&2; exit 3', timeoutMs: 5000, filters: F },
    ],
    { log: (_l, m) => logs.push(m) },
  );
  t.after(() => h.close());
  const started = Date.now();
  h.dispatch('hung', alert('a'));
  h.dispatch('hung', alert('b'));
  for (let i = 0; i < 3; i++) h.dispatch('fast', alert('c'));
  h.dispatch('bad', alert('d'));
  // The fast lane finishes while the hung one is still stuck on its first alert.
  for (let i = 0; i < 200 && lines(fast).length < 3; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(lines(fast).length, 3);
  assert.ok(Date.now() - started < 500 + 2000, 'fast lane not held up by the hung one');
  await within(20_000, h.idle());
  const c = h.counters();
  assert.equal(c['hung.timeouts'], 2);
  assert.equal(c['bad.failures'], 1);
  assert.equal(c['fast.failures'], 0);
  assert.ok(logs.some((m) => /handler bad failed on create d\/disk: exit status 3: nope/.test(m)), logs.join('\n'));
  assert.ok(logs.some((m) => /handler hung timed out/.test(m)));
  // The forked sleep died with its group.
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  assert.ok(pid > 0);
  let alive = true;
  for (let i = 0; i < 40 && alive; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 50));
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, 'the grandchild was killed');
});

test('webhook: POST JSON; 2xx ok, non-2xx failure, no answer = timeout, refused = failure', async (t) => {
  const received: { path: string; type: string; body: AlertEvent }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/hang') return; // never answers
      received.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '', body: JSON.parse(body) as AlertEvent });
      res.statusCode = req.url === '/fail' ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const base = `http://127.0.0.1:${port}`;
  const h = new AlertHandlers([
    { name: 'ok', type: 'webhook', url: `${base}/alerts`, timeoutMs: 2000, filters: F },
    { name: 'fail', type: 'webhook', url: `${base}/fail`, timeoutMs: 2000, filters: F },
    { name: 'hang', type: 'webhook', url: `${base}/hang`, timeoutMs: 300, filters: F },
    { name: 'refused', type: 'webhook', url: `http://127.0.0.1:${closedPort}/x`, timeoutMs: 2000, filters: F },
  ]);
  t.after(() => h.close());
  h.dispatch('ok', alert('web-1'));
  h.dispatch('ok', alert('web-1', 'resolve'));
  h.dispatch('fail', alert('web-2'));
  h.dispatch('hang', alert('web-3'));
  h.dispatch('refused', alert('web-4'));
  await within(15_000, h.idle());
  const ok = received.filter((r) => r.path === '/alerts');
  assert.deepEqual(ok.map((r) => r.body.action), ['create', 'resolve']);
  assert.equal(ok[0]?.type, 'application/json');
  assert.equal(ok[0]?.body.entity.name, 'web-1');
  const c = h.counters();
  assert.equal(c['ok.failures'], 0);
  assert.equal(c['fail.failures'], 1);
  assert.equal(c['hang.timeouts'], 1);
  assert.equal(c['refused.failures'], 1);
});

test('log: one JSON line per alert to a file, or to the agent log without a path', async (t) => {
  const dir = tmp(t);
  const path = join(dir, 'alerts.log');
  const logs: string[] = [];
  const h = new AlertHandlers(
    [
      { name: 'file', type: 'log', path, filters: F },
      { name: 'agentlog', type: 'log', filters: F },
    ],
    { log: (_l, m) => logs.push(m) },
  );
  t.after(() => h.close());
  h.dispatch('file', alert('web-1'));
  h.dispatch('file', alert('web-1', 'resolve'));
  h.dispatch('agentlog', alert('web-2'));
  await within(5000, h.idle());
  const got = lines(path).map((l) => JSON.parse(l) as AlertEvent);
  assert.deepEqual(got.map((e) => `${e.action} ${e.entity.name}`), ['create web-1', 'resolve web-1']);
  assert.equal(logs.length, 1);
  assert.match(logs[0] ?? '', /^monitor: alert \{.*"name":"web-2"/);
});

test('bounded lane: the oldest waiting alerts are dropped and counted; unknown handler and closed are refused', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'out');
  const h = new AlertHandlers([{ name: 'slow', type: 'script', command: `read -r j; echo "$KODAMA_ALERT_NODE" >> ${out}; sleep 0.2`, timeoutMs: 5000, filters: F }], { queueDepth: 2 });
  t.after(() => h.close());
  for (let i = 1; i <= 6; i++) h.dispatch('slow', alert(`n${i}`));
  assert.equal(h.dispatch('nope', alert('x')), false);
  await within(10_000, h.idle());
  // n1 started at once; of n2..n6 only the newest two stayed queued.
  assert.deepEqual(lines(out), ['n1', 'n5', 'n6']);
  const c = h.counters();
  assert.equal(c['slow.dropped'], 3);
  assert.equal(c['unknown_handler'], 1);
  await h.close();
  assert.equal(h.dispatch('slow', alert('late')), false);
});
