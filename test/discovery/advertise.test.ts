// The service tag `s:<name>` = `<port>[,tcp][,w<weight>][,drain]`: what a balancer reads from a
// member's tags, whoever set them (a kodama agent or `serf agent -tag s:web=8080`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_SERVICE_NAME_LENGTH,
  decodeServiceTags,
  decodeServiceTagValue,
  encodeServiceTag,
  serviceTagKey,
} from '../../src/discovery/advertise.ts';
import { encodeTags } from '../../src/serf/tags.ts';
import { META_MAX_SIZE } from '../../src/wire/limits.ts';
import { AgentError } from '../../src/agent/errors.ts';

test('encode: defaults are left out, flags appear in a fixed order', () => {
  assert.equal(encodeServiceTag({ port: 8080, protocol: 'http', weight: 100, draining: false }), '8080');
  assert.equal(encodeServiceTag({ port: 5432, protocol: 'tcp', weight: 100, draining: false }), '5432,tcp');
  assert.equal(encodeServiceTag({ port: 8080, protocol: 'http', weight: 50, draining: true }), '8080,w50,drain');
  assert.equal(encodeServiceTag({ port: 65535, protocol: 'tcp', weight: 256, draining: true }), '65535,tcp,w256,drain');
  assert.equal(encodeServiceTag({ port: 1, protocol: 'http', weight: 0, draining: false }), '1,w0');
  assert.equal(serviceTagKey('web'), 's:web');
});

test('encode refuses a port or weight out of range with ERR_AGENT_CONFIG', () => {
  for (const bad of [
    { port: 0, protocol: 'http' as const, weight: 100, draining: false },
    { port: 65536, protocol: 'http' as const, weight: 100, draining: false },
    { port: 80.5, protocol: 'http' as const, weight: 100, draining: false },
    { port: 80, protocol: 'http' as const, weight: 257, draining: false },
    { port: 80, protocol: 'http' as const, weight: -1, draining: false },
  ]) {
    assert.throws(() => encodeServiceTag(bad), (e: unknown) => e instanceof AgentError && e.code === 'ERR_AGENT_CONFIG');
  }
});

test('round trip over every combination of protocol, weight and drain', () => {
  for (const protocol of ['http', 'tcp'] as const) {
    for (const weight of [0, 1, 99, 100, 101, 256]) {
      for (const draining of [false, true]) {
        for (const port of [1, 80, 8080, 65535]) {
          const value = encodeServiceTag({ port, protocol, weight, draining });
          const { services, invalid } = decodeServiceTags({ [serviceTagKey('web')]: value });
          assert.deepEqual(invalid, []);
          assert.deepEqual(services, [{ name: 'web', port, protocol, weight, draining }], value);
        }
      }
    }
  }
});

test('values a serf user sets by hand', () => {
  const { services, invalid } = decodeServiceTags({
    role: 'web',
    's:web': '8080',
    's:api': '8080,tcp,w50,drain',
    's:db': ' 5432 , tcp ',
    's:cache': '6379,,w7,', // empty parts: tolerated
    's:new': '9000,h2,zone=eu,drain', // flags from a newer version: ignored
  });
  assert.deepEqual(invalid, []);
  assert.deepEqual(services, [
    { name: 'api', port: 8080, protocol: 'tcp', weight: 50, draining: true },
    { name: 'cache', port: 6379, protocol: 'http', weight: 7, draining: false },
    { name: 'db', port: 5432, protocol: 'tcp', weight: 100, draining: false },
    { name: 'new', port: 9000, protocol: 'http', weight: 100, draining: true },
    { name: 'web', port: 8080, protocol: 'http', weight: 100, draining: false },
  ]);
});

test('unreadable values and names are reported, not thrown; other tags are not looked at', () => {
  const tags: Record<string, string> = {
    's:ok': '80',
    's:noport': 'tcp',
    's:empty': '',
    's:zero': '0',
    's:big': '65536',
    's:neg': '-80',
    's:frac': '80.5',
    's:hex': '0x50',
    's:wbig': '80,w257',
    's:wjunk': '80,wx',
    's:': '80',
    's:bad name': '80',
    's:-dash': '80',
    ['s:' + 'a'.repeat(MAX_SERVICE_NAME_LENGTH + 1)]: '80',
    service: 'not-a-service-tag',
    's': '80',
  };
  const { services, invalid } = decodeServiceTags(tags);
  assert.deepEqual(services.map((s) => s.name), ['ok']);
  assert.deepEqual(
    invalid,
    ['s:', 's:-dash', 's:' + 'a'.repeat(MAX_SERVICE_NAME_LENGTH + 1), 's:bad name', 's:big', 's:empty', 's:frac', 's:hex', 's:neg', 's:noport', 's:wbig', 's:wjunk', 's:zero'],
  );
  assert.equal(decodeServiceTagValue('abc'), undefined);
});

test('the longest value is 20 bytes: several services fit in Serf\'s 512-byte meta next to user tags', () => {
  const longest = encodeServiceTag({ port: 65535, protocol: 'tcp', weight: 256, draining: true });
  assert.equal(longest.length, 20);
  const tags: Record<string, string> = { role: 'web', dc: 'eu-west-1', version: '1.2.3' };
  for (const name of ['web', 'api', 'admin', 'metrics', 'grpc', 'websocket', 'static', 'auth']) tags[serviceTagKey(name)] = longest;
  const meta = encodeTags(tags, 5);
  // Worst-case values for 8 services: well inside the limit, with room left for more user tags.
  assert.ok(meta.length <= 300, `8 services + 3 tags take ${meta.length} of ${META_MAX_SIZE} bytes`);
  // One service with the longest allowed name still fits comfortably.
  const one = encodeTags({ [serviceTagKey('n'.repeat(MAX_SERVICE_NAME_LENGTH))]: longest }, 5);
  assert.ok(one.length < 100, `${one.length} bytes`);
});
