// What the balancer needs from a frontend listener, HTTP or TCP, and the one way both bind.
import type { Server } from 'node:net';
import type { Frontend } from '../../discovery/types.ts';
import { ProxyError } from './errors.ts';

export interface FrontendListener {
  readonly frontend: Frontend;
  /** Requests (HTTP) or connections (TCP) being served now. */
  readonly inflight: number;
  /** The bound port (differs from frontend.bind.port when that was 0). */
  readonly port: number;
  listen(): Promise<void>;
  /**
   * Stop accepting at once; let work in flight finish for up to `graceMs`, then cut what is
   * left. Resolves when every connection is gone.
   */
  close(graceMs: number): Promise<void>;
}

export function listenOn(server: Server, f: Frontend): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new ProxyError(
          'ERR_PROXY_BIND',
          `frontend ${f.service}: cannot listen on ${f.bind.host}:${f.bind.port}: ${err.code ?? err.message}`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(f.bind.port, f.bind.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function boundPort(server: Server): number {
  const a = server.address();
  return a !== null && typeof a === 'object' ? a.port : 0;
}

/** Resolve once `inflight()` is 0 or `graceMs` has passed (polled: closing is rare). */
export async function waitIdle(inflight: () => number, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (inflight() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
}
