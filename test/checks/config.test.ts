import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCheckSpecs, parseMonitoringSpec, subscriptionMatches, validateCheckHandlers } from '../../src/checks/config.ts';
import { AgentError } from '../../src/agent/errors.ts';

function throwsConfig(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && re.test(e.message), String(re));
}

test('the issue example parses with defaults filled in', () => {
  const checks = parseCheckSpecs([
    { name: 'disk', command: 'check_disk -w 20% -c 10% -p /', interval: '10s', timeout: '5s', subscriptions: ['role=web'], handlers: ['ops'], low_flap_threshold: 20, high_flap_threshold: 30 },
    { name: 'page', http: '/health', port: 8080, status: 200, subscriptions: ['role=web'] },
    { name: 'db', tcp: true, port: 5432, host: '127.0.0.1' },
    { name: 'heartbeat', ttl: '30s', ttl_status: 2, subscriptions: ['role=worker'] },
  ], 'a.json');
  assert.deepEqual(checks[0], {
    name: 'disk', intervalMs: 10_000, subscriptions: ['role=web'], ttlStatus: 2, lowFlapThreshold: 20, highFlapThreshold: 30,
    handlers: ['ops'], probe: { kind: 'script', command: 'check_disk -w 20% -c 10% -p /', timeoutMs: 5000 },
  });
  assert.deepEqual(checks[1]?.probe, { kind: 'http', path: '/health', expectStatus: 200, timeoutMs: 10_000 });
  assert.deepEqual(checks[1]?.target, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(checks[2]?.probe, { kind: 'tcp', timeoutMs: 10_000 });
  assert.deepEqual(checks[2]?.target, { host: '127.0.0.1', port: 5432 });
  assert.equal(checks[3]?.probe, undefined);
  assert.equal(checks[3]?.ttlMs, 30_000);
  assert.deepEqual(checks[3]?.subscriptions, ['role=worker']);
});

test('defaults: interval 10 s, timeout capped at the interval, every node, ttl_status 2, flap 20/30', () => {
  const [c] = parseCheckSpecs([{ name: 'load', command: 'true', interval: '2s' }], 'x');
  assert.equal(c?.intervalMs, 2000);
  assert.equal(c?.probe?.timeoutMs, 2000);
  assert.deepEqual(c?.subscriptions, []);
  assert.equal(c?.ttlStatus, 2);
  assert.equal(c?.lowFlapThreshold, 20);
  assert.equal(c?.highFlapThreshold, 30);
  const [t] = parseCheckSpecs([{ name: 'hb', ttl: '1m' }], 'x');
  assert.equal(t?.ttlStatus, 2);
  assert.equal(t?.ttlMs, 60_000);
});

test('errors name the file, the key path and what to write', () => {
  throwsConfig(() => parseCheckSpecs({}, 'c.json'), /c\.json: checks: expected a list/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', intervall: '1s' }], 'c.json'), /checks\[0\] \(x\): unknown key\(s\) 'intervall'/);
  throwsConfig(() => parseCheckSpecs([{ name: 'bad name', command: 'a' }], 'c.json'), /checks\[0\]: 'name' expected a check name/);
  throwsConfig(() => parseCheckSpecs([{ name: 'member', command: 'a' }], 'c'), /reserved/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x' }], 'c'), /needs one of 'command'/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', ttl: '10s', command: 'a' }], 'c'), /'command' and 'ttl': use one per check/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', http: '/h' }], 'c'), /'port' is required for http checks/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', http: 'health', port: 80 }], 'c'), /'http' expected a path starting with "\/"/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', interval: '5s', timeout: '6s' }], 'c'), /'timeout' \(6s\) must not exceed 'interval'/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', interval: 10 }], 'c'), /'interval' expected a duration string/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', subscriptions: ['web'] }], 'c'), /expected key=value .* or "\*"/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', low_flap_threshold: 40, high_flap_threshold: 30 }], 'c'), /must be below 'high_flap_threshold'/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a', ttl_status: 1 }], 'c'), /'ttl_status' applies to TTL checks only/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', ttl: '5s', ttl_status: 4 }], 'c'), /'ttl_status' expected an integer from 0 to 3/);
  throwsConfig(() => parseCheckSpecs([{ name: 'x', command: 'a' }, { name: 'x', command: 'b' }], 'c'), /check "x" is defined twice/);
  // 0/0 turns flap detection off and is accepted
  assert.equal(parseCheckSpecs([{ name: 'x', command: 'a', low_flap_threshold: 0, high_flap_threshold: 0 }], 'c')[0]?.highFlapThreshold, 0);
});

test('monitoring: handlers with filters and defaults', () => {
  const m = parseMonitoringSpec({
    handlers: {
      ops: { type: 'script', command: '/usr/local/bin/page-oncall', timeout: '10s', filters: { occurrences: 3, severities: ['critical', 'unknown'], not_silenced: true, state_changes_only: true } },
      hook: { type: 'webhook', url: 'http://127.0.0.1:9000/alerts', timeout: '5s' },
      audit: { type: 'log', path: '/var/log/kodama/alerts.log' },
    },
    default_handlers: ['ops', 'audit'],
    member_handlers: ['ops'],
  }, 'm.json');
  assert.deepEqual(m.defaultHandlers, ['ops', 'audit']);
  assert.deepEqual(m.memberHandlers, ['ops']);
  assert.deepEqual(m.handlers[0], { name: 'ops', type: 'script', command: '/usr/local/bin/page-oncall', timeoutMs: 10_000, filters: { occurrences: 3, severities: ['critical', 'unknown'], notSilenced: true, stateChangesOnly: true } });
  assert.deepEqual(m.handlers[1], { name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9000/alerts', timeoutMs: 5000, filters: { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true } });
  assert.deepEqual(m.handlers[2], { name: 'audit', type: 'log', path: '/var/log/kodama/alerts.log', filters: { occurrences: 1, severities: ['warning', 'critical', 'unknown'], notSilenced: true, stateChangesOnly: true } });
  // member_handlers default to default_handlers
  const d = parseMonitoringSpec({ handlers: { a: { type: 'log' } }, default_handlers: ['a'] }, 'm');
  assert.deepEqual(d.memberHandlers, ['a']);
  assert.deepEqual(parseMonitoringSpec({}, 'm'), { handlers: [], defaultHandlers: [], memberHandlers: [] });
});

test('monitoring errors', () => {
  throwsConfig(() => parseMonitoringSpec([], 'm'), /m: monitoring: expected an object/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'email' } } }, 'm'), /handlers\.a: 'type' expected "script", "webhook" or "log"/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'script' } } }, 'm'), /handlers\.a: 'command' expected a shell command/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'webhook', url: 'ftp://x' } } }, 'm'), /'url' expected an http\(s\) URL/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'log', url: 'x' } } }, 'm'), /unknown key\(s\) 'url'/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'log', filters: { severities: ['passing'] } } } }, 'm'), /handlers\.a\.filters: 'severities' entry "passing"/);
  throwsConfig(() => parseMonitoringSpec({ handlers: { a: { type: 'log' } }, default_handlers: ['b'] }, 'm'), /'default_handlers' names handler "b", which is not defined/);
});

test('check handlers are validated only against a monitor node\'s own handlers', () => {
  const checks = parseCheckSpecs([{ name: 'x', command: 'a', handlers: ['ops'] }], 'c');
  const m = parseMonitoringSpec({ handlers: { audit: { type: 'log' } } }, 'm');
  throwsConfig(() => validateCheckHandlers(checks, m), /checks \(x\): 'handlers' names "ops", which is not defined/);
  validateCheckHandlers(checks, parseMonitoringSpec({ handlers: { ops: { type: 'log' } } }, 'm'));
});

test('subscriptionMatches: any key=value matches, empty or * = every node', () => {
  assert.equal(subscriptionMatches([], {}), true);
  assert.equal(subscriptionMatches(['*'], {}), true);
  assert.equal(subscriptionMatches(['role=web'], { role: 'web' }), true);
  assert.equal(subscriptionMatches(['role=web'], { role: 'db' }), false);
  assert.equal(subscriptionMatches(['role=web'], {}), false);
  assert.equal(subscriptionMatches(['role=db', 'dc=eu'], { role: 'web', dc: 'eu' }), true);
  assert.equal(subscriptionMatches(['k=a=b'], { k: 'a=b' }), true);
  assert.equal(subscriptionMatches(['role='], { role: '' }), true);
  assert.equal(subscriptionMatches(['toString=x'], {}), false);
});

test('agent config files: `checks` append across files, `monitoring` makes handler names checked', async () => {
  const { decodeConfigJson, mergeConfig, resolveConfig } = await import('../../src/agent/config.ts');
  const a = decodeConfigJson(JSON.stringify({ checks: [{ name: 'disk', command: 'true', handlers: ['ops'] }] }), 'a.json').config;
  const b = decodeConfigJson(JSON.stringify({ checks: [{ name: 'hb', ttl: '30s' }] }), 'b.json').config;
  const merged = mergeConfig(a, b);
  assert.deepEqual(merged.checks?.map((c) => c.name), ['disk', 'hb']);
  // a plain node: 'ops' is not defined here, and that is fine
  assert.deepEqual(resolveConfig([merged], 'n').config.checks?.map((c) => c.name), ['disk', 'hb']);
  const mon = decodeConfigJson(JSON.stringify({ monitoring: { handlers: { audit: { type: 'log' } } } }), 'm.json').config;
  throwsConfig(() => resolveConfig([merged, mon], 'n'), /'handlers' names "ops"/);
  throwsConfig(() => resolveConfig([a, a], 'n'), /check "disk" is defined in more than one config file/);
  throwsConfig(() => decodeConfigJson(JSON.stringify({ checks: [{ name: 'x' }] }), 'c.json'), /c\.json.*checks\[0\] \(x\): needs one of/);
});
