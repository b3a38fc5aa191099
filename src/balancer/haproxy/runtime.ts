// Client of HAProxy's runtime API (the admin `stats socket`, and the master CLI, same protocol):
// one unix-socket connection per command in non-interactive mode — write "<command>\n", HAProxy
// answers and closes. The API has no status codes, so each caller states what a successful
// reply looks like (`expect`), and anything else becomes a coded error carrying HAProxy's words.
//
// Verified by hand against HAProxy 2.6.12 (Debian 12):
//  - `set server B/S addr A port P` → "IP changed from …" / "no need to change the addr, port
//    changed from '1' to '9999' by 'stats socket command'" (both success);
//  - `set weight B/S W`, `set server B/S state ready|drain|maint`, `enable server B/S` → empty;
//  - `add server B/S A:P weight W` → "New server registered." (the server starts in maint;
//    `set server B/S state ready` — like `enable server` — or `state drain` takes it out of maint);
//  - a server rendered `disabled` keeps admin bit 0x04 after `state ready` but serves (op state 2);
//  - `set server … addr` keeps using pooled idle connections to the old address; entering maint
//    purges them — so the driver re-points a live slot as maint → addr → ready;
//  - unknown server → "No such server."; unknown command → "Unknown command, but maybe …";
//  - `show servers state B` → "1" (format version), "# be_id be_name …" header, space-separated rows;
//  - `show stat B 4 -1` → CSV with "# pxname,svname,…" header, servers only (type 4);
//  - master CLI `reload` answers nothing at once (2.6 has no synchronous reload status), and
//    `show proc` lists the master's reload count and the current workers.
import { createConnection } from 'node:net';
import { HaproxyError } from './errors.ts';

export interface RuntimeClientOptions {
  /** Per-command bound (connect + reply), ms. */
  timeoutMs?: number;
  /** Called once per command sent (for the driver's runtime_commands counter). */
  onCommand?: (command: string) => void;
}

/** Send one command, return HAProxy's full reply text. */
export function sendCommand(socketPath: string, command: string, timeoutMs = 3000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const sock = createConnection(socketPath);
    const finish = (err: HaproxyError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => finish(new HaproxyError('ERR_HAPROXY_SOCKET', `no reply to "${command}" on ${socketPath} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('connect', () => sock.end(`${command}\n`));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => finish(undefined));
    sock.on('error', (e: NodeJS.ErrnoException) =>
      finish(new HaproxyError('ERR_HAPROXY_SOCKET', `cannot talk to HAProxy at ${socketPath} (${e.code ?? e.message}) sending "${command}"`)),
    );
  });
}

export type ReplyCheck = 'empty' | RegExp;

export class RuntimeClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly onCommand: ((command: string) => void) | undefined;

  constructor(socketPath: string, opts: RuntimeClientOptions = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.onCommand = opts.onCommand;
  }

  /** Raw reply, no check (show commands). */
  async raw(command: string): Promise<string> {
    this.onCommand?.(command);
    return sendCommand(this.socketPath, command, this.timeoutMs);
  }

  /** Send a command whose success reply is known; anything else → ERR_HAPROXY_RUNTIME. */
  async run(command: string, expect: ReplyCheck = 'empty'): Promise<string> {
    const reply = await this.raw(command);
    const text = reply.trim();
    const ok = expect === 'empty' ? text === '' : expect.test(text);
    if (!ok) {
      const said = text === '' ? '(empty reply)' : (text.split('\n')[0] ?? '');
      throw new HaproxyError('ERR_HAPROXY_RUNTIME', `HAProxy refused "${command}": ${said}`);
    }
    return reply;
  }

  setAddr(backend: string, server: string, host: string, port: number): Promise<string> {
    return this.run(`set server ${backend}/${server} addr ${host} port ${port}`, /changed from|no need to change/i);
  }

  setWeight(backend: string, server: string, weight: number): Promise<string> {
    return this.run(`set weight ${backend}/${server} ${weight}`);
  }

  setState(backend: string, server: string, state: 'ready' | 'drain' | 'maint'): Promise<string> {
    return this.run(`set server ${backend}/${server} state ${state}`);
  }

  /** Dynamic server (HAProxy ≥ 2.4); it is created in maint. */
  addServer(backend: string, server: string, host: string, port: number, weight: number): Promise<string> {
    return this.run(`add server ${backend}/${server} ${host}:${port} weight ${weight}`, /New server registered/);
  }

  async showStat(backend: string): Promise<StatRow[]> {
    return parseStatCsv(await this.raw(`show stat ${backend} 4 -1`));
  }

  async showServersState(backend: string): Promise<ServerStateRow[]> {
    return parseServersState(await this.raw(`show servers state ${backend}`));
  }
}

/** One server line of `show stat` (CSV), the fields the driver uses. */
export interface StatRow {
  backend: string;
  server: string;
  /** Current sessions. */
  scur: number;
  /** Total sessions. */
  stot: number;
  /** HTTP responses with a 5xx status (empty in tcp mode → 0). */
  hrsp5xx: number;
  /** Failed connects to the server. */
  econ: number;
  /** Response errors (includes aborts by the server). */
  eresp: number;
  /** UP, DOWN, MAINT, DRAIN, "no check", … */
  status: string;
  weight: number;
  addr: string;
}

export function parseStatCsv(text: string): StatRow[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines.find((l) => l.startsWith('# '));
  if (header === undefined) {
    throw new HaproxyError('ERR_HAPROXY_RUNTIME', `show stat gave no CSV header: ${text.trim().split('\n')[0] ?? ''}`);
  }
  const cols = header.slice(2).split(',');
  const at = (name: string): number => cols.indexOf(name);
  const rows: StatRow[] = [];
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    const f = line.split(',');
    const get = (name: string): string => f[at(name)] ?? '';
    const server = get('svname');
    if (server === 'FRONTEND' || server === 'BACKEND') continue;
    rows.push({
      backend: get('pxname'),
      server,
      scur: Number(get('scur')) || 0,
      stot: Number(get('stot')) || 0,
      hrsp5xx: Number(get('hrsp_5xx')) || 0,
      econ: Number(get('econ')) || 0,
      eresp: Number(get('eresp')) || 0,
      status: get('status'),
      weight: Number(get('weight')) || 0,
      addr: get('addr'),
    });
  }
  return rows;
}

/** One row of `show servers state` (format version 1). */
export interface ServerStateRow {
  backend: string;
  server: string;
  addr: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping. */
  opState: number;
  /** Bit field: 0x01 forced maint, 0x04 maint from config (`disabled`), 0x08 forced drain, … */
  adminState: number;
  /** Weight set by the user (runtime or config). */
  userWeight: number;
}

export function parseServersState(text: string): ServerStateRow[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines.find((l) => l.startsWith('# '));
  if (header === undefined) {
    throw new HaproxyError('ERR_HAPROXY_RUNTIME', `show servers state gave no header: ${text.trim().split('\n')[0] ?? ''}`);
  }
  const cols = header.slice(2).split(' ');
  const at = (name: string): number => cols.indexOf(name);
  const rows: ServerStateRow[] = [];
  for (const line of lines) {
    if (line.startsWith('#') || !line.includes(' ')) continue; // header, or the version line "1"
    const f = line.split(' ');
    const get = (name: string): string => f[at(name)] ?? '';
    rows.push({
      backend: get('be_name'),
      server: get('srv_name'),
      addr: get('srv_addr'),
      port: Number(get('srv_port')),
      opState: Number(get('srv_op_state')),
      adminState: Number(get('srv_admin_state')),
      userWeight: Number(get('srv_uweight')),
    });
  }
  return rows;
}

/** Admin-state bits (HAProxy's SRV_ADMF_*). */
export const ADMIN_FORCED_MAINT = 0x01;
export const ADMIN_CONFIG_MAINT = 0x04;
export const ADMIN_FORCED_DRAIN = 0x08;
/** Any maint flag (forced, inherited, config, resolver, hostname). */
export const ADMIN_ANY_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
