// Public surface of the RPC package (server for the agent, client for the CLI).
export type {
  RpcBackend,
  RpcCoordinate,
  RpcEvent,
  RpcIncomingQuery,
  RpcKeyResponse,
  RpcMember,
  RpcMemberEvent,
  RpcMemberEventType,
  RpcMemberStatus,
  RpcQueryParams,
  RpcQuerySink,
  RpcUserEvent,
} from './backend.ts';
export type { RpcQueryEventRecord, RpcQueryResult, RpcStreamEvent } from './streams.ts';
export { startRpcServer, type RpcServer, type RpcServerOptions, type RpcLogLevel } from './server.ts';
export { RpcClient, type RpcClientOptions, type MembersFilter, type RawReply, type RpcSubscription } from './client.ts';
export { RpcError, type RpcErrorCode } from './errors.ts';
