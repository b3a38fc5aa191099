// Finds where one msgpack object ends without decoding it. RPC requests arrive on a TCP stream
// with no length prefix, so the server needs the object's extent before it decodes: this lets it
// refuse an oversized request as soon as its header *declares* too much (a str32 claiming 4 GiB,
// a map claiming 2^32 entries) instead of buffering up to the cap, and decode each object once.
//
// Each remaining item needs at least one byte, so the work is bounded by maxBytes.

export type Extent =
  | { kind: 'complete'; end: number }
  | { kind: 'incomplete' }
  | { kind: 'too-large' }
  | { kind: 'malformed'; byte: number };

/** Big-endian unsigned length/count field of `width` bytes at `at`. */
function lengthField(buf: Uint8Array, at: number, width: number): number {
  let n = 0;
  for (let i = 0; i < width; i++) n = n * 256 + (buf[at + i] ?? 0);
  return n;
}

export function msgpackExtent(buf: Uint8Array, off: number, maxBytes: number): Extent {
  const limit = off + maxBytes;
  let pos = off;
  let remaining = 1; // items still to skip
  while (remaining > 0) {
    if (pos + remaining > limit) return { kind: 'too-large' };
    if (pos >= buf.length) return { kind: 'incomplete' };
    const b = buf[pos] ?? 0;
    remaining--;
    // bytes this item occupies itself (type byte, length field, payload) and items nested in it
    let head = 1;
    let lenWidth: 0 | 1 | 2 | 4 = 0;
    let extPayload = 0; // ext types carry one type byte before the payload
    let items = 0;
    let countWidth: 0 | 2 | 4 = 0;
    let perCount = 1;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      head = 1;
    } else if (b <= 0x8f) {
      items = (b & 0x0f) * 2;
    } else if (b <= 0x9f) {
      items = b & 0x0f;
    } else if (b <= 0xbf) {
      head = 1 + (b & 0x1f);
    } else {
      switch (b) {
        case 0xc4: case 0xd9: lenWidth = 1; break;
        case 0xc5: case 0xda: lenWidth = 2; break;
        case 0xc6: case 0xdb: lenWidth = 4; break;
        case 0xc7: lenWidth = 1; extPayload = 1; break;
        case 0xc8: lenWidth = 2; extPayload = 1; break;
        case 0xc9: lenWidth = 4; extPayload = 1; break;
        case 0xca: head = 5; break;
        case 0xcb: head = 9; break;
        case 0xcc: case 0xd0: head = 2; break;
        case 0xcd: case 0xd1: head = 3; break;
        case 0xce: case 0xd2: head = 5; break;
        case 0xcf: case 0xd3: head = 9; break;
        case 0xd4: head = 3; break;
        case 0xd5: head = 4; break;
        case 0xd6: head = 6; break;
        case 0xd7: head = 10; break;
        case 0xd8: head = 18; break;
        case 0xdc: countWidth = 2; break;
        case 0xdd: countWidth = 4; break;
        case 0xde: countWidth = 2; perCount = 2; break;
        case 0xdf: countWidth = 4; perCount = 2; break;
        default: return { kind: 'malformed', byte: b }; // 0xc1 is never used
      }
    }
    if (lenWidth > 0) {
      if (pos + 1 + lenWidth > buf.length) return pos + 1 + lenWidth > limit ? { kind: 'too-large' } : { kind: 'incomplete' };
      head = 1 + lenWidth + extPayload + lengthField(buf, pos + 1, lenWidth);
    } else if (countWidth > 0) {
      if (pos + 1 + countWidth > buf.length) return pos + 1 + countWidth > limit ? { kind: 'too-large' } : { kind: 'incomplete' };
      head = 1 + countWidth;
      items = lengthField(buf, pos + 1, countWidth) * perCount;
    }
    pos += head;
    remaining += items;
    if (pos > limit) return { kind: 'too-large' };
  }
  if (pos > buf.length) return { kind: 'incomplete' };
  return { kind: 'complete', end: pos };
}
