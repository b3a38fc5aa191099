// RPC client for kodama's CLI (and anything else that drives an agent): speaks serf's IPC, so it
// works against a kodama agent and a real `serf agent` alike. Requests are matched to responses
// by Seq; each has a timeout (serf's CLI uses 10 s).

import { connect as netConnect, type Socket } from 'node:net';
import { asArray, asBool, asBytes, asFloat, asMap, asString, asUint, decodeMsgpack, type MsgValue } from '../wire/index.ts';
import type { RpcCoordinate, RpcKeyResponse, RpcMember, RpcQueryParams } from './backend.ts';
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
import {
  decodeEventRecord,
  decodeQueryRecord,
  type RpcQueryResult,
  type RpcStreamEvent,
} from './streams.ts';

export interface RpcClientOptions {
  /** Sent with `auth` right after the handshake when non-empty. */
  authKey?: string;
  /** Per request, and for connecting. Default 10 s, as serf's CLI. */
  timeoutMs?: number;
}

export interface RpcSubscription {
  readonly seq: number;
  /** Ask the agent to stop sending; records already in flight are discarded. */
  stop(): Promise<void>;
}

export interface MembersFilter {
  name?: string;
  status?: string;
  tags?: Record<string, string>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** A single response larger than this is treated as a broken stream (a huge cluster's member list fits easily). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Receives one streamed record; returning 'end' closes the stream on our side (query done). */
type RecordSink = (body: MsgValue) => void | 'end';

/** A response as sent: error text ('' = success) and body (undefined if the command has none). */
export interface RawReply {
  error: string;
  body: MsgValue | undefined;
}

interface Pending {
  command: string;
  expectsBody: boolean;
  /** For streaming commands: where records go once the first (acknowledging) header is in. */
  onRecord?: RecordSink;
  /** Resolve with the agent's error text instead of rejecting (auth refusals still reject). */
  raw: boolean;
  resolve(r: RawReply): void;
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
  /** Streams acknowledged by the agent: Seq → record sink (and who to tell if the client dies). */
  private readonly streams = new Map<number, { record: RecordSink; closed?: (err: RpcError) => void }>();
  /** Streams we stopped whose records may still be in flight (until the `stop` reply). */
  private readonly stopped = new Set<number>();
  /** A header for a body-carrying response or a stream record arrived; the next object is its body. */
  private awaitingBody: { p: Pending; error: string } | { record: RecordSink; seq: number } | null = null;
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
      await client.request('handshake', { Version: IPC_VERSION_MAX });
      if (opts.authKey !== undefined && opts.authKey !== '') await client.request('auth', { AuthKey: opts.authKey });
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
  async request(command: string, body?: MsgValue): Promise<MsgValue | undefined> {
    return (await this.send(command, body, ++this.seq, false)).body;
  }

  /**
   * kodama's `kodama` command: run operation `op` on the agent with JSON-able `args`; resolves
   * with its JSON result (undefined when it returned nothing). An agent error (unknown
   * operation, refused deploy…) rejects with RpcError ERR_RPC_REMOTE carrying the agent's text;
   * a serf agent answers "Unsupported command" and closes the connection.
   */
  async call(op: string, args?: unknown): Promise<unknown> {
    const body = await this.request('kodama', { Args: new TextEncoder().encode(JSON.stringify(args ?? null)), Op: op });
    const raw = body === undefined || body === null ? null : asBytes(asMap(body)['Result']);
    if (raw === null || raw.length === 0) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(raw)) as unknown;
    } catch {
      throw new RpcError('ERR_RPC_PROTOCOL', `the agent at ${this.addr} answered '${op}' with a Result that is not JSON`);
    }
  }

  /**
   * Like request, but an error reply resolves (with its text and body) instead of rejecting: key
   * operations send per-node counts with errors like "1/2 nodes reported failure".
   */
  callRaw(command: string, body?: MsgValue): Promise<RawReply> {
    return this.send(command, body, ++this.seq, true);
  }

  private send(
    command: string,
    body: MsgValue | undefined,
    seq: number,
    raw: boolean,
    onRecord?: RecordSink,
  ): Promise<RawReply> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    const spec = commandSpec(command);
    return new Promise<RawReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The late reply (and maybe its body) would desynchronise the stream: give up on it.
        this.fail(new RpcError('ERR_RPC_TIMEOUT', `no answer to '${command}' from ${this.addr} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const p: Pending = { command, expectsBody: spec?.responseBody ?? false, raw, resolve, reject, timer };
      if (onRecord !== undefined) p.onRecord = onRecord;
      this.pending.set(seq, p);
      const withBody = spec === undefined ? body : spec.requestBody ? (body ?? {}) : undefined;
      this.socket.write(encodeRequest(command, seq, withBody));
    });
  }

  /**
   * Open a streaming command (`stream`, `monitor`): resolves once the agent acknowledges it;
   * then every record under its Seq goes to `onRecord` until `stop()` or the connection ends.
   */
  async subscribe(
    command: string,
    body: MsgValue,
    onRecord: RecordSink,
    onClosed?: (err: RpcError) => void,
  ): Promise<RpcSubscription> {
    const seq = ++this.seq;
    await this.send(command, body, seq, false, onRecord);
    const entry = this.streams.get(seq);
    if (entry !== undefined && onClosed !== undefined) entry.closed = onClosed;
    return {
      seq,
      stop: async () => {
        if (!this.streams.delete(seq) || this.closedWith !== null) return;
        this.stopped.add(seq);
        try {
          await this.request('stop', { Stop: seq });
        } finally {
          // Commands are served in order: nothing for this Seq follows the stop reply.
          this.stopped.delete(seq);
        }
      },
    };
  }

  /**
   * serf `query`: results go to `onResult` as they come; resolves when the agent reports the
   * deadline passed. Rejects with the agent's error (e.g. the `_serf_` prefix) or if the
   * connection dies first.
   */
  async query(params: Partial<RpcQueryParams> & { name: string }, onResult: (r: RpcQueryResult) => void): Promise<void> {
    let finish!: () => void;
    let abort!: (err: RpcError) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      abort = reject;
    });
    await this.subscribe(
      'query',
      {
        FilterNodes: params.filterNodes === undefined ? null : [...params.filterNodes],
        FilterTags: params.filterTags === undefined ? null : { ...params.filterTags },
        Name: params.name,
        Payload: params.payload ?? new Uint8Array(0),
        RelayFactor: params.relayFactor ?? 0,
        RequestAck: params.requestAck ?? false,
        // Go time.Duration: nanoseconds
        Timeout: Math.round((params.timeoutMs ?? 0) * 1e6),
      },
      (body) => {
        const r = decodeQueryRecord(body);
        if (r !== 'done') {
          onResult(r);
          return;
        }
        finish();
        return 'end';
      },
      (err) => abort(err),
    );
    return done;
  }

  /** Answer a query received through `stream` (its `id`). */
  async respond(id: number, payload: Uint8Array): Promise<void> {
    await this.request('respond', { ID: id, Payload: payload });
  }

  installKey(key: string): Promise<RpcKeyResponse> {
    return this.keyOp('install-key', key);
  }

  useKey(key: string): Promise<RpcKeyResponse> {
    return this.keyOp('use-key', key);
  }

  removeKey(key: string): Promise<RpcKeyResponse> {
    return this.keyOp('remove-key', key);
  }

  listKeys(): Promise<RpcKeyResponse> {
    return this.keyOp('list-keys', undefined);
  }

  /**
   * Key operations report per-node failures in the header *and* counts in the body; both are
   * returned (the header text as `error`) rather than thrown, as serf's CLI prints both.
   */
  private async keyOp(command: string, key: string | undefined): Promise<RpcKeyResponse> {
    const { error, body } = await this.callRaw(command, key === undefined ? undefined : { Key: key });
    return this.shape(command, body, (v) => {
      const m = asMap(v);
      const keys = m['Keys'];
      const out: RpcKeyResponse = {
        error,
        numNodes: asUint(m['NumNodes']),
        numResp: asUint(m['NumResp']),
        numErr: asUint(m['NumErr']),
        messages: decodeStringMap(m['Messages']),
      };
      if (keys !== undefined && keys !== null) {
        const k = asMap(keys);
        out.keys = Object.fromEntries(Object.keys(k).map((name) => [name, asUint(k[name])]));
      }
      return out;
    });
  }

  /** serf `get-coordinate`: null when the agent has none for `node`. */
  async getCoordinate(node: string): Promise<RpcCoordinate | null> {
    return this.shape('get-coordinate', await this.request('get-coordinate', { Node: node }), (v) => {
      const m = asMap(v);
      if (!asBool(m['Ok'])) return null;
      const c = asMap(m['Coord']);
      return {
        vec: asArray(c['Vec']).map((x) => asFloat(x)),
        error: asFloat(c['Error']),
        adjustment: asFloat(c['Adjustment']),
        height: asFloat(c['Height']),
      };
    });
  }

  /** serf `stream`: events matching `filter` (`*`, `member-join,user:deploy`, `query:NAME`, …). */
  stream(filter: string, onEvent: (e: RpcStreamEvent) => void): Promise<RpcSubscription> {
    return this.subscribe('stream', { Type: filter }, (body) => {
      const e = decodeEventRecord(body);
      if (e !== null) onEvent(e);
    });
  }

  /** serf `monitor`: the agent's log lines at `level` (TRACE…ERR) and above, recent ones first. */
  monitor(level: string, onLine: (line: string) => void): Promise<RpcSubscription> {
    return this.subscribe('monitor', { LogLevel: level }, (body) => onLine(asString(asMap(body)['Log'])));
  }

  async userEvent(name: string, payload: Uint8Array, coalesce: boolean): Promise<void> {
    await this.request('event', { Coalesce: coalesce, Name: name, Payload: payload });
  }

  async forceLeave(node: string, prune: boolean): Promise<void> {
    await this.request('force-leave', { Node: node, Prune: prune });
  }

  /** Delete `deleteTags`, then set `tags`, on the agent. */
  async updateTags(tags: Record<string, string>, deleteTags: string[]): Promise<void> {
    await this.request('tags', { DeleteTags: [...deleteTags], Tags: { ...tags } });
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
    return this.shape('members', await this.request('members'), membersFromWire);
  }

  /** Anchored regexes on name, status and each tag, evaluated by the agent. */
  async membersFiltered(f: MembersFilter): Promise<RpcMember[]> {
    const body = await this.request('members-filtered', {
      Name: f.name ?? '',
      Status: f.status ?? '',
      Tags: { ...(f.tags ?? {}) },
    });
    return this.shape('members-filtered', body, membersFromWire);
  }

  /** Returns how many nodes were joined. */
  async join(addrs: string[], replay: boolean): Promise<number> {
    const body = await this.request('join', { Existing: [...addrs], Replay: replay });
    return this.shape('join', body, (v) => {
      const num = asMap(v)['Num'];
      return num === undefined ? 0 : asUint(num);
    });
  }

  /** The agent leaves the cluster gracefully and shuts down. */
  async leave(): Promise<void> {
    await this.request('leave');
  }

  async stats(): Promise<Record<string, Record<string, string>>> {
    return this.shape('stats', await this.request('stats'), (v) => {
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
    if (this.awaitingBody !== null && 'p' in this.awaitingBody) waiting.push(this.awaitingBody.p);
    this.awaitingBody = null;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const st of streams) st.closed?.(err);
    this.stopped.clear();
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
    const waiting = this.awaitingBody;
    if (waiting !== null) {
      this.awaitingBody = null;
      if ('record' in waiting) this.deliver(waiting.record, waiting.seq, v);
      else this.settle(waiting.p, waiting.error, v);
      return;
    }
    const h = decodeResponseHeader(v);
    const p = this.pending.get(h.seq);
    if (p === undefined) {
      const stream = this.streams.get(h.seq);
      if (stream !== undefined) {
        this.awaitingBody = { record: stream.record, seq: h.seq };
        return;
      }
      // serf's server answers a refused request with a body twice (auth quirk): ignore the echo.
      // Records of a stream we already stopped have a body, though: skip it too.
      if (this.stopped.has(h.seq)) this.awaitingBody = { record: () => {}, seq: h.seq };
      return;
    }
    this.pending.delete(h.seq);
    if (p.onRecord !== undefined) {
      if (h.error === '') this.streams.set(h.seq, { record: p.onRecord });
      this.settle(p, h.error, undefined);
      return;
    }
    // Refusals before the command ran carry no body even for body-carrying commands.
    const bodyFollows = p.expectsBody && h.error !== RpcErrorText.authRequired && h.error !== RpcErrorText.handshakeRequired;
    if (bodyFollows) {
      this.awaitingBody = { p, error: h.error };
      return;
    }
    this.settle(p, h.error, undefined);
  }

  /**
   * Hand a record to its subscriber. A record of the wrong shape is the agent's fault (it ends
   * the client, via onData); an exception from the subscriber's own callback is not ours to
   * swallow, so it is rethrown outside the parser, which stays in step.
   */
  private deliver(record: RecordSink, seq: number, v: MsgValue): void {
    try {
      if (record(v) === 'end') this.streams.delete(seq);
    } catch (err) {
      if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_WIRE')) throw err;
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  private settle(p: Pending, error: string, body: MsgValue | undefined): void {
    clearTimeout(p.timer);
    if (error === '') return p.resolve({ error, body });
    const err = remoteError(this.addr, error);
    if (p.raw && err.code === 'ERR_RPC_REMOTE') p.resolve({ error, body });
    else p.reject(err);
  }
}
