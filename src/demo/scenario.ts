// `kodama demo` scenario (balancer in-process, web nodes as children, script). Lands next.
import type { CliIo } from '../cli/io.ts';

export interface DemoOptions { once: boolean; haproxy: boolean; haproxyBinary: string; port: number; delayMs: number }

export function runDemo(_opts: DemoOptions, io: CliIo): Promise<number> {
  io.stderr('kodama demo: the scenario is not built yet (only `kodama demo web-node` works)\n');
  return Promise.resolve(1);
}
