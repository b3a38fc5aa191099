// The HAProxy driver of the balancer role. Division of labour:
//  - backend changes (setBackends) touch only the runtime API: re-point a slot (`set server …
//    addr`), `set weight`, `set server … state ready|drain|maint`, `add server` when slots run
//    out — no reload, so no worker churn and no dropped keep-alive connections. The config on
//    disk is rewritten after each change (atomic rename) so it always equals the running state;
//  - frontend changes (setFrontends) are structural: the candidate is validated with
//    `haproxy -c`, then applied with one reload through the master CLI, at most one reload per
//    reloadDebounceMs however many calls arrive (they coalesce onto the next reload).
// Every change to HAProxy runs through one promise queue, so runtime commands never interleave
// with a reload or restart and the slot tables always match what was applied.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Backend, BackendStats, Balancer, BalancerSpec, Frontend } from '../../discovery/types.ts';
import { HaproxyError } from './errors.ts';
import { HaproxyMaster } from './master.ts';
import type { ProcInfo } from './master.ts';
import { backendName, checkHost, checkPort, checkServiceName, renderConfig } from './render.ts';
import { ADMIN_FORCED_DRAIN, RuntimeClient } from './runtime.ts';
import type { ServerStateRow, StatRow } from './runtime.ts';
import { PLACEHOLDER, SlotTable } from './slots.ts';
import type { Slot } from './slots.ts';
import { validateConfig } from './validate.ts';

export type LogFn = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;

export type HaproxyBalancerOptions = BalancerSpec['haproxy'] & { log?: LogFn };

export interface HaproxyBalancer extends Balancer {
  readonly configPath: string;
  /** Stop HAProxy and start it again from the on-disk config; verify the runtime state matches. */
  restart(): Promise<void>;
  /** The master CLI's `show proc` (its own reload count and workers), for cross-checks. */
  showProc(): Promise<ProcInfo>;
}

interface ServiceState {
  frontend: Frontend;
  table: SlotTable;
  /**
   * Counters of a slot when its current backend got it (they belong to the server line, which
   * outlives its backends).
   */
  baseline: Map<string, { stot: number; errors: number }>;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

const MAX_WEIGHT = 256;
/** A moved backend waits at most this long for requests in flight to its old address. */
const MOVE_SETTLE_MS = 2000;

/** A server line's failures: 5xx it answered, connects and responses that failed on it. */
function rowErrors(r: StatRow): number {
  return r.hrsp5xx + r.econ + r.eresp;
}
/** A frontend change waits this long for companions before it is reloaded. */
const QUIET_MS = 250;

export function createHaproxyBalancer(opts: HaproxyBalancerOptions): HaproxyBalancer {
  return new HaproxyDriver(opts);
}

class HaproxyDriver implements HaproxyBalancer {
  readonly kind = 'haproxy' as const;
  readonly configPath: string;
  private readonly adminSocket: string;
  private readonly masterSocket: string;
  private readonly pidFile: string;
  private readonly log: LogFn;
  private readonly master: HaproxyMaster;
  private readonly runtime: RuntimeClient;
  private services = new Map<string, ServiceState>();
  private readonly count = {
    reloads: 0,
    reload_failures: 0,
    runtime_commands: 0,
    slot_grows: 0,
    config_writes: 0,
    restarts: 0,
    master_deaths: 0,
    errors: 0,
  };
  private queue: Promise<unknown> = Promise.resolve();
  private validations: Promise<unknown> = Promise.resolve();
  /** setFrontends calls not yet through validation. */
  private inflight = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private pending: Frontend[] | undefined;
  private waiters: Waiter[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private lastReloadAt = 0;
  /** When the oldest change not yet reloaded arrived. */
  private pendingSince: number | undefined;
  private writeSeq = 0;
  /** opts.dir, absolute. */
  private readonly dir: string;
  /** Why the master died on its own, until restart() brings it back. */
  private masterDeath: string | undefined;

  constructor(private readonly opts: HaproxyBalancerOptions) {
    // Absolute: HAProxy reads a relative `stats socket haproxy/admin.sock` as host:port.
    this.dir = resolve(opts.dir);
    this.configPath = join(this.dir, 'haproxy.cfg');
    this.adminSocket = join(this.dir, 'admin.sock');
    this.masterSocket = join(this.dir, 'master.sock');
    this.pidFile = join(this.dir, 'haproxy.pid');
    this.log = opts.log ?? (() => {});
    this.runtime = new RuntimeClient(this.adminSocket, {
      onCommand: () => {
        this.count.runtime_commands++;
      },
    });
    this.master = new HaproxyMaster({
      binary: opts.binary,
      configPath: this.configPath,
      masterSocket: this.masterSocket,
      adminSocket: this.adminSocket,
      log: this.log,
      onUnexpectedExit: (detail) => {
        this.count.errors++;
        this.count.master_deaths++;
        this.masterDeath = detail;
      },
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async start(frontends: readonly Frontend[]): Promise<void> {
    if (this.state !== 'new') throw new HaproxyError('ERR_HAPROXY_STATE', `start() on a driver that is ${this.state}`);
    checkFrontends(frontends);
    if (!Number.isInteger(this.opts.slots) || this.opts.slots < 1) {
      throw new HaproxyError('ERR_HAPROXY_INPUT', `haproxy slots must be ≥ 1 (got ${this.opts.slots})`);
    }
    // Unix socket paths are limited to ~107 bytes; say so instead of failing obscurely.
    if (Buffer.byteLength(this.masterSocket) > 100) {
      throw new HaproxyError('ERR_HAPROXY_INPUT', `haproxy dir ${this.dir} is too long for a unix socket path`);
    }
    await mkdir(this.dir, { recursive: true });
    // An HAProxy left running in this dir (say, by a kodama that was killed) would keep serving
    // its own copy next to ours (it binds with SO_REUSEPORT): refuse, and say who it is.
    const other = await this.master.showProc().catch(() => undefined);
    if (other !== undefined) {
      throw new HaproxyError(
        'ERR_HAPROXY_STATE',
        `an HAProxy master (pid ${other.masterPid}) already runs from ${this.dir}; stop it (kill ${other.masterPid}) or use another dir`,
      );
    }
    this.services = new Map(frontends.map((f) => [f.service, this.newService(f)]));
    await this.writeConfig(this.services, true);
    await this.master.start();
    this.state = 'running';
    this.lastReloadAt = Date.now();
    this.log('INFO', `haproxy: serving ${frontends.map((f) => `${f.service}@${f.bind.host}:${f.bind.port}`).join(', ') || 'no frontends'} (config ${this.configPath})`);
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.reloadTimer !== undefined) clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    this.pending = undefined;
    for (const w of waiters) w.reject(new HaproxyError('ERR_HAPROXY_STATE', 'the HAProxy driver stopped before the reload'));
    await this.queue.catch(() => {});
    await this.master.stop();
  }

  restart(): Promise<void> {
    return this.serial(async () => {
      this.requireRunning(false);
      await this.master.stop();
      // The file already mirrors the running state; write it again anyway so a hand edit or a
      // lost file cannot decide what comes back.
      await this.writeConfig(this.services, false);
      await this.master.start();
      this.masterDeath = undefined;
      this.count.restarts++;
      for (const s of this.services.values()) s.baseline.clear();
      await this.reapplyDrains();
      await this.verify();
      this.log('INFO', 'haproxy: restarted from the on-disk config; runtime state verified');
    });
  }

  // ---- frontends (structural: validated, debounced reload) ---------------------------------

  async setFrontends(frontends: readonly Frontend[]): Promise<void> {
    this.requireRunning();
    checkFrontends(frontends);
    const target = [...frontends];
    const isRunningSet = sameFrontends([...this.services.values()].map((s) => s.frontend), target);
    // Nothing asked for and nothing under way: done. (With earlier calls in flight this call
    // must still go through the queue, or an older set would win.)
    if (isRunningSet && this.pending === undefined && this.inflight === 0) return;
    this.inflight++;
    // Ask HAProxy now (validations of a burst run side by side), so the caller hears about a bad
    // config at once and nothing changes …
    const verdict = isRunningSet ? Promise.resolve() : this.validateCandidate(target);
    verdict.catch(() => {});
    // … but take results in call order, so the last call's set is the one that gets reloaded.
    const joined = this.validations.then(async (): Promise<{ reload: Promise<void> }> => {
      try {
        await verdict;
        if (this.state !== 'running') throw new HaproxyError('ERR_HAPROXY_STATE', 'the HAProxy driver stopped');
        this.pending = target;
        return { reload: this.joinReload() };
      } finally {
        this.inflight--;
      }
    });
    this.validations = joined.catch(() => {});
    // The reload promise travels wrapped, so the ordering chain never waits for a reload.
    await (await joined).reload;
  }

  private async validateCandidate(target: readonly Frontend[]): Promise<void> {
    const path = `${this.configPath}.candidate${++this.writeSeq}`;
    await writeFile(path, this.render(this.withFrontends(target)));
    try {
      await validateConfig(this.opts.binary, path);
    } catch (e) {
      this.count.errors++;
      this.log('ERR', `haproxy: frontend change rejected: ${(e as Error).message}`);
      throw e;
    } finally {
      await rm(path, { force: true });
    }
  }

  /**
   * Join the next reload. Changes are gathered until none came for QUIET_MS, but no longer than
   * reloadDebounceMs after the first one, and never sooner than reloadDebounceMs after the
   * previous reload began; everything gathered rides on one reload. So a burst shorter than
   * reloadDebounceMs costs one reload (two if validation lag pushes its tail past the first),
   * and a steady stream of changes costs one reload per reloadDebounceMs, never a storm.
   */
  private joinReload(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    const now = Date.now();
    this.pendingSince ??= now;
    const debounceMs = this.opts.reloadDebounceMs;
    const fireAt = Math.max(this.lastReloadAt + debounceMs, Math.min(now + Math.min(QUIET_MS, debounceMs), this.pendingSince + debounceMs));
    if (this.reloadTimer !== undefined) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      this.pendingSince = undefined;
      void this.applyPending();
    }, Math.max(0, fireAt - now));
    return p;
  }

  private async applyPending(): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    try {
      await this.serial(async () => {
        const target = this.pending;
        this.pending = undefined;
        if (target === undefined || this.state !== 'running') return;
        // Changes that cancel out (A → B → A) need no reload.
        if (sameFrontends(target, [...this.services.values()].map((s) => s.frontend))) return;
        await this.reloadWith(target);
      });
      for (const w of waiters) w.resolve();
    } catch (e) {
      for (const w of waiters) w.reject(e);
    }
  }

  private async reloadWith(target: Frontend[]): Promise<void> {
    const previous = this.services;
    const next = this.withFrontends(target);
    await this.writeConfig(next, true);
    this.lastReloadAt = Date.now();
    try {
      await this.master.reload();
    } catch (e) {
      // The old worker still serves the old frontends: put the old config back on disk.
      this.count.reload_failures++;
      this.count.errors++;
      await this.writeConfig(previous, false).catch(() => {});
      this.log('ERR', `haproxy: reload failed, previous config restored: ${(e as Error).message}`);
      throw e;
    }
    this.services = next;
    this.count.reloads++;
    for (const s of next.values()) s.baseline.clear();
    await this.reapplyDrains();
    this.log('INFO', `haproxy: reloaded for frontends ${target.map((f) => f.service).join(', ') || '(none)'}`);
  }

  /** Services for a new frontend list: kept services keep their slots, new ones start empty. */
  private withFrontends(target: readonly Frontend[]): Map<string, ServiceState> {
    const next = new Map<string, ServiceState>();
    for (const f of target) {
      const old = this.services.get(f.service);
      next.set(f.service, old === undefined ? this.newService(f) : { ...old, frontend: f });
    }
    return next;
  }

  private newService(frontend: Frontend): ServiceState {
    return { frontend, table: new SlotTable(this.opts.slots), baseline: new Map() };
  }

  // ---- backends (runtime API only) ----------------------------------------------------------

  async setBackends(service: string, backends: readonly Backend[]): Promise<void> {
    checkBackends(service, backends);
    return this.serial(async () => {
      this.requireRunning();
      const svc = this.services.get(service);
      if (svc === undefined) {
        throw new HaproxyError('ERR_HAPROXY_STATE', `no frontend for service "${service}" (setFrontends first)`);
      }
      let failure: unknown;
      const attempt = async (fn: () => Promise<void>): Promise<void> => {
        try {
          await fn();
        } catch (e) {
          this.count.errors++;
          failure ??= e;
          this.log('ERR', `haproxy: ${(e as Error).message}`);
        }
      };
      const changed = await this.applyBackends(svc, backends, attempt);
      if (changed) await this.writeConfig(this.services, false);
      if (failure !== undefined) throw failure;
    });
  }

  private async applyBackends(
    svc: ServiceState,
    backends: readonly Backend[],
    attempt: (fn: () => Promise<void>) => Promise<void>,
  ): Promise<boolean> {
    const be = backendName(svc.frontend.service);
    const desired = new Map(backends.map((b) => [b.id, b]));
    let changed = false;
    // Order matters for a route shift (blue drain + green added in one set): whatever takes
    // traffic is in rotation before anything leaves it, or requests in between find no server
    // (503). So: known backends that stay or come back ready first, new ones next, and the ones
    // going to drain only at the end.
    const draining: { slot: Slot; want: Backend }[] = [];
    // 1. Known backends: update in place (drains postponed to 5).
    for (const slot of svc.table.used()) {
      const want = desired.get(slot.backend?.id ?? '');
      if (want === undefined) continue;
      if (want.state === 'drain' && slot.backend?.state !== 'drain') {
        draining.push({ slot, want });
        continue;
      }
      await attempt(async () => {
        if (await this.updateSlot(be, slot, want)) changed = true;
      });
    }
    const fresh = backends.filter((b) => svc.table.byId(b.id) === undefined);
    // 2. New backends into free slots first (the set never shrinks before it grows) …
    const later: Backend[] = [];
    for (const b of fresh) {
      const slot = svc.table.free();
      if (slot === undefined) {
        later.push(b);
        continue;
      }
      changed = true;
      await attempt(() => this.fillSlot(svc, be, slot, b));
    }
    // 3. … then absent backends out: maint at once, slot freed (the role drained them before).
    for (const slot of svc.table.used()) {
      if (slot.backend !== undefined && !desired.has(slot.backend.id)) {
        changed = true;
        await attempt(() => this.freeSlot(be, slot));
      }
    }
    // 4. The rest into freed slots, or new slots made with `add server`.
    for (const b of later) {
      changed = true;
      const slot = svc.table.free();
      if (slot !== undefined) await attempt(() => this.fillSlot(svc, be, slot, b));
      else await attempt(() => this.growSlot(svc, be, b));
    }
    // 5. Known backends leaving rotation, now that their successors serve.
    for (const { slot, want } of draining) {
      await attempt(async () => {
        if (await this.updateSlot(be, slot, want)) changed = true;
      });
    }
    return changed;
  }

  private async updateSlot(be: string, slot: Slot, want: Backend): Promise<boolean> {
    const have = slot.backend;
    if (have === undefined) return false;
    let changed = false;
    if (have.host !== want.host || have.port !== want.port) {
      // `set server … addr` alone leaves HAProxy's pooled idle connections to the old address in
      // use (seen on 2.6: the old port kept answering). Entering maint purges the pool
      // (srv_cleanup_connections in srv_update_status) — but a request still in flight to the old
      // address hands its connection back to the pool if it ends after the server is back (seen:
      // 34 of 40 moves under load sent requests to the old port afterwards; 0 of 160 with the
      // wait). So: maint, wait until nothing is in flight, addr, back.
      await this.runtime.setState(be, slot.name, 'maint');
      await this.waitNoSessions(be, slot.name, MOVE_SETTLE_MS);
      await this.runtime.setAddr(be, slot.name, want.host, want.port);
      await this.runtime.setState(be, slot.name, have.state);
      slot.backend = { ...have, host: want.host, port: want.port };
      changed = true;
    }
    if (have.weight !== want.weight) {
      await this.runtime.setWeight(be, slot.name, want.weight);
      slot.backend = { ...(slot.backend ?? have), weight: want.weight };
      changed = true;
    }
    if (have.state !== want.state) {
      await this.runtime.setState(be, slot.name, want.state);
      changed = true;
    }
    slot.backend = { ...want };
    return changed;
  }

  /** Until `server` has no session in flight (HAProxy's scur), or `boundMs` passed. */
  private async waitNoSessions(be: string, server: string, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    for (let i = 0; i < 1000; i++) {
      const row = (await this.runtime.showStat(be)).find((r) => r.server === server);
      if (row === undefined || row.scur === 0) return;
      if (Date.now() >= deadline) {
        this.log('WARN', `haproxy: ${be}/${server} still has ${row.scur} request(s) in flight to its old address after ${boundMs} ms; moving it anyway`);
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The slot is free, so in maint: its pooled connections to a previous backend are gone. */
  private async fillSlot(svc: ServiceState, be: string, slot: Slot, b: Backend): Promise<void> {
    // stot of a server line outlives its backends; remember where this backend starts.
    const row = (await this.runtime.showStat(be)).find((r) => r.server === slot.name);
    svc.baseline.set(slot.name, { stot: row?.stot ?? 0, errors: row === undefined ? 0 : rowErrors(row) });
    await this.runtime.setAddr(be, slot.name, b.host, b.port);
    await this.runtime.setWeight(be, slot.name, b.weight);
    await this.runtime.setState(be, slot.name, b.state);
    slot.backend = { ...b };
    this.log('DEBUG', `haproxy: ${be}/${slot.name} ← ${b.id} ${b.host}:${b.port} w${b.weight} ${b.state}`);
  }

  private async freeSlot(be: string, slot: Slot): Promise<void> {
    const was = slot.backend;
    // maint first: no new requests; requests in flight finish (HAProxy does not cut them).
    await this.runtime.setState(be, slot.name, 'maint');
    slot.backend = undefined;
    await this.runtime.setAddr(be, slot.name, PLACEHOLDER.host, PLACEHOLDER.port);
    this.log('DEBUG', `haproxy: ${be}/${slot.name} freed (was ${was?.id ?? '?'})`);
  }

  private async growSlot(svc: ServiceState, be: string, b: Backend): Promise<void> {
    const slot = svc.table.grow();
    try {
      await this.runtime.addServer(be, slot.name, b.host, b.port, b.weight);
    } catch (e) {
      svc.table.drop(slot);
      throw e;
    }
    this.count.slot_grows++;
    svc.baseline.set(slot.name, { stot: 0, errors: 0 });
    // A server made by `add server` starts in maint. The slot is recorded before leaving maint,
    // so a failure below still leaves the table naming the server HAProxy has.
    slot.backend = { ...b, state: 'drain' };
    await this.runtime.setState(be, slot.name, b.state);
    slot.backend = { ...b };
    this.log('INFO', `haproxy: ${be} grew to ${svc.table.slots.length} slots for ${b.id}`);
  }

  /** After a (re)start HAProxy runs the file, where a draining server is weight 0: restore drain. */
  private async reapplyDrains(): Promise<void> {
    for (const svc of this.services.values()) {
      const be = backendName(svc.frontend.service);
      for (const slot of svc.table.used()) {
        const b = slot.backend;
        if (b?.state !== 'drain') continue;
        await this.runtime.setState(be, slot.name, 'drain');
        await this.runtime.setWeight(be, slot.name, b.weight);
      }
    }
  }

  /** Compare `show servers state` with the slot tables; ERR_HAPROXY_VERIFY on any difference. */
  private async verify(): Promise<void> {
    const problems: string[] = [];
    for (const svc of this.services.values()) {
      const be = backendName(svc.frontend.service);
      const rows = await this.runtime.showServersState(be);
      const byName = new Map<string, ServerStateRow>(rows.map((r) => [r.server, r]));
      for (const slot of svc.table.slots) {
        const row = byName.get(slot.name);
        if (row === undefined) {
          problems.push(`${be}/${slot.name} missing`);
          continue;
        }
        const b = slot.backend;
        const maint = row.opState === 0 || (row.adminState & 0x01) !== 0 || ((row.adminState & 0x04) !== 0 && row.opState !== 2);
        if (b === undefined) {
          if (!maint) problems.push(`${be}/${slot.name} should be free (maint) but serves ${row.addr}:${row.port}`);
          continue;
        }
        if (row.addr !== b.host || row.port !== b.port) problems.push(`${be}/${slot.name} at ${row.addr}:${row.port}, want ${b.host}:${b.port} (${b.id})`);
        if (maint) problems.push(`${be}/${slot.name} (${b.id}) is in maint`);
        const draining = (row.adminState & ADMIN_FORCED_DRAIN) !== 0;
        if (draining !== (b.state === 'drain')) problems.push(`${be}/${slot.name} (${b.id}) drain=${draining}, want ${b.state}`);
        if (row.userWeight !== b.weight) problems.push(`${be}/${slot.name} (${b.id}) weight ${row.userWeight}, want ${b.weight}`);
      }
    }
    if (problems.length > 0) {
      this.count.errors++;
      throw new HaproxyError('ERR_HAPROXY_VERIFY', `running HAProxy differs from the config: ${problems.join('; ')}`);
    }
  }

  // ---- figures ---------------------------------------------------------------------------

  /**
   * From `show stat` (scur/stot per slot) of the current worker. Right after a reload, sessions
   * still held by the old worker are not counted — harmless for draining: runtime commands
   * reach only the new worker, so the old one finishes its requests whatever we do.
   */
  async stats(service: string): Promise<BackendStats[]> {
    this.requireRunning();
    const svc = this.services.get(service);
    if (svc === undefined) throw new HaproxyError('ERR_HAPROXY_STATE', `no frontend for service "${service}"`);
    const rows = await this.runtime.showStat(backendName(service));
    const out: BackendStats[] = [];
    for (const slot of svc.table.used()) {
      const row = rows.find((r) => r.server === slot.name);
      if (row === undefined || slot.backend === undefined) continue;
      const base = svc.baseline.get(slot.name);
      out.push({
        id: slot.backend.id,
        activeSessions: row.scur,
        totalSessions: Math.max(0, row.stot - (base?.stot ?? 0)),
        errors: Math.max(0, rowErrors(row) - (base?.errors ?? 0)),
      });
    }
    return out;
  }

  /**
   * reloads (successful, through the master CLI), reload_failures, runtime_commands (every
   * command sent to the admin socket, show included), slot_grows (`add server`), config_writes,
   * restarts, master_deaths (exits we did not ask for), errors (all failures, counted once).
   */
  counters(): Record<string, number> {
    return { ...this.count };
  }

  /** The master's own view (reload count, workers), for cross-checks. */
  showProc(): Promise<ProcInfo> {
    return this.master.showProc();
  }

  /** Slot tables as applied (service → slot name → backend id or undefined). */
  slotTable(service: string): { name: string; backend: Backend | undefined }[] {
    return (this.services.get(service)?.table.slots ?? []).map((s) => ({ name: s.name, backend: s.backend }));
  }

  // ---- helpers ---------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Started and not stopped; with `alive`, HAProxy must be up too (restart() revives it). */
  private requireRunning(alive = true): void {
    if (this.state !== 'running') throw new HaproxyError('ERR_HAPROXY_STATE', `the HAProxy driver is ${this.state === 'new' ? 'not started' : 'stopped'}`);
    if (alive && this.masterDeath !== undefined) {
      throw new HaproxyError('ERR_HAPROXY_STATE', `HAProxy is down (master died: ${this.masterDeath}); restart() starts it again from ${this.configPath}`);
    }
  }

  private render(services: Map<string, ServiceState>): string {
    return renderConfig({
      adminSocket: this.adminSocket,
      pidFile: this.pidFile,
      services: [...services.values()].map((s) => ({ frontend: s.frontend, slots: s.table.slots })),
    });
  }

  /**
   * Write the config atomically (temp file + rename). Structural writes are validated by
   * HAProxy first; runtime-change writes are not (HAProxy just accepted the same values through
   * its runtime API, and a `haproxy -c` per backend change would cost a process each time).
   */
  private async writeConfig(services: Map<string, ServiceState>, validate: boolean): Promise<void> {
    const tmp = `${this.configPath}.tmp${++this.writeSeq}`;
    await writeFile(tmp, this.render(services));
    try {
      if (validate) await validateConfig(this.opts.binary, tmp);
      await rename(tmp, this.configPath);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.count.config_writes++;
  }
}

function checkFrontends(frontends: readonly Frontend[]): void {
  const names = new Set<string>();
  const binds = new Set<string>();
  for (const f of frontends) {
    checkServiceName(f.service);
    if (f.mode !== 'http' && f.mode !== 'tcp') throw new HaproxyError('ERR_HAPROXY_INPUT', `service ${f.service}: mode must be http or tcp`);
    checkHost(f.bind.host, `service ${f.service} bind address`);
    checkPort(f.bind.port, `service ${f.service} bind`);
    if (names.has(f.service)) throw new HaproxyError('ERR_HAPROXY_INPUT', `service ${f.service} has two frontends`);
    const bind = `${f.bind.host}:${f.bind.port}`;
    if (binds.has(bind)) throw new HaproxyError('ERR_HAPROXY_INPUT', `two frontends bind ${bind}`);
    names.add(f.service);
    binds.add(bind);
  }
}

function checkBackends(service: string, backends: readonly Backend[]): void {
  const ids = new Set<string>();
  for (const b of backends) {
    if (ids.has(b.id)) throw new HaproxyError('ERR_HAPROXY_INPUT', `service ${service}: backend ${b.id} listed twice`);
    ids.add(b.id);
    checkHost(b.host, `backend ${b.id} host`);
    checkPort(b.port, `backend ${b.id}`);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > MAX_WEIGHT) {
      throw new HaproxyError('ERR_HAPROXY_INPUT', `backend ${b.id} weight ${b.weight} is not 0..${MAX_WEIGHT}`);
    }
    if (b.state !== 'ready' && b.state !== 'drain') throw new HaproxyError('ERR_HAPROXY_INPUT', `backend ${b.id} state must be ready or drain`);
  }
}

function sameFrontends(a: readonly Frontend[], b: readonly Frontend[]): boolean {
  if (a.length !== b.length) return false;
  const key = (f: Frontend): string => `${f.service} ${f.mode} ${f.bind.host}:${f.bind.port}`;
  const as = a.map(key).sort();
  const bs = b.map(key).sort();
  return as.every((k, i) => k === bs[i]);
}
