// SIGHUP reloads services, checks and monitoring too (issue 14), as an operator uses it: edit the
// config file, `kill -HUP`, read the log. What stays the same keeps its state (the web service
// stays advertised throughout, a passing check keeps its result); what is new starts; what is
// gone stops; each change is one log line. A broken file changes nothing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpcMembers, waitFor } from '../interop/harness.ts';
import { RpcClient } from '../../src/index.ts';
import { startWebServer } from '../../src/demo/web-server.ts';
import { startKodama, stopAll } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-reload-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('SIGHUP: services, checks and monitoring follow the edited config; unchanged ones keep their state', { timeout: 60_000 }, async (t) => {
  const web = await startWebServer({ node: 'reload-a' });
  t.after(() => web.close());
  const conf = join(dir, 'agent.json');
  const handler = (name: string): { type: string; path: string } => ({ type: 'log', path: join(dir, `${name}.log`) });
  writeFileSync(conf, JSON.stringify({
    services: [
      { name: 'web', port: web.port, checks: [{ http: '/health', interval: '200ms', rise: 1, fall: 1 }] },
      { name: 'old', port: 9001 },
    ],
    checks: [
      { name: 'disk', command: 'true', interval: '300ms' },
      { name: 'load', command: 'true', interval: '300ms' },
    ],
    monitoring: { handlers: { audit: handler('audit') } },
  }));
  const node = await startKodama('reload-a', { args: [`-config-file=${conf}`] });
  const selfTags = async (): Promise<Record<string, string> | undefined> => (await rpcMembers(node.rpcAddr))?.find((m) => m.name === 'reload-a')?.tags;
  const stats = async (): Promise<Record<string, Record<string, string>>> => {
    const c = await RpcClient.connect(node.rpcAddr);
    try {
      return await c.stats();
    } finally {
      c.close();
    }
  };
  await waitFor('s:web and s:old advertised', 15_000, async () => {
    const tags = await selfTags();
    return tags?.['s:web'] === String(web.port) && tags['s:old'] === '9001' ? true : undefined;
  }, () => node.output());
  await waitFor('disk and load passing', 15_000, async () => {
    const s = (await stats())['check_states'];
    return s?.['disk'] === 'passing' && s['load'] === 'passing' ? true : undefined;
  }, () => node.output());
  const runsBefore = Number((await stats())['checks']?.['runs'] ?? 0);

  // Watch s:web while the reload happens: it must never leave the tags.
  let webGone = 0;
  let watching = true;
  const watcher = (async () => {
    for (let i = 0; i < 2000 && watching; i++) {
      const tags = await selfTags();
      if (tags !== undefined && tags['s:web'] !== String(web.port)) webGone++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  writeFileSync(conf, JSON.stringify({
    services: [
      { name: 'web', port: web.port, checks: [{ http: '/health', interval: '200ms', rise: 1, fall: 1 }] },
      { name: 'api', port: 9002 },
    ],
    checks: [
      { name: 'disk', command: 'true', interval: '300ms' },
      { name: 'mem', command: 'echo MEM WARNING; exit 1', interval: '300ms' },
    ],
    monitoring: { handlers: { audit: handler('audit'), ops: handler('ops') }, default_handlers: ['audit', 'ops'] },
  }));
  node.signal('SIGHUP');
  await waitFor('the reload done', 10_000, () => (node.output().includes('agent: configuration reloaded') ? true : undefined), () => node.output());
  await waitFor('s:api in, s:old out', 10_000, async () => {
    const tags = await selfTags();
    return tags?.['s:api'] === '9002' && tags['s:old'] === undefined ? true : undefined;
  }, () => node.output());
  await waitFor('mem running (warning), load gone', 10_000, async () => {
    const s = (await stats())['check_states'];
    return s?.['mem'] === 'warning' && s['load'] === undefined ? true : undefined;
  }, () => node.output());
  watching = false;
  await watcher;
  assert.equal(webGone, 0, 'the unchanged web service stayed advertised through the reload');
  const after = await stats();
  assert.equal(after['check_states']?.['disk'], 'passing', 'the unchanged check kept its state');
  assert.ok(Number(after['checks']?.['runs']) > runsBefore);
  assert.equal(after['services']?.['web'], 'healthy');
  assert.equal(after['services']?.['api'], 'healthy');
  assert.equal(after['services']?.['old'], undefined);

  const out = node.output();
  assert.match(out, /agent: reload: services: added api; removed old/);
  assert.match(out, /agent: reload: checks: added mem; removed load/);
  assert.match(out, /agent: reload: monitoring: handlers added ops; default_handlers \[audit, ops\], member_handlers \[audit, ops\]/);
  assert.doesNotMatch(out, /disk stopped/);

  // A broken file: an error that says so, and nothing changes.
  writeFileSync(conf, '{"services": [');
  node.signal('SIGHUP');
  await waitFor('the failed reload reported', 10_000, () => (node.output().includes('Failed to reload configs') ? true : undefined), () => node.output());
  const tags = await selfTags();
  assert.equal(tags?.['s:api'], '9002');
  assert.equal(tags?.['s:web'], String(web.port));
});
