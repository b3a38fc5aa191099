// Acceptance: kodama and real serf agents in one cluster, no encryption.
import { after, test } from 'node:test';
import { killAll } from './harness.ts';
import { runClusterScenario } from './scenario.ts';

after(killAll);

test('3 serf + 2 kodama: mutual membership with tags, failure and leave detection', { timeout: 120_000 }, async (t) => {
  await runClusterScenario(undefined, (m) => t.diagnostic(m));
});
