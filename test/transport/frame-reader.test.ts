// FrameReader: finds one stream message in chunked input without re-parsing big buffers on
// every chunk, and reports oversize and malformed input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { FrameReader } from '../../src/transport/frame-reader.ts';
import type { FrameResult } from '../../src/transport/frame-reader.ts';
import { streamFrameLength } from '../../src/wire/index.ts';
import { pingStream, pushPullStream } from './compliance.ts';

function reader(maxBytes: number): { r: FrameReader; results: FrameResult[]; parses: () => number } {
  const results: FrameResult[] = [];
  let parses = 0;
  const r = new FrameReader(maxBytes, (x) => results.push(x), (buf, max) => {
    parses++;
    return streamFrameLength(buf, max);
  });
  return { r, results, parses: () => parses };
}

test('frame reader: a 5 MB message in 64 KiB chunks, one per turn, is parsed a few dozen times, not per chunk', async () => {
  const msg = pushPullStream(50_000, 3);
  const trailing = Buffer.from(pingStream(1, 'next')); // bytes after the message are not part of it
  const { r, results, parses } = reader(20 * 1024 * 1024);
  const chunkBytes = 64 * 1024;
  const chunks = Math.ceil(msg.length / chunkBytes);
  for (let off = 0; off < msg.length; off += chunkBytes) {
    r.push(Buffer.from(msg.subarray(off, off + chunkBytes)));
    await nextTurn(); // a new event-loop turn per chunk, as a slow sender would produce
  }
  r.push(trailing);
  await sleep(20); // the peer goes quiet: the pending parse runs
  assert.equal(results.length, 1);
  const res = results[0];
  assert.ok(res?.kind === 'frame');
  assert.deepEqual(res.bytes, msg);
  assert.ok(chunks > 70);
  assert.ok(parses() <= 30, `${parses()} parses for ${chunks} chunks`);
});

test('frame reader: small messages are framed in the turn they complete', async () => {
  const msg = pingStream(42, 'n1');
  const { r, results } = reader(1024);
  r.push(Buffer.from(msg.subarray(0, 3)));
  await nextTurn();
  assert.equal(results.length, 0);
  r.push(Buffer.from(msg.subarray(3)));
  await nextTurn();
  assert.equal(results.length, 1);
  assert.deepEqual(results[0], { kind: 'frame', bytes: msg });
  r.push(Buffer.from(msg)); // after the result nothing more is reported
  await nextTurn();
  assert.equal(results.length, 1);
});

test('frame reader: oversize and malformed input are reported once; flush parses at EOF', async () => {
  const big = reader(100);
  big.r.push(Buffer.alloc(60, 6));
  big.r.push(Buffer.alloc(60, 6));
  assert.equal(big.results.length, 1);
  assert.equal(big.results[0]?.kind, 'too-large');

  const bad = reader(1000);
  bad.r.push(Buffer.from([0x7f, 0, 0]));
  await nextTurn();
  assert.equal(bad.results.length, 1);
  const res = bad.results[0];
  assert.ok(res?.kind === 'malformed');
  assert.match(res.code, /^ERR_WIRE_/);

  const eof = reader(1000);
  const msg = pingStream(7, 'x');
  eof.r.push(Buffer.from(msg.subarray(0, 5)));
  assert.equal(eof.r.flush(), false, 'incomplete at EOF');
  eof.r.push(Buffer.from(msg.subarray(5)));
  assert.equal(eof.r.flush(), true, 'flush frames synchronously');
  assert.deepEqual(eof.results, [{ kind: 'frame', bytes: msg }]);

  const cancelled = reader(1000);
  cancelled.r.push(Buffer.from(msg));
  cancelled.r.cancel();
  await sleep(10);
  assert.equal(cancelled.results.length, 0);
});
