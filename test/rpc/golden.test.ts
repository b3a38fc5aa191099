// Byte-exact RPC vectors captured from real serf (docs/serf-wire-protocol.md §9.6): what kodama
// sends must equal them, and what serf sends must be accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { decodeMsgpack, encodeRpc } from '../../src/wire/index.ts';
import { RpcClient, startRpcServer } from '../../src/rpc/index.ts';
import { encodeRequest } from '../../src/rpc/protocol.ts';
import { hex, rawExchange, recordingBackend } from './helpers.ts';

const HANDSHAKE_REQ = hex('82a7436f6d6d616e64a968616e647368616b65a353657101 81a756657273696f6e01');
const HANDSHAKE_RESP = hex('82a54572726f72a0a353657101');
const AUTH_REQUIRED_RESP_SEQ2 = hex('82a54572726f72b741757468656e7469636174696f6e207265717569726564a353657102');
const EVENT_BODY = hex('83a8436f616c65736365c3a44e616d65a66465706c6f79a75061796c6f6164c40d68656c6c6f2d7061796c6f6164');
const MEMBERS_FILTERED_EMPTY_BODY = hex('83a44e616d65a0a6537461747573a0a45461677380');
const QUERY_ACK_RECORD = hex('83a446726f6da162a75061796c6f6164c0a454797065a361636b');
const QUERY_DONE_RECORD = hex('83a446726f6da0a75061796c6f6164c0a454797065a4646f6e65');

test('server answers the captured handshake request with the captured response, byte for byte', async () => {
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend());
  try {
    const r = await rawExchange(srv.address.port, [HANDSHAKE_REQ], 10_000, HANDSHAKE_RESP.length);
    assert.deepEqual(r.bytes, HANDSHAKE_RESP);
  } finally {
    await srv.close();
  }
});

test('server with rpc auth answers a command before auth with the captured refusal', async () => {
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), { authKey: 't' });
  try {
    const members = encodeRequest('members', 2);
    const r = await rawExchange(srv.address.port, [HANDSHAKE_REQ, members], 10_000, HANDSHAKE_RESP.length + AUTH_REQUIRED_RESP_SEQ2.length);
    assert.deepEqual(r.bytes, Buffer.concat([HANDSHAKE_RESP, AUTH_REQUIRED_RESP_SEQ2]));
  } finally {
    await srv.close();
  }
});

test('server consumes the captured event body (bin payload) and stays in step', async () => {
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend());
  try {
    const event = Buffer.concat([encodeRequest('event', 2), EVENT_BODY]);
    const stats = encodeRequest('stats', 3);
    const expect = Buffer.concat([
      HANDSHAKE_RESP,
      encodeRpc({ Error: 'Feature not supported', Seq: 2 }),
      encodeRpc({ Error: '', Seq: 3 }),
      encodeRpc({ agent: { name: 'fake' }, serf: { members: '4', encrypted: 'false' } }),
    ]);
    const r = await rawExchange(srv.address.port, [HANDSHAKE_REQ, event, stats], 10_000, expect.length);
    assert.deepEqual(r.bytes.subarray(0, expect.length), expect);
  } finally {
    await srv.close();
  }
});

test('encoders produce the captured event body and query records', () => {
  const payload = new TextEncoder().encode('hello-payload');
  assert.deepEqual(Buffer.from(encodeRequest('event', 7, { Coalesce: true, Name: 'deploy', Payload: payload })), Buffer.concat([Buffer.from(encodeRpc({ Command: 'event', Seq: 7 })), EVENT_BODY]));
  assert.deepEqual(Buffer.from(encodeRpc({ From: 'b', Payload: null, Type: 'ack' })), QUERY_ACK_RECORD);
  assert.deepEqual(Buffer.from(encodeRpc({ From: '', Payload: null, Type: 'done' })), QUERY_DONE_RECORD);
  // and the decoder reads the captured ones back (RPC handle: str → string, bin → bytes)
  const ev = decodeMsgpack(EVENT_BODY, { strings: 'utf8' }) as Record<string, unknown>;
  assert.equal(ev['Name'], 'deploy');
  assert.deepEqual(Buffer.from(ev['Payload'] as Uint8Array), Buffer.from(payload));
});

test('a monitor record for a 53-byte log line uses str8, as captured (81a34c6f67d935…)', async () => {
  const line = '2026/11/24 21:00:00 [INFO] agent: a line of 53 bytes.';
  assert.equal(line.length, 53);
  const srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, {
    members: () => [],
    subscribeLogs: (sink) => {
      sink(line);
      return () => {};
    },
  });
  try {
    const monitor = encodeRequest('monitor', 2, { LogLevel: 'info' });
    const ack = encodeRpc({ Error: '', Seq: 2 });
    const record = Buffer.concat([Buffer.from(ack), hex('81a34c6f67d935'), Buffer.from(line)]);
    const r = await rawExchange(srv.address.port, [HANDSHAKE_REQ, monitor], 10_000, HANDSHAKE_RESP.length + ack.length + record.length);
    assert.deepEqual(r.bytes, Buffer.concat([HANDSHAKE_RESP, ack, record]));
  } finally {
    await srv.close();
  }
});

test('client sends the captured handshake and empty members-filtered body, byte for byte', async () => {
  const received: Buffer[] = [];
  const server = createServer((s: Socket) => {
    s.on('data', (d: Buffer) => {
      received.push(d);
      const all = Buffer.concat(received);
      if (all.length === HANDSHAKE_REQ.length) s.write(HANDSHAKE_RESP);
      if (all.length > HANDSHAKE_REQ.length && all.subarray(-MEMBERS_FILTERED_EMPTY_BODY.length).equals(MEMBERS_FILTERED_EMPTY_BODY)) {
        s.write(Buffer.concat([encodeRpc({ Error: '', Seq: 2 }), encodeRpc({ Members: [] })]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  try {
    const c = await RpcClient.connect(`127.0.0.1:${port}`, { timeoutMs: 3000 });
    try {
      assert.deepEqual(await c.membersFiltered({}), []);
    } finally {
      c.close();
    }
    const all = Buffer.concat(received);
    assert.deepEqual(
      all,
      Buffer.concat([HANDSHAKE_REQ, encodeRpc({ Command: 'members-filtered', Seq: 2 }), MEMBERS_FILTERED_EMPTY_BODY]),
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
