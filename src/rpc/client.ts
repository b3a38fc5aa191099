// RPC client for kodama's CLI (and anything else that drives an agent): speaks serf's IPC, so it
// works against a kodama agent and a real `serf agent` alike. Requests are matched to responses
// by Seq; each has a timeout (serf's CLI uses 10 s).

import { connect as netConnect, type Socket } from 'node:net';
import { asMap, asUint, decodeMsgpack, type MsgValue } from '../wire/index.ts';
import type { RpcMember } from './backend.ts';
import { RpcError } from './errors.ts';
import { msgpackExtent } from './extent.ts';
import {
  commandSpec,
  decodeResponseHeader,
  decodeStringMap,
  encodeRequest,
  IPC_VERSION_MAX,
  membersFromWire,
  RpcErrorText,
} from './protocol.ts';

export interface RpcClientOptions {
  /** Sent with `auth` right after the handshake when non-empty. */
  authKey?: string;
  /** Per request, and for connecting. Default 10 s, as serf's CLI. */
  timeoutMs?: number;
}

export interface MembersFilter {
  name?: string;
  status?: string;
  tags?: Record<string, string>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** A single response larger than this is treated as a broken stream (a huge cluster's member list fits easily). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

interface Pending {
  command: string;
  expectsBody: boolean;
  resolve(body: MsgValue | undefined): void;
  reject(err: RpcError): void;
  timer: NodeJS.Timeout;
}

/** Split "host:port" / "[v6]:port". */
export function parseRpcAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) {
    throw new RpcError('ERR_RPC_CONNECT', `invalid RPC address '${addr}': expected host:port, e.g. 127.0.0.1:7373`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

function remoteError(addr: string, text: string): RpcError {
  if (text === RpcErrorText.authRequired) {
    return new RpcError('ERR_RPC_AUTH', `${text}: the agent at ${addr} needs an RPC auth token (pass -rpc-auth)`);
  }
  if (text === RpcErrorText.invalidAuthToken) {
    return new RpcError('ERR_RPC_AUTH', `${text}: the agent at ${addr} rejected the RPC auth token`);
  }
  return new RpcError('ERR_RPC_REMOTE', text);
}

export class RpcClient {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private buf: Buffer = Buffer.alloc(0);
  /** A header for a body-carrying response arrived; the next object is its body. */
  private awaitingBody: { p: Pending; error: string } | null = null;
  private closedWith: RpcError | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly addr: string,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new RpcError('ERR_RPC_CLOSED', `connection to ${addr} failed: ${err.message}`)));
    socket.on('close', () => this.fail(new RpcError('ERR_RPC_CLOSED', `the agent at ${addr} closed the connection`)));
  }

  /** Connect, handshake, and authenticate when a key is given. */
  static async connect(addr: string, opts: RpcClientOptions = {}): Promise<RpcClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const { host, port } = parseRpcAddr(addr);
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new RpcError('ERR_RPC_TIMEOUT', `no answer from ${addr} within ${timeoutMs} ms while connecting`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        const why =
          err.code === 'ECONNREFUSED'
            ? `no kodama or serf agent is listening on ${addr} — start one with \`kodama agent\` or pass -rpc-addr`
            : `cannot reach an agent at ${addr} (${err.code ?? err.message}) — check -rpc-addr`;
        reject(new RpcError('ERR_RPC_CONNECT', why, { cause: err }));
      });
    });
    const client = new RpcClient(socket, addr, timeoutMs);
    try {
      await client.call('handshake', { Version: IPC_VERSION_MAX });
      if (opts.authKey !== undefined && opts.authKey !== '') await client.call('auth', { AuthKey: opts.authKey });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /**
   * Send one request and wait for its response body (undefined for commands without one).
   * The body is sent only for commands that take one. Rejects with RpcError.
   */
  call(command: string, body?: MsgValue): Promise<MsgValue | undefined> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    const spec = commandSpec(command);
    const seq = ++this.seq;
    return new Promise<MsgValue | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The late reply (and maybe its body) would desynchronise the stream: give up on it.
        this.fail(new RpcError('ERR_RPC_TIMEOUT', `no answer to '${command}' from ${this.addr} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(seq, { command, expectsBody: spec?.responseBody ?? false, resolve, reject, timer });
      const withBody = spec === undefined ? body : spec.requestBody ? (body ?? {}) : undefined;
      this.socket.write(encodeRequest(command, seq, withBody));
    });
  }

  /** Decode a response body; a shape error is the agent's fault, reported as ERR_RPC_PROTOCOL. */
  private shape<T>(command: string, body: MsgValue | undefined, decode: (v: MsgValue) => T): T {
    try {
      return decode(body ?? null);
    } catch (err) {
      throw new RpcError('ERR_RPC_PROTOCOL', `unexpected '${command}' response from ${this.addr}: ${(err as Error).message}`, { cause: err });
    }
  }

  async members(): Promise<RpcMember[]> {
    return this.shape('members', await this.call('members'), membersFromWire);
  }

  /** Anchored regexes on name, status and each tag, evaluated by the agent. */
  async membersFiltered(f: MembersFilter): Promise<RpcMember[]> {
    const body = await this.call('members-filtered', {
      Name: f.name ?? '',
      Status: f.status ?? '',
      Tags: { ...(f.tags ?? {}) },
    });
    return this.shape('members-filtered', body, membersFromWire);
  }

  /** Returns how many nodes were joined. */
  async join(addrs: string[], replay: boolean): Promise<number> {
    const body = await this.call('join', { Existing: [...addrs], Replay: replay });
    return this.shape('join', body, (v) => {
      const num = asMap(v)['Num'];
      return num === undefined ? 0 : asUint(num);
    });
  }

  /** The agent leaves the cluster gracefully and shuts down. */
  async leave(): Promise<void> {
    await this.call('leave');
  }

  async stats(): Promise<Record<string, Record<string, string>>> {
    return this.shape('stats', await this.call('stats'), (v) => {
      const body = asMap(v);
      const out: Record<string, Record<string, string>> = {};
      for (const k of Object.keys(body)) out[k] = decodeStringMap(body[k]);
      return out;
    });
  }

  close(): void {
    this.fail(new RpcError('ERR_RPC_CLOSED', 'client closed'));
  }

  private fail(err: RpcError): void {
    if (this.closedWith === null) this.closedWith = err;
    this.socket.destroy();
    const waiting = [...this.pending.values()];
    this.pending.clear();
    if (this.awaitingBody !== null) waiting.push(this.awaitingBody.p);
    this.awaitingBody = null;
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith !== null) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.closedWith === null) {
      const ext = msgpackExtent(this.buf, 0, MAX_RESPONSE_BYTES);
      if (ext.kind === 'incomplete') return;
      if (ext.kind !== 'complete') {
        this.fail(new RpcError('ERR_RPC_PROTOCOL', `the agent at ${this.addr} sent ${ext.kind === 'too-large' ? 'an oversized' : 'a malformed'} response`));
        return;
      }
      const bytes = this.buf.subarray(0, ext.end);
      this.buf = this.buf.subarray(ext.end);
      try {
        this.onObject(decodeMsgpack(bytes, { strings: 'utf8', maxDepth: 32 }));
      } catch (err) {
        this.fail(new RpcError('ERR_RPC_PROTOCOL', `bad response from ${this.addr}: ${(err as Error).message}`, { cause: err }));
        return;
      }
    }
  }

  private onObject(v: MsgValue): void {
    if (this.awaitingBody !== null) {
      const { p, error } = this.awaitingBody;
      this.awaitingBody = null;
      this.settle(p, error, v);
      return;
    }
    const h = decodeResponseHeader(v);
    const p = this.pending.get(h.seq);
    // Unknown Seq: serf's server answers a refused request twice (auth quirk); ignore the echo.
    if (p === undefined) return;
    this.pending.delete(h.seq);
    // Refusals before the command ran carry no body even for body-carrying commands.
    const bodyFollows = p.expectsBody && h.error !== RpcErrorText.authRequired && h.error !== RpcErrorText.handshakeRequired;
    if (bodyFollows) {
      this.awaitingBody = { p, error: h.error };
      return;
    }
    this.settle(p, h.error, undefined);
  }

  private settle(p: Pending, error: string, body: MsgValue | undefined): void {
    clearTimeout(p.timer);
    if (error !== '') p.reject(remoteError(this.addr, error));
    else p.resolve(body);
  }
}
