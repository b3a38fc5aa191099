// How an agent catches up on routes it missed: Serf does not replay old user events to a node
// that joins (or restarts with a snapshot), so the current split would stay unknown until the
// next change. After its first join the agent asks a few peers `kodama-routes`; every kodama
// agent answers with its whole table (RouteTable.encodeSync) and each entry is applied like an
// event would be (the ordering makes late or duplicate news harmless).
//
// A real serf agent in the cluster never answers: peers are picked at random, a round with no
// usable answer is repeated with peers not asked yet, and the whole effort is bounded.
//
// A partition that heals is the same story later: while apart, each side may have missed route
// events of the other (a deploy's rollback on the coordinator's side), and Serf hands them over
// only if a push/pull happens to cross the old cut. So members that come back from failed are
// asked too (`catchUp`): one round, a few of them, the burst of a heal gathered into one ask.

import { decodeSyncAnswer } from './route.ts';
import type { RouteEntry } from './types.ts';

export interface RouteSyncHost {
  /** Names of the alive members other than this node. */
  alivePeers(): string[];
  /** Send ROUTES_QUERY to `peers`; resolve with the answers (by node) at its deadline or when all answered. */
  ask(peers: string[]): Promise<Map<string, Uint8Array>>;
  /** Apply what one peer knows. */
  apply(entries: RouteEntry[], from: string): void;
  log(level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string): void;
  /** Sleep between rounds (tests may shorten it through the options instead). */
  sleep(ms: number): Promise<void>;
  /** [0,1) to pick peers. */
  random(): number;
}

export interface RouteSyncOptions {
  /** Peers asked per round (default 3). */
  peersPerRound?: number;
  /** Rounds before giving up (default 5). */
  maxRounds?: number;
  /** Pause after a silent round (default 1 s). */
  retryDelayMs?: number;
  /** How long catchUp gathers members coming back before it asks (default 300 ms: a heal's burst). */
  catchUpGatherMs?: number;
}

export const ROUTE_SYNC_DEFAULTS = { peersPerRound: 3, maxRounds: 5, retryDelayMs: 1000, catchUpGatherMs: 300 } as const;

type SyncState = 'idle' | 'running' | 'synced' | 'gave-up' | 'stopped';

export class RouteSync {
  private state: SyncState = 'idle';
  /** Resolves when the round under way ends (synced, gave up or stopped). */
  private ended: Promise<void> = Promise.resolve();
  private readonly opts: Required<RouteSyncOptions>;
  private readonly counts = { route_syncs: 0, route_sync_rounds: 0, route_sync_answers: 0, route_sync_bad_answers: 0, route_sync_entries: 0, route_catch_ups: 0 };
  /** Members back from failed, not asked yet. */
  private readonly comeback = new Set<string>();
  private catchingUp = false;

  constructor(
    private readonly host: RouteSyncHost,
    opts: RouteSyncOptions = {},
  ) {
    this.opts = { ...ROUTE_SYNC_DEFAULTS, ...opts };
  }

  /**
   * Start catching up (after a join, or when a peer appeared) unless it is under way or done.
   * A sync that gave up may be started again by a later trigger (a new peer may answer).
   */
  trigger(reason: string): void {
    if (this.state === 'running' || this.state === 'synced' || this.state === 'stopped') return;
    this.state = 'running';
    this.counts.route_syncs++;
    this.host.log('DEBUG', `routes: asking peers for the route table (${reason})`);
    this.ended = this.run().catch((e: unknown) => {
      // ask() rejects only when the agent stops under it.
      if (this.state === 'running') this.state = 'gave-up';
      this.host.log('DEBUG', `routes: sync ended: ${(e as Error).message}`);
    });
  }

  /**
   * Members that were failed are alive again (a partition healed): ask a few of them for their
   * table, once (they may know routes published on their side while we were apart). A sync under
   * way, or none yet, does the job instead.
   */
  catchUp(peers: string[]): void {
    if (this.state === 'stopped') return;
    for (const p of peers) this.comeback.add(p);
    if (this.catchingUp) return;
    this.catchingUp = true;
    void this.runCatchUp().finally(() => {
      this.catchingUp = false;
    });
  }

  private async runCatchUp(): Promise<void> {
    // Bounded: each round takes what came back meanwhile; a heal is one or two rounds.
    for (let round = 0; round < this.opts.maxRounds && this.comeback.size > 0; round++) {
      await this.host.sleep(this.opts.catchUpGatherMs);
      if (this.state === 'stopped') return;
      if (this.state === 'running') await this.ended; // that sync asks peers anyway
      const alive = new Set(this.host.alivePeers());
      const peers = this.pick([...this.comeback].filter((p) => alive.has(p)), this.opts.peersPerRound);
      this.comeback.clear();
      if (peers.length === 0) return;
      this.counts.route_catch_ups++;
      this.host.log('DEBUG', `routes: asking ${peers.join(', ')} for the route table (back from failed)`);
      let answers: Map<string, Uint8Array>;
      try {
        answers = await this.host.ask(peers);
      } catch {
        return; // the agent is stopping
      }
      if ((this.state as SyncState) === 'stopped') return;
      for (const [from, payload] of answers) {
        const a = decodeSyncAnswer(payload);
        if (a === undefined) {
          this.counts.route_sync_bad_answers++;
          continue;
        }
        this.counts.route_sync_answers++;
        this.counts.route_sync_entries += a.routes.length;
        this.host.apply(a.routes, from);
      }
    }
  }

  /**
   * Resolves once no sync is under way. A route published before the sync ended could carry an
   * older Lamport time than the split the cluster already has, and lose everywhere but here.
   */
  settled(): Promise<void> {
    return this.ended;
  }

  get status(): SyncState {
    return this.state;
  }

  stop(): void {
    this.state = 'stopped';
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  private async run(): Promise<void> {
    const asked = new Set<string>();
    for (let round = 1; round <= this.opts.maxRounds; round++) {
      if (this.state !== 'running') return;
      let fresh = this.host.alivePeers().filter((p) => !asked.has(p));
      if (fresh.length === 0) {
        // Everyone was asked once: ask again (UDP may have lost an answer).
        asked.clear();
        fresh = this.host.alivePeers();
      }
      const peers = this.pick(fresh, this.opts.peersPerRound);
      if (peers.length > 0) {
        this.counts.route_sync_rounds++;
        for (const p of peers) asked.add(p);
        const answers = await this.host.ask(peers);
        if ((this.state as SyncState) !== 'running') return;
        let usable = 0;
        for (const [from, payload] of answers) {
          const a = decodeSyncAnswer(payload);
          if (a === undefined) {
            this.counts.route_sync_bad_answers++;
            this.host.log('DEBUG', `routes: unreadable route table from ${from}`);
            continue;
          }
          usable++;
          this.counts.route_sync_answers++;
          this.counts.route_sync_entries += a.routes.length;
          if (a.truncated > 0) this.host.log('WARN', `routes: ${from} left ${a.truncated} older route(s) out of its answer (response size limit)`);
          this.host.apply(a.routes, from);
        }
        if (usable > 0) {
          this.state = 'synced';
          this.host.log('DEBUG', `routes: synced from ${usable} peer(s)`);
          return;
        }
      }
      if (round < this.opts.maxRounds) await this.host.sleep(this.opts.retryDelayMs);
    }
    if (this.state === 'running') {
      this.state = 'gave-up';
      this.host.log('WARN', `routes: no peer answered the route sync after ${this.opts.maxRounds} rounds; routes will arrive with the next change`);
    }
  }

  private pick(from: string[], n: number): string[] {
    const pool = [...from];
    const out: string[] = [];
    while (out.length < n && pool.length > 0) {
      const i = Math.floor(this.host.random() * pool.length);
      out.push(pool.splice(Math.min(i, pool.length - 1), 1)[0]!);
    }
    return out;
  }
}
