#!/usr/bin/env node
// The production build (`npm run build`, also `prepare`, so `npm ci` leaves a runnable
// bin/kodama): src/ → dist/, run by plain `node`, no TypeScript loader at run time.
//
// - JavaScript: esbuild bundles the two entry points, the CLI (dist/cli.js) and the embeddable
//   API (dist/index.js), as ES modules for Node 20. Code splitting keeps every dynamic import()
//   a chunk of its own, so a command or subsystem is loaded only when used. esbuild rather than
//   tsc: tsc would emit one file per module (hundreds of files to resolve and compile at every
//   start) and cannot rewrite the sources' `.ts` import specifiers in JavaScript output before
//   TS 5.7's flag, which we would then depend on; one bundle starts faster and is what ships.
//   The one library the agent uses (mustache, for balancer templates) is bundled too, so the
//   package has no runtime dependencies: `npm install -g ./kodama-*.tgz` needs no registry.
// - The dashboard's static files: src/ui → dist/ui (served as they are).
// - Type declarations: tsc (tsconfig.build.json) → dist/types, for `import … from 'kodama'`.
//
// `--no-types` skips the declarations (the test runner rebuilds the JavaScript before every run;
// declarations only matter to the package).
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const types = !process.argv.includes('--no-types');
const started = performance.now();

// Remove what this build writes (not dist/types on a --no-types build: `npm pack` ships them).
for (const name of ['cli.js', 'cli.js.map', 'index.js', 'index.js.map', 'chunks', 'ui', ...(types ? ['types'] : [])]) {
  rmSync(join(dist, name), { recursive: true, force: true });
}
mkdirSync(dist, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  legalComments: 'none',
});
cpSync(join(root, 'src', 'ui'), join(dist, 'ui'), { recursive: true });

if (types) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('build: type declarations failed (tsc -p tsconfig.build.json)');
    process.exit(1);
  }
}
console.log(`build: dist/ in ${Math.round(performance.now() - started)} ms${types ? ' (with type declarations)' : ''}`);
