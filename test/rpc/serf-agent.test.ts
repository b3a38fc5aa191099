// kodama's RpcClient against a real `serf agent` (the reference implementation of the server).
import { test, after } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { RpcClient, RpcError, type RpcStreamEvent } from '../../src/rpc/index.ts';
import { freePort, startSerf, stopAll, type AgentProcess } from '../lib/agents.ts';

const dir = mkdtempSync(join(tmpdir(), 'kodama-rpc-'));
after(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

function agent(extra: string[], node = 's1'): Promise<AgentProcess> {
  return startSerf(node, { profile: null, logLevel: 'debug', args: extra });
}

test('client against serf agent: members, filters, stats, join', async () => {
  const s1 = await agent(['-tag', 'role=db', '-tag', 'dc=x1']);
  const c = await RpcClient.connect(s1.rpcAddr);
  try {
    const ms = await c.members();
    assert.equal(ms.length, 1);
    const me = ms[0];
    assert.ok(me);
    assert.equal(me.name, 's1');
    assert.equal(me.status, 'alive');
    assert.deepEqual(me.tags, { role: 'db', dc: 'x1' });
    assert.deepEqual([...me.addr], [127, 0, 0, 1]);
    assert.equal(me.port, s1.port);
    assert.deepEqual(
      [me.protocolMin, me.protocolMax, me.protocolCur, me.delegateMin, me.delegateMax, me.delegateCur],
      [1, 5, 2, 2, 5, 5],
    );

    assert.equal((await c.membersFiltered({ tags: { role: 'd.' } })).length, 1);
    assert.equal((await c.membersFiltered({ tags: { role: 'web' } })).length, 0);
    assert.equal((await c.membersFiltered({ status: 'alive', name: 's.' })).length, 1);
    assert.equal((await c.membersFiltered({ name: 's' })).length, 0);
    assert.equal((await c.membersFiltered({})).length, 1);

    const st = await c.stats();
    assert.equal(st['agent']?.['name'], 's1');
    assert.equal(st['serf']?.['members'], '1');
    assert.equal(st['tags']?.['role'], 'db');

    // A second agent joined through our client shows up in both member lists.
    const s2 = await agent([], 's2');
    assert.equal(await c.join([`127.0.0.1:${s2.port}`], false), 1);
    const deadline = Date.now() + 10_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      names = (await c.members()).filter((m) => m.status === 'alive').map((m) => m.name).sort();
      if (names.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(names, ['s1', 's2']);

    // A join that cannot work: serf reports the error (and Num 0) → ERR_RPC_REMOTE.
    const dead = await freePort();
    await assert.rejects(c.join([`127.0.0.1:${dead}`], false), (e: unknown) => {
      assert.ok(e instanceof RpcError);
      assert.equal(e.code, 'ERR_RPC_REMOTE');
      assert.match(e.message, /Failed to join/);
      return true;
    });
  } finally {
    c.close();
  }
});

test('client against serf agent with -rpc-auth: refused without or with a wrong key, works with it', async () => {
  // serf takes rpc_auth only from a config file
  const conf = join(dir, 'auth.json');
  writeFileSync(conf, JSON.stringify({ rpc_auth: 'k3y' }));
  const s = await agent(['-config-file', conf, '-tag', 'role=db'], 'auth1');
  // Without a key the handshake succeeds but the first command is refused.
  const anon = await RpcClient.connect(s.rpcAddr, { timeoutMs: 3000 });
  try {
    await assert.rejects(anon.members(), (e: unknown) => e instanceof RpcError && e.code === 'ERR_RPC_AUTH' && /Authentication required/.test(e.message));
    // The agent answers a refused request with a body twice (it reads the body as a new
    // header); the client ignores the echo and stays in step.
    await assert.rejects(anon.membersFiltered({ name: 'x' }), (e: unknown) => e instanceof RpcError && e.code === 'ERR_RPC_AUTH');
    await assert.rejects(anon.stats(), (e: unknown) => e instanceof RpcError && e.code === 'ERR_RPC_AUTH');
  } finally {
    anon.close();
  }
  await assert.rejects(RpcClient.connect(s.rpcAddr, { authKey: 'wrong', timeoutMs: 3000 }), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 'ERR_RPC_AUTH');
    assert.match(e.message, /Invalid authentication token/);
    return true;
  });
  const c = await RpcClient.connect(s.rpcAddr, { authKey: 'k3y' });
  try {
    const ms = await c.members();
    assert.deepEqual(ms.map((m) => [m.name, m.status, m.tags['role']]), [['auth1', 'alive', 'db']]);
    assert.equal((await c.membersFiltered({ tags: { role: 'db' } })).length, 1);
  } finally {
    c.close();
  }
});

test('client against serf agent: stream, monitor, event, tags, stop', async () => {
  const s = await agent(['-tag', 'role=db'], 'streamer');
  const c = await RpcClient.connect(s.rpcAddr);
  try {
    const events: RpcStreamEvent[] = [];
    const lines: string[] = [];
    const sub = await c.stream('user:deploy,member-update', (e) => events.push(e));
    const mon = await c.monitor('debug', (l) => lines.push(l));
    await c.userEvent('other', new TextEncoder().encode('no'), false);
    await c.userEvent('deploy', new TextEncoder().encode('v2'), false);
    await c.updateTags({ dc: 'x9' }, ['role']);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && events.length < 2) await new Promise((r) => setTimeout(r, 50));
    const user = events.find((e) => e.type === 'user');
    assert.ok(user?.type === 'user');
    assert.equal(user.name, 'deploy');
    assert.equal(new TextDecoder().decode(user.payload), 'v2');
    assert.ok(user.ltime >= 1);
    const upd = events.find((e) => e.type === 'member-update');
    assert.ok(upd?.type === 'member-update');
    assert.deepEqual(upd.members.map((m) => [m.name, m.tags]), [['streamer', { dc: 'x9' }]]);
    assert.ok(events.every((e) => e.type !== 'user' || e.name === 'deploy'), 'filter applied by the agent');
    // monitor replays the agent's recent lines, e.g. its startup
    assert.ok(lines.some((l) => /\[INFO\] agent: Serf agent starting|\[INFO\] serf: EventMemberJoin: streamer/.test(l)), lines.join('\n'));
    await sub.stop();
    await mon.stop();
    const n = events.length;
    await c.userEvent('deploy', new Uint8Array(0), false);
    assert.deepEqual((await c.members()).map((m) => m.tags), [{ dc: 'x9' }]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(events.length, n, 'no records after stop');
  } finally {
    c.close();
  }
});

test('client against serf agent: query with acks, respond through a stream, done at the deadline', async () => {
  const s = await agent([], 'q1');
  const responder = await RpcClient.connect(s.rpcAddr);
  const asker = await RpcClient.connect(s.rpcAddr);
  try {
    // the responder answers every "whoami" query it is offered
    let offered = 0;
    await responder.stream('query:whoami', (e) => {
      if (e.type !== 'query') return;
      offered++;
      void responder.respond(e.id, new TextEncoder().encode(`me:${new TextDecoder().decode(e.payload)}`));
    });
    // serf answers the stream request *before* it registers the stream (ipc.go: "defer so that we
    // can respond before registration"): on a loaded machine a query sent at once can reach the
    // agent before the stream does, and nobody answers it. Ask until the stream has seen one.
    for (let i = 0; i < 20 && offered === 0; i++) await asker.query({ name: 'whoami', payload: new TextEncoder().encode('warm-up'), timeoutMs: 250 }, () => {});
    assert.ok(offered > 0, 'the responder stream is registered');
    const results: string[] = [];
    const t0 = Date.now();
    // The answer makes a round trip through serf and a second RPC connection (query event out on
    // the responder's stream, respond back in) before the query's deadline.
    await asker.query({ name: 'whoami', payload: new TextEncoder().encode('hi'), requestAck: true, timeoutMs: 2500 }, (r) =>
      results.push(`${r.type}:${r.from}:${r.payload === null ? 'nil' : new TextDecoder().decode(r.payload)}`),
    );
    const took = Date.now() - t0;
    assert.deepEqual(results.sort(), ['ack:q1:nil', 'response:q1:me:hi']);
    assert.ok(took >= 2400 && took < 8000, `done after ${took} ms (deadline 2500 ms)`);
    await assert.rejects(asker.query({ name: '_serf_x' }, () => {}), (e: unknown) => e instanceof RpcError && /_serf_/.test(e.message));
    await assert.rejects(responder.respond(12345, new Uint8Array(1)), (e: unknown) => e instanceof RpcError && e.message === 'No pending queries matching ID');
  } finally {
    responder.close();
    asker.close();
  }
});

test('client against serf agent with -encrypt: list, install, use, remove keys', async () => {
  const k1 = 'ZWFjaG9mdGhlc2VhcmUxNg==';
  const k2 = 'c2Vjb25ka2V5c2l4dGVlbg==';
  const s = await agent(['-encrypt', k1], 'keys1');
  const c = await RpcClient.connect(s.rpcAddr);
  try {
    assert.deepEqual(await c.listKeys(), { error: '', numNodes: 1, numResp: 1, numErr: 0, messages: {}, keys: { [k1]: 1 } });
    const inst = await c.installKey(k2);
    assert.deepEqual([inst.error, inst.numNodes, inst.numResp, inst.numErr], ['', 1, 1, 0]);
    assert.deepEqual((await c.listKeys()).keys, { [k1]: 1, [k2]: 1 });
    assert.equal((await c.useKey(k2)).error, '');
    const rm = await c.removeKey(k2); // the primary now: every node refuses
    assert.equal(rm.error, '1/1 nodes reported failure');
    assert.equal(rm.numErr, 1);
    assert.match(rm.messages['keys1'] ?? '', /primary key/i);
    assert.equal((await c.removeKey(k1)).error, '');
    assert.deepEqual((await c.listKeys()).keys, { [k2]: 1 });
    // serf computes no coordinate for a lone node's peers; an unknown node has none
    assert.equal(await c.getCoordinate('nobody'), null);
  } finally {
    c.close();
  }
});

test('client leave makes the real agent leave and exit', async () => {
  const s = await agent([], 'leaver');
  const c = await RpcClient.connect(s.rpcAddr);
  const exited = s.exited;
  try {
    await c.leave();
  } finally {
    c.close();
  }
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
  assert.equal(code, 0);
  assert.match(s.output(), /Graceful leave triggered/);
});

test('connecting where no agent listens says how to start one', async () => {
  const port = await freePort();
  await assert.rejects(RpcClient.connect(`127.0.0.1:${port}`), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 'ERR_RPC_CONNECT');
    assert.equal(
      e.message,
      `no kodama or serf agent is listening on 127.0.0.1:${port} — start one with \`kodama agent\` or pass -rpc-addr`,
    );
    return true;
  });
});
