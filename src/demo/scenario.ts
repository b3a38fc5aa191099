// `kodama demo`: the balancer agent runs in this process (embedded proxy or HAProxy), three web
// nodes run as child processes (spawnWebNode), a light steady load goes through the balancer's
// frontend, and a script plays: web-4 joins, web-2 leaves gracefully, web-3 is killed. Each step
// says what it expects and whether it happened; --once turns that into the exit code.
// The balancer also serves the HTTP API and the dashboard (its URL is printed); -no-script skips
// the script and keeps the three web nodes serving, for a person (or the dashboard's end-to-end
// test) to watch and to kill nodes by the pids it prints.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { createAgent } from '../index.ts';
import type { Agent, AgentOptions } from '../index.ts';
import { parseBalancerSpec } from '../discovery/balancer-config.ts';
import type { BalancerSpec } from '../discovery/types.ts';
import type { CliIo } from '../cli/io.ts';
import { startLoad, summarise } from './loadgen.ts';
import type { LoadRun, RequestRecord } from './loadgen.ts';
import { LiveView, Printer, describeBackends } from './live-view.ts';
import type { RoleView } from './live-view.ts';
import { WEB_SERVICE, spawnWebNode } from './web-node.ts';
import type { SpawnedWebNode } from './web-node.ts';

export interface DemoOptions {
  once: boolean;
  haproxy: boolean;
  haproxyBinary: string;
  /** Frontend port, 0 = a free one. */
  port: number;
  /** Page answer delay (ms): requests stay in flight long enough to see draining. */
  delayMs: number;
  /** false (-no-script): start the cluster and the load, then only the live view until interrupted. */
  script: boolean;
  /** The balancer's HTTP API + dashboard `host:port`; undefined = DEFAULT_HTTP_ADDR, or a free port if taken. */
  httpAddr?: string;
}

/** Where the demo's dashboard is served unless -http-addr says otherwise (a free port if taken). */
export const DEFAULT_HTTP_ADDR = '127.0.0.1:8500';

/** A new backend must get its first request this soon after it turns healthy (the issue's bound). */
export const FIRST_REQUEST_BOUND_MS = 1000;
const SETUP_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;
/** Load: a few workers with a pause — every backend gets traffic, the CPU stays free. */
const LOAD = { concurrency: 4, pauseMs: 10, timeoutMs: 3000 };

/** Live mode replaces its load run this often (records are kept per run). */
const LIVE_LOAD_RUN_MS = 5 * 60_000;

class Aborted extends Error {}

interface Expectation {
  step: string;
  ok: boolean;
  detail: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether `host:port` can be bound right now (a probe: someone may take it before we do). */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * Creates and starts the balancer agent with its HTTP API. With no -http-addr it takes
 * DEFAULT_HTTP_ADDR when free, else a free port; another process may grab 8500 between the probe
 * and the bind (two demos started at once), so a failed start on the default address is retried
 * on port 0. `track` learns every agent created, so the caller's cleanup stops it whatever happens.
 */
async function startBalancerAgent(
  optsFor: (httpAddr: string) => AgentOptions,
  given: string | undefined,
  track: (a: Agent) => void,
): Promise<Agent> {
  const [defHost, defPort] = DEFAULT_HTTP_ADDR.split(':') as [string, string];
  const first = given ?? ((await portFree(defHost, Number(defPort))) ? DEFAULT_HTTP_ADDR : `${defHost}:0`);
  const a = createAgent(optsFor(first));
  track(a);
  try {
    await a.start();
    return a;
  } catch (e) {
    if (given !== undefined || first !== DEFAULT_HTTP_ADDR || !/EADDRINUSE/.test(String((e as Error).message))) throw e;
  }
  await a.stop();
  const b = createAgent(optsFor(`${defHost}:0`));
  track(b);
  await b.start();
  return b;
}

/** The dashboard's URL as the browser should open it (the bound port, not the asked one). */
function dashboardUrl(a: Agent): string {
  const http = a.http;
  if (http === undefined) throw new Error('the balancer agent started no HTTP API (agent.http is missing)');
  return http.url('/ui/');
}

/** undefined when HAProxy runs, else the text telling how to get it. */
function haproxyMissing(binary: string): string | undefined {
  const r = spawnSync(binary, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error === undefined && r.status === 0) return undefined;
  const why = r.error !== undefined ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : `exit ${r.status}`;
  return (
    `kodama demo --haproxy: cannot run HAProxy ("${binary}": ${why}).\n` +
    '  Install it (Debian/Ubuntu: sudo apt-get install haproxy), or pass -haproxy-binary=/path/to/haproxy,\n' +
    '  or run `kodama demo` without --haproxy to use the embedded proxy (nothing to install).\n'
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted === true) {
      reject(new Aborted());
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Aborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Poll `cond` every 50 ms until true (→ Date.now() when seen) or `timeoutMs` (→ undefined). */
async function waitUntil(cond: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return Date.now();
    if (Date.now() > deadline) return undefined;
    await sleep(50, signal);
  }
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export async function runDemo(opts: DemoOptions, io: CliIo): Promise<number> {
  if (opts.haproxy) {
    const missing = haproxyMissing(opts.haproxyBinary);
    if (missing !== undefined) {
      io.stderr(missing);
      return 1;
    }
  }
  // Ctrl-C (the CLI's interrupt) or SIGTERM: stop the script, then clean up every node and
  // HAProxy (dying on SIGTERM's default action would orphan HAProxy's master).
  const stop = new AbortController();
  const interrupt = io.interrupt?.();
  interrupt?.addEventListener('abort', () => stop.abort(), { once: true });
  const onTerm = (): void => stop.abort();
  process.once('SIGTERM', onTerm);
  const signal = stop.signal;
  const dir = mkdtempSync(join(tmpdir(), 'kodama-demo-'));
  const p = new Printer((t) => io.stdout(t));
  const logs: WriteStream[] = [];
  const openLog = (name: string): ((line: string) => void) => {
    const w = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
    logs.push(w);
    return (line) => w.write(`${line}\n`);
  };
  const nodes = new Map<string, SpawnedWebNode>();
  let agent: Agent | undefined;
  let load: LoadRun | undefined;
  let view: LiveView | undefined;
  const expectations: Expectation[] = [];
  let failure: string | undefined;
  let keepLogs = false;

  const expect = (step: string, ok: boolean, detail: string): void => {
    expectations.push({ step, ok, detail });
    p.line(`${ok ? 'ok  ' : 'FAIL'} ${step}: ${detail}`);
  };

  try {
    const port = opts.port === 0 ? await freePort() : opts.port;
    const spec: BalancerSpec = parseBalancerSpec(
      {
        driver: opts.haproxy ? 'haproxy' : 'embedded',
        services: { [WEB_SERVICE]: { bind: `127.0.0.1:${port}`, mode: 'http', min_backends: 1, drain_timeout: '5s' } },
        haproxy: { binary: opts.haproxyBinary, dir: join(dir, 'haproxy'), reload_debounce: '500ms' },
      },
      'kodama demo',
    );
    const url = `http://127.0.0.1:${port}/`;

    // The balancer node: a plain agent with the balancer role (it starts the role itself) and the
    // HTTP API + dashboard.
    const balancerLog = openLog('balancer');
    const agentOpts = (httpAddr: string): AgentOptions => ({
      nodeName: 'balancer',
      bind: '127.0.0.1:0',
      profile: 'local',
      rpcAddr: null,
      httpAddr,
      tags: { role: 'balancer' },
      balancer: spec,
      // As `kodama agent` does by default: the dashboard's "Roles over time" reads it.
      metricsIntervalMs: 10_000,
      logSink: (line) => {
        balancerLog(line);
        // Warnings and errors (guard holds, driver trouble) belong in the live view.
        if (/\[(WARN|ERR)\]/.test(line)) p.line(`balancer log: ${line.slice(20)}`);
      },
    });
    const a = await startBalancerAgent(agentOpts, opts.httpAddr, (created) => (agent = created));
    const dashboard = dashboardUrl(a);
    p.raw(
      `kodama demo: one balancer, three web nodes, all on 127.0.0.1 (logs: ${dir})\n` +
        `  balancer: ${opts.haproxy ? 'HAProxy' : 'embedded proxy'} listening on ${url} for service "${WEB_SERVICE}"\n` +
        `  dashboard: ${dashboard}\n` +
        `  load: ${LOAD.concurrency} clients, keep-alive, ${LOAD.pauseMs} ms pause; every page answers after ${opts.delayMs} ms\n\n`,
    );
    const roleOf = (): RoleView | undefined => a.balancerRole;
    if (roleOf() === undefined) throw new Error('the balancer agent did not start its balancer role (agent.balancerRole is missing)');
    const seed = `${a.bindAddress.ip}:${a.bindAddress.port}`;
    p.line(`balancer node up, gossip on ${seed}`);
    let records: readonly RequestRecord[] = [];
    const v = new LiveView({ agent: a, role: roleOf, service: WEB_SERVICE, records: () => records, printer: p, terminal: io.terminal === true });
    view = v;

    const spawn = async (name: string): Promise<SpawnedWebNode> => {
      const n = await spawnWebNode({ name, join: seed, delayMs: opts.delayMs, logSink: openLog(name) });
      nodes.set(name, n);
      p.line(`${name} started: pid ${n.pid}, page on 127.0.0.1:${n.port}, gossip on ${n.serf}`);
      return n;
    };
    const ready = (name: string): boolean => v.backends().some((b) => b.id === name && b.state === 'ready');
    const present = (name: string): boolean => v.backends().some((b) => b.id === name);

    // ---- setup: three web nodes, then the load.
    p.line('starting web-1, web-2, web-3 ...');
    await Promise.all(['web-1', 'web-2', 'web-3'].map((n) => spawn(n)));
    const allIn = await waitUntil(() => ['web-1', 'web-2', 'web-3'].every(ready), SETUP_TIMEOUT_MS, signal);
    if (allIn === undefined) {
      throw new Error(`web-1..3 did not all become ready backends within ${s(SETUP_TIMEOUT_MS)}; backends: ${describeBackends(v.backends())}`);
    }
    const newLoad = (): LoadRun =>
      startLoad({ url, concurrency: LOAD.concurrency, pauseMs: LOAD.pauseMs, timeoutMs: LOAD.timeoutMs, durationMs: opts.once ? 120_000 : LIVE_LOAD_RUN_MS + 60_000 });
    load = newLoad();
    records = load.records;
    const loadStart = Date.now();
    await sleep(2500, signal);
    {
      const sum = summarise(records, loadStart);
      const missing = ['web-1', 'web-2', 'web-3'].filter((n) => (sum.byNode[n] ?? 0) === 0);
      expect(
        'steady load',
        missing.length === 0 && sum.failed === 0,
        `${sum.ok} answers in 2.5 s from ${Object.keys(sum.byNode).sort().join(', ')}` +
          (missing.length > 0 ? `; no answer from ${missing.join(', ')}` : '') +
          `; ${plural(sum.failed, 'failed request')} (expected every node answering, 0 failed)`,
      );
    }
    p.line(`cluster ready: ${[...nodes.values()].sort((x, y) => x.node.localeCompare(y.node)).map((n) => `${n.node} pid ${n.pid}`).join(', ')}; dashboard: ${dashboard}`);

    // The script (skipped with -no-script: the cluster and the load just keep running).
    if (opts.script) {
      const countersBefore = { ...(roleOf()?.counters() ?? {}) };

      // ---- step 1: web-4 joins → traffic soon after it turns healthy.
      p.raw('\n');
      p.line(`STEP 1: web-4 joins. Expected: its first request within ${s(FIRST_REQUEST_BOUND_MS)} of turning healthy`);
      const web4 = await spawn('web-4');
      const healthyAt = await web4.healthyAt();
      p.line(`web-4 turned healthy at ${p.secs(healthyAt)} s (it joins once its page passes the check)`);
      const firstSeen = await waitUntil(() => records.some((r) => r.ok && r.node === 'web-4'), STEP_TIMEOUT_MS, signal);
      if (firstSeen === undefined) {
        expect('web-4 joins', false, `web-4 got no request within ${s(STEP_TIMEOUT_MS)} of turning healthy; backends: ${describeBackends(v.backends())}`);
      } else {
        // The answer's end time bounds the moment the proxy picked web-4 from above.
        const first = records.find((r) => r.ok && r.node === 'web-4')!;
        const afterMs = first.endMs - healthyAt;
        expect(
          'web-4 joins',
          afterMs <= FIRST_REQUEST_BOUND_MS,
          `web-4 took its first request ${s(Math.max(0, afterMs))} after turning healthy (bound ${s(FIRST_REQUEST_BOUND_MS)})`,
        );
      }
      await sleep(1500, signal);

      // ---- step 2: web-2 leaves gracefully → drained, 0 failed requests.
      p.raw('\n');
      p.line('STEP 2: web-2 leaves gracefully (SIGTERM). Expected: drained first, 0 failed requests');
      const web2 = nodes.get('web-2')!;
      const leaveAt = Date.now();
      let drainSeenAt: number | undefined;
      let goneSeenAt: number | undefined;
      const drainWatch = setInterval(() => {
        drainSeenAt ??= v.backends().some((b) => b.id === 'web-2' && b.state === 'drain') ? Date.now() : undefined;
        goneSeenAt ??= present('web-2') ? undefined : Date.now();
      }, 25);
      await web2.stop();
      const exitedAt = Date.now();
      await waitUntil(() => goneSeenAt !== undefined, STEP_TIMEOUT_MS, signal);
      clearInterval(drainWatch);
      const goneAt = goneSeenAt;
      await sleep(1000, signal);
      {
        const sum = summarise(records, leaveAt, Date.now());
        const lastToWeb2 = records.filter((r) => r.node === 'web-2').reduce((m, r) => Math.max(m, r.endMs), 0);
        const parts = [
          `exit code ${web2.exitCode}`,
          drainSeenAt !== undefined ? `set to drain after ${s(drainSeenAt - leaveAt)}` : 'never seen in drain state',
          goneAt !== undefined ? `removed after ${s(goneAt - leaveAt)}` : `still a backend after ${s(STEP_TIMEOUT_MS)}`,
          `last answer ${s(Math.max(0, exitedAt - lastToWeb2))} before it exited`,
          `${plural(sum.failed, 'failed request')} of ${sum.sent}`,
        ];
        expect('web-2 leaves', web2.exitCode === 0 && goneAt !== undefined && sum.failed === 0, `web-2 drained: ${parts.join(', ')}`);
      }

      // ---- step 3: web-3 killed → failures only until the balancer removes it.
      p.raw('\n');
      p.line('STEP 3: web-3 is killed (SIGKILL). Expected: failures only until the balancer removes it, none after');
      const web3 = nodes.get('web-3')!;
      const retriesBefore = roleOf()?.counters().retries;
      const killAt = Date.now();
      web3.kill();
      const removedAt = await waitUntil(() => !present('web-3'), STEP_TIMEOUT_MS, signal);
      if (removedAt === undefined) {
        expect('web-3 killed', false, `web-3 still a backend ${s(STEP_TIMEOUT_MS)} after it was killed`);
      } else {
        await sleep(2000, signal);
        // A request counts against the window it was sent in.
        const before = records.filter((r) => !r.ok && r.endMs >= killAt && r.startMs < removedAt).length;
        const afterSum = summarise(records, removedAt, Date.now());
        const retriesAfter = roleOf()?.counters().retries;
        // The embedded proxy counts connects it retried on another backend (HAProxy's redispatch is not counted here).
        const retried = retriesBefore !== undefined && retriesAfter !== undefined ? `; the proxy retried ${plural(retriesAfter - retriesBefore, 'connect')} on other backends` : '';
        expect(
          'web-3 killed',
          afterSum.failed === 0 && afterSum.ok > 0,
          `${plural(before, 'request')} failed before the balancer removed it after ${s(removedAt - killAt)}, ` +
            `${afterSum.failed} after (${afterSum.ok} answered since, by ${Object.keys(afterSum.byNode).sort().join(', ') || 'nobody'})${retried}`,
        );
      }

      // ---- the rest of the run: nothing failed outside the kill window; HAProxy not reloaded.
      {
        const failedOutside = records.filter((r) => !r.ok && !(r.endMs >= killAt && r.startMs < (removedAt ?? Infinity))).length;
        expect('whole run', failedOutside === 0, `${plural(failedOutside, 'failed request')} outside the kill window of web-3 (expected 0)`);
        if (opts.haproxy) {
          const after = roleOf()?.counters() ?? {};
          if (after.reloads === undefined) expect('haproxy', false, `the driver counts no reloads (counters: ${Object.keys(after).join(', ')})`);
          else {
            const n = after.reloads - (countersBefore.reloads ?? 0);
            expect('haproxy', n === 0, `HAProxy reloaded ${plural(n, 'time')} for these joins and leaves (expected 0: runtime API only)`);
          }
        }
      }

      const failed = expectations.filter((e) => !e.ok);
      const total = summarise(records);
      p.raw(
        `\nSummary: ${total.sent} requests, ${total.failed} failed; answers by node: ` +
          Object.entries(total.byNode)
            .sort((x, y) => x[0].localeCompare(y[0]))
            .map(([n, c]) => `${n} ${c}`)
            .join(', ') +
          `\n${failed.length === 0 ? 'All expectations held.' : `${plural(failed.length, 'expectation')} did not hold: ${failed.map((e) => e.step).join('; ')}`}\n`,
      );
      if (failed.length > 0) {
        failure = failed.map((e) => `${e.step}: ${e.detail}`).join('\n  ');
        keepLogs = true;
      }
    }

    if (!opts.once) {
      const serving = opts.script ? 'continues (web-1 and web-4 serve)' : '(no script: web-1, web-2 and web-3 serve)';
      p.raw(`\nLive view ${serving}; dashboard: ${dashboard}\nPress Ctrl-C to stop every node and exit.\n\n`);
      // A fresh load run now and then, so the records (one per request) do not grow for ever.
      for (;;) {
        try {
          await sleep(LIVE_LOAD_RUN_MS, signal);
        } catch (e) {
          if (e instanceof Aborted) break;
          throw e;
        }
        const old = load;
        load = newLoad();
        records = load.records;
        await old.stop();
      }
      p.raw('\nInterrupted: stopping the web nodes and the balancer ...\n');
      failure = undefined;
    }
  } catch (e) {
    if (e instanceof Aborted) {
      p.raw('\nInterrupted: stopping the web nodes and the balancer ...\n');
      if (opts.once) failure = 'interrupted';
    } else {
      failure = (e as Error).message;
      keepLogs = true;
    }
  } finally {
    view?.mute();
    view?.stop();
    await load?.stop();
    // The demo is over: no need to wait for graceful leaves.
    for (const n of nodes.values()) n.kill();
    await Promise.all([...nodes.values()].map((n) => n.exited));
    await agent?.stop();
    await Promise.all(logs.map((w) => new Promise<void>((r) => w.end(r))));
    process.off('SIGTERM', onTerm);
    if (!keepLogs) rmSync(dir, { recursive: true, force: true });
  }
  if (failure !== undefined) {
    io.stderr(`kodama demo failed: ${failure}\n${keepLogs ? `  logs kept in ${dir}\n` : ''}`);
    return 1;
  }
  return 0;
}
