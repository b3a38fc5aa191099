// Acceptance: kodama and real serf agents in one cluster, no encryption.
import { after, test } from 'node:test';
import { runClusterScenario } from './scenario.ts';
import { stopAll } from '../lib/agents.ts';

after(() => stopAll());

test('3 serf + 2 kodama: mutual membership with tags, failure and leave detection', { timeout: 120_000 }, async (t) => {
  await runClusterScenario(undefined, (m) => t.diagnostic(m));
});
