// The processes of the proxy benchmark (bench/proxy.bench.ts), one role each, so the backend,
// the proxy and the load generator never share an event loop:
//
//   node --import tsx src/demo/bench-child.ts backend                       → {"port"}
//   node --import tsx src/demo/bench-child.ts proxy embedded|haproxy HOST:PORT [DIR] → {"port"}
//   node --import tsx src/demo/bench-child.ts load URL CONCURRENCY DURATION_MS WARMUP_MS → LoadSummary
//
// Each prints one JSON line on stdout. backend and proxy run until stdin closes (the bench holds
// it, so they never outlive it) or SIGTERM; load exits when its run ends.

import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createEmbeddedBalancer } from '../balancer/embedded/index.ts';
import { createHaproxyBalancer } from '../balancer/haproxy/index.ts';
import type { Balancer } from '../discovery/types.ts';
import { startLoad, summarise } from './loadgen.ts';
import { startWebServer } from './web-server.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function untilParentGoes(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
    process.once('SIGTERM', resolve);
  });
}

function usage(): never {
  process.stderr.write('usage: bench-child.ts backend | proxy embedded|haproxy HOST:PORT [DIR] | load URL CONCURRENCY DURATION_MS WARMUP_MS\n');
  process.exit(2);
}

export async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode === 'backend') {
    const web = await startWebServer({ node: 'bench-backend' });
    process.stdout.write(`${JSON.stringify({ port: web.port })}\n`);
    await untilParentGoes();
    await web.close();
    return 0;
  }
  if (mode === 'proxy') {
    const [driver, backend, dir] = rest;
    if ((driver !== 'embedded' && driver !== 'haproxy') || backend === undefined) usage();
    const [host, portText] = backend.split(':');
    const port = await freePort();
    const balancer: Balancer =
      driver === 'embedded'
        ? createEmbeddedBalancer()
        : createHaproxyBalancer({ binary: 'haproxy', dir: dir ?? usage(), slots: 4, reloadDebounceMs: 500 });
    await balancer.start([{ service: 'web', mode: 'http', bind: { host: '127.0.0.1', port } }]);
    await balancer.setBackends('web', [{ id: 'b1', host: host ?? '127.0.0.1', port: Number(portText), weight: 100, state: 'ready' }]);
    process.stdout.write(`${JSON.stringify({ port })}\n`);
    await untilParentGoes();
    await balancer.stop();
    return 0;
  }
  if (mode === 'load') {
    const [url, conc, dur, warm] = rest;
    if (url === undefined || conc === undefined || dur === undefined || warm === undefined) usage();
    const startedAt = Date.now();
    const run = startLoad({ url, concurrency: Number(conc), durationMs: Number(dur) + Number(warm), timeoutMs: 5000 });
    await run.done;
    // Keep-alive connections are warm and the JIT has settled by now: count from there.
    const sum = summarise(run.records, startedAt + Number(warm));
    process.stdout.write(`${JSON.stringify({ ...sum, failures: sum.failures.slice(0, 3) })}\n`);
    return 0;
  }
  usage();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
