import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPort, pickAdvertiseIp, resolveJoinAddresses } from '../../src/agent/address.ts';
import { AgentError } from '../../src/agent/errors.ts';

test('parseHostPort: host, host:port, [v6]:port, bare v6, name/host:port', () => {
  assert.deepEqual(parseHostPort('10.0.0.1', 7946), { host: '10.0.0.1', port: 7946 });
  assert.deepEqual(parseHostPort('10.0.0.1:8000', 7946), { host: '10.0.0.1', port: 8000 });
  assert.deepEqual(parseHostPort('db.example:0', 7946), { host: 'db.example', port: 0 });
  assert.deepEqual(parseHostPort('[::1]:7000', 7946), { host: '::1', port: 7000 });
  assert.deepEqual(parseHostPort('[::1]', 7946), { host: '::1', port: 7946 });
  assert.deepEqual(parseHostPort('fe80::1', 7946), { host: 'fe80::1', port: 7946 });
  assert.deepEqual(parseHostPort('node-a/127.0.0.1:7947', 7946), { host: '127.0.0.1', port: 7947 });
  for (const bad of ['', ':80', 'h:99999', 'h:x', '[::1', '[::1]x', 'h:']) {
    assert.throws(() => parseHostPort(bad, 7946), AgentError, bad);
  }
});

test('join resolves every address a name has, dedupes, and reports failures', async () => {
  const lookup = async (host: string): Promise<string[]> => {
    if (host === 'cluster.test') return ['10.0.0.1', '10.0.0.2', '10.0.0.1'];
    if (host === 'empty.test') return [];
    throw new Error('getaddrinfo ENOTFOUND ' + host);
  };
  const r = await resolveJoinAddresses(['cluster.test', '10.0.0.3:7000', 'nx.test', 'empty.test', 'bad:port:x'], lookup);
  assert.deepEqual(
    r.addrs.map((a) => `${a.ip}:${a.port}`).sort(),
    ['10.0.0.1:7946', '10.0.0.2:7946', '10.0.0.3:7000'],
  );
  assert.equal(r.errors.length, 3);
  assert.ok(r.errors.some((e) => e.startsWith('Failed to resolve nx.test: ') && e.includes('ENOTFOUND')));
  assert.ok(r.errors.some((e) => e.startsWith('Failed to resolve empty.test')));
});

test('join resolves localhost through the system resolver', async () => {
  const r = await resolveJoinAddresses(['localhost:7999']);
  assert.ok(r.addrs.length >= 1);
  assert.ok(r.addrs.every((a) => a.port === 7999 && (a.ip === '127.0.0.1' || a.ip === '::1')));
});

test('advertise: explicit bind IPs are kept; a wildcard picks an interface address', () => {
  assert.equal(pickAdvertiseIp('127.0.0.1'), '127.0.0.1');
  const ip = pickAdvertiseIp('0.0.0.0');
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(ip, '0.0.0.0');
});
