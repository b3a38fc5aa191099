// The current route of every service, kept on every agent (balancers apply it, deploys publish
// it), as a subsystem of the agent: `kodama-route` user events ordered by their Lamport time, the
// `kodama-routes` answer (the whole table), and the sync that catches a joining node up (Serf
// does not replay old user events: route-sync.ts).

import { AgentError } from '../agent/errors.ts';
import type { AgentHost, Subsystem } from '../agent/host.ts';
import { RouteTable, compareRoutes, decodeRoute, encodeRoute } from './route.ts';
import { RouteSync } from './route-sync.ts';
import type { RouteSyncOptions } from './route-sync.ts';
import { BALANCER_TAG, ROUTES_QUERY, ROUTE_EVENT } from './types.ts';
import type { RouteEntry, RouteSetting } from './types.ts';

/** What the routes read of the agent beyond the AgentHost: Serf's user-event clock. */
export interface RoutesHost extends AgentHost {
  /** Throws AgentError when the agent is not running. */
  readonly eventClock: { time(): number; witness(t: number): void };
}

export interface Routes extends Subsystem {
  readonly table: RouteTable;
  /** 'idle' until the first join, then 'running', 'synced' or 'gave-up' ('stopped' after stop). */
  readonly syncStatus: string;
  publish(s: RouteSetting): Promise<RouteEntry>;
}

/** Longest a publish waits for a route sync under way. */
const PUBLISH_SYNC_WAIT_MS = 2000;
/** Room a query response needs besides our payload (message header; our name's bytes added). */
const RESPONSE_OVERHEAD_BYTES = 64;
/** Malformed route events: at most one log line per window. */
const DROP_LOG_WINDOW_MS = 10_000;

export function startRoutes(host: RoutesHost, syncOptions?: RouteSyncOptions): Routes {
  const table = new RouteTable();
  const counts = { route_events: 0, routes_applied: 0, dropped_route_events: 0, routes_queries_answered: 0, routes_published: 0 };
  const log = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void => host.logger.log(level, msg);

  /** Apply an entry from an event or a sync answer; emits 'route' when it became current. */
  function apply(e: RouteEntry, source: string): boolean {
    const previous = table.get(e.service);
    if (!table.apply(e)) return false;
    // An entry learnt by sync was never seen by the event clock: our next route must beat it.
    host.eventClock.witness(e.ltime);
    counts.routes_applied++;
    const entry = table.get(e.service)!;
    log('INFO', `routes: ${entry.service} → ${fmtRoute(entry)} (tag ${entry.tag}, ltime ${entry.ltime}, by ${entry.by}, from ${source})`);
    host.emit('route', { entry, previous });
    return true;
  }

  const sync = new RouteSync(
    {
      alivePeers: () => host.members().filter((m) => m.status === 'alive' && m.name !== host.nodeName).map((m) => m.name),
      ask: (peers) =>
        new Promise<Map<string, Uint8Array>>((resolve, reject) => {
          const answers = new Map<string, Uint8Array>();
          let settled = false;
          const finish = (): void => {
            if (settled) return;
            settled = true;
            resolve(answers);
          };
          host
            .query({
              name: ROUTES_QUERY,
              payload: new Uint8Array(0),
              filterNodes: peers,
              onResponse: (from, p) => {
                answers.set(from, p);
                if (answers.size >= peers.length) finish();
              },
            })
            .then(finish, (e: unknown) => {
              if (settled) return;
              settled = true;
              reject(e as Error);
            });
        }),
      apply: (entries, from) => {
        for (const e of entries) apply(e, `sync from ${from}`);
      },
      log,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms).unref()),
      random: Math.random,
    },
    syncOptions,
  );

  /** Members seen failed and not back yet. */
  const failed = new Set<string>();
  const isBalancer = (): boolean => (host.members().find((m) => m.name === host.nodeName)?.tags[BALANCER_TAG] ?? '') !== '';

  const maxBytes = host.queryResponseSizeLimit - RESPONSE_OVERHEAD_BYTES - Buffer.byteLength(host.nodeName, 'utf8');
  const offs = [
    host.on('user', (ev) => {
      if (ev.name !== ROUTE_EVENT) return;
      counts.route_events++;
      const s = decodeRoute(ev.payload);
      if (s === undefined) {
        counts.dropped_route_events++;
        host.logger.logLimited('bad-route', DROP_LOG_WINDOW_MS, 'WARN', `routes: dropped a malformed ${ROUTE_EVENT} event (ltime ${ev.ltime}, ${ev.payload.length} bytes)`);
        return;
      }
      apply({ ...s, ltime: ev.ltime }, 'event');
    }),
    // Every agent answers with its whole table (empty included: "I know none").
    host.answerQuery(ROUTES_QUERY, (q) => {
      counts.routes_queries_answered++;
      try {
        q.respond(table.encodeSync(maxBytes));
      } catch (e) {
        log('DEBUG', `routes: could not answer ${ROUTES_QUERY}: ${(e as Error).message}`);
      }
    }),
    // Serf does not replay the route events we missed: ask the peers for the current table.
    host.on('joined', () => sync.trigger('joined')),
    // Someone joined us (we may never call join ourselves, e.g. a restarted seed): catch up.
    // A balancer also asks members back from failed (a healed partition) what it missed while
    // apart; only balancers, so a heal costs a few queries per balancer, not per node.
    host.on('member-join', (ev) => {
      if (ev.members.some((m) => m.name !== host.nodeName)) sync.trigger('a peer joined');
      const back = ev.members.filter((m) => failed.delete(m.name)).map((m) => m.name);
      if (back.length > 0 && isBalancer()) sync.catchUp(back);
    }),
    host.on('member-failed', (ev) => {
      for (const m of ev.members) if (m.name !== host.nodeName) failed.add(m.name);
    }),
    host.on('member-leave', (ev) => {
      for (const m of ev.members) failed.delete(m.name);
    }),
    host.on('member-reap', (ev) => {
      for (const m of ev.members) failed.delete(m.name);
    }),
    host.addStats(() => {
      const out: Record<string, string> = { routes: String(table.size), sync: sync.status };
      for (const [k, v] of Object.entries({ ...counts, ...sync.counters() })) out[k] = String(v);
      for (const e of table.all()) out[`route.${e.service}`] = `${fmtRoute(e)} @${e.ltime} by ${e.by}`;
      return { routes: out };
    }),
  ];

  return {
    table,
    get syncStatus() {
      return sync.status;
    },
    /**
     * Set a service's traffic split cluster-wide: a `kodama-route` user event, ordered by its
     * Lamport time. Resolves with the entry once applied here (peers apply it as gossip reaches
     * them). Throws AgentError for an invalid or oversized setting, or when the agent is not running.
     */
    async publish(s: RouteSetting): Promise<RouteEntry> {
      const payload = encodeRoute(s);
      // A sync under way may be about to tell us of a newer split (and advance our clock past it).
      // Bounded: against silent peers it can take many rounds, and the join's push/pull already
      // brought the event clock up to the cluster's.
      if (sync.status === 'running') {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([sync.settled(), new Promise<void>((r) => (timer = setTimeout(r, PUBLISH_SYNC_WAIT_MS)))]);
        clearTimeout(timer);
      }
      // Serf stamps the event with the clock's current time (then advances it); the clock has
      // witnessed every entry we hold (events and sync), so ours is the newest.
      const ltime = host.eventClock.time();
      host.userEvent(ROUTE_EVENT, payload, false);
      counts.routes_published++;
      const cur = table.get(s.service);
      const mine = decodeRoute(payload);
      if (cur === undefined || mine === undefined || compareRoutes(cur, { ...mine, ltime }) !== 0) {
        throw new AgentError('ERR_AGENT_STATE', `route for ${s.service} was not applied: a newer one is in force (${cur === undefined ? 'none' : `ltime ${cur.ltime}`})`);
      }
      return cur;
    },
    stop() {
      sync.stop();
      for (const off of offs) off();
    },
  };
}

/** `blue=0 green=100`, or `all` for a cleared route. */
export function fmtRoute(e: RouteSetting): string {
  const parts = Object.keys(e.weights).sort().map((k) => `${k}=${e.weights[k]}`);
  return parts.length === 0 ? 'all' : parts.join(' ');
}
