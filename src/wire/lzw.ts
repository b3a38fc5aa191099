// LZW exactly as Go's compress/lzw with LSB bit order and literal width 8 (protocol doc 2.6), so
// our compressed packets are byte-identical to memberlist's. Codes 0–255 are literals, 256 clear,
// 257 end of data; widths grow 9 → 12 bits; the encoder emits a clear code first, and when the
// next code would be 4095 it emits a clear and starts over with an empty table.

import { WireError } from './errors.ts';

const LIT_WIDTH = 8;
const CLEAR = 1 << LIT_WIDTH; // 256
const EOF = CLEAR + 1; // 257
const MAX_WIDTH = 12;
const MAX_CODE = (1 << MAX_WIDTH) - 1; // 4095
// Open-addressing hash of (prefix code << 8 | byte) → code, sized like Go's (4 × 4096 slots).
const TABLE_SIZE = 4 << MAX_WIDTH;
const TABLE_MASK = TABLE_SIZE - 1;

const table = new Uint32Array(TABLE_SIZE); // entry = key << 12 | code, 0 = empty; reused per call
// Slots filled since the last reset: clearing only those keeps a 60-byte ping from paying for
// wiping the whole 64 KB table (at most 4095 - 258 entries exist between resets).
const usedSlots = new Int32Array(1 << MAX_WIDTH);
let usedCount = 0;

function resetTable(): void {
  for (let i = 0; i < usedCount; i++) table[usedSlots[i] as number] = 0;
  usedCount = 0;
}

class BitWriter {
  out: Uint8Array;
  pos = 0;
  bits = 0;
  nBits = 0;
  width = LIT_WIDTH + 1;

  constructor(sizeHint: number) {
    this.out = new Uint8Array(Math.max(16, sizeHint));
  }

  write(code: number): void {
    this.bits |= code << this.nBits;
    this.nBits += this.width;
    while (this.nBits >= 8) {
      if (this.pos === this.out.length) {
        const next = new Uint8Array(this.out.length * 2);
        next.set(this.out);
        this.out = next;
      }
      this.out[this.pos++] = this.bits & 0xff;
      this.bits >>>= 8;
      this.nBits -= 8;
    }
  }
}

/** Compress `input` into Go-identical LZW bytes. */
export function lzwCompress(input: Uint8Array): Uint8Array {
  const w = new BitWriter((input.length >> 1) + 8);
  let hi = EOF;
  let overflow = CLEAR << 1;
  resetTable();

  // Returns true when the code space ran out and the table was reset (then nothing is stored).
  const incHi = (): boolean => {
    hi++;
    if (hi === overflow) {
      w.width++;
      overflow <<= 1;
    }
    if (hi === MAX_CODE) {
      w.write(CLEAR);
      w.width = LIT_WIDTH + 1;
      hi = EOF;
      overflow = CLEAR << 1;
      resetTable();
      return true;
    }
    return false;
  };

  w.write(CLEAR);
  if (input.length === 0) {
    w.write(EOF);
  } else {
    let code = input[0] as number;
    outer: for (let i = 1; i < input.length; i++) {
      const literal = input[i] as number;
      const key = (code << 8) | literal;
      let hash = ((key >>> 12) ^ key) & TABLE_MASK;
      for (let h = hash, t = table[h] as number; t !== 0; ) {
        if (key === t >>> 12) {
          code = t & MAX_CODE;
          continue outer;
        }
        h = (h + 1) & TABLE_MASK;
        t = table[h] as number;
      }
      w.write(code);
      code = literal;
      if (incHi()) continue;
      while (table[hash] !== 0) hash = (hash + 1) & TABLE_MASK;
      table[hash] = ((key << 12) | hi) >>> 0;
      usedSlots[usedCount++] = hash;
    }
    w.write(code);
    incHi();
    w.write(EOF);
  }
  if (w.nBits > 0) {
    // The final partial byte, zero padded (the high bits of `bits` are already zero).
    if (w.pos === w.out.length) {
      const next = new Uint8Array(w.out.length + 1);
      next.set(w.out);
      w.out = next;
    }
    w.out[w.pos++] = w.bits & 0xff;
  }
  return w.out.slice(0, w.pos);
}

// Decoder tables, reused across calls (never re-entered); entries are always written before read.
const decodeStarts = new Int32Array(1 << MAX_WIDTH);
const decodeLens = new Int32Array(1 << MAX_WIDTH);

/** Decompress Go LZW (LSB, width 8). Output beyond `maxOutput` bytes → ERR_WIRE_TOO_LARGE (an
 *  LZW bomb expands ~4000×); malformed codes or a missing end code → ERR_WIRE_LZW. */
export function lzwDecompress(input: Uint8Array, maxOutput: number): Uint8Array {
  // Every code's string already sits in the output (it is an earlier string plus the byte that
  // followed it), so a code is stored as (start, length) into the output and expanded with one
  // copyWithin instead of walking a prefix chain byte by byte.
  const starts = decodeStarts;
  const lens = decodeLens;
  let out = new Uint8Array(Math.min(maxOutput, Math.max(64, input.length * 4)));
  let o = 0;
  let width = LIT_WIDTH + 1;
  let hi = EOF;
  let overflow = 1 << width;
  let last = -1;
  let lastStart = 0;
  let lastLen = 0;
  let bits = 0;
  let nBits = 0;
  let i = 0;

  const reserve = (n: number): void => {
    if (o + n > maxOutput) throw new WireError('ERR_WIRE_TOO_LARGE', `LZW output exceeds ${maxOutput} bytes`);
    if (o + n <= out.length) return;
    let size = out.length * 2;
    while (size < o + n) size *= 2;
    const next = new Uint8Array(Math.min(size, maxOutput));
    next.set(out.subarray(0, o));
    out = next;
  };

  for (;;) {
    while (nBits < width) {
      if (i >= input.length) throw new WireError('ERR_WIRE_LZW', 'LZW data ends without an end code');
      bits |= (input[i++] as number) << nBits;
      nBits += 8;
    }
    const code = bits & ((1 << width) - 1);
    bits >>>= width;
    nBits -= width;

    let len: number;
    if (code < CLEAR) {
      reserve(1);
      out[o] = code;
      len = 1;
    } else if (code === CLEAR) {
      width = LIT_WIDTH + 1;
      hi = EOF;
      overflow = 1 << width;
      last = -1;
      continue;
    } else if (code === EOF) {
      return out.slice(0, o);
    } else if (code < hi) {
      len = lens[code] as number;
      reserve(len);
      const s = starts[code] as number;
      if (len < 24) {
        // copyWithin's call overhead dominates for the short strings of non-repetitive input.
        for (let k = 0; k < len; k++) out[o + k] = out[s + k] as number;
      } else out.copyWithin(o, s, s + len);
    } else if (code === hi && last >= 0) {
      // KwKwK: the code being defined right now = last string + its own first byte.
      len = lastLen + 1;
      reserve(len);
      out.copyWithin(o, lastStart, lastStart + lastLen);
      out[o + lastLen] = out[lastStart] as number;
    } else {
      throw new WireError('ERR_WIRE_LZW', `invalid LZW code ${code} (next free ${hi})`);
    }
    if (last >= 0) {
      // The new entry is the previous string plus the first byte just written after it.
      starts[hi] = lastStart;
      lens[hi] = lastLen + 1;
    }
    last = code;
    lastStart = o;
    lastLen = len;
    o += len;
    hi++;
    if (hi >= overflow) {
      if (width === MAX_WIDTH) {
        // Table full: stop defining codes until the encoder sends a clear.
        last = -1;
        hi--;
      } else {
        width++;
        overflow = 1 << width;
      }
    }
  }
}
