// The subsystems an agent starts from its config, in start order (stop runs in reverse). Each is
// imported only when its section asks for it, so a plain agent loads none of them. Adding a
// subsystem: a folder with a start function that takes the AgentHost (src/agent/host.ts), plus
// one entry here.

import type { AgentErrorCode } from './errors.ts';
import type { AgentHost, Subsystem } from './host.ts';
import type { AgentOptions } from './options.ts';
import type { BalancerHost } from '../discovery/balancer-role.ts';
import type { ExecHost } from '../exec/executor.ts';
import type { DeployAgent } from '../deploy/runner.ts';
import type { HttpHost } from '../http/server.ts';

/** What the agent hands every subsystem: the host, plus what some read of the others. */
export type SubsystemHost = AgentHost & BalancerHost & ExecHost & DeployAgent & HttpHost;

export interface SubsystemEntry {
  readonly name: string;
  /** Whether this agent's options ask for it. */
  wanted(o: AgentOptions): boolean;
  /** Load its module and start it. */
  start(host: SubsystemHost, o: AgentOptions): Promise<Subsystem>;
  /** How a failed start is reported (the agent stops what it started, then throws). */
  readonly failure: { code: AgentErrorCode; what(o: AgentOptions): string; keepAgentErrors?: boolean };
}

export const SUBSYSTEMS: readonly SubsystemEntry[] = [
  {
    name: 'balancer',
    wanted: (o) => o.balancer !== undefined,
    start: async (host, o) =>
      (await import('../discovery/balancer-role.ts')).startBalancerRole(host, o.balancer!, { queryResponseSizeLimit: o.queryResponseSizeLimit }),
    // A balancer that cannot serve (port taken, HAProxy refuses its config) is a failed start.
    failure: { code: 'ERR_AGENT_BIND', what: () => 'Failed to start the load-balancer role' },
  },
  {
    name: 'monitor',
    wanted: (o) => o.monitoring !== undefined,
    start: async (host, o) => {
      // A check's handlers come from this monitor's own config (the `chk` tag carries no
      // handler names); unknown checks get monitoring.default_handlers.
      const ownChecks = new Map((o.checks ?? []).map((c) => [c.name, c.handlers ?? []]));
      return (await import('../checks/monitor-role.ts')).startMonitorRole(host, o.monitoring!, { checkHandlers: (check) => ownChecks.get(check) ?? [] });
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start the monitor role' },
  },
  {
    // Every node answers exec requests, a disabled one with a refusal that says why (never silence).
    name: 'exec',
    wanted: () => true,
    start: async (host, o) => {
      const [{ startExecutor }, { DISABLED_EXEC }] = await Promise.all([import('../exec/executor.ts'), import('../exec/config.ts')]);
      return startExecutor(host, o.exec ?? DISABLED_EXEC, { responseLimitBytes: host.queryResponseSizeLimit });
    },
    failure: { code: 'ERR_AGENT_CONFIG', what: () => 'Failed to start exec' },
  },
  {
    name: 'deploys',
    wanted: (o) => o.dataDir !== undefined,
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
    start: async (host, o) => {
      const api = await (await import('../http/server.ts')).startHttpApi(host, { addr: o.httpAddr!, ...(o.httpToken !== undefined ? { token: o.httpToken } : {}) });
      host.logger.log('INFO', `http: API and dashboard on ${api.url('/ui/')}`);
      return api;
    },
    failure: { code: 'ERR_AGENT_BIND', what: (o) => `Failed to start the HTTP API on ${o.httpAddr}`, keepAgentErrors: true },
  },
];
