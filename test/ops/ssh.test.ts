// Inventory and ssh by role against real OpenSSH: three web members each with an sshd of their
// own on a 127.0.0.1 port (advertised in the ssh_port tag), found through an ops member's RPC.
// Ansible (ansible-core) reads `kodama inventory` and pings the web group over ssh; `kodama ssh`
// runs a command on each and names the member whose sshd is down; with no command it opens a
// tmux window whose synchronized panes are logged into every member.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent } from '../../src/index.ts';
import type { Agent } from '../../src/index.ts';
import { inventoryCommand } from '../../src/cli/inventory.ts';
import { sshCommand } from '../../src/cli/ssh.ts';
import { KODAMA_BIN } from '../lib/agents.ts';
import { clientOptions, makeKeys, sshUnavailable, startSshd } from '../lib/sshd.ts';
import type { Sshd, SshKeys } from '../lib/sshd.ts';
import { recordIo, until } from '../cli/helpers.ts';

const missing = sshUnavailable();
if (missing !== undefined) console.error(`\n*** test/ops/ssh.test.ts SKIPPED: ${missing} ***\n`);

const WEB = ['web-1', 'web-2', 'web-3'];
const DC: Record<string, string> = { 'web-1': 'east', 'web-2': 'east', 'web-3': 'west' };
const agents: Agent[] = [];
const sshd = new Map<string, Sshd>();
let keys: SshKeys;
let dir = '';
let rpc = '';

before(async () => {
  if (missing !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), 'kodama-ssh-'));
  keys = makeKeys(dir);
  for (const n of WEB) sshd.set(n, await startSshd(keys, n));
  const specs: [string, Record<string, string>][] = [
    ['ops-1', { role: 'ops' }],
    ...WEB.map((n): [string, Record<string, string>] => [n, { role: 'web', dc: DC[n]!, ssh_port: String(sshd.get(n)!.port) }]),
  ];
  for (const [name, tags] of specs) {
    const a = createAgent({ nodeName: name, bind: '127.0.0.1:0', rpcAddr: agents.length === 0 ? '127.0.0.1:0' : null, profile: 'local', tags, logSink: () => {} });
    await a.start();
    agents.push(a);
  }
  const first = agents[0]!;
  for (const a of agents.slice(1)) await a.join([`127.0.0.1:${first.bindAddress.port}`]);
  await until('all members alive', 20_000, () => first.members().filter((m) => m.status === 'alive').length === agents.length);
  rpc = `${first.rpcAddress!.host}:${first.rpcAddress!.port}`;
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  await Promise.all([...sshd.values()].map((s) => s.stop()));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** A program run to its end without blocking this process (its agents must answer meanwhile). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', (e) => resolve({ status: null, stdout, stderr: `${stderr}${e.message}` }));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function kodama(cmd: typeof sshCommand, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = recordIo({ ...process.env, KODAMA_RPC_ADDR: rpc, ...env });
  const code = await cmd.run(args, io);
  return { code, stdout: io.out.join(''), stderr: io.err.join('') };
}

test('inventory --list: a group per role and per key_value tag, hostvars with the ssh port from the tag', { skip: missing }, async () => {
  const r = await kodama(inventoryCommand, ['--list']);
  assert.equal(r.code, 0, r.stderr);
  const inv = JSON.parse(r.stdout) as Record<string, { hosts?: string[]; children?: string[] }> & { _meta: { hostvars: Record<string, Record<string, unknown>> } };
  assert.deepEqual(inv['web']!.hosts, WEB);
  assert.deepEqual(inv['role_web']!.hosts, WEB);
  assert.deepEqual(inv['dc_east']!.hosts, ['web-1', 'web-2']);
  assert.deepEqual(inv['dc_west']!.hosts, ['web-3']);
  assert.deepEqual(inv['ops']!.hosts, ['ops-1']);
  assert.ok(inv['all']!.children!.includes('web') && inv['all']!.children!.includes('dc_east'));
  // ssh_port is how to reach a host, not what it is: no group of it.
  assert.ok(!Object.keys(inv).some((g) => g.startsWith('ssh_port')), Object.keys(inv).join(' '));
  const hv = inv._meta.hostvars['web-2']!;
  assert.equal(hv['ansible_host'], '127.0.0.1');
  assert.equal(hv['ansible_port'], sshd.get('web-2')!.port);
  assert.equal(hv['kodama_status'], 'alive');
  assert.deepEqual(hv['kodama_tags'], { dc: 'east', role: 'web', ssh_port: String(sshd.get('web-2')!.port) });
  assert.equal(inv._meta.hostvars['ops-1']!['ansible_port'], undefined, 'no ssh_port tag, no -port: ssh config decides');

  const one = await kodama(inventoryCommand, ['--host', 'web-3', '-user', 'deploy']);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), { ...inv._meta.hostvars['web-3'], ansible_user: 'deploy' });
  assert.equal((await kodama(inventoryCommand, ['--host', 'nobody'])).stdout.trim(), '{}');
  const bad = await kodama(inventoryCommand, []);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--list .* or --host NAME/);
});

test('ansible: ansible-inventory --graph and `ansible web -m ping` over ssh through kodama inventory', { skip: missing ?? (existsSync('/usr/bin/ansible') ? undefined : 'ansible-core is missing') }, async (t) => {
  // An inventory script as an operator writes one: exec kodama inventory with Ansible's arguments.
  const script = join(dir, 'kodama-inv');
  writeFileSync(script, `#!/bin/sh\nexec ${KODAMA_BIN} inventory -rpc-addr ${rpc} "$@"\n`);
  chmodSync(script, 0o755);
  const env = {
    ...process.env,
    LC_ALL: 'C.UTF-8',
    HOME: dir,
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-local'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'),
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    ANSIBLE_NOCOLOR: '1',
  };
  const graph = await run('ansible-inventory', ['-i', script, '--graph'], env, 60_000);
  assert.equal(graph.status, 0, graph.stderr);
  for (const g of ['@web:', '@dc_east:', '@ops:']) assert.ok(graph.stdout.includes(g), graph.stdout + graph.stderr);
  assert.match(graph.stdout, /@web:\n(.*\|--web-\d\n){3}/);
  const t0 = Date.now();
  const ping = await run('ansible', ['-i', script, 'web', '-m', 'ping', '--private-key', keys.identity, '-o'], env, 120_000);
  t.diagnostic(`ansible web -m ping: ${Date.now() - t0} ms\n${ping.stdout}`);
  assert.equal(ping.status, 0, `${ping.stdout}\n${ping.stderr}`);
  for (const n of WEB) assert.match(ping.stdout, new RegExp(`^${n} \\| SUCCESS => .*"ping": "pong"`, 'm'));
  assert.doesNotMatch(ping.stdout, /ops-1/);
});

test('ssh -role web -- CMD: every member runs it on its own sshd, lines prefixed, exit codes summarised', { skip: missing }, async () => {
  // SSH_CONNECTION ends with the server's port: proof that each member was reached at its own sshd.
  const r = await kodama(sshCommand, ['-role', 'web', ...clientOptions(keys), '--', 'echo "port ${SSH_CONNECTION##* }"; hostname; test ${SSH_CONNECTION##* } != ' + String(sshd.get('web-2')!.port) + ' || exit 3']);
  for (const n of WEB) assert.match(r.stdout, new RegExp(`^${n}: port ${sshd.get(n)!.port}$`, 'm'), r.stdout + r.stderr);
  assert.match(r.stdout, /^web-1\s+0\s+\d+\.\ds$/m);
  assert.match(r.stdout, /^web-2\s+3\s+\d+\.\ds$/m);
  assert.match(r.stdout, /^web-3\s+0\s+\d+\.\ds$/m);
  assert.match(r.stdout, /2\/3 nodes exited 0/);
  assert.doesNotMatch(r.stdout, /ops-1/);
  assert.equal(r.code, 1);
  const ok = await kodama(sshCommand, ['-role', 'web', '-tag', 'dc=east', '-parallel', '1', ...clientOptions(keys), '--', 'true']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /2\/2 nodes exited 0/);
});

test('ssh -role web with no command: a tmux window with a pane per member, input synchronized to all', { skip: missing ?? (existsSync('/usr/bin/tmux') ? undefined : 'tmux is missing') }, async () => {
  const tmuxDir = mkdtempSync(join(tmpdir(), 'kodama-tmux-'));
  const env: Record<string, string> = { TMUX_TMPDIR: tmuxDir, TMUX: '' };
  const tmux = (...args: string[]): string => {
    const r = spawnSync('tmux', args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  try {
    const r = await kodama(sshCommand, ['-role', 'web', ...clientOptions(keys)], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 panes in window web .*: web-1, web-2, web-3/);
    const session = /tmux attach -t (\S+)/.exec(r.stdout)?.[1];
    assert.ok(session !== undefined, r.stdout);
    const panes = tmux('list-panes', '-t', `${session}:web`, '-F', '#{pane_id} #{pane_title}').trim().split('\n').map((l) => l.split(' '));
    assert.deepEqual(panes.map((p) => p[1]), WEB);
    assert.equal(tmux('show-window-options', '-t', `${session}:web`, '-v', 'synchronize-panes').trim(), 'on');
    // Wait for each pane's login, then type once: every member answers with its own sshd's port.
    const screen = (pane: string): string => tmux('capture-pane', '-p', '-t', pane);
    // A login shell prints a prompt ending in "# " or "$ " once ssh is in.
    await until('a shell prompt in every pane', 20_000, () => panes.every(([id]) => /[#$] *$/m.test(screen(id!))));
    tmux('send-keys', '-t', panes[0]![0]!, 'echo "at-port-${SSH_CONNECTION##* }"', 'Enter');
    await until('every pane answered', 10_000, () => panes.every(([id, node]) => screen(id!).includes(`at-port-${sshd.get(node!)!.port}`)));
  } finally {
    spawnSync('tmux', ['kill-server'], { env: { ...process.env, ...env } });
    rmSync(tmuxDir, { recursive: true, force: true });
  }
});

test('ssh with one member\'s sshd stopped: that member is named with why, the exit code is non-zero', { skip: missing }, async (t) => {
  await sshd.get('web-3')!.stop();
  const r = await kodama(sshCommand, ['-role', 'web', ...clientOptions(keys), '--', 'hostname']);
  t.diagnostic(`kodama ssh -role web -- hostname (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^web-1\s+0\s/m);
  assert.match(r.stdout, /^web-2\s+0\s/m);
  assert.match(r.stdout, /^web-3\s+255 \(ssh failed\)\s/m);
  assert.match(r.stdout, new RegExp(`^web-3: ssh: connect to host 127\\.0\\.0\\.1 port ${sshd.get('web-3')!.port}: Connection refused$`, 'm'), r.stdout);
  assert.match(r.stdout, /2\/3 nodes exited 0/);
  assert.match(r.stderr, /^web-3: ssh: connect to host/m, 'ssh\'s own message reaches stderr, prefixed');
});
