import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/sim/clock.ts';
import { SeededRandom } from '../../src/sim/random.ts';
import { SimNetwork, type SimNetworkOptions, type SimTransport } from '../../src/sim/network.ts';
import type { Address } from '../../src/wire/types.ts';

interface Rx {
  from: Address;
  bytes: Uint8Array;
  atMs: number;
}

function setup(opts: SimNetworkOptions = {}, seed = 1) {
  const clock = new VirtualClock();
  const net = new SimNetwork(clock, new SeededRandom(seed), opts);
  const inbox = new Map<SimTransport, Rx[]>();
  const make = (): SimTransport => {
    const t = net.createTransport();
    const box: Rx[] = [];
    inbox.set(t, box);
    t.setHandlers({
      packet: (from, bytes) => box.push({ from, bytes, atMs: clock.now() }),
      stream: (_from, req, reply) => reply(req), // echo
    });
    return t;
  };
  return { clock, net, make, inbox: (t: SimTransport) => inbox.get(t)! };
}

test('packets arrive with the sender as `from`, within the latency bounds, never synchronously', () => {
  const { clock, make, inbox } = setup({ latencyMinMs: 3, latencyMaxMs: 9 });
  const a = make();
  const b = make();
  assert.notDeepEqual(a.localAddress, b.localAddress);
  for (let i = 0; i < 200; i++) a.sendPacket(b.localAddress, new Uint8Array([i & 0xff, 1, 2]));
  assert.equal(inbox(b).length, 0);
  clock.runFor(100);
  const got = inbox(b);
  assert.equal(got.length, 200);
  for (const r of got) {
    assert.deepEqual(r.from, a.localAddress);
    assert.ok(r.atMs >= 3 && r.atMs <= 9, `arrived at ${r.atMs}`);
  }
  // jitter reorders: the arrival order is not the send order
  const order = got.map((r) => r.bytes[0]);
  assert.notDeepEqual(order, [...order].sort((x, y) => x! - y!));
});

test('loss and duplication happen at about the configured rates and are counted', () => {
  const { clock, net, make, inbox } = setup({ loss: 0.1, duplicate: 0.05 });
  const a = make();
  const b = make();
  const N = 20_000;
  for (let i = 0; i < N; i++) a.sendPacket(b.localAddress, new Uint8Array([1]));
  clock.runFor(100);
  const lost = net.stats.packetsDropped.loss;
  assert.ok(Math.abs(lost / N - 0.1) < 0.01, `loss ${lost / N}`);
  const dup = net.stats.packetsDuplicated;
  assert.ok(Math.abs(dup / (N - lost) - 0.05) < 0.01, `dup ${dup / (N - lost)}`);
  assert.equal(inbox(b).length, N - lost + dup);
  assert.equal(net.stats.packetsDelivered, N - lost + dup);
  assert.equal(net.stats.packetsSent, N);
});

test('partitions drop across groups only; heal restores; killed nodes are silent both ways', () => {
  const { clock, net, make, inbox } = setup();
  const [a, b, c] = [make(), make(), make()];
  net.partition([a.localAddress], [b.localAddress]);
  a.sendPacket(b.localAddress, new Uint8Array([1]));
  a.sendPacket(c.localAddress, new Uint8Array([2])); // c is in no group: reachable
  b.sendPacket(a.localAddress, new Uint8Array([3]));
  clock.runFor(50);
  assert.equal(inbox(b).length, 0);
  assert.equal(inbox(a).length, 0);
  assert.equal(inbox(c).length, 1);
  assert.equal(net.stats.packetsDropped.partition, 2);
  net.heal();
  a.sendPacket(b.localAddress, new Uint8Array([4]));
  clock.runFor(50);
  assert.equal(inbox(b).length, 1);

  net.kill(c.localAddress);
  a.sendPacket(c.localAddress, new Uint8Array([5]));
  c.sendPacket(a.localAddress, new Uint8Array([6]));
  clock.runFor(50);
  assert.equal(inbox(c).length, 1);
  assert.equal(inbox(a).length, 0);
  assert.equal(net.stats.packetsDropped.killed, 2);
  // a packet in flight when the partition starts is dropped on arrival
  a.sendPacket(b.localAddress, new Uint8Array([7]));
  net.partition([a.localAddress], [b.localAddress]);
  clock.runFor(50);
  assert.equal(inbox(b).length, 1);
});

test('a slow node delays everything it sends by its extra delay', () => {
  const { clock, net, make, inbox } = setup({ latencyMinMs: 2, latencyMaxMs: 2 });
  const a = make();
  const b = make();
  net.setSlow(a.localAddress, 700);
  a.sendPacket(b.localAddress, new Uint8Array([1]));
  b.sendPacket(a.localAddress, new Uint8Array([2]));
  clock.runFor(1000);
  assert.equal(inbox(b)[0]!.atMs, 702);
  assert.equal(inbox(a)[0]!.atMs, 2);
});

test('same seed, same deliveries; another seed, another order', () => {
  const trace = (seed: number): string => {
    const { clock, make, inbox } = setup({ loss: 0.2, duplicate: 0.1, latencyMinMs: 1, latencyMaxMs: 30 }, seed);
    const a = make();
    const b = make();
    for (let i = 0; i < 300; i++) a.sendPacket(b.localAddress, new Uint8Array([i & 0xff]));
    clock.runFor(100);
    return inbox(b)
      .map((r) => `${r.atMs}:${r.bytes[0]}`)
      .join(',');
  };
  assert.equal(trace(11), trace(11));
  assert.notEqual(trace(11), trace(12));
});

test('closed transports receive nothing and free their address', () => {
  const { clock, net, make, inbox } = setup();
  const a = make();
  const b = make();
  a.sendPacket(b.localAddress, new Uint8Array([1]));
  let closed = false;
  b.close(() => (closed = true));
  clock.runFor(50);
  assert.equal(closed, true);
  assert.equal(inbox(b).length, 0);
  assert.equal(net.stats.packetsDropped.unreachable, 1);
  const b2 = net.createTransport(b.localAddress);
  assert.deepEqual(b2.localAddress, b.localAddress);
});

/** `00 | msgpack({Node, SeqNo})`: a stream ping, the smallest real stream message. */
function pingStream(seq: number): Uint8Array {
  return Uint8Array.from([0, 0x82, 0xa4, ...new TextEncoder().encode('Node'), 0xa1, 0x62, 0xa5, ...new TextEncoder().encode('SeqNo'), seq]);
}

test('streams to killed or partitioned hosts fail with "connection refused" after the connect timeout, bounded by timeoutMs', () => {
  const { clock, net, make } = setup({ latencyMinMs: 2, latencyMaxMs: 2, connectTimeoutMs: 800 });
  const [a, b, c] = [make(), make(), make()];
  const outcomes: Array<{ to: string; error: string | null; atMs: number }> = [];
  const open = (to: SimTransport, label: string, timeoutMs: number): void =>
    a.openStream(to.localAddress, pingStream(1), timeoutMs, true, (error) => outcomes.push({ to: label, error, atMs: clock.now() }));
  net.kill(b.localAddress);
  net.partition([a.localAddress], [c.localAddress]);
  open(b, 'killed', 5000);
  open(c, 'partitioned', 5000);
  open(c, 'partitioned-short', 300);
  assert.equal(outcomes.length, 0, 'failures are asynchronous');
  clock.runFor(2000);
  assert.deepEqual(outcomes.map((o) => [o.to, o.error, o.atMs]).sort(), [
    ['killed', 'connection refused', 800],
    ['partitioned', 'connection refused', 800],
    ['partitioned-short', 'timeout', 300],
  ]);
  assert.equal(net.stats.streamsFailed, 3);
});

test('a stream round trip takes 1.5 RTT + reply, a slow responder adds its delay to the reply', () => {
  const { clock, net, make } = setup({ latencyMinMs: 10, latencyMaxMs: 10 });
  const a = make();
  const b = make();
  let gotAt = -1;
  let reply: Uint8Array | null = null;
  a.openStream(b.localAddress, pingStream(2), 5000, true, (error, r) => {
    assert.equal(error, null);
    reply = r;
    gotAt = clock.now();
  });
  clock.runFor(1000);
  // SYN 10 + SYN-ACK 10 + request 10, echo reply 10
  assert.equal(gotAt, 40);
  assert.deepEqual(reply, pingStream(2));
  net.setSlow(b.localAddress, 300);
  const t0 = clock.now();
  a.openStream(b.localAddress, pingStream(3), 5000, true, () => (gotAt = clock.now() - t0));
  clock.runFor(1000);
  assert.equal(gotAt, 40 + 300 + 300, 'the slow node delays its SYN-ACK and its reply');
});
