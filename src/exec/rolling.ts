// `kodama rolling`: a command over a role in batches, never taking more than one batch out of
// rotation. Per batch: drain the nodes' services (`drain` op of kodama-exec: their s:* tags get
// `,drain`) → wait until no balancer has them ready and none has work in flight on them (bounded)
// → run the command → undrain → wait until every balancer has them ready again → next batch.
// The first failure stops everything and says where; a node whose command failed stays drained.
// Balancers are watched through `kodama-backends` (answered by nodes with tag `lb`).

import type { RpcClient } from '../rpc/index.ts';
import { decodeBalancerReport } from '../discovery/backends-report.ts';
import { decodeServiceTags } from '../discovery/advertise.ts';
import { BACKENDS_QUERY, BALANCER_TAG } from '../deploy/types.ts';
import type { BalancerReport } from '../deploy/types.ts';
import { askRaw, checkCommandFits, resolveTargets, runOnNodes, setDraining } from './client.ts';
import type { TargetFilter } from './client.ts';
import { ExecError } from './errors.ts';
import type { ExecNodeResult } from './types.ts';

export interface RollingOptions extends TargetFilter {
  /** The balanced service to drain (default: the role). */
  service: string;
  batch: number;
  token: string;
  command: string;
  drainTimeoutMs: number;
  healthTimeoutMs: number;
  runTimeoutMs?: number;
  lostAfterMs?: number;
  /** How often balancers are asked while waiting (default 250 ms). */
  watchEveryMs?: number;
  interrupt?: AbortSignal;
  /** Progress lines (no trailing newline). */
  say: (line: string) => void;
  onOutput?: (node: string, bytes: Uint8Array) => void;
  onResult?: (r: ExecNodeResult) => void;
}

export interface RollingFailure {
  /** 1-based. */
  batch: number;
  node: string;
  step: 'drain' | 'run' | 'health';
  reason: string;
}

export interface RollingResult {
  batches: string[][];
  /** Batches fully done. */
  completed: number;
  failure?: RollingFailure;
  results: ExecNodeResult[];
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/** Alive members whose `lb` tag lists the service. */
async function balancersOf(client: RpcClient, service: string): Promise<string[]> {
  const members = await client.members();
  return members
    .filter((m) => m.status === 'alive' && (m.tags[BALANCER_TAG] ?? '').split(',').map((s) => s.trim()).includes(service))
    .map((m) => m.name)
    .sort();
}

/** Members whose tags advertise `service` healthy and not draining. */
async function advertisedReady(client: RpcClient, service: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await client.members()) {
    if (m.status !== 'alive') continue;
    if (decodeServiceTags(m.tags).services.some((s) => s.name === service && !s.draining)) out.add(m.name);
  }
  return out;
}

/** One round of reports from the balancers (those that answered within timeoutMs). */
/** A filter of ids is sent only while it keeps the query small; beyond, the whole set is asked. */
const MAX_FILTER_BYTES = 400;

/**
 * Each balancer's report of `service`; with `ids`, only those backends (so a batch is seen even
 * when the whole set would be truncated to fit one answer).
 */
export async function balancerReports(client: RpcClient, balancers: readonly string[], service: string, timeoutMs = 1000, interrupt?: AbortSignal, ids?: readonly string[]): Promise<Map<string, BalancerReport>> {
  const out = new Map<string, BalancerReport>();
  if (balancers.length === 0) return out;
  let payload = JSON.stringify({ service, ...(ids !== undefined ? { ids } : {}) });
  if (payload.length > MAX_FILTER_BYTES) payload = JSON.stringify({ service });
  await askRaw(client, BACKENDS_QUERY, new TextEncoder().encode(payload), balancers, timeoutMs, (node, p) => {
    const r = decodeBalancerReport(p);
    if (r !== undefined) out.set(node, r);
  }, interrupt);
  return out;
}

type Verdict = { ok: true } | { ok: false; node: string; why: string };

/**
 * Ask the balancers every watchEveryMs until `judge` (over a full set of reports, one per
 * balancer) says ok, or timeoutMs passes: then the last verdict (or "no answer").
 */
async function watch(
  client: RpcClient,
  balancers: readonly string[],
  o: RollingOptions,
  timeoutMs: number,
  judge: (reports: Map<string, BalancerReport>) => Verdict,
  refresh?: () => Promise<void>,
  ids?: readonly string[],
): Promise<Verdict> {
  const deadline = Date.now() + timeoutMs;
  const latest = new Map<string, BalancerReport>();
  let last: Verdict = { ok: false, node: balancers[0] ?? '?', why: 'no balancer answered' };
  for (let i = 0; i < 100_000 && o.interrupt?.aborted !== true; i++) {
    const t0 = Date.now();
    for (const [n, r] of await balancerReports(client, balancers, o.service, 1000, o.interrupt, ids)) latest.set(n, r);
    await refresh?.();
    const silent = balancers.filter((b) => !latest.has(b));
    last = silent.length > 0 ? { ok: false, node: silent[0]!, why: `balancer ${silent.join(', ')} did not answer ${BACKENDS_QUERY}` } : judge(latest);
    if (last.ok || Date.now() >= deadline) return last;
    const wait = (o.watchEveryMs ?? 250) - (Date.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return o.interrupt?.aborted === true ? { ok: false, node: '-', why: 'interrupted' } : last;
}

export async function runRolling(client: RpcClient, o: RollingOptions): Promise<RollingResult> {
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new ExecError('ERR_EXEC_NO_NODES', 'the batch size must be at least 1');
  checkCommandFits(o.token, o.command); // before anything is drained
  const targets = await resolveTargets(client, o);
  if (targets.failed.length > 0) {
    o.say(`warning: ${targets.failed.join(', ')} failed: left out (run it there once it is back)`);
  }
  const balancers = await balancersOf(client, o.service);
  if (balancers.length === 0) {
    throw new ExecError('ERR_EXEC_NO_BALANCER', `no alive balancer serves ${o.service} (no member with tag ${BALANCER_TAG} listing it): rolling drains nodes through the balancers; pass -service if the service is not named like the role, or use kodama exec to run without draining`);
  }
  const batches: string[][] = [];
  for (let i = 0; i < targets.alive.length; i += o.batch) batches.push(targets.alive.slice(i, i + o.batch));
  const results: ExecNodeResult[] = [];
  const total = batches.length;
  o.say(`rolling \`${o.command}\` over ${targets.alive.length} node(s) in ${total} batch(es) of ≤ ${o.batch}; service ${o.service} on balancer(s) ${balancers.join(', ')}`);

  // A report too large for one answer leaves idle backends out (counted in `truncated`): a node
  // missing from such a report is unknown there, neither in nor out of rotation.
  const serving = (reports: Map<string, BalancerReport>, node: string, seenDrain?: Set<string>): { ready: number; active: number; unknown: number } => {
    let ready = 0;
    let active = 0;
    let unknown = 0;
    for (const [from, r] of reports) {
      const svc = r.services[o.service];
      const b = svc?.backends.find((x) => x.id === node);
      if (b?.state === 'ready') ready++;
      if (b?.state === 'drain') seenDrain?.add(`${from}/${node}`);
      if (b === undefined && (svc?.truncated ?? 0) > 0 && seenDrain?.has(`${from}/${node}`) !== true) unknown++;
      active += b?.active ?? 0;
    }
    return { ready, active, unknown };
  };
  // Put back means "as before": a node no balancer had ready at the start (no such service,
  // unhealthy, drained by hand) is run without waiting for it to become ready.
  const before = await balancerReports(client, balancers, o.service, 2000, o.interrupt);
  const wasServing = new Set(targets.alive.filter((n) => before.size > 0 && (serving(before, n).ready > 0 || serving(before, n).unknown > 0)));
  const notServing = targets.alive.filter((n) => !wasServing.has(n));
  if (before.size === 0) o.say(`warning: no balancer answered ${BACKENDS_QUERY} yet: every node must be ready again after its batch`);
  else if (notServing.length > 0) o.say(`note: ${notServing.join(', ')} not in rotation now: run without draining waits or health waits`);
  const fail = (batch: number, node: string, step: RollingFailure['step'], reason: string): RollingResult => ({
    batches, completed: batch - 1, failure: { batch, node, step, reason }, results,
  });

  for (let bi = 0; bi < total; bi++) {
    const batch = batches[bi]!;
    const no = bi + 1;
    const t0 = Date.now();
    const tag = `batch ${no}/${total} (${batch.join(', ')})`;
    // 1. drain
    o.say(`${tag}: draining`);
    const drained = await setDraining(client, batch, o.token, true, 5000, o.interrupt);
    for (const n of batch) {
      const a = drained.get(n);
      if (a?.kind === 'drain') continue;
      const reason = a === undefined ? 'no answer to the drain request' : a.kind === 'refused' ? `drain refused: ${a.code}: ${a.message}` : 'unexpected answer';
      // Nothing ran in this batch: put back the ones that did drain.
      await setDraining(client, batch.filter((x) => drained.get(x)?.kind === 'drain'), o.token, false, 5000);
      return fail(no, n, 'drain', reason);
    }
    const seenDrain = new Set<string>();
    const out = await watch(client, balancers, o, o.drainTimeoutMs, (reports) => {
      for (const n of batch) {
        const s = serving(reports, n, seenDrain);
        if (s.ready > 0) return { ok: false, node: n, why: `still in rotation on ${s.ready} balancer(s)` };
        if (s.unknown > 0) return { ok: false, node: n, why: `not listed in the (truncated) report of ${s.unknown} balancer(s) yet` };
        if (s.active > 0) return { ok: false, node: n, why: `${s.active} request(s) still in flight` };
      }
      return { ok: true };
    }, undefined, batch);
    if (!out.ok) {
      if (/in flight/.test(out.why)) o.say(`${tag}: warning: ${out.node}: ${out.why} after ${secs(o.drainTimeoutMs)}: going on`);
      else return fail(no, out.node, 'drain', `${out.why} after ${secs(Date.now() - t0)}; the batch stays drained (kodama rolling -undrain -node … puts it back)`);
    }
    o.say(`${tag}: out of rotation on ${balancers.length} balancer(s) after ${secs(Date.now() - t0)}; running`);
    // 2. run
    const ran = await runOnNodes(client, { alive: batch, failed: [] }, {
      token: o.token,
      command: o.command,
      ...(o.runTimeoutMs !== undefined ? { timeoutMs: o.runTimeoutMs } : {}),
      ...(o.lostAfterMs !== undefined ? { lostAfterMs: o.lostAfterMs } : {}),
      ...(o.interrupt !== undefined ? { interrupt: o.interrupt } : {}),
      ...(o.onOutput !== undefined ? { onOutput: o.onOutput } : {}),
      ...(o.onResult !== undefined ? { onResult: o.onResult } : {}),
    });
    results.push(...ran);
    const bad = ran.filter((r) => r.exitCode !== 0);
    const good = ran.filter((r) => r.exitCode === 0).map((r) => r.node);
    // 3. back in rotation (only the nodes whose command succeeded)
    if (good.length > 0) await setDraining(client, good, o.token, false, 5000, o.interrupt);
    if (bad.length > 0) {
      const outcome = (r: ExecNodeResult): string =>
        r.refused !== undefined ? `refused: ${r.refused.code}: ${r.refused.message}` : r.lost === true ? 'lost (no answer)' : r.exitCode !== null ? `exit ${r.exitCode}` : `killed (${r.signal ?? 'signal'})`;
      // Name a node that ran and failed before one that merely went silent.
      const first = bad.find((r) => r.exitCode !== null || r.signal !== undefined) ?? bad[0]!;
      const others = bad.filter((r) => r !== first).map((r) => `${r.node} ${outcome(r)}`);
      const state = `${bad.map((x) => x.node).join(', ')} left drained (fix, then kodama rolling -undrain -node …)${good.length > 0 ? `; ${good.join(', ')} put back in rotation` : ''}`;
      return fail(no, first.node, 'run', `${outcome(first)}${others.length > 0 ? ` (also ${others.join(', ')})` : ''}; ${state}`);
    }
    // A balancer whose report had to leave idle ready backends out cannot list the node: there its
    // own tag (service healthy, not draining) stands in, since a balancer adds such a backend at once.
    let advertised = new Set<string>();
    const back = await watch(client, balancers, o, o.healthTimeoutMs, (reports) => {
      for (const n of batch.filter((x) => before.size === 0 || wasServing.has(x))) {
        const s = serving(reports, n);
        const ready = s.ready + (advertised.has(n) ? s.unknown : 0);
        if (ready < reports.size) return { ok: false, node: n, why: `ready on ${ready}/${reports.size} balancer(s)` };
      }
      return { ok: true };
    }, async () => {
      advertised = await advertisedReady(client, o.service);
    }, batch);
    if (!back.ok) {
      return fail(no, back.node, 'health', `not back in rotation after ${secs(o.healthTimeoutMs)} (${back.why}): check its service health (kodama checks, its agent log)`);
    }
    o.say(`${tag}: done in ${secs(Date.now() - t0)}: ${ran.map((r) => `${r.node} exit ${r.exitCode} (${secs(r.durationMs)})`).join(', ')}`);
  }
  return { batches, completed: total, results };
}

export interface UndrainOptions extends TargetFilter {
  service: string;
  token: string;
  healthTimeoutMs: number;
  interrupt?: AbortSignal;
  say: (line: string) => void;
}

/**
 * Put nodes a stopped rolling run left drained back in rotation and wait until every balancer has
 * them ready. Returns the nodes that are not (empty = all back).
 */
export async function undrainNodes(client: RpcClient, o: UndrainOptions): Promise<string[]> {
  const targets = await resolveTargets(client, o);
  const balancers = await balancersOf(client, o.service);
  const answers = await setDraining(client, targets.alive, o.token, false, 5000, o.interrupt);
  const refused = targets.alive.filter((n) => answers.get(n)?.kind !== 'drain');
  for (const n of refused) {
    const a = answers.get(n);
    o.say(`${n}: not undrained: ${a === undefined ? 'no answer' : a.kind === 'refused' ? `${a.code}: ${a.message}` : 'unexpected answer'}`);
  }
  const asked = targets.alive.filter((n) => !refused.includes(n));
  if (balancers.length === 0 || asked.length === 0) return refused;
  const t0 = Date.now();
  const opts: RollingOptions = { ...o, batch: 1, command: '', drainTimeoutMs: 0, say: o.say };
  let advertised = new Set<string>();
  const v = await watch(client, balancers, opts, o.healthTimeoutMs, (reports) => {
    for (const n of asked) {
      const ready = [...reports.values()].filter((r) => {
        const svc = r.services[o.service];
        const b = svc?.backends.find((x) => x.id === n);
        return b?.state === 'ready' || (b === undefined && (svc?.truncated ?? 0) > 0 && advertised.has(n));
      }).length;
      if (ready < reports.size) return { ok: false, node: n, why: `ready on ${ready}/${reports.size} balancer(s)` };
    }
    return { ok: true };
  }, async () => {
    advertised = await advertisedReady(client, o.service);
  }, asked);
  if (!v.ok) {
    o.say(`${v.node}: undrained but not back in rotation after ${secs(o.healthTimeoutMs)} (${v.why}): check its service health (kodama checks, its agent log)`);
    return [...refused, v.node];
  }
  o.say(`${asked.join(', ')} back in rotation on ${balancers.length} balancer(s) after ${secs(Date.now() - t0)}`);
  return refused;
}
