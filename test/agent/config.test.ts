// Agent configuration as a user writes it: serf JSON files and directories, KODAMA_* env vars,
// flags, and the precedence between them (flags > env > files > defaults).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configFromEnv, decodeConfigJson, readConfigPaths, resolveConfig } from '../../src/agent/config.ts';
import { configError, configFiles } from './config-helpers.ts';
import { readAgentConfig } from '../../src/cli/agent.ts';

const { dir, file } = configFiles('kodama-config-');

test('a serf config file decodes with serf key names, durations and lists', () => {
  const d = decodeConfigJson(
    JSON.stringify({
      node_name: 'web-1',
      tags: { role: 'web', dc: 'x' },
      bind: '127.0.0.1:7000',
      encrypt_key: 'k',
      start_join: ['a', 'b'],
      event_handlers: ['member-join=./j.sh'],
      retry_interval: '1m30s',
      broadcast_timeout: '500ms',
      leave_on_terminate: false,
      protocol: 4,
    }),
    'f.json',
  );
  assert.deepEqual(d.config, {
    nodeName: 'web-1',
    tags: { role: 'web', dc: 'x' },
    bind: '127.0.0.1:7000',
    encryptKey: 'k',
    startJoin: ['a', 'b'],
    eventHandlers: ['member-join=./j.sh'],
    retryIntervalMs: 90_000,
    broadcastTimeoutMs: 500,
    leaveOnTerminate: false,
    protocol: 4,
  });
  assert.deepEqual(d.warnings, []);
});

test('unknown keys, wrong types, bad JSON and bad durations are errors that name the file and key', () => {
  assert.throws(() => decodeConfigJson('{"node_name":"a","nodename":"b","bogus":1}', 'x.json'), configError(/'x\.json'.*invalid keys: bogus, nodename/));
  assert.throws(() => decodeConfigJson('{"protocol":"5"}', 'x.json'), configError(/'protocol' expected an integer/));
  assert.throws(() => decodeConfigJson('{"tags":{"a":1}}', 'x.json'), configError(/'tags' expected an object of string values/));
  assert.throws(() => decodeConfigJson('{"start_join":"a"}', 'x.json'), configError(/'start_join' expected a list of strings/));
  assert.throws(() => decodeConfigJson('{"retry_interval":"30"}', 'x.json'), configError(/invalid duration "30"/));
  assert.throws(() => decodeConfigJson('{node_name:', 'x.json'), configError(/Error decoding 'x\.json'/));
  assert.throws(() => decodeConfigJson('[1]', 'x.json'), configError(/expected a JSON object/));
  // every serf key is one kodama reads, -discover and -iface's too
  assert.deepEqual(decodeConfigJson('{"discover":"c","interface":"eth0"}', 'x.json'), { config: { discover: 'c', iface: 'eth0' }, warnings: [] });
});

test('-config-dir reads *.json in lexical order: scalars override, tags merge, lists append', () => {
  const d = join(dir, 'conf.d');
  mkdirSync(d);
  writeFileSync(join(d, '10-base.json'), JSON.stringify({ node_name: 'base', tags: { a: '1', b: '1' }, start_join: ['s1'], log_level: 'debug' }));
  writeFileSync(join(d, '20-over.json'), JSON.stringify({ node_name: 'over', tags: { b: '2' }, start_join: ['s2'] }));
  writeFileSync(join(d, 'README.txt'), 'not json, ignored');
  mkdirSync(join(d, 'sub.json')); // directories are not recursed into, even if named *.json
  const r = readConfigPaths([d]);
  assert.equal(r.config.nodeName, 'over');
  assert.deepEqual(r.config.tags, { a: '1', b: '2' });
  assert.deepEqual(r.config.startJoin, ['s1', 's2']);
  assert.equal(r.config.logLevel, 'debug');
  assert.throws(() => readConfigPaths([join(dir, 'missing.json')]), configError(/Error reading '.*missing\.json'/));
});

test('KODAMA_* env vars: lists, tags, booleans, one handler per line; empty ones ignored; bad values say which var', () => {
  const r = configFromEnv({
    KODAMA_NODE: 'envnode',
    KODAMA_JOIN: '10.0.0.1, 10.0.0.2:7946',
    KODAMA_TAGS: 'role=web,dc=eu=1',
    KODAMA_LEAVE_ON_TERMINATE: 'false',
    KODAMA_RETRY_MAX: '3',
    KODAMA_EVENT_HANDLERS: 'member-join,member-leave=./a.sh\nuser:deploy=./b.sh',
    KODAMA_BIND: '',
    UNRELATED: 'x',
  });
  assert.deepEqual(r.config, {
    nodeName: 'envnode',
    startJoin: ['10.0.0.1', '10.0.0.2:7946'],
    tags: { role: 'web', dc: 'eu=1' },
    leaveOnTerminate: false,
    retryMaxAttempts: 3,
    eventHandlers: ['member-join,member-leave=./a.sh', 'user:deploy=./b.sh'],
  });
  assert.throws(() => configFromEnv({ KODAMA_PROTOCOL: 'five' }), configError(/KODAMA_PROTOCOL: expected an integer/));
  assert.throws(() => configFromEnv({ KODAMA_REPLAY: 'maybe' }), configError(/KODAMA_REPLAY: expected true or false/));
  assert.throws(() => configFromEnv({ KODAMA_TAGS: 'novalue' }), configError(/KODAMA_TAGS: Invalid tag: 'novalue'/));
});

test('precedence: flags > env > files > defaults; kodama defaults leave_on_terminate to true', () => {
  const f = file('prec.json', { node_name: 'from-file', bind: '127.0.0.1:1111', log_level: 'warn', tags: { t: 'file', f: '1' }, start_join: ['file-seed'] });
  const env = { KODAMA_NODE: 'from-env', KODAMA_BIND: '127.0.0.1:2222', KODAMA_TAGS: 't=env,e=1', KODAMA_JOIN: 'env-seed' };
  const r = readAgentConfig([`-config-file=${f}`, '-node', 'from-flag', '-tag', 't=flag', '-join=flag-seed'], env).config;
  assert.equal(r.nodeName, 'from-flag');
  assert.equal(r.bind, '127.0.0.1:2222'); // env beats file
  assert.equal(r.logLevel, 'warn'); // file beats default
  assert.equal(r.rpcAddr, '127.0.0.1:7373'); // default
  assert.deepEqual(r.tags, { t: 'flag', f: '1', e: '1' });
  assert.deepEqual(r.startJoin, ['file-seed', 'env-seed', 'flag-seed']);
  assert.equal(r.leaveOnTerminate, true);
  assert.equal(r.skipLeaveOnInterrupt, false);
  assert.equal(r.enableCompression, true);
  assert.equal(r.retryIntervalMs, 30_000);
  const off = readAgentConfig(['-disable-compression', '-replay', '-rejoin', '-retry-max=2', '-retry-interval=2s'], { KODAMA_LEAVE_ON_TERMINATE: 'no' }).config;
  assert.deepEqual([off.enableCompression, off.replayOnJoin, off.rejoinAfterLeave, off.retryMaxAttempts, off.retryIntervalMs, off.leaveOnTerminate], [false, true, true, 2, 2000, false]);
  // kodama's own traffic reaches handlers only when asked (docs/events.md): the flag or the key.
  assert.equal(r.showInternalEvents, undefined);
  assert.equal(readAgentConfig(['-show-internal-events'], {}).config.showInternalEvents, true);
  assert.equal(readAgentConfig([`-config-file=${file('internal.json', { show_internal_events: true })}`], {}).config.showInternalEvents, true);
});

test("serf's sanity rules: role becomes a tag, low intervals are clamped with a warning, bad profile/log level fail", () => {
  const r = resolveConfig([{ role: 'db', retryIntervalMs: 10, broadcastTimeoutMs: 1, rejoinAfterLeave: true }], 'host');
  assert.equal(r.config.nodeName, 'host');
  assert.deepEqual(r.config.tags, { role: 'db' });
  assert.equal(r.config.retryIntervalMs, 1000);
  assert.equal(r.config.broadcastTimeoutMs, 1000);
  assert.equal(r.warnings.length, 4, r.warnings.join('\n'));
  assert.throws(() => resolveConfig([{ profile: 'moon' }], 'h'), configError(/Unknown profile: moon/));
  assert.throws(() => readAgentConfig(['-log-level=loud'], {}), /Invalid log level: loud/);
  assert.throws(() => readAgentConfig(['-protocol=x'], {}), /invalid value "x" for flag -protocol/);
  assert.throws(() => readAgentConfig(['-tag', 'broken'], {}), /Invalid tag: 'broken'/);
  assert.throws(() => readAgentConfig(['-nosuchflag'], {}), /flag provided but not defined: -nosuchflag/);
});
