// kodama's embeddable API (first cut): run an agent inside your own Node process.
//
//   import { Agent } from 'kodama';
//   const agent = Agent.create({ nodeName: 'web-1', bind: '0.0.0.0:7946', tags: { role: 'web' } });
//   agent.on('member-join', (e) => console.log('joined', e.members.map((m) => m.name)));
//   await agent.start();
//   await agent.join(['seed.internal']);   // every address the name resolves to
//   ...
//   await agent.leave();                   // peers record us left, not failed
//   await agent.stop();

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
