// Services as a peer sees them: two in-process agents on 127.0.0.1; agent a offers service `web`
// (an http check on a real page). Agent b must see tag s:web=<port> appear only once the check
// passes, go when the page turns unhealthy, come back, and show `,drain` before a leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import type { Agent, AgentOptions, SerfEvent } from '../../src/index.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import type { ServiceEvent } from '../../src/discovery/services.ts';
import { ServiceManager } from '../../src/discovery/services.ts';
import type { ServiceSpec } from '../../src/discovery/types.ts';
import type { ProbeStatus } from '../../src/probes/types.ts';

function agent(name: string, extra: Partial<AgentOptions>, lines: string[] = []): Agent {
  return createAgent({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'INFO',
    logSink: (l) => lines.push(l),
    leavePropagateDelayMs: 200,
    broadcastTimeoutMs: 2000,
    ...extra,
  });
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const webSpec = (port: number, checkIntervalMs = 100): ServiceSpec => ({
  name: 'web',
  port,
  protocol: 'http',
  weight: 100,
  tags: [],
  checks: [{ kind: 'http', path: '/health', expectStatus: 200, intervalMs: checkIntervalMs, timeoutMs: 500, rise: 2, fall: 2 }],
});

test('a peer sees s:web only while the check passes, and ,drain before the node leaves', async (t) => {
  const web = await startWebServer({ node: 'a' });
  web.setHealthy(false); // the page starts sick: nothing may be advertised
  const aLines: string[] = [];
  const a = agent('a', { tags: { role: 'web' }, services: [webSpec(web.port)], leaveDrainMs: 1000 }, aLines);
  const b = agent('b', {});
  t.after(async () => {
    await a.stop();
    await b.stop();
    await web.close();
  });
  // What b sees of a, in order: every member event carrying a, with a's s:web tag at that time.
  const seen: { at: number; type: string; status: string; web: string | undefined }[] = [];
  b.on('member', (e: SerfEvent) => {
    for (const m of e.members) if (m.name === 'a') seen.push({ at: Date.now(), type: e.type, status: m.status, web: m.tags['s:web'] });
  });
  const serviceEvents: ServiceEvent[] = [];
  a.on('service', (e) => serviceEvents.push(e));
  const webTagAtB = (): string | undefined => b.members().find((m) => m.name === 'a')?.tags['s:web'];

  await a.start();
  await b.start();
  const joined = await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  assert.equal(joined.num, 1);
  await until('b sees a alive', 5000, () => b.members().some((m) => m.name === 'a' && m.status === 'alive'));
  // Unhealthy from the start: the checks run (fall 2) and a says so, without any tag.
  await until('a reports web unhealthy', 5000, () => a.serviceStatus()[0]?.health === 'unhealthy');
  assert.equal(webTagAtB(), undefined);
  assert.equal(b.members().find((m) => m.name === 'a')?.tags['role'], 'web', 'user tags are there');

  const healthyAt = Date.now();
  web.setHealthy(true);
  await until('b sees s:web', 5000, () => webTagAtB() === String(web.port));
  const firstTag = seen.find((s) => s.web !== undefined);
  assert.ok(firstTag !== undefined && firstTag.at >= healthyAt, 'the tag appeared only after the page turned healthy');
  assert.equal(firstTag.web, String(web.port));

  // User tags set meanwhile are kept, and a caller cannot take over the service's key.
  a.setTags({ role: 'web', rack: 'r1', 's:web': '1,drain' });
  await until('b sees rack=r1', 5000, () => b.members().find((m) => m.name === 'a')?.tags['rack'] === 'r1');
  assert.equal(webTagAtB(), String(web.port));

  web.setHealthy(false);
  await until('b sees s:web withdrawn', 5000, () => webTagAtB() === undefined);
  assert.equal(b.members().find((m) => m.name === 'a')?.tags['rack'], 'r1', 'other tags untouched');
  assert.ok(aLines.some((l) => l.includes('services: web is unhealthy: GET /health: HTTP 503, expected 200')), aLines.join('\n'));
  web.setHealthy(true);
  await until('b sees s:web again', 5000, () => webTagAtB() === String(web.port));

  const stats = a.stats();
  assert.equal(stats['services']?.['web'], 'healthy');
  assert.ok(Number(stats['service_checks']?.['checks_critical']) >= 4, JSON.stringify(stats['service_checks']));
  assert.equal(b.stats()['services'], undefined, 'no services section without services');

  await a.leave();
  await until('b sees a left', 5000, () => b.members().find((m) => m.name === 'a')?.status === 'left');
  const drainIdx = seen.findIndex((s) => s.web === `${web.port},drain`);
  const leftIdx = seen.findIndex((s) => s.status === 'left' || s.type === 'member-leave');
  assert.ok(drainIdx >= 0, `b saw ,drain: ${JSON.stringify(seen)}`);
  assert.ok(leftIdx > drainIdx, `drain before leave: ${JSON.stringify(seen)}`);
  assert.equal(seen[drainIdx]?.status, 'alive', 'still a member while draining');
  const leftAt = seen[leftIdx]?.at ?? 0;
  assert.ok(leftAt - (seen[drainIdx]?.at ?? 0) >= 700, 'the drain lasted about leaveDrainMs (1 s) before the leave was seen');
  assert.deepEqual(
    serviceEvents.map((e) => `${e.previous}->${e.health}`),
    ['starting->unhealthy', 'unhealthy->healthy', 'healthy->unhealthy', 'unhealthy->healthy', 'healthy->draining'],
  );
  assert.ok(aLines.some((l) => l.includes('services: web is draining')));
});

test('a service without checks is advertised from the first alive message; the manager never overlaps runs of a check', async (t) => {
  const a = agent('solo', { services: [{ name: 'db', port: 5432, protocol: 'tcp', weight: 5, tags: [], checks: [] }] });
  t.after(() => a.stop());
  await a.start();
  assert.equal(a.members().find((m) => m.name === 'solo')?.tags['s:db'], '5432,tcp,w5');
  assert.deepEqual(a.serviceStatus().map((s) => [s.name, s.health]), [['db', 'healthy']]);

  // A slow probe (3× the interval) must not be started again before it finishes.
  let inFlight = 0;
  let maxInFlight = 0;
  let runs = 0;
  const statuses: ProbeStatus[] = [0, 0, 2, 2, 0, 0];
  const events: string[] = [];
  const m = new ServiceManager({
    services: [{ ...webSpec(1, 20), checks: [{ kind: 'tcp', intervalMs: 20, timeoutMs: 100, rise: 2, fall: 2 }] }],
    host: '127.0.0.1',
    log: () => {},
    onTransition: (e) => events.push(e.health),
    random: () => 0.99,
    probe: async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 60));
      inFlight--;
      return { status: statuses[runs++ % statuses.length]!, output: 'x', durationMs: 60 };
    },
  });
  t.after(() => m.stop());
  m.start();
  await until('six runs', 5000, () => runs >= 6);
  m.stop();
  assert.equal(maxInFlight, 1);
  assert.deepEqual(events.slice(0, 3), ['healthy', 'unhealthy', 'healthy']);
  assert.deepEqual(m.managedKeys(), ['s:web']);
  m.drain();
  assert.deepEqual(m.tags(), { 's:web': '1,drain' });
});

test('a balancer that cannot bind its frontend fails start() with ERR_AGENT_BIND and releases the agent', async (t) => {
  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const a = agent('lb', {
    balancer: {
      driver: 'embedded',
      services: [{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port }, minBackends: 1, drainTimeoutMs: 1000 }],
      haproxy: { binary: 'haproxy', dir: '/nonexistent', slots: 8, reloadDebounceMs: 1000 },
      templates: [],
    },
  });
  let shutdown = false;
  a.on('shutdown', () => (shutdown = true));
  await assert.rejects(a.start(), (e: unknown) => {
    assert.ok(e instanceof Error && 'code' in e && e.code === 'ERR_AGENT_BIND', String(e));
    assert.match(e.message, /load-balancer role/);
    return true;
  });
  assert.equal(shutdown, true, 'the half-started agent was stopped');
  assert.equal(a.balancerRole, undefined);
});

test('createAgent refuses services that could not be advertised', () => {
  const bad: ServiceSpec[][] = [
    [{ ...webSpec(8080), name: 'bad name' }],
    [{ ...webSpec(0) }],
    [{ ...webSpec(8080), weight: 300 }],
    [webSpec(8080), webSpec(8081)],
  ];
  for (const services of bad) {
    assert.throws(() => agent('x', { services }), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'ERR_AGENT_CONFIG', JSON.stringify(services));
  }
});

test('reconfigure (a reload): unchanged keeps its health, changed starts over, removed stops and drops its in-flight result', async (t) => {
  const probes: Record<string, number> = {};
  let slowRelease: (() => void) | undefined;
  const events: string[] = [];
  const tcp = { kind: 'tcp' as const, intervalMs: 20, timeoutMs: 100, rise: 1, fall: 1 };
  const m = new ServiceManager({
    services: [{ ...webSpec(1), checks: [tcp] }, { ...webSpec(2), name: 'old', checks: [tcp] }],
    host: '127.0.0.1',
    log: () => {},
    onTransition: (e) => events.push(`${e.name}:${e.health}`),
    random: () => 0,
    probe: async (_check, target) => {
      probes[target.port] = (probes[target.port] ?? 0) + 1;
      // `old`'s third probe hangs until released: it is in flight when the reload removes it.
      if (target.port === 2 && probes[2] === 3) await new Promise<void>((r) => (slowRelease = r));
      return { status: 0, output: 'ok', durationMs: 1 };
    },
  });
  t.after(() => m.stop());
  m.start();
  await until('both healthy and old in flight', 5000, () => m.status().every((s) => s.health === 'healthy') && slowRelease !== undefined);
  const r = m.reconfigure([{ ...webSpec(1), checks: [tcp] }, { ...webSpec(3), name: 'api', weight: 7, checks: [] }]);
  assert.deepEqual(r, { added: ['api'], removed: ['old'], changed: [] });
  assert.deepEqual(m.status().map((s) => [s.name, s.health]), [['web', 'healthy'], ['api', 'healthy']], 'web kept its health; api has no checks');
  assert.deepEqual(m.tags(), { 's:web': '1', 's:api': '3,w7' });
  const eventsBefore = events.length;
  slowRelease!();
  await new Promise((res) => setTimeout(res, 100));
  assert.ok(!events.slice(eventsBefore).some((e) => e.startsWith('old:')), `no event for the removed service: ${events.slice(eventsBefore).join(' ')}`);
  const oldProbes = probes[2];
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(probes[2], oldProbes, 'the removed service is probed no more');
  // A changed port: web starts over (unhealthy until its check passes again, rise 1).
  const r2 = m.reconfigure([{ ...webSpec(4), checks: [tcp] }, { ...webSpec(3), name: 'api', weight: 7, checks: [] }]);
  assert.deepEqual(r2, { added: [], removed: [], changed: ['web'] });
  await until('web healthy on its new port', 5000, () => m.status()[0]?.health === 'healthy' && (probes[4] ?? 0) > 0);
  assert.equal(m.tags()['s:web'], '4');
});

test('withdraw (a stopping container): that service alone drains (,drain if it served, nothing if not), its checks stop; out and in again starts it over', async (t) => {
  const probes: Record<string, number> = {};
  const events: string[] = [];
  const tcp = { kind: 'tcp' as const, intervalMs: 20, timeoutMs: 100, rise: 1, fall: 1 };
  let failPort3 = true;
  const specs = [{ ...webSpec(1), checks: [tcp] }, { ...webSpec(2), name: 'api', checks: [tcp] }, { ...webSpec(3), name: 'sick', checks: [tcp] }];
  const m = new ServiceManager({
    services: specs,
    host: '127.0.0.1',
    log: () => {},
    onTransition: (e) => events.push(`${e.name}:${e.health}`),
    random: () => 0,
    probe: async (_check, target) => {
      probes[target.port] = (probes[target.port] ?? 0) + 1;
      return target.port === 3 && failPort3 ? { status: 2, output: 'refused', durationMs: 1 } : { status: 0, output: 'ok', durationMs: 1 };
    },
  });
  t.after(() => m.stop());
  m.start();
  await until('web and api healthy, sick unhealthy', 5000, () => m.status().map((s) => s.health).join() === 'healthy,healthy,unhealthy');
  assert.equal(m.withdraw('api'), true);
  assert.equal(m.withdraw('api'), false, 'already draining');
  assert.equal(m.withdraw('nope'), false, 'unknown');
  assert.equal(m.withdraw('sick'), true);
  assert.deepEqual(m.tags(), { 's:web': '1', 's:api': '2,drain' }, 'api drains, sick (never served) stays out, web untouched');
  assert.ok(events.includes('api:draining') && events.includes('sick:draining'));
  const apiProbes = probes[2];
  failPort3 = false;
  await new Promise((res) => setTimeout(res, 150));
  assert.equal(probes[2], apiProbes, 'a withdrawn service is probed no more');
  assert.equal(m.status().find((s) => s.name === 'sick')?.health, 'draining', 'a passing check cannot bring it back');
  // The same spec handed in again keeps it draining; out, then in again, starts it over.
  assert.deepEqual(m.reconfigure(specs), { added: [], removed: [], changed: [] });
  assert.equal(m.tags()['s:api'], '2,drain');
  assert.deepEqual(m.reconfigure([specs[0]!, specs[2]!]).removed, ['api']);
  assert.deepEqual(m.tags(), { 's:web': '1' }, 'a removed service has no tag');
  assert.deepEqual(m.reconfigure(specs).added, ['api']);
  await until('api healthy again', 5000, () => m.status().find((s) => s.name === 'api')?.health === 'healthy');
  assert.equal(m.tags()['s:api'], '2');
  assert.equal(m.status()[0]?.health, 'healthy', 'web kept its health throughout');
});
