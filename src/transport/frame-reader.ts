// Accumulates the bytes of one TCP stream until wire's streamFrameLength() says a complete stream
// message is there. There is no EOF to wait for: the Go side keeps the socket open for our reply,
// so the message end has to be found by parsing.
//
// Parsing restarts from the first byte each time, so it is done at most once per event-loop turn
// (setImmediate coalesces all chunks libuv read in that turn) rather than once per chunk; a 20 MiB
// push/pull in 64 KiB chunks is then parsed a handful of times, not 320.

import { streamFrameLength } from '../wire/index.ts';

export type FrameResult =
  | { kind: 'frame'; bytes: Uint8Array }
  | { kind: 'too-large'; detail: string }
  | { kind: 'malformed'; code: string; detail: string };

export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private len = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private finished = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onResult: (r: FrameResult) => void,
  ) {}

  /** Bytes buffered so far. */
  get size(): number {
    return this.len;
  }

  push(chunk: Buffer): void {
    if (this.finished) return;
    if (this.len + chunk.length > this.maxBytes) {
      this.finish({ kind: 'too-large', detail: `stream exceeds ${this.maxBytes} bytes` });
      return;
    }
    if (this.len + chunk.length > this.buf.length) {
      // Doubling keeps appends amortised O(1) per byte.
      const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(this.buf.length * 2, this.len + chunk.length, 4096)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.parse();
    });
  }

  /**
   * Parse now (the peer half-closed, nothing more will come). Returns true when a result
   * (frame or error) has been delivered, now or before.
   */
  flush(): boolean {
    if (!this.finished) this.parse();
    return this.finished;
  }

  /** Stop: no result will be delivered any more. */
  cancel(): void {
    this.finished = true;
    this.clearScheduled();
  }

  private parse(): void {
    this.clearScheduled();
    if (this.finished || this.len === 0) return;
    const view = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.len);
    let n: number | undefined;
    try {
      n = streamFrameLength(view, this.maxBytes);
    } catch (e) {
      const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERR_FRAME';
      if (code === 'ERR_WIRE_TOO_LARGE') {
        this.finish({ kind: 'too-large', detail: (e as Error).message });
      } else {
        this.finish({ kind: 'malformed', code, detail: (e as Error).message });
      }
      return;
    }
    if (n === undefined) return;
    // Copy out so the (possibly 2× oversized) accumulation buffer can be released.
    const bytes = view.slice(0, n); // a plain Uint8Array view: slice copies
    this.finish({ kind: 'frame', bytes });
  }

  private finish(r: FrameResult): void {
    if (this.finished) return;
    this.finished = true;
    this.clearScheduled();
    this.buf = Buffer.alloc(0);
    this.len = 0;
    this.onResult(r);
  }

  private clearScheduled(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
  }
}
