// One accepted RPC connection: reassembles requests from the TCP byte stream, enforces the
// handshake → auth → command order, serves commands one at a time (serf serves a connection's
// commands in order; an async command such as join holds the next one back), and keeps the
// per-connection state later commands need (open streams by Seq, query IDs).

import type { Socket } from 'node:net';
import { decodeMsgpack, type MsgValue } from '../wire/index.ts';
import { msgpackExtent } from './extent.ts';
import {
  commandSpec,
  decodeRequestHeader,
  emptyResponseBody,
  encodeResponse,
  RpcErrorText,
  type CommandSpec,
} from './protocol.ts';

export type RpcLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERR';

/** Why a connection was refused or dropped; each has a counter of the same name. */
export type RefusalKind =
  | 'connectionLimit'
  | 'requestTooLarge'
  | 'malformed'
  | 'badBody'
  | 'handshakeRequired'
  | 'unsupportedCommand'
  | 'authRequired'
  | 'authFailed'
  | 'slowConsumer'
  | 'requestTimeout';

/** What a command handler sees of the connection it serves. */
export interface CommandContext {
  readonly seq: number;
  readonly command: string;
  readonly conn: RpcConnection;
  /** Send the response header (and body, for commands that return one). */
  reply(error: string, body?: MsgValue): void;
}

/** A handler may throw a WireError (from the msgpack accessors) for a body of the wrong shape. */
export type CommandHandler = (ctx: CommandContext, body: MsgValue | undefined) => void | Promise<void>;

/** A subscription answering with records under one Seq (stream, monitor, query). */
export interface ActiveStream {
  readonly kind: 'stream' | 'monitor' | 'query';
  stop(): void;
}

export interface ConnectionEnv {
  readonly authKey: string;
  readonly maxRequestBytes: number;
  /** Unsent bytes allowed to pile up for a client that does not read (streams) before dropping it. */
  readonly maxPendingWriteBytes: number;
  /** How long a client may owe us bytes: the handshake, or the rest of a started request. */
  readonly requestTimeoutMs: number;
  handler(command: string): CommandHandler | undefined;
  refuse(kind: RefusalKind): void;
  count(name: 'requests' | 'notSupported' | 'recordsDropped'): void;
  log(level: RpcLogLevel, msg: string): void;
  closed(conn: RpcConnection): void;
}

const DECODE = { strings: 'utf8', maxDepth: 32 } as const;
/** After end(), how long a peer that does not read gets before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

interface PendingHeader {
  command: string;
  seq: number;
  spec: CommandSpec;
  /** Bytes the header took; the body may use the rest of maxRequestBytes. */
  headerBytes: number;
}

export class RpcConnection {
  /** IPC version from the handshake; 0 before it. */
  version = 0;
  didAuth = false;
  /** Open subscriptions by the Seq of the request that opened them. */
  readonly streams = new Map<number, ActiveStream>();
  /** Per-connection counter for query IDs handed to `respond` (serf numbers them from 1). */
  private queryIdCounter = 0;
  /** Queries streamed to this client that it may still `respond` to, by ID. */
  private readonly pendingQueries = new Map<number, { respond: (payload: Uint8Array) => Promise<void>; timer: NodeJS.Timeout }>();
  readonly name: string;

  private buf: Buffer = Buffer.alloc(0);
  private pending: PendingHeader | null = null;
  private busy = false;
  private isClosed = false;
  private dropWarned = false;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly env: ConnectionEnv,
  ) {
    this.name = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.env.log('DEBUG', `agent.ipc: connection ${this.name}: ${err.message}`));
    socket.on('close', () => this.teardown());
    this.watchStall();
  }

  /**
   * Connection slots are limited, so a client must not hold one while owing us bytes: before the
   * handshake, or in the middle of a request. An idle, handshaken connection (a monitor, a CLI
   * between commands) is fine. The clock starts when the debt starts and is not reset by a
   * trickle of bytes.
   */
  private watchStall(): void {
    const owes = !this.isClosed && !this.busy && (this.version === 0 || this.buf.length > 0 || this.pending !== null);
    if (owes && this.stallTimer === null) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.env.refuse('requestTimeout');
        this.close('requestTimeout', `no complete ${this.version === 0 ? 'handshake' : 'request'} within ${this.env.requestTimeoutMs} ms`);
      }, this.env.requestTimeoutMs);
    } else if (!owes && this.stallTimer !== null) {
      clearTimeout(this.stallTimer);
      this.stallTimer = null;
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Count a refusal that does not end the connection (e.g. a wrong auth token). */
  refused(kind: RefusalKind): void {
    this.env.refuse(kind);
  }

  /**
   * Give a received query an ID this client can `respond` with until `timeoutMs` passes (serf
   * hands out an ID even when the deadline already passed; it just cannot be answered).
   */
  registerQuery(respond: (payload: Uint8Array) => Promise<void>, timeoutMs: number): number {
    const id = ++this.queryIdCounter;
    if (timeoutMs > 0 && !this.isClosed) {
      const timer = setTimeout(() => this.pendingQueries.delete(id), timeoutMs);
      this.pendingQueries.set(id, { respond, timer });
    }
    return id;
  }

  /** The responder for query `id`, if it is still open. */
  pendingQuery(id: number): ((payload: Uint8Array) => Promise<void>) | undefined {
    return this.pendingQueries.get(id)?.respond;
  }

  /**
   * Register a subscription under `seq`. False (and the caller must stop it) if one already
   * exists there or the connection is gone.
   */
  openStream(seq: number, stream: ActiveStream): boolean {
    if (this.isClosed || this.streams.has(seq)) return false;
    this.streams.set(seq, stream);
    return true;
  }

  /** Forget the subscription under `seq` without stopping it (it ended by itself). */
  forgetStream(seq: number): void {
    this.streams.delete(seq);
  }

  /** End the subscription opened by request `seq`, if any (serf's `stop` always succeeds). */
  stopStream(seq: number): void {
    const s = this.streams.get(seq);
    if (s === undefined) return;
    this.streams.delete(seq);
    s.stop();
  }

  /**
   * Write one response (header + optional body). Returns false when the connection is gone or
   * the client stopped reading long enough that the connection was dropped.
   */
  send(seq: number, error: string, body?: MsgValue): boolean {
    if (this.isClosed) return false;
    if (this.socket.writableLength > this.env.maxPendingWriteBytes) {
      this.env.refuse('slowConsumer');
      this.close('slowConsumer', `client is not reading (${this.socket.writableLength} bytes unsent)`);
      return false;
    }
    this.socket.write(encodeResponse(seq, error, body));
    return true;
  }

  /**
   * Write one streamed record under `seq` (header + body). A client that stops reading loses
   * records rather than the connection, as with serf's bounded per-stream channel.
   */
  sendRecord(seq: number, body: MsgValue): boolean {
    if (this.isClosed) return false;
    if (this.socket.writableLength > this.env.maxPendingWriteBytes) {
      this.env.count('recordsDropped');
      if (!this.dropWarned) {
        this.dropWarned = true;
        // Deferred: the record may come from the logger itself (monitor), which must not recurse.
        queueMicrotask(() => this.env.log('WARN', `agent.ipc: Dropping records to ${this.name}: client is not reading`));
      }
      return false;
    }
    this.dropWarned = false;
    this.socket.write(encodeResponse(seq, '', body));
    return true;
  }

  /** Flush what was written, then close; destroy if the peer does not take it in time. */
  close(kind: RefusalKind | 'shutdown', detail: string): void {
    if (this.isClosed) return;
    this.env.log(kind === 'shutdown' ? 'DEBUG' : 'WARN', `agent.ipc: closing ${this.name}: ${detail}`);
    this.teardown();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private teardown(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.buf = Buffer.alloc(0);
    for (const [seq, s] of this.streams) {
      this.streams.delete(seq);
      s.stop();
    }
    for (const q of this.pendingQueries.values()) clearTimeout(q.timer);
    this.pendingQueries.clear();
    this.env.closed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
    this.watchStall();
  }

  /** Take the next complete msgpack object off the buffer, or null if it is not all here yet. */
  private nextObject(budget: number): { value: MsgValue; bytes: number } | null | 'closed' {
    const ext = msgpackExtent(this.buf, 0, budget);
    switch (ext.kind) {
      case 'incomplete':
        return null;
      case 'too-large':
        this.env.refuse('requestTooLarge');
        this.close('requestTooLarge', `request exceeds ${this.env.maxRequestBytes} bytes`);
        return 'closed';
      case 'malformed':
        this.env.refuse('malformed');
        this.close('malformed', `malformed msgpack (byte 0x${ext.byte.toString(16)})`);
        return 'closed';
      case 'complete': {
        const bytes = this.buf.subarray(0, ext.end);
        this.buf = this.buf.subarray(ext.end);
        try {
          return { value: decodeMsgpack(bytes, DECODE), bytes: ext.end };
        } catch (err) {
          this.env.refuse('malformed');
          this.close('malformed', `undecodable msgpack: ${(err as Error).message}`);
          return 'closed';
        }
      }
    }
  }

  private pump(): void {
    while (!this.isClosed && !this.busy) {
      if (this.pending === null) {
        const obj = this.nextObject(this.env.maxRequestBytes);
        if (obj === null || obj === 'closed') return;
        let header: { command: string; seq: number };
        try {
          header = decodeRequestHeader(obj.value);
        } catch (err) {
          this.env.refuse('malformed');
          this.close('malformed', `bad request header: ${(err as Error).message}`);
          return;
        }
        if (!this.acceptHeader(header, obj.bytes)) return;
        continue;
      }
      const p = this.pending;
      let body: MsgValue | undefined;
      if (p.spec.requestBody) {
        const obj = this.nextObject(this.env.maxRequestBytes - p.headerBytes);
        if (obj === null || obj === 'closed') return;
        body = obj.value;
      }
      this.pending = null;
      this.dispatch(p, body);
    }
  }

  /** Order checks as serf does: handshake first, then the command must be known. */
  private acceptHeader(h: { command: string; seq: number }, headerBytes: number): boolean {
    if (this.version === 0 && h.command !== 'handshake') {
      this.env.refuse('handshakeRequired');
      this.send(h.seq, RpcErrorText.handshakeRequired);
      this.close('handshakeRequired', `command '${h.command}' before handshake`);
      return false;
    }
    const spec = commandSpec(h.command);
    if (spec === undefined) {
      // The body framing of an unknown command is unknown too, so the stream cannot continue.
      this.env.refuse('unsupportedCommand');
      this.send(h.seq, RpcErrorText.unsupportedCommand);
      this.close('unsupportedCommand', `command '${h.command.slice(0, 64)}' not recognized`);
      return false;
    }
    this.pending = { command: h.command, seq: h.seq, spec, headerBytes };
    return true;
  }

  private dispatch(p: PendingHeader, body: MsgValue | undefined): void {
    this.env.count('requests');
    if (this.env.authKey !== '' && !this.didAuth && p.command !== 'handshake' && p.command !== 'auth') {
      // The body (if any) was read and dropped above, so the stream stays in step; serf's own
      // server skips that and answers twice.
      this.env.refuse('authRequired');
      this.env.log('WARN', 'agent.ipc: Client sending commands before auth');
      this.send(p.seq, RpcErrorText.authRequired);
      return;
    }
    const handler = this.env.handler(p.command);
    const ctx: CommandContext = {
      seq: p.seq,
      command: p.command,
      conn: this,
      reply: (error, replyBody) => this.reply(p, error, replyBody),
    };
    if (handler === undefined) {
      // Known to serf's CLI but not wired to this agent (yet): an error, not a protocol fault.
      this.env.count('notSupported');
      ctx.reply(RpcErrorText.featureNotSupported);
      return;
    }
    let result: void | Promise<void>;
    try {
      result = handler(ctx, body);
    } catch (err) {
      this.handlerFailed(p, err);
      return;
    }
    if (result instanceof Promise) {
      // Hold further requests (and reading) until this one is answered: replies stay in order.
      this.busy = true;
      this.watchStall();
      this.socket.pause();
      result
        .catch((err: unknown) => this.handlerFailed(p, err))
        .finally(() => {
          this.busy = false;
          if (this.isClosed) return;
          this.socket.resume();
          this.pump();
          this.watchStall();
        });
    }
  }

  /** Commands that return a body always get one, zero-valued if the handler gave none. */
  private reply(p: PendingHeader, error: string, body: MsgValue | undefined): void {
    this.send(p.seq, error, p.spec.responseBody ? (body ?? emptyResponseBody(p.command)) : undefined);
  }

  private handlerFailed(p: PendingHeader, err: unknown): void {
    if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_WIRE')) {
      // serf closes the connection when a body does not decode into the request struct.
      this.env.refuse('badBody');
      this.close('badBody', `bad '${p.command}' request body: ${err.message}`);
      return;
    }
    this.env.log('ERR', `agent.ipc: '${p.command}' failed: ${err instanceof Error ? err.message : String(err)}`);
    this.reply(p, err instanceof Error ? err.message : String(err), undefined);
  }
}
