// Acceptance, mixed cluster (2 real serf + 2 kodama on 127.0.0.1, the same handler script on
// every node): `serf event` runs kodama's handlers and `kodama event` runs serf's; `serf query`
// gets answers from kodama's query handlers and `kodama query` from serf's, node and tag filters
// honoured; `serf tags -set` reaches kodama's handler as member-update and `kodama tags -set`
// reaches serf's; `serf members|event|query|tags|monitor -rpc-addr <kodama>` work.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, waitStatuses } from './harness.ts';
import { KODAMA_BIN, REPO, startKodama, startSerf, stopAll } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-mixed-events-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

// One handler for everything, written as serf users write them. Queries answer on stdout.
const SCRIPT = `#!/bin/sh
out="$1"
case "$SERF_EVENT" in
  user) echo "user $SERF_USER_EVENT $(cat)" >> "$out" ;;
  query) cat > /dev/null; printf 'answer-from-%s' "$SERF_SELF_NAME" ;;
  *) while read -r line; do echo "$SERF_EVENT $line" >> "$out"; done ;;
esac
`;

function cli(bin: 'serf' | 'kodama', args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin === 'serf' ? 'serf' : KODAMA_BIN, args, { cwd: REPO, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

const logOf = (name: string): string => join(dir, `${name}.events`);
const read = (name: string): string => (existsSync(logOf(name)) ? readFileSync(logOf(name), 'utf8') : '');

/**
 * A member line `EVENT name addr role tags` for `node` whose tags are `tags` (serf prints the tag
 * list in Go map order, which is random: compare as sets).
 */
async function sawMember(p: AgentProcess, event: string, node: string, role: string, tags: string[]): Promise<void> {
  const want = [...tags].sort().join(',');
  const re = new RegExp(`^${event} ${node}\\s+127\\.0\\.0\\.1\\s+${role}\\s+(\\S+)$`, 'gm');
  await waitFor(`${p.name}'s handler: ${event} ${node} ${want}`, 20_000, () => {
    for (const m of read(p.name).matchAll(re)) if ((m[1] ?? '').split(',').sort().join(',') === want) return true;
    return undefined;
  }, () => `${read(p.name)}\n${p.output().slice(-2000)}`);
}

async function sawLine(p: AgentProcess, re: RegExp, what: string): Promise<void> {
  await waitFor(`${p.name}'s handler: ${what}`, 20_000, () => (re.test(read(p.name)) ? true : undefined), () => `${read(p.name)}\n${p.output().slice(-2000)}`);
}

test('mixed cluster: events, queries with filters, tags both ways; serf CLI against kodama', { timeout: 150_000 }, async (t) => {
  const script = join(dir, 'handler.sh');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  const handler = (name: string): string[] => [`-event-handler=${script} ${logOf(name)}`];
  const t0 = Date.now();
  const s1 = await startSerf('mx-serf-1', { tags: { role: 'serf' }, args: handler('mx-serf-1') });
  const seed = `127.0.0.1:${s1.port}`;
  const s2 = await startSerf('mx-serf-2', { tags: { role: 'serf' }, args: handler('mx-serf-2'), join: [seed] });
  const k1 = await startKodama('mx-kodama-1', { tags: { role: 'kodama' }, args: handler('mx-kodama-1'), join: [seed] });
  const k2 = await startKodama('mx-kodama-2', { tags: { role: 'kodama', az: 'b' }, args: handler('mx-kodama-2'), join: [seed] });
  const all = [s1, s2, k1, k2];
  const ctx = (): string => all.map((p) => `=== ${p.name}\n${p.output().slice(-1200)}`).join('\n');
  const everyone = { 'mx-serf-1': 'alive', 'mx-serf-2': 'alive', 'mx-kodama-1': 'alive', 'mx-kodama-2': 'alive' };
  for (const p of all) await waitStatuses(p.rpcAddr, everyone, 30_000, ctx);
  t.diagnostic(`4 nodes converged after ${Date.now() - t0} ms`);
  // member-join ran every node's handler, serf's and kodama's, with serf's member line format
  await sawMember(k1, 'member-join', 'mx-serf-2', 'serf', ['role=serf']);
  await sawMember(s1, 'member-join', 'mx-kodama-2', 'kodama', ['az=b', 'role=kodama']);

  // serf event → kodama handlers; kodama event → serf handlers
  let r = await cli('serf', ['event', `-rpc-addr=${s1.rpcAddr}`, 'deploy', 'v1']);
  assert.equal(r.code, 0, r.stderr);
  await sawLine(k1, /^user deploy v1$/m, 'serf event deploy');
  await sawLine(k2, /^user deploy v1$/m, 'serf event deploy');
  r = await cli('kodama', ['event', `-rpc-addr=${k1.rpcAddr}`, 'ship', 'v2']);
  assert.equal(r.code, 0, r.stderr);
  await sawLine(s1, /^user ship v2$/m, 'kodama event ship');
  await sawLine(s2, /^user ship v2$/m, 'kodama event ship');
  // serf's CLI talking to a kodama agent
  r = await cli('serf', ['event', `-rpc-addr=${k2.rpcAddr}`, 'via-kodama-rpc', 'p3']);
  assert.equal(r.code, 0, r.stderr);
  await sawLine(s2, /^user via-kodama-rpc p3$/m, 'serf event sent through kodama RPC');
  t.diagnostic(`events both ways after ${Date.now() - t0} ms`);

  // queries: serf asks, kodama handlers answer (and serf's); filters by node and tag
  // In serf's local profile a 4-node cluster retransmits a broadcast only 2 × ceil(log10(5)) = 2
  // times per node (memberlist's limit; kodama's local profile uses 4), so the epidemic can miss a
  // node now and then when a serf agent originates or relays. A query is retried (at most twice, reported) only
  // when it got a strict subset of the expected answers — never to accept a wrong one.
  const q = async (bin: 'serf' | 'kodama', rpc: string, extra: string[], expect: string[]): Promise<Record<string, string>> => {
    let resp: Record<string, string> = {};
    for (let attempt = 0; attempt < 3; attempt++) {
      const out = await cli(bin, ['query', `-rpc-addr=${rpc}`, '-format=json', '-timeout=3s', ...extra, 'load']);
      assert.equal(out.code, 0, out.stderr + out.stdout);
      resp = (JSON.parse(out.stdout) as { Responses: Record<string, string> }).Responses;
      const got = Object.keys(resp);
      if (got.length >= expect.length || !got.every((n) => expect.includes(n))) break;
      t.diagnostic(`${bin} query ${extra.join(' ')}: got ${got.sort().join(',')} of ${expect.join(',')}, retrying`);
    }
    return resp;
  };
  const ALL = ['mx-kodama-1', 'mx-kodama-2', 'mx-serf-1', 'mx-serf-2'];
  let resp = await q('serf', s1.rpcAddr, [], ALL);
  assert.deepEqual(resp, {
    'mx-serf-1': 'answer-from-mx-serf-1',
    'mx-serf-2': 'answer-from-mx-serf-2',
    'mx-kodama-1': 'answer-from-mx-kodama-1',
    'mx-kodama-2': 'answer-from-mx-kodama-2',
  });
  resp = await q('serf', s1.rpcAddr, ['-node=mx-kodama-2'], ['mx-kodama-2']);
  assert.deepEqual(Object.keys(resp), ['mx-kodama-2']);
  resp = await q('serf', s2.rpcAddr, ['-tag', 'role=kodama'], ['mx-kodama-1', 'mx-kodama-2']);
  assert.deepEqual(Object.keys(resp).sort(), ['mx-kodama-1', 'mx-kodama-2']);
  // kodama asks, serf handlers answer; filters again
  resp = await q('kodama', k1.rpcAddr, ['-tag', 'role=serf'], ['mx-serf-1', 'mx-serf-2']);
  assert.deepEqual(resp, { 'mx-serf-1': 'answer-from-mx-serf-1', 'mx-serf-2': 'answer-from-mx-serf-2' });
  resp = await q('kodama', k1.rpcAddr, ['-node=mx-serf-2', '-node=mx-kodama-2'], ['mx-kodama-2', 'mx-serf-2']);
  assert.deepEqual(Object.keys(resp).sort(), ['mx-kodama-2', 'mx-serf-2']);
  // serf's CLI through a kodama agent's RPC
  resp = await q('serf', k2.rpcAddr, ['-tag', 'az=b'], ['mx-kodama-2']);
  assert.deepEqual(resp, { 'mx-kodama-2': 'answer-from-mx-kodama-2' });
  t.diagnostic(`queries both ways after ${Date.now() - t0} ms`);

  // tags both ways → member-update in the other kind's handler
  r = await cli('serf', ['tags', `-rpc-addr=${s2.rpcAddr}`, '-set', 'version=7']);
  assert.equal(r.code, 0, r.stderr);
  await sawMember(k1, 'member-update', 'mx-serf-2', 'serf', ['role=serf', 'version=7']);
  r = await cli('kodama', ['tags', `-rpc-addr=${k2.rpcAddr}`, '-set', 'version=8', '-delete', 'az']);
  assert.equal(r.code, 0, r.stderr);
  await sawMember(s1, 'member-update', 'mx-kodama-2', 'kodama', ['role=kodama', 'version=8']);
  // serf tags against kodama's RPC
  r = await cli('serf', ['tags', `-rpc-addr=${k1.rpcAddr}`, '-set', 'via=serf-cli']);
  assert.equal(r.code, 0, r.stderr);
  await sawMember(s2, 'member-update', 'mx-kodama-1', 'kodama', ['role=kodama', 'via=serf-cli']);

  // serf members / monitor against kodama
  const m = await cli('serf', ['members', `-rpc-addr=${k1.rpcAddr}`, '-status=alive']);
  assert.equal(m.code, 0, m.stderr);
  assert.deepEqual(m.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]).sort(), ['mx-kodama-1', 'mx-kodama-2', 'mx-serf-1', 'mx-serf-2']);
  const mon = spawn('serf', ['monitor', `-rpc-addr=${k1.rpcAddr}`, '-log-level=info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let monOut = '';
  mon.stdout.on('data', (d: Buffer) => (monOut += d.toString()));
  try {
    await cli('serf', ['event', `-rpc-addr=${s1.rpcAddr}`, 'watched', 'x']);
    await waitFor('serf monitor streams kodama log lines', 15_000, () => (/\[INFO\] .*(agent|serf)/.test(monOut) ? true : undefined), () => monOut);
  } finally {
    mon.kill('SIGKILL');
  }
  t.diagnostic(`done after ${Date.now() - t0} ms`);
});
