// The embedded balancer: kodama's zero-install proxy, the `Balancer` the role drives when no
// HAProxy is wanted. One pool per service (it outlives frontend changes, so backends set before
// or between frontend changes are kept) and one listener per frontend, HTTP or TCP.
import type { Backend, BackendStats, Balancer, Frontend } from '../../discovery/types.ts';
import { newCounters } from './counters.ts';
import type { ProxyCounters } from './counters.ts';
import { ProxyError } from './errors.ts';
import { HttpFrontend, destroyUpstream } from './http-proxy.ts';
import type { FrontendListener } from './listener.ts';
import { DEFAULT_TUNING } from './options.ts';
import type { ProxyLog, ProxyTuning } from './options.ts';
import { Pool } from './pool.ts';
import { TcpFrontend } from './tcp-proxy.ts';

export interface EmbeddedBalancerOptions {
  log?: ProxyLog;
  /** See ProxyTuning. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxTries?: number;
  /** How long a removed frontend, or stop(), lets work in flight finish (default 5 s). */
  closeGraceMs?: number;
  /** How long a backend whose connect failed is avoided while others are up (default 1 s). */
  failCooldownMs?: number;
}

/** Whether `want` is what `l` already serves (port 0 = any: the port it got is fine too). */
function serves(l: FrontendListener, want: Frontend): boolean {
  const have = l.frontend;
  return (
    want.mode === have.mode && want.bind.host === have.bind.host && (want.bind.port === have.bind.port || want.bind.port === l.port)
  );
}

export class EmbeddedBalancer implements Balancer {
  readonly kind = 'embedded' as const;
  private readonly tuning: ProxyTuning;
  private readonly closeGraceMs: number;
  private readonly failCooldownMs: number;
  private readonly c: ProxyCounters = newCounters();
  private readonly pools = new Map<string, Pool>();
  private readonly listeners = new Map<string, FrontendListener>();
  private readonly closing = new Set<Promise<void>>();
  private started = false;
  private stopped = false;
  /** setFrontends calls run one after another (a bind freed by one is reused by the next). */
  private chain: Promise<void> = Promise.resolve();

  constructor(opts: EmbeddedBalancerOptions = {}) {
    this.tuning = {
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_TUNING.requestTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_TUNING.connectTimeoutMs,
      maxTries: Math.max(1, opts.maxTries ?? DEFAULT_TUNING.maxTries),
      log: opts.log ?? (() => {}),
    };
    this.closeGraceMs = opts.closeGraceMs ?? 5_000;
    this.failCooldownMs = opts.failCooldownMs ?? 1_000;
  }

  async start(frontends: readonly Frontend[]): Promise<void> {
    if (this.started) throw new ProxyError('ERR_PROXY_STATE', 'embedded balancer already started');
    this.started = true;
    await this.setFrontends(frontends);
  }

  setFrontends(frontends: readonly Frontend[]): Promise<void> {
    const run = this.chain.then(() => this.applyFrontends(frontends));
    this.chain = run.catch(() => {});
    return run;
  }

  /** The port a frontend is bound to (useful when it was configured with port 0). */
  boundPort(service: string): number | undefined {
    return this.listeners.get(service)?.port;
  }

  private async applyFrontends(frontends: readonly Frontend[]): Promise<void> {
    if (this.stopped) throw new ProxyError('ERR_PROXY_STATE', 'embedded balancer is stopped');
    const wanted = new Map<string, Frontend>();
    const binds = new Set<string>();
    for (const f of frontends) {
      if (wanted.has(f.service)) throw new ProxyError('ERR_PROXY_CONFIG', `frontend ${f.service} listed twice`);
      const bind = `${f.bind.host}:${f.bind.port}`;
      if (f.bind.port !== 0 && binds.has(bind)) throw new ProxyError('ERR_PROXY_CONFIG', `two frontends bind ${bind}`);
      binds.add(bind);
      wanted.set(f.service, f);
    }
    // Close what goes away or changes first, so a changed frontend can take over a port.
    const closes: Promise<void>[] = [];
    for (const [service, l] of this.listeners) {
      const w = wanted.get(service);
      if (w !== undefined && serves(l, w)) continue;
      this.listeners.delete(service);
      this.tuning.log('INFO', `proxy: closing frontend ${service} (${l.frontend.mode} ${l.frontend.bind.host}:${l.port})`);
      closes.push(this.track(l.close(this.closeGraceMs)));
    }
    // Wait only for the listening sockets to go: connections still in flight finish on their own.
    if (closes.length > 0) await Promise.race([Promise.all(closes), new Promise((r) => setTimeout(r, 50))]);
    const failures: string[] = [];
    for (const [service, f] of wanted) {
      if (this.listeners.has(service)) continue;
      const pool = this.pool(service);
      const l: FrontendListener =
        f.mode === 'tcp' ? new TcpFrontend(f, pool, this.c, this.tuning) : new HttpFrontend(f, pool, this.c, this.tuning);
      try {
        await l.listen();
      } catch (err) {
        failures.push((err as Error).message);
        continue;
      }
      this.listeners.set(service, l);
      this.tuning.log('INFO', `proxy: frontend ${service} listening (${f.mode} ${f.bind.host}:${l.port})`);
    }
    if (failures.length > 0) throw new ProxyError('ERR_PROXY_BIND', failures.join('; '));
  }

  private track(p: Promise<void>): Promise<void> {
    this.closing.add(p);
    void p.finally(() => this.closing.delete(p));
    return p;
  }

  private pool(service: string): Pool {
    let p = this.pools.get(service);
    if (p === undefined) {
      p = new Pool(service, this.failCooldownMs);
      this.pools.set(service, p);
    }
    return p;
  }

  setBackends(service: string, backends: readonly Backend[]): Promise<void> {
    const change = this.pool(service).set(backends);
    if (change.invalid.length > 0) {
      this.c.invalid_backends += change.invalid.length;
      this.tuning.log('WARN', `proxy: ${service}: ignored invalid backends: ${change.invalid.join('; ')}`);
    }
    if (change.added + change.updated + change.removed > 0) {
      this.tuning.log(
        'DEBUG',
        `proxy: ${service}: +${change.added} ~${change.updated} -${change.removed}, ${this.pool(service).readyCount()} ready`,
      );
    }
    return Promise.resolve();
  }

  stats(service: string): Promise<BackendStats[]> {
    return Promise.resolve(this.pools.get(service)?.stats() ?? []);
  }

  counters(): ProxyCounters & { frontends: number } {
    return { ...this.c, frontends: this.listeners.size };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.chain;
    const all = [...this.listeners.values()].map((l) => l.close(this.closeGraceMs));
    this.listeners.clear();
    await Promise.all([...all, ...this.closing]);
    for (const p of this.pools.values()) for (const b of p.backends) destroyUpstream(b);
  }
}

export function createEmbeddedBalancer(opts?: EmbeddedBalancerOptions): EmbeddedBalancer {
  return new EmbeddedBalancer(opts);
}
