// The monitoring checks of this node (agent config `checks`), as a subsystem of the agent: runs
// them while their subscriptions match the node's tags (CheckRunner), gossips the `chk` summary
// tag when it changes, answers `kodama-checks` (the report) and `kodama-check-result` (a pushed
// result), and emits a 'check' event per recorded result.

import { describeReload } from '../agent/host.ts';
import type { AgentHost, Subsystem } from '../agent/host.ts';
import type { Tags } from '../serf/tags.ts';
import { MetricsSampler } from './metrics.ts';
import { buildReport, encodeReport } from './report.ts';
import { CheckRunner } from './runner.ts';
import { CHECKS_QUERY, CHECK_RESULT_QUERY, SUMMARY_TAG } from './types.ts';
import type { CheckRecord, CheckStatus, MonitorCheckSpec } from './types.ts';

/** Room a query response needs besides our payload (message header; our name's bytes added). */
const RESPONSE_OVERHEAD_BYTES = 64;
const STATE_NAMES = ['passing', 'warning', 'critical', 'unknown'] as const;

export interface LocalChecks extends Subsystem {
  /** Records of the checks running here (those with a result). */
  records(): CheckRecord[];
  /** Record a pushed (TTL or passive) result; undefined when recorded, else why not. */
  pushResult(check: string, status: CheckStatus, output: string): string | undefined;
}

export function startLocalChecks(host: AgentHost, checks: readonly MonitorCheckSpec[]): LocalChecks {
  const metrics = new MetricsSampler();
  const counts = { checks_queries: 0, check_result_queries: 0, check_result_errors: 0, bad_query_payloads: 0, summary_updates: 0 };
  const log = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void => host.logger.log(level, msg);
  let summary: string | undefined;
  const runner: CheckRunner = new CheckRunner({
    checks,
    log,
    onResult: (e) => {
      refreshTag();
      host.emit('check', { record: e.record, previous: e.previous });
    },
    onActiveChange: () => refreshTag(),
  });
  summary = runner.summary();
  // Before the agent runs: the first alive message carries the summary.
  const tag = host.ownTags([SUMMARY_TAG], { [SUMMARY_TAG]: summary });

  /** A result or a start/stop: gossip `chk` again only when its value changed. */
  function refreshTag(): void {
    const next = runner.summary();
    if (next === summary) return;
    summary = next;
    counts.summary_updates++;
    tag.set({ [SUMMARY_TAG]: next }, 'checks: cannot publish the chk tag');
  }

  const maxBytes = host.queryResponseSizeLimit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(host.nodeName, 'utf8');
  const respond = (q: { respond(p: Uint8Array): void }, payload: Uint8Array, what: string): void => {
    try {
      q.respond(payload);
    } catch (e) {
      // Too late or already answered: the asker's problem, not ours.
      log('DEBUG', `checks: could not answer ${what}: ${(e as Error).message}`);
    }
  };
  const offs = [
    host.answerQuery(CHECKS_QUERY, (q) => {
      counts.checks_queries++;
      let filter: string[] | undefined;
      const text = new TextDecoder().decode(q.payload).trim();
      if (text !== '' && text !== 'null') {
        try {
          const v = JSON.parse(text) as unknown;
          const list = typeof v === 'object' && v !== null ? (v as { checks?: unknown }).checks : undefined;
          if (Array.isArray(list) && list.every((x) => typeof x === 'string')) filter = list as string[];
          else if (list !== undefined) counts.bad_query_payloads++;
        } catch {
          counts.bad_query_payloads++; // a bad filter still gets the whole report
        }
      }
      const report = buildReport({ name: host.nodeName }, runner.records(), metrics.sample(), {
        ...(filter !== undefined ? { checks: filter } : {}),
        maxBytes,
      });
      respond(q, new TextEncoder().encode(encodeReport(report)), CHECKS_QUERY);
    }),
    host.answerQuery(CHECK_RESULT_QUERY, (q) => {
      counts.check_result_queries++;
      const err = pushFromPayload(q.payload);
      if (err !== undefined) {
        counts.check_result_errors++;
        log('WARN', `checks: pushed result refused: ${err}`);
      }
      respond(q, new TextEncoder().encode(err === undefined ? 'ok' : `error: ${err}`), CHECK_RESULT_QUERY);
    }),
    host.addStats(() => ({
      checks: strs({ ...runner.counters(), ...counts }),
      check_states: states(),
    })),
  ];

  function pushFromPayload(payload: Uint8Array): string | undefined {
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return 'payload is not JSON: send {"check": "<name>", "status": 0..3, "output": "…"}';
    }
    if (typeof v !== 'object' || v === null) return 'payload must be an object {"check", "status", "output"}';
    const { check, status, output } = v as { check?: unknown; status?: unknown; output?: unknown };
    if (typeof check !== 'string' || check === '') return "'check' must name a check";
    if (status !== 0 && status !== 1 && status !== 2 && status !== 3) return `'status' must be 0, 1, 2 or 3, got ${JSON.stringify(status)}`;
    if (output !== undefined && typeof output !== 'string') return "'output' must be a string";
    return runner.pushResult(check, status, output ?? '');
  }

  /** `check_states` stats section: name → state (or pending), flapping marked. */
  function states(): Record<string, string> {
    const out: Record<string, string> = {};
    const recs = new Map(runner.records().map((r) => [r.name, r]));
    for (const name of runner.activeChecks()) {
      const r = recs.get(name);
      out[name] = r === undefined ? 'pending' : `${STATE_NAMES[r.status]}${r.flapping ? ' flapping' : ''}`;
    }
    return out;
  }

  return {
    records: () => runner.records(),
    pushResult: (check, status, output) => runner.pushResult(check, status, output),
    run(userTags: Tags) {
      metrics.sample(); // primes the CPU figure: the first report then covers the time since start
      runner.start(userTags);
    },
    // Checks follow the new tags first (a role change starts/stops checks): the agent gossips the
    // new tags and the new `chk` in one alive message.
    userTagsChanged: (userTags) => runner.setTags(userTags),
    reload(o) {
      const r = runner.reconfigure(o.checks ?? []);
      if (r.added.length + r.removed.length + r.changed.length === 0) return undefined;
      refreshTag();
      return `checks: ${describeReload(r)}`;
    },
    stop() {
      runner.stop();
      for (const off of offs) off();
    },
  };
}

function strs(r: Record<string, number>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));
}
