// Accumulates the bytes of one TCP stream until wire's streamFrameLength() says a complete stream
// message is there. There is no EOF to wait for: the Go side keeps the socket open for our reply,
// so the message end has to be found by parsing.
//
// streamFrameLength() parses from the first byte each time (a 5 MB push/pull takes ~100 ms), so
// re-parsing on every 64 KiB chunk would be quadratic. Small buffers are parsed once per
// event-loop turn (setImmediate coalesces the chunks libuv read in that turn); big ones only
// after they grew by half since the last attempt, or once the peer has gone quiet for a moment
// (the last chunk of a request is followed by silence: the peer waits for our reply). Total
// parse work stays a small multiple of the final size.

import { streamFrameLength } from '../wire/index.ts';

/** Below this many buffered bytes every turn's data is parsed right away. */
const EAGER_PARSE_BYTES = 256 * 1024;
/** Above it, re-parse only after this much relative growth … */
const PARSE_GROWTH = 0.5;
/** … or after this long without new bytes. */
const QUIET_PARSE_MS = 2;

export type FrameResult =
  | { kind: 'frame'; bytes: Uint8Array }
  | { kind: 'too-large'; detail: string }
  | { kind: 'malformed'; code: string; detail: string };

export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private len = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private quiet: NodeJS.Timeout | undefined;
  /** Buffered size at the last parse attempt that found no complete message. */
  private triedLen = 0;
  private finished = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onResult: (r: FrameResult) => void,
    /** The framing function; replaceable so tests can count parse attempts. */
    private readonly frameLength: (buf: Uint8Array, maxBytes: number) => number | undefined = streamFrameLength,
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
    if (this.len <= EAGER_PARSE_BYTES || this.len - this.triedLen >= this.triedLen * PARSE_GROWTH) {
      this.scheduled ??= setImmediate(() => {
        this.scheduled = undefined;
        this.parse();
      });
    } else if (this.quiet === undefined) {
      this.quiet = setTimeout(() => {
        this.quiet = undefined;
        this.parse();
      }, QUIET_PARSE_MS);
    } else {
      this.quiet.refresh(); // still streaming: wait for the pause
    }
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
      n = this.frameLength(view, this.maxBytes);
    } catch (e) {
      const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERR_FRAME';
      if (code === 'ERR_WIRE_TOO_LARGE') {
        this.finish({ kind: 'too-large', detail: (e as Error).message });
      } else {
        this.finish({ kind: 'malformed', code, detail: (e as Error).message });
      }
      return;
    }
    if (n === undefined) {
      this.triedLen = this.len;
      return;
    }
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
    if (this.quiet !== undefined) {
      clearTimeout(this.quiet);
      this.quiet = undefined;
    }
  }
}
