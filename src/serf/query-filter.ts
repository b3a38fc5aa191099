// Whether this node processes a query (5.2 filters): every filter must match; a node filter
// lists names, a tag filter is an unanchored regex on one tag (a missing tag counts as "").
// Unknown or malformed filters fail, as in Go.

import { decodeFilter } from './messages.ts';
import type { Tags } from './tags.ts';

/** Compiled regexes by source: filters repeat across queries, and compiling is the costly part. */
const regexCache = new Map<string, RegExp | null>();
const REGEX_CACHE_MAX = 256;

/** Longest pattern we compile: tag values are at most 512 bytes, so are sane filters. */
const MAX_EXPR_LENGTH = 512;
/**
 * A quantified group that itself contains a quantifier (`(a+)+`, `(.*)*x`, `(a|aa){2,}`):
 * Go's RE2 runs these in linear time, JS backtracking can take exponential time, and the
 * pattern comes from the network. Such filters fail (the node does not process the query).
 */
const NESTED_QUANTIFIER = /\([^()]*[+*?}][^()]*\)\s*[+*?{]/;

export function unsafeRegex(expr: string): boolean {
  return expr.length > MAX_EXPR_LENGTH || NESTED_QUANTIFIER.test(expr) || /\\[1-9]/.test(expr);
}

function compile(expr: string): RegExp | null {
  let re = regexCache.get(expr);
  if (re !== undefined) return re;
  if (unsafeRegex(expr)) {
    re = null;
    if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
    regexCache.set(expr, re);
    return re;
  }
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
