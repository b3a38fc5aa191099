// The real transport: UDP (node:dgram) and TCP (node:net) on the same ip:port, as memberlist
// expects (a peer's advertised port is used for both).
//
// Inbound TCP: bytes accumulate until one complete stream message is framed (FrameReader), then
// handlers.stream() gets it with a reply callback; the reply (or nothing) is written and the
// socket closed. Guards: an idle timeout per inbound socket, a byte cap, a cap on concurrent
// inbound sockets; anything refused is reported through handlers.dropped and the socket destroyed.
// Outbound: openStream connects, writes, optionally reads one framed reply; `done` runs exactly
// once on every path.

import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_STREAM_BYTES, MAX_UDP_PACKET } from '../wire/limits.ts';
import type { Address } from '../wire/types.ts';
import { TransportError } from './errors.ts';
import { FrameReader } from './frame-reader.ts';
import type { FrameResult } from './frame-reader.ts';
import type { StreamReply, Transport, TransportHandlers } from './transport.ts';

export interface NodeTransportOptions {
  /** Largest stream message accepted, in either direction (default 20 MiB, memberlist's cap). */
  maxStreamBytes?: number;
  /** An inbound socket with no traffic for this long is closed (default 10 s, memberlist TCPTimeout). */
  streamIdleTimeoutMs?: number;
  /** More concurrent inbound sockets than this are closed on accept (default 128, as memberlist). */
  maxInboundStreams?: number;
}

const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_INBOUND_STREAMS = 128;
/** Port 0: how many times to look for a port free for both UDP and TCP. */
const BIND_ATTEMPTS = 10;
/** memberlist asks for a 2 MiB UDP receive buffer so gossip bursts are not lost; best effort. */
const UDP_RECV_BUFFER_BYTES = 2 * 1024 * 1024;

/** Bind UDP and TCP on one address; port 0 picks one port free for both. */
export async function listenNodeTransport(bind: Address, opts: NodeTransportOptions = {}): Promise<Transport> {
  const family = net.isIP(bind.ip);
  if (family === 0) throw new TransportError('ERR_TRANSPORT_ADDRESS', `not an IP address: ${JSON.stringify(bind.ip)}`);
  if (!Number.isInteger(bind.port) || bind.port < 0 || bind.port > 65535) {
    throw new TransportError('ERR_TRANSPORT_ADDRESS', `bad port: ${bind.port}`);
  }
  const attempts = bind.port === 0 ? BIND_ATTEMPTS : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const server = net.createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: bind.ip, port: bind.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      lastError = e;
      server.close();
      continue;
    }
    const port = (server.address() as AddressInfo).port;
    const udp = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: bind.ip, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      // The TCP port's UDP twin is taken: try another port (only when the caller let us choose).
      lastError = e;
      udp.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      continue;
    }
    try {
      udp.setRecvBufferSize(UDP_RECV_BUFFER_BYTES);
    } catch {
      // The OS caps it (net.core.rmem_max); the default still works, bursts may drop sooner.
    }
    return new NodeTransport({ ip: bind.ip, port }, server, udp, opts);
  }
  const msg = lastError instanceof Error ? lastError.message : String(lastError);
  throw new TransportError('ERR_TRANSPORT_BIND', `cannot bind UDP+TCP on ${bind.ip}:${bind.port}: ${msg}`);
}

/** '::ffff:1.2.3.4' (dual-stack sockets) → '1.2.3.4', so addresses compare equal to advertised ones. */
function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** Short, stable reasons for the core's logs and counters. */
function describeSocketError(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return err.code !== undefined ? `${err.code}: ${err.message}` : err.message;
  }
}

/**
 * Peer addresses come off the wire (alive messages, push/pull). Node would resolve a hostname,
 * treat '' as localhost and throw on port 0 or > 65535, so anything but an IP literal with a real
 * port is refused here.
 */
function badAddress(to: Address): string | undefined {
  if (net.isIP(to.ip) === 0) return `not an IP address: ${JSON.stringify(to.ip)}`;
  if (!Number.isInteger(to.port) || to.port < 1 || to.port > 65535) return `bad port: ${to.port}`;
  return undefined;
}

interface Outbound {
  sock: net.Socket;
  fail(reason: string): void;
}

class NodeTransport implements Transport {
  readonly localAddress: Address;
  private handlers: TransportHandlers | null = null;
  private closed = false;
  private readonly maxStreamBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly maxInbound: number;
  private readonly inbound = new Set<net.Socket>();
  private readonly outbound = new Set<Outbound>();

  constructor(
    local: Address,
    private readonly server: net.Server,
    private readonly udp: dgram.Socket,
    opts: NodeTransportOptions,
  ) {
    this.localAddress = local;
    this.maxStreamBytes = opts.maxStreamBytes ?? MAX_STREAM_BYTES;
    this.idleTimeoutMs = opts.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.maxInbound = opts.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS;
    udp.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    udp.on('error', (err) => this.report('udp-error', undefined, describeSocketError(err)));
    server.on('connection', (sock) => this.onConnection(sock));
    server.on('error', (err) => this.report('tcp-error', undefined, describeSocketError(err)));
  }

  setHandlers(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }

  sendPacket(to: Address, bytes: Uint8Array): void {
    if (this.closed) return;
    if (bytes.length === 0 || bytes.length > MAX_UDP_PACKET) {
      this.report('udp-send-size', to, `refusing to send a ${bytes.length}-byte datagram`);
      return;
    }
    const bad = badAddress(to);
    if (bad !== undefined) {
      this.report('udp-send-bad-address', to, bad);
      return;
    }
    this.udp.send(bytes, to.port, to.ip, (err) => {
      if (err && !this.closed) this.report('udp-send-failed', to, describeSocketError(err));
    });
  }

  openStream(
    to: Address,
    request: Uint8Array,
    timeoutMs: number,
    expectReply: boolean,
    done: (error: string | null, reply: Uint8Array | null) => void,
  ): void {
    if (this.closed) {
      setImmediate(() => done('transport closed', null));
      return;
    }
    const bad = badAddress(to);
    if (bad !== undefined) {
      setImmediate(() => done(`bad address: ${bad}`, null));
      return;
    }
    const sock = net.connect({ host: to.ip, port: to.port });
    let settled = false;
    const entry: Outbound = { sock, fail: (reason) => finish(reason, null) };
    this.outbound.add(entry);
    const reader = new FrameReader(this.maxStreamBytes, (r) => {
      if (r.kind === 'frame') finish(null, r.bytes);
      else if (r.kind === 'too-large') finish(`reply too large: ${r.detail}`, null);
      else finish(`malformed reply (${r.code}): ${r.detail}`, null);
    });
    const timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms`, null), Math.max(0, timeoutMs));
    timer.unref();

    const finish = (error: string | null, reply: Uint8Array | null, keepOpen = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reader.cancel();
      if (!keepOpen) {
        this.outbound.delete(entry);
        sock.destroy();
      }
      done(error, reply);
    };

    sock.on('connect', () => {
      if (expectReply) {
        sock.write(request);
        return;
      }
      // Write-only: FIN after the request, done once the kernel has it. The socket then closes
      // when the peer closes its side (or the cleanup timer below fires).
      sock.end(request, () => {
        finish(null, null, true);
        const cleanup = setTimeout(() => sock.destroy(), Math.max(1000, timeoutMs));
        cleanup.unref();
        sock.once('close', () => clearTimeout(cleanup));
      });
    });
    sock.on('data', (chunk: Buffer) => {
      if (expectReply) reader.push(chunk);
      // else: discard; reading keeps the peer's close from being stuck behind unread bytes.
    });
    sock.on('end', () => {
      if (expectReply && !reader.flush()) finish('closed before reply', null);
      else if (!expectReply) sock.end();
    });
    sock.on('error', (err) => finish(describeSocketError(err), null));
    sock.on('close', () => {
      this.outbound.delete(entry);
      finish(expectReply ? 'closed before reply' : 'closed before the request was written', null);
    });
  }

  close(done?: () => void): void {
    if (this.closed) {
      if (done) setImmediate(done);
      return;
    }
    this.closed = true;
    this.handlers = null;
    for (const sock of this.inbound) sock.destroy();
    this.inbound.clear();
    for (const o of [...this.outbound]) o.fail('transport closed');
    for (const o of this.outbound) o.sock.destroy();
    this.outbound.clear();
    let pending = 2;
    const one = (): void => {
      if (--pending === 0 && done) done();
    };
    this.server.close(() => one());
    this.udp.close(() => one());
  }

  private report(reason: string, from: Address | undefined, detail: string): void {
    this.handlers?.dropped?.(reason, from, detail);
  }

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const from: Address = { ip: normalizeIp(rinfo.address), port: rinfo.port };
    if (msg.length === 0) {
      this.report('udp-empty', from, 'empty datagram');
      return;
    }
    // Each datagram gets its own Buffer from node, so handing out a view is safe.
    this.handlers?.packet(from, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
  }

  private onConnection(sock: net.Socket): void {
    sock.on('error', () => {
      // Reported where it matters (framing); a reset peer needs no further action.
    });
    if (this.closed || sock.remoteAddress === undefined || sock.remotePort === undefined) {
      sock.destroy();
      return;
    }
    const from: Address = { ip: normalizeIp(sock.remoteAddress), port: sock.remotePort };
    if (this.inbound.size >= this.maxInbound) {
      this.report('stream-too-many', from, `more than ${this.maxInbound} concurrent inbound streams`);
      sock.destroy();
      return;
    }
    this.inbound.add(sock);
    let state: 'reading' | 'replying' | 'done' = 'reading';

    const reply: StreamReply = (bytes) => {
      if (state !== 'replying') return;
      state = 'done';
      if (sock.destroyed) return;
      if (bytes !== null && bytes.length > 0) sock.end(bytes);
      else sock.end();
    };
    const onResult = (r: FrameResult): void => {
      if (this.closed) return;
      if (r.kind === 'frame') {
        // One request per stream: later bytes are ignored (not paused: we still need to see the
        // peer's FIN so the socket can close once our reply is out).
        state = 'replying';
        const handlers = this.handlers;
        if (handlers === null) {
          state = 'done';
          sock.destroy();
          return;
        }
        handlers.stream(from, r.bytes, reply);
        return;
      }
      state = 'done';
      if (r.kind === 'too-large') this.report('stream-too-large', from, r.detail);
      else this.report('stream-malformed', from, `${r.code}: ${r.detail}`);
      sock.destroy();
    };
    const reader = new FrameReader(this.maxStreamBytes, onResult);

    sock.setTimeout(this.idleTimeoutMs, () => {
      if (state === 'reading') {
        this.report('stream-idle-timeout', from, `no complete stream message after ${reader.size} bytes`);
      } else if (state === 'replying') {
        this.report('stream-reply-timeout', from, `no reply within ${this.idleTimeoutMs} ms`);
      }
      state = 'done';
      reader.cancel();
      sock.destroy();
    });
    sock.on('data', (chunk: Buffer) => {
      if (state === 'reading') reader.push(chunk);
      else if (state === 'done') sock.destroy(); // talking past our reply: nothing left to say
    });
    sock.on('end', () => {
      if (state === 'reading' && !reader.flush()) {
        state = 'done';
        if (reader.size > 0) this.report('stream-truncated', from, `peer closed after ${reader.size} bytes`);
        sock.destroy();
      } else if (state === 'done') {
        sock.destroy();
      }
      // 'replying': the peer half-closed after its request (write-only or Go's CloseWrite);
      // the reply (if any) is still written, then reply() ends our side.
    });
    sock.on('close', () => {
      this.inbound.delete(sock);
      reader.cancel();
      state = 'done';
    });
  }
}
