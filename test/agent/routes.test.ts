// Routes across real in-process agents on 127.0.0.1: a route published at one node reaches every
// node as the same entry (the 'route' event fires once per change), a late joiner learns the
// current split through the kodama-routes sync, concurrent publishes converge on one winner,
// and a malformed kodama-route event is dropped and counted, never applied.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from '../../src/index.ts';
import type { AgentOptions, RouteEntry } from '../../src/index.ts';
import { ROUTE_EVENT } from '../../src/deploy/types.ts';

const running: Agent[] = [];
after(async () => {
  for (const a of running) await a.stop();
});

function make(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'ERR',
    logSink: () => {},
    leavePropagateDelayMs: 100,
    routeSync: { retryDelayMs: 300 },
    ...extra,
  });
  running.push(a);
  return a;
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && !cond(); i++) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const alive = (a: Agent): number => a.members().filter((m) => m.status === 'alive').length;

test('publishRoute at one node: every node applies the same entry; a late joiner learns it by sync', { timeout: 45_000 }, async (t) => {
  const a = make('rt-a');
  const b = make('rt-b');
  const c = make('rt-c');
  for (const x of [a, b, c]) await x.start();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  await c.join([`127.0.0.1:${a.bindAddress.port}`]);
  await until('3 alive everywhere', 10_000, () => [a, b, c].every((x) => alive(x) === 3));

  const events = new Map<string, { entry: RouteEntry; previous: RouteEntry | undefined }[]>();
  for (const x of [a, b, c]) x.on('route', (e) => events.set(x.nodeName, [...(events.get(x.nodeName) ?? []), e]));

  const first = await b.publishRoute({ service: 'web', tag: 'color', weights: { blue: 100, green: 0 }, by: 'manual' });
  assert.deepEqual(b.routes.get('web'), first, 'applied locally before publishRoute resolves');
  const t0 = Date.now();
  await until('every node has the first route', 10_000, () => [a, c].every((x) => x.routes.get('web')?.ltime === first.ltime));
  t.diagnostic(`first route on all 3 nodes ${Date.now() - t0} ms after publish (ltime ${first.ltime})`);

  // a second change, from another node, supersedes it everywhere
  const second = await c.publishRoute({ service: 'web', tag: 'color', weights: { blue: 0, green: 100 }, by: 'd-test' });
  assert.ok(second.ltime > first.ltime, `${second.ltime} > ${first.ltime}`);
  await until('every node has the second route', 10_000, () => [a, b, c].every((x) => x.routes.get('web')?.ltime === second.ltime));
  for (const x of [a, b, c]) {
    assert.deepEqual(x.routes.get('web'), second, x.nodeName);
    const evs = events.get(x.nodeName) ?? [];
    assert.deepEqual(evs.map((e) => e.entry.ltime), [first.ltime, second.ltime], `${x.nodeName}: one 'route' event per change`);
    assert.deepEqual(evs[1]?.previous, first);
    assert.equal(x.stats()['routes']?.['route.web'], `blue=0 green=100 @${second.ltime} by d-test`);
  }

  // a node that joins afterwards never sees those events (Serf does not replay them): it asks
  const late = make('rt-late');
  await late.start();
  const lateEvents: RouteEntry[] = [];
  late.on('route', (e) => lateEvents.push(e.entry));
  const t1 = Date.now();
  await late.join([`127.0.0.1:${c.bindAddress.port}`]);
  await until('the late joiner learns the route', 15_000, () => late.routes.get('web')?.ltime === second.ltime);
  t.diagnostic(`late joiner synced ${Date.now() - t1} ms after its join`);
  assert.deepEqual(late.routes.get('web'), second);
  assert.deepEqual(lateEvents, [second]);
  const st = late.stats()['routes'];
  assert.equal(st?.['sync'], 'synced');
  assert.equal(st?.['route_events'], '0', 'learnt by sync, not by event');

  // the late joiner's clock witnessed the synced ltime: its own publish wins everywhere
  const third = await late.publishRoute({ service: 'web', tag: 'color', weights: { blue: 50, green: 50 }, by: 'manual' });
  assert.ok(third.ltime > second.ltime);
  await until('every node has the late joiner\'s route', 10_000, () => [a, b, c].every((x) => x.routes.get('web')?.ltime === third.ltime));
});

test('concurrent publishes from two nodes converge on one entry everywhere; a malformed route event is dropped and counted', { timeout: 45_000 }, async () => {
  const a = make('cc-a');
  const b = make('cc-b');
  const c = make('cc-c');
  for (const x of [a, b, c]) await x.start();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  await c.join([`127.0.0.1:${b.bindAddress.port}`]);
  await until('3 alive everywhere', 10_000, () => [a, b, c].every((x) => alive(x) === 3));

  // both publish at the same instant: they may carry the same Lamport time
  const [ea, eb] = await Promise.all([
    a.publishRoute({ service: 'api', tag: 'color', weights: { blue: 100 }, by: 'from-a' }),
    b.publishRoute({ service: 'api', tag: 'color', weights: { green: 100 }, by: 'from-b' }),
  ]);
  assert.ok(ea.by === 'from-a' && eb.by === 'from-b');
  await until('one winner everywhere', 10_000, () => {
    const seen = [a, b, c].map((x) => JSON.stringify(x.routes.get('api')));
    return seen.every((s) => s === seen[0]) && [a, b, c].every((x) => (x.stats()['routes']?.['route_events'] ?? '0') === '2');
  });
  const winner = a.routes.get('api');
  assert.ok(winner !== undefined && (winner.by === 'from-a' || winner.by === 'from-b'));

  // garbage under the route event's name: every node counts it, no route changes
  const before = JSON.stringify(c.routes.all());
  a.userEvent(ROUTE_EVENT, '{"service":"api","tag":"color","weights":{"blue":500},"by":"x"}', false);
  a.userEvent(ROUTE_EVENT, 'not json', false);
  await until('both malformed events counted on every node', 10_000, () =>
    [a, b, c].every((x) => x.stats()['routes']?.['dropped_route_events'] === '2'),
  );
  assert.equal(JSON.stringify(c.routes.all()), before);
  for (const x of [a, b, c]) assert.deepEqual(x.routes.get('api'), winner);
});

test('publishRoute refuses an invalid setting before sending anything', async () => {
  const a = make('inv-a');
  await a.start();
  await assert.rejects(a.publishRoute({ service: 'web', tag: 'color', weights: { blue: 101 }, by: 'm' }), /0\.\.100/);
  await assert.rejects(a.publishRoute({ service: 'bad name', tag: 'color', weights: {}, by: 'm' }), /invalid service name/);
  assert.equal(a.stats()['routes']?.['routes_published'], '0');
  assert.equal(a.routes.size, 0);
});

test('a node that never calls join (a restarted seed others join) learns the route when a peer appears', { timeout: 30_000 }, async (t) => {
  const a = make('seed-a');
  const b = make('seed-b');
  await a.start();
  await b.start();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  const e = await a.publishRoute({ service: 'web', tag: 'color', weights: { blue: 10, green: 90 }, by: 'd-seed' });
  await until('b has the route', 10_000, () => b.routes.get('web')?.ltime === e.ltime);

  // a fresh seed: b joins it; the seed itself never calls join()
  const seed = make('seed-new');
  await seed.start();
  const t0 = Date.now();
  await b.join([`127.0.0.1:${seed.bindAddress.port}`]);
  await until('the seed learns the route', 15_000, () => seed.routes.get('web')?.ltime === e.ltime);
  t.diagnostic(`seed synced ${Date.now() - t0} ms after being joined`);
  assert.deepEqual(seed.routes.get('web'), e);
  // (the route may also ride in b's push/pull, which replays recent events to a node being
  // joined; either way the seed also asked, because a peer appeared)
  await until('the seed completed its own sync', 10_000, () => seed.stats()['routes']?.['sync'] === 'synced');
});
