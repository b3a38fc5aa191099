// Public surface of the RPC package (server for the agent, client for the CLI).
export type { RpcBackend, RpcEvent, RpcMember, RpcMemberEventType, RpcMemberStatus } from './backend.ts';
export { startRpcServer, type RpcServer, type RpcServerOptions, type RpcLogLevel } from './server.ts';
export { RpcClient, type RpcClientOptions, type MembersFilter, type RpcSubscription } from './client.ts';
export { RpcError, type RpcErrorCode } from './errors.ts';
