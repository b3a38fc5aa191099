// Issue 4's must-show script through the embedded proxy (the zero-install default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runMustShow, startScenario } from './scenario.ts';

test('embedded proxy: join (first request ≤ 1 s after healthy), graceful leave with 0 failures, kill -9 fails only until removed', { timeout: 90_000 }, async (t) => {
  const sc = await startScenario({ driver: 'embedded' });
  t.after(() => sc.close());
  assert.equal(sc.role.driver.kind, 'embedded');
  const f = await runMustShow(sc, 'embedded');
  console.log(`[embedded] figures ${JSON.stringify(f)}; counters ${JSON.stringify(sc.role.counters())}`);
});
