// `kodama validate`: config files checked as the agent reads them, each mistake named with its
// file and key path at any depth, every problem of a file at once, exit 0 / 1 for pipelines.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main.ts';
import { recordIo } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function validate(files: Record<string, string>, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const sub = mkdtempSync(join(dir, 'case-'));
  const paths = Object.entries(files).map(([name, text]) => {
    const p = join(sub, name);
    writeFileSync(p, text);
    return p;
  });
  const io = recordIo(env);
  const code = await runCli(['validate', ...paths], io);
  return { code, out: io.out.join(''), err: io.err.join('') };
}

test('a valid configuration exits 0 and says so; -quiet prints nothing', async () => {
  const good = {
    'a.json': JSON.stringify({ node_name: 'web-1', tags: { role: 'web' }, services: [{ name: 'web', port: 8080, checks: [{ http: '/health', interval: '2s' }] }] }),
    'b.json': JSON.stringify({ balancer: { driver: 'embedded', services: { web: { bind: '127.0.0.1:8000' } } }, checks: [{ name: 'disk', command: 'true', interval: '10s' }] }),
  };
  const r = await validate(good);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Configuration is valid! \(2 file\(s\)\)/);
  const sub = mkdtempSync(join(dir, 'quiet-'));
  writeFileSync(join(sub, 'a.json'), good['a.json']);
  const io = recordIo();
  assert.equal(await runCli(['validate', '-quiet', sub], io), 0, io.err.join(''));
  assert.equal(io.out.join(''), '');
});

// A mistake at every depth, and the key path the message must name.
const mistakes: [string, unknown, RegExp][] = [
  ['top-level type', { bind: 5 }, /'bind' expected a string, got 5/],
  ['top-level typo', { node_nmae: 'x' }, /invalid keys: node_nmae \(did you mean node_name\?\)/],
  ['service field', { services: [{ name: 'web', port: 70000 }] }, /services\[0\] \(web\): 'port' expected an integer from 1 to 65535/],
  ['service check duration', { services: [{ name: 'web', port: 80, checks: [{ http: '/h', interval: '5x' }] }] }, /services\[0\] \(web\)\.checks\[0\]: 'interval': invalid duration "5x"/],
  ['service key typo', { services: [{ name: 'web', port: 80, chekcs: [] }] }, /services\[0\]: unknown key\(s\) 'chekcs' \(did you mean 'checks'\?\)/],
  ['balancer service', { balancer: { driver: 'embedded', services: { web: { bind: '127.0.0.1:80', mode: 'htp' } } } }, /balancer\.services\.web\.mode: expected "http" or "tcp", got "htp"/],
  ['monitoring handler', { monitoring: { handlers: { pager: { type: 'webhok' } } } }, /monitoring\.handlers\.pager: 'type' expected "script", "webhook" or "log"/],
  ['check key', { checks: [{ name: 'disk', command: 'true', intervall: '1s' }] }, /checks\[0\] \(disk\): unknown key\(s\) 'intervall' \(did you mean 'interval'\?\)/],
  ['exec', { exec: { enabled: 'yes' } }, /exec.*'enabled'/],
];

for (const [what, config, message] of mistakes) {
  test(`a mistake (${what}) is named with its file and key path, exit 1`, async () => {
    const r = await validate({ 'bad.json': JSON.stringify(config) });
    assert.equal(r.code, 1, r.out);
    assert.match(r.err, /bad\.json/);
    assert.match(r.err, message);
    assert.match(r.err, /Config validation failed: 1 problem\(s\) in 1 file\(s\)/);
  });
}

test('every problem of every file at once, not only the first', async () => {
  const r = await validate({
    '1.json': JSON.stringify({ bind: 5, node_nmae: 'x', services: [{ name: 'web', port: 80, chekcs: [] }] }),
    '2.json': JSON.stringify({ checks: [{ name: 'c', command: 'true', interval: 'soon' }] }),
  });
  assert.equal(r.code, 1);
  assert.match(r.err, /1\.json': 'bind'/);
  assert.match(r.err, /1\.json': services\[0\]: unknown key\(s\) 'chekcs'/);
  assert.match(r.err, /1\.json': Config has invalid keys: node_nmae/);
  assert.match(r.err, /2\.json': checks\[0\] \(c\): 'interval'/);
  assert.match(r.err, /4 problem\(s\) in 2 file\(s\)/);
});

test('broken JSON names the line and column, shows the line, and spots a trailing comma', async () => {
  const r = await validate({ 'c.json': '{\n  "node_name": "a",\n  "tags": {"role": "web"},\n}\n' });
  assert.equal(r.code, 1);
  assert.match(r.err, /c\.json': line 4, column 1: .*a comma after the last entry, line 3\?/);
  assert.match(r.err, /\n {4}}\n {4}\^/);
});

test('rules across files and what the agent checks before binding are checked too', async () => {
  // One service in two files, an exec without a token, a bad key, a bad handler filter.
  const dup = await validate({ 'a.json': JSON.stringify({ services: [{ name: 'web', port: 80 }] }), 'b.json': JSON.stringify({ services: [{ name: 'web', port: 81 }] }) });
  assert.equal(dup.code, 1);
  assert.match(dup.err, /service "web" is defined in more than one config file/);
  const exec = await validate({ 'e.json': JSON.stringify({ exec: { enabled: true } }) });
  assert.match(exec.err, /exec is enabled without a token/);
  const token = await validate({ 'e.json': JSON.stringify({ exec: { enabled: true } }) }, { KODAMA_EXEC_TOKEN: 's3cret' });
  assert.equal(token.code, 0, 'the token may come from the environment, as for the agent');
  const key = await validate({ 'k.json': JSON.stringify({ encrypt_key: 'abc' }) });
  assert.match(key.err, /Invalid encryption key/);
  const handler = await validate({ 'h.json': JSON.stringify({ event_handlers: ['member-jion=./x.sh'] }) });
  assert.match(handler.err, /Invalid event filter 'member-jion'/);
});

test('a directory is read as -config-dir reads it; a missing path is a problem, not a crash', async () => {
  const d = join(dir, 'confd');
  mkdirSync(d);
  writeFileSync(join(d, '10-base.json'), JSON.stringify({ node_name: 'n' }));
  writeFileSync(join(d, '20-bad.json'), JSON.stringify({ log_level: 7 }));
  writeFileSync(join(d, 'notes.txt'), 'not read');
  const io = recordIo();
  assert.equal(await runCli(['validate', d, join(dir, 'missing.json')], io), 1);
  const err = io.err.join('');
  assert.match(err, /20-bad\.json': 'log_level' expected a string/);
  assert.match(err, /Error reading '.*missing\.json'/);
  assert.match(err, /2 problem\(s\) in 2 file\(s\)/);
  const none = recordIo();
  assert.equal(await runCli(['validate'], none), 1);
  assert.match(none.err.join(''), /Must specify at least one config file/);
});
