import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderTemplate, runCommand, startTemplates, templateBackend } from '../../src/discovery/templates.ts';
import type { TemplateService } from '../../src/discovery/templates.ts';

const NGINX = `# {{node}}
{{#services}}
upstream {{name}} {
{{#backends}}
  server {{host}}:{{port}} weight={{weight}}{{#draining}} down{{/draining}};  # {{id}}
{{/backends}}
{{^backends}}
  server 127.0.0.1:1 down;  # none
{{/backends}}
}
{{/services}}
`;

function web(...bs: [string, number, 'ready' | 'drain'][]): TemplateService[] {
  return [
    {
      name: 'web',
      mode: 'http',
      bind: { host: '127.0.0.1', port: 8000 },
      backends: bs.map(([id, port, state]) => templateBackend({ id, host: '10.0.0.1', port, weight: 100, state })),
    },
  ];
}

async function withDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-tpl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('renderTemplate fills the documented context without HTML escaping', () => {
  const text = renderTemplate(NGINX, { node: 'lb-1', generated_at: 'x', services: web(['web-1', 8081, 'ready'], ['web/2', 8082, 'drain']) });
  assert.equal(
    text,
    '# lb-1\nupstream web {\n  server 10.0.0.1:8081 weight=100;  # web-1\n  server 10.0.0.1:8082 weight=100 down;  # web/2\n}\n',
  );
  assert.match(renderTemplate(NGINX, { node: 'lb', generated_at: 'x', services: web() }), /server 127\.0\.0\.1:1 down; {2}# none/);
  assert.throws(() => renderTemplate('{{#services}} unclosed', { node: '', generated_at: '', services: [] }), /Unclosed section/);
});

test('a change renders the destination atomically, then runs the command; unchanged text is not rewritten', async (t) => {
  const dir = await withDir(t);
  const src = join(dir, 'nginx.mustache');
  const dest = join(dir, 'web.conf');
  const marker = join(dir, 'ran');
  await writeFile(src, NGINX);
  const lines: string[] = [];
  const r = startTemplates([{ source: src, destination: dest, command: `echo reloaded; echo x >> ${marker}`, debounceMs: 20 }], {
    log: (l, m) => lines.push(`${l} ${m}`),
  });
  t.after(() => r.stop());

  r.update('lb-1', web(['web-1', 8081, 'ready']));
  await r.idle();
  assert.match(await readFile(dest, 'utf8'), /server 10\.0\.0\.1:8081 weight=100; {2}# web-1/);
  assert.equal(await readFile(marker, 'utf8'), 'x\n');
  assert.ok(lines.some((l) => /INFO templates: .*web\.conf: command `echo reloaded.*` ok: reloaded/.test(l)), lines.join('\n'));
  const mtime = (await stat(dest)).mtimeMs;

  // Same sets again: same text, no write, no command.
  r.update('lb-1', web(['web-1', 8081, 'ready']));
  await r.idle();
  assert.equal((await stat(dest)).mtimeMs, mtime);
  assert.equal(await readFile(marker, 'utf8'), 'x\n');

  r.update('lb-1', web(['web-1', 8081, 'drain']));
  await r.idle();
  assert.match(await readFile(dest, 'utf8'), /weight=100 down;/);
  assert.equal(await readFile(marker, 'utf8'), 'x\nx\n');
  assert.deepEqual((await readdir(dir)).sort(), ['nginx.mustache', 'ran', 'web.conf'], 'no temporary file left behind');
  const c = r.counters();
  assert.equal(c.template_writes, 2);
  assert.equal(c.template_unchanged, 1);
  assert.equal(c.template_commands, 2);
});

test('a burst of changes within the debounce renders once, with the latest sets', async (t) => {
  const dir = await withDir(t);
  const src = join(dir, 't.mustache');
  const dest = join(dir, 'out.txt');
  await writeFile(src, '{{#services}}{{#backends}}{{id}} {{/backends}}{{/services}}');
  const r = startTemplates([{ source: src, destination: dest, command: `echo run >> ${join(dir, 'runs')}`, debounceMs: 150 }]);
  t.after(() => r.stop());
  for (let i = 1; i <= 10; i++) r.update('lb', web(...Array.from({ length: i }, (_, k): [string, number, 'ready'] => [`w${k + 1}`, 8000 + k, 'ready'])));
  await r.idle();
  assert.equal(await readFile(dest, 'utf8'), 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 ');
  assert.equal(await readFile(join(dir, 'runs'), 'utf8'), 'run\n');
  assert.equal(r.counters().template_renders, 1);
});

test('a broken template is logged as an error and the old file stays; a fixed one is used at the next change', async (t) => {
  const dir = await withDir(t);
  const src = join(dir, 't.mustache');
  const dest = join(dir, 'out.txt');
  await writeFile(src, 'v1 {{node}}');
  const lines: string[] = [];
  const r = startTemplates([{ source: src, destination: dest, debounceMs: 10 }], { log: (l, m) => lines.push(`${l} ${m}`) });
  t.after(() => r.stop());
  r.update('lb', web());
  await r.idle();
  assert.equal(await readFile(dest, 'utf8'), 'v1 lb');

  await writeFile(src, 'v2 {{#services}} never closed');
  r.update('lb', web(['w1', 1, 'ready']));
  await r.idle();
  assert.equal(await readFile(dest, 'utf8'), 'v1 lb');
  assert.ok(lines.some((l) => /^ERR templates: .*t\.mustache: cannot render: Unclosed section "services".*out\.txt left as it was/.test(l)), lines.join('\n'));

  await rm(src);
  r.update('lb', web(['w2', 1, 'ready']));
  await r.idle();
  assert.equal(await readFile(dest, 'utf8'), 'v1 lb');
  assert.ok(lines.some((l) => /^ERR templates: .*cannot render: ENOENT/.test(l)));

  await writeFile(src, 'v3 {{node}}');
  r.update('lb', web(['w3', 1, 'ready']));
  await r.idle();
  assert.equal(await readFile(dest, 'utf8'), 'v3 lb');
  assert.equal(r.counters().template_errors, 2);
});

test('a failing or hanging command is reported with its output and bounded in time', async (t) => {
  const fail = await runCommand('echo oops >&2; exit 3', 5000);
  assert.equal(fail.code, 3);
  assert.equal(fail.output, 'oops');
  const t0 = Date.now();
  const hang = await runCommand('sleep 30', 300);
  assert.equal(hang.timedOut, true);
  assert.ok(Date.now() - t0 < 5000, 'the command was killed at its timeout');

  const dir = await withDir(t);
  const src = join(dir, 't.mustache');
  await writeFile(src, '{{node}}');
  const lines: string[] = [];
  const r = startTemplates([{ source: src, destination: join(dir, 'o'), command: 'echo bad; exit 2', debounceMs: 5 }], { log: (l, m) => lines.push(`${l} ${m}`) });
  t.after(() => r.stop());
  r.update('lb', []);
  await r.idle();
  assert.ok(lines.some((l) => l === 'WARN templates: ' + join(dir, 'o') + ': command `echo bad; exit 2` exited 2: bad'), lines.join('\n'));
  assert.equal(r.counters().template_command_failures, 1);
});
