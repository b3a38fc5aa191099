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
  rejects({ name: 'web' }, 'services:', 'expected a list of services');
  rejects(['web'], 'services[0]', 'expected an object');
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

test('agent config files: services, leave_drain and balancer reach AgentOptions; services append across files', async () => {
  const { decodeConfigJson, mergeConfig, resolveConfig, configFromEnv } = await import('../../src/agent/config.ts');
  const { agentOptions } = await import('../../src/cli/agent.ts');
  const one = decodeConfigJson(JSON.stringify({
    services: [{ name: 'web', port: 8080, checks: [{ http: '/health', interval: '250ms', rise: 1 }] }],
    leave_drain: '1500ms',
    balancer: { services: { web: { bind: '127.0.0.1:8000' } } },
  }), 'a.json');
  const two = decodeConfigJson(JSON.stringify({ services: [{ name: 'api', port: 9000, protocol: 'tcp' }] }), 'b.json');
  const r = resolveConfig([mergeConfig(one.config, two.config)], 'host');
  const o = agentOptions(r.config, () => {});
  assert.deepEqual(o.services?.map((s) => `${s.name}:${s.port}:${s.protocol}:${s.checks.length}`), ['web:8080:http:1', 'api:9000:tcp:0']);
  assert.equal(o.services?.[0]?.checks[0]?.intervalMs, 250);
  assert.equal(o.leaveDrainMs, 1500);
  assert.equal(o.balancer?.driver, 'embedded');
  assert.deepEqual(o.balancer?.services.map((s) => [s.service, s.bind.port]), [['web', 8000]]);
  assert.equal(configFromEnv({ KODAMA_LEAVE_DRAIN: '3s' }).config.leaveDrainMs, 3000);

  const noServices = agentOptions(resolveConfig([], 'host').config, () => {});
  assert.equal(noServices.services, undefined);
  assert.equal(noServices.balancer, undefined);

  // The same service in two files is pointed out, not silently doubled.
  const dup = decodeConfigJson(JSON.stringify({ services: [{ name: 'web', port: 8081 }] }), 'c.json');
  assert.throws(() => resolveConfig([mergeConfig(one.config, dup.config)], 'host'), /service "web" is defined in more than one config file/);
  // Errors inside services name the file and the key path.
  assert.throws(
    () => decodeConfigJson(JSON.stringify({ services: [{ name: 'web', port: 80, checks: [{ http: '/h', rise: 0 }] }] }), 'd.json'),
    (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG' && e.message.includes("d.json") && e.message.includes("checks[0]: 'rise'"),
  );
});
