import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRpcServer } from '../../src/rpc/index.ts';
import type { RpcMember } from '../../src/rpc/index.ts';
import { formatMembers } from '../../src/cli/members.ts';
import { runCli } from '../../src/cli/main.ts';
import { recordIo } from './helpers.ts';

function member(name: string, ip: number[], port: number, status: RpcMember['status'], tags: Record<string, string>): RpcMember {
  return {
    name,
    addr: Uint8Array.from(ip),
    port,
    tags,
    status,
    protocolMin: 1,
    protocolMax: 5,
    protocolCur: 2,
    delegateMin: 2,
    delegateMax: 5,
    delegateCur: 5,
  };
}

const MEMBERS = [
  member('serf-1', [127, 0, 0, 1], 7946, 'alive', { role: 'web', dc: 'x1' }),
  member('k', [10, 0, 0, 12], 17946, 'failed', {}),
];

test('text output: serf columns, tags sorted k=v, last column unpadded', () => {
  assert.equal(
    formatMembers(MEMBERS, 'text', false),
    ['serf-1  127.0.0.1:7946   alive   dc=x1,role=web', 'k       10.0.0.12:17946  failed'].join('\n'),
  );
  assert.match(formatMembers(MEMBERS, 'text', true), /Protocol Version: 5 {2}Available Protocol Range: \[2, 5\]/);
});

test('json output matches serf members -format json', () => {
  const j = JSON.parse(formatMembers(MEMBERS, 'json', false)) as unknown;
  assert.deepEqual(j, {
    members: [
      { name: 'serf-1', addr: '127.0.0.1:7946', port: 7946, tags: { dc: 'x1', role: 'web' }, status: 'alive', protocol: { max: 5, min: 2, version: 5 } },
      { name: 'k', addr: '10.0.0.12:17946', port: 17946, tags: {}, status: 'failed', protocol: { max: 5, min: 2, version: 5 } },
    ],
  });
});

test('kodama members talks RPC: filters by status/tag/name, honours auth, reports no agent', async (t) => {
  const server = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => MEMBERS }, { authKey: 's3cret' });
  t.after(() => server.close());
  const addr = `${server.address.host}:${server.address.port}`;

  const all = recordIo();
  assert.equal(await runCli(['members', '-rpc-addr', addr, '-rpc-auth=s3cret'], all), 0, all.err.join(''));
  assert.match(all.out.join(''), /^serf-1 .*alive/m);
  assert.match(all.out.join(''), /^k .*failed/m);

  const alive = recordIo({ KODAMA_RPC_ADDR: addr, KODAMA_RPC_AUTH: 's3cret' });
  assert.equal(await runCli(['members', '-status=alive', '-format=json'], alive), 0);
  assert.deepEqual(
    (JSON.parse(alive.out.join('')) as { members: { name: string }[] }).members.map((m) => m.name),
    ['serf-1'],
  );

  const byTag = recordIo({ SERF_RPC_ADDR: addr, SERF_RPC_AUTH: 's3cret' });
  assert.equal(await runCli(['members', '-tag', 'role=w.*'], byTag), 0);
  assert.equal(byTag.out.join('').trim().split('\n').length, 1);

  // -role (first-class in kodama, no deprecation warning) with -format hosts: "<ip> <name>" lines.
  const hosts = recordIo({ KODAMA_RPC_ADDR: addr, KODAMA_RPC_AUTH: 's3cret' });
  assert.equal(await runCli(['members', '-role', 'web', '-format', 'hosts'], hosts), 0);
  assert.equal(hosts.out.join(''), '127.0.0.1 serf-1\n');
  const noRole = recordIo({ KODAMA_RPC_ADDR: addr, KODAMA_RPC_AUTH: 's3cret' });
  assert.equal(await runCli(['members', '-role', 'db', '-format', 'json'], noRole), 0);
  assert.deepEqual(JSON.parse(noRole.out.join('')), { members: [] });

  const byName = recordIo();
  assert.equal(await runCli(['members', '-rpc-addr', addr, '-rpc-auth', 's3cret', '-name', 'k'], byName), 0);
  assert.match(byName.out.join(''), /^k\s/);

  const noAuth = recordIo();
  assert.equal(await runCli(['members', '-rpc-addr', addr], noAuth), 1);
  assert.match(noAuth.err.join(''), /Authentication required|auth/i);

  const badFormat = recordIo();
  assert.equal(await runCli(['members', '-rpc-addr', addr, '-format', 'xml'], badFormat), 1);
  assert.match(badFormat.err.join(''), /Invalid output format "xml"/);

  // nothing listening: a port we just freed
  const gone = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => [] });
  const goneAddr = `127.0.0.1:${gone.address.port}`;
  await gone.close();
  const none = recordIo();
  assert.equal(await runCli(['members', '-rpc-addr', goneAddr], none), 1);
  assert.match(none.err.join(''), /Error connecting to agent: .*kodama agent/);
});
