// Shared by the HAProxy driver tests.
import { createServer as createNetServer } from 'node:net';

export const HAPROXY = '/usr/sbin/haproxy';

/**
 * A free port for an HAProxy frontend, picked below the kernel's ephemeral range (32768+): port 0
 * would hand out a port that, in the moment before HAProxy binds it, another test (or a client
 * socket) may get as well — and HAProxy binds with SO_REUSEPORT, so both would silently share it.
 */
export async function freeFrontendPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const srv = createNetServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((r) => srv.close(() => r()));
      return port;
    }
  }
  throw new Error('no free port in 20000..32000 after 50 tries');
}
