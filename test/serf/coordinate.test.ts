// Vivaldi network coordinates (src/serf/coordinate.ts): the ack payload as Serf writes it, the
// model converging to true round trips, and bad input refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoordinateClient,
  DIMENSIONS,
  decodePingPayload,
  distanceMs,
  distanceSeconds,
  encodePingPayload,
  newCoordinate,
  type Coordinate,
} from '../../src/serf/coordinate.ts';
import { decodeMessage } from '../../src/wire/index.ts';
import { SeededRandom } from '../../src/sim/random.ts';
import { V, unhex } from '../wire/vectors.ts';

const random = (seed: number): SeededRandom => new SeededRandom(seed);

test('the captured serf ack (9.1) carries a fresh coordinate; ours encodes to the same 130 bytes and back', () => {
  const msg = decodeMessage(unhex(V.ackAB));
  assert.ok(msg.type === 'ack');
  const c = decodePingPayload(msg.payload);
  assert.ok(typeof c !== 'string', String(c));
  assert.deepEqual(c, newCoordinate());
  const ours = encodePingPayload(newCoordinate());
  assert.equal(ours.length, 130); // Go writes the fields in struct order, we sort them: same bytes per field
  assert.deepEqual(decodePingPayload(ours), newCoordinate());
});

test('ack payloads that are not a coordinate are refused with a reason, never thrown', () => {
  assert.equal(decodePingPayload(null), '');
  assert.equal(decodePingPayload(new Uint8Array(0)), '');
  assert.match(decodePingPayload(new Uint8Array([2, 0x80])) as string, /unsupported ping version 2/);
  assert.match(decodePingPayload(new Uint8Array([1, 0xc1])) as string, /malformed/);
  assert.match(decodePingPayload(new Uint8Array([1, 0x80])) as string, /malformed/); // {} has no Vec
  const good = encodePingPayload(newCoordinate());
  for (let cut = 1; cut < good.length; cut += 7) assert.equal(typeof decodePingPayload(good.subarray(0, cut)), 'string');
});

test('a client refuses incompatible, invalid coordinates and impossible round trips; its payload follows updates', () => {
  const c = new CoordinateClient(random(1));
  const before = c.ackPayload();
  assert.equal(c.ackPayload(), before, 'cached while the coordinate stays');
  assert.match(c.update('x', { ...newCoordinate(), vec: [0, 0] }, 0.01)!, /dimensions/);
  assert.match(c.update('x', { ...newCoordinate(), error: NaN }, 0.01)!, /invalid/);
  assert.match(c.update('x', newCoordinate(), -1)!, /round trip/);
  assert.match(c.update('x', newCoordinate(), 11)!, /round trip/);
  assert.equal(c.update('x', newCoordinate(), 0.01), undefined);
  assert.notDeepEqual(decodePingPayload(c.ackPayload()), decodePingPayload(before));
});

/**
 * Nodes on a line 10 ms apart, each probing a random other one per round, as gossip does: after
 * a few hundred rounds the estimates are near the truth (Serf's own tests use the same shape).
 */
test('estimates converge to the true round trips (nodes on a line, 10 ms apart, seeded)', () => {
  const n = 8;
  const rng = random(42);
  const clients = Array.from({ length: n }, () => new CoordinateClient(rng));
  const truth = (i: number, j: number): number => Math.abs(i - j) * 0.01;
  for (let round = 0; round < 1000; round++) {
    for (let i = 0; i < n; i++) {
      let j = rng.int(n - 1);
      if (j >= i) j++;
      clients[i]!.update(`n${j}`, clients[j]!.get(), truth(i, j));
    }
  }
  const coords: Coordinate[] = clients.map((c) => c.get());
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const err = Math.abs(distanceSeconds(coords[i]!, coords[j]!) - truth(i, j)) / truth(i, j);
      worst = Math.max(worst, err);
    }
  }
  assert.ok(worst < 0.1, `worst relative error ${(worst * 100).toFixed(1)} %`);
  assert.equal(coords[0]!.vec.length, DIMENSIONS);
  assert.ok(Math.abs(distanceMs(coords[0]!, coords[7]!) - 70) < 15, `n0 ↔ n7 ${distanceMs(coords[0]!, coords[7]!)} ms, truth 70`);
});
