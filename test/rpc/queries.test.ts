// `query`, `respond`, the key commands and `get-coordinate`: the real serf CLI and RpcClient
// against kodama's server with a scripted backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RpcClient,
  RpcError,
  startRpcServer,
  type RpcBackend,
  type RpcEvent,
  type RpcKeyResponse,
  type RpcQueryParams,
  type RpcServer,
  type RpcStreamEvent,
} from '../../src/rpc/index.ts';
import { runSerf, sleep } from './helpers.ts';

const KEY_A = 'AAAAAAAAAAAAAAAAAAAAAA==';
const KEY_B = 'BBBBBBBBBBBBBBBBBBBBBB==';

function queryBackend() {
  const queries: (Omit<RpcQueryParams, 'payload'> & { payload: string })[] = [];
  const responses: string[] = [];
  const eventSinks = new Set<(e: RpcEvent) => void>();
  let cancelled = 0;
  const backend: RpcBackend = {
    members: () => [],
    query: async (p, sink) => {
      if (p.name.startsWith('_serf_')) throw new Error("Queries cannot contain the '_serf_' prefix");
      queries.push({ ...p, payload: Buffer.from(p.payload).toString() });
      // the local node acks before the call returns, as serf's own does
      if (p.requestAck) sink.ack('n1');
      const t1 = setTimeout(() => {
        if (p.requestAck) sink.ack('n2');
        sink.response('n1', Buffer.from(`re:${Buffer.from(p.payload).toString()}`));
      }, 30);
      const t2 = setTimeout(() => sink.done(), p.timeoutMs || 400);
      return () => {
        cancelled++;
        clearTimeout(t1);
        clearTimeout(t2);
      };
    },
    subscribeEvents: (sink) => {
      eventSinks.add(sink);
      return () => eventSinks.delete(sink);
    },
    installKey: async (k): Promise<RpcKeyResponse> =>
      k === KEY_B
        ? { error: '1/2 nodes reported failure', numNodes: 2, numResp: 2, numErr: 1, messages: { n2: 'bad key size' } }
        : { error: '', numNodes: 2, numResp: 2, numErr: 0, messages: {} },
    useKey: async () => ({ error: '', numNodes: 2, numResp: 2, numErr: 0, messages: {} }),
    removeKey: async () => {
      throw new Error('Removing the primary key is not allowed');
    },
    listKeys: async () => ({ error: '', numNodes: 2, numResp: 2, numErr: 0, messages: {}, keys: { [KEY_A]: 2, [KEY_B]: 1 } }),
    getCoordinate: (node) =>
      node === 'n1' || node === 'n2'
        ? { vec: node === 'n1' ? [0.01, 0, 0, 0, 0, 0, 0, 0] : [-0.01, 0, 0, 0, 0, 0, 0, 0], error: 0.5, adjustment: 0, height: 0.0001 }
        : null,
  };
  return { backend, queries, responses, eventSinks, cancelled: () => cancelled };
}

async function withServer(fn: (addr: string, q: ReturnType<typeof queryBackend>, srv: RpcServer) => Promise<void>): Promise<void> {
  const q = queryBackend();
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, q.backend);
  try {
    await fn(`127.0.0.1:${srv.address.port}`, q, srv);
  } finally {
    await srv.close();
  }
}

test('serf query: parameters reach the backend; acks, responses and the end reach the user', async () => {
  await withServer(async (a, q) => {
    const r = await runSerf(['query', '-rpc-addr', a, '-timeout', '300ms', 'deploy', 'v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      "Query 'deploy' dispatched",
      "Ack from 'n1'",
      "Ack from 'n2'",
      "Response from 'n1': re:v1",
      'Total Acks: 2',
      'Total Responses: 1',
    ]);
    const j = await runSerf(['query', '-rpc-addr', a, '-format', 'json', '-no-ack', '-node', 'a', '-node', 'b', '-tag', 'role=w.b', '-relay-factor', '2', 'ping']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), { Acks: null, Responses: { n1: 're:' } });
    assert.deepEqual(q.queries, [
      { name: 'deploy', payload: 'v1', filterNodes: [], filterTags: {}, requestAck: true, relayFactor: 0, timeoutMs: 300 },
      { name: 'ping', payload: '', filterNodes: ['a', 'b'], filterTags: { role: 'w.b' }, requestAck: false, relayFactor: 2, timeoutMs: 0 },
    ]);
    const bad = await runSerf(['query', '-rpc-addr', a, '_serf_ping']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr + bad.stdout, /Error sending query: Queries cannot contain the '_serf_' prefix/);
  });
});

test('RpcClient.query streams results and resolves at the end; closing mid-query cancels it', async () => {
  await withServer(async (a, q) => {
    const c = await RpcClient.connect(a);
    try {
      const results: string[] = [];
      await c.query({ name: 'hello', payload: Buffer.from('x'), requestAck: true, timeoutMs: 200 }, (r) =>
        results.push(`${r.type}:${r.from}:${r.payload === null ? 'nil' : Buffer.from(r.payload).toString()}`),
      );
      assert.deepEqual(results, ['ack:n1:nil', 'ack:n2:nil', 'response:n1:re:x']);
      await assert.rejects(c.query({ name: '_serf_x' }, () => {}), (e: unknown) => e instanceof RpcError && e.code === 'ERR_RPC_REMOTE' && /_serf_/.test(e.message));
      // the connection stays usable after a query ended
      assert.deepEqual(await c.getCoordinate('nobody'), null);
    } finally {
      c.close();
    }
    const d = await RpcClient.connect(a);
    const pending = d.query({ name: 'long', timeoutMs: 60_000 }, () => {});
    await sleep(100);
    d.close();
    await assert.rejects(pending, (e: unknown) => e instanceof RpcError && e.code === 'ERR_RPC_CLOSED');
    for (let i = 0; i < 100 && q.cancelled() === 0; i++) await sleep(20);
    assert.equal(q.cancelled(), 1, 'the agent stopped delivering to the departed client');
  });
});

test('queries offered through stream get per-connection IDs; respond works until the deadline', async () => {
  await withServer(async (a, q) => {
    const c = await RpcClient.connect(a);
    try {
      const seen: RpcStreamEvent[] = [];
      await c.stream('query:ping', (e) => seen.push(e));
      const answered: string[] = [];
      const offer = (name: string, timeoutMs: number): void =>
        q.eventSinks.forEach((s) =>
          s({
            type: 'query',
            name,
            payload: Buffer.from('are you there'),
            ltime: 42,
            timeoutMs,
            respond: async (p) => {
              if (Buffer.from(p).toString() === 'too big') throw new Error('response exceeds limit of 1024 bytes');
              answered.push(`${name}:${Buffer.from(p).toString()}`);
            },
          }),
        );
      offer('other', 5000); // filtered out: no ID spent on it
      offer('ping', 5000);
      offer('ping', 150);
      for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(10);
      assert.deepEqual(
        seen.map((e) => (e.type === 'query' ? [e.id, e.name, Buffer.from(e.payload).toString(), e.ltime] : e.type)),
        [
          [1, 'ping', 'are you there', 42],
          [2, 'ping', 'are you there', 42],
        ],
      );
      await c.respond(1, Buffer.from('yes'));
      await assert.rejects(c.respond(1, Buffer.from('too big')), (e: unknown) => e instanceof RpcError && /exceeds limit/.test(e.message));
      await assert.rejects(c.respond(99, Buffer.from('x')), (e: unknown) => e instanceof RpcError && e.message === 'No pending queries matching ID');
      await sleep(300); // query 2's deadline passes
      await assert.rejects(c.respond(2, Buffer.from('late')), (e: unknown) => e instanceof RpcError && e.message === 'No pending queries matching ID');
      assert.deepEqual(answered, ['ping:yes']);
    } finally {
      c.close();
    }
  });
});

test('serf keys and RpcClient key operations: counts, per-node messages, errors', async () => {
  await withServer(async (a) => {
    const list = await runSerf(['keys', '-rpc-addr', a, '-list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${KEY_A.replace(/[+=]/g, '\\$&')}\\s+\\[2/2\\]`));
    assert.match(list.stdout, new RegExp(`${KEY_B.replace(/[+=]/g, '\\$&')}\\s+\\[1/2\\]`));
    const inst = await runSerf(['keys', '-rpc-addr', a, '-install', KEY_B]);
    assert.equal(inst.code, 1);
    assert.match(inst.stdout + inst.stderr, /failed:\s+n2\s+bad key size/);
    assert.match(inst.stdout + inst.stderr, /Error installing key: 1\/2 nodes reported failure/);
    const use = await runSerf(['keys', '-rpc-addr', a, '-use', KEY_A]);
    assert.equal(use.code, 0, use.stderr);
    assert.match(use.stdout, /Successfully changed primary key/);
    const rm = await runSerf(['keys', '-rpc-addr', a, '-remove', KEY_A]);
    assert.equal(rm.code, 1);
    assert.match(rm.stdout + rm.stderr, /Error removing key: Removing the primary key is not allowed/);

    const c = await RpcClient.connect(a);
    try {
      assert.deepEqual(await c.listKeys(), { error: '', numNodes: 2, numResp: 2, numErr: 0, messages: {}, keys: { [KEY_A]: 2, [KEY_B]: 1 } });
      assert.deepEqual(await c.installKey(KEY_B), { error: '1/2 nodes reported failure', numNodes: 2, numResp: 2, numErr: 1, messages: { n2: 'bad key size' } });
      const removed = await c.removeKey(KEY_A);
      assert.equal(removed.error, 'Removing the primary key is not allowed');
      assert.equal(removed.numNodes, 0);
    } finally {
      c.close();
    }
  });
});

test('serf rtt and RpcClient.getCoordinate read the backend coordinates', async () => {
  await withServer(async (a) => {
    const r = await runSerf(['rtt', '-rpc-addr', a, 'n1', 'n2']);
    assert.equal(r.code, 0, r.stderr);
    // |0.01 - -0.01| + 2 × 0.0001 height = 0.0202 s
    assert.match(r.stdout, /Estimated n1 <-> n2 rtt: 20\.200 ms/);
    const missing = await runSerf(['rtt', '-rpc-addr', a, 'n1', 'zz']);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout + missing.stderr, /Could not find a coordinate for node "zz"/);
    const c = await RpcClient.connect(a);
    try {
      assert.deepEqual(await c.getCoordinate('n1'), { vec: [0.01, 0, 0, 0, 0, 0, 0, 0], error: 0.5, adjustment: 0, height: 0.0001 });
      assert.equal(await c.getCoordinate('zz'), null);
    } finally {
      c.close();
    }
  });
});
