import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDeployRunner, balancerFilter } from '../../src/deploy/runner.ts';
import type { DeployAgent, DeployRunner } from '../../src/deploy/runner.ts';
import type { MemberObs } from '../../src/deploy/core.ts';
import { encodeBalancerReport } from '../../src/discovery/backends-report.ts';
import { loadDeploys, stateFilePath, saveDeploys, MAX_HISTORY } from '../../src/deploy/state-file.ts';
import type { DeployState, RouteEntry, RouteSetting } from '../../src/deploy/types.ts';
import { DeployError } from '../../src/deploy/errors.ts';

// A fake agent: members and balancers in memory; a balancer applies every published route at
// once and answers the backends query from it.
class FakeAgent implements DeployAgent {
  readonly nodeName = 'coord';
  readonly logger = { lines: [] as string[], log: (l: string, m: string) => void this.logger.lines.push(`${l} ${m}`) };
  readonly calls = new Map<string, (a: unknown) => Promise<unknown>>();
  route: RouteEntry | undefined;
  ltime = 100;
  published: RouteEntry[] = [];
  memberList: MemberObs[] = [
    { name: 'coord', status: 'alive', tags: {} },
    { name: 'lb1', status: 'alive', tags: { lb: 'web' } },
    ...['b1', 'b2'].map((n) => ({ name: n, status: 'alive', tags: { color: 'blue', 's:web': '80' } })),
    ...['g1', 'g2'].map((n) => ({ name: n, status: 'alive', tags: { color: 'green', 's:web': '80' } })),
  ];
  routes = { get: (s: string) => (this.route?.service === s ? this.route : undefined) };
  members(): MemberObs[] {
    return this.memberList;
  }
  publishRoute(s: RouteSetting): Promise<RouteEntry> {
    const e = { ...s, ltime: ++this.ltime };
    this.route = e;
    this.published.push(e);
    return Promise.resolve(e);
  }
  query(o: { name: string; filterTags?: Record<string, string>; onResponse?: (from: string, p: Uint8Array) => void }): Promise<unknown> {
    assert.equal(o.name, 'kodama-backends');
    assert.match('web', new RegExp(o.filterTags?.['lb'] ?? 'x'));
    const backends = this.memberList
      .filter((m) => m.tags['s:web'] !== undefined)
      .map((m) => {
        const share = this.route?.weights[m.tags['color'] ?? ''] ?? 100;
        return { id: m.name, state: share > 0 ? ('ready' as const) : ('drain' as const), weight: share, value: m.tags['color'] ?? '', active: 0, requests: 0, errors: 0 };
      });
    const r = { node: 'lb1', driver: 'haproxy' as const, services: { web: { routeLTime: this.route?.ltime ?? 0, backends } } };
    setTimeout(() => o.onResponse?.('lb1', encodeBalancerReport(r, 1024)), 5);
    return new Promise((res) => setTimeout(res, 20));
  }
  registerCall(op: string, fn: (a: unknown) => Promise<unknown>): () => void {
    this.calls.set(op, fn);
    return () => this.calls.delete(op);
  }
  call(op: string, args: unknown): Promise<unknown> {
    const fn = this.calls.get(op);
    if (!fn) throw new Error(`unknown operation ${op}`);
    return fn(args);
  }
}

async function waitPhase(get: () => DeployState | undefined, phases: string[], timeoutMs = 5000): Promise<DeployState> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const s = get();
    if (s && phases.includes(s.phase)) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no phase ${phases.join('/')} within ${timeoutMs} ms; now ${get()?.phase}`);
}

const FAST = { checkBakeMs: 50, bakeMs: 100, stepBakeMs: 50, drainTimeoutMs: 500, applyTimeoutMs: 1000 };

test('balancerFilter matches the service in an lb list, not a prefix of another', () => {
  const re = new RegExp(balancerFilter('web'));
  for (const v of ['web', 'api,web', 'web,api', 'a,web,b']) assert.match(v, re);
  for (const v of ['webx', 'xweb', 'api', 'web2,api']) assert.doesNotMatch(v, re);
  assert.doesNotMatch('wexb', new RegExp(balancerFilter('we.b')));
});

test('runner: ops start → done, state persisted; a second runner on the data dir shows it; busy/none errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const agent = new FakeAgent();
  const r = await startDeployRunner(agent, { dataDir: dir, tickMs: 10 });
  await assert.rejects(agent.call('deploy.abort', {}), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_NONE');
  await assert.rejects(agent.call('deploy.start', { service: 'web', from: 'blue', to: 'green', bakeMS: 5 }), /unknown deploy.start argument\(s\): bakeMS/);
  const started = (await agent.call('deploy.start', { service: 'web', from: 'blue', to: 'green', steps: [50, 100], ...FAST })) as DeployState;
  assert.equal(started.phase, 'prepare');
  assert.equal(started.spec.expected, 2);
  await assert.rejects(agent.call('deploy.start', { service: 'web', from: 'blue', to: 'green' }), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_BUSY');
  const done = await waitPhase(() => r.current(), ['done', 'rolled-back', 'aborted', 'failed']);
  assert.equal(done.phase, 'done', done.events.map((e) => e.msg).join(' | '));
  assert.deepEqual(agent.published.map((e) => `${e.weights['blue']}/${e.weights['green']}`), ['100/0', '50/50', '0/100']);
  await r.stop();
  const onDisk = await loadDeploys(dir);
  assert.equal(onDisk.current?.phase, 'done');
  const status = (await (async () => {
    const agent2 = new FakeAgent();
    const r2 = await startDeployRunner(agent2, { dataDir: dir, tickMs: 10 });
    const s = await agent2.call('deploy.status', {});
    // a finished deploy can still be rolled back after a restart
    await agent2.call('deploy.rollback', {});
    await waitPhase(() => r2.current(), ['rolled-back']);
    assert.equal(agent2.route?.weights['blue'], 100);
    await agent2.call('deploy.start', { service: 'web', from: 'blue', to: 'green', ...FAST });
    assert.equal(r2.history().length, 1);
    await r2.stop();
    return s;
  })()) as { current: DeployState };
  assert.equal(status.current.phase, 'done');
});

test('runner: a deploy interrupted mid-bake resumes on restart with a fresh ltime and finishes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const agent = new FakeAgent();
  const r = await startDeployRunner(agent, { dataDir: dir, tickMs: 10 });
  await r.start({ service: 'web', from: 'blue', to: 'green', ...FAST, bakeMs: 60_000 });
  await waitPhase(() => r.current(), ['bake']);
  await r.stop(); // the "crash": nothing more happens, the file says bake
  assert.equal((await loadDeploys(dir)).current?.phase, 'bake');
  const agent2 = new FakeAgent();
  agent2.route = agent.route;
  agent2.ltime = agent.ltime;
  const before = agent.ltime;
  const r2 = await startDeployRunner(agent2, { dataDir: dir, tickMs: 10 });
  await waitPhase(() => (agent2.published.length > 0 ? r2.current() : undefined), ['bake']);
  assert.equal(agent2.published[0]?.weights['green'], 100);
  assert.ok((agent2.published[0]?.ltime ?? 0) > before);
  assert.ok(agent2.logger.lines.some((l) => /resumed in phase bake/.test(l)));
  await agent2.call('deploy.abort', { reason: 'test over' });
  const end = await waitPhase(() => r2.current(), ['rolled-back']);
  assert.equal(end.reason, 'test over');
  await r2.stop();
});

test('deploy.route publishes a manual split; bad weights refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const agent = new FakeAgent();
  const r = await startDeployRunner(agent, { dataDir: dir, tickMs: 10 });
  const e = (await agent.call('deploy.route', { service: 'web', weights: { blue: 20, green: 80 } })) as RouteEntry;
  assert.deepEqual({ ...e.weights }, { blue: 20, green: 80 });
  assert.equal(e.by, 'manual');
  await assert.rejects(agent.call('deploy.route', { service: 'web', weights: { blue: 120 } }), /integer 0..100/);
  await assert.rejects(agent.call('deploy.route', { weights: {} }), /needs a service/);
  await r.stop();
});

test('state file: atomic replace, bounded history, corrupt file is an error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual(await loadDeploys(dir), { current: undefined, history: [] });
  const s = (i: number): DeployState => ({ id: `d-${i}`, spec: {} as DeployState['spec'], coordinator: 'c', phase: 'done', step: 0, startedAt: i, phaseSince: i, updatedAt: i, routeLTime: i, figures: {}, events: [] });
  await saveDeploys(dir, { current: s(99), history: Array.from({ length: 30 }, (_, i) => s(i)) });
  const back = await loadDeploys(dir);
  assert.equal(back.current?.id, 'd-99');
  assert.equal(back.history.length, MAX_HISTORY);
  assert.equal(back.history[0]?.id, 'd-10');
  assert.doesNotMatch((await readFile(stateFilePath(dir), 'utf8')).slice(0, 20), /tmp/);
  await writeFile(stateFilePath(dir), '{"version":1,"current":{"id":');
  await assert.rejects(loadDeploys(dir), (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_FILE');
});

test('a full disk (a small tmpfs): deploy start is refused with a clear error and publishes nothing; no temporary file is left; temporary files of a killed writer are removed at start', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('SKIPPED: mounting a tmpfs needs root');
    return;
  }
  const top = await mkdtemp(join(tmpdir(), 'kodama-deploy-'));
  const dir = join(top, 'disk');
  await mkdir(dir);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'kodama-deploy-test', dir], { encoding: 'utf8' });
  const held: { runner?: DeployRunner } = {};
  t.after(async () => {
    await held.runner?.stop();
    spawnSync('umount', ['-l', dir]);
    await rm(top, { recursive: true, force: true });
  });
  if (m.status !== 0) {
    t.skip(`SKIPPED: cannot mount a tmpfs here: ${m.stderr.trim()}`);
    return;
  }
  // What an agent killed mid-write leaves behind.
  await mkdir(join(dir, 'deploys'));
  await writeFile(join(dir, 'deploys', 'state.json.4242.3.tmp'), '{"version":1,"cur');
  const agent = new FakeAgent();
  const runner = await startDeployRunner(agent, { dataDir: dir, tickMs: 10 });
  held.runner = runner;
  assert.deepEqual(await readdir(join(dir, 'deploys')), [], 'the killed writer\'s temporary file is gone');
  assert.ok(agent.logger.lines.some((l) => /removed 1 temporary state file/.test(l)), agent.logger.lines.join('\n'));
  // Fill the disk.
  await writeFile(join(dir, 'filler'), Buffer.alloc(1 << 20)).catch((e: NodeJS.ErrnoException) => assert.equal(e.code, 'ENOSPC'));
  await assert.rejects(
    agent.call('deploy.start', { service: 'web', from: 'blue', to: 'green', ...FAST }),
    (e: unknown) => e instanceof DeployError && e.code === 'ERR_DEPLOY_FILE' && /deploy not started, nothing was published: cannot write .*state\.json: ENOSPC.*disk is full/.test(e.message),
  );
  await new Promise((res) => setTimeout(res, 100)); // ten ticks
  assert.deepEqual(agent.published, [], 'no route published');
  assert.equal(runner.current(), undefined, 'no deploy kept in memory either');
  assert.deepEqual(await readdir(join(dir, 'deploys')), [], 'no half-written temporary file left');
  // Space again: the same request starts the deploy.
  await rm(join(dir, 'filler'));
  const s = (await agent.call('deploy.start', { service: 'web', from: 'blue', to: 'green', ...FAST })) as DeployState;
  assert.equal(s.phase, 'prepare');
  assert.equal((await loadDeploys(dir)).current?.id, s.id);
});
