// kodama's embeddable API: run a Serf-compatible agent inside your own Node process
// (docs/embedding.md, runnable example: examples/embed.ts).
//
//   import { createAgent } from 'kodama';
//   const agent = createAgent({ nodeName: 'web-1', bind: '0.0.0.0:7946', tags: { role: 'web' } });
//   agent.on('member-join', (e) => console.log('joined', e.members.map((m) => m.name)));
//   await agent.start();
//   await agent.join(['seed.internal']);   // every address the name resolves to
//   agent.on('user', (e) => …);  agent.userEvent('deploy', 'v2');
//   agent.on('query', (q) => q.respond(bytes));  await agent.query({ name: 'load', payload });
//   ...
//   await agent.leave();                   // peers record us left, not failed
//   await agent.stop();

import { Agent } from './agent/agent.ts';
import type { AgentOptions } from './agent/agent.ts';

/** Validate options and build an agent; nothing is bound until `await agent.start()`. */
export function createAgent(opts: AgentOptions): Agent {
  return Agent.create(opts);
}

export { Agent, toRpcMember } from './agent/agent.ts';
export type { AgentEventMap, AgentOptions, AgentQuery, JoinResult, KeyResult, Profile, QueryEvent, QueryOptions, QueryResult, ReloadOptions, UserEvent } from './agent/agent.ts';
export { AgentError } from './agent/errors.ts';
export type { AgentErrorCode } from './agent/errors.ts';
export type { LogLevel } from './serf/log.ts';
export type { Member, MemberEventType, MemberStatus, SerfEvent } from './serf/serf.ts';
export type { Tags } from './serf/tags.ts';
export { SerfError } from './serf/errors.ts';
export { RpcClient, RpcError } from './rpc/index.ts';
export type { RpcMember } from './rpc/index.ts';

// Traffic wiring: services with health checks (gossiped as tags s:<name>), the load-balancer
// role and its drivers, probes.
export { DEFAULT_LEAVE_DRAIN_MS } from './agent/agent.ts';
export type {
  AdvertisedService, Backend, BackendStats, BalancedServiceSpec, Balancer, BalancerSpec, CheckSpec, Frontend,
  ServiceHealth, ServiceProtocol, ServiceSpec, TemplateSpec,
} from './discovery/types.ts';
export { decodeServiceTags, encodeServiceTag, isValidServiceName, serviceTagKey } from './discovery/advertise.ts';
export { CHECK_DEFAULTS, parseServiceSpecs } from './discovery/service-config.ts';
export { parseBalancerSpec } from './discovery/balancer-config.ts';
export { HealthTracker } from './discovery/health.ts';
export { ServiceManager } from './discovery/services.ts';
export type { ServiceEvent, ServiceManagerOptions, ServiceStatus } from './discovery/services.ts';
export { startBalancerRole } from './discovery/balancer-role.ts';
export type { BalancerRole, BalancerRoleOptions } from './discovery/balancer-role.ts';
export { createEmbeddedBalancer } from './balancer/embedded/index.ts';
export { createHaproxyBalancer } from './balancer/haproxy/index.ts';
export type { HaproxyBalancer } from './balancer/haproxy/index.ts';
export { runProbe } from './probes/index.ts';
export type { ProbeResult, ProbeSpec, ProbeStatus, ProbeTarget } from './probes/index.ts';

// Monitoring by role (Sensu-style checks carried by the cluster): check specs and records, the
// `chk` summary tag, the `kodama-checks` report.
export * from './checks/types.ts';
export { parseCheckSpecs, parseMonitoringSpec, subscriptionMatches, validateCheckHandlers, CHECK_SPEC_DEFAULTS, HANDLER_DEFAULTS } from './checks/config.ts';
export { decodeSummary, encodeSummary, summarize } from './checks/summary.ts';
export { percentStateChange, recordResult } from './checks/history.ts';
export { CheckRunner } from './checks/runner.ts';
export type { CheckResultEvent, CheckRunnerOptions } from './checks/runner.ts';
export { buildReport, encodeReport, REPORT_MAX_BYTES } from './checks/report.ts';
export type { ReportOptions } from './checks/report.ts';
export { MetricsSampler } from './checks/metrics.ts';
export type { NodeMetrics } from './checks/metrics.ts';

// Deploys and actions by role: routes (a cluster-wide, Lamport-ordered traffic split per
// service), the agent's `kodama` RPC operations, exec settings.
export * from './deploy/types.ts';
export { RouteTable, ROUTE_MAX_BYTES, compareRoutes, decodeRoute, decodeSync, decodeSyncAnswer, encodeRoute, routeProblem } from './deploy/route.ts';
export type { SyncAnswer } from './deploy/route.ts';
export { NO_DEPLOY_STATE } from './agent/agent.ts';
export type { CallHandler } from './agent/agent.ts';
export type { ExecSpec, ExecNodeResult, ExecRefusal } from './exec/types.ts';
export { DISABLED_EXEC, parseExecSpec } from './exec/config.ts';

// The HTTP API and dashboard (-http-addr; docs/api.md): the server, its error class, the shared
// model of its answers and SSE messages.
export { startHttpApi } from './http/server.ts';
export type { HttpApi, HttpApiOptions } from './http/server.ts';
export { HttpError } from './http/errors.ts';
export type { HttpErrorCode } from './http/errors.ts';
export { isLoopbackHost } from './http/auth.ts';
export { API_PREFIX, UI_PREFIX, DEPLOYS_QUERY, UI_SELECTORS } from './http/types.ts';
export type { AgentInfo, ApiEvent, ApiMember, ChecksResponse, DeploySummary, DeploysResponse, EventsResponse, MembersResponse, ServicesResponse, StreamMessage } from './http/types.ts';
