// Pure conversions from the agent's model to the API's JSON (src/http/types.ts).

import type { Member } from '../serf/serf.ts';
import { decodeServiceTags } from '../discovery/advertise.ts';
import { decodeSummary } from '../checks/summary.ts';
import { SUMMARY_TAG } from '../checks/types.ts';
import type { ApiMember } from './types.ts';

const STATE_NAME = { 1: 'warning', 2: 'critical', 3: 'unknown' } as const;

export function fmtAddr(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The `chk` tag decoded; null when the node publishes none or it cannot be read. */
export function checksOfTags(tags: Record<string, string>): ApiMember['checks'] {
  const raw = tags[SUMMARY_TAG];
  if (raw === undefined) return null;
  const s = decodeSummary(raw);
  if (s === undefined) return null;
  const failing: NonNullable<ApiMember['checks']>['failing'] = [];
  for (const e of s.entries) {
    if (e.status === 0) continue;
    failing.push({ name: e.name, state: STATE_NAME[e.status], occurrences: e.occurrences, flapping: e.flapping });
  }
  return { total: s.total, failing };
}

export function toApiMember(m: Member, statusSince: number | null, rttMs: number | null = null): ApiMember {
  const tags: Record<string, string> = { ...m.tags };
  return {
    name: m.name,
    addr: m.addr.ip,
    port: m.addr.port,
    status: m.status,
    tags,
    role: tags['role'] ?? null,
    services: decodeServiceTags(tags).services.map((s) => ({ name: s.name, port: s.port, protocol: s.protocol, weight: s.weight, draining: s.draining })),
    checks: checksOfTags(tags),
    statusSince,
    rttMs,
  };
}
