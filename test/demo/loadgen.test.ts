import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWebServer } from '../../src/demo/web-server.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';

test('load generator counts answers per node and failures after the server goes away', async () => {
  const web = await startWebServer({ node: 'web-a' });
  const run = startLoad({ url: `http://127.0.0.1:${web.port}/`, concurrency: 3, durationMs: 10_000, pauseMs: 5, timeoutMs: 1000 });
  const deadline = Date.now() + 5000;
  while (run.records.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const closedAt = Date.now();
  const finishedBeforeClose = run.records.length;
  await web.close();
  await new Promise((r) => setTimeout(r, 200));
  const all = await run.stop();
  // Requests that had *finished* when the close began (records are appended as they finish): one
  // sent on an idle keep-alive socket just as closeIdleConnections() destroys it fails with
  // ECONNRESET, and that is the close's doing.
  const before = summarise(run.records.slice(0, finishedBeforeClose));
  assert.ok(before.ok >= 50, `at least 50 answers before close, got ${before.ok}`);
  assert.equal(before.failed, 0);
  assert.equal(before.byNode['web-a'], before.ok);
  assert.ok(web.firstRequestAt !== undefined && web.firstRequestAt <= closedAt);
  const after = summarise(run.records, closedAt + 50);
  assert.ok(after.failed > 0, 'requests to a closed server fail');
  assert.equal(after.ok, 0);
  assert.match(after.failures[0]?.error ?? '', /ECONNREFUSED|ECONNRESET/);
  assert.ok(all.p99Ms >= all.p50Ms);
});
