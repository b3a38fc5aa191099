// One error class for everything the wire layer rejects. Callers branch on `code` (stable
// strings), never on the message text, and count drops per code.

export type WireErrorCode =
  | 'ERR_WIRE_TRUNCATED' // input ended before the declared structure did
  | 'ERR_WIRE_TOO_LARGE' // a declared or produced size exceeds a limit
  | 'ERR_WIRE_TYPE' // a msgpack value of the wrong kind for the field
  | 'ERR_WIRE_UNKNOWN_MESSAGE' // unknown or misplaced message type byte
  | 'ERR_WIRE_CRC' // hasCrc checksum mismatch
  | 'ERR_WIRE_DECRYPT' // no key in the keyring opens the payload, or bad encryption header
  | 'ERR_WIRE_NOT_ENCRYPTED' // plaintext input while the keyring demands encryption
  | 'ERR_WIRE_LZW' // malformed LZW stream or unknown compression algorithm
  | 'ERR_WIRE_NESTING' // compound/compress nested deeper than allowed, or msgpack too deep
  | 'ERR_WIRE_BAD_VALUE' // value out of range or malformed (bad IP, bad key size, trailing bytes)
  | 'ERR_WIRE_KEYRING'; // keyring misuse (removing the primary key, unknown key)

export class WireError extends Error {
  readonly code: WireErrorCode;
  constructor(code: WireErrorCode, message: string) {
    // No stack trace: these describe bad input, not program state, and peers can make us build
    // one per datagram (and streamFrameLength throws internally on every partial read). Capturing
    // stacks made error construction the single largest cost under a garbage flood.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'WireError';
    this.code = code;
  }
}

export function isWireError(e: unknown): e is WireError {
  return e instanceof WireError;
}
