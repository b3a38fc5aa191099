// Services from local containers, against real Podman (issue 17 part 3's must-show): a kodama
// agent watching `podman system service`'s Docker-compatible socket; a container started with
// labels kodama.service=web, kodama.port=<port> (busybox httpd on the host network, from an image
// imported from a rootfs tarball: no registry) must be a backend of every balancer within one
// check interval of turning healthy, and gone from every balancer after `podman stop` — with
// steady load through the balancers all along and not one failed request.
//
// The balancers (embedded proxy, and HAProxy where installed) run in this process; a steady web
// node (a kodama child process with its own page) keeps a backend in each while the container
// comes and goes; the container's node is bin/kodama with -containers-socket (JSON logs: their
// millisecond timestamps say when the service turned healthy).
//
// Where this machine cannot run containers (no podman, runc or busybox-static, or a trial
// container refuses to start) the test says why on stderr in a banner and skips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';
import type { BalancerRole } from '../../src/discovery/balancer-role.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import type { LoadRun } from '../../src/demo/loadgen.ts';
import { spawnWebNode } from '../../src/demo/web-node.ts';
import type { SpawnedWebNode } from '../../src/demo/web-node.ts';
import { freePort, startKodama } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';
import { until } from '../cli/helpers.ts';

/** The container's check interval (kodama.interval): the bound on "backend after healthy". */
const CHECK_INTERVAL_MS = 1000;
const BUSYBOX = '/bin/busybox';
const TAG = `${process.pid}-${Date.now().toString(36)}`;
const IMAGE = `localhost/kodama-test-kbox:${TAG}`;
/** Flags this machine kind needs (crun refuses hybrid cgroups; setrlimit is not permitted). */
const RUN_FLAGS = ['--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1000:1000', '--network', 'host'];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, bounded: killed after `timeoutMs` (then code null). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: null, stdout, stderr: (e as Error).message });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => (stderr += e.message));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const onPath = async (bin: string): Promise<boolean> => (await run('sh', ['-c', `command -v ${bin}`], 5000)).code === 0;

/** Why containers cannot run here (undefined: they can); builds the test image on the way. */
async function preflight(dir: string): Promise<string | undefined> {
  for (const bin of ['podman', 'runc']) if (!(await onPath(bin))) return `${bin} is not installed (apt-get install podman runc busybox-static)`;
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  // The image: busybox and a page, imported from a rootfs tarball (no registry is reachable).
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await mkdir(join(rootfs, 'www'), { recursive: true });
  await cp(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  await writeFile(join(rootfs, 'www', 'index.html'), 'hello from a container\n');
  const tar = await run('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.'], 30_000);
  if (tar.code !== 0) return `tar failed: ${tar.stderr.trim()}`;
  const imported = await run('podman', ['import', join(dir, 'rootfs.tar'), IMAGE], 120_000);
  if (imported.code !== 0) return `podman import failed: ${imported.stderr.trim().split('\n').at(-1)}`;
  const trial = await run('podman', ['run', '--rm', ...RUN_FLAGS, IMAGE, '/bin/busybox', 'true'], 120_000);
  if (trial.code !== 0) return `a trial container did not run (podman run exited ${trial.code}): ${trial.stderr.trim().split('\n').at(-1)}`;
  return undefined;
}

/** GET on the engine's socket: answers 200 once `podman system service` is up. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/v1.41/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

interface Lb {
  label: string;
  agent: Agent;
  role: BalancerRole;
  url: string;
  load?: LoadRun;
}

test('a labelled container is every balancer\'s backend within one check interval of turning healthy, and gone from all after podman stop; 0 failed requests under load (a killed one: only requests in flight at the kill)', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-podman-'));
  const containers: string[] = [];
  const lbs: Lb[] = [];
  // What the cleanup finds started (set as the test goes).
  const live: { service?: ChildProcess; steady?: SpawnedWebNode; ctrNode?: AgentProcess } = {};
  t.after(async () => {
    for (const lb of lbs) await lb.load?.stop().catch(() => undefined);
    for (const name of containers) await run('podman', ['rm', '-f', '-t', '0', name], 60_000);
    await live.ctrNode?.kill();
    live.steady?.kill();
    await live.steady?.exited;
    for (const lb of lbs) await lb.agent.stop().catch(() => undefined);
    if (live.service?.pid !== undefined) {
      try {
        process.kill(-live.service.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await run('podman', ['rmi', '-f', IMAGE], 60_000);
    await rm(dir, { recursive: true, force: true });
  });

  const why = await preflight(dir);
  if (why !== undefined) {
    console.error(['', '='.repeat(78), '= SKIPPED: services from local containers (test/discovery/containers-podman.test.ts)', `= this machine cannot run containers: ${why}`, '='.repeat(78), ''].join('\n'));
    t.skip(`cannot run containers: ${why}`);
    return;
  }

  // The engine's Docker-compatible API on a socket of our own (started again mid-test).
  const socket = join(dir, 'podman.sock');
  const startEngine = async (): Promise<void> => {
    live.service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { stdio: 'ignore', detached: true });
    let pinged = false;
    for (let i = 0; i < 300 && !pinged; i++) {
      pinged = await ping(socket);
      if (!pinged) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(pinged, 'podman system service answers _ping on its socket within 30 s');
  };
  await startEngine();

  // Balancers: the embedded proxy, and HAProxy where it is installed.
  const drivers: ('embedded' | 'haproxy')[] = existsSync('/usr/sbin/haproxy') ? ['embedded', 'haproxy'] : ['embedded'];
  if (drivers.length === 1) console.error('[containers-podman] HAProxy is not installed: only the embedded balancer is checked');
  for (const driver of drivers) {
    const port = await freePort();
    const spec = parseBalancerSpec(
      {
        driver,
        services: { web: { bind: `127.0.0.1:${port}`, drain_timeout: '10s', min_backends: 1 } },
        haproxy: { binary: '/usr/sbin/haproxy', dir: join(dir, `haproxy-${driver}`), reload_debounce: '500ms' },
      },
      'containers test',
    );
    const agent = createAgent({ nodeName: `lb-${driver}`, bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'WARN', logSink: () => {}, balancer: spec });
    await agent.start();
    lbs.push({ label: driver, agent, role: agent.balancerRole!, url: `http://127.0.0.1:${port}/` });
  }
  const seeds = lbs.map((lb) => `127.0.0.1:${lb.agent.bindAddress.port}`);
  const served = (lb: Lb): string[] => (lb.role.status()[0]?.backends ?? []).map((b) => `${b.id}:${b.state}`);

  // A steady backend, so the balancers always have one while the container comes and goes.
  live.steady = await spawnWebNode({ name: 'steady', join: seeds, delayMs: 2 });
  // The container's node: kodama watching the engine, JSON logs (millisecond timestamps).
  const ctrName = `ctr-${TAG}`;
  const ctrNode = await startKodama(ctrName, { join: seeds, args: ['-containers-socket', socket, '-log-json'], logLevel: 'debug' });
  live.ctrNode = ctrNode;
  const logLines = (): { time: number; level: string; message: string }[] =>
    ctrNode
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          // The text line's "subsystem: " prefix is a field of its own in JSON.
          const r = JSON.parse(l) as { time: string; level: string; subsystem: string; message: string };
          return [{ time: Date.parse(r.time), level: r.level, message: `${r.subsystem}: ${r.message}` }];
        } catch {
          return [];
        }
      });
  await until('the container node watches the engine', 20_000, () => logLines().some((l) => l.message.includes('containers: engine at') && l.message.includes('answers')));
  for (const lb of lbs) await until(`${lb.label}: steady is a ready backend`, 20_000, () => served(lb).includes('steady:ready'));

  // Steady load through every balancer from here to the end.
  const loadFrom = Date.now();
  for (const lb of lbs) lb.load = startLoad({ url: lb.url, concurrency: 4, pauseMs: 5, durationMs: 180_000, timeoutMs: 5000 });
  for (const lb of lbs) await until(`${lb.label}: load answered by steady`, 10_000, () => lb.load!.records.some((r) => r.ok && r.node === 'steady'));

  // --- the container starts: a backend everywhere within one check interval of turning healthy
  const webPort = await freePort();
  const name = `kodama-test-web-${TAG}`;
  containers.push(name);
  const started = await run(
    'podman',
    ['run', ...RUN_FLAGS, '-d', '--name', name, '--label', 'kodama.service=web', '--label', `kodama.port=${webPort}`, '--label', 'kodama.check=http:/', '--label', `kodama.interval=${CHECK_INTERVAL_MS}ms`, IMAGE, '/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${webPort}`, '-h', '/www'],
    60_000,
  );
  assert.equal(started.code, 0, `podman run: ${started.stderr}`);
  const backendAt = new Map<string, number>();
  await until('the container is a ready backend of every balancer', 20_000, () => {
    for (const lb of lbs) if (!backendAt.has(lb.label) && served(lb).includes(`${ctrName}:ready`)) backendAt.set(lb.label, Date.now());
    return backendAt.size === lbs.length;
  });
  const healthy = logLines().find((l) => l.message === 'services: web is healthy');
  assert.ok(healthy !== undefined, `the node logged web healthy:\n${ctrNode.tail()}`);
  assert.ok(logLines().some((l) => l.message.includes(`containers: ${name} offers web on port ${webPort} (http check every ${CHECK_INTERVAL_MS} ms)`)));
  for (const lb of lbs) {
    const after = backendAt.get(lb.label)! - healthy.time;
    console.log(`[containers-podman] ${lb.label}: backend ${after} ms after the service turned healthy`);
    assert.ok(after <= CHECK_INTERVAL_MS, `${lb.label}: backend ${after} ms after turning healthy (≤ one check interval, ${CHECK_INTERVAL_MS} ms)`);
  }
  // Real traffic reaches it (busybox's answers carry no x-kodama-node; the steady node's do).
  for (const lb of lbs) await until(`${lb.label}: the container answers requests`, 10_000, () => lb.load!.records.some((r) => r.ok && r.node === undefined && r.startMs > backendAt.get(lb.label)!));

  // --- the engine restarts: one line, the container stays a backend (last known set), back after
  const engineDownAt = Date.now();
  process.kill(-live.service!.pid!, 'SIGTERM');
  await until('the node reports the engine away', 10_000, () => logLines().some((l) => l.time >= engineDownAt && l.message.includes('no usable answer from the engine')));
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(logLines().filter((l) => l.time >= engineDownAt && l.message.startsWith('containers:') && l.level !== 'DEBUG').length, 1, `one line while the engine is away, not one per retry:\n${ctrNode.tail()}`);
  for (const lb of lbs) assert.ok(served(lb).includes(`${ctrName}:ready`), `${lb.label}: the container stays a backend while the engine is away: ${served(lb).join()}`);
  await startEngine();
  await until('the node sees the engine again', 20_000, () => logLines().some((l) => l.time >= engineDownAt && l.message.includes('answers again')));

  // In rotation for a while under load.
  await new Promise((r) => setTimeout(r, 1000));

  // --- podman stop: drained while its grace period runs, then gone from every balancer
  const stopAt = Date.now();
  const stopped = await run('podman', ['stop', name], 60_000);
  const stopDoneAt = Date.now();
  assert.equal(stopped.code, 0, `podman stop: ${stopped.stderr}`);
  console.log(`[containers-podman] podman stop took ${stopDoneAt - stopAt} ms`);
  const drained = logLines().find((l) => l.time >= stopAt - 1000 && l.message.includes(`containers: ${name} is stopping: web drains`));
  assert.ok(drained !== undefined, `the node drained web while the container stopped:\n${ctrNode.tail()}`);
  assert.ok(drained.time < stopDoneAt - 1000, 'drained well before the container died (podman stop returns at its death)');
  for (const lb of lbs) await until(`${lb.label}: the container is gone`, 5_000, () => !served(lb).some((b) => b.startsWith(`${ctrName}:`)));
  await until('the node withdrew web', 5_000, () => logLines().some((l) => l.message.includes(`containers: ${name} is gone: web withdrawn`)));
  assert.deepEqual(
    lbs.map((lb) => served(lb)),
    lbs.map(() => ['steady:ready']),
  );
  // A little more load after the removal, then the count.
  await new Promise((r) => setTimeout(r, 1000));
  for (const lb of lbs) {
    const total = await lb.load!.stop();
    const byContainer = lb.load!.records.filter((r) => r.ok && r.node === undefined);
    const lastToContainer = Math.max(...byContainer.map((r) => r.endMs));
    const s = summarise(lb.load!.records, loadFrom);
    console.log(
      `[containers-podman] ${lb.label}: sent ${s.sent}, ok ${s.ok}, failed ${s.failed}; answered by the container ${byContainer.length}, ` +
        `the last ${lastToContainer - stopAt} ms after podman stop began (drain logged ${drained.time - stopAt} ms after); counters ${JSON.stringify(lb.role.counters())}`,
    );
    assert.equal(total.failed, 0, `${lb.label}: failed requests: ${JSON.stringify(total.failures.slice(0, 5))}`);
    assert.ok(byContainer.length > 0 && total.ok > 0);
  }

  // --- a container killed outright (no grace period: nothing to drain): gone from every balancer
  // at its die event; only requests in flight to it at that instant can fail (new connects to
  // the dead port are refused, and both proxies send those to another backend).
  const killPort = await freePort();
  const killName = `kodama-test-web2-${TAG}`;
  containers.push(killName);
  const killLoadFrom = Date.now();
  for (const lb of lbs) lb.load = startLoad({ url: lb.url, concurrency: 4, pauseMs: 5, durationMs: 60_000, timeoutMs: 5000 });
  const ran = await run(
    'podman',
    ['run', ...RUN_FLAGS, '-d', '--name', killName, '--label', 'kodama.service=web', '--label', `kodama.port=${killPort}`, '--label', 'kodama.check=http:/', IMAGE, '/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${killPort}`, '-h', '/www'],
    60_000,
  );
  assert.equal(ran.code, 0, `podman run: ${ran.stderr}`);
  await until('the second container is a ready backend of every balancer', 20_000, () => lbs.every((lb) => served(lb).includes(`${ctrName}:ready`)));
  for (const lb of lbs) await until(`${lb.label}: the second container answers requests`, 10_000, () => lb.load!.records.some((r) => r.ok && r.node === undefined && r.startMs > killLoadFrom));
  const killAt = Date.now();
  const killed = await run('podman', ['kill', killName], 60_000);
  assert.equal(killed.code, 0, `podman kill: ${killed.stderr}`);
  const goneAt = new Map<string, number>();
  await until('the killed container is gone from every balancer', 5_000, () => {
    for (const lb of lbs) if (!goneAt.has(lb.label) && !served(lb).some((b) => b.startsWith(`${ctrName}:`))) goneAt.set(lb.label, Date.now());
    return goneAt.size === lbs.length;
  });
  await new Promise((r) => setTimeout(r, 1000));
  for (const lb of lbs) {
    const total = await lb.load!.stop();
    const gone = goneAt.get(lb.label)!;
    const failed = lb.load!.records.filter((r) => !r.ok);
    const afterGone = lb.load!.records.filter((r) => r.startMs >= gone);
    console.log(
      `[containers-podman] ${lb.label}: podman kill → gone ${gone - killAt} ms after the command began; sent ${total.sent}, failed ${total.failed} ` +
        `${JSON.stringify(failed.map((r) => ({ start: r.startMs - killAt, end: r.endMs - killAt, error: r.error })))}; counters ${JSON.stringify(lb.role.counters())}`,
    );
    // When the process dies exactly is the engine's business (the command takes a while to send
    // SIGKILL): what may fail is what was in flight to it then — one request per client at most
    // (4) — and nothing sent once the balancer had dropped it.
    assert.ok(total.failed <= 4, `${lb.label}: at most the requests in flight at the kill fail (4 clients): ${total.failed}`);
    assert.ok(failed.every((r) => r.startMs >= killAt && r.startMs < gone), `${lb.label}: failures only between the kill and the removal`);
    assert.ok(afterGone.length > 0 && afterGone.every((r) => r.ok && r.node === 'steady'));
  }
});
