// The container watcher against an engine that misbehaves in ways a real one rarely does on
// demand: a socket that is not there yet, malformed JSON, a restart (socket gone, then back), a
// garbage event line, a container with unusable labels (the engine: fake-engine.ts); what the
// watcher does against real Podman is test/discovery/containers-podman.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerSource } from '../../src/discovery/containers/source.ts';
import type { ContainerService } from '../../src/discovery/containers/labels.ts';
import { until } from '../cli/helpers.ts';
import { fakeEngine, running } from './fake-engine.ts';
import type { FakeEngine } from './fake-engine.ts';

test('socket missing, then there; malformed JSON and a restart keep the last known set with one line each; events list at once; bad labels one line', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-engine-'));
  const socket = join(dir, 'engine.sock');
  const lines: string[] = [];
  const changes: ContainerService[][] = [];
  const source = startContainerSource({
    socket,
    // Only events and reconnects may cause a list within this test's waits.
    pollMs: 60_000,
    log: (level, msg) => lines.push(`${level} ${msg}`),
    onChange: (s) => changes.push(s),
    minBackoffMs: 20,
    maxBackoffMs: 100,
  });
  let engine: FakeEngine | undefined;
  t.after(async () => {
    source.stop();
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const names = (): string[] => (changes.at(-1) ?? []).map((c) => `${c.container}:${c.spec.name}:${c.spec.port}:${c.phase}`);

  // 1. No socket yet: one clear line, retries, nothing offered.
  await until('the engine reported missing', 5000, () => lines.some((l) => l.includes('does not exist')));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(lines.filter((l) => l.startsWith('WARN')).length, 1, `one line, not one per retry:\n${lines.join('\n')}`);
  assert.ok(source.counters()['list_failures']! >= 3, 'it kept retrying');
  assert.match(lines.find((l) => l.startsWith('WARN'))!, /^WARN containers: no usable answer from the engine at .*engine\.sock: the socket does not exist .*; no services from containers yet; retrying/);
  assert.equal(changes.length, 0);
  assert.equal(source.reachable, false);

  // 2. The engine comes up: one line, the services.
  engine = await fakeEngine(socket);
  engine.containers = [running('web1', 'web', '18080'), { Labels: { 'kodama.service': 'api', 'kodama.port': 'eighty' }, Id: 'bad1', Names: ['/bad1'], State: 'running' }, { Id: 'other', Labels: {} }];
  await until('web1 offered', 5000, () => names().join() === 'web1:web:18080:running');
  assert.ok(lines.some((l) => /^INFO containers: engine at .* answers: 3 labelled container\(s\)/.test(l)), lines.join('\n'));
  assert.equal(lines.filter((l) => l.includes('ignoring container bad1: label kodama.port="eighty"')).length, 1);
  await until('the event stream is open', 5000, () => engine!.streams() === 1);

  // 3. An event lists again at once (the poll is a minute away); a garbage line is dropped.
  const listsBefore = engine.lists;
  engine.push('{not json');
  engine.containers = [...engine.containers, running('web2', 'api', '18081')];
  engine.push(JSON.stringify({ Type: 'container', Action: 'start', Actor: { ID: 'web2', Attributes: { 'kodama.service': 'api' } } }));
  await until('web2 offered after its start event', 5000, () => names().includes('web2:api:18081:running'));
  assert.ok(engine.lists > listsBefore);
  assert.equal(source.counters()['bad_events'], 1);
  assert.equal(lines.filter((l) => l.includes('ignoring container bad1')).length, 1, 'a bad container is one line, not one per list');

  // 3b. A storm of events (one every 5 ms) does not keep postponing the list.
  const beforeStorm = engine.lists;
  for (let i = 0; i < 60; i++) {
    engine.push(JSON.stringify({ Type: 'container', Action: 'exec_start', Actor: { ID: 'web1', Attributes: { 'kodama.service': 'web' } } }));
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(engine.lists - beforeStorm >= 2, `lists during a 300 ms storm of events: ${engine.lists - beforeStorm}`);

  // 4. A kill event with SIGTERM (Docker's sign of a stop): stopping while still "running".
  engine.push(JSON.stringify({ Type: 'container', Action: 'kill', Actor: { ID: 'web2', Attributes: { 'kodama.service': 'api', signal: '15' } } }));
  await until('web2 stopping', 5000, () => names().includes('web2:api:18081:stopping'));

  // 5. Malformed JSON from the list: one line, the last known set stays.
  const changesBefore = changes.length;
  engine.rawList = '[{"Id": "web1",';
  engine.push(JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'web2', Attributes: { 'kodama.service': 'api' } } }));
  await until('the malformed list reported', 5000, () => lines.some((l) => l.includes('malformed JSON')));
  assert.match(lines.find((l) => l.includes('malformed JSON'))!, /keeping the last known 2 \(web, api\)/);
  assert.equal(changes.length, changesBefore, 'no change handed on from a bad answer');
  engine.rawList = undefined;
  engine.containers = [running('web1', 'web', '18080')];
  await until('the engine answers again', 5000, () => names().join() === 'web1:web:18080:running');
  assert.equal(lines.filter((l) => l.includes('malformed JSON')).length, 1);
  assert.ok(lines.some((l) => l.includes('answers again')));

  // 6. The engine restarts: socket gone (one line for it all), back with a new container.
  const warnsBefore = lines.filter((l) => l.startsWith('WARN')).length;
  await engine.close();
  engine = undefined;
  await until('the restart noticed', 5000, () => source.reachable === false);
  await new Promise((r) => setTimeout(r, 500));
  const warns = lines.filter((l) => l.startsWith('WARN')).slice(warnsBefore);
  assert.equal(warns.length, 1, `one line for the engine's restart, not one per retry nor one for the stream:\n${warns.join('\n')}`);
  assert.deepEqual(source.current().map((c) => c.container), ['web1'], 'the last known set is kept while the engine is away');
  engine = await fakeEngine(socket);
  engine.containers = [running('web1', 'web', '18080'), running('web3', 'db', '5432')];
  await until('web3 offered after the restart', 5000, () => names().includes('web3:db:5432:running'));
  await until('the event stream reconnected', 5000, () => engine!.streams() === 1);
  assert.ok(source.reachable);
});
