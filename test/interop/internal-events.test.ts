// Acceptance (issue 18): kodama's own traffic does not run users' handlers. Two kodama agents
// and one real serf agent, each with one catch-all handler (the usual serf style: a script that
// logs every call), then what an operator does all day: `kodama checks`, dashboard API reads
// (which query the cluster), a route change. Afterwards:
// - the kodama nodes' handlers ran for no kodama-* query or user event;
// - the serf node's handler ran for no kodama-* query (they carry a tag filter serf honours
//   before its handler) and, of kodama's user events, only the documented kodama-route (Serf
//   gives every user event to its handlers: docs/events.md names them);
// - a third kodama agent started with -show-internal-events did see the queries, so the zeros
//   above are not the queries failing to arrive.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, waitStatuses } from './harness.ts';
import { KODAMA_BIN, REPO, freePort, startKodama, startSerf, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-internal-events-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

// Logs one line per call: the event type, then the user event's or query's name.
const SCRIPT = `#!/bin/sh
echo "$SERF_EVENT $SERF_USER_EVENT$SERF_QUERY_NAME" >> "$1"
cat > /dev/null
`;

const logOf = (name: string): string => join(dir, `${name}.calls`);
const calls = (name: string): string[] => (existsSync(logOf(name)) ? readFileSync(logOf(name), 'utf8').split('\n').filter((l) => l !== '') : []);
const internal = (name: string): string[] => calls(name).filter((l) => / kodama-/.test(l));

function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KODAMA_BIN, args, { cwd: REPO, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function getJson(url: string): Promise<number> {
  const r = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  await r.text();
  return r.status;
}

test('internal queries and events never run a catch-all handler (kodama), nor a serf handler for queries', { timeout: 150_000 }, async () => {
  const script = join(dir, 'handler.sh');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  const handler = (name: string): string[] => ['-event-handler', `${script} ${logOf(name)}`];

  // k1: the operator's node (dashboard API, deploy coordinator, a check); k2: a balancer.
  const httpPort = await freePort();
  const lbPort = await freePort();
  writeFileSync(join(dir, 'k1.json'), JSON.stringify({
    checks: [{ name: 'alive', command: 'true', interval: '1s' }],
  }));
  writeFileSync(join(dir, 'k2.json'), JSON.stringify({
    balancer: { driver: 'embedded', services: { web: { bind: `127.0.0.1:${lbPort}` } } },
  }));
  const s1 = await startSerf('s1', { args: handler('s1') });
  const join1 = [`127.0.0.1:${s1.port}`];
  const k1 = await startKodama('k1', {
    join: join1,
    args: [...handler('k1'), `-config-file=${join(dir, 'k1.json')}`, `-http-addr=127.0.0.1:${httpPort}`, `-data-dir=${join(dir, 'k1-data')}`],
  });
  const k2 = await startKodama('k2', { join: join1, args: [...handler('k2'), `-config-file=${join(dir, 'k2.json')}`] });
  const k3 = await startKodama('k3', { join: join1, args: [...handler('k3'), '-show-internal-events'] });
  const all: AgentProcess[] = [s1, k1, k2, k3];
  const context = (): string => all.map((p) => `--- ${p.name}\n${calls(p.name).join('\n')}\n${p.output().slice(-1500)}`).join('\n');
  for (const p of all) await waitStatuses(p.rpcAddr, { s1: 'alive', k1: 'alive', k2: 'alive', k3: 'alive' }, 30_000, context);

  // What an operator does: two `kodama checks`, six dashboard reads, one route change.
  for (let i = 0; i < 2; i++) {
    const r = await cli(['checks', `-rpc-addr=${k1.rpcAddr}`]);
    assert.equal(r.code, 0, `kodama checks: ${r.stderr}`);
  }
  const api = `http://127.0.0.1:${httpPort}/v1`;
  for (const path of ['/services', '/checks', '/deploys', '/members', '/services', '/checks']) {
    assert.equal(await getJson(`${api}${path}`), 200, `GET /v1${path}`);
  }
  const route = await cli(['deploy', 'route', `-rpc-addr=${k1.rpcAddr}`, '-service', 'web', 'blue=100']);
  assert.equal(route.code, 0, `kodama deploy route: ${route.stderr}`);

  // The control node saw kodama's queries and the route event; serf's handler saw the route too.
  await waitFor('k3 (-show-internal-events) to see kodama-checks, kodama-deploys and kodama-route', 20_000, () => {
    const seen = internal('k3').join('\n');
    return /query kodama-checks/.test(seen) && /query kodama-deploys/.test(seen) && /user kodama-route/.test(seen) ? true : undefined;
  }, context);
  await waitFor('s1 to run its handler for user event kodama-route', 20_000, () => (internal('s1').includes('user kodama-route') ? true : undefined), context);
  // Every node got the same gossip at the same time; give slower handler lanes a moment.
  await new Promise((r) => setTimeout(r, 1500));

  const counts = Object.fromEntries(all.map((p) => [p.name, { calls: calls(p.name).length, internal: internal(p.name).length }]));
  console.log(`handler calls (all / kodama-*): ${JSON.stringify(counts)}`);
  assert.deepEqual(internal('k1'), [], `k1's handler ran for kodama's own traffic\n${context()}`);
  assert.deepEqual(internal('k2'), [], `k2's handler ran for kodama's own traffic\n${context()}`);
  assert.deepEqual(internal('s1'), ['user kodama-route'], `s1 (serf) ran its handler for kodama's queries\n${context()}`);
  assert.ok(internal('k3').some((l) => l.startsWith('query kodama-')), 'the control node saw kodama-* queries');
  // The handlers did run for what users want: member joins.
  for (const p of all) assert.ok(calls(p.name).some((l) => l.startsWith('member-join')), `${p.name}'s handler saw member-join`);
});
