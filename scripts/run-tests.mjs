#!/usr/bin/env node
// Builds dist/ (scripts/build.mjs), then runs every test/**/*.test.ts with node's own test
// runner (through tsx), so the last lines are node's summary ("ℹ pass N", "ℹ fail N"). Arguments narrow the set: `npm run test:unit -- wire`.
// Files run two at a time, each in a process of its own; a file's agents take their ports from a
// block that process claims for itself (test/lib/agents.ts), so two files never share a port.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk('test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// The process-level tests spawn bin/kodama, which runs the build (dist/): rebuild it first, so
// what they test is the current source as it ships (JavaScript only, about a second).
const built = spawnSync(process.execPath, ['scripts/build.mjs', '--no-types'], { stdio: 'inherit' });
if (built.status !== 0) {
  console.error('run-tests: the build failed; fix it before running the tests');
  process.exit(1);
}
const reporter = process.env.CI ? ['--test-reporter=spec'] : [];
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...reporter, ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
