// RpcClient against kodama's own server and against scripted misbehaving servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeRpc } from '../../src/wire/index.ts';
import { RpcClient, RpcError, startRpcServer, type RpcBackend, type RpcServer } from '../../src/rpc/index.ts';
import { parseRpcAddr } from '../../src/rpc/client.ts';
import { MEMBERS, recordingBackend, type RecordingBackend } from './helpers.ts';

let srv: RpcServer;
let backend: RecordingBackend;
let addr = '';

before(async () => {
  backend = recordingBackend();
  srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, backend, { authKey: 'pw' });
  addr = `127.0.0.1:${srv.address.port}`;
});
after(async () => {
  await srv.close();
});

function isRpcError(code: string, re?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof RpcError, `expected RpcError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

/** A TCP server run by a script: `onData(socket, allBytesSoFar)`. */
async function scripted(onData: (s: Socket, got: Buffer) => void): Promise<{ server: Server; addr: string }> {
  const server = createServer((s) => {
    let got = Buffer.alloc(0);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      onData(s, got);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { server, addr: `127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}` };
}

const HANDSHAKE_LEN = 34; // captured handshake request, §9.6
const HANDSHAKE_OK = encodeRpc({ Error: '', Seq: 1 });

test('members round-trips every field, IPv4 and IPv6, through the server', async () => {
  const c = await RpcClient.connect(addr, { authKey: 'pw' });
  try {
    const ms = await c.members();
    assert.equal(ms.length, MEMBERS.length);
    for (const [i, m] of MEMBERS.entries()) {
      const got = ms[i];
      assert.ok(got);
      assert.deepEqual({ ...got, addr: [...got.addr] }, { ...m, addr: [...m.addr] });
    }
    assert.deepEqual((await c.membersFiltered({ tags: { role: 'web' }, status: 'alive' })).map((m) => m.name), ['web-1']);
    assert.deepEqual((await c.membersFiltered({ name: '.*-1' })).map((m) => m.name), ['web-1', 'db-1']);
    await assert.rejects(c.membersFiltered({ name: '(' }), isRpcError('ERR_RPC_REMOTE', /Failed to compile regex/));
    // the connection survives the refused filter
    assert.equal((await c.members()).length, MEMBERS.length);
  } finally {
    c.close();
  }
});

test('join, stats and leave reach the backend; a join error is ERR_RPC_REMOTE', async () => {
  const c = await RpcClient.connect(addr, { authKey: 'pw' });
  try {
    backend.joins.length = 0;
    assert.equal(await c.join(['127.0.0.1:1', '127.0.0.1:2'], true), 2);
    assert.deepEqual(backend.joins, [{ addrs: ['127.0.0.1:1', '127.0.0.1:2'], replay: true }]);
    await assert.rejects(c.join(['0.0.0.9'], false), isRpcError('ERR_RPC_REMOTE', /^Failed to join 0\.0\.0\.9: refused$/));
    assert.deepEqual(await c.stats(), { agent: { name: 'fake' }, serf: { members: '4', encrypted: 'false' } });
    const leaves = backend.leaves;
    await c.leave();
    assert.equal(backend.leaves, leaves + 1);
  } finally {
    c.close();
  }
});

test('auth: no key → ERR_RPC_AUTH on the first command, wrong key → ERR_RPC_AUTH on connect', async () => {
  const anon = await RpcClient.connect(addr);
  try {
    await assert.rejects(anon.members(), isRpcError('ERR_RPC_AUTH', /Authentication required.*-rpc-auth/));
  } finally {
    anon.close();
  }
  await assert.rejects(RpcClient.connect(addr, { authKey: 'nope' }), isRpcError('ERR_RPC_AUTH', /Invalid authentication token/));
});

test('a slow command holds back later ones on the same connection: replies stay in order', async () => {
  const order: string[] = [];
  const slow: RpcBackend = {
    members: () => MEMBERS,
    join: async () => {
      await new Promise((r) => setTimeout(r, 200));
      return { num: 1, error: '' };
    },
  };
  const s = await startRpcServer({ host: '127.0.0.1', port: 0 }, slow);
  const c = await RpcClient.connect(`127.0.0.1:${s.address.port}`);
  try {
    const j = c.join(['x'], false).then(() => order.push('join'));
    const m = c.members().then(() => order.push('members'));
    // 50 concurrent requests on one connection all come back
    const many = await Promise.all(Array.from({ length: 50 }, () => c.members()));
    await Promise.all([j, m]);
    assert.deepEqual(order, ['join', 'members']);
    assert.ok(many.every((x) => x.length === MEMBERS.length));
  } finally {
    c.close();
    await s.close();
  }
});

test('no answer within timeoutMs → ERR_RPC_TIMEOUT, and the client is closed after', async () => {
  const { server, addr: a } = await scripted((s, got) => {
    if (got.length === HANDSHAKE_LEN) s.write(HANDSHAKE_OK); // then ignore everything
  });
  try {
    const c = await RpcClient.connect(a, { timeoutMs: 300 });
    const t0 = Date.now();
    await assert.rejects(c.members(), isRpcError('ERR_RPC_TIMEOUT', /no answer to 'members'.*within 300 ms/));
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    await assert.rejects(c.stats(), isRpcError('ERR_RPC_TIMEOUT'));
    // a server that never answers the handshake: connect itself times out
    const { server: mute, addr: b } = await scripted(() => {});
    try {
      await assert.rejects(RpcClient.connect(b, { timeoutMs: 300 }), isRpcError('ERR_RPC_TIMEOUT', /'handshake'/));
    } finally {
      mute.close();
    }
  } finally {
    server.close();
  }
});

test('the agent closing mid-request → ERR_RPC_CLOSED; garbage → ERR_RPC_PROTOCOL', async () => {
  const { server, addr: a } = await scripted((s, got) => {
    if (got.length === HANDSHAKE_LEN) s.write(HANDSHAKE_OK);
    else s.destroy();
  });
  const { server: junk, addr: b } = await scripted((s, got) => {
    if (got.length === HANDSHAKE_LEN) s.write(HANDSHAKE_OK);
    else s.write(Buffer.from([0xc1, 0xc1]));
  });
  try {
    const c = await RpcClient.connect(a, { timeoutMs: 3000 });
    await assert.rejects(c.members(), isRpcError('ERR_RPC_CLOSED', /closed the connection/));
    const d = await RpcClient.connect(b, { timeoutMs: 3000 });
    await assert.rejects(d.members(), isRpcError('ERR_RPC_PROTOCOL', /malformed/));
  } finally {
    server.close();
    junk.close();
  }
});

test('addresses: host:port and [v6]:port parse; junk is ERR_RPC_CONNECT', () => {
  assert.deepEqual(parseRpcAddr('127.0.0.1:7373'), { host: '127.0.0.1', port: 7373 });
  assert.deepEqual(parseRpcAddr('[::1]:7373'), { host: '::1', port: 7373 });
  assert.deepEqual(parseRpcAddr('localhost:1'), { host: 'localhost', port: 1 });
  assert.throws(() => parseRpcAddr('127.0.0.1'), isRpcError('ERR_RPC_CONNECT', /expected host:port/));
  assert.throws(() => parseRpcAddr('h:99999'), isRpcError('ERR_RPC_CONNECT'));
});

test('a stream record of the wrong shape ends the client with ERR_RPC_PROTOCOL', async () => {
  const { server, addr: a } = await scripted((s, got) => {
    if (got.length === HANDSHAKE_LEN) {
      s.write(HANDSHAKE_OK);
      return;
    }
    // ack the stream (Seq 2), then one record whose LTime is a string
    s.write(Buffer.concat([encodeRpc({ Error: '', Seq: 2 }), encodeRpc({ Error: '', Seq: 2 }), encodeRpc({ Event: 'user', LTime: 'x' })]));
  });
  try {
    const c = await RpcClient.connect(a, { timeoutMs: 3000 });
    const got: unknown[] = [];
    await c.stream('*', (e) => got.push(e));
    // the record arrived with the ack, so the client is already closed with the reason
    await assert.rejects(c.members(), isRpcError('ERR_RPC_PROTOCOL', /bad response/));
    assert.deepEqual(got, []);
  } finally {
    server.close();
  }
});
