// The npm package as a user gets it: `npm pack` → a tarball that installs globally into a prefix
// of its own and runs `kodama` from any directory (an agent, and the CLI against it), and that a
// plain Node project installs and imports — `import { createAgent } from 'kodama'`, no loader —
// with types that the project's tsc checks. All offline: the package has no runtime dependencies.
// It packs the current dist/ (the test runner rebuilt its JavaScript; its types come from
// `npm run build` / `npm ci`), with --ignore-scripts so packing never rebuilds dist/ under the
// feet of tests running beside this one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, startKodama, stopAll } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-pack-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

function run(file: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, npm_config_update_notifier: 'false' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr });
    });
  });
}

const npm = 'npm';

test('npm pack: installs globally and runs from anywhere; a plain Node project imports it with types', { timeout: 300_000 }, async () => {
  assert.ok(existsSync(join(REPO, 'dist', 'types', 'index.d.ts')), 'dist/types is missing: run `npm run build`');
  const packed = await run(npm, ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], REPO);
  assert.equal(packed.code, 0, packed.out);
  const tgz = readdirSync(dir).find((f) => /^kodama-.*\.tgz$/.test(f));
  assert.ok(tgz !== undefined, `no tarball in ${dir}: ${packed.out}`);
  const tarball = join(dir, tgz);

  // 1. Global install into a prefix of its own; `kodama` runs from another directory.
  const prefix = join(dir, 'prefix');
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  const g = await run(npm, ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], dir);
  assert.equal(g.code, 0, g.out);
  const bin = join(prefix, 'bin', 'kodama');
  const v = await run(bin, ['version'], elsewhere);
  assert.equal(v.code, 0, v.out);
  assert.match(v.out, /^kodama v\d+\.\d+\.\d+/);
  // The installed agent, waited for by its banner (and RPC).
  const agent = await startKodama('packed', { bin, cwd: elsewhere, profile: null });
  const m = await run(bin, ['members', `-rpc-addr=${agent.rpcAddr}`], elsewhere);
  assert.equal(m.code, 0, m.out);
  assert.match(m.out, /^packed\s+127\.0\.0\.1:\d+\s+alive/m);
  await agent.stop();

  // 2. A plain Node project: install, import without a loader, typecheck against the shipped types.
  const proj = join(dir, 'project');
  mkdirSync(proj);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'uses-kodama', version: '1.0.0', type: 'module', private: true }));
  const i = await run(npm, ['install', '--offline', '--no-audit', '--no-fund', tarball], proj);
  assert.equal(i.code, 0, i.out);
  writeFileSync(join(proj, 'run.mjs'), [
    "import { createAgent } from 'kodama';",
    "const a = createAgent({ nodeName: 'embedded', bind: '127.0.0.1:0', logLevel: 'WARN' });",
    'await a.start();',
    "console.log('members:', a.members().map((m) => `${m.name}=${m.status}`).join(' '));",
    'await a.stop();',
  ].join('\n'));
  const r = await run(process.execPath, ['run.mjs'], proj);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /members: embedded=alive/);

  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] },
    files: ['main.ts'],
  }));
  writeFileSync(join(proj, 'main.ts'), [
    "import { createAgent } from 'kodama';",
    "import type { AgentOptions, Member } from 'kodama';",
    "const opts: AgentOptions = { nodeName: 'typed', bind: '127.0.0.1:0' };",
    'const members: Member[] = createAgent(opts).members();',
    'console.log(members.length);',
  ].join('\n'));
  const ok = await run(process.execPath, [tsc, '-p', '.'], proj);
  assert.equal(ok.code, 0, `the shipped types should check:\n${ok.out}`);
  // The types are real (not `any`): a wrong use is an error.
  writeFileSync(join(proj, 'main.ts'), "import { createAgent } from 'kodama';\nconst n: string = createAgent({ nodeName: 'x' }).members();\nconsole.log(n);\n");
  const bad = await run(process.execPath, [tsc, '-p', '.'], proj);
  assert.notEqual(bad.code, 0, 'a type error must be reported');
  assert.match(bad.out, /error TS2322/);
});
