// Bench runner: `npm run bench [-- filter…]` runs every bench/*.bench.ts whose file name contains
// one of the filters (all of them without filters), one after another, and prints their figures.
// Each bench module exports `default async function run(args): Promise<void>` and prints its own
// table; figures are never asserted (tests do that), they are for reading and comparing.
// Benches in NAMED_ONLY run only when a filter names them (long, or need root); arguments from
// the first one starting with '-' on are passed to every bench run: `npm run bench -- remerge
// -partition 10s`.

import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const NAMED_ONLY = ['members.ts', 'remerge.ts', 'scale.ts'];
const argv = process.argv.slice(2).filter((a) => a !== '--');
const firstFlag = argv.findIndex((a) => a.startsWith('-'));
const filters = firstFlag < 0 ? argv : argv.slice(0, firstFlag);
const benchArgs = firstFlag < 0 ? [] : argv.slice(firstFlag);
const files = [
  ...readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort(),
  ...NAMED_ONLY.filter((f) => filters.some((x) => f.includes(x))),
];

if (files.length === 0) {
  console.error(`no bench matches ${filters.join(' ') || '(none found)'}; available: ${readdirSync(here).filter((f) => f.endsWith('.bench.ts')).concat(NAMED_ONLY).join(', ')}`);
  process.exit(1);
}

let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const started = performance.now();
  try {
    const mod = (await import(pathToFileURL(join(here, f)).href)) as { default?: (args: string[]) => Promise<void> };
    if (typeof mod.default !== 'function') throw new Error(`${f} has no default export run()`);
    await mod.default(benchArgs);
    console.log(`--- ${f}: ${((performance.now() - started) / 1000).toFixed(1)} s wall`);
  } catch (e) {
    failed++;
    console.error(`--- ${f} FAILED: ${(e as Error).stack ?? String(e)}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
