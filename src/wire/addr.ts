// IP text <-> the raw bytes memberlist puts in Addr/Target/SourceAddr fields (4 bytes for IPv4,
// 16 for IPv6, like Go's net.IP). Hand-written so the wire layer needs no node:net.

import { WireError } from './errors.ts';

function bad(ip: string): WireError {
  return new WireError('ERR_WIRE_BAD_VALUE', `invalid IP address ${JSON.stringify(ip)}`);
}

function parseV4(s: string, out: Uint8Array, at: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? '';
    // Reject empty, signs, leading zeros (ambiguous octal) and anything non-decimal.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

/** Parse a dotted quad (→ 4 bytes) or an IPv6 literal (→ 16 bytes; a `%zone` and `[]` are
 *  stripped). Throws WireError('ERR_WIRE_BAD_VALUE') on anything else. */
export function ipToBytes(ip: string): Uint8Array {
  if (ip.includes('.') && !ip.includes(':')) {
    const out = new Uint8Array(4);
    if (!parseV4(ip, out, 0)) throw bad(ip);
    return out;
  }
  let s = ip;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(':')) throw bad(ip);
  const out = new Uint8Array(16);
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) throw bad(ip);
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  // Groups as 16-bit values; an embedded dotted quad at the very end counts as two groups.
  const toWords = (groups: string[], allowV4Last: boolean): number[] | null => {
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] ?? '';
      if (allowV4Last && i === groups.length - 1 && g.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!parseV4(g, v4, 0)) return null;
        words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      words.push(parseInt(g, 16));
    }
    return words;
  };
  const hw = toWords(headGroups, dbl < 0);
  const tw = toWords(tailGroups, true);
  if (hw === null || tw === null) throw bad(ip);
  if (dbl < 0 ? hw.length !== 8 : hw.length + tw.length > 7) throw bad(ip);
  const words = [...hw, ...new Array<number>(8 - hw.length - tw.length).fill(0), ...tw];
  for (let i = 0; i < 8; i++) {
    const w = words[i] ?? 0;
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  }
  return out;
}

/** Format 4 or 16 raw bytes like Go's net.IP.String(): IPv4-mapped IPv6 prints as a dotted quad,
 *  other IPv6 in RFC 5952 form (lowercase, longest zero run of ≥ 2 groups as `::`). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) {
    throw new WireError('ERR_WIRE_BAD_VALUE', `IP address must be 4 or 16 bytes, got ${b.length}`);
  }
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestLen < 2) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}
