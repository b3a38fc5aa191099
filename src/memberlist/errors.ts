// The membership core's one error class. `code` is stable (tests and callers switch on it);
// the message is for humans.

export type MemberlistErrorCode =
  | 'ERR_MEMBERLIST_META_TOO_LARGE'
  | 'ERR_MEMBERLIST_NOT_STARTED'
  | 'ERR_MEMBERLIST_INCOMPATIBLE'
  | 'ERR_MEMBERLIST_REMOTE'
  | 'ERR_MEMBERLIST_BAD_REPLY';

export class MemberlistError extends Error {
  override readonly name = 'MemberlistError';
  constructor(
    readonly code: MemberlistErrorCode,
    message: string,
  ) {
    super(message);
  }
}
