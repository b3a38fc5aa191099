// The embedded proxy's one error class; callers branch on `code`, never on message text.

export type ProxyErrorCode =
  | 'ERR_PROXY_BIND' // a frontend could not listen on its address
  | 'ERR_PROXY_CONFIG' // a frontend set that cannot be served (duplicate service or bind)
  | 'ERR_PROXY_STATE' // lifecycle misuse (start twice, use after stop)
  | 'ERR_PROXY_TIMEOUT'; // a backend went silent for longer than the per-request timeout

export class ProxyError extends Error {
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProxyError';
  }
}
