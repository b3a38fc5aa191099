// The documented embedding example (examples/embed.mjs) runs as a user runs it and does what
// docs/embedding.md says: two in-process agents join, exchange a user event and a query, leave.
// Plain node, no loader: `import … from 'kodama'` resolves through package.json `exports` to the
// build (dist/index.js), as it does for a project that installed the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

test('examples/embed.mjs runs and prints the join, the user event, the query answer', { timeout: 60_000 }, async () => {
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['examples/embed.mjs'], { cwd: REPO, timeout: 45_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.includes('web-1 saw join: db-1 (db)'), r.stdout);
  assert.ok(lines.includes('db-1 joined 1 node(s)'), r.stdout);
  assert.ok(lines.includes('members: db-1=alive web-1=alive'), r.stdout);
  assert.ok(lines.includes("db-1 got user event 'deploy': v2.0.1"), r.stdout);
  assert.ok(lines.includes("query 'load' answered by db-1: 0.42"), r.stdout);
  assert.equal(lines.at(-1), 'done');
});
