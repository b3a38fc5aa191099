// What the scenarios with traffic share (balancer-cut.test.ts, deploy-partition.test.ts, soak.ts):
// a page server per web node (a tiny node:http server in the node's namespace that answers its
// name), one GET through a forwarded frontend, and a balancer's view read from its RPC stats.

import { request } from 'node:http';
import { RpcClient } from '../../src/rpc/client.ts';
import type { Agent } from './agents.ts';
import type { Net, NetNode } from './net.ts';

export const PAGE_PORT = 8080;
export const FRONT_PORT = 8000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const PAGE = `const name = process.argv[1];
require('node:http').createServer((q, s) => { s.setHeader('connection', 'close'); s.end(name); })
  .listen(${PAGE_PORT}, '0.0.0.0', () => console.log('page ready'));`;

/** Start the node's page server on PAGE_PORT; resolves once it listens (≤ 5 s). */
export async function startPage(net: Net, node: NetNode): Promise<void> {
  const p = net.spawn(node, process.execPath, ['-e', PAGE, node.name], { watch: ['page ready'], name: `page ${node.name}` });
  for (let i = 0; i < 200 && !p.saw('page ready'); i++) {
    if (p.hasExited()) throw new Error(`page on ${node.name} exited: ${p.output()}`);
    await sleep(25);
  }
  if (!p.saw('page ready')) throw new Error(`page on ${node.name} not listening after 5 s: ${p.output()}`);
}

/** One GET through the forwarded frontend: true for a 200 from a web node. */
export function get(hostPort: string, timeoutMs = 2000): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path: '/', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** One value of the balancer's `balancer` stats section (`backends.web`, `route.web`, …); undefined when it does not answer. */
export async function balancerStat(lb: Agent, key: string): Promise<string | undefined> {
  let c: RpcClient | undefined;
  try {
    c = await RpcClient.connect(lb.rpcAddr, { timeoutMs: 2000 });
    return (await c.stats())['balancer']?.[key];
  } catch {
    return undefined;
  } finally {
    c?.close();
  }
}

/** How many `web` backends the balancer has ready; undefined when it does not answer. */
export async function readyBackends(lb: Agent): Promise<number | undefined> {
  const v = await balancerStat(lb, 'backends.web');
  const m = v === undefined ? null : /^(\d+) ready/.exec(v);
  return m === null ? undefined : Number(m[1]);
}
