// Whether this node processes a query (5.2 filters): every filter must match; a node filter
// lists names, a tag filter is an unanchored regex on one tag (a missing tag counts as "").
// Unknown or malformed filters fail, as in Go.

import { decodeFilter } from './messages.ts';
import type { Tags } from './tags.ts';

/** Compiled regexes by source: filters repeat across queries, and compiling is the costly part. */
const regexCache = new Map<string, RegExp | null>();
const REGEX_CACHE_MAX = 256;

function compile(expr: string): RegExp | null {
  let re = regexCache.get(expr);
  if (re !== undefined) return re;
  try {
    // RE2 and JS agree on the common syntax users write (`w.*`, `^web-[0-9]+$`, alternation).
    re = new RegExp(expr, 'u');
  } catch {
    re = null;
  }
  if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
  regexCache.set(expr, re);
  return re;
}

export function queryFiltersMatch(filters: Uint8Array[], nodeName: string, tags: Tags): boolean {
  for (const raw of filters) {
    const f = decodeFilter(raw);
    switch (f.kind) {
      case 'node':
        if (!f.names.includes(nodeName)) return false;
        break;
      case 'tag': {
        const re = compile(f.expr);
        if (re === null || !re.test(tags[f.tag] ?? '')) return false;
        break;
      }
      case 'unknown':
        return false;
    }
  }
  return true;
}
