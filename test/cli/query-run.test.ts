// A real serf agent can end a query stream with a burst of acks from '' (its RPC stream keeps
// reading the query's closed ack channel until its own end-of-query timer fires; seen as 168 of
// them in one `reachability` on a loaded CI machine). kodama's CLI must not count them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRpcServer, type RpcBackend } from '../../src/rpc/index.ts';
import { runCli } from '../../src/cli/main.ts';
import { member } from '../rpc/helpers.ts';
import { recordIo } from './helpers.ts';

test("reachability and query ignore serf's end-of-query acks from ''", async (t) => {
  const backend: RpcBackend = {
    members: () => [member('a', [127, 0, 0, 1], 7946, {}, 'alive'), member('b', [127, 0, 0, 2], 7946, {}, 'alive')],
    query: async (p, sink) => {
      sink.ack('a');
      const timers = [
        setTimeout(() => sink.ack('b'), 10),
        setTimeout(() => {
          if (p.name !== '_serf_ping') sink.response('a', Buffer.from('ok'));
          for (let i = 0; i < 50; i++) sink.ack('');
        }, 30),
        setTimeout(() => sink.done(), 80),
      ];
      return () => timers.forEach(clearTimeout);
    },
  };
  const server = await startRpcServer({ host: '127.0.0.1', port: 0 }, backend);
  t.after(() => server.close());
  const addr = `${server.address.host}:${server.address.port}`;

  const r = recordIo();
  assert.equal(await runCli(['reachability', `-rpc-addr=${addr}`], r), 0, r.out.join('') + r.err.join(''));
  assert.equal(r.out.join(''), 'Total members: 2, live members: 2\nStarting reachability test...\nSuccessfully contacted all live nodes\n');

  const q = recordIo();
  assert.equal(await runCli(['query', `-rpc-addr=${addr}`, '-format=json', 'load'], q), 0, q.err.join(''));
  const out = JSON.parse(q.out.join('')) as { Acks: string[]; Responses: Record<string, string> };
  assert.deepEqual(out.Acks.sort(), ['a', 'b']);
  assert.deepEqual(Object.keys(out.Responses), ['a']);
});
