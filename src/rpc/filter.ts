// `members-filtered`: serf anchors every filter as `^<expr>$` (Go RE2) and matches it against the
// member's name, status string and each requested tag (a missing tag matches as ""). Empty name
// and status filters mean "any"; an empty tag filter only matches an empty or missing tag.

import { createContext, runInContext } from 'node:vm';
import type { RpcMember } from './backend.ts';

/**
 * Go's RE2 matches in linear time; JavaScript backtracks, so `(a+)+b` against a long name could
 * stall the agent's event loop for minutes. Matching therefore runs under a time budget (wall
 * time, generous so that a loaded machine never trips it on an honest filter).
 */
export const MATCH_BUDGET_MS = 1000;

// Runs inside a vm context so its timeout can interrupt a runaway regexp. Returns the indices
// of matching members.
const MATCH_SCRIPT = `(() => {
  const out = [];
  outer: for (let i = 0; i < members.length; i++) {
    const m = members[i];
    for (const [k, re] of tagRes) {
      if (!re.test(Object.hasOwn(m.tags, k) ? m.tags[k] : '')) continue outer;
    }
    if (statusRe !== null && !statusRe.test(m.status)) continue;
    if (nameRe !== null && !nameRe.test(m.name)) continue;
    out.push(i);
  }
  return out;
})()`;

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

/** Members passing every filter, in input order. Throws FilterError for an invalid or runaway regexp. */
export function filterMembers(members: readonly RpcMember[], f: MemberFilter): RpcMember[] {
  const tagRes: [string, RegExp][] = Object.entries(f.tags ?? {}).map(([k, v]) => [k, compileAnchored(v)]);
  const statusRe = f.status ? compileAnchored(f.status) : null;
  const nameRe = f.name ? compileAnchored(f.name) : null;
  if (tagRes.length === 0 && statusRe === null && nameRe === null) return [...members];
  const ctx = createContext({ members, tagRes, statusRe, nameRe });
  let picked: number[];
  try {
    picked = runInContext(MATCH_SCRIPT, ctx, { timeout: MATCH_BUDGET_MS }) as number[];
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      throw new FilterError(`Failed to evaluate regex: matching took over ${MATCH_BUDGET_MS} ms (catastrophic backtracking?)`);
    }
    throw err;
  }
  return [...picked].map((i) => members[i]).filter((m): m is RpcMember => m !== undefined);
}
