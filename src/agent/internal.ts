// kodama's own traffic between agents: the queries and user events it sends for checks, routes,
// balancer reports, deploys, silences and exec. They are kodama's business, not the operator's:
//
// - every name starts with INTERNAL_PREFIX (a user event or query of that name is reserved);
// - on a kodama agent they reach the subsystems that answer them, never a user's event handler
//   or an RPC event stream (as Serf keeps its `_serf_*` queries from handlers), unless the agent
//   runs with `show_internal_events`;
// - every kodama query carries the tag filter INTERNAL_FILTER_TAG=INTERNAL_FILTER_EXPR. kodama
//   agents match it without advertising the tag (SerfConfig.queryFilterTags); a real serf agent
//   has no such tag, so it drops the query before acking it or running a handler. Serf gives
//   every user event to its handlers, so kodama's user events (kodama-route, kodama-silence)
//   still reach a serf agent's handlers: docs/events.md names them.
import type { QueryParams } from '../serf/serf.ts';

export const INTERNAL_PREFIX = 'kodama-';

/** The tag filter on kodama's own queries, and the tag kodama agents match it with. */
export const INTERNAL_FILTER_TAG = '_kodama';
export const INTERNAL_FILTER_EXPR = '^1$';
export const INTERNAL_QUERY_MATCH_TAGS: Readonly<Record<string, string>> = { [INTERNAL_FILTER_TAG]: '1' };

/** Whether a query or user event name is kodama's own. */
export function isInternalName(name: string): boolean {
  return name.startsWith(INTERNAL_PREFIX);
}

/** The params to send: kodama's own queries get the kodama-only tag filter; others as they are. */
export function withInternalFilter<P extends Pick<QueryParams, 'name' | 'filterTags'>>(p: P): P {
  if (!isInternalName(p.name)) return p;
  return { ...p, filterTags: { ...p.filterTags, [INTERNAL_FILTER_TAG]: INTERNAL_FILTER_EXPR } };
}
