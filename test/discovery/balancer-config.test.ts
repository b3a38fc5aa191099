import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { AgentError } from '../../src/agent/errors.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';

function rejects(raw: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseBalancerSpec(raw, 'kodama.json'),
    (e: unknown) => {
      assert.ok(e instanceof AgentError, `not an AgentError: ${String(e)}`);
      assert.equal(e.code, 'ERR_AGENT_CONFIG');
      assert.match(e.message, /^kodama\.json: balancer/);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('the smallest config gets every default', () => {
  const spec = parseBalancerSpec({ services: { web: { bind: '127.0.0.1:8000' } } }, 'kodama.json');
  assert.equal(spec.driver, 'embedded');
  assert.deepEqual(spec.services, [
    { service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 8000 }, minBackends: 1, drainTimeoutMs: 10_000 },
  ]);
  assert.equal(spec.haproxy.binary, 'haproxy');
  assert.equal(spec.haproxy.slots, 8);
  assert.equal(spec.haproxy.reloadDebounceMs, 2000);
  assert.ok(spec.haproxy.dir.startsWith(tmpdir()), spec.haproxy.dir);
  assert.match(spec.haproxy.dir, new RegExp(`kodama-haproxy-${process.pid}$`));
  assert.deepEqual(spec.templates, []);
});

test('the full example of issue 4 parses with its values', () => {
  const spec = parseBalancerSpec(
    {
      driver: 'haproxy',
      services: {
        web: { bind: '127.0.0.1:8000', mode: 'http', min_backends: 2, drain_timeout: '3s', prefer_near: true },
        db: { bind: '[::1]:5432', mode: 'tcp', min_backends: 0, drain_timeout: '1m30s' },
      },
      haproxy: { binary: '/usr/sbin/haproxy', dir: '/var/lib/kodama/haproxy', slots: 16, reload_debounce: '500ms' },
      templates: [
        { source: 'nginx.conf.mustache', destination: '/etc/nginx/conf.d/web.conf', command: 'nginx -s reload', debounce: '1s' },
        { source: 'a.mustache', destination: 'a.txt' },
      ],
    },
    'kodama.json',
  );
  assert.equal(spec.driver, 'haproxy');
  assert.deepEqual(spec.services, [
    { service: 'web', mode: 'http', bind: { host: '127.0.0.1', port: 8000 }, minBackends: 2, drainTimeoutMs: 3000, preferNear: true },
    { service: 'db', mode: 'tcp', bind: { host: '::1', port: 5432 }, minBackends: 0, drainTimeoutMs: 90_000 },
  ]);
  assert.deepEqual(spec.haproxy, { binary: '/usr/sbin/haproxy', dir: '/var/lib/kodama/haproxy', slots: 16, reloadDebounceMs: 500 });
  assert.deepEqual(spec.templates, [
    { source: 'nginx.conf.mustache', destination: '/etc/nginx/conf.d/web.conf', command: 'nginx -s reload', debounceMs: 1000 },
    { source: 'a.mustache', destination: 'a.txt', debounceMs: 250 },
  ]);
});

test('bad input is an ERR_AGENT_CONFIG naming the key and what to write instead', () => {
  const web = { bind: '127.0.0.1:8000' };
  rejects(null, /expected an object/);
  rejects([], /expected an object/);
  rejects({}, /services: required/);
  rejects({ services: {} }, /at least one service/);
  rejects({ services: { web }, extra: 1 }, /unknown key\(s\) 'extra'/);
  rejects({ driver: 'nginx', services: { web } }, /driver: expected "embedded" or "haproxy", got "nginx"/);
  rejects({ services: { web: {} } }, /services\.web: 'bind' is required/);
  rejects({ services: { web: { bind: '127.0.0.1' } } }, /needs a port/);
  rejects({ services: { web: { bind: '127.0.0.1:0' } } }, /needs a port/);
  rejects({ services: { web: { bind: '127.0.0.1:99999' } } }, /invalid port/);
  rejects({ services: { web: { bind: 8000 } } }, /bind: expected a non-empty string/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', mode: 'udp' } } }, /mode: expected "http" or "tcp"/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', min_backends: -1 } } }, /min_backends: expected an integer/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', min_backends: 1.5 } } }, /min_backends: expected an integer/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', drain_timeout: 10 } } }, /drain_timeout: expected a duration string/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', prefer_near: 'yes' } } }, /prefer_near: expected true or false, got "yes"/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', drain_timeout: '10 s' } } }, /invalid duration "10 s"/);
  rejects({ services: { web: { bind: '127.0.0.1:8000', weight: 3 } } }, /unknown key\(s\) 'weight'/);
  rejects({ services: { 'we b': web } }, /service name 'we b'/);
  rejects({ services: { web, api: web } }, /'web' and 'api' both bind 127\.0\.0\.1:8000/);
  rejects({ services: { web }, haproxy: 'x' }, /haproxy: expected an object/);
  rejects({ services: { web }, haproxy: { slots: 0 } }, /slots: expected an integer 1\.\.4096/);
  rejects({ services: { web }, haproxy: { dir: '' } }, /dir: expected a non-empty string/);
  rejects({ services: { web }, haproxy: { reload_debounce: 'soon' } }, /invalid duration "soon"/);
  rejects({ services: { web }, haproxy: { bin: 'x' } }, /unknown key\(s\) 'bin'/);
  rejects({ services: { web }, templates: {} }, /templates: expected a list/);
  rejects({ services: { web }, templates: [{ destination: 'x' }] }, /templates\[0\]: 'source' is required/);
  rejects({ services: { web }, templates: [{ source: 'x' }] }, /templates\[0\]: 'destination' is required/);
  rejects({ services: { web }, templates: [{ source: 'x', destination: 'y', command: 7 }] }, /templates\[0\]\.command/);
});
