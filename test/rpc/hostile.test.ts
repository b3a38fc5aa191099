// Hostile and broken clients: every one gets an error reply or a disconnect, each refusal is
// counted, and the server still answers a normal client afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { decodeMsgpackPrefix, encodeRpc, type MsgValue } from '../../src/wire/index.ts';
import { startRpcServer, type RpcServer } from '../../src/rpc/index.ts';
import { encodeRequest } from '../../src/rpc/protocol.ts';
import { MEMBERS, rawExchange, recordingBackend, sleep, stillServes } from './helpers.ts';

let srv: RpcServer;
let port = 0;
const logs: string[] = [];

before(async () => {
  srv = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), {
    log: (level, msg) => logs.push(`${level} ${msg}`),
  });
  port = srv.address.port;
});
after(async () => {
  await srv.close();
});

const HANDSHAKE = encodeRequest('handshake', 1, { Version: 1 });

/** Null-prototype maps from the decoder → plain objects, so deepEqual compares contents. */
function plain(v: MsgValue): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && Object.getPrototypeOf(v) === null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x as MsgValue)]));
  }
  return v;
}

/** Decode a run of response objects. */
function objects(buf: Uint8Array): unknown[] {
  const out: unknown[] = [];
  let off = 0;
  while (off < buf.length) {
    const r = decodeMsgpackPrefix(buf, off, { strings: 'utf8' });
    if (r === undefined) break;
    out.push(plain(r.value));
    off = r.end;
  }
  return out;
}

/** rawExchange stop condition: at least n complete objects arrived. */
const nObjects = (n: number) => (got: Buffer): boolean => objects(got).length >= n;

function counter(name: string): number {
  return srv.counters()[name] ?? 0;
}

test('garbage bytes close the connection (malformed), server keeps serving', async () => {
  const before = counter('malformed');
  const r = await rawExchange(port, [Buffer.from([0xc1, 0x00, 0xff, 0x13, 0x37])]);
  assert.equal(r.closed, true);
  assert.equal(r.bytes.length, 0);
  // valid msgpack that is not a header map
  const r2 = await rawExchange(port, [Buffer.concat([HANDSHAKE, Buffer.from([0x93, 0x01, 0x02, 0x03])])]);
  assert.equal(r2.closed, true);
  assert.deepEqual(objects(r2.bytes), [{ Error: '', Seq: 1 }]);
  assert.equal(counter('malformed'), before + 2);
  assert.equal(await stillServes(port), MEMBERS.length);
});

test('a huge declared str or map length is refused at once, without waiting for the bytes', async () => {
  // The shared server's requestTimeoutMs is 10 s, so closing within these 5 s waits (and the
  // requestTooLarge counter) shows the declared size alone triggered it.
  const before = counter('requestTooLarge');
  // header map whose Command value claims 4 GiB (str32)
  const hugeStr = Buffer.from([0x82, 0xa7, ...Buffer.from('Command'), 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]);
  const r1 = await rawExchange(port, [HANDSHAKE, hugeStr], 5000);
  // a body map claiming 2^32-1 entries
  const hugeMap = Buffer.concat([encodeRequest('members-filtered', 2), Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x41])]);
  const r2 = await rawExchange(port, [HANDSHAKE, hugeMap], 5000);
  // a bin32 payload claiming 4 GiB inside an event body
  const hugeBin = Buffer.concat([encodeRequest('event', 2), Buffer.from([0x81, 0xa7, ...Buffer.from('Payload'), 0xc6, 0xff, 0xff, 0xff, 0xf0])]);
  const r3 = await rawExchange(port, [HANDSHAKE, hugeBin], 5000);
  for (const r of [r1, r2, r3]) {
    assert.equal(r.closed, true);
    assert.deepEqual(objects(r.bytes), [{ Error: '', Seq: 1 }]);
  }
  assert.equal(counter('requestTooLarge'), before + 3);
  assert.ok(logs.some((l) => l.startsWith('WARN') && l.includes('request exceeds 1048576 bytes')));
  assert.equal(await stillServes(port), MEMBERS.length);
});

test('a request larger than maxRequestBytes (sent in pieces) closes the connection', async () => {
  const small = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), { maxRequestBytes: 4096 });
  try {
    const body = encodeRpc({ Name: 'x'.repeat(5000), Status: '', Tags: {} });
    const req = Buffer.concat([encodeRequest('members-filtered', 2), body]);
    const pieces = [HANDSHAKE, ...Array.from({ length: Math.ceil(req.length / 1000) }, (_, i) => req.subarray(i * 1000, (i + 1) * 1000))];
    const r = await rawExchange(small.address.port, pieces, 5000);
    assert.equal(r.closed, true);
    assert.deepEqual(objects(r.bytes), [{ Error: '', Seq: 1 }]);
    assert.equal(small.counters()['requestTooLarge'], 1);
    // just under the cap is fine
    const ok = encodeRpc({ Name: 'x'.repeat(3900), Status: '', Tags: {} });
    const r2 = await rawExchange(small.address.port, [HANDSHAKE, encodeRequest('members-filtered', 2), ok], 10_000, nObjects(3));
    const got = objects(r2.bytes);
    assert.deepEqual(got.slice(0, 3), [{ Error: '', Seq: 1 }, { Error: '', Seq: 2 }, { Members: [] }]);
    assert.equal(await stillServes(small.address.port), MEMBERS.length);
  } finally {
    await small.close();
  }
  // the default cap (1 MiB) on the shared server
  const big = Buffer.concat([HANDSHAKE, encodeRequest('members-filtered', 2), encodeRpc({ Name: 'y'.repeat(1100 * 1024) })]);
  const r3 = await rawExchange(port, [big], 5000);
  assert.equal(r3.closed, true);
  assert.equal(await stillServes(port), MEMBERS.length);
});

test('a command before the handshake gets "Handshake required" and a disconnect', async () => {
  const before = counter('handshakeRequired');
  const r = await rawExchange(port, [encodeRequest('members', 1)]);
  assert.equal(r.closed, true);
  assert.deepEqual(objects(r.bytes), [{ Error: 'Handshake required', Seq: 1 }]);
  // a wrong IPC version is answered but does not count as a handshake
  const r2 = await rawExchange(port, [encodeRequest('handshake', 1, { Version: 2 }), encodeRequest('stats', 2)]);
  assert.deepEqual(objects(r2.bytes), [
    { Error: 'Unsupported IPC version', Seq: 1 },
    { Error: 'Handshake required', Seq: 2 },
  ]);
  assert.equal(r2.closed, true);
  // a second handshake is refused but harmless
  const r3 = await rawExchange(port, [HANDSHAKE, encodeRequest('handshake', 2, { Version: 1 }), encodeRequest('list-keys', 3)], 10_000, nObjects(4));
  assert.deepEqual(objects(r3.bytes), [
    { Error: '', Seq: 1 },
    { Error: 'Handshake already performed', Seq: 2 },
    // list-keys is known but not wired: error plus the zero-valued body serf's client decodes
    { Error: 'Feature not supported', Seq: 3 },
    { Keys: null, Messages: null, NumErr: 0, NumNodes: 0, NumResp: 0 },
  ]);
  assert.equal(r3.closed, false);
  assert.equal(counter('handshakeRequired'), before + 2);
});

test('an unknown command gets "Unsupported command" and a disconnect', async () => {
  const r = await rawExchange(port, [HANDSHAKE, encodeRequest('format-disk', 2, { All: true })]);
  assert.equal(r.closed, true);
  assert.deepEqual(objects(r.bytes), [
    { Error: '', Seq: 1 },
    { Error: 'Unsupported command', Seq: 2 },
  ]);
  assert.ok(counter('unsupportedCommand') >= 1);
});

test('a body of the wrong shape closes the connection (as serf does)', async () => {
  const before = counter('badBody');
  const r = await rawExchange(port, [HANDSHAKE, encodeRequest('join', 2, { Existing: 'not-a-list', Replay: 'yes' })]);
  assert.equal(r.closed, true);
  assert.deepEqual(objects(r.bytes), [{ Error: '', Seq: 1 }]);
  assert.equal(counter('badBody'), before + 1);
});

test('wrong auth key: error reply, connection kept; bodies of refused commands are skipped', async () => {
  const a = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), { authKey: 'right' });
  try {
    const chunks = [
      HANDSHAKE,
      encodeRequest('auth', 2, { AuthKey: 'wrong' }),
      // refused before auth; its body must not be read as the next header
      encodeRequest('members-filtered', 3, { Name: 'web-.*', Status: '', Tags: {} }),
      encodeRequest('auth', 4, { AuthKey: 'right' }),
      encodeRequest('members-filtered', 5, { Name: 'db-.*', Status: '', Tags: {} }),
    ];
    const r = await rawExchange(a.address.port, chunks, 10_000, nObjects(6));
    const got = objects(r.bytes);
    assert.equal(got.length, 6);
    assert.deepEqual(got.slice(0, 5), [
      { Error: '', Seq: 1 },
      { Error: 'Invalid authentication token', Seq: 2 },
      { Error: 'Authentication required', Seq: 3 },
      { Error: '', Seq: 4 },
      { Error: '', Seq: 5 },
    ]);
    const body = got[5] as { Members: { Name: string }[] };
    assert.deepEqual(body.Members.map((m) => m.Name), ['db-1']);
    assert.equal(a.counters()['authFailed'], 1);
    assert.equal(a.counters()['authRequired'], 1);
  } finally {
    await a.close();
  }
});

test('a pipelined burst of 500 requests in one write is answered in order', async () => {
  const reqs: Uint8Array[] = [HANDSHAKE];
  for (let seq = 2; seq <= 501; seq++) reqs.push(seq % 2 === 0 ? encodeRequest('stats', seq) : encodeRequest('stop', seq, { Stop: 99 }));
  // 250 stats (header + body) and 250 stop (header only)
  const r = await rawExchange(port, [Buffer.concat(reqs)], 10_000, nObjects(1 + 500 + 250));
  const got = objects(r.bytes);
  const seqs = got.filter((v) => typeof v === 'object' && v !== null && 'Seq' in v).map((v) => (v as { Seq: number }).Seq);
  assert.deepEqual(seqs, Array.from({ length: 501 }, (_, i) => i + 1));
});

test('200 concurrent connections: 64 served, the rest closed and counted; then a normal client works', async () => {
  const before = counter('connectionLimit');
  const sockets: Socket[] = [];
  const results = await Promise.all(
    Array.from({ length: 200 }, () =>
      new Promise<'served' | 'closed'>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        sockets.push(s);
        let buf = Buffer.alloc(0);
        const timer = setTimeout(() => resolve('closed'), 10_000);
        s.on('connect', () => s.write(HANDSHAKE));
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 13) {
            clearTimeout(timer);
            resolve('served'); // keep the socket open so the slot stays taken
          }
        });
        const closed = (): void => {
          clearTimeout(timer);
          resolve('closed');
        };
        s.on('close', closed);
        s.on('error', () => {});
      }),
    ),
  );
  try {
    assert.equal(results.filter((r) => r === 'served').length, 64);
    assert.equal(counter('connectionLimit'), before + 136);
    assert.equal(srv.counters()['open'], 64);
  } finally {
    for (const s of sockets) s.destroy();
  }
  for (let i = 0; i < 100 && (srv.counters()['open'] ?? 0) > 0; i++) await sleep(20);
  assert.equal(srv.counters()['open'], 0);
  assert.equal(await stillServes(port), MEMBERS.length);
});

test('a client owing the handshake or the rest of a request is cut off; an idle handshaken one is kept', async () => {
  const s = await startRpcServer({ host: '127.0.0.1', port: 0 }, recordingBackend(), { requestTimeoutMs: 300 });
  try {
    const silent = rawExchange(s.address.port, [], 8000);
    const partial = rawExchange(s.address.port, [HANDSHAKE, encodeRequest('members', 2).subarray(0, 5)], 8000);
    // header of members-filtered sent, body never comes
    const noBody = rawExchange(s.address.port, [HANDSHAKE, encodeRequest('members-filtered', 2)], 8000);
    const idle = rawExchange(s.address.port, [HANDSHAKE], 1000);
    const [a, b, c, d] = await Promise.all([silent, partial, noBody, idle]);
    for (const r of [a, b, c]) assert.equal(r.closed, true);
    assert.equal(d.closed, false, 'an idle connection after the handshake stays open');
    assert.deepEqual(objects(d.bytes), [{ Error: '', Seq: 1 }]);
    assert.equal(s.counters()['requestTimeout'], 3);
    assert.equal(await stillServes(s.address.port), MEMBERS.length);
  } finally {
    await s.close();
  }
});
