// What a newcomer's mistakes get back (issue 19): every bad input below is run through the real
// `bin/kodama`, and its message must say where the mistake is and what to try next — file, line
// and column for a config file; the nearest valid key, command or flag; for a join, the lead its
// cause suggests (nothing listening is not a key problem). The table (input, message, exit code)
// is printed, so the CI log shows what a user sees.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KODAMA_BIN, freePort, startKodama, stopAll } from '../lib/agents.ts';

after(() => stopAll());

const RUN_TIMEOUT_MS = 30_000;

/** Run bin/kodama to its end (bounded): exit code and everything it printed. */
function kodama(argv: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(KODAMA_BIN, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

interface Case {
  input: string;
  argv: () => Promise<string[]>;
  /** What the message must say. */
  says: RegExp[];
  /** What it must not say (a wrong lead). */
  not?: RegExp[];
  code: number;
}

test('bad inputs get a message that says where and what next, and exit 1', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kodama-bad-input-'));
  try {
    const file = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return name;
    };
    const key = randomBytes(32).toString('base64');
    const otherKey = randomBytes(32).toString('base64');
    const encrypted = await startKodama('enc', { encrypt: key });
    const plain = await startKodama('plain');
    const http = createServer((_req, res) => res.end('hello\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    t.after(() => http.close());
    const httpPort = (http.address() as { port: number }).port;
    const port = (): Promise<string> => freePort().then((p) => `127.0.0.1:${p}`);
    /** `kodama agent` on fresh ports, then `extra`. */
    const agent = async (...extra: string[]): Promise<string[]> => ['agent', '-node', 'newcomer', '-bind', await port(), '-rpc-addr', await port(), ...extra];
    const closed = await port();

    const cases: Case[] = [
      {
        input: 'config file with a trailing comma (line 3)',
        argv: async () => ['agent', '-config-file', file('comma.json', '{\n  "node_name": "a",\n  "tags": {"role": "web"},\n}\n')],
        says: [/comma\.json/, /line 4, column 1/, /a comma after the last entry, line 3\?/, /\n\s+\}\n\s+\^/],
        code: 1,
      },
      {
        input: 'config key misspelt (node_nmae)',
        argv: async () => ['agent', '-config-file', file('key.json', '{"node_nmae": "a"}')],
        says: [/key\.json/, /invalid keys: node_nmae \(did you mean node_name\?\)/],
        code: 1,
      },
      {
        input: 'config value of the wrong type (tags: "web")',
        argv: async () => ['agent', '-config-file', file('type.json', '{"tags": "web"}')],
        says: [/type\.json/, /'tags' expected an object of string values, got "web"/],
        code: 1,
      },
      { input: 'kodama memebrs', argv: async () => ['memebrs'], says: [/Unknown command: memebrs \(did you mean 'members'\?\)/], code: 1 },
      { input: 'kodama agent -nod x', argv: async () => ['agent', '-nod', 'x'], says: [/flag provided but not defined: -nod \(did you mean -node\?\)/, /kodama agent -h/], code: 1 },
      {
        input: 'a second agent on the first one\'s RPC port',
        argv: async () => ['agent', '-node', 'second', '-bind', await port(), '-rpc-addr', plain.rpcAddr],
        says: [new RegExp(`RPC listener on ${plain.rpcAddr}.*EADDRINUSE`), /give this agent its own -rpc-addr \(for example -rpc-addr 127\.0\.0\.1:\d+\)/],
        code: 1,
      },
      {
        input: 'a second agent on the first one\'s gossip port',
        argv: async () => ['agent', '-node', 'second', '-bind', plain.addr, '-rpc-addr', await port()],
        says: [new RegExp(`Failed to bind ${plain.addr}`), /give this agent its own -bind/],
        code: 1,
      },
      {
        input: 'agent -join an address where nothing listens',
        argv: () => agent('-join', closed),
        says: [new RegExp(`Failed to join ${closed}: connection refused`), new RegExp(`nothing listens at ${closed}`), new RegExp(`-retry-join ${closed} keeps trying`)],
        not: [/-encrypt/],
        code: 1,
      },
      {
        input: 'agent -join an encrypted cluster without -encrypt',
        argv: () => agent('-join', encrypted.addr),
        says: [/encrypts its gossip: start with -encrypt <the cluster's key>/],
        code: 1,
      },
      {
        input: 'agent -join an encrypted cluster with another key',
        argv: () => agent('-join', encrypted.addr, '-encrypt', otherKey),
        says: [/uses another key: -encrypt must be one of the cluster's keys \('kodama keys -list'/],
        code: 1,
      },
      {
        input: 'agent -encrypt -join a cluster that does not encrypt',
        argv: () => agent('-join', plain.addr, '-encrypt', key),
        says: [/does not encrypt its gossip: start without -encrypt/],
        code: 1,
      },
      {
        input: 'agent -join an HTTP server',
        argv: () => agent('-join', `127.0.0.1:${httpPort}`),
        says: [/answered, but not as a kodama or serf agent: join a member's gossip address/],
        not: [/-encrypt/],
        code: 1,
      },
      {
        input: 'agent -join a name that does not resolve',
        argv: () => agent('-join', 'no-such-host.invalid'),
        says: [/no-such-host\.invalid does not resolve: check the name, or join by IP address/],
        not: [/-encrypt/],
        code: 1,
      },
      {
        input: 'kodama join (through the agent) to an address where nothing listens',
        argv: async () => ['join', '-rpc-addr', plain.rpcAddr, closed],
        says: [/Error joining the cluster: /, new RegExp(`nothing listens at ${closed}`)],
        not: [/-encrypt/],
        code: 1,
      },
      {
        input: 'kodama members with no agent running',
        argv: async () => ['members', '-rpc-addr', closed],
        says: [new RegExp(`no kodama or serf agent is listening on ${closed}`), /start one with `kodama agent` or pass -rpc-addr/],
        code: 1,
      },
    ];

    const rows: string[] = [];
    const problems: string[] = [];
    for (const c of cases) {
      const argv = await c.argv();
      const r = await kodama(argv, dir);
      // What the user reads: from the first error line to the next blank line (not the banner or logs).
      const lines = r.out.split('\n').filter((l) => !/^\s+\d{4}\/\d\d\/\d\d /.test(l));
      const first = lines.findIndex((l) => /^(==> Failed|Error|Unknown command|flag provided)/.test(l));
      const rest = first < 0 ? [] : lines.slice(first);
      const end = rest.findIndex((l) => l.trim() === '');
      const message = (end < 0 ? rest : rest.slice(0, end)).join(' / ');
      rows.push(`${c.input} | kodama ${argv.join(' ')} | ${message} | exit ${r.code}`);
      for (const re of c.says) if (!re.test(r.out)) problems.push(`${c.input}: the output does not say ${re}:\n${r.out}`);
      for (const re of c.not ?? []) if (re.test(r.out)) problems.push(`${c.input}: the output says ${re} (a wrong lead):\n${r.out}`);
      if (r.code !== c.code) problems.push(`${c.input}: exit ${r.code}, expected ${c.code}:\n${r.out}`);
    }
    t.diagnostic('bad inputs: input | command | message | exit code');
    for (const row of rows) t.diagnostic(row);
    assert.deepEqual(problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
