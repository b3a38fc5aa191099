// The transport's one error class. Callers branch on `code`, never on message text.

export type TransportErrorCode =
  | 'ERR_TRANSPORT_BIND' // could not bind UDP and TCP on the same address
  | 'ERR_TRANSPORT_ADDRESS'; // not an IP literal we can bind

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}
