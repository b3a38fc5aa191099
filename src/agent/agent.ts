// The kodama agent: one process-level object that owns the sockets, the clock and the layers.
//
//   Agent.create(opts)   validate options; nothing is bound yet, so handlers can register
//   agent.on(...)        typed member events
//   await agent.start()  bind UDP+TCP (one port), start memberlist + Serf, open the RPC port
//   await agent.join([...])   push/pull with every address each name resolves to
//   await agent.leave()  Serf's graceful sequence (5.5), so peers record us *left*, not failed
//   await agent.stop()   close everything
//
// The protocol layers are sans-I/O; this file is where time (systemClock), randomness
// (cryptoRandom) and sockets come in.

import { availableParallelism, cpus } from 'node:os';
import type { MemberEvent } from '../memberlist/api.ts';
import { Memberlist, lanConfig, localConfig, wanConfig } from '../memberlist/index.ts';
import type { MemberlistConfig } from '../memberlist/index.ts';
import { startRpcServer } from '../rpc/index.ts';
import type { RpcBackend, RpcMember, RpcServer } from '../rpc/index.ts';
import { Serf } from '../serf/serf.ts';
import type { Member, MemberEventType, SerfEvent } from '../serf/serf.ts';
import type { Tags } from '../serf/tags.ts';
import { cryptoRandom, systemClock } from '../transport/clock.ts';
import { Driver } from '../transport/driver.ts';
import { listenNodeTransport } from '../transport/node-transport.ts';
import type { Transport } from '../transport/transport.ts';
import { Keyring, ipToBytes } from '../wire/index.ts';
import type { Address } from '../wire/types.ts';
import { DEFAULT_SERF_PORT, parseHostPort, pickAdvertiseIp, resolveJoinAddresses } from './address.ts';
import type { Lookup } from './address.ts';
import { Coalescer } from './coalesce.ts';
import { AgentError } from './errors.ts';
import { HandlerRunner, parseHandlerSpec } from './handlers.ts';
import type { HandlerEvent, HandlerRunnerOptions } from './handlers.ts';
import { loadKeyringFile } from './keyring-file.ts';
import { Logger } from './log.ts';
import { loadTagsFile, writeTagsFile } from './tags-file.ts';
import type { TimerHandle } from '../transport/transport.ts';
import type { LogLevel } from './log.ts';

export type Profile = 'lan' | 'wan' | 'local';

export interface AgentOptions {
  /** Unique node name (serf -node). */
  nodeName: string;
  /** `host:port` to bind UDP+TCP on; default 0.0.0.0:7946. Port 0 picks a free port. */
  bind?: string;
  /** `ip[:port]` to advertise; default: the bind address (a private IP if bound to 0.0.0.0). */
  advertise?: string;
  /** Base64 AES key (16, 24 or 32 bytes) shared by the cluster (serf -encrypt). */
  encrypt?: string;
  tags?: Tags;
  /** Serf protocol version 2..5 (default 5). */
  protocol?: number;
  profile?: Profile;
  /** RPC listen `host:port` (default 127.0.0.1:7373); null = no RPC. */
  rpcAddr?: string | null;
  rpcAuth?: string;
  logLevel?: LogLevel;
  /** Where log lines go (default stdout). */
  logSink?: (line: string) => void;
  /** How long leave waits for its intent to be gossiped (serf -broadcast-timeout, 5 s). */
  broadcastTimeoutMs?: number;
  /** How long leave stays up to answer probes after announcing (serf: 1 s). */
  leavePropagateDelayMs?: number;
  enableCompression?: boolean;
  /** Name resolver for join (tests inject one). */
  lookup?: Lookup;
  /** Event handler specs (`[filter=]script`, serf's -event-handler). */
  eventHandlers?: string[];
  /** serf -keyring-file: JSON list of base64 keys, rewritten on key changes. */
  keyringFile?: string;
  /** serf -tags-file: JSON object of tags, rewritten on tag changes. */
  tagsFile?: string;
  /** serf -snapshot: rejoin known members on restart without -join. */
  snapshotPath?: string;
  /** serf -rejoin: ignore a leave recorded in the snapshot. */
  rejoinAfterLeave?: boolean;
  reconnectIntervalMs?: number;
  reconnectTimeoutMs?: number;
  tombstoneTimeoutMs?: number;
  /** Per-run handler kill timeout (default 60 s; 0 = none, as serf). */
  handlerTimeoutMs?: number;
  /** Events queued per handler before the oldest is dropped (default 128). */
  handlerQueueDepth?: number;
  /** serf's coalescing of member / CC user events for handlers and RPC streams; 0 = off. */
  coalescePeriodMs?: number;
  quiescentPeriodMs?: number;
  /** serf's limits (bytes): query response 1024, query 1024, user event 512. */
  queryResponseSizeLimit?: number;
  querySizeLimit?: number;
  userEventSizeLimit?: number;
}

/** What SIGHUP (or an embedder) may change on a running agent. */
export interface ReloadOptions {
  logLevel?: LogLevel;
  eventHandlers?: string[];
  tags?: Tags;
}

export interface JoinResult {
  /** How many addresses answered the push/pull. */
  num: number;
  /** Why the others did not (resolution and join failures). */
  errors: string[];
}

export interface AgentEventMap {
  'member-join': SerfEvent;
  'member-leave': SerfEvent;
  'member-failed': SerfEvent;
  'member-update': SerfEvent;
  'member-reap': SerfEvent;
  /** Every member event, whatever its type. */
  member: SerfEvent;
  /** The agent stopped (after stop(), or after an RPC `leave`). */
  shutdown: undefined;
}

type Handler<K extends keyof AgentEventMap> = (e: AgentEventMap[K]) => void;

const DEFAULT_BIND = `0.0.0.0:${DEFAULT_SERF_PORT}`;
const DEFAULT_RPC_ADDR = '127.0.0.1:7373';
const LEAVE_POLL_MS = 20;
/** Drop warnings about one reason from one peer: at most one line per window. */
const DROP_LOG_WINDOW_MS = 10_000;

type AgentState = 'created' | 'starting' | 'running' | 'leaving' | 'stopped';

export class Agent {
  readonly logger: Logger;
  private readonly opts: AgentOptions;
  private readonly keyring: Keyring | null;
  private readonly bindHp: { host: string; port: number };
  private readonly protocol: number;
  private readonly handlers = new Map<keyof AgentEventMap, Set<(e: never) => void>>();
  private state: AgentState = 'created';
  private transport: Transport | undefined;
  private driver: Driver | undefined;
  private serf: Serf | undefined;
  private rpc: RpcServer | undefined;
  private mlConfig: MemberlistConfig | undefined;
  private readonly pendingJoins = new Map<number, (r: { joined: number; errors: string[] }) => void>();
  /** join-complete events that arrived before join() registered its waiter (same tick). */
  private readonly earlyJoins = new Map<number, { joined: number; errors: string[] }>();
  private leaveCompleteWaiter: (() => void) | undefined;
  private readonly dropped: Record<string, number> = {};
  private eventHandlerSpecs: string[];
  private tags: Tags;
  private runner: HandlerRunner | undefined;
  private readonly coalescer: Coalescer<HandlerEvent>;
  private coalesceTimer: TimerHandle | undefined;
  private coalesceTimerAtMs = Infinity;
  /** RPC `stream` subscribers: they get the coalesced events, as serf's agent streams them. */
  private readonly streamSinks = new Set<(e: HandlerEvent) => void>();

  private constructor(opts: AgentOptions) {
    this.opts = opts;
    this.logger = new Logger({ level: opts.logLevel ?? 'INFO', ...(opts.logSink ? { sink: opts.logSink } : {}) });
    if (opts.nodeName === '') throw new AgentError('ERR_AGENT_CONFIG', 'node name must not be empty');
    this.eventHandlerSpecs = [...(opts.eventHandlers ?? [])];
    this.protocol = opts.protocol ?? 5;
    this.coalescer = new Coalescer<HandlerEvent>({
      ...(opts.coalescePeriodMs !== undefined ? { coalescePeriodMs: opts.coalescePeriodMs, userCoalescePeriodMs: opts.coalescePeriodMs } : {}),
      ...(opts.quiescentPeriodMs !== undefined ? { quiescentPeriodMs: opts.quiescentPeriodMs, userQuiescentPeriodMs: opts.quiescentPeriodMs } : {}),
    });
    if (!Number.isInteger(this.protocol) || this.protocol < 2 || this.protocol > 5) {
      throw new AgentError('ERR_AGENT_CONFIG', `Serf protocol version ${this.protocol} is not supported (2..5)`);
    }
    this.bindHp = parseHostPort(opts.bind ?? DEFAULT_BIND, DEFAULT_SERF_PORT);
    // Parse now: a bad spec fails create(), as serf refuses to start on it.
    for (const h of this.eventHandlerSpecs) parseHandlerSpec(h);
    this.tags = { ...(opts.tags ?? {}) };
    if (opts.tagsFile !== undefined && opts.tagsFile !== '') {
      const restored = loadTagsFile(opts.tagsFile, opts.tags ?? {});
      if (Object.keys(restored).length > 0) {
        this.tags = restored;
        this.logger.log('INFO', `agent: Restored ${Object.keys(restored).length} tag(s) from ${opts.tagsFile}`);
      }
    }
    if (opts.keyringFile !== undefined && opts.keyringFile !== '') {
      this.keyring = loadKeyringFile(opts.keyringFile, opts.encrypt);
    } else if (opts.encrypt !== undefined && opts.encrypt !== '') {
      try {
        this.keyring = Keyring.fromBase64([opts.encrypt]);
      } catch (e) {
        throw new AgentError('ERR_AGENT_CONFIG', `Invalid encryption key: ${(e as Error).message}`);
      }
    } else {
      this.keyring = null;
    }
  }

  /** Validate options; binds nothing. Register handlers, then start(). */
  static create(opts: AgentOptions): Agent {
    return new Agent(opts);
  }

  on<K extends keyof AgentEventMap>(type: K, fn: Handler<K>): () => void {
    let set = this.handlers.get(type);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(fn as (e: never) => void);
    return () => set.delete(fn as (e: never) => void);
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  /** The gossip address actually bound (port 0 resolved). */
  get bindAddress(): Address {
    if (this.transport === undefined) throw new AgentError('ERR_AGENT_STATE', 'agent not started');
    return this.transport.localAddress;
  }

  get advertiseAddress(): Address {
    if (this.mlConfig === undefined) throw new AgentError('ERR_AGENT_STATE', 'agent not started');
    return this.mlConfig.advertise;
  }

  /** The RPC address actually bound, or undefined without RPC. */
  get rpcAddress(): { host: string; port: number } | undefined {
    return this.rpc?.address;
  }

  get encrypted(): boolean {
    return this.keyring !== null;
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new AgentError('ERR_AGENT_STATE', `cannot start an agent that is ${this.state}`);
    this.state = 'starting';
    try {
      this.transport = await listenNodeTransport({ ip: this.bindHp.host, port: this.bindHp.port });
    } catch (e) {
      this.state = 'stopped';
      throw new AgentError('ERR_AGENT_BIND', `Failed to bind ${this.bindHp.host}:${this.bindHp.port}: ${(e as Error).message}`);
    }
    const bound = this.transport.localAddress;
    let advertise: Address = { ip: pickAdvertiseIp(bound.ip), port: bound.port };
    if (this.opts.advertise !== undefined && this.opts.advertise !== '') {
      const hp = parseHostPort(this.opts.advertise, bound.port);
      advertise = { ip: hp.host, port: hp.port };
    }
    const profile = this.opts.profile ?? 'lan';
    const base = profile === 'wan' ? wanConfig : profile === 'local' ? localConfig : lanConfig;
    const ml = base(this.opts.nodeName, advertise);
    ml.keyring = this.keyring;
    ml.enableCompression = this.opts.enableCompression ?? true;
    // Serf maps every Serf protocol to memberlist protocol 2; the Serf version rides in Vsn.
    ml.delegateVersions = { min: 2, max: 5, cur: this.protocol };
    this.mlConfig = ml;

    const serf = new Serf({
      nodeName: this.opts.nodeName,
      tags: this.tags,
      protocolVersion: this.protocol,
      retransmitMult: ml.retransmitMult,
      // The core's gossip.ts puts memberlist's 08 in front of delegate broadcasts itself
      // (as Go's memberlist does), although api.ts says the delegate does.
      prefixBroadcasts: false,
      // Undecodable Serf messages arrive as fast as anyone sends them: one line per window.
      log: (level, msg) =>
        msg.startsWith('serf: Failed to decode')
          ? this.logger.logLimited('serf-decode', DROP_LOG_WINDOW_MS, level, msg)
          : this.logger.log(level, msg),
    });
    this.serf = serf;
    const core = new Memberlist(ml, serf, cryptoRandom);
    this.driver = new Driver(core, this.transport, systemClock, (e) => this.onCoreEvent(e));
    this.runner = new HandlerRunner(this.runnerOptions());
    this.driver.start();
    this.ensureLocalMember();

    const rpcAddr = this.opts.rpcAddr === undefined ? DEFAULT_RPC_ADDR : this.opts.rpcAddr;
    if (rpcAddr !== null) {
      const hp = parseHostPort(rpcAddr, 7373);
      try {
        this.rpc = await startRpcServer(hp, this.rpcBackend(), {
          ...(this.opts.rpcAuth ? { authKey: this.opts.rpcAuth } : {}),
          log: (level, msg) => this.logger.log(level, msg),
        });
      } catch (e) {
        this.driver.stop();
        this.state = 'stopped';
        throw new AgentError('ERR_AGENT_BIND', `Failed to start the RPC listener on ${rpcAddr}: ${(e as Error).message}`);
      }
    }
    this.state = 'running';
  }

  /**
   * Join the cluster through `targets` (`host`, `host:port`, DNS names: every address they
   * resolve to). Resolves with how many answered; never rejects for network reasons.
   */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- replay is honoured once user events land
  async join(targets: string[], replay = false): Promise<JoinResult> {
    if (this.state !== 'running' || this.driver === undefined) {
      throw new AgentError('ERR_AGENT_STATE', "Serf can't Join after Leave or Shutdown");
    }
    const { addrs, errors } = await resolveJoinAddresses(targets, this.opts.lookup);
    if (addrs.length === 0) {
      this.logJoinFailure(errors);
      return { num: 0, errors };
    }
    this.logger.log('INFO', `agent: joining: ${targets.join(', ')} (${addrs.map(fmtAddr).join(', ')})`);
    const driver = this.driver;
    const result = await new Promise<{ joined: number; errors: string[] }>((resolve) => {
      const id = driver.join(addrs);
      const early = this.earlyJoins.get(id);
      if (early !== undefined) {
        this.earlyJoins.delete(id);
        resolve(early);
      } else {
        this.pendingJoins.set(id, resolve);
      }
    });
    const all = [...errors, ...result.errors];
    if (result.joined === 0) this.logJoinFailure(all);
    else {
      this.logger.log('INFO', `agent: joined: ${result.joined} nodes`);
      for (const err of all) this.logger.log('WARN', `agent: ${err}`);
    }
    return { num: result.joined, errors: all };
  }

  /** Serf's graceful leave: intent, wait for its broadcast, memberlist leave, propagate delay. */
  async leave(): Promise<void> {
    if (this.state !== 'running' || this.serf === undefined || this.driver === undefined) {
      if (this.state === 'leaving') throw new AgentError('ERR_AGENT_STATE', 'Leave already in progress');
      return;
    }
    this.state = 'leaving';
    const serf = this.serf;
    const driver = this.driver;
    const broadcastTimeoutMs = this.opts.broadcastTimeoutMs ?? 5000;
    this.logger.log('INFO', 'agent: requesting graceful leave from Serf');
    serf.leave(systemClock.now());
    this.sendLeaveIntentDirectly();
    const deadline = Date.now() + broadcastTimeoutMs;
    while (!serf.leaveBroadcastDone() && Date.now() < deadline) await sleep(LEAVE_POLL_MS);
    if (!serf.leaveBroadcastDone()) this.logger.log('WARN', 'serf: timeout while waiting for graceful leave');
    // Once more: UDP may have lost the first copy, and peers may have joined meanwhile.
    this.sendLeaveIntentDirectly();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.leaveCompleteWaiter = undefined;
        this.logger.log('WARN', 'memberlist: timeout waiting for leave broadcast');
        resolve();
      }, broadcastTimeoutMs + 1000);
      this.leaveCompleteWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
      driver.leave(broadcastTimeoutMs);
    });
    // Stay up so peers probing us before they hear the news still get answers.
    await sleep(this.opts.leavePropagateDelayMs ?? 1000);
    serf.markLeft();
    this.logger.log('INFO', 'agent: graceful leave complete');
  }

  /** Best effort on top of gossip: see Serf.leaveIntent(). */
  private sendLeaveIntentDirectly(): void {
    const intent = this.serf?.leaveIntent();
    if (intent === undefined || this.driver === undefined) return;
    for (const to of intent.to) this.driver.sendUserPacket(to, intent.payload);
  }

  /** Close sockets and stop timers. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.serf?.shutdown();
    this.coalesceTimer?.cancel();
    this.coalesceTimer = undefined;
    await this.runner?.close();
    const driver = this.driver;
    await new Promise<void>((resolve) => {
      if (driver === undefined) resolve();
      else driver.stop(resolve);
    });
    await this.rpc?.close();
    for (const [, resolve] of this.pendingJoins) resolve({ joined: 0, errors: ['agent stopped'] });
    this.pendingJoins.clear();
    this.logger.log('INFO', 'agent: shutdown complete');
    this.emit('shutdown', undefined);
  }

  /** Every member Serf knows. */
  members(): Member[] {
    return this.serf?.members() ?? [];
  }

  /** Replace our tags and gossip them (a new incarnation of our alive message). */
  setTags(tags: Tags): void {
    if (this.serf === undefined || this.driver === undefined) throw new AgentError('ERR_AGENT_STATE', 'agent not started');
    this.serf.setTags(tags);
    this.tags = { ...tags };
    this.driver.updateMeta();
    if (this.opts.tagsFile !== undefined && this.opts.tagsFile !== '') writeTagsFile(this.opts.tagsFile, tags);
  }

  /** Apply a configuration reload (serf's handleReload): log level, handlers, tags. */
  reload(r: ReloadOptions): void {
    if (r.logLevel !== undefined) this.logger.setLevel(r.logLevel);
    if (r.eventHandlers !== undefined) {
      this.runner?.reload(r.eventHandlers); // parses first: a bad spec throws and changes nothing
      this.eventHandlerSpecs = [...r.eventHandlers];
    }
    if (r.tags !== undefined && this.serf !== undefined) this.setTags(r.tags);
    this.logger.log('INFO', 'agent: configuration reloaded');
  }

  /** Counters of dropped input by reason (transport, core, Serf), for stats and tests. */
  droppedCounters(): Record<string, number> {
    const out: Record<string, number> = { ...this.dropped };
    for (const [k, v] of Object.entries(this.serf?.counters() ?? {})) {
      if (k.startsWith('serf.dropped.')) out[k] = v;
    }
    return out;
  }

  /** serf `stats` (6.6) plus kodama's `dropped` and `memberlist` counter sections. */
  stats(): Record<string, Record<string, string>> {
    const serf = this.serf;
    const driver = this.driver;
    const core = driver?.withCore((c) => ({ health: c.healthScore(), counters: c.counters() }));
    const dropped = this.droppedCounters();
    let total = 0;
    for (const v of Object.values(dropped)) total += v;
    const strs = (r: Record<string, number>): Record<string, string> =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));
    return {
      agent: { name: this.opts.nodeName },
      runtime: {
        os: process.platform,
        arch: process.arch,
        version: process.version,
        max_procs: String(availableParallelism()),
        goroutines: '0',
        cpu_count: String(cpus().length),
      },
      serf: {
        ...(serf?.stats() ?? {}),
        health_score: String(core?.health ?? 0),
        encrypted: String(this.keyring !== null),
      },
      tags: serf?.localTags() ?? {},
      event_handlers: Object.fromEntries((this.runner?.specs() ?? []).map((h) => [h.script, h.filters.map((f) => (f.name === '' ? f.event : `${f.event}:${f.name}`)).join(',')])),
      handlers: strs({ ...(this.runner?.counters() ?? {}) }),
      dropped: { total: String(total), ...strs(dropped) },
      memberlist: strs(core?.counters ?? {}),
      serf_counters: strs(serf?.counters() ?? {}),
      rpc: strs(this.rpc?.counters() ?? {}),
    };
  }

  // ---- internals --------------------------------------------------------------------------

  private rpcBackend(): RpcBackend {
    return {
      members: () => this.members().map(toRpcMember),
      join: async (addrs) => {
        const r = await this.join(addrs);
        return { num: r.num, error: r.num === 0 || r.errors.length > 0 ? r.errors.join('; ') : '' };
      },
      leave: async () => {
        await this.leave();
        // The RPC reply goes out first; then the agent shuts down, as serf's does.
        setTimeout(() => {
          void this.stop();
        }, 50);
      },
      stats: () => this.stats(),
      setTags: async (tags, deleteTags) => {
        const next = { ...(this.serf?.localTags() ?? {}) };
        for (const k of deleteTags) delete next[k];
        Object.assign(next, tags);
        this.setTags(next);
      },
      subscribeEvents: (sink) => {
        const fn = (e: HandlerEvent): void => {
          if (e.type === 'query' || e.type === 'user') return; // wired with the Serf event API
          sink({ type: e.type, members: e.members.map((m) => toRpcMember(m as Member)) });
        };
        this.streamSinks.add(fn);
        return () => this.streamSinks.delete(fn);
      },
      subscribeLogs: (sink) => this.logger.subscribe(sink),
    };
  }

  private onCoreEvent(e: MemberEvent): void {
    const serf = this.serf;
    if (serf === undefined) return;
    serf.handleMemberEvent(e, systemClock.now());
    switch (e.type) {
      case 'join-complete': {
        const waiter = this.pendingJoins.get(e.joinId);
        const r = { joined: e.joined, errors: e.errors };
        if (waiter !== undefined) {
          this.pendingJoins.delete(e.joinId);
          waiter(r);
        } else {
          this.earlyJoins.set(e.joinId, r);
        }
        break;
      }
      case 'leave-complete':
        this.leaveCompleteWaiter?.();
        this.leaveCompleteWaiter = undefined;
        break;
      case 'dropped':
        this.onDropped(e.reason, e.from, e.detail);
        break;
      default:
        break;
    }
    for (let ev = serf.pollEvent(), i = 0; ev !== undefined && i < 10_000; ev = serf.pollEvent(), i++) {
      this.emit(ev.type, ev);
      this.emit('member', ev);
      this.coalescer.handle(ev, systemClock.now());
    }
    this.pumpCoalescer();
  }

  /** Coalesced events go to handlers and RPC streams; re-arm the flush timer. */
  private pumpCoalescer(): void {
    const now = systemClock.now();
    this.coalescer.handleTimeout(now);
    for (let e = this.coalescer.pollEvent(), i = 0; e !== undefined && i < 100_000; e = this.coalescer.pollEvent(), i++) {
      this.runner?.handle(e);
      for (const sink of [...this.streamSinks]) {
        try {
          sink(e);
        } catch {
          this.streamSinks.delete(sink); // a broken RPC connection must not break the agent
        }
      }
    }
    const at = this.coalescer.pollTimeout();
    if (at === undefined || this.state === 'stopped') return;
    if (this.coalesceTimer !== undefined && this.coalesceTimerAtMs <= at) return;
    this.coalesceTimer?.cancel();
    this.coalesceTimerAtMs = at;
    this.coalesceTimer = systemClock.setTimer(at, () => {
      this.coalesceTimer = undefined;
      this.coalesceTimerAtMs = Infinity;
      this.pumpCoalescer();
    });
  }

  private runnerOptions(): HandlerRunnerOptions {
    return {
      handlers: this.eventHandlerSpecs,
      self: () => ({ name: this.opts.nodeName, tags: this.serf?.localTags() ?? this.tags }),
      ...(this.opts.handlerTimeoutMs !== undefined ? { timeoutMs: this.opts.handlerTimeoutMs } : {}),
      ...(this.opts.handlerQueueDepth !== undefined ? { queueDepth: this.opts.handlerQueueDepth } : {}),
      log: (level, msg) => this.logger.log(level, msg),
      nowMs: () => systemClock.now(),
    };
  }

  private onDropped(reason: string, from: Address | undefined, detail: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    const who = from === undefined ? '' : ` from ${fmtAddr(from)}`;
    if (/decrypt|encrypt|not-encrypted|key/i.test(reason + ' ' + detail)) {
      const hint = this.keyring === null
        ? "the sender encrypts: start with -encrypt <the cluster's key>"
        : "check that -encrypt matches the cluster's key";
      this.logger.logLimited(
        `${reason}|${from?.ip ?? ''}`,
        DROP_LOG_WINDOW_MS,
        'WARN',
        `memberlist: dropped input${who}: ${detail} (${reason}); ${hint}`,
      );
    } else {
      this.logger.logLimited(`${reason}|${from?.ip ?? ''}`, DROP_LOG_WINDOW_MS, 'DEBUG', `memberlist: dropped input${who}: ${detail} (${reason})`);
    }
  }

  private logJoinFailure(errors: string[]): void {
    for (const err of errors) this.logger.log('ERR', `agent: ${err}`);
    const hint = this.keyring === null
      ? 'if the cluster is encrypted, start with -encrypt <its key>'
      : "check that -encrypt matches the cluster's key";
    this.logger.log('ERR', `agent: Failed to join any node: ${errors.length} error(s); ${hint}`);
  }

  /** Serf counts itself as a member; if the core did not announce us, do it from localNode(). */
  private ensureLocalMember(): void {
    const serf = this.serf;
    const driver = this.driver;
    if (serf === undefined || driver === undefined || serf.localMember() !== undefined) return;
    const self = driver.withCore((c) => c.localNode());
    this.onCoreEvent({ type: 'join', node: self });
  }

  private emit<K extends keyof AgentEventMap>(type: K, e: AgentEventMap[K]): void {
    const set = this.handlers.get(type);
    if (set === undefined) return;
    for (const fn of [...set]) {
      try {
        (fn as Handler<K>)(e);
      } catch (err) {
        // A user handler must not break the agent's event loop.
        this.logger.log('ERR', `agent: event handler for ${type} threw: ${(err as Error).message}`);
      }
    }
  }
}

export function toRpcMember(m: Member): RpcMember {
  return {
    name: m.name,
    addr: ipToBytes(m.addr.ip),
    port: m.addr.port,
    tags: { ...m.tags },
    status: m.status,
    protocolMin: m.protocolMin,
    protocolMax: m.protocolMax,
    protocolCur: m.protocolCur,
    delegateMin: m.delegateMin,
    delegateMax: m.delegateMax,
    delegateCur: m.delegateCur,
  };
}

function fmtAddr(a: Address): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { Member, MemberEventType, SerfEvent };
