// One error class for everything the RPC client and server report to callers. `code` is stable
// (callers and the CLI switch on it); `message` is for humans.

export type RpcErrorCode =
  /** Nothing accepted the TCP connection (no agent running there). */
  | 'ERR_RPC_CONNECT'
  /** The agent wants an auth token, or the one given is wrong. */
  | 'ERR_RPC_AUTH'
  /** No answer within the client's timeout. */
  | 'ERR_RPC_TIMEOUT'
  /** The agent answered with an error string (kept verbatim as the message). */
  | 'ERR_RPC_REMOTE'
  /** The connection closed (by us or by the agent) before the answer arrived. */
  | 'ERR_RPC_CLOSED'
  /** The agent sent something that is not a well-formed RPC response. */
  | 'ERR_RPC_PROTOCOL'
  /** The server could not bind its listen address. */
  | 'ERR_RPC_LISTEN';

export class RpcError extends Error {
  readonly code: RpcErrorCode;
  constructor(code: RpcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RpcError';
    this.code = code;
  }
}
