// Node built-in modules that only some agents need, loaded on first use instead of at start.
// Every module Node loads costs each agent its compiled code and objects: node:crypto alone
// (the cipher, hash, key and certificate classes it pulls in) is ~1 MiB of RSS, node:dns/promises
// and node:os a few hundred KiB more. A plain agent without encryption, RPC auth or hostnames to
// resolve never touches them. (A static `import … from 'node:crypto'` anywhere on the agent's
// start path would load it at start: the bundle runs a module's imports when it runs the module.)

import { createRequire } from 'node:module';
import type * as Crypto from 'node:crypto';
import type * as DnsPromises from 'node:dns/promises';
import type * as Os from 'node:os';

let req: ((id: string) => unknown) | undefined;

function load<T>(id: string): T {
  // process.getBuiltinModule: Node ≥ 20.16; before, a require made for any path finds built-ins.
  if (typeof process.getBuiltinModule === 'function') return process.getBuiltinModule(id) as T;
  req ??= createRequire(`${process.cwd()}/`);
  return req(id) as T;
}

let crypto: typeof Crypto | undefined;
let dns: typeof DnsPromises | undefined;
let os: typeof Os | undefined;

export function nodeCrypto(): typeof Crypto {
  return (crypto ??= load<typeof Crypto>('node:crypto'));
}

export function nodeDns(): typeof DnsPromises {
  return (dns ??= load<typeof DnsPromises>('node:dns/promises'));
}

export function nodeOs(): typeof Os {
  return (os ??= load<typeof Os>('node:os'));
}
