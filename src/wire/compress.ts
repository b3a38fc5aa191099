// The `compress` message (type 9): `09 || msgpack({Algo: 0, Buf: lzw(payload)})`. Shared by the
// packet and stream layers.

import { WireError } from './errors.ts';
import { lzwCompress, lzwDecompress } from './lzw.ts';
import { asBytes, asMap, asUint, decodeMsgpackPrefix, encodeGossipAfter } from './msgpack.ts';
import { MessageType } from './types.ts';

const LZW_ALGO = 0;

/** Wrap `payload` (a complete message, type byte included) into a compress message. */
export function compressMessage(payload: Uint8Array): Uint8Array {
  return encodeGossipAfter([MessageType.compress], { Algo: LZW_ALGO, Buf: lzwCompress(payload) });
}

/** Parse the compress body at `offset` (just after the 09 byte) and return the inflated
 *  payload plus where the msgpack object ended. */
export function decompressAt(
  buf: Uint8Array,
  offset: number,
  maxOutput: number,
): { payload: Uint8Array; end: number } {
  const r = decodeMsgpackPrefix(buf, offset, { strings: 'bytes', maxBytes: maxOutput });
  if (r === undefined) throw new WireError('ERR_WIRE_TRUNCATED', 'compress message ends early');
  const m = asMap(r.value);
  const algo = asUint(m.Algo);
  if (algo !== LZW_ALGO) throw new WireError('ERR_WIRE_LZW', `unknown compression algorithm ${algo}`);
  const data = asBytes(m.Buf);
  if (data === null) throw new WireError('ERR_WIRE_LZW', 'compress message has no Buf');
  return { payload: lzwDecompress(data, maxOutput), end: r.end };
}
