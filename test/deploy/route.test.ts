// Routes (pure): the kodama-route payload, the ordering every node applies (so all converge on
// one winner whatever the arrival order), and the kodama-routes sync answer within its limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ROUTE_MAX_BYTES,
  RouteTable,
  compareRoutes,
  decodeRoute,
  decodeSync,
  decodeSyncAnswer,
  encodeRoute,
} from '../../src/deploy/route.ts';
import type { RouteEntry, RouteSetting } from '../../src/deploy/types.ts';
import { AgentError } from '../../src/agent/errors.ts';

const enc = new TextEncoder();
const setting = (weights: Record<string, number>, by = 'manual', service = 'web'): RouteSetting => ({ service, tag: 'color', weights, by });
const entry = (ltime: number, weights: Record<string, number>, by = 'manual', service = 'web'): RouteEntry => ({ ...setting(weights, by, service), ltime });

test('encodeRoute/decodeRoute round-trip; the payload is canonical (weights sorted) whatever the key order', () => {
  const a = encodeRoute(setting({ green: 100, blue: 0 }, 'd-1'));
  const b = encodeRoute(setting({ blue: 0, green: 100 }, 'd-1'));
  assert.deepEqual(a, b);
  assert.equal(new TextDecoder().decode(a), '{"service":"web","tag":"color","weights":{"blue":0,"green":100},"by":"d-1"}');
  assert.deepEqual(decodeRoute(a), setting({ blue: 0, green: 100 }, 'd-1'));
  // an empty split (routing cleared) is a valid setting
  assert.deepEqual(decodeRoute(encodeRoute(setting({}))), setting({}));
});

test('encodeRoute refuses invalid settings and oversized payloads with a message naming the problem', () => {
  const bad: [unknown, RegExp][] = [
    [{ ...setting({ blue: 100 }), service: 'we b' }, /invalid service name/],
    [{ ...setting({ blue: 100 }), service: '' }, /invalid service name/],
    [{ ...setting({ blue: 100 }), tag: '' }, /invalid route tag/],
    [{ ...setting({ blue: 100 }), by: '' }, /'by'/],
    [setting({ blue: 101 }), /0\.\.100/],
    [setting({ blue: -1 }), /0\.\.100/],
    [setting({ blue: 50.5 }), /0\.\.100/],
    [{ ...setting({}), weights: { blue: '50' } }, /0\.\.100/],
    [{ ...setting({}), weights: [1] }, /'weights' must be an object/],
    [setting({ 'bl\nue': 1 }), /invalid tag value/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => encodeRoute(s as RouteSetting), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && re.test(e.message), JSON.stringify(s));
  }
  const many: Record<string, number> = {};
  for (let i = 0; i < 30; i++) many[`colour-number-${i}`] = 3;
  assert.throws(() => encodeRoute(setting(many)), /more than 400/);
});

test('decodeRoute: malformed payloads are undefined, never a throw', () => {
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    enc.encode('not json'),
    enc.encode('null'),
    enc.encode('[]'),
    enc.encode('{"service":"web","tag":"color","weights":{"blue":200},"by":"x"}'),
    enc.encode('{"service":"web","tag":"color","weights":{"blue":100}}'), // no by
    enc.encode('{"service":"web","tag":"color","by":"x"}'), // no weights
    new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), // invalid UTF-8
    new Uint8Array(ROUTE_MAX_BYTES + 1).fill(0x20),
  ];
  for (const c of cases) assert.equal(decodeRoute(c), undefined, new TextDecoder().decode(c));
});

test('RouteTable: higher ltime wins; an older entry arriving later changes nothing', () => {
  const t = new RouteTable();
  assert.equal(t.apply(entry(5, { blue: 100, green: 0 })), true);
  assert.equal(t.apply(entry(7, { blue: 0, green: 100 })), true);
  assert.equal(t.apply(entry(6, { blue: 50, green: 50 })), false, 'older than the current one');
  assert.equal(t.apply(entry(7, { blue: 0, green: 100 })), false, 'the very same entry again');
  assert.deepEqual(t.get('web'), entry(7, { blue: 0, green: 100 }));
  assert.equal(t.get('api'), undefined);
  assert.equal(t.apply(entry(1, { a: 1 }, 'manual', 'api')), true, 'services are independent');
  assert.deepEqual(t.all().map((e) => e.service), ['api', 'web']);
});

test('RouteTable: every arrival order of the same entries converges on one winner (equal ltimes included)', () => {
  const es: RouteEntry[] = [
    entry(3, { blue: 100, green: 0 }, 'd-a'),
    entry(9, { blue: 10, green: 90 }, 'd-a'),
    entry(9, { blue: 90, green: 10 }, 'd-b'), // same ltime, different bytes
    entry(9, { blue: 50, green: 50 }, 'd-c'),
    entry(4, { blue: 0, green: 100 }, 'manual'),
  ];
  const perms = (xs: RouteEntry[]): RouteEntry[][] =>
    xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
  const winners = new Set<string>();
  let orders = 0;
  for (const order of perms(es)) {
    const t = new RouteTable();
    for (const e of order) t.apply(e);
    winners.add(JSON.stringify(t.get('web')));
    orders++;
  }
  assert.equal(orders, 120);
  assert.equal(winners.size, 1, [...winners].join(' | '));
  // the winner is the ltime-9 entry whose canonical payload compares highest: the payloads
  // differ first in the weights ({"blue":9… > {"blue":5… > {"blue":1…)
  const w = JSON.parse([...winners][0]!) as RouteEntry;
  assert.equal(w.ltime, 9);
  assert.equal(w.by, 'd-b');
  assert.ok(compareRoutes(entry(9, { blue: 90, green: 10 }, 'd-b'), entry(9, { blue: 50, green: 50 }, 'd-c')) > 0);
  assert.ok(compareRoutes(entry(9, { blue: 1 }, 'd-b'), entry(9, { blue: 1 }, 'd-a')) > 0, 'same split: the author decides');
  // equal ltime: the comparison is of canonical bytes, so key order cannot flip it
  assert.equal(compareRoutes(entry(2, { a: 1, b: 2 }), entry(2, { b: 2, a: 1 })), 0);
});

test('RouteTable refuses invalid entries (the table holds only what encodeRoute accepts)', () => {
  const t = new RouteTable();
  assert.equal(t.apply({ ...entry(1, { blue: 100 }), ltime: -1 }), false);
  assert.equal(t.apply({ ...entry(1, { blue: 100 }), ltime: 1.5 }), false);
  assert.equal(t.apply(entry(1, { blue: 1000 })), false);
  assert.equal(t.size, 0);
  // the table keeps its own copy: mutating the caller's object changes nothing
  const e = entry(2, { blue: 100 });
  t.apply(e);
  e.weights['blue'] = 0;
  assert.equal(t.get('web')?.weights['blue'], 100);
});

test('encodeSync/decodeSync: the whole table round-trips; an empty table is a valid answer', () => {
  const t = new RouteTable();
  assert.deepEqual(decodeSync(t.encodeSync(1024)), []);
  t.apply(entry(4, { blue: 0, green: 100 }, 'd-x'));
  t.apply(entry(2, { v1: 100 }, 'manual', 'api'));
  t.apply(entry(3, {}, 'manual', 'db'));
  const back = decodeSync(t.encodeSync(1024));
  assert.ok(back !== undefined);
  assert.deepEqual(
    back.sort((a, b) => a.ltime - b.ltime),
    [entry(2, { v1: 100 }, 'manual', 'api'), entry(3, {}, 'manual', 'db'), entry(4, { blue: 0, green: 100 }, 'd-x')],
  );
  const other = new RouteTable();
  for (const e of back) other.apply(e);
  assert.deepEqual(other.all(), t.all());
});

test('encodeSync fits the limit by leaving the oldest entries out and says how many', () => {
  const t = new RouteTable();
  for (let i = 0; i < 20; i++) t.apply(entry(100 + i, { blue: i, green: 100 - i }, `d-${i}`, `svc-${i}`));
  const full = t.encodeSync(1_000_000);
  assert.equal(decodeSyncAnswer(full)?.truncated, 0);
  for (const limit of [900, 500, 300]) {
    const b = t.encodeSync(limit);
    assert.ok(b.length <= limit, `${b.length} > ${limit}`);
    const a = decodeSyncAnswer(b);
    assert.ok(a !== undefined);
    assert.ok(a.routes.length > 0 && a.routes.length < 20, `${a.routes.length} routes in ${limit} bytes`);
    assert.equal(a.routes.length + a.truncated, 20);
    // what is kept is the newest news
    const minKept = Math.min(...a.routes.map((e) => e.ltime));
    assert.equal(minKept, 100 + a.truncated);
  }
  // a limit too small for any entry still answers (nothing, truncated = all), never throws
  const tiny = decodeSyncAnswer(t.encodeSync(40));
  assert.deepEqual(tiny, { routes: [], truncated: 20 });
});

test('decodeSync: malformed answers are undefined', () => {
  const cases = [
    'x',
    '{}',
    '{"v":2,"routes":[]}',
    '{"v":1}',
    '{"v":1,"routes":{}}',
    '{"v":1,"routes":[],"truncated":-1}',
    '{"v":1,"routes":[{"service":"web","tag":"color","weights":{"a":1},"by":"m"}]}', // no ltime
    '{"v":1,"routes":[{"service":"web","tag":"color","weights":{"a":1},"by":"m","ltime":"3"}]}',
    '{"v":1,"routes":[null]}',
  ];
  for (const c of cases) assert.equal(decodeSync(enc.encode(c)), undefined, c);
});
