// The HAProxy process: `haproxy -W -S <dir>/master.sock -f <cfg>` as our child in master-worker
// mode. The master keeps the listening sockets across reloads (no refused connections), so a
// reload goes through its CLI: `reload`, then we poll `show proc` until the master counted the
// reload and a fresh worker (reloads 0, new pid) serves the admin socket — or the master counted
// it as failed (e.g. a bind error, which `haproxy -c` cannot see), in which case the old worker
// keeps serving and we report HAProxy's alerts.
//
// `show proc` on 2.6 (verified):
//   #<PID>  <type>  <reloads>  <uptime>  <version>
//   3860    master  1 [failed: 1]  0d00h00m06s  2.6.12…
//   # workers
//   3863    worker  1  …          ← a worker that survived one reload (old one after a failure)
// The failed count is reset by the next successful reload.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { HaproxyError } from './errors.ts';
import { sendCommand } from './runtime.ts';
import { haproxyComplaints } from './validate.ts';

export interface ProcInfo {
  masterPid: number;
  reloads: number;
  failed: number;
  /** Current workers (pid, reloads survived). */
  workers: { pid: number; reloads: number }[];
}

export function parseShowProc(text: string): ProcInfo | undefined {
  let master: { pid: number; reloads: number; failed: number } | undefined;
  const workers: { pid: number; reloads: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/.exec(line);
    if (m !== null) {
      master = { pid: Number(m[1]), reloads: Number(m[2]), failed: Number(m[3] ?? 0) };
      continue;
    }
    const w = /^(\d+)\s+worker\s+(\d+)/.exec(line);
    if (w !== null) workers.push({ pid: Number(w[1]), reloads: Number(w[2]) });
  }
  return master === undefined ? undefined : { masterPid: master.pid, reloads: master.reloads, failed: master.failed, workers };
}

export interface MasterOptions {
  binary: string;
  configPath: string;
  masterSocket: string;
  adminSocket: string;
  log: (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERR', msg: string) => void;
  /** Called when the master exits without stop() being asked for. */
  onUnexpectedExit: (detail: string) => void;
  /** Bound on start and on each reload, ms. */
  readyTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class HaproxyMaster {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Recent output lines of the master and workers (for error messages). */
  private output: string[] = [];
  private readonly readyTimeoutMs: number;

  constructor(private readonly opts: MasterOptions) {
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawn the master and wait until a worker answers on the admin socket. */
  async start(): Promise<void> {
    if (this.running) throw new HaproxyError('ERR_HAPROXY_STATE', 'HAProxy is already running');
    this.stopping = false;
    this.output = [];
    const child = spawn(this.opts.binary, ['-W', '-S', `${this.opts.masterSocket},mode,600`, '-f', this.opts.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let exitDetail: string | undefined;
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      // A binary that cannot be spawned gives 'error' and maybe no 'exit'.
      child.once('error', (e) => {
        spawnError = e;
        this.stopping = true;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitDetail = `exit ${code ?? signal ?? '?'}`;
        if (!this.stopping) {
          const said = haproxyComplaints(this.output.join('\n'));
          this.opts.log('ERR', `haproxy: master ${child.pid ?? '?'} died (${exitDetail}): ${said}`);
          this.opts.onUnexpectedExit(`${exitDetail}: ${said}`);
        }
        resolve();
      });
    });
    const collect = (d: Buffer): void => {
      for (const line of d.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.output.push(line);
        // HAProxy reports routine events (a server entering drain, a worker exiting on stop) as
        // WARNING/ALERT; our own log lines say what went wrong, so its words stay at DEBUG except
        // alerts while we are not stopping it.
        this.opts.log(line.startsWith('[ALERT]') && !this.stopping ? 'WARN' : 'DEBUG', `haproxy: ${line}`);
      }
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);

    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      if (spawnError !== undefined) {
        this.child = undefined;
        throw new HaproxyError('ERR_HAPROXY_SPAWN', `cannot start ${this.opts.binary}: ${spawnError.message}`);
      }
      if (exitDetail !== undefined) {
        throw new HaproxyError('ERR_HAPROXY_SPAWN', `HAProxy exited at start (${exitDetail}): ${haproxyComplaints(this.output.join('\n'))}`);
      }
      const info = await this.showProc().catch(() => undefined);
      const worker = info?.workers[0];
      if (worker !== undefined && (await this.adminPid()) === worker.pid) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new HaproxyError('ERR_HAPROXY_SPAWN', `HAProxy did not serve within ${this.readyTimeoutMs} ms: ${haproxyComplaints(this.output.join('\n'))}`);
      }
      await sleep(50);
    }
  }

  async showProc(): Promise<ProcInfo> {
    const text = await sendCommand(this.opts.masterSocket, 'show proc', 2000);
    const info = parseShowProc(text);
    if (info === undefined) throw new HaproxyError('ERR_HAPROXY_SOCKET', `unexpected "show proc" reply: ${text.trim().split('\n')[0] ?? ''}`);
    return info;
  }

  /** Pid of the worker answering the admin socket (undefined when none answers). */
  private async adminPid(): Promise<number | undefined> {
    try {
      const info = await sendCommand(this.opts.adminSocket, 'show info', 2000);
      const m = /^Pid:\s*(\d+)/m.exec(info);
      return m === null ? undefined : Number(m[1]);
    } catch {
      return undefined;
    }
  }

  /**
   * Reload through the master CLI and wait for the outcome: resolves when a new worker serves
   * the admin socket; rejects ERR_HAPROXY_CONFIG when the master refused the new config (the old
   * worker still serves), ERR_HAPROXY_RELOAD when nothing happened in time.
   */
  async reload(): Promise<void> {
    if (!this.running) throw new HaproxyError('ERR_HAPROXY_STATE', 'HAProxy is not running');
    const before = await this.showProc();
    const oldPids = new Set(before.workers.map((w) => w.pid));
    const mark = this.output.length;
    // The master re-executes itself on reload and drops our connection; an empty reply or a
    // reset are both normal here.
    await sendCommand(this.opts.masterSocket, 'reload', 2000).catch(() => '');
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      await sleep(50);
      if (!this.running) throw new HaproxyError('ERR_HAPROXY_RELOAD', 'the HAProxy master died during a reload');
      const info = await this.showProc().catch(() => undefined);
      if (info !== undefined && info.reloads > before.reloads) {
        if (info.failed > 0) {
          const said = haproxyComplaints(this.output.slice(mark).join('\n'));
          throw new HaproxyError('ERR_HAPROXY_CONFIG', `HAProxy refused the new config at reload (old config keeps serving): ${said}`);
        }
        const fresh = info.workers.find((w) => w.reloads === 0 && !oldPids.has(w.pid));
        if (fresh !== undefined && (await this.adminPid()) === fresh.pid) return;
      }
      if (Date.now() > deadline) {
        throw new HaproxyError('ERR_HAPROXY_RELOAD', `no new HAProxy worker within ${this.readyTimeoutMs} ms after reload`);
      }
    }
  }

  /** Hard stop (SIGTERM to the master stops the workers too); SIGKILL after a bound. */
  async stop(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.stopping = true;
    if (this.running) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(killer);
    }
    this.child = undefined;
  }
}
