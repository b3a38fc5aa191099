// One process = one web node of the demo: a kodama agent that offers service `web` (checked over
// HTTP every 250 ms) plus the tiny page it balances. `kodama demo web-node` runs it; the demo,
// the traffic tests and the proxy bench start it through spawnWebNode(), so that a SIGKILL is a
// real node death (no goodbye on the wire, sockets reset by the kernel).
//
// Protocol with the parent: exactly one JSON line {"node","port","serf"} on stdout once the page
// listens and the agent has joined; then the agent's log lines. One extra line
// `… [INFO] demo: web healthy at=<epoch ms>` gives the exact moment the service turned healthy
// (the agent's own timestamps have one-second resolution).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createAgent } from '../index.ts';
import type { Agent, AgentOptions } from '../index.ts';
import type { ServiceSpec } from '../discovery/types.ts';
import { formatTimestamp } from '../agent/log.ts';
import { startWebServer } from './web-server.ts';
import type { WebServer } from './web-server.ts';

export const WEB_SERVICE = 'web';
/** Long enough for a balancer to see `,drain` and let in-flight requests finish. */
export const WEB_LEAVE_DRAIN_MS = 1500;
const HEALTHY_MARK = 'demo: web healthy at=';

export interface WebNodeOptions {
  name: string;
  /** Seeds `host:port` (the balancer's gossip address). */
  join: string[];
  /** Page port (0 = free). */
  port?: number;
  /** Gossip bind port (0 = free). */
  serfPort?: number;
  /** Per-request delay of the page (ms): keeps requests in flight so draining is visible. */
  delayMs?: number;
  /** RPC address, or null (default) for none. */
  rpcAddr?: string | null;
  logSink?: (line: string) => void;
  /** Called with Date.now() each time service `web` turns healthy. */
  onHealthy?: (atMs: number) => void;
  /** Extra node tags (e.g. `{ color: 'blue' }` for blue-green deploys); `role` stays `web` unless given. */
  tags?: Record<string, string>;
}

/** What createAgent needs for one web node (services/leaveDrainMs per issue 4's AgentOptions). */
export function webNodeAgentOptions(opts: WebNodeOptions, pagePort: number): AgentOptions {
  const service: ServiceSpec = {
    name: WEB_SERVICE,
    port: pagePort,
    protocol: 'http',
    weight: 100,
    tags: [],
    checks: [{ kind: 'http', path: '/health', expectStatus: 200, intervalMs: 250, timeoutMs: 500, rise: 1, fall: 2 }],
  };
  return {
    nodeName: opts.name,
    bind: `127.0.0.1:${opts.serfPort ?? 0}`,
    profile: 'local',
    rpcAddr: opts.rpcAddr ?? null,
    tags: { role: 'web', ...(opts.tags ?? {}) },
    services: [service],
    // As `kodama agent` does by default: `kodama metrics -role web` and the dashboard read it.
    metricsIntervalMs: 10_000,
    // One monitoring check, so `kodama checks` and the dashboard's checks panel have something
    // real to show (history, state) in the demo.
    checks: [
      {
        name: 'page',
        probe: { kind: 'http', path: '/health', expectStatus: 200, timeoutMs: 1000 },
        target: { host: '127.0.0.1', port: pagePort },
        intervalMs: 2000,
        subscriptions: ['role=web'],
        ttlStatus: 2,
        lowFlapThreshold: 20,
        highFlapThreshold: 30,
      },
    ],
    leaveDrainMs: WEB_LEAVE_DRAIN_MS,
    ...(opts.logSink ? { logSink: opts.logSink } : {}),
  };
}

/** How long a web node waits for its service to turn healthy before joining anyway. */
export const JOIN_HEALTHY_WAIT_MS = 5000;

function serviceHealthy(agent: Agent): boolean {
  return agent.serviceStatus().some((s) => s.name === WEB_SERVICE && s.health === 'healthy');
}

export interface RunningWebNode {
  agent: Agent;
  web: WebServer;
  /** Graceful: drain + leave (the agent does the drain), stop the agent, close the page. */
  shutdown(graceful: boolean): Promise<void>;
}

/** Start page + agent in this process and join. Throws (after cleaning up) if the join fails. */
export async function startWebNode(opts: WebNodeOptions): Promise<RunningWebNode> {
  const web = await startWebServer({ node: opts.name, port: opts.port ?? 0, delayMs: opts.delayMs ?? 0 });
  let agent: Agent;
  try {
    agent = createAgent(webNodeAgentOptions(opts, web.port));
    const onHealthy = opts.onHealthy;
    if (onHealthy !== undefined) {
      agent.on('service', (e) => {
        if (e.name === WEB_SERVICE && e.health === 'healthy') onHealthy(e.at);
      });
    }
    await agent.start();
  } catch (e) {
    await web.close();
    throw e;
  }
  // Join once the page passes its check (bounded): the join's push/pull then carries our
  // service tag to the seed at once. A tag set after the join travels by gossip alone, and with
  // the local profile's two retransmits per node it misses a node now and then until the next
  // push/pull (15 s) — a newcomer would wait that long for traffic.
  const healthyBy = Date.now() + JOIN_HEALTHY_WAIT_MS;
  while (!serviceHealthy(agent) && Date.now() < healthyBy) await new Promise((r) => setTimeout(r, 25));
  if (opts.join.length > 0) {
    const r = await agent.join(opts.join);
    if (r.num === 0) {
      await agent.stop();
      await web.close();
      throw new Error(`web node ${opts.name} could not join ${opts.join.join(', ')}: ${r.errors.join('; ')}`);
    }
  }
  let done: Promise<void> | undefined;
  return {
    agent,
    web,
    shutdown(graceful) {
      done ??= (async () => {
        if (graceful) {
          try {
            await agent.leave();
          } catch {
            // already leaving: fall through to stop
          }
        }
        await agent.stop();
        await web.close();
      })();
      return done;
    },
  };
}

/** `kodama demo web-node` body: runs until SIGTERM/SIGINT (graceful) or stdin closes (parent gone). */
export async function runWebNodeProcess(
  opts: WebNodeOptions & { watchStdin?: boolean },
  out: { stdout(t: string): void; stderr(t: string): void },
): Promise<number> {
  // Lines logged while starting wait until the JSON line is out (the parent reads it first).
  let pending: string[] | undefined = [];
  const emit = (text: string): void => {
    if (pending !== undefined) pending.push(text);
    else out.stdout(text);
  };
  const logLine = (line: string): void => emit(`${line}\n`);
  const onHealthy = (atMs: number): void => emit(`${formatTimestamp(new Date(atMs))} [INFO] ${HEALTHY_MARK}${atMs}\n`);
  let node: RunningWebNode;
  try {
    node = await startWebNode({ ...opts, logSink: logLine, onHealthy });
  } catch (e) {
    for (const l of pending ?? []) out.stderr(l);
    out.stderr(`demo web-node: ${(e as Error).message}\n`);
    return 1;
  }
  const serf = node.agent.bindAddress;
  out.stdout(`${JSON.stringify({ node: opts.name, port: node.web.port, serf: `${serf.ip}:${serf.port}` })}\n`);
  for (const l of pending ?? []) out.stdout(l);
  pending = undefined;

  return new Promise<number>((resolve) => {
    let leaving = false;
    const finish = (graceful: boolean, hardCapMs: number): void => {
      if (leaving) {
        // Second signal: stop waiting.
        resolve(1);
        return;
      }
      leaving = true;
      const cap = setTimeout(() => resolve(1), hardCapMs);
      cap.unref();
      void node.shutdown(graceful).then(
        () => {
          clearTimeout(cap);
          resolve(0);
        },
        (e: unknown) => {
          out.stderr(`demo web-node: ${(e as Error).message}\n`);
          clearTimeout(cap);
          resolve(1);
        },
      );
    };
    const onSignal = (): void => finish(true, 15_000);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (opts.watchStdin === true) {
      // The parent holds our stdin: when it dies (even by SIGKILL) the pipe closes. Leave quickly.
      process.stdin.on('end', () => finish(true, 5000));
      process.stdin.on('close', () => finish(true, 5000));
      process.stdin.resume();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent side.

export interface SpawnWebNodeOptions {
  name: string;
  /** One seed `host:port` (or several). */
  join: string | string[];
  delayMs?: number;
  port?: number;
  /** Every line the child prints after its JSON line (stdout and stderr). */
  logSink?: (line: string) => void;
  /** Bound on the child's start (node start + join), default 30 s. */
  startTimeoutMs?: number;
}

export interface SpawnedWebNode {
  node: string;
  /** Page port on 127.0.0.1. */
  port: number;
  /** Gossip address `ip:port`. */
  serf: string;
  pid: number;
  proc: ChildProcess;
  /** Date.now() when its service `web` turned healthy (bounded wait, 20 s). */
  healthyAt(): Promise<number>;
  /** SIGKILL: node death. */
  kill(): void;
  /** SIGTERM (graceful drain + leave), wait for the exit (SIGKILL after 20 s). */
  stop(): Promise<void>;
  readonly exitCode: number | null;
  /** Resolves with the exit code (or -1 when killed by a signal). */
  readonly exited: Promise<number>;
}

/** bin/kodama, found above this module: two levels from src/demo, one or two from dist/. */
const KODAMA_BIN = findBin();

function findBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'kodama'))) return join(dir, 'bin', 'kodama');
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'kodama');
}
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLive(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Start a web node as a child process; resolves once it printed its JSON line. */
export function spawnWebNode(opts: SpawnWebNodeOptions): Promise<SpawnedWebNode> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killLive);
  }
  const joins = Array.isArray(opts.join) ? opts.join : [opts.join];
  const args = ['demo', 'web-node', '--name', opts.name, '--port', String(opts.port ?? 0), '--watch-stdin'];
  for (const j of joins) args.push('--join', j);
  if (opts.delayMs !== undefined) args.push('--delay-ms', String(opts.delayMs));
  // The bin itself, not `node bin/kodama`: its shebang carries the node flags (bin/kodama).
  const proc = spawn(KODAMA_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  const sink = opts.logSink ?? (() => {});
  const exited = new Promise<number>((resolve) => {
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code ?? -1);
    });
  });
  let healthyAt: number | undefined;
  const healthyWaiters: ((t: number) => void)[] = [];
  const markHealthy = (t: number): void => {
    if (healthyAt !== undefined) return;
    healthyAt = t;
    for (const w of healthyWaiters.splice(0)) w(t);
  };
  const stderrTail: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
    sink(line);
  });

  return new Promise<SpawnedWebNode>((resolve, reject) => {
    let started = false;
    const startTimer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`web node ${opts.name} did not start within ${opts.startTimeoutMs ?? 30_000} ms`));
    }, opts.startTimeoutMs ?? 30_000);
    void exited.then((code) => {
      if (started) return;
      clearTimeout(startTimer);
      reject(new Error(`web node ${opts.name} exited ${code} before starting: ${stderrTail.join(' | ')}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      // The service may turn healthy before the join finished (and the JSON line went out).
      const mark = line.indexOf(HEALTHY_MARK);
      if (mark >= 0) {
        markHealthy(Number(line.slice(mark + HEALTHY_MARK.length)));
        return;
      }
      if (!started) {
        let info: { node: string; port: number; serf: string };
        try {
          info = JSON.parse(line) as { node: string; port: number; serf: string };
        } catch {
          sink(line);
          return;
        }
        started = true;
        clearTimeout(startTimer);
        resolve(handle(info));
        return;
      }
      sink(line);
    });
    let exitCode: number | null = null;
    void exited.then((c) => {
      exitCode = c;
    });
    const handle = (info: { node: string; port: number; serf: string }): SpawnedWebNode => ({
      node: info.node,
      port: info.port,
      serf: info.serf,
      pid: proc.pid ?? -1,
      proc,
      get exitCode() {
        return exitCode;
      },
      exited,
      healthyAt() {
        if (healthyAt !== undefined) return Promise.resolve(healthyAt);
        return new Promise<number>((res, rej) => {
          const t = setTimeout(() => rej(new Error(`web node ${opts.name} did not turn healthy within 20 s`)), 20_000);
          healthyWaiters.push((v) => {
            clearTimeout(t);
            res(v);
          });
        });
      },
      kill() {
        if (exitCode === null) proc.kill('SIGKILL');
      },
      async stop() {
        if (exitCode !== null) return;
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(t);
      },
    });
  });
}
