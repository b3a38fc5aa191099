// One error class for the simulator, with a stable `code` per failure kind, so tests and the
// bench runner can tell a runaway event loop from a misuse of the harness.

export type SimErrorCode =
  | 'ERR_SIM_MAX_STEPS' // the virtual clock ran more steps than allowed: a timer loop that never ends
  | 'ERR_SIM_TIME' // a request to move the clock backwards
  | 'ERR_SIM_ADDRESS' // an address already in use, or unknown to the network
  | 'ERR_SIM_NODE' // an unknown or duplicate node name in the cluster harness
  | 'ERR_SIM_RANGE'; // a bad argument (probability outside [0, 1], int(n) with n < 1, …)

export class SimError extends Error {
  readonly code: SimErrorCode;
  constructor(code: SimErrorCode, message: string) {
    super(message);
    this.name = 'SimError';
    this.code = code;
  }
}
