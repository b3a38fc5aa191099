// End-to-end traffic scenario for issue 4's "must show" tests: a balancer agent in this process
// (createAgent with `balancer`, profile local) and web nodes as child processes (spawnWebNode:
// a kodama agent offering service `web` + its page), under steady bounded load through the
// balancer's frontend. Every wait is bounded; every child is killed in close() (and on exit).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent, AgentOptions } from '../../src/index.ts';
import { parseBalancerSpec } from '../../src/discovery/balancer-config.ts';
import type { BalancerRole } from '../../src/discovery/balancer-role.ts';
import type { Backend, BalancerSpec } from '../../src/discovery/types.ts';
import { startLoad, summarise } from '../../src/demo/loadgen.ts';
import type { LoadRun, LoadSummary, RequestRecord } from '../../src/demo/loadgen.ts';
import { spawnWebNode } from '../../src/demo/web-node.ts';
import type { SpawnedWebNode } from '../../src/demo/web-node.ts';
import { freePort } from '../lib/agents.ts';

export interface ScenarioOptions {
  driver: 'embedded' | 'haproxy';
  /** Per-request delay of the web pages (ms): keeps requests in flight so drains matter. */
  delayMs?: number;
  drainTimeout?: string;
}

export interface LogLine {
  at: number;
  line: string;
}

export interface Scenario {
  lb: Agent;
  role: BalancerRole;
  spec: BalancerSpec;
  /** The frontend: http://127.0.0.1:<port>/ */
  url: string;
  /** The balancer agent's log lines, stamped with Date.now() on arrival. */
  lines: LogLine[];
  nodes: Map<string, SpawnedWebNode>;
  /** Spawn a web node joined to the balancer. */
  addWeb(name: string): Promise<SpawnedWebNode>;
  /** "id:state" of what the driver serves now. */
  backends(): string[];
  /** Wait (bounded) until the served set satisfies `pred`; returns when it did (Date.now()). */
  waitBackends(what: string, timeoutMs: number, pred: (bs: Backend[]) => boolean): Promise<number>;
  /** First log line (after `since`) matching `re`, waited for (bounded). */
  waitLog(re: RegExp, timeoutMs: number, since?: number): Promise<LogLine>;
  startLoad(durationMs: number): LoadRun;
  close(): Promise<void>;
}

export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function startScenario(opts: ScenarioOptions): Promise<Scenario> {
  const dir = await mkdtemp(join(tmpdir(), 'kodama-traffic-'));
  const port = await freePort();
  const spec = parseBalancerSpec(
    {
      driver: opts.driver,
      services: { web: { bind: `127.0.0.1:${port}`, drain_timeout: opts.drainTimeout ?? '10s', min_backends: 1 } },
      haproxy: { binary: '/usr/sbin/haproxy', dir: join(dir, 'haproxy'), reload_debounce: '500ms' },
    },
    'traffic test',
  );
  const lines: LogLine[] = [];
  const options: AgentOptions = {
    nodeName: 'lb',
    bind: '127.0.0.1:0',
    rpcAddr: null,
    profile: 'local',
    logLevel: 'INFO',
    logSink: (line) => lines.push({ at: Date.now(), line }),
    balancer: spec,
  };
  const lb = createAgent(options);
  const nodes = new Map<string, SpawnedWebNode>();
  const loads: LoadRun[] = [];
  const close = async (): Promise<void> => {
    for (const l of loads) await l.stop().catch(() => undefined);
    for (const n of nodes.values()) n.kill();
    await Promise.all([...nodes.values()].map((n) => n.exited));
    await lb.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await lb.start();
    // The agent starts the role itself when `balancer` is set.
    const role = lb.balancerRole;
    assert.ok(role !== undefined, 'agent.balancerRole is set when AgentOptions.balancer is');
    const seed = `127.0.0.1:${lb.bindAddress.port}`;
    const served = (): Backend[] => role.status()[0]?.backends ?? [];
    return {
      lb,
      role,
      spec,
      url: `http://127.0.0.1:${port}/`,
      lines,
      nodes,
      async addWeb(name) {
        const n = await spawnWebNode({ name, join: seed, delayMs: opts.delayMs ?? 20 });
        nodes.set(name, n);
        return n;
      },
      backends: () => served().map((b) => `${b.id}:${b.state}`),
      waitBackends: (what, timeoutMs, pred) => until(what, timeoutMs, () => (pred(served()) ? Date.now() : undefined)),
      waitLog: (re, timeoutMs, since = 0) => until(`log ${re}`, timeoutMs, () => lines.find((l) => l.at >= since && re.test(l.line))),
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

/** Requests answered by `node` (ok), in start order. */
export function answeredBy(records: readonly RequestRecord[], node: string): RequestRecord[] {
  return records.filter((r) => r.ok && r.node === node);
}

export function fmt(s: LoadSummary): string {
  const nodes = Object.entries(s.byNode)
    .map(([n, c]) => `${n}=${c}`)
    .join(' ');
  return `sent ${s.sent}, ok ${s.ok}, failed ${s.failed}, ${s.requestsPerSec.toFixed(0)} req/s, p50 ${s.p50Ms.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms [${nodes}]`;
}

export interface MustShowFigures {
  firstRequestAfterHealthyMs: number;
  gracefulFailures: number;
  killFailuresBeforeRemoval: number;
  killFailuresAfterRemoval: number;
  detectionMs: number;
}

/**
 * The script both drivers must pass: two web nodes under load; a third joins (first request
 * ≤ 1 s after it turned healthy); web-1 leaves gracefully (0 failures); web-2 is SIGKILLed
 * (failures only until the balancer removed it, none after). Returns the figures.
 */
export async function runMustShow(sc: Scenario, label: string): Promise<MustShowFigures> {
  const [w1, w2] = await Promise.all([sc.addWeb('web-1'), sc.addWeb('web-2')]);
  await sc.waitBackends('web-1 and web-2 ready', 20_000, (bs) => bs.filter((b) => b.state === 'ready').length === 2);
  const load = sc.startLoad(50_000);
  await until('load reaches both nodes', 10_000, () => answeredBy(load.records, 'web-1').length > 0 && answeredBy(load.records, 'web-2').length > 0);

  // --- join: the newcomer's first request within 1 s of turning healthy
  const w3 = await sc.addWeb('web-3');
  const healthyAt = await w3.healthyAt();
  const first = await until('web-3 answers a request', 10_000, () => answeredBy(load.records, 'web-3')[0]);
  const firstAfterHealthyMs = first.endMs - healthyAt;
  console.log(`[${label}] join: web-3 healthy at ${healthyAt}, first answered request ${firstAfterHealthyMs} ms later`);
  assert.ok(firstAfterHealthyMs <= 1000, `first request to web-3 ${firstAfterHealthyMs} ms after it turned healthy (≤ 1000)`);

  // --- graceful leave with drain: 0 failures
  const leaveAt = Date.now();
  const stopped = w1.stop();
  const drainLine = await sc.waitLog(/balancer: web: web-1 \S+ drain$/, 10_000, leaveAt);
  const removedLine = await sc.waitLog(/balancer: web: - web-1 \S+ removed \((idle|drain timeout)\)/, 15_000, leaveAt);
  await stopped;
  await new Promise((r) => setTimeout(r, 300));
  const graceful = summarise(load.records, leaveAt, Date.now());
  console.log(
    `[${label}] graceful leave: drain ${drainLine.at - leaveAt} ms after SIGTERM, ${removedLine.line.replace(/.*removed/, 'removed')} ` +
      `${removedLine.at - leaveAt} ms after; exit code ${w1.exitCode}; window: ${fmt(graceful)}`,
  );
  assert.equal(w1.exitCode, 0);
  assert.equal(graceful.failed, 0, `failures during the graceful leave: ${JSON.stringify(graceful.failures.slice(0, 3))}`);
  assert.ok(graceful.ok > 0);

  // --- kill -9: failures only until the balancer removed it
  const killAt = Date.now();
  w2.kill();
  const gone = await sc.waitLog(/balancer: web: - web-2 \S+ removed \(failed\)/, 20_000, killAt);
  await new Promise((r) => setTimeout(r, 1000));
  // Requests that ended after the kill and started before the removal: in flight to web-2
  // at the kill, or sent while it was still in the set.
  const window = load.records.filter((r) => r.endMs >= killAt && r.startMs < gone.at);
  const before = { failed: window.filter((r) => !r.ok).length, sent: window.length };
  const afterRemoval = summarise(load.records, gone.at, Date.now());
  const detectionMs = gone.at - killAt;
  console.log(
    `[${label}] kill -9 web-2: removed (failed) after ${detectionMs} ms; failed before removal ${before.failed} of ${before.sent}, ` +
      `after removal ${afterRemoval.failed} of ${afterRemoval.sent}`,
  );
  assert.equal(afterRemoval.failed, 0, `failures after web-2 was removed: ${JSON.stringify(afterRemoval.failures.slice(0, 3))}`);
  assert.ok(afterRemoval.ok > 0);
  assert.deepEqual(sc.backends(), ['web-3:ready']);

  const total = await load.stop();
  console.log(`[${label}] whole run: ${fmt(total)}`);
  // Every failure of the run happened in the kill window.
  const stray = load.records.filter((r) => !r.ok && (r.endMs < killAt || r.startMs >= gone.at));
  assert.deepEqual(stray, [], 'no failures outside the kill window');
  return {
    firstRequestAfterHealthyMs: firstAfterHealthyMs,
    gracefulFailures: graceful.failed,
    killFailuresBeforeRemoval: before.failed,
    killFailuresAfterRemoval: afterRemoval.failed,
    detectionMs,
  };
}
