// The monitor role of an agent (agent config `monitoring`): feeds MonitorCore with what the agent
// hears and runs the handlers for what it decides. The core is pure; this file adds the clock
// (Date.now(), the clock silences are written in), a timer for silence expiry, and the I/O:
//   - 'member' events (and agent.members() at start) → core; alerts drained at once into the
//     handler lanes and logged ("monitor: alert create web-3/disk critical → ops");
//   - 'user' events named kodama-silence → core (bad payloads logged and counted, never thrown);
//   - `kodama-silences` queries answered with the silence list (newest first, fits Serf's
//     1024-byte response limit, `truncated` says when some were left out).

import { describeReload } from '../agent/host.ts';
import type { AgentHost, AgentQuery } from '../agent/host.ts';
import type { Member, SerfEvent, UserEvent } from '../serf/serf.ts';
import { AlertHandlers } from './alert-handlers.ts';
import { MonitorCore } from './monitor.ts';
import type { MonitorMember } from './monitor.ts';
import { parseSilenceOp } from './silences.ts';
import { MONITOR_TAG, SILENCES_QUERY, SILENCE_EVENT } from './types.ts';
import type { MonitoringSpec, Silence } from './types.ts';

export interface MonitorRole {
  readonly core: MonitorCore;
  silences(): Silence[];
  counters(): Record<string, number>;
  /**
   * New monitoring config (a reload): handlers and the default/member handler lists change in
   * place; alert state, silences and queued alerts stay. Returns what changed, or undefined.
   */
  reconfigure(spec: MonitoringSpec): string | undefined;
  stop(): Promise<void>;
}

export interface MonitorRoleOptions {
  /** Handler names for a check (empty: monitoring.default_handlers). */
  checkHandlers?: (check: string, node: string) => string[];
  /** Alerts waiting per handler lane (default 128). */
  queueDepth?: number;
  /** After a member joins, alerts wait this long for the view to settle (MonitorCoreOptions; default 2 s). */
  settleMs?: number;
}

/**
 * Long enough for a push/pull's burst of join events (the other monitors among them) to arrive;
 * short next to any paging delay anyone cares about.
 */
export const DEFAULT_SETTLE_MS = 2_000;
/**
 * Silences live in the monitors' memory only: a monitor that (re)joins asks the others for
 * theirs when it sees another monitor join, at most this often.
 */
const SILENCE_SYNC_MIN_INTERVAL_MS = 5_000;
const SILENCE_SYNC_TIMEOUT_MS = 3_000;

/** Serf's default query response limit. */
export const SILENCES_RESPONSE_MAX_BYTES = 1024;

/** The `kodama-silences` answer. */
export interface SilencesAnswer {
  monitor: string;
  silences: Silence[];
  /** How many silences this monitor holds (more than listed when truncated). */
  total: number;
  truncated?: boolean;
}

/** Newest first, as many as fit in maxBytes. */
export function encodeSilencesAnswer(monitor: string, silences: readonly Silence[], maxBytes = SILENCES_RESPONSE_MAX_BYTES): Uint8Array {
  const enc = new TextEncoder();
  const encode = (n: number): Uint8Array => {
    const a: SilencesAnswer = { monitor, silences: silences.slice(0, n), total: silences.length };
    if (n < silences.length) a.truncated = true;
    return enc.encode(JSON.stringify(a));
  };
  // Linear from the full list down; lists are short (a silence is ~100 bytes, ~9 fit).
  for (let n = silences.length; n > 0; n--) {
    const b = encode(n);
    if (b.byteLength <= maxBytes) return b;
  }
  return encode(0);
}

function view(m: Member): MonitorMember {
  return { name: m.name, addr: m.addr.ip, status: m.status, tags: { ...m.tags } };
}

export function startMonitorRole(agent: AgentHost, spec: MonitoringSpec, opts: MonitorRoleOptions = {}): Promise<MonitorRole> {
  const log = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void => agent.logger.log(level, msg);
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  const core = new MonitorCore(agent.nodeName, spec, opts.checkHandlers, { settleMs, settleMaxMs: settleMs * 5 });
  const handlers = new AlertHandlers(spec.handlers, { log, ...(opts.queueDepth !== undefined ? { queueDepth: opts.queueDepth } : {}) });
  const stats = { silence_events: 0, silence_events_rejected: 0, silence_queries: 0, silence_query_errors: 0, silence_syncs: 0, silences_synced: 0 };
  let syncing = false;
  let lastSyncAt = -Infinity;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let wasLeader: boolean | undefined;

  const afterInput = (): void => {
    if (stopped) return;
    const leader = core.isLeader();
    if (leader !== wasLeader) {
      wasLeader = leader;
      log('INFO', leader ? 'monitor: this node leads alerting' : `monitor: ${core.leaderName()} leads alerting; shadowing`);
    }
    for (const { handler, event } of core.pollAlerts()) {
      log('INFO', `monitor: alert ${event.action} ${event.entity.name}/${event.check.name} ${event.check.state} → ${handler}`);
      handlers.dispatch(handler, event);
    }
    const at = core.pollTimeout();
    if (at === undefined) {
      clearTimeout(timer);
      timer = undefined;
      timerAt = Infinity;
      return;
    }
    if (timer !== undefined && timerAt === at) return;
    clearTimeout(timer);
    timerAt = at;
    // setTimeout caps at ~24.8 days; a far expiry just wakes up early and re-arms.
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      core.handleTimeout(Date.now());
      afterInput();
    }, Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
  };

  /** Learn the silences other monitors hold (added before we ran, or while we were away). */
  const syncSilences = (): void => {
    if (stopped || syncing || Date.now() - lastSyncAt < SILENCE_SYNC_MIN_INTERVAL_MS) return;
    syncing = true;
    lastSyncAt = Date.now();
    stats.silence_syncs++;
    let pending: Promise<void>;
    try {
      pending = agent
        .query({ name: SILENCES_QUERY, payload: new Uint8Array(0), filterTags: { [MONITOR_TAG]: '^1$' }, timeoutMs: SILENCE_SYNC_TIMEOUT_MS })
        .then((r) => {
          if (stopped) return;
          const known = new Set(core.silences().map((x) => x.id));
          for (const [from, payload] of r.responses) {
            if (from === agent.nodeName) continue;
            let answer: Partial<SilencesAnswer>;
            try {
              answer = JSON.parse(new TextDecoder().decode(payload)) as Partial<SilencesAnswer>;
            } catch {
              continue;
            }
            for (const raw of Array.isArray(answer.silences) ? answer.silences : []) {
              // Same validation as an event's payload: a peer's answer is input like any other.
              const p = parseSilenceOp(JSON.stringify({ op: 'add', silence: raw }));
              if (!p.ok || p.op.op !== 'add' || known.has(p.op.silence.id)) continue;
              known.add(p.op.silence.id);
              core.handleSilenceOp(p.op, Date.now());
              stats.silences_synced++;
            }
          }
          afterInput();
        });
    } catch (e) {
      pending = Promise.reject(e as Error);
    }
    pending
      .catch((e: unknown) => log('DEBUG', `monitor: silence sync failed: ${(e as Error).message}`))
      .finally(() => {
        syncing = false;
      });
  };

  const offs: (() => void)[] = [];
  offs.push(
    agent.on('member', (e: SerfEvent) => {
      core.handleMemberEvent(e.type, e.members.map(view), Date.now());
      afterInput();
      if (e.type === 'member-join' && e.members.some((m) => m.name !== agent.nodeName && m.tags[MONITOR_TAG] === '1')) {
        // Not from inside Serf's event dispatch: the query goes out on the next tick.
        setImmediate(syncSilences);
      }
    }),
  );
  offs.push(
    agent.on('user', (e: UserEvent) => {
      if (e.name !== SILENCE_EVENT) return;
      stats.silence_events++;
      const r = parseSilenceOp(e.payload);
      if (!r.ok) {
        stats.silence_events_rejected++;
        log('WARN', `monitor: ignored a ${SILENCE_EVENT} event: ${r.reason}`);
        return;
      }
      core.handleSilenceOp(r.op, Date.now());
      log('INFO', r.op.op === 'add' ? `monitor: silence ${r.op.silence.id} added` : `monitor: silence ${r.op.id} removed`);
      afterInput();
    }),
  );
  offs.push(
    agent.on('query', (q: AgentQuery) => {
      if (q.name !== SILENCES_QUERY) return;
      stats.silence_queries++;
      try {
        q.respond(encodeSilencesAnswer(agent.nodeName, core.silences()));
      } catch (e) {
        // Already answered or past its deadline: nothing to do but count it.
        stats.silence_query_errors++;
        log('DEBUG', `monitor: could not answer ${SILENCES_QUERY}: ${(e as Error).message}`);
      }
    }),
  );

  core.handleMembers(agent.members().map(view), Date.now());
  afterInput();

  const counters = (): Record<string, number> => {
    const out: Record<string, number> = { ...stats };
    for (const [k, v] of Object.entries(core.counters())) out[`core_${k}`] = v;
    for (const [k, v] of Object.entries(handlers.counters())) out[`handler_${k}`] = v;
    return out;
  };
  const offStats = agent.addStats(() => ({ monitor: Object.fromEntries(Object.entries(counters()).map(([k, v]) => [k, String(v)])) }));
  const role: MonitorRole = {
    core,
    silences: () => core.silences(),
    counters,
    reconfigure(next) {
      const r = handlers.setHandlers(next.handlers);
      const lists = JSON.stringify([spec.defaultHandlers, spec.memberHandlers]) !== JSON.stringify([next.defaultHandlers, next.memberHandlers]);
      core.setSpec(next);
      spec = next;
      const parts = [r.added.length + r.changed.length + r.removed.length > 0 ? `handlers ${describeReload(r)}` : '', lists ? `default_handlers [${next.defaultHandlers.join(', ')}], member_handlers [${next.memberHandlers.join(', ')}]` : ''].filter((x) => x !== '');
      return parts.length === 0 ? undefined : `monitoring: ${parts.join('; ')}`;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      offStats();
      for (const off of offs) off();
      clearTimeout(timer);
      timer = undefined;
      await handlers.close();
    },
  };
  return Promise.resolve(role);
}
