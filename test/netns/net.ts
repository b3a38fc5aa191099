// A real test network made of Linux network namespaces (issue 18; grown by issue 13):
//
//   <prefix>-br : one bridge `br0`, no IP, no uplink
//   <prefix>-0 … <prefix>-(n-1) : one per node, `eth0` (a veth whose peer is in the bridge),
//                                 10.<a>.<b>.<i+1>/24, `lo` up, no default route
//
// so nothing a test starts can reach (or be reached from) the host's own network. <prefix> is
// `kodama-<our pid>-<random tag>` and the /24 is random: two runs never collide, and a run that
// died without cleaning up (SIGKILL) is swept by the next createNet (its owner pid is gone).
//
// Faults are netfilter rules inside the node namespaces (iptables, or nft when iptables is
// missing or KODAMA_NETNS_FIREWALL=nft): a cut drops on INPUT (both directions, or one way:
// without local send errors), loss drops a random share of what arrives on eth0 (never the
// namespace's loopback, where the RPC relay runs), and a counter on OUTPUT counts the UDP
// packets each node sends through eth0. Every fault (and pause, resume, kill) is written to the
// network's timeline, which a failing scenario prints.
//
// Delay and jitter (no netem qdisc on this kernel): `delay` routes what a node sends to the /24
// into a TUN device, where a small relay of our own (delay-relay.c, built with the system's C
// compiler on first use) holds each packet for delay ± jitter and sends it on through a raw
// socket whose firewall mark policy routing sends out eth0. Each node delays what it sends, so a
// round trip between two delayed nodes takes twice the delay.
//
// Every process started through `spawn` is its own process group and is SIGKILLed by destroy();
// destroy() also kills whatever else is left in the namespaces and deletes them. The same
// cleanup runs (synchronously) on process exit and on SIGINT/SIGTERM/SIGHUP, so a failing test
// leaks nothing. Every wait and loop here is bounded in count and in time.

import { execFile, spawn as spawnChild, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildC } from '../lib/cc.ts';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Firewall = 'iptables' | 'nft';

export interface NetNode {
  /** Node name (also what tests use as the agent name). */
  name: string;
  /** Its namespace. */
  ns: string;
  /** Its address on the test network (inside the namespaces only). */
  ip: string;
  index: number;
}

export interface NsProc {
  name: string;
  node: NetNode;
  child: ChildProcess;
  /** The process itself (`ip netns exec` execs in place) and its process group id. */
  pid: number;
  /** Everything it wrote (stdout + stderr), the last MAX_OUTPUT characters. */
  output(): string;
  /** True once `text` appeared in its output (checked as output arrives, never trimmed away). */
  saw(text: string): boolean;
  exited: Promise<number | null>;
  hasExited(): boolean;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Strings to watch for in the output (see NsProc.saw); banners, typically. */
  watch?: string[];
  /** A label for the process in messages (default: the command's base name). */
  name?: string;
}

export interface UdpCount {
  /** UDP packets sent out of eth0 since the network was made (or counters were reset). */
  sent: number;
  /** Of those, packets to addresses on the other side of the current cut. */
  toCut: number;
}

export interface Net {
  readonly tag: string;
  readonly subnet: string;
  readonly firewall: Firewall;
  readonly nodes: NetNode[];
  readonly bridgeNs: string;
  /** A directory of this run's own (removed by destroy). */
  readonly dir: string;
  node(name: string): NetNode;
  /** Run a command inside a namespace (bounded); resolves with stdout, rejects with stderr. */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<string>;
  /** Start a long-running process inside a node's namespace, in its own process group. */
  spawn(node: NetNode | string, cmd: string, args: string[], opts?: SpawnOptions): NsProc;
  /**
   * A host address (127.0.0.1:port) that reaches `127.0.0.1:<port>` inside the node's namespace:
   * a small relay in the namespace listens on a unix socket (paths are not per-namespace) and a
   * listener in this process forwards to it. Not affected by cuts or loss.
   */
  forward(node: NetNode | string, port: number): Promise<string>;
  /** Drop everything between the two groups, both ways (INPUT rules in every member's namespace). */
  cut(groupA: (NetNode | string)[], groupB: (NetNode | string)[]): Promise<void>;
  /** Drop what `from` sends to `to` (`to` no longer hears `from`; `from` still hears `to`). */
  cutOneWay(from: (NetNode | string)[], to: (NetNode | string)[]): Promise<void>;
  /** Remove every cut. */
  heal(): Promise<void>;
  /** Drop `pct` % of the packets arriving at the node (0 removes the loss). */
  loss(node: NetNode | string, pct: number): Promise<void>;
  /** UDP packets sent by the node (counter on OUTPUT). */
  udpSent(node: NetNode | string): Promise<UdpCount>;
  /**
   * Hold every packet the node sends to the test network for `ms` ± `jitterMs` (uniform; with
   * jitter packets overtake each other); `ms` 0 removes it. Throws when no C compiler can build the
   * relay (delayAvailable() says so first). Resolves with how many packets the relay it replaced
   * (or removed) had sent on.
   */
  delay(node: NetNode | string, ms: number, jitterMs?: number): Promise<number>;
  /**
   * A small tmpfs of `sizeKiB` mounted under the network's directory (a disk that fills up);
   * unmounted by destroy. Resolves with its path.
   */
  tmpfs(name: string, sizeKiB: number): Promise<string>;
  /** Fill the filesystem at `dir` (a file `dir/.filler` written until ENOSPC); resolves with the bytes written. */
  fillDisk(dir: string): Promise<number>;
  /** Packets the node's loss rule dropped since it was set (0 without one). */
  lossDropped(node: NetNode | string): Promise<number>;
  pause(p: NsProc): void;
  resume(p: NsProc): void;
  kill9(p: NsProc): void;
  /** Add a line to the timeline (what a scenario did besides faults: "agents up", "heal wait"…). */
  mark(what: string): void;
  /** Every fault and mark so far, one line each: seconds since the network was made, what. */
  timeline(): string[];
  /** Kill every process and delete every namespace; safe to call more than once. */
  destroy(): Promise<void>;
}

/** Output kept per process: agents at debug level are chatty. */
const MAX_OUTPUT = 256 * 1024;
const EXEC_TIMEOUT_MS = 10_000;
const NS_PREFIX = 'kodama-';
const CHAIN_CUT = 'KODAMA_CUT';
const CHAIN_LOSS = 'KODAMA_LOSS';
const CHAIN_COUNT = 'KODAMA_COUNT';
const DELAY_DEV = 'kdly0';
const DELAY_MARK = 75;
const DELAY_TABLE = 175;

// ---------------------------------------------------------------------------------------------
// Availability

let firewallCache: Firewall | null | undefined;

function commandWorks(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

/** iptables when present (or nft if KODAMA_NETNS_FIREWALL=nft), else nft, else null. */
export function pickFirewall(): Firewall | null {
  if (firewallCache !== undefined) return firewallCache;
  const want = process.env['KODAMA_NETNS_FIREWALL'];
  const hasIptables = commandWorks('iptables', ['--version']);
  const hasNft = commandWorks('nft', ['--version']);
  if (want === 'nft') firewallCache = hasNft ? 'nft' : null;
  else if (want === 'iptables') firewallCache = hasIptables ? 'iptables' : null;
  else firewallCache = hasIptables ? 'iptables' : hasNft ? 'nft' : null;
  return firewallCache;
}

let availableCache: { ok: boolean; why?: string } | undefined;

/**
 * Can this machine make test networks? Creates a namespace with a veth and a firewall rule in
 * it, then deletes it. Tests that get ok=false must skip loudly (see skipUnlessNetns).
 */
export function netnsAvailable(): { ok: boolean; why?: string } {
  if (availableCache !== undefined) return availableCache;
  availableCache = probeNetns();
  return availableCache;
}

function probeNetns(): { ok: boolean; why?: string } {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces need Linux (this is ${process.platform})` };
  if (!commandWorks('ip', ['-V'])) return { ok: false, why: '`ip` (iproute2) is not installed' };
  const fw = pickFirewall();
  if (fw === null) {
    const want = process.env['KODAMA_NETNS_FIREWALL'];
    return { ok: false, why: want ? `KODAMA_NETNS_FIREWALL=${want} but \`${want}\` is not installed` : 'neither `iptables` nor `nft` is installed' };
  }
  const ns = `${NS_PREFIX}${process.pid}-probe${randomBytes(3).toString('hex')}`;
  const run = (args: string[]): string | undefined => {
    const r = spawnSync(args[0] as string, args.slice(1), { encoding: 'utf8', timeout: EXEC_TIMEOUT_MS });
    if (r.status === 0) return undefined;
    return `\`${args.join(' ')}\` failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
  };
  const add = run(['ip', 'netns', 'add', ns]);
  if (add !== undefined) return { ok: false, why: `cannot create a network namespace (root / CAP_SYS_ADMIN needed): ${add}` };
  try {
    const steps: string[][] = [
      ['ip', '-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0'],
      ['ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge'],
      fw === 'iptables'
        ? ['ip', 'netns', 'exec', ns, 'iptables', '-A', 'INPUT', '-s', '10.0.0.1', '-j', 'DROP']
        : ['ip', 'netns', 'exec', ns, 'nft', 'add', 'table', 'inet', 'kodamaprobe'],
    ];
    for (const s of steps) {
      const err = run(s);
      if (err !== undefined) return { ok: false, why: err };
    }
    return { ok: true };
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: EXEC_TIMEOUT_MS });
  }
}

/**
 * For node:test: when test networks cannot be made, skip the test and say why on the console
 * (never pass silently). Returns true when the test should go on.
 */
let relayBuild: Promise<string> | undefined;

/** Build delay-relay.c once per process (into the temp dir, keyed by its source); resolves with the binary's path. */
function delayRelayBinary(): Promise<string> {
  relayBuild ??= (async () => buildC(fileURLToPath(new URL('./delay-relay.c', import.meta.url)), 'delay-relay'))();
  relayBuild.catch(() => (relayBuild = undefined));
  return relayBuild;
}

/** Whether `delay` can work here: a C compiler for the relay and /dev/net/tun. */
export function delayAvailable(): { ok: boolean; why?: string } {
  if (!existsSync('/dev/net/tun')) return { ok: false, why: 'no /dev/net/tun' };
  if (!commandWorks('cc', ['--version'])) return { ok: false, why: 'no C compiler (cc) to build the delay relay: install gcc and libc6-dev' };
  return { ok: true };
}

export function requireNetns(t: { skip(message?: string): void }): boolean {
  const a = netnsAvailable();
  if (a.ok) return true;
  const why = `SKIPPED: this real-network test cannot run here: ${a.why ?? 'unknown reason'}`;
  console.log(why);
  t.skip(why);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Cleanup registry: every live network, destroyed synchronously on exit and on signals.

const liveNets = new Set<NetImpl>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    for (const n of liveNets) n.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      if (liveNets.size > 0) console.error(`\n${sig}: removing ${liveNets.size} test network(s)`);
      for (const n of liveNets) n.destroySync();
      process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[sig]);
    });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function nsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: EXEC_TIMEOUT_MS });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((p) => Number.isInteger(p) && p > 0);
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** SIGKILL everything inside the namespaces (bounded wait until they are empty), then delete them. */
function removeNamespacesSync(namespaces: string[]): void {
  const deadline = Date.now() + 5000;
  for (let round = 0; round < 50; round++) {
    let left = 0;
    for (const ns of namespaces) {
      for (const pid of nsPids(ns)) {
        left++;
        killQuietly(pid, 'SIGCONT');
        killQuietly(pid, 'SIGKILL');
      }
    }
    if (left === 0 || Date.now() >= deadline) break;
    spawnSync('sleep', ['0.1']);
  }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: EXEC_TIMEOUT_MS });
}

/** Namespaces and directories of earlier runs whose owner process is gone (it was SIGKILLed): remove them. */
function sweepStale(): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: EXEC_TIMEOUT_MS });
  if (r.status !== 0) return;
  const stale: string[] = [];
  for (const line of r.stdout.split('\n').slice(0, 10_000)) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = /^kodama-(\d+)-/.exec(name);
    if (m === null) continue;
    const owner = Number(m[1]);
    if (owner !== process.pid && !pidAlive(owner)) stale.push(name);
  }
  if (stale.length > 0) {
    console.error(`# netns: removing ${stale.length} namespace(s) left by dead runs: ${stale.join(' ')}`);
    removeNamespacesSync(stale);
  }
  // Their directories (handler output, relay sockets) too.
  for (const name of readdirSync(tmpdir()).slice(0, 100_000)) {
    const m = /^kodama-netns-(\d+)-/.exec(name);
    if (m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function run(cmd: string, args: string[], timeoutMs = EXEC_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`\`${cmd} ${args.join(' ')}\` failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Relay run inside a namespace: unix socket (argv[1]) ⇄ 127.0.0.1:port (argv[2]). Plain JS, starts fast. */
const RELAY_SRC = `
const net = require('node:net');
const [path, port] = process.argv.slice(1);
const srv = net.createServer((c) => {
  const u = net.connect({ host: '127.0.0.1', port: Number(port) });
  const end = () => { c.destroy(); u.destroy(); };
  c.on('error', end); u.on('error', end); c.on('close', end); u.on('close', end);
  c.pipe(u); u.pipe(c);
});
srv.listen(path, () => console.log('relay ready'));
`;

class NetImpl implements Net {
  readonly nodes: NetNode[] = [];
  readonly bridgeNs: string;
  readonly dir: string;
  private readonly procs = new Set<NsProc>();
  private readonly servers = new Set<Server>();
  private readonly sockets = new Set<Socket>();
  private readonly forwards = new Map<string, Promise<string>>();
  private readonly delays = new Map<string, NsProc>();
  private readonly mounts: string[] = [];
  private cutPairs: [NetNode, NetNode][] = [];
  private destroyed = false;
  private readonly createdAt = performance.now();
  private readonly events: string[] = [];

  constructor(
    readonly tag: string,
    readonly subnet: string,
    readonly firewall: Firewall,
    names: string[],
    private readonly prefix: string,
  ) {
    this.bridgeNs = `${prefix}-br`;
    const base = subnet.replace(/\.0\/24$/, '');
    names.forEach((name, i) => this.nodes.push({ name, ns: `${prefix}-${i}`, ip: `${base}.${i + 1}`, index: i }));
    this.dir = mkdtempSync(join(tmpdir(), `kodama-netns-${process.pid}-${tag}-`));
  }

  get namespaces(): string[] {
    return [...this.nodes.map((n) => n.ns), this.bridgeNs];
  }

  mark(what: string): void {
    this.events.push(`${((performance.now() - this.createdAt) / 1000).toFixed(1).padStart(7)} s  ${what}`);
  }

  timeline(): string[] {
    return [...this.events];
  }

  node(name: string): NetNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name} in this test network`);
    return n;
  }

  private resolve(n: NetNode | string): NetNode {
    return typeof n === 'string' ? this.node(n) : n;
  }

  exec(ns: string, cmd: string, args: string[], timeoutMs = EXEC_TIMEOUT_MS): Promise<string> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  async build(): Promise<void> {
    const br = this.bridgeNs;
    await run('ip', ['netns', 'add', br]);
    await run('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    await run('ip', ['-n', br, 'link', 'set', 'lo', 'up']);
    for (const n of this.nodes) {
      const peer = `p${n.index}`;
      await run('ip', ['netns', 'add', n.ns]);
      await run('ip', ['-n', n.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', peer, 'netns', br]);
      await run('ip', ['-n', br, 'link', 'set', peer, 'master', 'br0']);
      await run('ip', ['-n', br, 'link', 'set', peer, 'up']);
      await run('ip', ['-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', n.ns, 'link', 'set', 'lo', 'up']);
      await this.firewallSetup(n);
    }
    // Bounded wait for every link to have carrier (the bridge has STP off: ports forward at once).
    let pending: string[] = [];
    for (let i = 0; i < 50; i++) {
      pending = [];
      for (const n of this.nodes) {
        const l = await run('ip', ['-n', n.ns, '-o', 'link', 'show', 'dev', 'eth0']);
        if (!l.includes('LOWER_UP') || l.includes('NO-CARRIER')) pending.push(n.name);
      }
      if (pending.length === 0) return;
      await sleep(100);
    }
    throw new Error(`test network: no carrier on eth0 of ${pending.join(', ')} after 50 checks`);
  }

  private async firewallSetup(n: NetNode): Promise<void> {
    if (this.firewall === 'iptables') {
      const ipt = (...args: string[]): Promise<string> => this.exec(n.ns, 'iptables', ['-w', '5', ...args]);
      await ipt('-N', CHAIN_CUT);
      await ipt('-N', CHAIN_LOSS);
      await ipt('-N', CHAIN_COUNT);
      await ipt('-A', 'INPUT', '-j', CHAIN_CUT);
      await ipt('-A', 'INPUT', '-i', 'eth0', '-j', CHAIN_LOSS);
      await ipt('-A', 'OUTPUT', '-o', 'eth0', '-p', 'udp', '-j', CHAIN_COUNT);
    } else {
      await this.nft(
        n,
        `table inet kodama {
  chain cut { }
  chain loss { }
  chain count { }
  chain input { type filter hook input priority 0; policy accept; jump cut; iifname "eth0" jump loss; }
  chain output { type filter hook output priority 0; policy accept; oifname "eth0" meta l4proto udp counter jump count; }
}
`,
      );
    }
  }

  /** Feed an nft script (nft -f -) inside the node's namespace. */
  private nft(n: NetNode, script: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const c = spawnChild('ip', ['netns', 'exec', n.ns, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => c.kill('SIGKILL'), EXEC_TIMEOUT_MS);
      c.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`nft in ${n.ns} failed (${code}): ${err.trim()}\n${script}`));
      });
      c.stdin?.end(script);
    });
  }

  spawn(nodeOrName: NetNode | string, cmd: string, args: string[], opts: SpawnOptions = {}): NsProc {
    if (this.destroyed) throw new Error('test network already destroyed');
    const node = this.resolve(nodeOrName);
    // detached: a process group of its own, so kill/stop reach the handlers it runs too, and a
    // terminal's Ctrl-C reaches only us (we then kill it).
    const child = spawnChild('ip', ['netns', 'exec', node.ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      cwd: opts.cwd,
      env: opts.env ?? process.env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${cmd} in ${node.ns}`);
    let out = '';
    const watch = new Map<string, boolean>((opts.watch ?? []).map((w) => [w, false]));
    const onData = (d: Buffer): void => {
      out += d.toString();
      for (const [w, seen] of watch) if (!seen && out.includes(w)) watch.set(w, true);
      if (out.length > MAX_OUTPUT) out = out.slice(out.length - MAX_OUTPUT / 2);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    let done = false;
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code, signal) => {
        done = true;
        this.procs.delete(p);
        resolve(code ?? (signal === null ? null : -1));
      });
      child.once('error', () => {
        done = true;
        this.procs.delete(p);
        resolve(null);
      });
    });
    const p: NsProc = {
      name: opts.name ?? `${cmd.split('/').pop() ?? cmd}@${node.name}`,
      node,
      child,
      pid: child.pid,
      output: () => out,
      saw: (text) => watch.get(text) ?? out.includes(text),
      exited,
      hasExited: () => done,
    };
    this.procs.add(p);
    return p;
  }

  forward(nodeOrName: NetNode | string, port: number): Promise<string> {
    // One relay per node and port, kept for the network's life: an agent restarted in the node
    // is reached at the same host address.
    const node = this.resolve(nodeOrName);
    const key = `${node.name}:${port}`;
    let f = this.forwards.get(key);
    if (f === undefined) {
      f = this.startForward(node, port);
      this.forwards.set(key, f);
      f.catch(() => this.forwards.delete(key));
    }
    return f;
  }

  private async startForward(node: NetNode, port: number): Promise<string> {
    const path = join(this.dir, `${node.name}-${port}.sock`);
    const relay = this.spawn(node, process.execPath, ['-e', RELAY_SRC, path, String(port)], {
      watch: ['relay ready'],
      name: `relay@${node.name}:${port}`,
    });
    for (let i = 0; i < 100 && !relay.saw('relay ready'); i++) {
      if (relay.hasExited()) throw new Error(`relay in ${node.ns} exited: ${relay.output()}`);
      await sleep(50);
    }
    if (!relay.saw('relay ready')) throw new Error(`relay in ${node.ns} did not start within 5 s: ${relay.output()}`);
    const server = createServer((c) => {
      const u = connect({ path });
      this.sockets.add(c);
      this.sockets.add(u);
      const end = (): void => {
        c.destroy();
        u.destroy();
        this.sockets.delete(c);
        this.sockets.delete(u);
      };
      c.on('error', end);
      u.on('error', end);
      c.on('close', end);
      u.on('close', end);
      c.pipe(u);
      u.pipe(c);
    });
    this.servers.add(server);
    const hostPort = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    return `127.0.0.1:${hostPort}`;
  }

  async cut(groupA: (NetNode | string)[], groupB: (NetNode | string)[]): Promise<void> {
    const a = groupA.map((n) => this.resolve(n));
    const b = groupB.map((n) => this.resolve(n));
    const pairs: [NetNode, NetNode[]][] = [...a.map((n): [NetNode, NetNode[]] => [n, b]), ...b.map((n): [NetNode, NetNode[]] => [n, a])];
    await Promise.all(
      pairs.map(async ([n, others]) => {
        if (others.length === 0) return;
        const ips = others.map((o) => o.ip);
        if (this.firewall === 'iptables') {
          const ipt = (...args: string[]): Promise<string> => this.exec(n.ns, 'iptables', ['-w', '5', ...args]);
          // The counting rules first: the drop is on INPUT, so they never see our own traffic cut.
          for (const ip of ips) await ipt('-A', CHAIN_COUNT, '-d', ip);
          await ipt('-A', CHAIN_CUT, '-s', ips.join(','), '-j', 'DROP');
        } else {
          const set = `{ ${ips.join(', ')} }`;
          await this.nft(n, `add rule inet kodama count ip daddr ${set} counter\nadd rule inet kodama cut ip saddr ${set} drop\n`);
        }
      }),
    );
    for (const [n, others] of pairs) for (const o of others) this.cutPairs.push([n, o]);
    this.mark(`cut ${a.map((n) => n.name).join(',')} | ${b.map((n) => n.name).join(',')}`);
  }

  async cutOneWay(fromNodes: (NetNode | string)[], toNodes: (NetNode | string)[]): Promise<void> {
    const from = fromNodes.map((n) => this.resolve(n));
    const to = toNodes.map((n) => this.resolve(n));
    if (from.length === 0 || to.length === 0) return;
    const fromIps = from.map((o) => o.ip);
    const toIps = to.map((o) => o.ip);
    // The senders count what they send into the cut; the receivers drop it on arrival.
    await Promise.all([
      ...from.map(async (n) => {
        if (this.firewall === 'iptables') {
          for (const ip of toIps) await this.exec(n.ns, 'iptables', ['-w', '5', '-A', CHAIN_COUNT, '-d', ip]);
        } else {
          await this.nft(n, `add rule inet kodama count ip daddr { ${toIps.join(', ')} } counter\n`);
        }
      }),
      ...to.map(async (n) => {
        if (this.firewall === 'iptables') {
          await this.exec(n.ns, 'iptables', ['-w', '5', '-A', CHAIN_CUT, '-s', fromIps.join(','), '-j', 'DROP']);
        } else {
          await this.nft(n, `add rule inet kodama cut ip saddr { ${fromIps.join(', ')} } drop\n`);
        }
      }),
    ]);
    for (const n of to) for (const o of from) this.cutPairs.push([n, o]);
    this.mark(`cut one way ${from.map((n) => n.name).join(',')} → ${to.map((n) => n.name).join(',')} (the latter no longer hear the former)`);
  }

  async heal(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (this.firewall === 'iptables') {
          await this.exec(n.ns, 'iptables', ['-w', '5', '-F', CHAIN_CUT]);
          await this.exec(n.ns, 'iptables', ['-w', '5', '-F', CHAIN_COUNT]);
        } else {
          await this.nft(n, 'flush chain inet kodama cut\nflush chain inet kodama count\n');
        }
      }),
    );
    this.cutPairs = [];
    this.mark('heal (every cut removed)');
  }

  async loss(nodeOrName: NetNode | string, pct: number): Promise<void> {
    const n = this.resolve(nodeOrName);
    if (!(pct >= 0 && pct <= 100)) throw new Error(`loss: pct must be 0…100, got ${pct}`);
    if (this.firewall === 'iptables') {
      await this.exec(n.ns, 'iptables', ['-w', '5', '-F', CHAIN_LOSS]);
      if (pct > 0) {
        await this.exec(n.ns, 'iptables', ['-w', '5', '-A', CHAIN_LOSS, '-m', 'statistic', '--mode', 'random', '--probability', String(pct / 100), '-j', 'DROP']);
      }
    } else {
      const rule = pct > 0 ? `add rule inet kodama loss numgen random mod 100 < ${Math.round(pct)} counter drop\n` : '';
      await this.nft(n, `flush chain inet kodama loss\n${rule}`);
    }
    this.mark(pct > 0 ? `loss ${pct} % arriving at ${n.name}` : `loss at ${n.name} removed`);
  }

  async delay(nodeOrName: NetNode | string, ms: number, jitterMs = 0): Promise<number> {
    const n = this.resolve(nodeOrName);
    if (!(ms >= 0 && jitterMs >= 0 && jitterMs <= ms)) throw new Error(`delay: need 0 ≤ jitter ≤ delay, got ${ms} ± ${jitterMs} ms`);
    const ip = (...args: string[]): Promise<string> => this.exec(n.ns, 'ip', args);
    const old = this.delays.get(n.name);
    let relayed = 0;
    if (old !== undefined) {
      this.delays.delete(n.name);
      // SIGTERM: it prints how many packets it relayed, then exits.
      try {
        process.kill(old.pid, 'SIGTERM');
      } catch {
        // gone already
      }
      await Promise.race([old.exited, sleep(2000)]);
      if (!old.hasExited()) this.kill9(old);
      relayed = Number(/delay-relay: (\d+) sent/.exec(old.output())?.[1] ?? 0);
      await ip('route', 'replace', this.subnet, 'dev', 'eth0', 'proto', 'kernel', 'scope', 'link', 'src', n.ip);
      await ip('rule', 'del', 'fwmark', String(DELAY_MARK), 'table', String(DELAY_TABLE)).catch(() => '');
      await ip('link', 'del', DELAY_DEV).catch(() => '');
    }
    if (ms === 0) {
      if (old !== undefined) this.mark(`delay at ${n.name} removed (${relayed} packets relayed)`);
      return relayed;
    }
    const relay = await delayRelayBinary();
    await ip('tuntap', 'add', 'dev', DELAY_DEV, 'mode', 'tun');
    await ip('link', 'set', DELAY_DEV, 'up');
    await ip('route', 'replace', this.subnet, 'dev', 'eth0', 'src', n.ip, 'table', String(DELAY_TABLE));
    await ip('rule', 'add', 'fwmark', String(DELAY_MARK), 'table', String(DELAY_TABLE), 'pref', '100');
    const p = this.spawn(n, relay, [DELAY_DEV, String(ms), String(jitterMs), String(n.index + 1), String(DELAY_MARK)], { watch: ['delay-relay ready'], name: `delay@${n.name}` });
    for (let i = 0; i < 100 && !p.saw('delay-relay ready'); i++) {
      if (p.hasExited()) throw new Error(`delay relay in ${n.ns} exited: ${p.output()}`);
      await sleep(20);
    }
    if (!p.saw('delay-relay ready')) throw new Error(`delay relay in ${n.ns} not ready within 2 s: ${p.output()}`);
    this.delays.set(n.name, p);
    // Only now send the node's packets through it.
    await ip('route', 'replace', this.subnet, 'dev', DELAY_DEV, 'src', n.ip);
    this.mark(`delay ${ms} ± ${jitterMs} ms on what ${n.name} sends`);
    return relayed;
  }

  async tmpfs(name: string, sizeKiB: number): Promise<string> {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`tmpfs: name must be [a-z0-9-]+, got ${name}`);
    const dir = join(this.dir, name);
    mkdirSync(dir);
    await run('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(sizeKiB)}k`, `kodama-${name}`, dir]);
    this.mounts.push(dir);
    this.mark(`tmpfs ${name} (${sizeKiB} KiB) at ${dir}`);
    return dir;
  }

  async fillDisk(dir: string): Promise<number> {
    const fd = openSync(join(dir, '.filler'), 'a');
    let written = 0;
    try {
      const chunk = Buffer.alloc(4096, 0x2e);
      for (let i = 0; i < 1_000_000; i++) written += writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(fd);
    }
    this.mark(`disk at ${dir} filled (${written} bytes)`);
    return written;
  }

  async lossDropped(nodeOrName: NetNode | string): Promise<number> {
    const n = this.resolve(nodeOrName);
    if (this.firewall === 'iptables') {
      const out = await this.exec(n.ns, 'iptables', ['-w', '5', '-L', CHAIN_LOSS, '-v', '-x', '-n']);
      const first = out.split('\n').slice(2).find((l) => /^\s*\d+/.test(l));
      return Number(first?.trim().split(/\s+/)[0] ?? 0);
    }
    const out = await this.exec(n.ns, 'nft', ['list', 'chain', 'inet', 'kodama', 'loss']);
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  async udpSent(nodeOrName: NetNode | string): Promise<UdpCount> {
    const n = this.resolve(nodeOrName);
    if (this.firewall === 'iptables') {
      // -L -v -x: the first column is each rule's exact packet count (two header lines first).
      const out = await this.exec(n.ns, 'iptables', ['-w', '5', '-L', 'OUTPUT', '-v', '-x', '-n']);
      const sentLine = out.split('\n').find((l) => l.includes(CHAIN_COUNT));
      const sent = Number(sentLine?.trim().split(/\s+/)[0] ?? NaN);
      const cnt = await this.exec(n.ns, 'iptables', ['-w', '5', '-L', CHAIN_COUNT, '-v', '-x', '-n']);
      const toCut = cnt
        .split('\n')
        .slice(2)
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((f) => /^\d+$/.test(f))
        .reduce((s, f) => s + Number(f), 0);
      if (!Number.isFinite(sent)) throw new Error(`udpSent: no ${CHAIN_COUNT} counter in ${n.ns}:\n${out}`);
      return { sent, toCut };
    }
    const out = await this.exec(n.ns, 'nft', ['list', 'table', 'inet', 'kodama']);
    const chain = (name: string): string => {
      const m = new RegExp(`chain ${name} \\{([\\s\\S]*?)\\n\\s*\\}`).exec(out);
      return m?.[1] ?? '';
    };
    const sum = (text: string): number => [...text.matchAll(/counter packets (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
    return { sent: sum(chain('output')), toCut: sum(chain('count')) };
  }

  private signal(p: NsProc, sig: NodeJS.Signals): void {
    if (p.hasExited()) return;
    try {
      process.kill(-p.pid, sig);
    } catch {
      killQuietly(p.pid, sig);
    }
  }

  pause(p: NsProc): void {
    this.signal(p, 'SIGSTOP');
    this.mark(`SIGSTOP ${p.name}`);
  }

  resume(p: NsProc): void {
    this.signal(p, 'SIGCONT');
    this.mark(`SIGCONT ${p.name}`);
  }

  kill9(p: NsProc): void {
    if (!p.hasExited() && !this.destroyed) this.mark(`kill -9 ${p.name}`);
    this.signal(p, 'SIGCONT');
    this.signal(p, 'SIGKILL');
  }

  private closeForwarders(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const s of this.servers) s.close();
    this.servers.clear();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    const procs = [...this.procs];
    for (const p of procs) this.kill9(p);
    // Bounded: SIGKILL is not refusable, but do not hang a test run on a wedged child.
    await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(5000)]);
    this.destroySync();
  }

  /** Synchronous (usable in an 'exit' handler): kill, delete namespaces, remove the directory. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveNets.delete(this);
    this.closeForwarders();
    for (const p of this.procs) this.kill9(p);
    this.procs.clear();
    removeNamespacesSync(this.namespaces);
    for (const m of this.mounts) spawnSync('umount', ['-l', m], { timeout: EXEC_TIMEOUT_MS });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface CreateNetOptions {
  nodes: number;
  /** Node names (default n0, n1, …). */
  names?: string[];
}

/** Build a test network (see the top of this file). Throws when netnsAvailable() is not ok. */
export async function createNet(o: CreateNetOptions): Promise<Net> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 250) throw new Error(`createNet: nodes must be 1…250, got ${o.nodes}`);
  const names = o.names ?? Array.from({ length: o.nodes }, (_, i) => `n${i}`);
  if (names.length !== o.nodes || new Set(names).size !== names.length) throw new Error('createNet: names must be unique, one per node');
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(`createNet: ${avail.why ?? 'network namespaces unavailable'}`);
  const fw = pickFirewall();
  if (fw === null) throw new Error('createNet: no firewall tool');
  installHooks();
  sweepStale();
  const tag = randomBytes(3).toString('hex');
  const subnet = `10.${randomInt(16, 255)}.${randomInt(0, 256)}.0/24`;
  const net = new NetImpl(tag, subnet, fw, names, `${NS_PREFIX}${process.pid}-${tag}`);
  liveNets.add(net);
  try {
    await net.build();
  } catch (e) {
    net.destroySync();
    throw e;
  }
  return net;
}
