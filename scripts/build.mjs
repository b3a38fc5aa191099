#!/usr/bin/env node
// The production build (`npm run build`, also `prepare`, so `npm ci` leaves a runnable
// bin/kodama): src/ → dist/, run by plain `node`, no TypeScript loader at run time.
//
// - The CLI: esbuild bundles src/cli/main.ts into one CommonJS script, dist/cli.cjs, written as
//   a function expression `(function (exports, require, module, __filename, __dirname) {…})`
//   that bin/kodama compiles with node:vm and V8's code cache (Node 20 caches no module's
//   bytecode itself). Commands and subsystems the agent imports with `await import()` are in it
//   too, but run (and get compiled) only when used. Whitespace is minified (no comments, ~30%
//   less source to scan) and the output is ASCII-only, so V8 keeps the source as a one-byte
//   string (a single `µ` would double it in memory). The first line names the build; the
//   code cache records it, so a cache never outlives its build. After bundling, the build
//   starts one agent on 127.0.0.1 (ports of the OS's choosing) for a moment so that
//   dist/cli.cjs.cache holds what an agent start compiles; without it (no loopback), the first
//   agent run writes it.
// - The embeddable API (dist/index.js): ES modules for Node 20 with code splitting, so every
//   dynamic import() is a chunk of its own in dist/chunks, loaded only when used. esbuild rather
//   than tsc: tsc would emit one file per module (hundreds of files to resolve and compile at
//   every start) and cannot rewrite the sources' `.ts` import specifiers in JavaScript output
//   before TS 5.7's flag, which we would then depend on; one bundle starts faster and is what
//   ships. The libraries the agent uses (mustache for balancer templates, dns-packet for
//   -discover's mDNS) are bundled too, so the package has no runtime dependencies:
//   `npm install -g ./kodama-*.tgz` needs no registry.
// - The dashboard's static files: src/ui → dist/ui (served as they are).
// - Type declarations: tsc (tsconfig.build.json) → dist/types, for `import … from 'kodama'`.
//
// `--no-types` skips the declarations (the test runner rebuilds the JavaScript before every run;
// declarations only matter to the package).
import { build } from 'esbuild';
import { cpSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout, clearTimeout } from 'node:timers';
import { Script } from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const types = !process.argv.includes('--no-types');
const started = performance.now();

// Remove what this build writes (not dist/types on a --no-types build: `npm pack` ships them),
// and what older builds wrote (the ES-module CLI). dist/cli.cjs is replaced atomically below,
// so an agent starting during a rebuild reads the old or the new CLI, never half of one.
for (const name of ['cli.js', 'cli.js.map', 'cli.cjs.cache', 'index.js', 'index.js.map', 'chunks', 'ui', ...(types ? ['types'] : [])]) {
  rmSync(join(dist, name), { recursive: true, force: true });
}
mkdirSync(dist, { recursive: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  legalComments: 'none',
};

// The CLI: one CommonJS function expression (see the top of this file and bin/kodama).
const wrapperOpen = '(function (exports, require, module, __filename, __dirname) {';
const cli = await build({
  ...common,
  entryPoints: { cli: 'src/cli/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  minifyWhitespace: true,
  charset: 'ascii',
  write: false,
  // import.meta.url (src/http/static.ts, src/demo/web-node.ts: files found beside the code) is
  // dist/cli.cjs's URL.
  define: { 'import.meta.url': '__kodamaImportMetaUrl' },
  banner: { js: `${wrapperOpen}"use strict";var __kodamaImportMetaUrl=require("node:url").pathToFileURL(__filename).href;` },
  footer: { js: '})' },
});
for (const out of cli.outputFiles) {
  let text = out.text;
  if (out.path.endsWith('.cjs')) {
    // esbuild leaves non-ASCII characters in regular expression literals (`/µs/`); \uXXXX is the
    // same character there and in strings (comments are gone with the whitespace).
    text = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const id = createHash('sha256').update(text).digest('hex').slice(0, 16);
    text = `/*kodama-build:${id}*/${text}`;
    new Script(text, { filename: out.path }); // a syntax error here, not at the first `kodama` run
  }
  const tmp = `${out.path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, out.path);
}

// The embeddable API.
await build({
  ...common,
  entryPoints: { index: 'src/index.ts' },
  outdir: 'dist',
  splitting: true,
  format: 'esm',
  chunkNames: 'chunks/[name]-[hash]',
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
await primeCodeCache();
console.log(`build: dist/ in ${Math.round(performance.now() - started)} ms${types ? ' (with type declarations)' : ''}`);

/**
 * Start one agent on 127.0.0.1 (ports of the OS's choosing) until it says it is running, then
 * stop it: bin/kodama writes dist/cli.cjs.cache as it exits. Run as bin/kodama itself, so
 * the cache is made with the node flags every run uses. Best effort: a failure only means that
 * the first agent run writes the cache.
 */
async function primeCodeCache() {
  const bin = join(root, 'bin', 'kodama');
  const args = ['agent', '-node=kodama-build', '-bind=127.0.0.1:0', '-rpc-addr=127.0.0.1:0'];
  const ok = await new Promise((resolve) => {
    let child;
    try {
      // Without the caller's KODAMA_* settings (a join, a snapshot, …): a lone agent, stopped by
      // SIGTERM without a leave (which would wait a second for the leave to spread).
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KODAMA_')));
      Object.assign(env, { KODAMA_LEAVE_ON_TERMINATE: 'false', KODAMA_BUILD_PRIME: '1' });
      child = spawn(bin, args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'], env });
    } catch {
      resolve(false);
      return;
    }
    let out = '';
    const limit = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout.on('data', (d) => {
      if (out === null) return;
      out += d;
      if (out.includes('==> kodama agent running!')) {
        out = null;
        child.kill('SIGTERM');
      }
    });
    child.on('error', () => {
      clearTimeout(limit);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearTimeout(limit);
      resolve(out === null && code !== null);
    });
  });
  if (!ok) console.error('build: could not start an agent to prime dist/cli.cjs.cache; the first `kodama agent` run writes it');
}
