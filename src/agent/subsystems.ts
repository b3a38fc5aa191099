// The subsystems an agent starts from its config, in start order (stop runs in reverse). Each is
// imported only when its section asks for it, so a plain agent loads none of them. Adding a
// subsystem: a folder with a start function that takes the AgentHost (src/agent/host.ts), plus
// one entry here.

import { AgentError } from './errors.ts';
import type { AgentErrorCode } from './errors.ts';
import type { AgentHost, Subsystem } from './host.ts';
import type { AgentOptions } from './options.ts';
import type { Tags } from '../serf/tags.ts';
import { encodeServiceTag, isValidServiceName, serviceTagKey } from '../discovery/advertise.ts';
import { CHECK_NAME_RE, findDuplicateCheck, validateCheckHandlers } from '../checks/config.ts';
import { CHECK_RESULT_QUERY, MONITOR_TAG, SUMMARY_TAG } from '../checks/types.ts';
import { BALANCER_TAG } from '../deploy/types.ts';
import { TOKEN_HINT } from '../exec/config.ts';
import { checkHttpConfig } from '../http/auth.ts';
import type { BalancerHost } from '../discovery/balancer-role.ts';
import type { ServicesHost } from '../discovery/local-services.ts';
import type { RoutesHost } from '../deploy/routes.ts';
import type { ExecHost } from '../exec/executor.ts';
import type { DeployAgent } from '../deploy/runner.ts';
import type { HttpHost } from '../http/server.ts';
import type { TelemetryHost } from './telemetry.ts';
import type { DiscoverHost } from './discover.ts';

/** What the agent hands every subsystem: the host, plus what some read of the others. */
export type SubsystemHost = AgentHost & RoutesHost & ServicesHost & BalancerHost & ExecHost & DeployAgent & HttpHost & TelemetryHost & DiscoverHost;

export interface SubsystemEntry {
  readonly name: string;
  /** Whether this agent's options ask for it. */
  wanted(o: AgentOptions): boolean;
  /**
   * Started before membership (its owned tags ride in the first alive message; its run() is
   * called once the agent runs) rather than after the RPC port opened.
   */
  readonly early?: boolean;
  /** Refuse options it could not serve, at create() (embedders build specs by hand). */
  validate?(o: AgentOptions): void;
  /** Tags it always carries, known from the options (in the first alive message too). */
  staticTags?(o: AgentOptions): Tags;
  /** Load its module and start it. */
  start(host: SubsystemHost, o: AgentOptions): Promise<Subsystem>;
  /** Where it does not run: what the node still answers (without loading the module). */
  absent?(host: AgentHost): void;
  /** How a failed start is reported (the agent stops what it started, then throws). */
  readonly failure: { code: AgentErrorCode; what(o: AgentOptions): string; keepAgentErrors?: boolean };
}

const fail = (msg: string): never => {
  throw new AgentError('ERR_AGENT_CONFIG', msg);
};

export const SUBSYSTEMS: readonly SubsystemEntry[] = [
  {
    // Every agent keeps the routes (balancers apply them, deploys publish them).
    name: 'routes',
    wanted: () => true,
    early: true,
    start: async (host, o) => (await import('../deploy/routes.ts')).startRoutes(host, o.routeSync),
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the route table' },
  },
  {
    name: 'services',
    wanted: (o) => (o.services ?? []).length > 0 || o.containers !== undefined,
    early: true,
    validate: (o) => {
      for (const sv of o.services ?? []) {
        if (!isValidServiceName(sv.name)) fail(`invalid service name ${JSON.stringify(sv.name)} (letters, digits, "_", "-", ".")`);
        encodeServiceTag({ port: sv.port, protocol: sv.protocol, weight: sv.weight, draining: false }); // throws on a bad port/weight
      }
      const names = (o.services ?? []).map((sv) => sv.name);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup !== undefined) fail(`service "${dup}" is configured twice`);
      if (o.containers !== undefined && o.containers.socket.trim() === '') fail('containers: socket must not be empty (the engine\'s API socket, such as /run/podman/podman.sock)');
      if (o.containers !== undefined && !(o.containers.pollMs >= 100)) fail(`containers: poll must be at least 100 ms, got ${o.containers.pollMs}`);
    },
    start: async (host, o) =>
      (await import('../discovery/local-services.ts')).startLocalServices(host, o.services ?? [], o.leaveDrainMs ?? DEFAULT_LEAVE_DRAIN_MS, o.containers),
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the services' },
  },
  {
    name: 'checks',
    wanted: (o) => (o.checks ?? []).length > 0,
    early: true,
    validate: (o) => {
      const checks = o.checks ?? [];
      for (const c of checks) {
        if (!CHECK_NAME_RE.test(c.name)) fail(`invalid check name ${JSON.stringify(c.name)} (letters, digits, "_", "-", "."; 1 to 32 characters)`);
        if (c.probe === undefined && c.ttlMs === undefined) fail(`check "${c.name}" has neither a probe nor a ttl`);
      }
      const dup = findDuplicateCheck(checks);
      if (dup !== undefined) fail(`check "${dup}" is configured twice`);
      if (o.monitoring !== undefined) validateCheckHandlers(checks, o.monitoring);
    },
    start: async (host, o) => (await import('../checks/local.ts')).startLocalChecks(host, o.checks ?? []),
    // A pushed result for a node without checks is refused with why (`kodama check-result` says
    // so), not met with silence; `kodama-checks` gets no answer, as from a serf agent.
    absent: (host) => {
      host.answerQuery(CHECK_RESULT_QUERY, (q) => {
        try {
          q.respond(new TextEncoder().encode('error: no checks are configured on this node'));
        } catch {
          // too late or already answered
        }
      });
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the checks' },
  },
  {
    name: 'balancer',
    wanted: (o) => o.balancer !== undefined,
    // Deploys find the balancers by `lb`, so only a real balancer carries it.
    staticTags: (o): Tags => (o.balancer !== undefined && o.balancer.services.length > 0 ? { [BALANCER_TAG]: o.balancer.services.map((sv) => sv.service).join(',') } : {}),
    start: async (host, o) =>
      (await import('../discovery/balancer-role.ts')).startBalancerRole(host, o.balancer!, { queryResponseSizeLimit: o.queryResponseSizeLimit }),
    // A balancer that cannot serve (port taken, HAProxy refuses its config) is a failed start.
    failure: { code: 'ERR_AGENT_BIND', what: () => 'Failed to start the load-balancer role' },
  },
  {
    name: 'monitor',
    wanted: (o) => o.monitoring !== undefined,
    staticTags: () => ({ [MONITOR_TAG]: '1' }),
    start: async (host, o) => {
      // A check's handlers come from this monitor's own config (the `chk` tag carries no
      // handler names); unknown checks get monitoring.default_handlers.
      let ownChecks = new Map((o.checks ?? []).map((c) => [c.name, c.handlers ?? []]));
      const role = await (await import('../checks/monitor-role.ts')).startMonitorRole(host, o.monitoring!, { checkHandlers: (check) => ownChecks.get(check) ?? [] });
      // Still the MonitorRole (agent.monitorRole reads it), plus the reload hook.
      return Object.assign(role, {
        reload: (next: AgentOptions): string | undefined => {
          ownChecks = new Map((next.checks ?? []).map((c) => [c.name, c.handlers ?? []]));
          if (next.monitoring === undefined) return 'monitoring: removed from the configuration, but a monitor stays one until the agent restarts';
          return role.reconfigure(next.monitoring);
        },
      });
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the monitor role' },
  },
  {
    // Every node answers exec requests, a disabled one with a refusal that says why (never silence).
    name: 'exec',
    wanted: () => true,
    // An enabled exec without a token would be open to anyone.
    validate: (o) => {
      if (o.exec?.enabled === true && o.exec.token === '') fail(`exec is enabled without a token: ${TOKEN_HINT}`);
    },
    start: async (host, o) => {
      const [{ startExecutor }, { DISABLED_EXEC }] = await Promise.all([import('../exec/executor.ts'), import('../exec/config.ts')]);
      return startExecutor(host, o.exec ?? DISABLED_EXEC, { responseLimitBytes: host.queryResponseSizeLimit });
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start exec' },
  },
  {
    name: 'deploys',
    wanted: (o) => o.dataDir !== undefined,
    validate: (o) => {
      if (o.dataDir !== undefined && o.dataDir.trim() === '') fail('data dir must not be empty');
    },
    start: async (host, o) => {
      const [{ startDeployRunner }, { answerDeploysQuery }] = await Promise.all([import('../deploy/runner.ts'), import('../http/deploys-query.ts')]);
      const runner = await startDeployRunner(host, { dataDir: o.dataDir! });
      const off = answerDeploysQuery({ nodeName: host.nodeName, logger: host.logger, on: (t, fn) => host.on(t, fn), deploys: runner }, host.queryResponseSizeLimit);
      const stopRunner = runner.stop.bind(runner);
      runner.stop = async () => {
        off();
        await stopRunner();
      };
      return runner;
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: (o) => `Failed to start the deploy runner in ${o.dataDir}` },
  },
  {
    name: 'http',
    wanted: (o) => o.httpAddr !== undefined && o.httpAddr !== '',
    // The API off loopback without a token would hand the cluster's view to anyone who can reach it.
    validate: (o) => {
      if (o.httpAddr !== undefined && o.httpAddr !== '') checkHttpConfig(o.httpAddr, o.httpToken);
    },
    start: async (host, o) => {
      const api = await (await import('../http/server.ts')).startHttpApi(host, {
        addr: o.httpAddr!,
        ...(o.httpToken !== undefined ? { token: o.httpToken } : {}),
        ...(o.httpHistoryStepMs !== undefined ? { historyStepMs: o.httpHistoryStepMs } : {}),
      });
      host.logger.log('INFO', `http: API and dashboard on ${api.url('/ui/')}`);
      return api;
    },
    failure: { code: 'ERR_AGENT_BIND', what: (o) => `Failed to start the HTTP API on ${o.httpAddr}`, keepAgentErrors: true },
  },
  {
    // serf's -discover: mDNS on the local link, joins what it finds.
    name: 'discover',
    wanted: (o) => (o.discover?.cluster ?? '') !== '',
    validate: (o) => {
      const c = o.discover?.cluster;
      // One DNS label inside `_serf_<cluster>._tcp.local.`
      if (c !== undefined && c !== '' && !/^[A-Za-z0-9_-]{1,56}$/.test(c)) fail(`invalid discover cluster name ${JSON.stringify(c)} (letters, digits, "_", "-"; up to 56 characters)`);
    },
    start: async (host, o) => (await import('./discover.ts')).startDiscover(host, o.discover!),
    failure: { code: 'ERR_AGENT_BIND', what: (o) => `Error starting mDNS listener for '${o.discover?.cluster}'` },
  },
  {
    // Host and process figures over time, pulled by the `kodama-metrics` query.
    name: 'metrics',
    wanted: (o) => (o.metricsIntervalMs ?? 0) > 0,
    validate: (o) => {
      const i = o.metricsIntervalMs ?? 0;
      const h = o.metricsHistoryMs ?? DEFAULT_METRICS_HISTORY_MS;
      if (i > 0 && i < 1000) fail(`metrics_interval must be at least 1s (or 0 to turn sampling off), got ${i} ms`);
      if (i > 0 && (h < i || h / i > 100_000)) fail(`metrics_history must hold 1 to 100000 samples of metrics_interval (${i / 1000}s), got ${h / 1000}s`);
    },
    start: async (host, o) =>
      (await import('../metrics/local.ts')).startLocalMetrics(host, { intervalMs: o.metricsIntervalMs!, historyMs: o.metricsHistoryMs ?? DEFAULT_METRICS_HISTORY_MS }),
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the metrics history' },
  },
  {
    // serf's statsd_addr / statsite_addr: the /metrics figures pushed every 10 s.
    name: 'telemetry',
    wanted: (o) => (o.statsdAddr ?? '') !== '' || (o.statsiteAddr ?? '') !== '',
    start: async (host, o) => {
      const [{ startStatsSinks }, { collectMetrics }] = await Promise.all([import('./statsd.ts'), import('./telemetry.ts')]);
      const sinks = startStatsSinks({
        ...(o.statsdAddr ? { statsdAddr: o.statsdAddr } : {}),
        ...(o.statsiteAddr ? { statsiteAddr: o.statsiteAddr } : {}),
        nodeName: host.nodeName,
        collect: () => collectMetrics(host),
        log: (level, msg) => host.logger.log(level, msg),
        ...(o.statsIntervalMs !== undefined ? { intervalMs: o.statsIntervalMs } : {}),
      });
      const offStats = host.addStats(() => ({ telemetry: Object.fromEntries(Object.entries(sinks.counters()).map(([k, v]) => [k, String(v)])) }));
      host.logger.log('INFO', `telemetry: sending figures every ${(o.statsIntervalMs ?? 10_000) / 1000} s to${o.statsdAddr ? ` statsd ${o.statsdAddr}` : ''}${o.statsiteAddr ? ` statsite ${o.statsiteAddr}` : ''}`);
      return {
        stop: () => {
          offStats();
          sinks.stop();
        },
      };
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the statsd/statsite sink' },
  },
];

/** metrics_history default: an hour (360 samples at the default 10 s). */
export const DEFAULT_METRICS_HISTORY_MS = 3_600_000;

/** leave_drain default: long enough for balancers (gossip + their poll) to stop sending new work. */
export const DEFAULT_LEAVE_DRAIN_MS = 2000;

/**
 * Tag keys only the agent sets, whether or not the subsystem runs: a stale `chk` or `mon` from a
 * tags file or `-tag` must not make a node look checked or a monitor, nor a stale `s:web`
 * advertise a service before its checks pass.
 */
export function reservedTagKeys(o: AgentOptions): string[] {
  return [...(o.services ?? []).map((sv) => serviceTagKey(sv.name)), SUMMARY_TAG, MONITOR_TAG, BALANCER_TAG];
}
