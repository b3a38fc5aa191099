// The agent's hooks for deploys and actions by role, end to end: the RPC command `kodama`
// (registered operations, unknown ones, deploy.* without a data dir), the forced service drain a
// peer sees in the s:* tag, the `lb` tag of balancer nodes, and exec refusals on a node that did
// not enable it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, RpcClient, RpcError, parseBalancerSpec, parseServiceSpecs } from '../../src/index.ts';
import type { AgentOptions } from '../../src/index.ts';
import { encodeRequest } from '../../src/exec/protocol.ts';
import { EXEC_QUERY } from '../../src/exec/types.ts';
import { freePort } from '../lib/agents.ts';

const running: Agent[] = [];
const clients: RpcClient[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const a of running) await a.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function make(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = Agent.create({
    nodeName: name,
    bind: '127.0.0.1:0',
    rpcAddr: '127.0.0.1:0',
    profile: 'local',
    logLevel: 'ERR',
    logSink: () => {},
    leavePropagateDelayMs: 100,
    ...extra,
  });
  running.push(a);
  return a;
}

async function client(a: Agent): Promise<RpcClient> {
  const c = await RpcClient.connect(`127.0.0.1:${a.rpcAddress!.port}`, { timeoutMs: 10_000 });
  clients.push(c);
  return c;
}

async function until(what: string, timeoutMs: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && !cond(); i++) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const remote = (re: RegExp) => (e: unknown): boolean => e instanceof RpcError && e.code === 'ERR_RPC_REMOTE' && re.test(e.message);

test('RPC kodama: registered ops round-trip JSON; errors carry their text; unknown ops and deploy.* without a data dir say so', { timeout: 30_000 }, async () => {
  const a = make('call-a');
  await a.start();
  const seen: unknown[] = [];
  const off = a.registerCall('test.echo', async (args) => {
    seen.push(args);
    return { echoed: args, node: a.nodeName };
  });
  a.registerCall('test.fail', async () => {
    throw new Error('no green nodes are healthy (0/3)');
  });
  a.registerCall('test.nothing', async () => undefined);
  assert.throws(() => a.registerCall('test.echo', async () => 1), /already registered/);

  const c = await client(a);
  const args = { service: 'web', steps: [10, 50, 100], nested: { ok: true, text: 'grün' } };
  assert.deepEqual(await c.call('test.echo', args), { echoed: args, node: 'call-a' });
  assert.deepEqual(await c.call('test.echo'), { echoed: null, node: 'call-a' }, 'no args → null');
  assert.deepEqual(seen, [args, null]);
  assert.equal(await c.call('test.nothing', {}), undefined);
  await assert.rejects(c.call('test.fail', {}), remote(/^no green nodes are healthy \(0\/3\)$/));
  await assert.rejects(c.call('nope', {}), remote(/^unknown operation nope$/));
  await assert.rejects(c.call('deploy.start', { service: 'web' }), remote(/^this agent keeps no deploy state: start it with -data-dir <dir>$/));

  // unregistered: unknown again; the connection still serves other commands
  off();
  await assert.rejects(c.call('test.echo', {}), remote(/^unknown operation test\.echo$/));
  assert.equal((await c.members()).length, 1);
  const st = a.stats()['calls'];
  assert.equal(st?.['calls'], '7');
  assert.equal(st?.['unknown_ops'], '3');
  assert.equal(st?.['call_errors'], '1');
});

test('an agent with -data-dir serves deploy.* ops (its deploy runner registered them)', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-calls-'));
  dirs.push(dir);
  const a = make('call-d', { dataDir: dir });
  await a.start();
  assert.equal(a.dataDir, dir);
  assert.ok(a.deploys !== undefined, 'deploy runner started');
  const c = await client(a);
  // a fresh data dir: no deploy yet, an empty history (the runner's answer, not a refusal)
  assert.deepEqual(await c.call('deploy.status', {}), { current: null, history: [] });
  // deploy.route goes through publishRoute: the agent's table has the manual split
  await c.call('deploy.route', { service: 'web', weights: { blue: 0, green: 100 } });
  assert.deepEqual(a.routes.get('web')?.weights, { blue: 0, green: 100 });
  assert.equal(a.routes.get('web')?.by, 'manual');
  await a.stop();
  assert.equal(a.deploys, undefined, 'stopped with the agent');
});

test('setServicesDraining: a peer sees s:web gain ,drain and lose it again; a recovering check cannot undo it', { timeout: 40_000 }, async () => {
  const port = await freePort();
  const listen = async (): Promise<Server> =>
    new Promise((resolve, reject) => {
      const srv = createServer((sock) => sock.destroy());
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve(srv));
    });
  let srv = await listen();
  try {
    const services = parseServiceSpecs([{ name: 'web', port, checks: [{ tcp: true, interval: '200ms', rise: 1, fall: 1 }] }], 'test');
    const web = make('drain-web', { services });
    const peer = make('drain-peer');
    await web.start();
    await peer.start();
    await peer.join([`127.0.0.1:${web.bindAddress.port}`]);
    const tagAtPeer = (): string | undefined => peer.members().find((m) => m.name === 'drain-web')?.tags['s:web'];
    await until('peer sees s:web=<port>', 10_000, () => tagAtPeer() === `${port}`);

    web.setServicesDraining(true);
    assert.equal(web.servicesDraining, true);
    assert.equal(web.stats()['tags']?.['s:web'], `${port},drain`);
    await until('peer sees ,drain', 10_000, () => tagAtPeer() === `${port},drain`);
    // a user tag change re-applies the managed keys: the drain stays
    web.setTags({ role: 'web' });
    await until('peer sees role=web', 10_000, () => peer.members().find((m) => m.name === 'drain-web')?.tags['role'] === 'web');
    assert.equal(tagAtPeer(), `${port},drain`);

    // the service dies (out of rotation as ever) and comes back healthy: still drained
    await new Promise<void>((r) => srv.close(() => r()));
    await until('unhealthy: tag withdrawn', 10_000, () => tagAtPeer() === undefined);
    srv = await listen();
    await until('healthy again, still ,drain', 10_000, () => tagAtPeer() === `${port},drain`);
    assert.equal(web.serviceStatus()[0]?.health, 'healthy');

    web.setServicesDraining(false);
    await until('peer sees s:web=<port> again', 10_000, () => tagAtPeer() === `${port}`);
    assert.equal(web.servicesDraining, false);
    // a node without services: nothing to drain, no error, no tag
    peer.setServicesDraining(true);
    assert.equal(peer.servicesDraining, false);
    assert.equal(peer.stats()['tags']?.['s:web'], undefined);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('balancer nodes carry lb=<services>; a user tag lb on another node is not the agent\'s to keep', { timeout: 30_000 }, async () => {
  const p1 = await freePort();
  const p2 = await freePort();
  const spec = parseBalancerSpec({ driver: 'embedded', services: { web: { bind: `127.0.0.1:${p1}` }, api: { bind: `127.0.0.1:${p2}`, mode: 'tcp' } } }, 'test');
  const lb = make('lb-1', { balancer: spec, tags: { lb: 'forged' } });
  await lb.start();
  const lbTag = lb.stats()['tags']?.['lb'];
  assert.deepEqual(lbTag?.split(',').sort(), ['api', 'web']);
  // the user cannot overwrite it through setTags either
  lb.setTags({ lb: 'other', role: 'lb' });
  assert.deepEqual(lb.stats()['tags']?.['lb']?.split(',').sort(), ['api', 'web']);
  // a node that is no balancer does not advertise one, even if a tags file says so
  const plain = make('plain-1', { tags: { lb: 'web' } });
  await plain.start();
  assert.equal(plain.stats()['tags']?.['lb'], undefined);
});

test('exec: a node that did not enable it still answers, with a refusal', { timeout: 30_000 }, async () => {
  const a = make('exec-off');
  await a.start();
  assert.equal(a.isEncrypted(), false);
  const req = encodeRequest({ op: 'run', token: 'x', id: 'r-1', cmd: 'touch /tmp/should-not-exist' });
  const r = await a.query({ name: EXEC_QUERY, payload: req, timeoutMs: 1000 });
  const answer = r.responses.get('exec-off');
  assert.ok(answer !== undefined, 'the executor answered');
  assert.match(new TextDecoder().decode(answer), /ERR_EXEC_DISABLED/);
  assert.ok(a.stats()['exec'] !== undefined, 'exec stats section');
});

test('exec options: enabled without a token is refused at create; isEncrypted follows -encrypt', async () => {
  assert.throws(
    () => Agent.create({ nodeName: 'x', exec: { enabled: true, token: '', allow: [], timeoutMs: 1000, maxOutputBytes: 4096 } }),
    (e: unknown) => e instanceof Error && /enabled without a token/.test(e.message),
  );
  assert.throws(() => Agent.create({ nodeName: 'x', dataDir: ' ' }), /data dir must not be empty/);
  const enc = make('enc-1', { encrypt: 'cg8StVXbQJ0gPvMd9o7yrg==', rpcAddr: null });
  await enc.start();
  assert.equal(enc.isEncrypted(), true);
  assert.equal(enc.stats()['serf']?.['encrypted'], 'true');
});
