// The deploy e2e cluster: an HAProxy balancer agent (in this process), colour-tagged web nodes
// (in this process: an agent offering `web` + a page we control), a coordinator with a data dir
// and RPC (in this process, or a `kodama agent` child for kill -9), and steady load through
// HAProxy. Every wait is bounded; close() stops everything (also on failure, via t.after).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';
import type { BalancerRole } from '../../src/discovery/balancer-role.ts';
import { startLoad } from '../../src/demo/loadgen.ts';
import type { LoadRun } from '../../src/demo/loadgen.ts';
import { webNodeAgentOptions } from '../../src/demo/web-node.ts';
import { deployCommand } from '../../src/cli/deploy.ts';
import type { DeployState } from '../../src/deploy/types.ts';
import { RpcClient } from '../../src/rpc/index.ts';
import { freePort, startKodama } from '../lib/agents.ts';
import type { AgentProcess } from '../lib/agents.ts';

export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A web page we control: `/` names the node (200, or 500 when failing), `/health` 200 or 503. */
export interface Page {
  port: number;
  requests: number;
  healthy: boolean;
  failing: boolean;
  close(): Promise<void>;
}

async function startPage(node: string): Promise<Page> {
  const page = { port: 0, requests: 0, healthy: true, failing: false, close: async () => undefined } as Page;
  const server: Server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    req.resume();
    if ((req.url ?? '/').startsWith('/health')) {
      res.writeHead(page.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(page.healthy ? 'ok\n' : 'unhealthy\n');
      return;
    }
    page.requests++;
    // A little time in flight, so draining is real.
    setTimeout(() => {
      res.writeHead(page.failing ? 500 : 200, { 'content-type': 'text/plain', 'x-kodama-node': node });
      res.end(`hello from ${node}\n`);
    }, 10);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  page.port = (server.address() as AddressInfo).port;
  page.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return page;
}

export interface WebNode {
  name: string;
  color: string;
  agent: Agent;
  page: Page;
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export interface Cluster {
  lb: Agent;
  role: BalancerRole;
  url: string;
  seed: string;
  dir: string;
  webs: Map<string, WebNode>;
  addWeb(name: string, color: string): Promise<WebNode>;
  /** ready backends as `id:value` of the balancer now. */
  ready(): string[];
  startLoad(durationMs: number): LoadRun;
  close(): Promise<void>;
}

export async function startCluster(prefix: string): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), `kodama-${prefix}-`));
  const port = await freePort();
  const spec = parseBalancerSpec(
    {
      driver: 'haproxy',
      services: { web: { bind: `127.0.0.1:${port}`, drain_timeout: '10s', min_backends: 1 } },
      haproxy: { binary: '/usr/sbin/haproxy', dir: join(dir, 'haproxy'), reload_debounce: '500ms' },
    },
    'deploy test',
  );
  const lb = createAgent({ nodeName: 'lb', bind: '127.0.0.1:0', rpcAddr: null, profile: 'local', logLevel: 'WARN', logSink: () => undefined, balancer: spec });
  const webs = new Map<string, WebNode>();
  const loads: LoadRun[] = [];
  const close = async (): Promise<void> => {
    for (const l of loads) await l.stop().catch(() => undefined);
    for (const w of webs.values()) {
      await w.agent.stop().catch(() => undefined);
      await w.page.close();
    }
    await lb.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await lb.start();
    const role = lb.balancerRole;
    assert.ok(role !== undefined);
    const seed = `127.0.0.1:${lb.bindAddress.port}`;
    return {
      lb,
      role,
      url: `http://127.0.0.1:${port}/`,
      seed,
      dir,
      webs,
      async addWeb(name, color) {
        const page = await startPage(name);
        const agent = createAgent({ ...webNodeAgentOptions({ name, join: [seed], tags: { color } }, page.port), logSink: () => undefined, logLevel: 'WARN' });
        await agent.start();
        const w = { name, color, agent, page };
        webs.set(name, w);
        await until(`${name} healthy`, 10_000, () => agent.serviceStatus().some((s) => s.health === 'healthy'));
        const r = await agent.join([seed]);
        assert.ok(r.num > 0, `${name} joined`);
        return w;
      },
      ready: () =>
        (role.status()[0]?.backends ?? [])
          .filter((b) => b.state === 'ready')
          .map((b) => `${b.id}:${webs.get(b.id)?.color ?? '?'}`)
          .sort(),
      startLoad(durationMs) {
        const l = startLoad({ url: `http://127.0.0.1:${port}/`, concurrency: 4, pauseMs: 5, durationMs, timeoutMs: 5000 });
        loads.push(l);
        return l;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Run `kodama deploy <args>` against the agent at rpcAddr; stdout lines go to onLine as they come. */
export async function cli(rpcAddr: string, args: string[], onLine?: (line: string) => void): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await deployCommand.run([args[0] ?? '', '-rpc-addr', rpcAddr, ...args.slice(1)], {
    stdout: (t) => {
      out += t;
      if (onLine) for (const l of t.split('\n')) if (l !== '') onLine(l);
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
  });
  return { code, out, err };
}

export async function deployStatus(rpcAddr: string): Promise<DeployState | undefined> {
  const c = await RpcClient.connect(rpcAddr, { timeoutMs: 5000 });
  try {
    const st = (await c.call('deploy.status', {})) as { current: DeployState | null };
    return st.current ?? undefined;
  } finally {
    c.close();
  }
}

/** A coordinator as a `kodama agent` child process (so kill -9 is a real death). */
export interface CoordinatorProcess {
  rpcAddr: string;
  proc: AgentProcess;
  /** Its output so far, line by line. */
  readonly lines: string[];
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Same serf and RPC ports on a restart: the node comes back as itself (a new incarnation, no name
 * conflict). `seed` undefined: no -join (a restart that must find the cluster from its snapshot).
 */
export async function spawnCoordinator(name: string, seed: string | undefined, dataDir: string, ports: { rpc: number; serf: number }, args: string[] = []): Promise<CoordinatorProcess> {
  const proc = await startKodama(name, { port: ports.serf, rpcPort: ports.rpc, join: seed === undefined ? [] : [seed], args: ['-data-dir', dataDir, ...args], logLevel: 'info' });
  return {
    rpcAddr: proc.rpcAddr,
    proc,
    get lines() {
      return proc.output().split('\n');
    },
    kill9: () => proc.kill(),
    stop: () => proc.stop(),
  };
}

/** Moments the balancer served both colours, sampled every 25 ms until stopped. */
export interface MixtureSampler {
  mixtures: string[];
  samples(): number;
  stop(): void;
}

/**
 * The starting point of a cutover: blue web nodes b1, b2 served (the route blue=100, green=0 set
 * through `rpcAddr`), green nodes g1, g2 advertised but not served; then the ready set is sampled
 * every 25 ms for any moment both colours are in it.
 */
export async function blueServedGreenKnown(c: Cluster, rpcAddr: string): Promise<MixtureSampler> {
  await c.addWeb('b1', 'blue');
  await c.addWeb('b2', 'blue');
  const r0 = await cli(rpcAddr, ['route', '-service', 'web', 'blue=100', 'green=0']);
  assert.equal(r0.code, 0, r0.err);
  await until('the balancer has the route', 10_000, () => c.lb.routes.get('web')?.by === 'manual');
  await c.addWeb('g1', 'green');
  await c.addWeb('g2', 'green');
  await until('blue ready, green known but not served', 15_000, () => c.ready().join(' ') === 'b1:blue b2:blue' && c.lb.members().filter((m) => m.tags['color'] === 'green' && m.tags['s:web']).length === 2);

  const mixtures: string[] = [];
  let samples = 0;
  const sampler = setInterval(() => {
    samples++;
    const r = c.ready();
    if (r.some((x) => x.endsWith(':blue')) && r.some((x) => x.endsWith(':green'))) mixtures.push(`${Date.now()} ${r.join(' ')}`);
  }, 25);
  return { mixtures, samples: () => samples, stop: () => clearInterval(sampler) };
}
