// The asker's side of `kodama-metrics`, shared by `kodama metrics` and the HTTP API
// (/v1/performance): the request for a window, and the answers grouped by role into RoleViews.

import { FIELD_NAMES, decodeSeries, planWindow, pointsThatFit, roleView } from './series.ts';
import type { RoleView, Series } from './series.ts';
import { encodeMetricsRequest } from './protocol.ts';

/** The step a grid starts from: the agents' default sampling; other intervals still fall into buckets. */
export const DEFAULT_STEP_S = 10;
/** Serf's default query_response_size_limit, less the response's own header and a long node name. */
const ANSWER_BYTES = 1024 - 64 - 64;

export interface MetricsReport {
  /** The window asked for (Unix seconds): n steps of stepS ending at endS. */
  endS: number;
  stepS: number;
  n: number;
  roles: RoleView[];
  /** Alive members that matched but did not answer (sampling off, a serf agent, too slow). */
  silent: string[];
}

export interface Grid {
  endS: number;
  stepS: number;
  n: number;
}

/** The grid for the last `sinceS` seconds, and the query payload that asks for it (every figure). */
export function metricsRequest(nowS: number, sinceS: number, stepS = DEFAULT_STEP_S): { grid: Grid; payload: Uint8Array } {
  const grid = planWindow(Math.floor(nowS), sinceS, stepS, pointsThatFit(FIELD_NAMES.length, ANSWER_BYTES));
  return { grid, payload: new TextEncoder().encode(encodeMetricsRequest({ ...grid, fields: [...FIELD_NAMES] }, FIELD_NAMES)) };
}

/** Per role (the `role` tag; '' when none), the answers of its members. */
export function buildMetricsReport(members: readonly { name: string; tags: Record<string, string> }[], answers: ReadonlyMap<string, string>, grid: Grid): MetricsReport {
  const byRole = new Map<string, Map<string, Series>>();
  const silent: string[] = [];
  for (const m of members) {
    const text = answers.get(m.name);
    const s = text === undefined ? undefined : decodeSeries(text, FIELD_NAMES);
    if (s === undefined) {
      silent.push(m.name);
      continue;
    }
    const role = m.tags['role'] ?? '';
    const map = byRole.get(role) ?? new Map<string, Series>();
    map.set(m.name, s);
    byRole.set(role, map);
  }
  const roles = [...byRole.keys()].sort().map((r) => roleView(r, byRole.get(r)!, grid, FIELD_NAMES));
  return { ...grid, roles, silent: silent.sort() };
}
