// Acceptance: key rotation in an encrypted mixed cluster (2 serf + 2 kodama). install / use /
// remove are sent to either kind of agent, by either kind of CLI, and the whole cluster ends on
// the new key with no partition; kodama's -keyring-file follows the rotation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, waitStatuses } from './harness.ts';
import { KODAMA_BIN, REPO, startKodama, startSerf, stopAll } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-mixed-keys-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

function cli(bin: 'serf' | 'kodama', args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin === 'serf' ? 'serf' : KODAMA_BIN, args, { cwd: REPO, timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/**
 * Key commands are idempotent, and their query waits only serf's default timeout (1.6 s in the
 * local profile for 4 nodes): on a loaded machine one answer can miss it ("3/4 nodes reported
 * success", i.e. missing, not failed). Retry those — at most twice, and say so — but never a
 * reported failure.
 */
async function keyCmd(bin: 'serf' | 'kodama', args: string[], log: (m: string) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  let r = await cli(bin, args);
  for (let i = 0; i < 2 && r.code !== 0 && /nodes reported success/.test(r.stdout + r.stderr); i++) {
    log(`retrying ${bin} ${args.join(' ')}: ${(r.stdout + r.stderr).trim().split('\n').pop()}`);
    r = await cli(bin, args);
  }
  return r;
}

test('keys -install/-use/-remove through serf and kodama rotate the whole mixed cluster', { timeout: 120_000 }, async (t) => {
  const k1 = Buffer.alloc(32, 0x11).toString('base64');
  const k2 = Buffer.alloc(32, 0x22).toString('base64');
  const keyringFile = join(dir, 'kodama-1.keyring');
  writeFileSync(keyringFile, JSON.stringify([k1]));
  const t0 = Date.now();
  const s1 = await startSerf('key-serf-1', { encrypt: k1 });
  const seed = `127.0.0.1:${s1.port}`;
  const s2 = await startSerf('key-serf-2', { encrypt: k1, join: [seed] });
  const n1 = await startKodama('key-kodama-1', { args: [`-keyring-file=${keyringFile}`], join: [seed] });
  const n2 = await startKodama('key-kodama-2', { encrypt: k1, join: [seed] });
  const all = [s1, s2, n1, n2];
  const ctx = (): string => all.map((p) => `=== ${p.name}\n${p.output().slice(-1500)}`).join('\n');
  const everyone = { 'key-serf-1': 'alive', 'key-serf-2': 'alive', 'key-kodama-1': 'alive', 'key-kodama-2': 'alive' };
  for (const p of all) await waitStatuses(p.rpcAddr, everyone, 30_000, ctx);
  t.diagnostic(`encrypted cluster of 4 after ${Date.now() - t0} ms`);

  const log = (m: string): void => t.diagnostic(m);
  let r = await keyCmd('serf', ['keys', `-rpc-addr=${n1.rpcAddr}`, '-install', k2], log);
  assert.equal(r.code, 0, r.stdout + r.stderr + ctx());
  assert.match(r.stdout, /Successfully installed key/);
  r = await keyCmd('kodama', ['keys', `-rpc-addr=${s1.rpcAddr}`, '-use', k2], log);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await keyCmd('serf', ['keys', `-rpc-addr=${n2.rpcAddr}`, '-remove', k1], log);
  assert.equal(r.code, 0, r.stdout + r.stderr + ctx());
  assert.match(r.stdout, /Successfully removed key/);

  for (const [bin, rpc] of [['serf', s2.rpcAddr], ['serf', n1.rpcAddr], ['kodama', n2.rpcAddr]] as const) {
    const l = await keyCmd(bin, ['keys', `-rpc-addr=${rpc}`, '-list'], log);
    assert.equal(l.code, 0, l.stdout + l.stderr);
    assert.ok(l.stdout.split('\n').some((line) => line.trim().split(/\s+/).join(' ') === `${k2} [4/4]`), `${bin} keys -list via ${rpc}:\n${l.stdout}`);
    assert.ok(!l.stdout.includes(k1), `old key still listed:\n${l.stdout}`);
  }
  assert.deepEqual(JSON.parse(readFileSync(keyringFile, 'utf8')), [k2]);

  // no partition: a few probe rounds later everyone still sees everyone alive, on the new key only
  await new Promise((res) => setTimeout(res, 3000));
  for (const p of all) await waitStatuses(p.rpcAddr, everyone, 15_000, ctx);
  // and fresh gossip still flows both ways: a tag change from kodama reaches serf
  r = await cli('kodama', ['tags', `-rpc-addr=${n2.rpcAddr}`, '-set', 'rotated=yes']);
  assert.equal(r.code, 0, r.stderr);
  await waitFor('serf sees the tag set after rotation', 15_000, async () => {
    const out = await cli('serf', ['members', `-rpc-addr=${s2.rpcAddr}`, '-tag', 'rotated=yes']);
    return out.stdout.includes('key-kodama-2') ? true : undefined;
  }, ctx);
  t.diagnostic(`rotated with no partition after ${Date.now() - t0} ms`);
});
