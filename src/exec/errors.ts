// The caller side's one error class (`kodama exec` / `kodama rolling`); `code` is stable.

export type ExecErrorCode =
  | 'ERR_EXEC_NO_NODES' // the filters match no member (or name one that does not exist)
  | 'ERR_EXEC_TOO_LONG' // the command (with the token) leaves no room in a 1024-byte query
  | 'ERR_EXEC_NO_BALANCER'; // rolling: no balancer answers for the service

export class ExecError extends Error {
  constructor(
    readonly code: ExecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExecError';
  }
}
