// Two in-process agents: checks follow the node's role, their state reaches the other node as the
// `chk` tag, detail answers the `kodama-checks` query, TTL results are pushed with
// `kodama-check-result`, and the checks' tag never clobbers the services' `s:*` tags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { decodeSummary } from '../../src/checks/summary.ts';
import { parseCheckSpecs } from '../../src/checks/config.ts';
import type { ChecksReport } from '../../src/checks/types.ts';
import { AgentError } from '../../src/agent/errors.ts';

async function until<T>(get: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Send a query to one node; resolves with its answer as soon as it arrives (not at the deadline). */
function ask(from: Agent, to: string, name: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answered = false;
    from.query({
      name, payload: new TextEncoder().encode(payload), filterNodes: [to], timeoutMs: 5000,
      onResponse: (node, p) => {
        if (node !== to || answered) return;
        answered = true;
        resolve(Buffer.from(p).toString('utf8'));
      },
    }).then(() => {
      if (!answered) reject(new Error(`${to} did not answer ${name}`));
    }, reject);
  });
}

function agent(name: string, extra: Partial<Parameters<typeof createAgent>[0]> = {}, logs?: string[]): Agent {
  return createAgent({
    nodeName: name, bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'INFO',
    logSink: (l) => logs?.push(l), leavePropagateDelayMs: 0, ...extra,
  });
}

test('checks by role: tag chk seen by a peer, kodama-checks report, TTL push, role change stops a check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-checks-'));
  const marker = join(dir, 'broken');
  const logs: string[] = [];
  const checks = parseCheckSpecs([
    { name: 'marker', command: `if [ -e '${marker}' ]; then echo "MARKER CRITICAL - file present"; exit 2; fi; echo "MARKER OK"`, interval: '200ms', subscriptions: ['role=web'] },
    { name: 'hb', ttl: '1s' },
  ], 'test');
  const web = agent('web-1', {
    tags: { role: 'web', chk: 'stale', mon: '1' },
    checks,
    services: [{ name: 'site', port: 8080, protocol: 'http', weight: 100, tags: [], checks: [] }],
  }, logs);
  const obs = agent('obs-1');
  t.after(async () => {
    await web.stop();
    await obs.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const checkEvents: string[] = [];
  web.on('check', (e) => checkEvents.push(`${e.record.name}:${e.previous?.status ?? '-'}->${e.record.status}`));
  await web.start();
  await obs.start();
  assert.equal((await obs.join([`127.0.0.1:${web.bindAddress.port}`])).num, 1);
  const seen = (): Record<string, string> | undefined => obs.members().find((m) => m.name === 'web-1')?.tags;

  // Passing: `chk` counts the check, lists nothing; the user's stale chk/mon are not gossiped.
  const t1 = await until(() => { const tg = seen(); return tg?.['chk'] === '1' ? tg : undefined; }, 'chk=1 at the observer');
  assert.equal(t1['mon'], undefined, 'mon=1 only for monitors');
  assert.equal(t1['role'], 'web');
  assert.ok(t1['s:site'] !== undefined, 'service tag present');

  // The script starts failing: the peer sees it, the service tag survives the chk update.
  writeFileSync(marker, '');
  const t2 = await until(() => { const tg = seen(); return tg?.['chk']?.includes('marker=c') === true ? tg : undefined; }, 'marker critical at the observer');
  assert.ok(t2['s:site'] !== undefined, 's:site kept across the chk update');
  const sum = decodeSummary(t2['chk'] ?? '');
  assert.equal(sum?.entries[0]?.name, 'marker');
  assert.ok(logs.some((l) => l.includes('checks: marker is critical (1x): MARKER CRITICAL - file present')), logs.join('\n'));

  // Detail by query, from the other node.
  const raw = await ask(obs, 'web-1', 'kodama-checks', '');
  assert.ok(Buffer.byteLength(raw) <= 1024);
  const report = JSON.parse(raw) as ChecksReport;
  assert.equal(report.node, 'web-1');
  const m = report.checks.find((c) => c.name === 'marker');
  assert.equal(m?.status, 2);
  assert.equal(m?.output, 'MARKER CRITICAL - file present');
  assert.match(m?.history ?? '', /^[0-3]*2$/);
  assert.ok(report.metrics.memTotalBytes > 0);
  // with a filter: only the named checks
  const rf = JSON.parse(await ask(obs, 'web-1', 'kodama-checks', '{"checks":["marker"]}')) as ChecksReport;
  assert.deepEqual(rf.checks.map((c) => c.name), ['marker']);

  // TTL: nothing pushed for 1 s → critical; a pushed result brings it back.
  await until(() => web.checkRecords().find((r) => r.name === 'hb' && r.status === 2), 'hb TTL expiry', 10_000);
  assert.equal(web.checkRecords().find((r) => r.name === 'hb')?.output, 'TTL expired: no result for 1 s');
  await until(() => seen()?.['chk']?.includes('hb=c') === true, 'hb critical at the observer');
  let recovered = false;
  web.on('check', (e) => {
    if (e.record.name === 'hb' && e.record.status === 0 && e.record.output === 'worker alive') recovered = true;
  });
  assert.equal(await ask(obs, 'web-1', 'kodama-check-result', JSON.stringify({ check: 'hb', status: 0, output: 'worker alive' })), 'ok');
  assert.ok(recovered, 'the pushed result was recorded');
  assert.match(await ask(obs, 'web-1', 'kodama-check-result', '{"check":"nope","status":0}'), /^error: no check named "nope"/);
  assert.match(await ask(obs, 'web-1', 'kodama-check-result', 'not json'), /^error: payload is not JSON/);

  // Role change: marker stops, its entry leaves the tag; hb (every node) keeps running.
  web.setTags({ role: 'db' });
  assert.deepEqual(web.checkRecords().map((r) => r.name), ['hb']);
  const t3 = await until(() => { const tg = seen(); return tg?.['role'] === 'db' ? tg : undefined; }, 'role=db at the observer');
  // One alive message carried role and chk together: no moment where role=db still lists marker.
  const s3 = decodeSummary(t3['chk'] ?? '');
  assert.equal(s3?.total, 1);
  assert.ok(!(s3?.entries ?? []).some((e) => e.name === 'marker'));
  assert.ok(t3['s:site'] !== undefined);
  assert.ok(logs.some((l) => l.includes('checks: marker stopped')));

  const stats = web.stats();
  assert.ok(Number(stats['checks']?.['runs']) >= 2, JSON.stringify(stats['checks']));
  assert.equal(stats['checks']?.['active'], '1');
  assert.match(stats['check_states']?.['hb'] ?? '', /^(passing|critical)$/);
  assert.ok(Number(stats['checks']?.['checks_queries']) >= 2);
  assert.ok(checkEvents.includes('marker:0->2'), checkEvents.join(' '));
  assert.ok(checkEvents.includes('hb:2->0'), checkEvents.join(' '));
  assert.equal(obs.stats()['checks'], undefined, 'no checks section without checks');
});

test('a monitor node gossips mon=1 and runs its monitor role; stop() stops it', async (t) => {
  const mon = agent('mon-1', { monitoring: { handlers: [], defaultHandlers: [], memberHandlers: [] }, tags: { role: 'ops' } });
  const obs = agent('obs-2');
  t.after(async () => {
    await mon.stop();
    await obs.stop();
  });
  await mon.start();
  await obs.start();
  assert.ok(mon.monitorRole !== undefined, 'monitor role started');
  assert.equal((await obs.join([`127.0.0.1:${mon.bindAddress.port}`])).num, 1);
  const tags = await until(() => obs.members().find((m) => m.name === 'mon-1' && m.tags['mon'] === '1')?.tags, 'mon=1 at the observer');
  assert.equal(tags['chk'], undefined, 'no checks: no chk tag');
  assert.equal(tags['role'], 'ops');
  // user tags cannot remove or fake it
  mon.setTags({ role: 'ops2', mon: '0' });
  assert.equal(mon.members().find((m) => m.name === 'mon-1')?.tags['mon'], '1');
  assert.ok(mon.stats()['monitor'] !== undefined);
  await mon.stop();
  assert.equal(mon.monitorRole, undefined);
});

test('create() refuses duplicate check names and, on a monitor, handlers it does not define', () => {
  const [c] = parseCheckSpecs([{ name: 'x', command: 'true', handlers: ['ops'] }], 't');
  assert.ok(c !== undefined);
  assert.throws(() => agent('a', { checks: [c, c] }), (e: unknown) => e instanceof AgentError && /check "x" is configured twice/.test(e.message));
  assert.throws(() => agent('a', { checks: [c], monitoring: { handlers: [], defaultHandlers: [], memberHandlers: [] } }),
    (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && /'handlers' names "ops"/.test(e.message));
  // A plain node may name handlers only the monitors define.
  agent('a', { checks: [c] });
});
