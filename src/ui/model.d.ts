// Types of model.js for TypeScript callers (the unit tests); the browser never loads this file.
import type { ApiMember, ApiEvent, DeploysResponse, DeploySummary } from '../http/types.ts';
import type { RouteEntry, DeployState, DeployPhase, DeployEvent } from '../deploy/types.ts';
import type { ChecksReport, Silence, CheckState, CheckStatus } from '../checks/types.ts';

export type MemberStatus = ApiMember['status'];
export const STATUSES: MemberStatus[];
export const DEPLOY_STEPS: DeployPhase[];
export const FINAL_PHASES: DeployPhase[];
export const CHECK_STATES: CheckState[];
export function compareNames(a: string, b: string): number;
export function checkState(status: number): CheckState;
export function groupByRole<M extends { name: string; role: string | null }>(members: M[]): { role: string; members: M[] }[];
export function countByStatus(members: { status: MemberStatus }[]): Record<MemberStatus, number>;
export function diffMembers(before: ApiMember[], after: ApiMember[]): { added: ApiMember[]; removed: ApiMember[]; changed: ApiMember[] };
export function upsertMember(members: ApiMember[], m: ApiMember): ApiMember[];
export function mergeEvents(existing: ApiEvent[], incoming: ApiEvent[], max?: number): ApiEvent[];
export function eventTone(kind: ApiEvent['kind'], text?: string): 'bad' | 'warn' | 'good' | 'info';
export function formatClock(ms: number): string;
export function formatDuration(ms: number): string;
export function formatAgo(ms: number | null | undefined, now: number): string;
export function agoText(template: string, since: number, now: number): string;
export const GONE_STATUSES: MemberStatus[];
export function isCurrent(m: { status: MemberStatus }): boolean;
export interface Age { template: string; since: number }
export function statusAge(m: Pick<ApiMember, 'status' | 'statusSince'>, agentStartedAt: number | null | undefined): Age | null;
export function lastKnown(m: Pick<ApiMember, 'status' | 'statusSince'>, agentStartedAt: number | null | undefined): Age | null;
export function checksText(checks: ApiMember['checks']): string | null;
export function checkRanAge(lastRunAt: number): Age | null;
export type StreamState = 'loading' | 'connecting' | 'live' | 'reconnecting' | 'offline' | 'token';
export function streamLabel(state: StreamState, retryInS?: number): string;
export function formatRtt(ms: number | null | undefined): string;
export function formatCount(n: number): string;
export function formatErrorRate(errors: number, requests: number): string;
export interface SparkBar { x: number; y: number; w: number; h: number; state: CheckState }
export function sparklineBars(history: string | undefined, width: number, height: number, slots?: number): SparkBar[];
export function silenceMatches(s: Silence, node: string, role: string | null, check: string, now: number): boolean;
export function silenceScope(s: Silence): string;
export type CheckRow = ChecksReport['checks'][number] & { node: string; role: string | null; state: CheckState; status: CheckStatus };
export function checkRows(nodes: ChecksReport[]): CheckRow[];
export function routeSegments(route: RouteEntry | null | undefined): { value: string; percent: number }[];
export function valueColor(value: string | null | undefined): string;
export function deploySteps(phase: DeployPhase, lastStep?: DeployPhase, stepIndex?: number, stepCount?: number): { step: DeployPhase; label: string; state: 'done' | 'current' | 'todo' | 'stopped' }[];
export function lastNormalPhase(events: DeployEvent[] | undefined): DeployPhase | undefined;
export function deployPercent(d: DeployState): number;
export interface DeployView {
  id: string; coordinator: string; service: string; from: string; to: string; phase: DeployPhase; percent: number;
  steps: number[]; figures: Record<string, string>; reason: string | undefined; startedAt: number; updatedAt: number;
  lastStep: DeployPhase | undefined; events: DeployEvent[];
  /** Index into steps of the split published last (-1 = none yet). */
  stepIndex: number;
}
export function deployView(d: DeployState | DeploySummary): DeployView;
export function collectDeploys(response: DeploysResponse | null | undefined, streamed?: DeployState[]): DeployView[];
export function backoffMs(attempt: number, rand?: number): number;
export function withToken(path: string, token: string | null | undefined): string;
export interface PlotSeries { name: string; points: [number, number][]; tone?: string; key?: string; dashed?: boolean }
export function historySeries(history: import('../http/types.ts').HistoryResponse | null | undefined): {
  members: PlotSeries[]; gossip: PlotSeries[]; checks: PlotSeries[]; balancers: { node: string; series: PlotSeries[] }[];
};
export function niceMax(max: number): number;
export function plotPoints(points: [number, number][], t0: number, t1: number, yMax: number, width: number, height: number): string;
export interface RoleBand {
  role: string; nodes: string[]; unit: string; label: string;
  /** [t ms, min, max] per step with a sample */
  band: [number, number, number][];
  median: [number, number][];
  outliers: { node: string; value: number; median: number; points: [number, number][] }[];
}
export function roleBands(report: import('../metrics/report.ts').MetricsReport | null | undefined, field: string): RoleBand[];
export function formatFigure(v: number | null | undefined, unit: string): string;
