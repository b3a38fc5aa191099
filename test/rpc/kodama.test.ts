// The RPC command `kodama` at the protocol level: {Op, Args: bin JSON} → {Result: bin JSON};
// a backend without it answers "Feature not supported" and the connection keeps serving; bad
// Args are refused with a message; the real serf agent does not know the command at all.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRpcServer } from '../../src/rpc/server.ts';
import type { RpcServer } from '../../src/rpc/server.ts';
import { RpcClient } from '../../src/rpc/client.ts';
import { RpcError } from '../../src/rpc/errors.ts';
import { MEMBERS } from './helpers.ts';

const servers: RpcServer[] = [];
const clients: RpcClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

async function connect(s: RpcServer): Promise<RpcClient> {
  const c = await RpcClient.connect(`127.0.0.1:${s.address.port}`, { timeoutMs: 5000 });
  clients.push(c);
  return c;
}

const remote = (re: RegExp) => (e: unknown): boolean => e instanceof RpcError && e.code === 'ERR_RPC_REMOTE' && re.test(e.message);

test('kodama: op and JSON args reach the backend; the JSON result comes back; rejections carry their text', async () => {
  const got: [string, unknown][] = [];
  const s = await startRpcServer({ host: '127.0.0.1', port: 0 }, {
    members: () => MEMBERS,
    kodama: async (op, args) => {
      got.push([op, args]);
      if (op === 'boom') throw new Error('deploy d-1 is running: abort it first');
      if (op === 'void') return undefined;
      return { op, args, list: [1, 'two', null], big: 2 ** 40 };
    },
  });
  servers.push(s);
  const c = await connect(s);
  assert.deepEqual(await c.call('x.y', { a: [1, 2], s: 'é' }), { op: 'x.y', args: { a: [1, 2], s: 'é' }, list: [1, 'two', null], big: 2 ** 40 });
  assert.equal(await c.call('void'), undefined);
  await assert.rejects(c.call('boom', {}), remote(/^deploy d-1 is running: abort it first$/));
  // Args that are not JSON (only a hand-made request can send them)
  await assert.rejects(c.request('kodama', { Args: new Uint8Array([0x7b, 0x7b]), Op: 'x.y' }), remote(/^operation x\.y: Args is not JSON$/));
  // no Args at all → null
  const raw = (await c.request('kodama', { Op: 'void' })) as { Result?: Uint8Array };
  assert.equal(raw.Result?.length, 0, 'an op that returns nothing: an empty Result');
  assert.deepEqual(got, [['x.y', { a: [1, 2], s: 'é' }], ['void', null], ['boom', {}], ['void', null]]);
  assert.equal((await c.members()).length, MEMBERS.length, 'the connection still serves');
});

test('kodama on a backend without it: "Feature not supported", connection kept', async () => {
  const s = await startRpcServer({ host: '127.0.0.1', port: 0 }, { members: () => MEMBERS });
  servers.push(s);
  const c = await connect(s);
  await assert.rejects(c.call('deploy.status', {}), remote(/^Feature not supported$/));
  assert.equal((await c.members()).length, MEMBERS.length);
});
