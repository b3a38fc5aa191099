// The acceptance scenario, shared by the plain and the encrypted run: 3 serf agents and
// 2 kodama agents form one cluster; each side lists the other alive with its tags; a SIGKILLed
// node is reported failed by the other implementation; a SIGTERMed kodama is reported left.

import assert from 'node:assert/strict';
import { cliMembers, exitWithin, waitStatuses } from './harness.ts';
import { startKodama, startSerf } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

/** Failure detection in the local profile takes a few probe rounds plus Lifeguard suspicion. */
const CONVERGE_MS = 30_000;

export async function runClusterScenario(encrypt: string | undefined, log: (msg: string) => void): Promise<AgentProcess[]> {
  const o = encrypt === undefined ? {} : { encrypt };
  const procs: AgentProcess[] = [];
  const context = (): string => procs.map((p) => `=== ${p.name}\n${p.output().slice(-1500)}`).join('\n');
  const t0 = Date.now();
  const s1 = await startSerf('serf-1', { ...o, tags: { role: 'serf', idx: '1' } });
  procs.push(s1);
  const seed = `127.0.0.1:${s1.port}`;
  const s2 = await startSerf('serf-2', { ...o, tags: { role: 'serf', idx: '2' }, join: [seed] });
  procs.push(s2);
  const s3 = await startSerf('serf-3', { ...o, tags: { role: 'serf', idx: '3' }, join: [seed] });
  procs.push(s3);
  const k1 = await startKodama('kodama-1', { ...o, tags: { role: 'kodama', idx: '1' }, join: [seed] });
  procs.push(k1);
  const k2 = await startKodama('kodama-2', { ...o, tags: { role: 'kodama', az: 'b' }, join: [`127.0.0.1:${s2.port}`] });
  procs.push(k2);

  const everyone = { 'serf-1': 'alive', 'serf-2': 'alive', 'serf-3': 'alive', 'kodama-1': 'alive', 'kodama-2': 'alive' };
  log(`5 processes started after ${Date.now() - t0} ms`);
  for (const p of [s1, s3, k1, k2]) {
    await waitStatuses(p.rpcAddr, everyone, CONVERGE_MS, context);
    log(`${p.name} sees 5 alive after ${Date.now() - t0} ms`);
  }
  log(`converged: 5 alive everywhere after ${Date.now() - t0} ms`);

  // What users see: `serf members` lists the kodama nodes alive with their tags…
  const fromSerf = await cliMembers('serf', s1.rpcAddr);
  const sk1 = fromSerf.find((m) => m.name === 'kodama-1');
  const sk2 = fromSerf.find((m) => m.name === 'kodama-2');
  assert.deepEqual(sk1 && [sk1.status, sk1.tags, sk1.addr], ['alive', { role: 'kodama', idx: '1' }, `127.0.0.1:${k1.port}`]);
  assert.deepEqual(sk2 && [sk2.status, sk2.tags], ['alive', { role: 'kodama', az: 'b' }]);
  // …and `kodama members` lists the serf nodes alive with theirs.
  const fromKodama = await cliMembers('kodama', k1.rpcAddr);
  for (const i of [1, 2, 3]) {
    const m = fromKodama.find((x) => x.name === `serf-${i}`);
    assert.deepEqual(m && [m.status, m.tags], ['alive', { role: 'serf', idx: String(i) }], `serf-${i} in kodama members`);
  }
  assert.equal(fromKodama.length, 5);

  // SIGKILL a kodama node: serf must report it failed (it never said goodbye).
  let t = Date.now();
  k2.signal('SIGKILL');
  await waitStatuses(s1.rpcAddr, { 'kodama-2': 'failed' }, CONVERGE_MS, context);
  log(`serf saw SIGKILLed kodama-2 failed after ${Date.now() - t} ms`);

  // SIGKILL a serf node: kodama must mark it failed.
  t = Date.now();
  s3.signal('SIGKILL');
  await waitStatuses(k1.rpcAddr, { 'serf-3': 'failed' }, CONVERGE_MS, context);
  log(`kodama saw SIGKILLed serf-3 failed after ${Date.now() - t} ms`);
  // As users see it, through both CLIs.
  const kView = await cliMembers('kodama', k1.rpcAddr);
  assert.equal(kView.find((m) => m.name === 'serf-3')?.status, 'failed', '`kodama members` shows serf-3 failed');
  const sView = await cliMembers('serf', s1.rpcAddr);
  assert.equal(sView.find((m) => m.name === 'kodama-2')?.status, 'failed', '`serf members` shows kodama-2 failed');

  // SIGTERM a kodama node: it leaves gracefully, so serf reports it *left*, and it exits 0.
  t = Date.now();
  k1.signal('SIGTERM');
  await waitStatuses(s1.rpcAddr, { 'kodama-1': 'left' }, CONVERGE_MS, context);
  log(`serf saw SIGTERMed kodama-1 left after ${Date.now() - t} ms`);
  const code = await exitWithin(k1, 15_000);
  assert.equal(code, 0, `kodama-1 exit after SIGTERM\n${k1.output()}`);
  assert.match(k1.output(), /Gracefully shutting down agent/);
  const afterLeave = await cliMembers('serf', s1.rpcAddr);
  assert.equal(afterLeave.find((m) => m.name === 'kodama-1')?.status, 'left', '`serf members` shows kodama-1 left');
  // serf-2 agrees, and the other members are unaffected.
  await waitStatuses(
    s2.rpcAddr,
    { 'kodama-1': 'left', 'kodama-2': 'failed', 'serf-3': 'failed', 'serf-1': 'alive' },
    CONVERGE_MS,
    context,
  );
  return procs;
}
