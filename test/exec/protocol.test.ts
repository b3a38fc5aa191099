// Every kodama-exec request and answer must fit Serf's 1024-byte query / response limits as Serf
// itself encodes them (src/serf/messages.ts, the same bytes the agent measures), for long node
// names and many nodes per poll; and decoding is strict (garbage is undefined, never a throw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeNodeFilter, encodeSerfMessage } from '../../src/serf/messages.ts';
import { batchesFor, checkCommandFits, newRunId } from '../../src/exec/client.ts';
import { ExecError } from '../../src/exec/errors.ts';
import { decodeAnswer, decodeRequest, encodeAnswer, encodeRequest, RESPONSE_LIMIT_BYTES } from '../../src/exec/protocol.ts';
import { startExecutor } from '../../src/exec/executor.ts';
import type { AgentQuery } from '../../src/agent/agent.ts';
import { EXEC_QUERY } from '../../src/exec/types.ts';

const LONG_SOURCE = 's'.repeat(64);

function querySize(payload: Uint8Array, nodes: string[]): number {
  return encodeSerfMessage({
    type: 'query', ltime: 2 ** 40, id: 0x7fffffff, addr: { ip: '255.255.255.255', port: 65535 }, sourceNode: LONG_SOURCE,
    filters: [encodeNodeFilter(nodes)], flags: 0, relayFactor: 0, timeoutMs: 1500, name: EXEC_QUERY, payload,
  }).length;
}

test('poll queries for 60 nodes with long names are split into batches that Serf accepts', (t) => {
  const nodes = Array.from({ length: 60 }, (_, i) => `web-${String(i).padStart(3, '0')}-${'x'.repeat(40)}`);
  const id = newRunId();
  const payloadFor = (g: string[]): Uint8Array => encodeRequest({ op: 'poll', token: 't'.repeat(64), id, off: Object.fromEntries(g.map((n) => [n, 1_048_576])) });
  const batches = batchesFor(nodes, payloadFor);
  assert.deepEqual(batches.flat(), nodes, 'every node once, in order');
  for (const b of batches) assert.ok(querySize(payloadFor(b), b) <= 1024, `batch of ${b.length}: ${querySize(payloadFor(b), b)} bytes`);
  t.diagnostic(`60 nodes → ${batches.length} poll queries (${batches.map((b) => b.length).join(', ')})`);
});

test('the longest accepted command fits a query; a longer one is refused before anything is sent', (t) => {
  const token = 't'.repeat(64);
  let longest = 0;
  for (let n = 1; n <= 1024; n++) {
    try {
      checkCommandFits(token, 'e'.repeat(n));
      longest = n;
    } catch {
      break;
    }
  }
  t.diagnostic(`longest command with a 64-byte token: ${longest} bytes`);
  assert.ok(longest >= 500, 'room for a real command line');
  const cmd = 'e'.repeat(longest);
  const payload = encodeRequest({ op: 'run', token, id: newRunId(), cmd, timeoutMs: 1 << 30 });
  assert.ok(querySize(payload, ['n'.repeat(64)]) <= 1024);
  assert.throws(() => checkCommandFits(token, 'e'.repeat(900)), (e: unknown) => e instanceof ExecError && e.code === 'ERR_EXEC_TOO_LONG' && /script/.test(e.message));
});

test('answers with output fit Serf\'s response limit for a 128-byte node name', async () => {
  const node = 'n'.repeat(128);
  let fn: ((q: AgentQuery) => void) | undefined;
  const ex = startExecutor({ nodeName: node, logger: { log: () => {} }, on: (_t, f) => ((fn = f), () => {}), isEncrypted: () => true },
    { enabled: true, token: 'tok', allow: [], timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
  const ask = (payload: Uint8Array): Uint8Array => {
    let got: Uint8Array | undefined;
    fn?.({ type: 'query', id: 1, name: EXEC_QUERY, payload, ltime: 1, deadlineMs: 0, sourceNode: 'x', respond: (p) => (got = p) });
    assert.ok(got !== undefined);
    const size = encodeSerfMessage({ type: 'queryResponse', ltime: 2 ** 40, id: 0x7fffffff, from: node, flags: 0, payload: got }).length;
    assert.ok(size <= RESPONSE_LIMIT_BYTES, `response message of ${size} bytes`);
    return got;
  };
  ask(encodeRequest({ op: 'run', token: 'tok', id: 'r1', cmd: 'head -c 5000 /dev/zero | tr "\\0" y' }));
  for (let i = 0; i < 200; i++) {
    const a = decodeAnswer(ask(encodeRequest({ op: 'poll', token: 'tok', id: 'r1', off: { [node]: 0 } })));
    assert.ok(a?.kind === 'run');
    if (a.status.done) {
      assert.ok(a.status.chunk.length > 700, `a full answer carries ${a.status.chunk.length} output bytes`);
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await ex.stop();
});

test('decoding is strict and never throws', () => {
  for (const junk of ['', 'null', '[]', '{"v":1}', '{"v":2,"op":"run","t":"x","id":"a","cmd":"ls"}', '{"v":1,"op":"run","t":"x","id":"a b","cmd":"ls"}', '{"v":1,"op":"poll","t":"x","id":"a","off":{"n":-1}}', '{"v":1,"op":"rm","t":"x"}', '{"v":1,"op":"poll","t":"x","id":"a","off":{},"max":0}']) {
    assert.equal(typeof decodeRequest(new TextEncoder().encode(junk)), 'string', junk);
  }
  for (const junk of ['', 'x\n', '{"err":"ERR_NOPE"}\n', '{"id":"a","o":5,"n":2,"x":0,"ms":1}\n', '{"id":"a","o":0,"n":1,"x":0,"ms":1}\nlonger than one']) {
    assert.equal(decodeAnswer(new TextEncoder().encode(junk)), undefined, junk);
  }
  const bin = new Uint8Array([0, 255, 10, 13, 0x80]);
  const a = decodeAnswer(encodeAnswer({ kind: 'run', status: { id: 'a', done: true, off: 3, total: 8, cut: 0, exitCode: 0, durationMs: 5, chunk: bin } }));
  assert.ok(a?.kind === 'run');
  assert.deepEqual([...a.status.chunk], [...bin], 'binary output survives');
});
