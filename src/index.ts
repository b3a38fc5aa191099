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
