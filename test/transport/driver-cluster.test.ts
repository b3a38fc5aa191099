// Real Memberlist cores driven over real UDP+TCP on 127.0.0.1 with the real clock: the runtime
// path the agent uses. Local profile (200 ms probe timeout, 1 s probe interval) keeps failure
// detection within seconds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Memberlist, localConfig } from '../../src/memberlist/index.ts';
import type { MemberEvent, NodeInfo } from '../../src/memberlist/index.ts';
import { Driver } from '../../src/transport/driver.ts';
import { systemRandom, systemClock } from '../../src/transport/clock.ts';
import { listenNodeTransport } from '../../src/transport/node-transport.ts';
import type { Transport } from '../../src/transport/transport.ts';

interface Node {
  name: string;
  core: Memberlist;
  transport: Transport;
  driver: Driver;
  events: MemberEvent[];
  stopped: boolean;
}

async function startNode(name: string): Promise<Node> {
  const transport = await listenNodeTransport({ ip: '127.0.0.1', port: 0 });
  const core = new Memberlist(localConfig(name, transport.localAddress), null, systemRandom);
  const events: MemberEvent[] = [];
  const driver = new Driver(core, transport, systemClock, (e) => events.push(e));
  driver.start();
  return { name, core, transport, driver, events, stopped: false };
}

function stopNode(n: Node): Promise<void> {
  if (n.stopped) return Promise.resolve();
  n.stopped = true;
  return new Promise((resolve) => n.driver.stop(resolve));
}

function stateOf(n: Node, name: string): NodeInfo['state'] | undefined {
  return n.core.members().find((m) => m.name === name)?.state;
}

/** Poll a real-time condition, bounded. */
async function waitFor(what: string, cond: () => boolean, maxMs: number): Promise<number> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > maxMs) assert.fail(`timed out after ${maxMs} ms waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - started;
}

async function threeNodeCluster(): Promise<Node[]> {
  const nodes = [await startNode('n1'), await startNode('n2'), await startNode('n3')];
  const [n1, n2, n3] = nodes as [Node, Node, Node];
  const seed = n1.transport.localAddress;
  n2.driver.join([seed]);
  n3.driver.join([seed]);
  await waitFor('join-complete on n2 and n3', () =>
    [n2, n3].every((n) => n.events.some((e) => e.type === 'join-complete')), 5000);
  for (const n of [n2, n3]) {
    const done = n.events.find((e) => e.type === 'join-complete');
    assert.ok(done?.type === 'join-complete');
    assert.equal(done.joined, 1, `${n.name} join errors: ${done.errors.join('; ')}`);
  }
  await waitFor('everyone sees three alive members', () =>
    nodes.every((n) => nodes.every((m) => stateOf(n, m.name) === 'alive')), 10_000);
  return nodes;
}

test('driver + Memberlist: three nodes join over real sockets and see each other alive', { timeout: 30_000 }, async () => {
  const nodes: Node[] = [];
  try {
    nodes.push(...(await threeNodeCluster()));
    for (const n of nodes) {
      assert.equal(n.core.numMembers(), 3, `${n.name} counts ${n.core.numMembers()}`);
      const joined = n.events.filter((e) => e.type === 'join').map((e) => (e.type === 'join' ? e.node.name : '')).sort();
      // Each node reports a join for every member it learned (itself included or not, never twice).
      assert.equal(new Set(joined).size, joined.length, `${n.name} duplicate joins: ${joined.join(',')}`);
      for (const m of nodes) if (m !== n) assert.ok(joined.includes(m.name), `${n.name} never reported ${m.name} joining`);
    }
    // Addresses the cluster learned are the transports' real ones.
    const n1 = nodes[0]!;
    for (const m of nodes) {
      assert.deepEqual(n1.core.members().find((x) => x.name === m.name)?.addr, m.transport.localAddress);
    }
    // Probes keep flowing for a few rounds and nobody is declared dead. (A loaded CI machine may
    // cause a brief suspicion, which the suspect refutes; so check the outcome, not an instant.)
    await sleep(2500);
    await waitFor('everyone still alive', () => nodes.every((n) => nodes.every((m) => stateOf(n, m.name) === 'alive')), 5000);
    for (const n of nodes) assert.deepEqual(n.events.filter((e) => e.type === 'leave'), [], `${n.name} saw a leave`);
    // Probes go out once per probe interval; on a busy machine 2.5 s may hold only a few, so wait
    // (bounded) for a handful rather than reading an instant.
    await waitFor('probes and gossip went out', () => nodes.every((n) => (n.core.counters()['packets-out'] ?? 0) > 5), 10_000);
  } finally {
    await Promise.all(nodes.map(stopNode));
  }
});

test('driver + Memberlist: a node that vanishes is declared dead; one that leaves is left', { timeout: 50_000 }, async () => {
  const nodes: Node[] = [];
  try {
    nodes.push(...(await threeNodeCluster()));
    const [n1, n2, n3] = nodes as [Node, Node, Node];

    // Crash n3: driver.stop() shuts the core down and closes its sockets without a goodbye.
    await stopNode(n3);
    const tookMs = await waitFor('n1 and n2 to see n3 dead', () =>
      stateOf(n1, 'n3') === 'dead' && stateOf(n2, 'n3') === 'dead', 35_000);
    for (const n of [n1, n2]) {
      const ev = n.events.find((e) => e.type === 'leave' && e.node.name === 'n3');
      assert.ok(ev?.type === 'leave', `${n.name} emitted no leave event for n3`);
      assert.equal(ev.node.state, 'dead');
    }
    // Detection needs a probe failure plus the suspicion timeout (≥ 3 s in the local profile).
    assert.ok(tookMs >= 1000, `dead after only ${tookMs} ms`);

    // Graceful leave of n2: leave-complete on n2, 'left' on n1 well before a failure could be detected.
    const leaveStarted = Date.now();
    n2.driver.leave(2000);
    await waitFor('leave-complete on n2', () => n2.events.some((e) => e.type === 'leave-complete'), 5000);
    await waitFor('n1 to see n2 left', () => stateOf(n1, 'n2') === 'left', 5000);
    assert.ok(Date.now() - leaveStarted < 5000);
    const ev = n1.events.find((e) => e.type === 'leave' && e.node.name === 'n2');
    assert.ok(ev?.type === 'leave');
    assert.equal(ev.node.state, 'left');
    assert.equal(n1.core.numMembers(), 1);
  } finally {
    await Promise.all(nodes.map(stopNode));
  }
});
