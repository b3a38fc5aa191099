// The one error class of the HTTP API; `code` is stable (clients and tests branch on it) and
// travels in every error body: { "error": "<what and how to fix>", "code": "ERR_HTTP_..." }.

export type HttpErrorCode =
  | 'ERR_HTTP_NOT_FOUND' // no such path (or a /ui/ file that does not exist)
  | 'ERR_HTTP_METHOD' // the path exists, the method does not (405, with Allow)
  | 'ERR_HTTP_AUTH' // a token is required and was missing or wrong (401)
  | 'ERR_HTTP_HOST' // an open (loopback, no token) API asked for under a non-loopback host name (403)
  | 'ERR_HTTP_BAD_PARAM' // a query parameter that cannot be read (400)
  | 'ERR_HTTP_TOO_MANY_STREAMS' // the SSE client limit is reached (503)
  | 'ERR_HTTP_UNAVAILABLE' // the agent is not running (503)
  | 'ERR_HTTP_INTERNAL'; // a bug: logged, answered 500, never a crash

export const STATUS_OF: Record<HttpErrorCode, number> = {
  ERR_HTTP_NOT_FOUND: 404,
  ERR_HTTP_METHOD: 405,
  ERR_HTTP_AUTH: 401,
  ERR_HTTP_HOST: 403,
  ERR_HTTP_BAD_PARAM: 400,
  ERR_HTTP_TOO_MANY_STREAMS: 503,
  ERR_HTTP_UNAVAILABLE: 503,
  ERR_HTTP_INTERNAL: 500,
};

export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  get status(): number {
    return STATUS_OF[this.code];
  }
}
