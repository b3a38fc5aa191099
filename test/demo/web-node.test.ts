import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { spawnWebNode } from '../../src/demo/web-node.ts';

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function seedAgent(t: { after(fn: () => Promise<void>): void }): Promise<{ agent: Agent; addr: string }> {
  const agent = createAgent({ nodeName: 'seed', bind: '127.0.0.1:0', profile: 'local', rpcAddr: null, logSink: () => {} });
  await agent.start();
  t.after(() => agent.stop());
  const a = agent.bindAddress;
  return { agent, addr: `${a.ip}:${a.port}` };
}

test('web node: serves its page, joins with role=web, SIGTERM leaves gracefully and exits 0', async (t) => {
  const seed = await seedAgent(t);
  const lines: string[] = [];
  const node = await spawnWebNode({ name: 'web-t1', join: seed.addr, logSink: (l) => lines.push(l) });
  t.after(() => node.kill());
  assert.equal(node.node, 'web-t1');
  assert.match(node.serf, /^127\.0\.0\.1:\d+$/);

  const res = await fetch(`http://127.0.0.1:${node.port}/`);
  assert.equal(res.headers.get('x-kodama-node'), 'web-t1');
  assert.equal(await res.text(), 'hello from web-t1\n');

  const member = (): ReturnType<Agent['members']>[number] | undefined => seed.agent.members().find((m) => m.name === 'web-t1');
  // It joins once healthy, so the seed learns the service tag with the join itself.
  const healthyAt = await node.healthyAt();
  assert.ok(healthyAt <= Date.now() && healthyAt > Date.now() - 30_000);
  await waitFor('seed to see web-t1 alive', () => member()?.status === 'alive', 10_000);
  assert.equal(member()?.tags.role, 'web');
  assert.equal(member()?.tags['s:web'], String(node.port));
  assert.ok(lines.some((l) => l.includes('services: web is healthy')), `health logged: ${lines.join('\n')}`);
  assert.ok(lines.some((l) => l.includes('agent: joined: 1 nodes')), `join logged: ${lines.join('\n')}`);

  // SIGTERM: the tag turns ",drain" while the node is still alive, then it leaves.
  const seen: string[] = [];
  const off = seed.agent.on('member', (e) => {
    for (const m of e.members) if (m.name === 'web-t1') seen.push(`${e.type} ${m.tags['s:web'] ?? '-'}`);
  });
  t.after(off);
  const t0 = Date.now();
  await node.stop();
  assert.equal(node.exitCode, 0, `exit code 0; log:\n${lines.join('\n')}`);
  assert.ok(Date.now() - t0 < 15_000);
  assert.ok(lines.some((l) => l.includes('agent: graceful leave complete')), `leave logged: ${lines.join('\n')}`);
  await waitFor('seed to record web-t1 left (not failed)', () => member()?.status === 'left', 10_000);
  const drainAt = seen.indexOf(`member-update ${node.port},drain`);
  const leaveAt = seen.findIndex((x) => x.startsWith('member-leave'));
  assert.ok(drainAt >= 0, `seed saw the drain tag: ${seen.join(', ')}`);
  assert.ok(leaveAt > drainAt, `drain tag before the leave: ${seen.join(', ')}`);
});

test('web node: SIGKILL is a node death, the seed marks it failed', async (t) => {
  const seed = await seedAgent(t);
  const node = await spawnWebNode({ name: 'web-t2', join: seed.addr });
  t.after(() => node.kill());
  const member = (): ReturnType<Agent['members']>[number] | undefined => seed.agent.members().find((m) => m.name === 'web-t2');
  await waitFor('seed to see web-t2 alive', () => member()?.status === 'alive', 10_000);
  node.kill();
  assert.equal(await node.exited, -1);
  await waitFor('seed to mark web-t2 failed', () => member()?.status === 'failed', 20_000);
  await assert.rejects(fetch(`http://127.0.0.1:${node.port}/`));
});

test('web node: a join that fails exits 1 with the reason', async () => {
  await assert.rejects(spawnWebNode({ name: 'web-t3', join: '127.0.0.1:1', startTimeoutMs: 30_000 }), /exited 1 before starting: .*could not join/);
});
