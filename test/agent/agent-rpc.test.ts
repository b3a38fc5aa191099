// The agent's RPC hooks end to end through RpcClient (serf's RPC protocol): stream delivers user
// events and queries, respond answers a query another node's RPC client sent, and refused or
// hostile requests (oversized event, `_serf_` query, bogus respond id, oversized tags, keys on an
// unencrypted agent) get serf's error text while the agent keeps working.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, RpcClient } from '../../src/index.ts';
import type { AgentOptions } from '../../src/index.ts';

const running: Agent[] = [];
const clients: RpcClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const a of running) await a.stop();
});

function make(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: '127.0.0.1:0',
    profile: 'local',
    logLevel: 'ERR',
    logSink: () => {},
    leavePropagateDelayMs: 200,
    coalescePeriodMs: 200,
    quiescentPeriodMs: 100,
    ...extra,
  });
  running.push(a);
  return a;
}

async function client(a: Agent): Promise<RpcClient> {
  const c = await RpcClient.connect(`127.0.0.1:${a.rpcAddress!.port}`, { timeoutMs: 10_000 });
  clients.push(c);
  return c;
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && !cond(); i++) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('stream + respond across two agents; refused and hostile requests leave the agent working', { timeout: 60_000 }, async () => {
  const a = make('rpc-a');
  const b = make('rpc-b', { tags: { role: 'db' } });
  await a.start();
  await b.start();
  await b.join([`127.0.0.1:${a.bindAddress.port}`]);
  await until('both alive', 10_000, () => a.members().filter((m) => m.status === 'alive').length === 2);
  const ca = await client(a);
  const cb = await client(b);

  // b's RPC client streams events and answers queries by id
  const seen: string[] = [];
  await cb.stream('user:deploy,query:load', (e) => {
    seen.push(e.type === 'user' || e.type === 'query' ? `${e.type}:${e.name}` : e.type);
    if (e.type === 'query') void cb.respond(e.id, new TextEncoder().encode('via-stream')).catch(() => {});
  });
  await ca.userEvent('deploy', new TextEncoder().encode('v1'), false);
  await ca.userEvent('ignored', new Uint8Array(0), false);
  await until('b streamed the deploy event', 10_000, () => seen.includes('user:deploy'));
  const answers: { from: string; payload: string }[] = [];
  await ca.query({ name: 'load', filterNodes: ['rpc-b'], timeoutMs: 2000 }, (r) => {
    if (r.type === 'response' && r.payload !== null) answers.push({ from: r.from, payload: Buffer.from(r.payload).toString() });
  });
  assert.deepEqual(answers, [{ from: 'rpc-b', payload: 'via-stream' }]);
  assert.deepEqual(seen, ['user:deploy', 'query:load'], 'the stream filter applies');

  // refused / hostile requests: serf's errors, nothing breaks
  await assert.rejects(ca.userEvent('big', new Uint8Array(2000), false), /user event exceeds/);
  await assert.rejects(ca.query({ name: '_serf_leave', timeoutMs: 500 }, () => {}), /_serf_/);
  await assert.rejects(ca.respond(987654, new Uint8Array(1)), /No pending queries matching ID/);
  await assert.rejects(ca.updateTags({ huge: 'x'.repeat(600) }, []), /encoded tags are 610 bytes, over the limit of 512/);
  const k = await ca.listKeys().catch((e: Error) => ({ error: e.message }));
  assert.match(JSON.stringify(k), /not enabled|[Ee]ncryption|[Kk]eyring/);
  await ca.forceLeave('no-such-node', false);

  // still fine: members through RPC, gossip to b (a tag change arrives)
  assert.deepEqual((await ca.members()).map((m) => `${m.name}:${m.status}`).sort(), ['rpc-a:alive', 'rpc-b:alive']);
  await ca.updateTags({ after: 'abuse' }, []);
  await until('b sees the tag', 10_000, () => b.members().find((m) => m.name === 'rpc-a')?.tags['after'] === 'abuse');
});
