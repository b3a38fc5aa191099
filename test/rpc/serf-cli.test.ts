// The real serf CLI (/usr/bin/serf) against kodama's RPC server: what a user types and sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRpcServer, type RpcServer } from '../../src/rpc/index.ts';
import { MEMBERS, recordingBackend, runSerf, type RecordingBackend } from './helpers.ts';

let server: RpcServer;
let backend: RecordingBackend;
let authServer: RpcServer;
let addr = '';
let authAddr = '';

before(async () => {
  backend = recordingBackend();
  server = await startRpcServer({ host: '127.0.0.1', port: 0 }, backend);
  addr = `127.0.0.1:${server.address.port}`;
  authServer = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), { authKey: 'sekret-token' });
  authAddr = `127.0.0.1:${authServer.address.port}`;
});

after(async () => {
  await server.close();
  await authServer.close();
});

interface Row {
  name: string;
  addr: string;
  status: string;
  tags: Record<string, string>;
}

/** serf's text output: columns separated by runs of spaces, tags as k=v,k=v (maybe empty). */
function parseText(out: string): Row[] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [name = '', a = '', status = '', tags = ''] = l.trim().split(/\s{2,}/);
      const t: Record<string, string> = {};
      for (const kv of tags.split(',').filter((x) => x !== '')) {
        const i = kv.indexOf('=');
        t[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return { name, addr: a, status, tags: t };
    });
}

function expectedAddr(m: (typeof MEMBERS)[number]): string {
  if (m.addr.length === 4) return `${[...m.addr].join('.')}:${m.port}`;
  return m.name === 'v6-node' ? `[2001:db8::1]:${m.port}` : 'unexpected';
}

async function names(args: string[]): Promise<string[]> {
  const r = await runSerf(['members', '-rpc-addr', addr, ...args]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return parseText(r.stdout).map((x) => x.name);
}

test('serf members shows every member exactly (name, addr:port, status, tags, IPv6)', async () => {
  const r = await runSerf(['members', '-rpc-addr', addr]);
  assert.equal(r.code, 0, r.stderr);
  const rows = parseText(r.stdout);
  assert.deepEqual(
    rows,
    MEMBERS.map((m) => ({ name: m.name, addr: expectedAddr(m), status: m.status, tags: m.tags })),
  );
});

test('serf members -format json carries tags, status and the Serf protocol versions', async () => {
  const r = await runSerf(['members', '-rpc-addr', addr, '-format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { members: { name: string; addr: string; port: number; tags: Record<string, string>; status: string; protocol: Record<string, number> }[] };
  assert.equal(json.members.length, MEMBERS.length);
  for (const [i, m] of MEMBERS.entries()) {
    const j = json.members[i];
    assert.ok(j);
    assert.equal(j.name, m.name);
    assert.equal(j.addr, expectedAddr(m));
    assert.equal(j.port, m.port);
    assert.deepEqual(j.tags, m.tags);
    assert.equal(j.status, m.status);
    assert.deepEqual(j.protocol, { min: 2, max: 5, version: 5 });
  }
});

test('serf members filters are anchored regexes on status, name and each tag', async () => {
  assert.deepEqual(await names(['-status', 'alive']), ['web-1', 'db-1']);
  assert.deepEqual(await names(['-status', 'ali']), []);
  assert.deepEqual(await names(['-status', 'alive|left']), ['web-1', 'db-1', 'v6-node']);
  assert.deepEqual(await names(['-tag', 'role=web']), ['web-1', 'web-2']);
  assert.deepEqual(await names(['-tag', 'role=w']), []);
  assert.deepEqual(await names(['-tag', 'role=web', '-tag', 'dc=x[2-9]']), ['web-2']);
  // a tag the member lacks matches as "", so only an expression accepting "" passes it
  assert.deepEqual(await names(['-tag', 'role=.*']), ['web-1', 'web-2', 'db-1', 'v6-node']);
  assert.deepEqual(await names(['-tag', 'role=.+']), ['web-1', 'web-2', 'db-1']);
  assert.deepEqual(await names(['-name', 'web-.*']), ['web-1', 'web-2']);
  assert.deepEqual(await names(['-name', 'web']), []);
  assert.deepEqual(await names(['-name', '(?i)DB-1']), ['db-1']);
  assert.deepEqual(await names(['-name', '.*', '-status', 'failed', '-tag', 'dc=x2']), ['web-2']);
});

test('an invalid filter regex is reported to the user, and the server keeps serving', async () => {
  const r = await runSerf(['members', '-rpc-addr', addr, '-name', '[']);
  assert.equal(r.code, 1);
  assert.match(r.stderr + r.stdout, /Error retrieving members: Failed to compile regex/);
  assert.equal((await names([])).length, MEMBERS.length);
});

test('serf join reaches backend.join with the addresses and -replay; errors reach the user', async () => {
  backend.joins.length = 0;
  const ok = await runSerf(['join', '-rpc-addr', addr, '127.0.0.1:7001', '10.0.0.2']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Successfully joined cluster by contacting 2 nodes/);
  const replay = await runSerf(['join', '-rpc-addr', addr, '-replay', '127.0.0.1:7002']);
  assert.equal(replay.code, 0, replay.stderr);
  assert.deepEqual(backend.joins, [
    { addrs: ['127.0.0.1:7001', '10.0.0.2'], replay: false },
    { addrs: ['127.0.0.1:7002'], replay: true },
  ]);
  const bad = await runSerf(['join', '-rpc-addr', addr, '0.0.0.1']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr + bad.stdout, /Error joining the cluster: Failed to join 0\.0\.0\.1: refused/);
});

test('serf leave reaches backend.leave and reports success', async () => {
  const before = backend.leaves;
  const r = await runSerf(['leave', '-rpc-addr', addr]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Graceful leave complete/);
  assert.equal(backend.leaves, before + 1);
});

test('serf info prints the backend stats', async () => {
  const r = await runSerf(['info', '-rpc-addr', addr, '-format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { agent: { name: 'fake' }, serf: { members: '4', encrypted: 'false' } });
});

test('commands serf knows but the backend lacks answer "Feature not supported"', async () => {
  const bare = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => MEMBERS });
  try {
    const a = `127.0.0.1:${bare.address.port}`;
    const leave = await runSerf(['leave', '-rpc-addr', a]);
    assert.equal(leave.code, 1);
    assert.match(leave.stderr + leave.stdout, /Error leaving: Feature not supported/);
    const ev = await runSerf(['event', '-rpc-addr', a, 'deploy', 'payload']);
    assert.equal(ev.code, 1);
    assert.match(ev.stderr + ev.stdout, /Feature not supported/);
    const keys = await runSerf(['keys', '-rpc-addr', a, '-list']);
    assert.equal(keys.code, 1);
    assert.match(keys.stderr + keys.stdout, /Feature not supported/);
    assert.equal(bare.counters()['notSupported'], 3);
  } finally {
    await bare.close();
  }
});

test('serf members -rpc-auth: refused without a token or with a wrong one, served with the right one', async () => {
  const none = await runSerf(['members', '-rpc-addr', authAddr]);
  assert.equal(none.code, 1);
  assert.match(none.stderr + none.stdout, /Error retrieving members: Authentication required/);
  const wrong = await runSerf(['members', '-rpc-addr', authAddr, '-rpc-auth', 'nope']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr + wrong.stdout, /Invalid authentication token/);
  const right = await runSerf(['members', '-rpc-addr', authAddr, '-rpc-auth', 'sekret-token']);
  assert.equal(right.code, 0, right.stderr);
  assert.deepEqual(parseText(right.stdout).map((r) => r.name), MEMBERS.map((m) => m.name));
  const env = await runSerf(['members', '-rpc-addr', authAddr], { SERF_RPC_AUTH: 'sekret-token' });
  assert.equal(env.code, 0, env.stderr);
  // like serf, an agent without rpc auth refuses a token it was not configured with
  const unexpected = await runSerf(['members', '-rpc-addr', addr, '-rpc-auth', 'sekret-token']);
  assert.equal(unexpected.code, 1);
  assert.match(unexpected.stderr + unexpected.stdout, /Error connecting to Serf agent: Invalid authentication token/);
  const c = authServer.counters();
  assert.equal(c['authRequired'], 1);
  assert.equal(c['authFailed'], 1);
});
