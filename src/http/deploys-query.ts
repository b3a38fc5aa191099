// `kodama-deploys` (DEPLOYS_QUERY): an agent with a deploy runner answers with its latest deploy
// as a DeploySummary, so any agent's dashboard shows a deploy's progress whichever agent runs it.
// The answer must fit Serf's query response limit (1024 bytes with its header): figures and the
// reason are shortened, then dropped, until it does.

import type { DeployState } from '../deploy/types.ts';
import { FINAL_PHASES } from '../deploy/types.ts';
import { DEPLOYS_QUERY as DEPLOYS_QUERY_NAME } from './types.ts';
import type { DeploySummary } from './types.ts';

export const SUMMARY_MAX_BYTES = 1024;

export function summarizeDeploy(d: DeployState): DeploySummary {
  const step = d.spec.steps[d.step];
  return {
    id: d.id,
    coordinator: d.coordinator,
    service: d.spec.service,
    from: d.spec.from,
    to: d.spec.to,
    phase: d.phase,
    percent: d.step >= 0 && step !== undefined ? step : 0,
    steps: [...d.spec.steps],
    startedAt: d.startedAt,
    updatedAt: d.updatedAt,
    ...(d.reason !== undefined ? { reason: d.reason } : {}),
    figures: { ...d.figures },
  };
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, Math.max(0, n - 1))}…`;
}

/** JSON of `s` in at most maxBytes: long texts clipped first, then figures and reason dropped. */
export function encodeDeploySummary(s: DeploySummary, maxBytes = SUMMARY_MAX_BYTES): Uint8Array {
  const enc = (v: DeploySummary): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
  let bytes = enc(s);
  if (bytes.byteLength <= maxBytes) return bytes;
  const work: DeploySummary = {
    ...s,
    ...(s.reason !== undefined ? { reason: clip(s.reason, 160) } : {}),
    figures: Object.fromEntries(Object.entries(s.figures).slice(0, 12).map(([k, v]) => [clip(k, 40), clip(v, 40)])),
  };
  bytes = enc(work);
  // Bounded: one figure per round, then the reason.
  const keys = Object.keys(work.figures);
  while (bytes.byteLength > maxBytes && keys.length > 0) {
    delete work.figures[keys.pop()!];
    bytes = enc(work);
  }
  if (bytes.byteLength > maxBytes && work.reason !== undefined) {
    delete work.reason;
    bytes = enc(work);
  }
  return bytes;
}

const PHASES = new Set<string>(['prepare', 'check', 'shift', 'drain', 'bake', 'rolling-back', ...FINAL_PHASES]);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A DeploySummary read strictly from an answer; undefined when it is not one (never throws). */
export function decodeDeploySummary(b: Uint8Array): DeploySummary | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  for (const k of ['id', 'coordinator', 'service', 'from', 'to'] as const) if (typeof o[k] !== 'string') return undefined;
  if (typeof o['phase'] !== 'string' || !PHASES.has(o['phase'])) return undefined;
  if (!isNum(o['percent']) || !isNum(o['startedAt']) || !isNum(o['updatedAt'])) return undefined;
  if (!Array.isArray(o['steps']) || !o['steps'].every(isNum)) return undefined;
  if (o['reason'] !== undefined && typeof o['reason'] !== 'string') return undefined;
  const f = o['figures'];
  if (typeof f !== 'object' || f === null || Array.isArray(f) || !Object.values(f).every((x) => typeof x === 'string')) return undefined;
  return {
    id: o['id'] as string,
    coordinator: o['coordinator'] as string,
    service: o['service'] as string,
    from: o['from'] as string,
    to: o['to'] as string,
    phase: o['phase'] as DeploySummary['phase'],
    percent: o['percent'],
    steps: o['steps'] as number[],
    startedAt: o['startedAt'],
    updatedAt: o['updatedAt'],
    ...(o['reason'] !== undefined ? { reason: o['reason'] as string } : {}),
    figures: { ...(f as Record<string, string>) },
  };
}

interface QueryHost {
  readonly nodeName: string;
  on(type: 'query', fn: (q: { name: string; respond(p: Uint8Array): void }) => void): () => void;
  readonly deploys: { current(): DeployState | undefined } | undefined;
  readonly logger: { log(level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void };
}

/** Answer DEPLOYS_QUERY while the agent has a deploy runner with a deploy; silent otherwise. */
export function answerDeploysQuery(agent: QueryHost, limitBytes = SUMMARY_MAX_BYTES): () => void {
  // Serf's limit counts the whole response message: leave room for its header and our name.
  const maxBytes = limitBytes - 64 - Buffer.byteLength(agent.nodeName, 'utf8');
  return agent.on('query', (q) => {
    if (q.name !== DEPLOYS_QUERY_NAME) return;
    const cur = agent.deploys?.current();
    if (cur === undefined) return;
    try {
      q.respond(encodeDeploySummary(summarizeDeploy(cur), maxBytes));
    } catch (e) {
      agent.logger.log('DEBUG', `deploys: could not answer ${DEPLOYS_QUERY_NAME}: ${(e as Error).message}`);
    }
  });
}
