// The deploy coordinator's I/O half: ticks the pure machine (core.ts), feeds it members, the
// service's route and the balancers' reports (query `kodama-backends`), publishes the routes it
// asks for, persists every transition (state-file.ts) and answers the `deploy.*` RPC ops.
//
// One deploy at a time per coordinator. On start, a persisted non-final deploy is resumed once
// the agent has rejoined (its Lamport clock must have caught up with the cluster, or the
// re-published route would lose to older ones).

import { decodeBalancerReport } from '../discovery/backends-report.ts';
import { abort, buildSpec, isFinal, newDeploy, published, publishFailed, resumeDeploy, rollback, step } from './core.ts';
import type { Action, DeployRequest, Machine, MemberObs } from './core.ts';
import { DeployError } from './errors.ts';
import { loadDeploys, removeStaleTemps, saveDeploys } from './state-file.ts';
import { BACKENDS_QUERY, BALANCER_TAG, DEFAULT_ROUTE_TAG } from './types.ts';
import type { BalancerReport, DeploySpec, DeployState, RouteEntry, RouteSetting } from './types.ts';

/** What the runner needs of an agent (Agent implements it). */
export interface DeployAgent {
  readonly nodeName: string;
  members(): MemberObs[];
  readonly routes: { get(service: string): RouteEntry | undefined };
  publishRoute(s: RouteSetting): Promise<RouteEntry>;
  query(opts: {
    name: string;
    payload: Uint8Array;
    filterTags?: Record<string, string>;
    timeoutMs?: number;
    onResponse?: (from: string, payload: Uint8Array) => void;
  }): Promise<unknown>;
  registerCall(op: string, fn: (args: unknown) => Promise<unknown>): () => void;
  readonly logger: { log(level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void };
}

export interface DeployRunner {
  start(req: Partial<DeploySpec> & { service: string; from: string; to: string }): Promise<DeployState>;
  /** The running deploy, or the last finished one. */
  current(): DeployState | undefined;
  history(): DeployState[];
  abort(reason?: string): Promise<DeployState>;
  rollback(reason?: string): Promise<DeployState>;
  stop(): Promise<void>;
}

export interface DeployRunnerOptions {
  dataDir: string;
  /** How often the machine looks (default 250 ms). */
  tickMs?: number;
  /** Deadline of one balancer-report query round (default 1000 ms). */
  queryTimeoutMs?: number;
  /** How long a resume waits for the agent to rejoin before it goes on anyway (default 5000 ms). */
  resumeWaitMs?: number;
}

export const DEPLOY_OPS = ['deploy.start', 'deploy.status', 'deploy.abort', 'deploy.rollback', 'deploy.route'] as const;

/** `lb` tag values listing the service (`web`, `api,web`, …): an unanchored Serf filter, anchored here. */
export function balancerFilter(service: string): string {
  const esc = service.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return `(^|,)${esc}(,|$)`;
}

export async function startDeployRunner(agent: DeployAgent, opts: DeployRunnerOptions): Promise<DeployRunner> {
  const tickMs = opts.tickMs ?? 250;
  const queryTimeoutMs = opts.queryTimeoutMs ?? 1000;
  const resumeWaitMs = opts.resumeWaitMs ?? 5000;
  const stored = await loadDeploys(opts.dataDir);
  const stale = await removeStaleTemps(opts.dataDir);
  if (stale > 0) agent.logger.log('INFO', `deploy: removed ${stale} temporary state file${stale === 1 ? '' : 's'} left by an interrupted write`);
  let history = stored.history;
  let machine: Machine | undefined;
  let last: DeployState | undefined = stored.current;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** Resume waits until this instant or until the agent has a peer, whichever first. */
  let resumeHoldUntil = 0;
  const reports = new Map<string, BalancerReport>();
  let queryRound = 0;
  let queryRunning = false;
  let writes: Promise<void> = Promise.resolve();
  /** A deploy being started: its first write is not on disk yet. */
  let starting = false;
  const log = (level: 'INFO' | 'WARN' | 'ERR', msg: string): void => agent.logger.log(level, msg);

  /** Queue a write of the state; resolves with its error (already logged), if it failed. */
  const persist = (): Promise<Error | undefined> => {
    if (stopped) return writes.then(() => undefined);
    const snapshot = { current: machine ? structuredClone(machine.state) : last, history: [...history] };
    const done = writes.then(
      () => saveDeploys(opts.dataDir, snapshot).then(() => undefined),
    ).catch((e: unknown) => {
      log('ERR', `deploy: ${(e as Error).message}`);
      return e as Error;
    });
    writes = done.then(() => undefined);
    return done;
  };

  const run = (actions: Action[]): void => {
    const m = machine;
    // A publish that resolves after stop() must not write: a new runner may own the file now.
    if (m === undefined || stopped) return;
    let save = false;
    for (const a of actions) {
      if (a.kind === 'persist') save = true;
      else if (a.kind === 'log') log(a.level, a.msg);
      else {
        agent.publishRoute(a.setting).then(
          (entry) => run(published(m, entry, Date.now())),
          (e: unknown) => run(publishFailed(m, (e as Error).message, Date.now())),
        );
      }
    }
    if (save) void persist();
  };

  const askBalancers = (service: string): void => {
    if (queryRunning) return;
    queryRunning = true;
    const round = ++queryRound;
    const seen = new Map<string, number>();
    agent
      .query({
        name: BACKENDS_QUERY,
        payload: new TextEncoder().encode(JSON.stringify({ service })),
        filterTags: { [BALANCER_TAG]: balancerFilter(service) },
        timeoutMs: queryTimeoutMs,
        onResponse: (from, payload) => {
          const r = decodeBalancerReport(payload);
          if (r === undefined) return;
          // An answer of an older round must not overwrite a newer one.
          if ((seen.get(from) ?? 0) > round) return;
          seen.set(from, round);
          reports.set(from, r);
        },
      })
      .catch((e: unknown) => log('WARN', `deploy: balancer query failed: ${(e as Error).message}`))
      .finally(() => {
        queryRunning = false;
      });
  };

  const tick = (): void => {
    timer = undefined;
    if (stopped) return;
    const m = machine;
    if (m !== undefined && !starting && !isFinal(m.state.phase)) {
      const service = m.state.spec.service;
      askBalancers(service);
      const members = agent.members();
      const joined = members.some((x) => x.name !== agent.nodeName && x.status === 'alive');
      if (joined || Date.now() >= resumeHoldUntil) {
        // Reports of members that are gone are not evidence of anything.
        const alive = new Set(members.filter((x) => x.status === 'alive').map((x) => x.name));
        for (const n of [...reports.keys()]) if (!alive.has(n)) reports.delete(n);
        run(step(m, { now: Date.now(), members, reports, route: agent.routes.get(service) }));
      }
      if (isFinal(m.state.phase)) {
        last = m.state;
        void persist();
      }
    }
    timer = setTimeout(tick, tickMs);
  };

  const requireMachine = (what: string): Machine => {
    if (machine === undefined) throw new DeployError('ERR_DEPLOY_NONE', `no deploy on ${agent.nodeName} to ${what}: start one with kodama deploy blue-green`);
    return machine;
  };

  const runner: DeployRunner = {
    async start(req: DeployRequest) {
      if (machine !== undefined && !isFinal(machine.state.phase)) {
        throw new DeployError('ERR_DEPLOY_BUSY', `deploy ${machine.state.id} is running (${machine.state.phase}): wait for it, or kodama deploy abort`);
      }
      const spec = buildSpec({ tag: DEFAULT_ROUTE_TAG, ...req }, agent.members());
      const before = { machine, last, history };
      if (machine !== undefined) history = [...history, machine.state];
      else if (last !== undefined) history = [...history, last];
      const m = newDeploy(spec, agent.nodeName, Date.now());
      machine = m;
      last = m.state;
      // Nothing is published before the state is on disk (the tick leaves it alone until then):
      // a deploy a restart could not resume is not started at all.
      starting = true;
      const failed = await persist().finally(() => {
        starting = false;
      });
      if (failed !== undefined) {
        ({ machine, last, history } = before);
        throw new DeployError('ERR_DEPLOY_FILE', `deploy not started, nothing was published: ${failed.message}; then start it again`);
      }
      reports.clear();
      log('INFO', `deploy ${m.state.id}: started: ${spec.service} ${spec.from} → ${spec.to}`);
      return structuredClone(m.state);
    },
    current: () => (machine ? structuredClone(machine.state) : last ? structuredClone(last) : undefined),
    history: () => structuredClone(history),
    async abort(reason?: string) {
      const m = requireMachine('abort');
      run(abort(m, Date.now(), reason));
      await persist();
      return structuredClone(m.state);
    },
    async rollback(reason?: string) {
      const m = requireMachine('roll back');
      run(rollback(m, Date.now(), reason));
      await persist();
      return structuredClone(m.state);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const off of unregister) off();
      await writes;
    },
  };

  // A deploy that was running when the agent died: pick it up where its phase stands.
  if (last !== undefined && !isFinal(last.phase)) {
    const { machine: m, actions } = resumeDeploy(last, Date.now());
    machine = m;
    resumeHoldUntil = Date.now() + resumeWaitMs;
    run(actions);
  } else if (last !== undefined) {
    // keep the finished one visible, and rollback-able, after a restart
    machine = resumeDeploy(last, Date.now()).machine;
  }

  const argsObj = (a: unknown): Record<string, unknown> => (typeof a === 'object' && a !== null ? (a as Record<string, unknown>) : {});
  const optString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const unregister = [
    agent.registerCall('deploy.start', async (a) => runner.start(parseStartArgs(argsObj(a)))),
    agent.registerCall('deploy.status', () => Promise.resolve({ current: runner.current() ?? null, history: runner.history() })),
    agent.registerCall('deploy.abort', (a) => runner.abort(optString(argsObj(a)['reason']))),
    agent.registerCall('deploy.rollback', (a) => runner.rollback(optString(argsObj(a)['reason']))),
    agent.registerCall('deploy.route', async (a) => {
      const o = argsObj(a);
      const service = optString(o['service']);
      if (service === undefined) throw new DeployError('ERR_DEPLOY_SPEC', 'deploy.route needs a service');
      const weights = parseWeights(o['weights']);
      const setting: RouteSetting = { service, tag: optString(o['tag']) ?? DEFAULT_ROUTE_TAG, weights, by: 'manual' };
      const running = machine !== undefined && !isFinal(machine.state.phase) && machine.state.spec.service === service;
      const entry = await agent.publishRoute(setting);
      log('INFO', `deploy: manual route for ${service}: ${JSON.stringify(weights)} (ltime ${entry.ltime})${running ? ' supersedes the running deploy' : ''}`);
      return entry;
    }),
  ];

  timer = setTimeout(tick, 0);
  return runner;
}

function parseWeights(v: unknown): Record<string, number> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DeployError('ERR_DEPLOY_SPEC', 'weights must be an object {value: percent}');
  const out: Record<string, number> = {};
  for (const [k, w] of Object.entries(v)) {
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 100) throw new DeployError('ERR_DEPLOY_SPEC', `weight of ${k} must be an integer 0..100, got ${JSON.stringify(w)}`);
    out[k] = w;
  }
  return out;
}

/** deploy.start's JSON args → a request (unknown keys refused: a typo must not silently use a default). */
export function parseStartArgs(o: Record<string, unknown>): DeployRequest {
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw new DeployError('ERR_DEPLOY_SPEC', `deploy.start needs ${k}`);
      return undefined;
    }
    if (typeof v !== 'string') throw new DeployError('ERR_DEPLOY_SPEC', `${k} must be a string`);
    return v;
  };
  const num = (k: string): number | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DeployError('ERR_DEPLOY_SPEC', `${k} must be a number`);
    return v;
  };
  const known = ['service', 'from', 'to', 'tag', 'expected', 'steps', 'checkBakeMs', 'checkTimeoutMs', 'stepBakeMs', 'drainTimeoutMs', 'bakeMs', 'maxErrorRate', 'minRequests', 'applyTimeoutMs'];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new DeployError('ERR_DEPLOY_SPEC', `unknown deploy.start argument(s): ${unknown.join(', ')}`);
  const req: DeployRequest = { service: str('service', true) ?? '', from: str('from', true) ?? '', to: str('to', true) ?? '' };
  const tag = str('tag', false);
  if (tag !== undefined) req.tag = tag;
  for (const k of ['expected', 'checkBakeMs', 'checkTimeoutMs', 'stepBakeMs', 'drainTimeoutMs', 'bakeMs', 'maxErrorRate', 'minRequests', 'applyTimeoutMs'] as const) {
    const v = num(k);
    if (v !== undefined) req[k] = v;
  }
  if (o['steps'] !== undefined && o['steps'] !== null) {
    const s = o['steps'];
    if (!Array.isArray(s) || !s.every((x) => typeof x === 'number')) throw new DeployError('ERR_DEPLOY_SPEC', 'steps must be a list of numbers');
    req.steps = s as number[];
  }
  return req;
}
