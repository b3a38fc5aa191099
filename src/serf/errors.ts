// The one error class of the Serf layer; `code` is stable and used as a counter key.

export type SerfErrorCode =
  | 'ERR_SERF_BAD_MESSAGE' // a Serf message that does not decode
  | 'ERR_SERF_TAGS_TOO_LARGE' // encoded tags exceed the memberlist meta limit
  | 'ERR_SERF_BAD_STATE' // an operation not allowed in the current lifecycle state
  | 'ERR_SERF_BAD_TAG' // a malformed tag (e.g. `-tag` without `=`)
  | 'ERR_SERF_TOO_LARGE' // a user event, query or response over its size limit
  | 'ERR_SERF_QUERY' // respond() refused: unknown id, already answered, past the deadline
  | 'ERR_SERF_BAD_KEY'; // a key that is not base64

export class SerfError extends Error {
  constructor(
    readonly code: SerfErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SerfError';
  }
}
