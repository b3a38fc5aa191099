// The agent with `containers` as a peer sees it: an in-process agent watching an engine
// (fake-engine.ts: the states are set by hand, so every transition is certain) beside its
// configured services; a second agent reads the tags. A container's service is advertised once
// its check passes, drained while it stops, dropped when gone; the configured name wins over a
// container's until a reload removes it; the user's tags are never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { until } from '../cli/helpers.ts';
import { fakeEngine, running } from './fake-engine.ts';

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

test('container services through the agent: advertised when healthy, ,drain while stopping, dropped when gone; config wins a name until reloaded away; user tags untouched', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-ctr-agent-'));
  const socket = join(dir, 'engine.sock');
  const engine = await fakeEngine(socket);
  const api = await listening();
  const web = await listening();
  const lines: string[] = [];
  const a: Agent = createAgent({
    nodeName: 'a',
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'INFO',
    logSink: (l) => lines.push(l),
    tags: { role: 'web' },
    services: [{ name: 'web', port: 1, protocol: 'http', weight: 100, tags: [], checks: [] }],
    containers: { socket, pollMs: 200 },
  });
  const b: Agent = createAgent({ nodeName: 'b', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'WARN', logSink: () => {} });
  t.after(async () => {
    await a.stop();
    await b.stop();
    await engine.close();
    api.server.close();
    web.server.close();
    await rm(dir, { recursive: true, force: true });
  });
  await a.start();
  await b.start();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  const tagsAtB = (): Record<string, string> => b.members().find((m) => m.name === 'a')?.tags ?? {};
  const services = (): string => Object.entries(tagsAtB()).filter(([k]) => k.startsWith('s:')).map(([k, v]) => `${k}=${v}`).sort().join(' ');
  await until('b sees a with its configured web', 5000, () => services() === 's:web=1');

  // A container offering `api` (tcp check on a real port), and one offering `web` (the config's).
  engine.containers = [
    running('c-api', 'api', String(api.port), { Labels: { 'kodama.service': 'api', 'kodama.port': String(api.port), 'kodama.interval': '50ms', 'kodama.rise': '1' } }),
    running('c-web', 'web', String(web.port), { Labels: { 'kodama.service': 'web', 'kodama.port': String(web.port), 'kodama.check': 'none' }, Created: 5 }),
  ];
  await until('b sees api from the container', 5000, () => services() === `s:api=${api.port} s:web=1`);
  assert.equal(tagsAtB()['role'], 'web');
  assert.ok(lines.some((l) => l.includes('containers: c-web offers web, already offered by the services config: ignored')), lines.join('\n'));

  // Stopping: drained, still gossiped with ,drain; gone: dropped.
  engine.containers = [{ ...(engine.containers[0] as object), State: 'stopping' }, engine.containers[1]!];
  await until('api drains', 5000, () => services() === `s:api=${api.port},drain s:web=1`);
  assert.ok(lines.some((l) => l.includes('containers: c-api is stopping: api drains')));
  engine.containers = [{ ...(engine.containers[0] as object), State: 'exited' }, engine.containers[1]!];
  await until('api gone', 5000, () => services() === 's:web=1');
  assert.ok(lines.some((l) => l.includes('containers: c-api is gone: api withdrawn')));

  // A reload without the configured web: the container's web takes the name.
  await a.reload({ sections: {} });
  await until('web from the container', 5000, () => services() === `s:web=${web.port}`);
  assert.equal(tagsAtB()['role'], 'web', 'user tags untouched throughout');
  assert.deepEqual(a.serviceStatus().map((s) => `${s.name}:${s.health}`), ['web:healthy']);
});
