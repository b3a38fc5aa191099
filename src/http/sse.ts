// One server-sent-events client with a bounded send buffer: a client that does not read (or
// reads slower than the cluster changes) is dropped once its unsent bytes pass the bound, so it
// can never hold the agent's memory hostage.

import type { ServerResponse } from 'node:http';
import type { StreamMessage } from './types.ts';

export const MAX_CLIENT_BUFFER_BYTES = 256 * 1024;

export class SseClient {
  private closed = false;
  private checkQueued = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferBytes: number,
    /** Called once when the client goes: `slow` = dropped for its buffer. */
    private readonly onClose: (slow: boolean) => void,
  ) {
    res.on('close', () => this.close(false));
  }

  /** Queue one message; false when the client is (now) gone. */
  send(m: StreamMessage): boolean {
    if (this.closed) return false;
    this.res.write(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
    // Judged after the socket had its chance to flush: within one tick node holds a response's
    // writes back (cork), so a burst (a dozen members changing at once) would look like a slow
    // client to a check made here.
    if (!this.checkQueued && this.res.writableLength > this.maxBufferBytes) {
      this.checkQueued = true;
      setImmediate(() => {
        this.checkQueued = false;
        if (this.res.writableLength > this.maxBufferBytes) this.close(true);
      });
    }
    return true;
  }

  close(slow: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(slow);
    if (slow) this.res.destroy();
    else this.res.end();
  }
}
