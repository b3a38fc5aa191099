// The agent config of deploys and actions by role: the `exec` section and `data_dir`, their flags
// (-enable-exec, -exec-token, -data-dir) and env vars (KODAMA_EXEC_TOKEN, KODAMA_DATA_DIR), and
// the precedence between them (flags > env > files) as `kodama agent` resolves them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENV_VARS, decodeConfigJson } from '../../src/agent/config.ts';
import { configError, configFiles } from './config-helpers.ts';
import { agentOptions, readAgentConfig } from '../../src/cli/agent.ts';

const { file } = configFiles('kodama-config-exec-');

test('exec section and data_dir from a file reach the agent options', () => {
  const f = file('exec.json', {
    node_name: 'web-1',
    data_dir: '/var/lib/kodama',
    exec: { enabled: true, token: 's3cret', allow: ['uptime*', 'systemctl restart web'], timeout: '30s', max_output: '64KiB' },
  });
  const { config } = readAgentConfig(['-config-file', f], {});
  assert.deepEqual(config.exec, { enabled: true, token: 's3cret', allow: ['uptime*', 'systemctl restart web'], timeoutMs: 30_000, maxOutputBytes: 65_536 });
  assert.equal(config.dataDir, '/var/lib/kodama');
  const opts = agentOptions(config, () => {});
  assert.deepEqual(opts.exec, config.exec);
  assert.equal(opts.dataDir, '/var/lib/kodama');
});

test('no exec and no data dir anywhere: the options have neither (exec disabled, deploys refused)', () => {
  const { config } = readAgentConfig(['-node', 'n'], {});
  assert.equal(config.exec, undefined);
  assert.equal(config.dataDir, undefined);
  const opts = agentOptions(config, () => {});
  assert.equal('exec' in opts, false);
  assert.equal('dataDir' in opts, false);
});

test('flags: -enable-exec -exec-token -data-dir', () => {
  const { config } = readAgentConfig(['-enable-exec', '-exec-token', 'tok', '-data-dir', '/tmp/kd'], {});
  assert.equal(config.exec?.enabled, true);
  assert.equal(config.exec?.token, 'tok');
  assert.deepEqual(config.exec?.allow, []);
  assert.equal(config.dataDir, '/tmp/kd');
  // --x works like -x, and = forms
  const b = readAgentConfig(['--enable-exec', '--exec-token=t2', '--data-dir=/d'], {}).config;
  assert.equal(b.exec?.token, 't2');
  assert.equal(b.dataDir, '/d');
});

test('env: KODAMA_EXEC_TOKEN completes a file that enables exec; KODAMA_DATA_DIR; flags beat env beat files', () => {
  const f = file('enable-only.json', { exec: { enabled: true, allow: ['uptime'] } });
  // the file alone is an error that says how to set a token
  assert.throws(() => readAgentConfig(['-config-file', f], {}), configError(/enabled without a token.*KODAMA_EXEC_TOKEN/));
  const env = { KODAMA_EXEC_TOKEN: 'from-env\n', KODAMA_DATA_DIR: '/env/dir' };
  const e = readAgentConfig(['-config-file', f], env).config;
  assert.deepEqual({ enabled: e.exec?.enabled, token: e.exec?.token, allow: e.exec?.allow }, { enabled: true, token: 'from-env', allow: ['uptime'] });
  assert.equal(e.dataDir, '/env/dir');
  const withToken = file('with-token.json', { exec: { enabled: true, token: 'from-file' }, data_dir: '/file/dir' });
  assert.equal(readAgentConfig(['-config-file', withToken], {}).config.exec?.token, 'from-file');
  assert.equal(readAgentConfig(['-config-file', withToken], env).config.exec?.token, 'from-env');
  const fl = readAgentConfig(['-config-file', withToken, '-exec-token', 'from-flag', '-data-dir', '/flag/dir'], env).config;
  assert.equal(fl.exec?.token, 'from-flag');
  assert.equal(fl.dataDir, '/flag/dir');
  // -enable-exec turns on what a file left off
  const off = file('off.json', { exec: { enabled: false, token: 't' } });
  assert.equal(readAgentConfig(['-config-file', off], {}).config.exec?.enabled, false);
  assert.equal(readAgentConfig(['-config-file', off, '-enable-exec'], {}).config.exec?.enabled, true);
  // -enable-exec with no token anywhere
  assert.throws(() => readAgentConfig(['-enable-exec'], {}), configError(/enabled without a token/));
  assert.ok(ENV_VARS.includes('KODAMA_EXEC_TOKEN') && ENV_VARS.includes('KODAMA_DATA_DIR'), 'listed in --help');
});

test('a bad exec section is refused where it is written (file named), data_dir must be a string', () => {
  assert.throws(() => decodeConfigJson(JSON.stringify({ exec: { enabled: 'yes' } }), 'bad.json'), configError(/bad\.json.*'enabled'/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ exec: { enabled: true, tokn: 'x' } }), 'typo.json'), configError(/typo\.json/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ exec: { allow: 'uptime' } }), 'allow.json'), configError(/allow\.json.*'allow'/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ exec: [] }), 'arr.json'), configError(/arr\.json/));
  assert.throws(() => decodeConfigJson(JSON.stringify({ data_dir: 7 }), 'dd.json'), configError(/dd\.json.*'data_dir'/));
  // a file that enables exec without a token decodes (the token may come from env or a flag)
  assert.doesNotThrow(() => decodeConfigJson(JSON.stringify({ exec: { enabled: true } }), 'ok.json'));
});

test('a later file\'s exec section replaces an earlier one', () => {
  const a = file('a.json', { exec: { enabled: true, token: 'a', allow: ['x'] } });
  const b = file('b.json', { exec: { enabled: false } });
  const { config } = readAgentConfig(['-config-file', a, '-config-file', b], {});
  assert.deepEqual({ enabled: config.exec?.enabled, token: config.exec?.token, allow: config.exec?.allow }, { enabled: false, token: '', allow: [] });
});
