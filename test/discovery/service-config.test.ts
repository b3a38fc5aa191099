// Agent config `services`: snake_case JSON → ServiceSpec[], defaults filled in, and errors that
// name the key and say what would be accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK_DEFAULTS, parseServiceSpecs } from '../../src/discovery/service-config.ts';
import { AgentError } from '../../src/agent/errors.ts';

test('the issue\'s example parses with every field', () => {
  const specs = parseServiceSpecs(
    [
      {
        name: 'web', port: 8080, protocol: 'http', weight: 100, tags: ['v1'],
        checks: [
          { http: '/health', status: 200, interval: '1s', timeout: '500ms', rise: 2, fall: 2 },
          { tcp: true, interval: '2s' },
          { script: '/usr/lib/nagios/plugins/check_load -w 5 -c 10', interval: '10s', timeout: '5s' },
        ],
      },
    ],
    'web.json',
  );
  assert.deepEqual(specs, [
    {
      name: 'web', port: 8080, protocol: 'http', weight: 100, tags: ['v1'],
      checks: [
        { kind: 'http', path: '/health', expectStatus: 200, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 2 },
        { kind: 'tcp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 2 },
        { kind: 'script', command: '/usr/lib/nagios/plugins/check_load -w 5 -c 10', intervalMs: 10_000, timeoutMs: 5000, rise: 2, fall: 2 },
      ],
    },
  ]);
});

test('defaults: http, weight 100, no tags, no checks; check timing and expected status', () => {
  const [svc] = parseServiceSpecs([{ name: 'api', port: 9000, checks: [{ http: '/ping', host: 'api.local' }] }], 'x');
  assert.deepEqual(svc, {
    name: 'api', port: 9000, protocol: 'http', weight: 100, tags: [],
    checks: [{ kind: 'http', path: '/ping', host: 'api.local', expectStatus: 200, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2 }],
  });
  assert.deepEqual(CHECK_DEFAULTS, { intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2, expectStatus: 200 });
  assert.deepEqual(parseServiceSpecs([], 'x'), []);
  const [db] = parseServiceSpecs([{ name: 'db', port: 5432, protocol: 'tcp', weight: 0 }], 'x');
  assert.equal(db?.protocol, 'tcp');
  assert.equal(db?.weight, 0);
  assert.deepEqual(db?.checks, []);
});

function rejects(raw: unknown, ...fragments: string[]): void {
  assert.throws(
    () => parseServiceSpecs(raw, 'conf.json'),
    (e: unknown) => {
      assert.ok(e instanceof AgentError, String(e));
      assert.equal(e.code, 'ERR_AGENT_CONFIG');
      assert.ok(e.message.startsWith('conf.json: '), e.message);
      for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
      return true;
    },
  );
}

test('bad services are refused naming the key path and what to write', () => {
  rejects({ name: 'web' }, "'services'", 'expected a list of services');
  rejects(['web'], "'services'[0]", 'expected an object');
  rejects([{ port: 80 }], "'name'", 'service name');
  rejects([{ name: 'bad name', port: 80 }], "'name'", '"bad name"');
  rejects([{ name: 'web' }], '(web)', "'port' is required");
  rejects([{ name: 'web', port: 0 }], "'port'", 'from 1 to 65535');
  rejects([{ name: 'web', port: '80' }], "'port'", 'integer');
  rejects([{ name: 'web', port: 80, protocol: 'udp' }], "'protocol'", '"http" or "tcp"');
  rejects([{ name: 'web', port: 80, weight: 257 }], "'weight'", 'from 0 to 256');
  rejects([{ name: 'web', port: 80, tags: 'v1' }], "'tags'", 'list of strings');
  rejects([{ name: 'web', port: 80, check: [] }], "unknown key(s) 'check'", 'checks');
  rejects([{ name: 'web', port: 80 }, { name: 'web', port: 81 }], 'defined twice');
});

test('bad checks are refused naming the check and the key', () => {
  const svc = (check: unknown): unknown => [{ name: 'web', port: 80, checks: [check] }];
  rejects(svc({}), '(web).checks[0]', "one of 'http'");
  rejects(svc({ http: '/h', tcp: true }), "'http' and 'tcp'", 'one kind per check');
  rejects(svc({ http: 'health' }), "'http'", 'starting with "/"');
  rejects(svc({ http: '/h', status: 700 }), "'status'", 'from 100 to 599');
  rejects(svc({ http: '/h', host: '' }), "'host'");
  rejects(svc({ tcp: false }), "'tcp' expected true");
  rejects(svc({ tcp: true, status: 200 }), "'status' applies to http checks only");
  rejects(svc({ script: '' }), "'script' expected a shell command");
  rejects(svc({ http: '/h', interval: 5 }), "'interval'", 'duration string');
  rejects(svc({ http: '/h', interval: '5' }), "'interval'", 'invalid duration', '30s');
  rejects(svc({ http: '/h', timeout: '1ms' }), "'timeout' must be at least 10ms");
  rejects(svc({ http: '/h', rise: 0 }), "'rise'", 'from 1 to 1000');
  rejects(svc({ http: '/h', fall: 1.5 }), "'fall'");
  rejects(svc({ http: '/h', expect: 200 }), "unknown key(s) 'expect'");
  rejects(svc('tcp'), 'checks[0]', 'expected an object');
});
