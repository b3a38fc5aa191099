// Containers → services, as the engine lists them (labels.ts, pure), table by table: labels to a
// spec, bad labels refused with the label named, states to phases, events, and which container
// wins a shared service name. Plus the `containers` config section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseServices, readContainer, readEvent } from '../../src/discovery/containers/labels.ts';
import type { ContainerService } from '../../src/discovery/containers/labels.ts';
import { parseContainersSpec } from '../../src/discovery/service-config.ts';
import { AgentError } from '../../src/agent/errors.ts';

/** One entry as Podman's `GET /containers/json?all=true` lists it (trimmed). */
const listed = (labels: Record<string, string>, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  Id: 'c0ffee' + '0'.repeat(58),
  Names: ['/web1'],
  Image: 'localhost/kbox:latest',
  Created: 1796693945,
  Ports: [],
  Labels: labels,
  State: 'running',
  Status: 'Up 2 seconds',
  ...more,
});

test('labels → a service spec: defaults, each check form, protocol, weight, timing', () => {
  const r = readContainer(listed({ 'kodama.service': 'web', 'kodama.port': '18080' }));
  assert.equal(r.kind, 'service');
  if (r.kind !== 'service') return;
  assert.equal(r.service.container, 'web1');
  assert.equal(r.service.phase, 'running');
  assert.deepEqual(r.service.spec, {
    name: 'web',
    port: 18080,
    protocol: 'http',
    weight: 100,
    tags: ['container=web1'],
    checks: [{ kind: 'tcp', intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2 }],
  });
  const cases: [Record<string, string>, unknown][] = [
    [{ 'kodama.check': 'http:/health' }, [{ kind: 'http', path: '/health', expectStatus: 200, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2 }]],
    [{ 'kodama.check': 'http:/ready=204', 'kodama.interval': '250ms', 'kodama.timeout': '100ms', 'kodama.rise': '1', 'kodama.fall': '3' }, [{ kind: 'http', path: '/ready', expectStatus: 204, intervalMs: 250, timeoutMs: 100, rise: 1, fall: 3 }]],
    [{ 'kodama.check': 'none' }, []],
    [{ 'kodama.check': ' tcp ' }, [{ kind: 'tcp', intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2 }]],
  ];
  for (const [extra, checks] of cases) {
    const x = readContainer(listed({ 'kodama.service': 'web', 'kodama.port': '18080', ...extra }));
    assert.ok(x.kind === 'service', JSON.stringify(extra));
    assert.deepEqual(x.service.spec.checks, checks, JSON.stringify(extra));
  }
  const tcp = readContainer(listed({ 'kodama.service': 'db', 'kodama.port': '5432', 'kodama.protocol': 'tcp', 'kodama.weight': '7' }));
  assert.ok(tcp.kind === 'service');
  assert.deepEqual([tcp.service.spec.protocol, tcp.service.spec.weight], ['tcp', 7]);
});

test('a published port is what balancers reach: the host port of kodama.port is advertised; loopback-only publishing is not', () => {
  const ports = [
    { PrivatePort: 9090, PublicPort: 30001, IP: '0.0.0.0', Type: 'tcp' },
    { PrivatePort: 8080, PublicPort: 30002, IP: '0.0.0.0', Type: 'udp' },
    { PrivatePort: 8080, PublicPort: 30003, IP: '0.0.0.0', Type: 'tcp' },
  ];
  const r = readContainer(listed({ 'kodama.service': 'web', 'kodama.port': '8080' }, { Ports: ports }));
  assert.ok(r.kind === 'service');
  assert.equal(r.service.spec.port, 30003);
  const lo = readContainer(listed({ 'kodama.service': 'web', 'kodama.port': '8080' }, { Ports: [{ PrivatePort: 8080, PublicPort: 30004, IP: '127.0.0.1', Type: 'tcp' }] }));
  assert.ok(lo.kind === 'service');
  assert.equal(lo.service.spec.port, 8080, 'not published where a balancer reaches: the port as labelled (host network)');
});

test('bad labels are refused with the label named and what is expected; containers without kodama.service are not ours', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ 'kodama.service': 'web' }, /label kodama\.port is required/],
    [{ 'kodama.service': 'web', 'kodama.port': '0' }, /label kodama\.port="0": expected an integer from 1 to 65535/],
    [{ 'kodama.service': 'web', 'kodama.port': '70000' }, /kodama\.port="70000"/],
    [{ 'kodama.service': 'web', 'kodama.port': 'http' }, /kodama\.port="http"/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.check': 'http:health' }, /kodama\.check="http:health": expected "tcp", "http:\/path"/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.check': 'http:/x=999' }, /status must be from 100 to 599/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.interval': '1' }, /kodama\.interval="1": expected a duration/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.interval': '1ms' }, /must be at least 10ms/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.protocol': 'udp' }, /kodama\.protocol="udp": expected "http" or "tcp"/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.weight': '300' }, /kodama\.weight="300": expected an integer from 0 to 256/],
    [{ 'kodama.service': 'web', 'kodama.port': '80', 'kodama.prot': 'tcp' }, /unknown label\(s\) kodama\.prot/],
    [{ 'kodama.service': 'no spaces', 'kodama.port': '80' }, /label kodama\.service="no spaces": expected a service name/],
  ];
  for (const [labels, re] of bad) {
    const r = readContainer(listed(labels));
    assert.equal(r.kind, 'invalid', JSON.stringify(labels));
    assert.ok(r.kind === 'invalid' && re.test(r.error), `${JSON.stringify(labels)}: ${r.kind === 'invalid' ? r.error : ''}`);
    assert.ok(r.kind === 'invalid' && r.container === 'web1');
  }
  for (const raw of [listed({ other: 'x' }), listed({}), { Labels: null }, null, 'text', 42, [], {}]) {
    assert.deepEqual(readContainer(raw), { kind: 'ignored' }, JSON.stringify(raw));
  }
  assert.equal(readContainer({ Labels: { 'kodama.service': 'web', 'kodama.port': '80' } }).kind, 'invalid', 'ours, but without an Id');
});

test('states: running → running, stopping (or a kill event seen) → stopping, anything else → gone', () => {
  const labels = { 'kodama.service': 'web', 'kodama.port': '80' };
  const phase = (state: string, stopping = new Set<string>()): string => {
    const r = readContainer(listed(labels, { State: state }), stopping);
    assert.ok(r.kind === 'service');
    return r.service.phase;
  };
  assert.equal(phase('running'), 'running');
  assert.equal(phase('stopping'), 'stopping');
  assert.equal(phase('running', new Set(['c0ffee' + '0'.repeat(58)])), 'stopping');
  for (const s of ['exited', 'created', 'paused', 'dead', 'removing', 'configured', '']) assert.equal(phase(s), 'gone', s);
});

test('events: ours → list again; a kill with an ending signal also marks the container stopping; others are not ours', () => {
  const ev = (action: string, attrs: Record<string, string>, type = 'container'): unknown => ({ Type: type, Action: action, Actor: { ID: 'abc', Attributes: { name: 'web1', ...attrs } } });
  const ours = { 'kodama.service': 'web' };
  assert.deepEqual(readEvent(ev('start', ours)), { relist: true });
  assert.deepEqual(readEvent(ev('die', ours)), { relist: true });
  assert.deepEqual(readEvent(ev('kill', { ...ours, signal: '15' })), { relist: true, stoppingId: 'abc' });
  assert.deepEqual(readEvent(ev('kill', { ...ours, signal: 'SIGTERM' })), { relist: true, stoppingId: 'abc' });
  assert.deepEqual(readEvent(ev('kill', { ...ours, signal: '1' })), { relist: true }, 'a HUP reloads, it does not stop');
  assert.equal(readEvent(ev('start', {})), undefined);
  assert.equal(readEvent(ev('pull', ours, 'image')), undefined);
  for (const junk of [null, 'x', {}, { Type: 'container' }, { Type: 'container', Actor: 'x' }]) assert.equal(readEvent(junk), undefined);
});

test('one service per name: the config wins, then running over stopping, then the oldest; the losers are named', () => {
  const svc = (id: string, name: string, created: number, phase: ContainerService['phase']): ContainerService => ({
    id,
    container: `c-${id}`,
    created,
    phase,
    spec: { name, port: 1, protocol: 'http', weight: 100, tags: [], checks: [] },
  });
  const found = [svc('a', 'web', 20, 'running'), svc('b', 'web', 10, 'running'), svc('c', 'web', 5, 'stopping'), svc('d', 'api', 1, 'running'), svc('e', 'db', 1, 'running'), svc('f', 'x', 1, 'gone')];
  const { chosen, shadowed } = chooseServices(found, new Set(['db']));
  assert.deepEqual(chosen.map((c) => `${c.spec.name}:${c.id}`), ['api:d', 'web:b']);
  assert.deepEqual(shadowed.map((s) => `${s.service.id}<${s.by}`).sort(), ['a<container c-b', 'c<container c-b', 'e<the services config'].sort());
});

test('config section `containers`: socket required, poll optional (≥ 100 ms), unknown keys named', () => {
  assert.deepEqual(parseContainersSpec({ socket: '/run/podman/podman.sock' }, 'f.json'), { socket: '/run/podman/podman.sock', pollMs: 1000 });
  assert.deepEqual(parseContainersSpec({ socket: 'unix:///tmp/p.sock', poll: '500ms' }, 'f.json'), { socket: '/tmp/p.sock', pollMs: 500 });
  const bad: [unknown, RegExp][] = [
    ['/run/podman/podman.sock', /f\.json: containers: expected an object such as \{"socket"/],
    [{}, /f\.json: containers: 'socket' expected the path of the engine's API socket/],
    [{ socket: ' ' }, /'socket' expected/],
    [{ socket: '/s', poll: '10ms' }, /'poll' must be at least 100ms/],
    [{ socket: '/s', poll: 5 }, /'poll' expected a duration string/],
    [{ socket: '/s', sockt: 'x' }, /unknown key\(s\) 'sockt'/],
  ];
  for (const [raw, re] of bad) assert.throws(() => parseContainersSpec(raw, 'f.json'), (e: unknown) => e instanceof AgentError && re.test(e.message), JSON.stringify(raw));
});
