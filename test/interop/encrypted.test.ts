// Acceptance with -encrypt on every node, plus a kodama with the wrong key that must not be
// admitted and must say why.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { exitWithin, rpcMembers, waitFor } from './harness.ts';
import { runClusterScenario } from './scenario.ts';
import { startKodama, stopAll } from '../lib/agents.ts';

after(() => stopAll());

// Throwaway test keys (AES-256), never used anywhere else.
const KEY = '96baQhxYGbNO7JlYstJKyeSchjQhZXkd+YHzSYShNaw=';
const WRONG_KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

test('encrypted: 3 serf + 2 kodama; a kodama with the wrong key is refused and says why', { timeout: 150_000 }, async (t) => {
  const procs = await runClusterScenario(KEY, (m) => t.diagnostic(m));
  const s1 = procs.find((p) => p.name === 'serf-1');
  assert.ok(s1);
  const bad = await startKodama('kodama-wrongkey', { encrypt: WRONG_KEY, join: [`127.0.0.1:${s1.port}`], ready: false, expectExit: true });
  const code = await exitWithin(bad, 20_000);
  assert.equal(code, 1, `a failed -join exits 1\n${bad.output()}`);
  assert.match(bad.output(), /check that -encrypt matches the cluster's key/);
  // Never admitted: serf-1 does not know the name at all.
  const ms = await waitFor('serf-1 members', 5000, () => rpcMembers(s1.rpcAddr));
  assert.equal(ms.find((m) => m.name === 'kodama-wrongkey'), undefined);
  // A kodama without any key is refused by the encrypted cluster as well.
  const plain = await startKodama('kodama-nokey', { join: [`127.0.0.1:${s1.port}`], ready: false, expectExit: true });
  const code2 = await exitWithin(plain, 20_000);
  assert.equal(code2, 1, plain.output());
  assert.match(plain.output(), /-encrypt/);
  const ms2 = await rpcMembers(s1.rpcAddr);
  assert.equal(ms2?.find((m) => m.name === 'kodama-nokey'), undefined);
});
