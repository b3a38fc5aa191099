// One service's backend set and the choice of the next backend: smooth weighted round-robin as
// nginx does it (each pick adds every eligible backend's weight to its running score, takes the
// highest and subtracts the total), which spreads a 3:1 weighting as a,a,b,a rather than
// a,a,a,b, and costs one pass over a short array with no allocation.
//
// Eligible = state ready, weight > 0, not just tried by the same request. A backend whose
// connect failed is avoided for a short cool-down (unless nothing else is left), so a dead
// backend that the cluster has not yet declared failed costs one refused connect, not one per
// request. Each further failed connect in a row doubles the cool-down (up to 16 ×), and a
// connect that works ends it: a backend this balancer cannot reach while the cluster still
// sees it alive (a one-way cut, a firewall) costs a few connects, not one per cool-down, as
// HAProxy's `observe layer4` marks such a server down.
import type { Backend, BackendStats } from '../../discovery/types.ts';

/** A backend failing connect after connect is avoided for at most 2^4 = 16 cool-downs at a time (a backend reachable again waits at most that long for traffic). */
const MAX_COOLDOWN_DOUBLINGS = 4;

/** Resources a proxy attaches to a backend (an HTTP agent's pooled sockets). */
export interface UpstreamLink {
  /** The backend takes no new work: close idle pooled connections, let busy ones finish. */
  closeIdle(): void;
}

export class PoolBackend {
  /** Smooth-WRR running score. */
  current = 0;
  /** Requests/connections in flight now. */
  active = 0;
  /** Requests/connections sent to it since it was added. */
  total = 0;
  /**
   * Of those: 5xx answers it gave, failed connects (refused, timed out) and failures after the
   * request was sent (reset, timeout, a cut answer) — all attributed to this backend.
   */
  errors = 0;
  /** Avoid until this Date.now() after a failed connect (0 = fine). */
  failedUntilMs = 0;
  /** Connects that failed in a row (0 after one that worked). */
  failStreak = 0;
  /** Set once it left the pool: in-flight work finishes, nothing new and no pooled sockets. */
  removed = false;
  upstream: UpstreamLink | undefined;

  constructor(
    readonly id: string,
    readonly host: string,
    readonly port: number,
    public weight: number,
    public state: 'ready' | 'drain',
  ) {}

  /** Takes new work (weight 0 or drain = finishes what it has). */
  get accepting(): boolean {
    return this.state === 'ready' && this.weight > 0 && !this.removed;
  }
}

const MAX_WEIGHT = 256;

/** Why a Backend entry cannot be served, or undefined when it can. */
export function invalidBackend(b: Backend): string | undefined {
  if (typeof b.id !== 'string' || b.id === '') return 'empty id';
  if (typeof b.host !== 'string' || b.host === '') return `${b.id}: empty host`;
  if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535) return `${b.id}: bad port ${String(b.port)}`;
  if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > MAX_WEIGHT) return `${b.id}: bad weight ${String(b.weight)}`;
  if (b.state !== 'ready' && b.state !== 'drain') return `${b.id}: bad state ${String(b.state)}`;
  return undefined;
}

export interface PoolChange {
  added: number;
  updated: number;
  removed: number;
  /** Entries dropped, with the reason. */
  invalid: string[];
}

export class Pool {
  private list: PoolBackend[] = [];
  private readonly byId = new Map<string, PoolBackend>();

  constructor(
    readonly service: string,
    /** How long a backend whose connect failed is avoided while others are available. */
    private readonly failCooldownMs = 1000,
  ) {}

  get backends(): readonly PoolBackend[] {
    return this.list;
  }

  /** Make the pool exactly `desired` (the Balancer.setBackends contract). Idempotent. */
  set(desired: readonly Backend[]): PoolChange {
    const change: PoolChange = { added: 0, updated: 0, removed: 0, invalid: [] };
    const next: PoolBackend[] = [];
    const seen = new Set<string>();
    for (const d of desired) {
      const why = invalidBackend(d);
      if (why !== undefined) {
        change.invalid.push(why);
        continue;
      }
      if (seen.has(d.id)) {
        change.invalid.push(`${d.id}: listed twice`);
        continue;
      }
      seen.add(d.id);
      let b = this.byId.get(d.id);
      if (b !== undefined && (b.host !== d.host || b.port !== d.port)) {
        // A new address is a new backend: pooled sockets point at the old one.
        this.retire(b);
        change.removed++;
        b = undefined;
      }
      if (b === undefined) {
        b = new PoolBackend(d.id, d.host, d.port, d.weight, d.state);
        this.byId.set(d.id, b);
        change.added++;
      } else if (b.weight !== d.weight || b.state !== d.state) {
        const wasAccepting = b.accepting;
        b.weight = d.weight;
        b.state = d.state;
        if (wasAccepting && !b.accepting) b.upstream?.closeIdle();
        change.updated++;
      }
      next.push(b);
    }
    for (const [id, b] of this.byId) {
      if (!seen.has(id)) {
        this.byId.delete(id);
        this.retire(b);
        change.removed++;
      }
    }
    // Scores restart on a membership change so a newcomer is not starved or flooded by the
    // others' accumulated scores (nginx resets them on reconfiguration too).
    if (change.added + change.removed > 0) for (const b of next) b.current = 0;
    this.list = next;
    return change;
  }

  private retire(b: PoolBackend): void {
    b.removed = true;
    b.upstream?.closeIdle();
  }

  /**
   * The next backend for a request, skipping the ones it already tried (up to two, so a retry
   * costs no allocation). undefined = nothing can take new work.
   */
  pick(skipA?: PoolBackend, skipB?: PoolBackend): PoolBackend | undefined {
    let best: PoolBackend | undefined;
    let total = 0;
    let cooling = false;
    let now = 0;
    for (const b of this.list) {
      if (!b.accepting || b === skipA || b === skipB) continue;
      if (b.failedUntilMs !== 0) {
        if (now === 0) now = Date.now();
        if (b.failedUntilMs > now) {
          cooling = true;
          continue;
        }
        b.failedUntilMs = 0;
      }
      b.current += b.weight;
      total += b.weight;
      if (best === undefined || b.current > best.current) best = b;
    }
    if (best === undefined && cooling) {
      // Only cooling backends are left: try them rather than refuse (maybe it is back).
      for (const b of this.list) {
        if (!b.accepting || b === skipA || b === skipB) continue;
        b.current += b.weight;
        total += b.weight;
        if (best === undefined || b.current > best.current) best = b;
      }
    }
    if (best !== undefined) best.current -= total;
    return best;
  }

  /** A connect to `b` failed: avoid it for a while, longer at each failure in a row. True when it was fine until now. */
  connectFailed(b: PoolBackend): boolean {
    const wasFine = b.failStreak === 0;
    b.failStreak++;
    b.failedUntilMs = Date.now() + this.failCooldownMs * 2 ** Math.min(b.failStreak - 1, MAX_COOLDOWN_DOUBLINGS);
    return wasFine;
  }

  /** A connect to `b` worked: it is fine again. */
  connectWorked(b: PoolBackend): void {
    b.failedUntilMs = 0;
    b.failStreak = 0;
  }

  /** Backends that take new work now. */
  readyCount(): number {
    let n = 0;
    for (const b of this.list) if (b.accepting) n++;
    return n;
  }

  stats(): BackendStats[] {
    return this.list.map((b) => ({ id: b.id, activeSessions: b.active, totalSessions: b.total, errors: b.errors }));
  }
}
