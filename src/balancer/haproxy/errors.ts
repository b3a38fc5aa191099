// The HAProxy driver's one error class. Callers branch on `code`, never on message text; the
// message carries what HAProxy itself said (validation output, runtime API reply).

export type HaproxyErrorCode =
  | 'ERR_HAPROXY_CONFIG' // `haproxy -c` rejected a candidate config (message = HAProxy's words)
  | 'ERR_HAPROXY_SPAWN' // the binary could not be started, or the master died before serving
  | 'ERR_HAPROXY_RUNTIME' // a runtime API command was refused (message = the command + reply)
  | 'ERR_HAPROXY_SOCKET' // the admin or master socket could not be reached in time
  | 'ERR_HAPROXY_RELOAD' // the master did not bring up a new worker after `reload`
  | 'ERR_HAPROXY_STATE' // lifecycle misuse (setBackends before start, after stop, unknown service)
  | 'ERR_HAPROXY_VERIFY' // after restart, the running state differs from the on-disk config
  | 'ERR_HAPROXY_INPUT'; // a bad frontend/backend value (names, ports, weights)

export class HaproxyError extends Error {
  readonly code: HaproxyErrorCode;
  constructor(code: HaproxyErrorCode, message: string) {
    super(message);
    this.name = 'HaproxyError';
    this.code = code;
  }
}
