// `members-filtered`: serf anchors every filter as `^<expr>$` (Go RE2) and matches it against the
// member's name, status string and each requested tag (a missing tag matches as ""). Empty name
// and status filters mean "any"; an empty tag filter only matches an empty or missing tag.

import type { RpcMember } from './backend.ts';

export interface MemberFilter {
  name?: string | undefined;
  status?: string | undefined;
  tags?: Record<string, string> | undefined;
}

export class FilterError extends Error {
  readonly code = 'ERR_RPC_FILTER';
}

/**
 * Compile a Go regexp for JavaScript, anchored the way serf does it (`^%s$` by string
 * concatenation, so `a|b` becomes `^a|b$` exactly as in Go). RE2 leading flag groups such as
 * `(?i)` have no inline equivalent in this Node version, so they become RegExp flags.
 */
export function compileAnchored(expr: string): RegExp {
  let body = expr;
  let flags = '';
  const lead = /^\(\?([imsU]+)\)/.exec(body);
  if (lead !== null) {
    const set = lead[1] ?? '';
    if (set.includes('U')) throw new FilterError(`Failed to compile regex: ungreedy flag (?U) is not supported: ${expr}`);
    flags = [...new Set(set)].join('');
    body = body.slice(lead[0].length);
  }
  try {
    return new RegExp(`^${body}$`, flags);
  } catch (err) {
    throw new FilterError(`Failed to compile regex: ${(err as Error).message}`);
  }
}

/** Members passing every filter, in input order. Throws FilterError for an invalid regexp. */
export function filterMembers(members: readonly RpcMember[], f: MemberFilter): RpcMember[] {
  const tagRes: [string, RegExp][] = Object.entries(f.tags ?? {}).map(([k, v]) => [k, compileAnchored(v)]);
  const statusRe = f.status ? compileAnchored(f.status) : null;
  const nameRe = f.name ? compileAnchored(f.name) : null;
  return members.filter(
    (m) =>
      tagRes.every(([k, re]) => re.test(Object.hasOwn(m.tags, k) ? (m.tags[k] ?? '') : '')) &&
      (statusRe === null || statusRe.test(m.status)) &&
      (nameRe === null || nameRe.test(m.name)),
  );
}
