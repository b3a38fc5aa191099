// A stand-in for a container engine's Docker-compatible API, for tests of what kodama does when
// the engine misbehaves (a socket that is not there yet, malformed JSON, a restart, a garbage
// event line): a node:http server on a unix socket speaking the two calls the watcher uses
// (GET /containers/json, GET /events). Real Podman is test/discovery/containers-podman.test.ts.
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';

export interface FakeEngine {
  containers: unknown[];
  /** Answer the list with this text instead (malformed JSON). */
  rawList: string | undefined;
  lists: number;
  /** Write one line to every open event stream. */
  push(line: string): void;
  streams(): number;
  close(): Promise<void>;
}

export async function fakeEngine(socket: string): Promise<FakeEngine> {
  const open = new Set<ServerResponse>();
  const e: FakeEngine = {
    containers: [],
    rawList: undefined,
    lists: 0,
    push: (line) => {
      for (const r of open) r.write(line + '\n');
    },
    streams: () => open.size,
    close: () =>
      new Promise((resolve) => {
        for (const r of open) r.destroy();
        open.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/v1.41/containers/json?all=true&filters=') === true) {
      e.lists++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(e.rawList ?? JSON.stringify(e.containers));
      return;
    }
    if (req.url?.startsWith('/v1.41/events') === true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    res.writeHead(404).end('{"message":"no such route"}');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return e;
}

/** A labelled, running container as the list shows it. */
export const running = (id: string, service: string, port: string, more: Record<string, unknown> = {}): unknown => ({
  Id: id,
  Names: [`/${id}`],
  Created: 1,
  Labels: { 'kodama.service': service, 'kodama.port': port },
  State: 'running',
  ...more,
});
