// The one error class of the agent; `code` is stable (tests and callers branch on it).

export type AgentErrorCode =
  | 'ERR_AGENT_CONFIG' // invalid options (bad key, bad address, bad tag, bad log level)
  | 'ERR_AGENT_STATE' // lifecycle misuse (start twice, join after leave)
  | 'ERR_AGENT_JOIN' // no seed could be joined
  | 'ERR_AGENT_BIND'; // a listener could not be opened

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}
