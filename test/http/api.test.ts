// The HTTP API against a small real cluster in this process (127.0.0.1): a balancer (embedded
// driver) serving `web`, two web nodes offering `web` with a monitoring check, a monitor with a
// data dir (so it coordinates deploys); a deploy (aborted), then a route set with publishRoute, a
// silence.
// Every endpoint's live answer is validated against the schema read from docs/api.md, and its
// content is checked against what the cluster really is.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAgent } from '../../src/index.ts';
import type { Agent, AgentOptions } from '../../src/index.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';
import { parseCheckSpecs, parseMonitoringSpec } from '../../src/checks/config.ts';
import { encodeSilenceOp } from '../../src/checks/silences.ts';
import { SILENCE_EVENT } from '../../src/checks/types.ts';
import { webNodeAgentOptions } from '../../src/demo/web-node.ts';
import type {
  AgentInfo, ApiEvent, ApiMember, ChecksResponse, DeploysResponse, EventsResponse, HistoryResponse, MembersResponse, ServicesResponse, SnapshotResponse,
} from '../../src/http/types.ts';
import { apiValidator } from './schemas.ts';
import { getJson, openStream, rawRequest, until } from './helpers.ts';
import { freePort } from '../lib/agents.ts';

const quiet = { logLevel: 'WARN', logSink: () => undefined } as const;

interface Page {
  port: number;
  /** The monitoring check's path (/check) answers 500 while set; the service's /health stays 200. */
  checkFails: boolean;
  close(): Promise<void>;
}

async function startPage(): Promise<Page> {
  const page: Page = { port: 0, checkFails: false, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    req.resume();
    const fail = page.checkFails && req.url === '/check';
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(fail ? 'broken\n' : 'ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  page.port = (server.address() as AddressInfo).port;
  page.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return page;
}

test('HTTP API: every endpoint of a real cluster matches docs/api.md and tells the truth', { timeout: 90_000 }, async (t) => {
  const { validate } = apiValidator();
  const dir = await mkdtemp(join(tmpdir(), 'kodama-http-'));
  const agents: Agent[] = [];
  const pages: Page[] = [];
  t.after(async () => {
    for (const a of agents.reverse()) await a.stop().catch(() => undefined);
    for (const p of pages) await p.close();
    await rm(dir, { recursive: true, force: true });
  });
  const start = async (o: AgentOptions): Promise<Agent> => {
    const a = createAgent(o);
    agents.push(a);
    await a.start();
    return a;
  };

  const lbPort = await freePort();
  const lb = await start({
    nodeName: 'lb', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', ...quiet, httpAddr: '127.0.0.1:0', tags: { role: 'lb' },
    // One history sample at start only: its balancer read would share the cache the read-sharing test counts.
    httpHistoryStepMs: 3_600_000,
    balancer: parseBalancerSpec({ driver: 'embedded', services: { web: { bind: `127.0.0.1:${lbPort}` } } }, 'http test'),
  });
  const seed = `127.0.0.1:${lb.bindAddress.port}`;
  const api = lb.http;
  assert.ok(api !== undefined, 'agent.http is set when httpAddr is');
  const url = (p: string): string => api.url(p);

  const webs: Agent[] = [];
  for (const name of ['web-1', 'web-2']) {
    const page = await startPage();
    pages.push(page);
    const a = await start({
      ...webNodeAgentOptions({ name, join: [seed], tags: { color: 'blue' } }, page.port),
      ...quiet,
      checks: parseCheckSpecs([{ name: 'page', http: '/check', port: page.port, interval: '1s' }], 'http test'),
    });
    webs.push(a);
    assert.ok((await a.join([seed])).num > 0);
  }
  const mon = await start({
    nodeName: 'mon', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', ...quiet, tags: { role: 'ops' },
    monitoring: parseMonitoringSpec({}, 'http test'), dataDir: join(dir, 'mon'), httpAddr: '127.0.0.1:0', httpHistoryStepMs: 300,
  });
  assert.ok((await mon.join([seed])).num > 0);

  await until('4 alive members and 2 ready backends on lb', 20_000, () =>
    lb.members().filter((m) => m.status === 'alive').length === 4 &&
    (lb.balancerRole?.status()[0]?.backends ?? []).filter((b) => b.state === 'ready').length === 2 &&
    // `chk` is published at once as `0` (no result yet); `1…` once the check has run.
    lb.members().filter((m) => /^1(;|$)/.test(m.tags['chk'] ?? '')).length === 2 &&
    // The coordinator must see the balancer too, or its deploy aborts at once (no balancer).
    mon.members().filter((m) => m.status === 'alive').length === 4);
  // The deploy comes before the route, and is aborted only once it has published: its prepare
  // phase publishes `blue 100 / green 0` (a route of its own, newer than any before) on the
  // runner's first tick — every 250 ms, free-running — while start() awaits two fsyncs of the
  // state file, so whether that tick fell before abort() was chance. When it did, the deploy's
  // route superseded a route set before it, and the balancer rightly never reported that one.
  const deployRunner = mon.deploys;
  assert.ok(deployRunner !== undefined, 'the monitor has a deploy runner (data dir)');
  const started = await deployRunner.start({ service: 'web', from: 'blue', to: 'green' });
  await until('the deploy published its prepare split', 10_000, () => (deployRunner.current()?.routeLTime ?? 0) > 0);
  await deployRunner.abort('http test: nothing moves');
  // From the coordinator: its Lamport clock stamped the deploy's route, so this one is newer everywhere.
  const route = await mon.publishRoute({ service: 'web', tag: 'color', weights: { blue: 100 }, by: 'manual' });
  assert.ok(route.ltime > deployRunner.current()!.routeLTime, `the test's route (ltime ${route.ltime}) is newer than the deploy's (${deployRunner.current()!.routeLTime})`);
  mon.userEvent(SILENCE_EVENT, encodeSilenceOp({ op: 'add', silence: { id: 's-http-test', role: 'web', check: 'page', reason: 'http test', creator: 'test', createdAt: Date.now(), expiresAt: Date.now() + 3_600_000 } }), false);

  await t.test('GET / redirects to /ui/; /ui/ serves the dashboard', async () => {
    const r = await fetch(url('/'), { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/ui/');
    const ui = await fetch(url('/ui/'));
    assert.equal(ui.status, 200);
    assert.match(ui.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(ui.headers.get('cache-control'), 'no-cache');
    assert.match(await ui.text(), /<html/i);
    const css = await fetch(url('/ui/style.css'));
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    const js = await fetch(url('/ui/app.js'));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  });

  await t.test('GET /v1/agent', async () => {
    const r = await getJson(url('/v1/agent'));
    assert.equal(r.status, 200);
    validate('AgentInfo', r.body);
    const a = r.body as AgentInfo;
    assert.equal(a.node, 'lb');
    assert.equal(a.addr, `127.0.0.1:${lb.bindAddress.port}`);
    assert.deepEqual(a.roles, { balancer: true, monitor: false, exec: false, deploys: false });
    assert.equal(a.tags['lb'], 'web');
    const m = (await getJson(mon.http!.url('/v1/agent'))).body as AgentInfo;
    validate('AgentInfo', m);
    assert.deepEqual(m.roles, { balancer: false, monitor: true, exec: false, deploys: true });
  });

  await t.test('GET /v1/members (all, ?role, ?status)', async () => {
    const r = await getJson(url('/v1/members'));
    assert.equal(r.status, 200);
    validate('MembersResponse', r.body);
    const ms = (r.body as MembersResponse).members;
    assert.deepEqual(ms.map((m) => m.name), ['lb', 'mon', 'web-1', 'web-2']);
    assert.ok(ms.every((m) => m.status === 'alive'));
    const w1 = ms.find((m) => m.name === 'web-1')!;
    assert.equal(w1.role, 'web');
    assert.equal(w1.port, webs[0]!.bindAddress.port);
    assert.deepEqual(w1.services.map((s) => [s.name, s.protocol, s.draining]), [['web', 'http', false]]);
    assert.equal(w1.checks?.total, 1);
    assert.equal(typeof w1.statusSince, 'number', 'lb saw web-1 join');
    assert.equal(ms.find((m) => m.name === 'lb')!.checks, null, 'lb runs no checks');
    assert.equal(ms.find((m) => m.name === 'lb')!.rttMs, null, 'no round trip to itself');
    // lb probes each member about once per round (local profile: 1 s each): from then on the
    // member carries lb's estimate of the round trip (loopback: well under 50 ms).
    const rtts = await until('lb estimates a round trip to every other member', 20_000, async () => {
      const all = ((await getJson(url('/v1/members'))).body as MembersResponse).members.filter((m) => m.name !== 'lb');
      return all.every((m) => typeof m.rttMs === 'number') ? all.map((m) => m.rttMs!) : undefined;
    });
    assert.ok(rtts.every((x) => x > 0 && x < 50), `estimates ${rtts.join(', ')} ms`);
    const webOnly = (await getJson(url('/v1/members?role=web'))).body as MembersResponse;
    validate('MembersResponse', webOnly);
    assert.deepEqual(webOnly.members.map((m) => m.name), ['web-1', 'web-2']);
    const failed = (await getJson(url('/v1/members?status=failed'))).body as MembersResponse;
    validate('MembersResponse', failed);
    assert.deepEqual(failed.members, []);
  });

  await t.test('GET /v1/services: nodes, the balancer backends, the route', async () => {
    // The route was published on mon: the balancer applies it on its own time (gossip, then its
    // driver): wait for it, bounded.
    const s = await until('the balancer reports the route applied', 10_000, async () => {
      const r = await getJson(url('/v1/services'));
      assert.equal(r.status, 200);
      validate('ServicesResponse', r.body);
      const b = r.body as ServicesResponse;
      return b.services.find((x) => x.name === 'web')?.balancers[0]?.routeLTime === route.ltime ? b : undefined;
    }, 300);
    assert.deepEqual(s.missing, []);
    const web = s.services.find((x) => x.name === 'web');
    assert.ok(web !== undefined, 'service web listed');
    assert.deepEqual(web.nodes.map((n) => n.node), ['web-1', 'web-2']);
    assert.equal(web.balancers.length, 1);
    assert.equal(web.balancers[0]!.node, 'lb');
    assert.equal(web.balancers[0]!.driver, 'embedded');
    assert.deepEqual(web.balancers[0]!.backends.map((b) => `${b.id}:${b.state}:${b.value ?? ''}`).sort(), ['web-1:ready:blue', 'web-2:ready:blue']);
    assert.deepEqual(web.route, route);
  });

  await t.test('GET /v1/checks: both web nodes report check page; the silence is listed', async () => {
    const c = await until('checks reports and the silence', 15_000, async () => {
      const r = await getJson(url('/v1/checks'));
      assert.equal(r.status, 200);
      validate('ChecksResponse', r.body);
      const b = r.body as ChecksResponse;
      return b.nodes.length === 2 && b.silences.length === 1 ? b : undefined;
    }, 300);
    assert.deepEqual(c.nodes.map((n) => n.node), ['web-1', 'web-2']);
    for (const n of c.nodes) {
      assert.deepEqual(n.checks.map((x) => [x.name, x.status]), [['page', 0]]);
    }
    assert.equal(c.silences[0]!.id, 's-http-test');
    assert.equal(c.silences[0]!.check, 'page');
    assert.deepEqual(c.missing, []);
  });

  await t.test('GET /v1/events (?since): joins and the route are in the timeline', async () => {
    const r = await getJson(url('/v1/events'));
    assert.equal(r.status, 200);
    validate('EventsResponse', r.body);
    const e = r.body as EventsResponse;
    const joins = e.events.filter((x) => x.kind === 'member-join').map((x) => x.node);
    for (const n of ['web-1', 'web-2', 'mon']) assert.ok(joins.includes(n), `${n} joined (timeline: ${JSON.stringify(e.events.map((x) => x.text))})`);
    assert.ok(e.events.some((x) => x.kind === 'route' && x.text.includes('web')), 'route in the timeline');
    assert.ok(e.events.every((x, i) => i === 0 || x.seq === e.events[i - 1]!.seq + 1), 'seq increases by one');
    assert.equal(e.next, e.events[e.events.length - 1]!.seq + 1);
    const later = (await getJson(url(`/v1/events?since=${e.next - 1}`))).body as EventsResponse;
    validate('EventsResponse', later);
    assert.equal(later.events[0]?.seq, e.next - 1);
    const none = (await getJson(url(`/v1/events?since=${e.next + 100}`))).body as EventsResponse;
    assert.deepEqual(none.events, []);
  });

  await t.test('GET /v1/history: members, checks by role and each backend\'s request rate over time', async () => {
    // Traffic through the balancer, so that its backends have a rate to plot.
    const traffic = setInterval(() => void fetch(`http://127.0.0.1:${lbPort}/`).then((r) => r.text()).catch(() => undefined), 20);
    try {
      const h = await until('a history point with backend request rates', 15_000, async () => {
        // From mon: every node serving the API keeps a history; the backends come from lb's reports.
        const r = await getJson(mon.http!.url('/v1/history'));
        assert.equal(r.status, 200);
        validate('HistoryResponse', r.body);
        const b = r.body as HistoryResponse;
        const last = b.points[b.points.length - 1];
        const rates = Object.values(last?.backends?.['lb'] ?? {});
        return rates.length === 2 && rates.every((x) => x.requests > 0) ? b : undefined;
      }, 300);
      assert.equal(h.stepMs, 300);
      assert.equal(h.points[0]!.gossip, null, 'the first point has no rate');
      const last = h.points[h.points.length - 1]!;
      assert.deepEqual(last.members, { alive: 4, leaving: 0, left: 0, failed: 0 });
      assert.deepEqual(Object.keys(last.backends!['lb']!).sort(), ['web/web-1', 'web/web-2']);
      assert.deepEqual(last.checks['web'], { passing: 2, warning: 0, critical: 0, unknown: 0 });
      assert.ok(h.points.every((p, i) => i === 0 || p.t > h.points[i - 1]!.t), 'oldest first');
    } finally {
      clearInterval(traffic);
    }
  });

  await t.test('GET /v1/deploys: the coordinator has it in full, others see it elsewhere', async () => {
    const own = await getJson(mon.http!.url('/v1/deploys'));
    assert.equal(own.status, 200);
    validate('DeploysResponse', own.body);
    const d = own.body as DeploysResponse;
    assert.equal(d.current?.id, started.id);
    assert.equal(d.current?.phase, 'aborted');
    assert.deepEqual(d.routes.map((x) => x.service), ['web']);
    const other = await until('lb sees the monitor deploy elsewhere', 10_000, async () => {
      const r = await getJson(url('/v1/deploys'));
      validate('DeploysResponse', r.body);
      const b = r.body as DeploysResponse;
      return b.elsewhere.length > 0 ? b : undefined;
    }, 300);
    assert.equal(other.current, null);
    assert.deepEqual(other.history, []);
    assert.equal(other.elsewhere[0]!.id, started.id);
    assert.equal(other.elsewhere[0]!.coordinator, 'mon');
    assert.equal(other.elsewhere[0]!.phase, 'aborted');
    assert.equal(other.elsewhere[0]!.reason, 'http test: nothing moves');
    const monEvents = (await getJson(mon.http!.url('/v1/events'))).body as EventsResponse;
    validate('EventsResponse', monEvents);
    assert.ok(monEvents.events.some((e) => e.kind === 'deploy' && e.text.includes(started.id) && e.text.includes('aborted')), 'the deploy phase is in the coordinator timeline');
  });

  await t.test('GET /v1/snapshot: every panel in one answer, the same as each endpoint says', async () => {
    const t0 = Date.now();
    const r = await getJson(url('/v1/snapshot'));
    const t1 = Date.now();
    assert.equal(r.status, 200);
    validate('SnapshotResponse', r.body);
    const snap = r.body as SnapshotResponse;
    assert.ok(snap.at >= t0 && snap.at <= t1, `made during the request: ${snap.at} in [${t0}, ${t1}]`);
    assert.equal(snap.agent.node, 'lb');
    assert.deepEqual(snap.agent.roles, { balancer: true, monitor: false, exec: false, deploys: false });
    const members = (await getJson(url('/v1/members'))).body as MembersResponse;
    assert.deepEqual(snap.members.map((m) => [m.name, m.status, m.checks?.total ?? null]), members.members.map((m) => [m.name, m.status, m.checks?.total ?? null]));
    const events = (await getJson(url('/v1/events'))).body as EventsResponse;
    assert.ok(snap.events.next <= events.next && snap.events.next === snap.events.events[snap.events.events.length - 1]!.seq + 1);
    assert.deepEqual(snap.events.events, events.events.filter((e) => e.seq < snap.events.next), 'the timeline as /v1/events had it then');
    const web = snap.services.services.find((s) => s.name === 'web');
    assert.deepEqual(web?.nodes.map((n) => n.node), ['web-1', 'web-2']);
    assert.deepEqual(web?.balancers.map((b) => [b.node, b.backends.map((x) => x.id).sort()]), [['lb', ['web-1', 'web-2']]]);
    assert.deepEqual(web?.route, route);
    assert.deepEqual(snap.checks.nodes.map((n) => [n.node, n.checks.map((c) => c.name)]), [['web-1', ['page']], ['web-2', ['page']]]);
    assert.deepEqual(snap.checks.silences.map((s) => s.id), ['s-http-test']);
    assert.deepEqual(snap.deploys.routes.map((x) => x.service), ['web']);
    const deploys = (await getJson(url('/v1/deploys'))).body as DeploysResponse;
    const fullIds = deploys.elsewhere.map((d) => d.id);
    assert.ok(snap.deploys.elsewhere.every((d) => fullIds.includes(d.id)), `snapshot's other coordinators ${JSON.stringify(snap.deploys.elsewhere.map((d) => d.id))} ⊆ ${JSON.stringify(fullIds)}`);
    assert.ok(snap.history.points.length >= 1, 'the history has its first point');
    const perf = new Set([...snap.performance.silent, ...snap.performance.roles.flatMap((x) => x.nodes)]);
    assert.deepEqual([...perf].sort(), ['lb', 'mon', 'web-1', 'web-2'], 'every alive member is in the performance part, by role or silent');
    t.diagnostic(`snapshot answered in ${t1 - t0} ms`);
  });

  await t.test('cluster-wide reads are shared: ten dashboards at once cost one query round', async () => {
    await new Promise((r) => setTimeout(r, 1600)); // past the cache
    const before = api.counters();
    const answers = await Promise.all(Array.from({ length: 10 }, () => getJson(url('/v1/services'))));
    for (const a of answers) {
      assert.equal(a.status, 200);
      validate('ServicesResponse', a.body);
    }
    const after = api.counters();
    assert.equal(after['reads_queried']! - before['reads_queried']!, 1, 'one read');
    assert.equal(after['reads_cached']! - before['reads_cached']!, 9, 'nine shared it');
    assert.deepEqual(answers[9]!.body, answers[0]!.body);
  });

  await t.test('GET /v1/stream: hello, then a joining member as member + timeline', async () => {
    const s = await openStream(url('/v1/stream'));
    t.after(() => s.close());
    assert.equal(s.status, 200);
    const hello = await s.next('hello', (m) => m.event === 'hello', 5000);
    validate('StreamHello', hello.data);
    assert.equal((hello.data as { node: string }).node, 'lb');
    const late = await start({ nodeName: 'late-1', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', ...quiet, tags: { role: 'batch' } });
    assert.ok((await late.join([seed])).num > 0);
    const member = await s.next('member late-1', (m) => m.event === 'member' && (m.data as ApiMember).name === 'late-1', 10_000);
    validate('StreamMember', member.data);
    assert.equal((member.data as ApiMember).status, 'alive');
    assert.equal((member.data as ApiMember).role, 'batch');
    const tl = await s.next('timeline join late-1', (m) => m.event === 'timeline' && (m.data as ApiEvent).kind === 'member-join' && (m.data as ApiEvent).node === 'late-1', 10_000);
    validate('StreamTimeline', tl.data);
    assert.ok((tl.data as ApiEvent).seq >= (hello.data as { next: number }).next);
    await late.leave();
    const left = await s.next('member late-1 left', (m) => m.event === 'member' && (m.data as ApiMember).name === 'late-1' && (m.data as ApiMember).status === 'left', 15_000);
    validate('StreamMember', left.data);
    s.close();
    // The monitor's stream carries its deploy.
    const ms = await openStream(mon.http!.url('/v1/stream'));
    try {
      const dep = await ms.next('deploy', (m) => m.event === 'deploy', 5000);
      validate('StreamDeploy', dep.data);
      assert.equal((dep.data as { id: string }).id, started.id);
    } finally {
      ms.close();
    }
  });

  await t.test('a check failing on web-1 shows cluster-wide: member checks and a check timeline entry', async () => {
    const s = await openStream(url('/v1/stream'));
    try {
      await s.next('hello', (m) => m.event === 'hello', 5000);
      pages[0]!.checkFails = true;
      const tl = await s.next('check critical on web-1', (m) => m.event === 'timeline' && (m.data as ApiEvent).kind === 'check' && (m.data as ApiEvent).node === 'web-1' && /page is critical/.test((m.data as ApiEvent).text), 15_000);
      validate('StreamTimeline', tl.data);
      const members = (await getJson(url('/v1/members?role=web'))).body as MembersResponse;
      validate('MembersResponse', members);
      const w1 = members.members.find((m) => m.name === 'web-1')!;
      assert.deepEqual(w1.checks?.failing.map((f) => [f.name, f.state]), [['page', 'critical']]);
      assert.deepEqual(members.members.find((m) => m.name === 'web-2')!.checks?.failing, []);
      pages[0]!.checkFails = false;
      await s.next('check passing on web-1', (m) => m.event === 'timeline' && (m.data as ApiEvent).kind === 'check' && (m.data as ApiEvent).node === 'web-1' && /page is passing/.test((m.data as ApiEvent).text), 15_000);
    } finally {
      pages[0]!.checkFails = false;
      s.close();
    }
  });

  await t.test('bad input: 404, 405, 400, traversal, huge headers, garbage; the agent keeps serving', async () => {
    const expectError = async (path: string, status: number, code: string, init: RequestInit = {}): Promise<void> => {
      const r = await fetch(url(path), { ...init, redirect: 'manual' });
      assert.equal(r.status, status, `${init.method ?? 'GET'} ${path}`);
      const b = (await r.json()) as unknown;
      validate('ErrorResponse', b);
      assert.equal((b as { code: string }).code, code, `${path}`);
    };
    await expectError('/v1/nope', 404, 'ERR_HTTP_NOT_FOUND');
    await expectError('/v1', 404, 'ERR_HTTP_NOT_FOUND');
    await expectError('/elsewhere', 404, 'ERR_HTTP_NOT_FOUND');
    await expectError('/v1/members', 405, 'ERR_HTTP_METHOD', { method: 'POST', body: 'x'.repeat(100_000) });
    await expectError('/v1/stream', 405, 'ERR_HTTP_METHOD', { method: 'DELETE' });
    await expectError('/v1/members?status=sleeping', 400, 'ERR_HTTP_BAD_PARAM');
    await expectError('/v1/events?since=-1', 400, 'ERR_HTTP_BAD_PARAM');
    await expectError('/v1/events?since=abc', 400, 'ERR_HTTP_BAD_PARAM');
    await expectError('/v1/events?since=1e3', 400, 'ERR_HTTP_BAD_PARAM');
    await expectError('/v1/members?status=%E0%A4%A', 400, 'ERR_HTTP_BAD_PARAM');
    await expectError('/ui/nope.js', 404, 'ERR_HTTP_NOT_FOUND');
    const r405 = await fetch(url('/v1/agent'), { method: 'PUT' });
    assert.equal(r405.headers.get('allow'), 'GET, HEAD');
    // A HEAD answer has no body: the status alone.
    assert.equal((await fetch(url('/v1/stream'), { method: 'HEAD' })).status, 405);
    for (const p of ['//v1/agent', '/v1//agent', '/v1/agent/', '/V1/AGENT']) {
      const r = await rawRequest(api.address.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 404, p);
    }
    const absolute = await rawRequest(api.address.port, `GET http://elsewhere.example/v1/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    assert.equal(absolute.status, 200, 'absolute-form request target (as proxies send it)');
    // Traversal, sent raw (fetch would normalise the path first).
    for (const p of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2fpackage.json', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/..\\package.json',
      '/ui/.hidden.js', '/ui//etc/passwd', '/ui/%00.js', '/ui/%zz', '/ui/../../../../etc/passwd', '/ui/model.d.ts']) {
      const r = await rawRequest(api.address.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 404, `${p} → ${r.text.slice(0, 200)}`);
      assert.doesNotMatch(r.text, /"name":\s*"kodama"|root:/);
    }
    const big = await rawRequest(api.address.port, `GET /v1/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    assert.equal(big.status, 431);
    const garbage = await rawRequest(api.address.port, 'HELLO THERE\r\n\r\n');
    assert.equal(garbage.status, 400);
    assert.ok(api.counters()['bad_requests']! >= 2);
    const ok = await getJson(url('/v1/agent'));
    assert.equal(ok.status, 200, 'still serving after bad input');
  });
});
