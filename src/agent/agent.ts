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
// (systemRandom) and sockets come in.

import { joinAdvice, listenAdvice } from './join-advice.ts';
import type { Delegate, MemberEvent } from '../memberlist/api.ts';
import { Memberlist, lanConfig, localConfig, wanConfig } from '../memberlist/index.ts';
import type { MemberlistConfig } from '../memberlist/index.ts';
import { startRpcServer } from '../rpc/index.ts';
import type { RpcBackend, RpcKeyResponse, RpcMember, RpcQueryParams, RpcServer } from '../rpc/index.ts';
import { distanceMs } from '../serf/coordinate.ts';
import { Histogram, RTT_BUCKETS_S } from './histogram.ts';
import { Serf } from '../serf/serf.ts';
import type { KeyResult, Member, MemberEventType, QueryEvent, QueryParams, SerfAnyEvent, SerfEvent, UserEvent } from '../serf/serf.ts';
import type { Tags } from '../serf/tags.ts';
import { systemRandom, systemClock } from '../transport/clock.ts';
import { Driver } from '../transport/driver.ts';
import { carryOutSerfOutputs } from '../transport/serf-outputs.ts';
import { listenNodeTransport } from '../transport/node-transport.ts';
import type { Transport } from '../transport/transport.ts';
import { Keyring, ipToBytes } from '../wire/index.ts';
import { nodeOs } from '../wire/builtins.ts';
import type { Address } from '../wire/types.ts';
import { DEFAULT_SERF_PORT, parseHostPort, pickAdvertiseIp, resolveJoinAddresses } from './address.ts';
import { Coalescer } from './coalesce.ts';
import { AgentError } from './errors.ts';
import { HandlerRunner, parseHandlerSpec } from './handlers.ts';
import type { HandlerEvent, HandlerRunnerOptions } from './handlers.ts';
import { loadKeyringFile, writeKeyringFile } from './keyring-file.ts';
import { Snapshotter } from './snapshot.ts';
import { Logger } from './log.ts';
import { loadTagsFile, writeTagsFile } from './tags-file.ts';
import type { TimerHandle } from '../transport/transport.ts';
import type { LogLevel } from './log.ts';
import type { ServiceStatus } from '../discovery/services.ts';
import type { LocalServices } from '../discovery/local-services.ts';
import type { BalancerRole } from '../discovery/balancer-role.ts';
import type { LocalChecks } from '../checks/local.ts';
import type { MonitorRole } from '../checks/monitor-role.ts';
import type { CheckRecord, CheckStatus } from '../checks/types.ts';
import type { RouteTable } from '../deploy/route.ts';
import type { Routes } from '../deploy/routes.ts';
import type { RouteEntry, RouteSetting } from '../deploy/types.ts';
import type { DeployRunner } from '../deploy/runner.ts';
import type { HttpApi } from '../http/server.ts';
import { INTERNAL_QUERY_MATCH_TAGS, isInternalName, withInternalFilter } from './internal.ts';
import type { AgentEventMap, AgentHost, AgentQuery, CallHandler, JoinResult, OwnedTags, QueryOptions, QueryResult, Subsystem } from './host.ts';
import type { AgentOptions } from './options.ts';
import { DEFAULT_LEAVE_DRAIN_MS, SUBSYSTEMS, reservedTagKeys } from './subsystems.ts';

export type { AgentEventMap, AgentHost, AgentQuery, CallHandler, JoinResult, QueryOptions, QueryResult } from './host.ts';
export type { AgentOptions, Profile } from './options.ts';

export { DEFAULT_LEAVE_DRAIN_MS };

/** What SIGHUP (or an embedder) may change on a running agent. */
export interface ReloadOptions {
  logLevel?: LogLevel;
  eventHandlers?: string[];
  tags?: Tags;
  /**
   * The config sections subsystems read, as the reloaded configuration has them (a key absent:
   * none configured). Services, checks and monitoring change in place (what stays the same keeps
   * its state); the balancer and containers sections, read only at start, are compared and a
   * change logged as needing a restart. The metrics settings (absent: unchanged) likewise.
   */
  sections?: Pick<AgentOptions, 'services' | 'checks' | 'monitoring' | 'balancer' | 'containers' | 'metricsIntervalMs' | 'metricsHistoryMs'>;
}

/** What a deploy.* op says on an agent started without a data dir. */
export const NO_DEPLOY_STATE = 'this agent keeps no deploy state: start it with -data-dir <dir>';

type Handler<K extends keyof AgentEventMap> = (e: AgentEventMap[K]) => void;

const DEFAULT_BIND = `0.0.0.0:${DEFAULT_SERF_PORT}`;
const DEFAULT_RPC_ADDR = '127.0.0.1:7373';
const LEAVE_POLL_MS = 20;
/** Drop warnings about one reason from one peer: at most one line per window. */
const DROP_LOG_WINDOW_MS = 10_000;

type AgentState = 'created' | 'starting' | 'running' | 'leaving' | 'stopped';

export class Agent implements AgentHost {
  readonly logger: Logger;
  private opts: AgentOptions;
  private reloading: Promise<void> = Promise.resolve();
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
  /** The user's tags (config, RPC, reload), without the keys the agent's subsystems own. */
  private tags: Tags;
  /** Tag keys the agent sets itself (services' `s:*`, `chk`, `mon`, `lb`): never the user's. */
  private readonly managedTagKeys: string[];
  /** Tags the options fix (`mon`, `lb`): carried from the first alive message on. */
  private readonly staticTags: Tags;
  /** setTags() applies the tags itself once; subsystems' owned-tag updates must not in between. */
  private inSetTags = false;
  private runner: HandlerRunner | undefined;
  private readonly coalescer: Coalescer<HandlerEvent>;
  private coalesceTimer: TimerHandle | undefined;
  private coalesceTimerAtMs = Infinity;
  /** RPC `stream` subscribers: they get the coalesced events, as serf's agent streams them. */
  private readonly streamSinks = new Set<(e: HandlerEvent) => void>();
  private snapshot: Snapshotter | undefined;
  private snapshotTicker: NodeJS.Timeout | undefined;
  private serfTimer: TimerHandle | undefined;
  private serfTimerAtMs = Infinity;
  private pumpQueued = false;
  /** Join ids of Serf's reconnect attempts: their completions are not anyone's join() result. */
  private readonly reconnectJoins = new Set<number>();
  private readonly openQueries = new Map<number, { ack(from: string): void; response(from: string, p: Uint8Array): void; done(): void }>();
  private readonly keyOps = new Map<number, (r: KeyResult) => void>();
  private readonly calls = new Map<string, CallHandler>();
  private readonly callCounts = { calls: 0, call_errors: 0, unknown_ops: 0 };
  /** Subsystems started from the options (src/agent/subsystems.ts), in start order. */
  private readonly started = new Map<string, Subsystem>();
  private readonly statsSources = new Set<() => Record<string, Record<string, string>>>();
  private readonly queryAnswerers = new Map<string, (q: AgentQuery) => void>();
  /** Tag keys claimed by ownTags(), and their current values. */
  private readonly claimedTagKeys = new Set<string>();
  private readonly owned = new Map<string, string>();
  private routesHandle: Routes | undefined;

  private constructor(opts: AgentOptions) {
    this.opts = opts;
    this.logger = new Logger({
      level: opts.logLevel ?? 'INFO',
      ...(opts.logSink ? { sink: opts.logSink } : {}),
      ...(opts.logRecordSink ? { recordSink: opts.logRecordSink } : {}),
    });
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
    // Embedders may build specs by hand: refuse what could not be served, before binding.
    for (const sub of SUBSYSTEMS) sub.validate?.(opts);
    this.managedTagKeys = reservedTagKeys(opts);
    this.staticTags = Object.assign({}, ...SUBSYSTEMS.filter((sub) => sub.wanted(opts)).map((sub) => sub.staticTags?.(opts) ?? {})) as Tags;
    this.tags = this.userTags(opts.tags ?? {});
    if (opts.tagsFile !== undefined && opts.tagsFile !== '') {
      const restored = loadTagsFile(opts.tagsFile, opts.tags ?? {});
      if (Object.keys(restored).length > 0) {
        // A stale `s:web` in the file must not advertise the service before its checks pass.
        this.tags = this.userTags(restored);
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

  /** Whether gossip is encrypted (a keyring is in use): exec refuses to run otherwise. */
  isEncrypted(): boolean {
    return this.keyring !== null;
  }

  /** Where deploys persist (AgentOptions.dataDir), or undefined. */
  get dataDir(): string | undefined {
    return this.opts.dataDir;
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new AgentError('ERR_AGENT_STATE', `cannot start an agent that is ${this.state}`);
    this.state = 'starting';
    try {
      this.transport = await listenNodeTransport({ ip: this.bindHp.host, port: this.bindHp.port });
    } catch (e) {
      this.state = 'stopped';
      const msg = (e as Error).message;
      throw new AgentError('ERR_AGENT_BIND', `Failed to bind ${this.bindHp.host}:${this.bindHp.port}: ${msg}${listenAdvice(msg, '-bind', this.bindHp.host, this.bindHp.port)}`);
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

    // Early subsystems (routes, services, checks) before membership: their tags ride in the
    // first alive message (services without checks are healthy from the start).
    for (const sub of SUBSYSTEMS) {
      if (!sub.wanted(this.opts)) sub.absent?.(this);
    }
    for (const sub of SUBSYSTEMS) {
      if (sub.early !== true || !sub.wanted(this.opts)) continue;
      try {
        this.started.set(sub.name, await sub.start(this, this.opts));
      } catch (e) {
        await this.stopSubsystems();
        this.transport.close();
        this.state = 'stopped';
        throw new AgentError(sub.failure.code, `${sub.failure.what(this.opts)}: ${(e as Error).message}`);
      }
    }

    const serf = new Serf({
      nodeName: this.opts.nodeName,
      tags: this.effectiveTags(),
      protocolVersion: this.protocol,
      retransmitMult: ml.retransmitMult,
      // The core's gossip.ts puts memberlist's 08 in front of delegate broadcasts itself
      // (as Go's memberlist does), although api.ts says the delegate does.
      prefixBroadcasts: false,
      random: systemRandom,
      keyring: this.keyring,
      advertise,
      gossipIntervalMs: ml.gossipIntervalMs,
      userEventSizeLimit: this.opts.userEventSizeLimit ?? 512,
      querySizeLimit: this.opts.querySizeLimit ?? 1024,
      queryResponseSizeLimit: this.opts.queryResponseSizeLimit ?? 1024,
      broadcastTimeoutMs: this.opts.broadcastTimeoutMs ?? 5000,
      enableNameConflictResolution: true,
      ...(this.opts.disableCoordinates === true ? { disableCoordinates: true } : {}),
      queryFilterTags: INTERNAL_QUERY_MATCH_TAGS,
      healIntervalMs: this.opts.healIntervalMs ?? ml.probeIntervalMs,
      // News this node starts goes at once to as many peers as memberlist forwards fresh news to.
      eagerGossipNodes: ml.eagerGossipNodes,
      ownNewsDirectMax: ml.ownNewsDirectMax,
      ...(this.opts.reconnectIntervalMs !== undefined ? { reconnectIntervalMs: this.opts.reconnectIntervalMs } : {}),
      ...(this.opts.reconnectTimeoutMs !== undefined ? { reconnectTimeoutMs: this.opts.reconnectTimeoutMs } : {}),
      ...(this.opts.tombstoneTimeoutMs !== undefined ? { tombstoneTimeoutMs: this.opts.tombstoneTimeoutMs } : {}),
      ...(this.opts.maxQueueDepth !== undefined ? { maxQueueDepth: this.opts.maxQueueDepth } : {}),
      ...(this.opts.minQueueDepth !== undefined ? { minQueueDepth: this.opts.minQueueDepth } : {}),
      // Undecodable Serf messages arrive as fast as anyone sends them: one line per window.
      log: (level, msg) =>
        msg.startsWith('serf: Failed to decode')
          ? this.logger.logLimited('serf-decode', DROP_LOG_WINDOW_MS, level, msg)
          : this.logger.log(level, msg),
    });
    this.serf = serf;
    if (this.opts.snapshotPath !== undefined && this.opts.snapshotPath !== '') {
      try {
        this.snapshot = new Snapshotter(this.opts.snapshotPath, {
          rejoinAfterLeave: this.opts.rejoinAfterLeave ?? false,
          log: (level, msg) => this.logger.log(level, msg),
        });
      } catch (e) {
        this.transport.close();
        this.state = 'stopped';
        throw new AgentError('ERR_AGENT_CONFIG', `Failed to open snapshot: ${(e as Error).message}`);
      }
      serf.restoreClocks(this.snapshot.clocks());
      const snap = this.snapshot;
      this.snapshotTicker = setInterval(() => snap.tick(serf.clock.time()), 500);
      this.snapshotTicker.unref();
    }
    // Serf's own work (user events, queries, intents arriving in packets) happens inside core
    // callbacks; pump Serf's outputs and events right after, outside the core's call stack.
    const delegate: Delegate = {
      nodeMeta: (limit) => serf.nodeMeta(limit),
      notifyMsg: (payload, now) => {
        serf.notifyMsg(payload, now);
        this.schedulePump();
      },
      getBroadcasts: (overhead, limit) => serf.getBroadcasts(overhead, limit),
      hasBroadcasts: () => serf.hasBroadcasts(),
      localState: (join) => serf.localState(join),
      mergeRemoteState: (state, join, now) => {
        serf.mergeRemoteState(state, join, now);
        this.schedulePump();
      },
      ackPayload: () => serf.ackPayload(),
      notifyPingComplete: (node, rttMs, payload) => {
        this.probeRtt.observe(rttMs / 1000);
        serf.notifyPingComplete(node, rttMs, payload);
      },
    };
    const core = new Memberlist(ml, delegate, systemRandom);
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
        const msg = (e as Error).message;
        throw new AgentError('ERR_AGENT_BIND', `Failed to start the RPC listener on ${rpcAddr}: ${msg}${listenAdvice(msg, '-rpc-addr', hp.host, hp.port)}`);
      }
    }
    this.state = 'running';
    this.pumpSerf();
    for (const sub of this.started.values()) sub.run?.(this.tags);
    for (const sub of SUBSYSTEMS) {
      if (sub.early === true || !sub.wanted(this.opts)) continue;
      try {
        const started = await sub.start(this, this.opts);
        this.started.set(sub.name, started);
        started.run?.(this.tags);
      } catch (e) {
        await this.stop();
        if (sub.failure.keepAgentErrors === true && e instanceof AgentError) throw e;
        throw new AgentError(sub.failure.code, `${sub.failure.what(this.opts)}: ${(e as Error).message}`);
      }
    }
    const previous = this.snapshot?.previousNodes(this.opts.nodeName) ?? [];
    if (previous.length > 0) void this.rejoinPrevious(previous);
  }

  /** The deploy coordinator of this agent (AgentOptions.dataDir), once started. */
  get deploys(): DeployRunner | undefined {
    return this.started.get('deploys') as DeployRunner | undefined;
  }

  /** The HTTP API and dashboard (AgentOptions.httpAddr), once started. */
  get http(): HttpApi | undefined {
    return this.started.get('http') as HttpApi | undefined;
  }

  /** Whether this node runs `kodama exec` commands (AgentOptions.exec enabled). */
  get execEnabled(): boolean {
    return this.opts.exec?.enabled === true;
  }

  /** serf's handleRejoin: try the snapshot's alive nodes one at a time until one answers. */
  private async rejoinPrevious(nodes: { name: string; addr: string }[]): Promise<void> {
    for (const n of nodes) {
      if (this.state !== 'running') return;
      this.logger.log('INFO', `serf: Attempting re-join to previously known node: ${n.name}: ${n.addr}`);
      const r = await this.join([n.addr]).catch(() => ({ num: 0, errors: [] }));
      if (r.num > 0) {
        this.logger.log('INFO', `serf: Re-joined to previously known node: ${n.name}: ${n.addr}`);
        return;
      }
    }
    this.logger.log('WARN', 'serf: Failed to re-join any previously known node');
  }

  /**
   * Join the cluster through `targets` (`host`, `host:port`, DNS names: every address they
   * resolve to). Resolves with how many answered; never rejects for network reasons.
   */
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
    this.serf?.prepareJoin(replay);
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
    const r = { num: result.joined, errors: all };
    if (r.num > 0) this.emit('joined', r);
    return r;
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
    for (const sub of this.started.values()) {
      if (sub.beforeLeave === undefined) continue;
      await sub.beforeLeave();
      if ((this.state as AgentState) !== 'leaving') return; // stopped meanwhile
    }
    this.logger.log('INFO', 'agent: requesting graceful leave from Serf');
    this.snapshot?.leave();
    serf.leave(systemClock.now());
    this.pumpSerf();
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
    await this.stopSubsystems();
    this.serf?.shutdown();
    this.coalesceTimer?.cancel();
    this.coalesceTimer = undefined;
    this.serfTimer?.cancel();
    this.serfTimer = undefined;
    if (this.snapshotTicker !== undefined) clearInterval(this.snapshotTicker);
    this.snapshot?.close();
    for (const [, q] of this.openQueries) q.done();
    this.openQueries.clear();
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

  /**
   * In reverse start order: dashboards see the stream end first, and the balancer's frontends
   * close before the gossip does (nothing is proxied on a stale view).
   */
  private async stopSubsystems(): Promise<void> {
    for (const [name, sub] of [...this.started].reverse()) {
      this.started.delete(name);
      try {
        await sub.stop();
      } catch (e) {
        this.logger.log('ERR', `${name}: stop failed: ${(e as Error).message}`);
      }
    }
  }

  /** Every member Serf knows. */
  members(): Member[] {
    return this.serf?.members() ?? [];
  }

  /** Round trips of this node's directly acked probes, seconds (`kodama_probe_rtt_seconds`). */
  readonly probeRtt = new Histogram(RTT_BUCKETS_S);

  /** Events waiting in the handler lanes (not running). */
  handlerQueueDepth(): number {
    let n = 0;
    for (const d of this.runner?.queueDepths() ?? []) n += d;
    return n;
  }

  estimatedRttMs(name: string): number | undefined {
    const serf = this.serf;
    const self = serf?.getCoordinate(this.opts.nodeName);
    const other = name === this.opts.nodeName ? undefined : serf?.getCoordinate(name);
    return self === undefined || other === undefined ? undefined : distanceMs(self, other);
  }

  /**
   * Replace our tags and gossip them (a new incarnation of our alive message). The `s:<name>`
   * keys of configured services are not the caller's: they keep what the health checks say.
   */
  setTags(tags: Tags): void {
    if (this.serf === undefined || this.driver === undefined) throw new AgentError('ERR_AGENT_STATE', 'agent not started');
    const user = this.userTags(tags);
    // Subsystems follow the new tags first (a role change starts/stops checks), so that one
    // alive message carries both the new tags and what they own (`chk`).
    const before = this.tags;
    this.tags = user;
    this.tellUserTags(user);
    try {
      this.serf.setTags(this.effectiveTags(user));
    } catch (e) {
      this.tags = before;
      this.tellUserTags(before);
      throw e;
    }
    this.driver.updateMeta();
    this.pumpSerf();
    if (this.opts.tagsFile !== undefined && this.opts.tagsFile !== '') writeTagsFile(this.opts.tagsFile, user);
  }

  private tellUserTags(user: Tags): void {
    this.inSetTags = true;
    try {
      for (const sub of this.started.values()) sub.userTagsChanged?.(user);
    } finally {
      this.inSetTags = false;
    }
  }

  /** The current route of every service: kept on every agent, applied by balancers. */
  get routes(): RouteTable {
    return this.routesPart().table;
  }

  /** The route sync's state ('idle' until the first join): balancers wait for it before serving. */
  get routeSyncStatus(): string {
    return (this.started.get('routes') as Routes | undefined)?.syncStatus ?? 'idle';
  }

  /** The routes subsystem (started first, on every agent); kept after stop for reads. */
  private routesPart(): Routes {
    this.routesHandle ??= this.started.get('routes') as Routes | undefined;
    if (this.routesHandle === undefined) throw new AgentError('ERR_AGENT_STATE', 'agent not started');
    return this.routesHandle;
  }

  /** Serf's user-event clock (routes order by it). */
  get eventClock(): { time(): number; witness(t: number): void } {
    return this.running().eventClock;
  }

  /** The load-balancer role, when this agent runs one (AgentOptions.balancer), once started. */
  get balancerRole(): BalancerRole | undefined {
    return this.started.get('balancer') as BalancerRole | undefined;
  }

  /** Health of every configured service (empty without services). */
  serviceStatus(): ServiceStatus[] {
    return this.servicesPart()?.status() ?? [];
  }

  private servicesPart(): LocalServices | undefined {
    return this.started.get('services') as LocalServices | undefined;
  }

  private checksPart(): LocalChecks | undefined {
    return this.started.get('checks') as LocalChecks | undefined;
  }

  private userTags(tags: Tags): Tags {
    const out: Tags = { ...tags };
    for (const k of this.managedTagKeys) delete out[k];
    return out;
  }

  /**
   * What Serf gossips: the user's tags plus the keys the agent's subsystems own — the services'
   * `s:*`, the checks' `chk`, the monitor's `mon`, the balancer's `lb`. Every tag change goes
   * through here (setTags, applyManagedTags), so no source overwrites another's keys.
   */
  private effectiveTags(user: Tags = this.tags): Tags {
    return { ...this.userTags(user), ...this.staticTags, ...Object.fromEntries(this.owned) };
  }

  /** Re-gossip the tags after a managed key changed; false (and logged) when Serf refused them. */
  private applyManagedTags(what: string): boolean {
    if (this.inSetTags) return true; // setTags() gossips them with the user's new tags
    if (this.serf === undefined || this.driver === undefined || this.state === 'stopped') return false;
    try {
      this.serf.setTags(this.effectiveTags());
      this.driver.updateMeta();
      this.pumpSerf();
      return true;
    } catch (err) {
      // Over Serf's 512-byte meta limit: the user's tags leave no room; say so, keep running.
      this.logger.log('ERR', `${what}: ${(err as Error).message}`);
      return false;
    }
  }

  /** The monitor role, when this agent is a monitor (AgentOptions.monitoring), once started. */
  get monitorRole(): MonitorRole | undefined {
    return this.started.get('monitor') as MonitorRole | undefined;
  }

  /** Records of the monitoring checks running on this node (those with a result). */
  checkRecords(): CheckRecord[] {
    return this.checksPart()?.records() ?? [];
  }

  /**
   * Record a pushed (TTL or passive) result for a local check. Returns undefined when recorded,
   * else why not.
   */
  pushCheckResult(check: string, status: CheckStatus, output: string): string | undefined {
    const checks = this.checksPart();
    if (checks === undefined) return 'no checks are configured on this node';
    return checks.pushResult(check, status, output);
  }

  // ---- routes, drains and calls (deploys and actions by role) ---------------------------------

  /**
   * Set a service's traffic split cluster-wide: a `kodama-route` user event, ordered by its
   * Lamport time. Resolves with the entry once applied here (peers apply it as gossip reaches
   * them). Throws AgentError for an invalid or oversized setting, or when the agent is not running.
   */
  publishRoute(s: RouteSetting): Promise<RouteEntry> {
    try {
      return this.routesPart().publish(s);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /**
   * Take this node's services out of rotation (`,drain` on every `s:*` tag) until called with
   * false, whatever their checks say meanwhile. A node without services has nothing to drain.
   */
  setServicesDraining(draining: boolean): void {
    const services = this.servicesPart();
    if (services === undefined) {
      this.logger.log('DEBUG', `services: ${draining ? 'drain' : 'undrain'} requested but no services are configured`);
      return;
    }
    services.setDraining(draining);
  }

  /** Whether setServicesDraining(true) is in force. */
  get servicesDraining(): boolean {
    return this.servicesPart()?.draining ?? false;
  }

  /**
   * Serve operation `op` of the RPC command `kodama` (e.g. `deploy.start`). Returns a function
   * that unregisters it. Throws AgentError ERR_AGENT_STATE when `op` is already registered.
   */
  registerCall(op: string, fn: CallHandler): () => void {
    if (op === '') throw new AgentError('ERR_AGENT_CONFIG', 'operation name must not be empty');
    if (this.calls.has(op)) throw new AgentError('ERR_AGENT_STATE', `operation ${op} is already registered`);
    this.calls.set(op, fn);
    return () => {
      if (this.calls.get(op) === fn) this.calls.delete(op);
    };
  }

  /** Run a registered operation, as the RPC command `kodama` does. Rejects with the text the caller sees. */
  async runCall(op: string, args: unknown): Promise<unknown> {
    this.callCounts.calls++;
    const fn = this.calls.get(op);
    if (fn === undefined) {
      this.callCounts.unknown_ops++;
      if (op.startsWith('deploy.') && this.opts.dataDir === undefined) throw new Error(NO_DEPLOY_STATE);
      throw new Error(`unknown operation ${op}`);
    }
    try {
      return await fn(args);
    } catch (e) {
      this.callCounts.call_errors++;
      throw e;
    }
  }

  /** Broadcast a user event (serf event); throws SerfError with serf's text on size limits. */
  userEvent(name: string, payload: Uint8Array | string = new Uint8Array(0), coalesce = true): void {
    const serf = this.running();
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
    serf.userEvent(name, bytes, coalesce, systemClock.now());
    this.pumpSerf();
  }

  /**
   * Send a query; resolves at its deadline with every ack and response (onAck/onResponse see
   * them as they come). Throws SerfError for serf's refusals (size, `_serf_` prefix…).
   */
  query(opts: QueryOptions): Promise<QueryResult> {
    if (!queryNameAllowed(opts.name, opts.payload)) {
      return Promise.reject(new AgentError('ERR_AGENT_CONFIG', "Queries cannot contain the '_serf_' prefix"));
    }
    const result: QueryResult = { acks: [], responses: new Map() };
    return new Promise<QueryResult>((resolve, reject) => {
      try {
        this.startQuery(opts, {
          ack: (from) => {
            result.acks.push(from);
            opts.onAck?.(from);
          },
          response: (from, p) => {
            result.responses.set(from, p);
            opts.onResponse?.(from, p);
          },
          done: () => resolve(result),
        });
      } catch (e) {
        reject(e as Error);
      }
    });
  }

  /** Mark a failed member left (serf force-leave); prune: forget it at once. */
  forceLeave(node: string, prune = false): void {
    this.running().forceLeave(node, prune, systemClock.now());
    this.pumpSerf();
  }

  installKey(key: string): Promise<KeyResult> {
    return this.keyOp((s, now) => s.installKey(key, now));
  }

  useKey(key: string): Promise<KeyResult> {
    return this.keyOp((s, now) => s.useKey(key, now));
  }

  removeKey(key: string): Promise<KeyResult> {
    return this.keyOp((s, now) => s.removeKey(key, now));
  }

  listKeys(): Promise<KeyResult> {
    return this.keyOp((s, now) => s.listKeys(now));
  }

  private keyOp(start: (s: Serf, now: number) => number): Promise<KeyResult> {
    const serf = this.running();
    return new Promise((resolve, reject) => {
      try {
        const id = start(serf, systemClock.now());
        this.keyOps.set(id, resolve);
      } catch (e) {
        reject(e as Error);
        return;
      }
      this.pumpSerf();
    });
  }

  /** Whether a user event or query goes on to event handlers and RPC event streams. */
  private forUsers(name: string): boolean {
    return !isInternalName(name) || this.opts.showInternalEvents === true;
  }

  private startQuery(params: QueryParams, sink: { ack(from: string): void; response(from: string, p: Uint8Array): void; done(): void }): number {
    const serf = this.running();
    const p = withInternalFilter(params);
    const id = serf.query(
      {
        name: p.name,
        payload: p.payload,
        ...(p.filterNodes !== undefined ? { filterNodes: p.filterNodes } : {}),
        ...(p.filterTags !== undefined ? { filterTags: p.filterTags } : {}),
        ...(p.requestAck !== undefined ? { requestAck: p.requestAck } : {}),
        ...(p.relayFactor !== undefined ? { relayFactor: p.relayFactor } : {}),
        ...(p.timeoutMs !== undefined ? { timeoutMs: p.timeoutMs } : {}),
      },
      systemClock.now(),
    );
    this.openQueries.set(id, sink);
    this.pumpSerf();
    return id;
  }

  private running(): Serf {
    if (this.state !== 'running' || this.serf === undefined) {
      throw new AgentError('ERR_AGENT_STATE', `the agent is ${this.state}, not running`);
    }
    return this.serf;
  }

  /**
   * Apply a configuration reload (serf's handleReload: log level, handlers, tags; kodama's:
   * services, checks, monitoring). Invalid input throws before anything changes; the subsystems'
   * part finishes when the promise resolves, each change said in the log.
   */
  reload(r: ReloadOptions): Promise<void> {
    // Everything is checked first: a bad spec throws and changes nothing.
    if (r.eventHandlers !== undefined) for (const h of r.eventHandlers) parseHandlerSpec(h);
    let next: AgentOptions | undefined;
    if (r.sections !== undefined) {
      const { services, checks, monitoring, balancer, containers } = r.sections;
      const { services: _s, checks: _c, monitoring: _m, balancer: _b, containers: _ct, ...rest } = this.opts;
      next = {
        ...rest,
        ...(services !== undefined ? { services } : {}),
        ...(checks !== undefined ? { checks } : {}),
        ...(monitoring !== undefined ? { monitoring } : {}),
        ...(balancer !== undefined ? { balancer } : {}),
        ...(containers !== undefined ? { containers } : {}),
        ...(r.sections.metricsIntervalMs !== undefined ? { metricsIntervalMs: r.sections.metricsIntervalMs } : {}),
        ...(r.sections.metricsHistoryMs !== undefined ? { metricsHistoryMs: r.sections.metricsHistoryMs } : {}),
      };
      for (const sub of SUBSYSTEMS) sub.validate?.(next);
    }
    if (r.logLevel !== undefined) this.logger.setLevel(r.logLevel);
    if (r.eventHandlers !== undefined) {
      this.runner?.reload(r.eventHandlers);
      this.eventHandlerSpecs = [...r.eventHandlers];
    }
    if (r.tags !== undefined && this.serf !== undefined) this.setTags(r.tags);
    if (next === undefined) {
      this.logger.log('INFO', 'agent: configuration reloaded');
      return Promise.resolve();
    }
    // One reload at a time: two SIGHUPs in a row apply in order.
    const target = next;
    this.reloading = this.reloading.then(() => this.reloadSubsystems(target));
    return this.reloading;
  }

  private async reloadSubsystems(next: AgentOptions): Promise<void> {
    const before = this.opts;
    this.opts = next;
    for (const sub of SUBSYSTEMS) {
      const running = this.started.get(sub.name);
      try {
        if (running?.reload !== undefined) {
          const what = await running.reload(next);
          if (what !== undefined) this.logger.log(what.includes('restart') ? 'WARN' : 'INFO', `agent: reload: ${what}`);
        } else if (running === undefined && sub.wanted(next) && !sub.wanted(before)) {
          this.logger.log('WARN', `agent: reload: ${sub.name} is configured now, but it starts only with the agent: restart the agent to start it`);
        }
      } catch (e) {
        this.logger.log('ERR', `agent: reload: ${sub.name} could not follow the new configuration: ${(e as Error).message}`);
      }
    }
    if (JSON.stringify(before.balancer) !== JSON.stringify(next.balancer)) {
      this.logger.log('WARN', 'agent: reload: the balancer configuration changed; the balancer reads it only at start: restart the agent to apply it');
    }
    // Read only at start too: say so rather than keep the old values in silence.
    if (JSON.stringify(before.containers) !== JSON.stringify(next.containers) && this.started.has('services')) {
      this.logger.log('WARN', 'agent: reload: the containers section changed; the container watcher reads it only at start: restart the agent to apply it');
    }
    if ((before.metricsIntervalMs !== next.metricsIntervalMs || before.metricsHistoryMs !== next.metricsHistoryMs) && this.started.has('metrics')) {
      this.logger.log('WARN', 'agent: reload: metrics_interval or metrics_history changed; the metrics history keeps its start settings: restart the agent to apply them');
    }
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
        max_procs: String(nodeOs().availableParallelism()),
        goroutines: '0',
        cpu_count: String(nodeOs().cpus().length),
        // kodama: the process's memory (serf's runtime section has none of these).
        ...memoryFigures(),
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
      calls: strs({ ...this.callCounts, ops: this.calls.size }),
      // kodama's subsystems, only where configured (a plain serf-like node shows serf's sections).
      ...Object.assign({}, ...[...this.statsSources].map((fn) => fn())),
    };
  }

  addStats(fn: () => Record<string, Record<string, string>>): () => void {
    this.statsSources.add(fn);
    return () => this.statsSources.delete(fn);
  }

  /** Serf's query_response_size_limit of this agent (bytes). */
  get queryResponseSizeLimit(): number {
    return this.opts.queryResponseSizeLimit ?? 1024;
  }

  answerQuery(name: string, fn: (q: AgentQuery) => void): () => void {
    if (this.queryAnswerers.has(name)) throw new AgentError('ERR_AGENT_STATE', `query ${name} already has an answerer`);
    this.queryAnswerers.set(name, fn);
    return () => {
      if (this.queryAnswerers.get(name) === fn) this.queryAnswerers.delete(name);
    };
  }

  ownTags(ownKeys: readonly string[], initial: Tags = {}): OwnedTags {
    const keys: string[] = [];
    const claim = (more: readonly string[]): void => {
      const fresh = more.filter((k) => !keys.includes(k));
      for (const k of fresh) {
        if (this.claimedTagKeys.has(k)) throw new AgentError('ERR_AGENT_STATE', `tag ${k} is already owned`);
      }
      for (const k of fresh) {
        keys.push(k);
        this.claimedTagKeys.add(k);
        if (!this.managedTagKeys.includes(k)) this.managedTagKeys.push(k);
      }
      this.tags = this.userTags(this.tags);
    };
    claim(ownKeys);
    const put = (tags: Tags): void => {
      for (const k of keys) {
        const v = tags[k];
        if (v === undefined) this.owned.delete(k);
        else this.owned.set(k, v);
      }
    };
    put(initial);
    return {
      set: (tags, why) => {
        put(tags);
        return this.applyManagedTags(why ?? `agent: cannot gossip tag(s) ${keys.join(', ')}`);
      },
      claim,
    };
  }

  // ---- internals --------------------------------------------------------------------------

  private rpcBackend(): RpcBackend {
    return {
      members: () => this.members().map(toRpcMember),
      join: async (addrs, replay) => {
        const r = await this.join(addrs, replay);
        if (r.num > 0 && r.errors.length === 0) return { num: r.num, error: '' };
        const advice = r.num === 0 ? joinAdvice(r.errors) : [];
        return { num: r.num, error: [r.errors.join('; '), ...advice].join('\n') };
      },
      leave: async () => {
        await this.leave();
        // The RPC reply goes out first; then the agent shuts down, as serf's does.
        setTimeout(() => {
          void this.stop();
        }, 50);
      },
      stats: () => this.stats(),
      getCoordinate: (node) => {
        const c = this.serf?.getCoordinate(node);
        return c === undefined ? null : { vec: c.vec, error: c.error, adjustment: c.adjustment, height: c.height };
      },
      setTags: async (tags, deleteTags) => {
        const next = { ...(this.serf?.localTags() ?? {}) };
        for (const k of deleteTags) delete next[k];
        Object.assign(next, tags);
        this.setTags(next);
      },
      userEvent: async (name, payload, coalesce) => {
        this.userEvent(name, payload, coalesce);
      },
      forceLeave: async (node, prune) => {
        this.forceLeave(node, prune);
      },
      query: async (params: RpcQueryParams, sink) => {
        if (!queryNameAllowed(params.name, params.payload)) throw new Error("Queries cannot contain the '_serf_' prefix");
        const id = this.startQuery(params, sink);
        return () => {
          this.openQueries.delete(id);
        };
      },
      installKey: async (key) => toRpcKeyResponse(await this.installKey(key)),
      useKey: async (key) => toRpcKeyResponse(await this.useKey(key)),
      removeKey: async (key) => toRpcKeyResponse(await this.removeKey(key)),
      listKeys: async () => toRpcKeyResponse(await this.listKeys()),
      subscribeEvents: (sink) => {
        const fn = (e: HandlerEvent): void => {
          if (e.type === 'user') {
            sink({ type: 'user', name: e.name, payload: e.payload, ltime: e.ltime, coalesce: e.coalesce ?? false });
          } else if (e.type === 'query') {
            const deadline = e.deadlineMs ?? systemClock.now();
            sink({
              type: 'query',
              name: e.name,
              payload: e.payload,
              ltime: e.ltime,
              timeoutMs: Math.max(0, deadline - systemClock.now()),
              respond: async (payload) => this.respond(e.id, payload),
            });
          } else {
            sink({ type: e.type, members: e.members.map((m) => toRpcMember(m as Member)) });
          }
        };
        this.streamSinks.add(fn);
        return () => this.streamSinks.delete(fn);
      },
      subscribeLogs: (sink) => this.logger.subscribe(sink),
      kodama: (op, args) => this.runCall(op, args),
    };
  }

  private onCoreEvent(e: MemberEvent): void {
    const serf = this.serf;
    if (serf === undefined) return;
    serf.handleMemberEvent(e, systemClock.now());
    switch (e.type) {
      case 'join-complete': {
        if (this.reconnectJoins.delete(e.joinId)) break;
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
    this.pumpSerf();
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pumpSerf();
    });
  }

  /** Carry out Serf's outputs, dispatch its events, re-arm its timer. */
  private pumpSerf(): void {
    const serf = this.serf;
    const driver = this.driver;
    if (serf === undefined || driver === undefined || this.state === 'stopped') return;
    carryOutSerfOutputs(serf, driver, {
      // Serf logged why (a reconnect, or a failed member answering a heal ping).
      joined: (id) => this.reconnectJoins.add(id),
      shutdown: (reason) => {
        this.logger.log('ERR', `serf: shutting down: ${reason}`);
        setTimeout(() => void this.stop(), 0);
        return false;
      },
    });
    const now = systemClock.now();
    for (let ev = serf.pollTypedEvent(), i = 0; ev !== undefined && i < 100_000; ev = serf.pollTypedEvent(), i++) {
      this.dispatch(ev, now);
    }
    this.pumpCoalescer();
    const at = serf.pollTimeout();
    if (at === undefined) return;
    if (this.serfTimer !== undefined && this.serfTimerAtMs <= at) return;
    this.serfTimer?.cancel();
    this.serfTimerAtMs = at;
    this.serfTimer = systemClock.setTimer(at, () => {
      this.serfTimer = undefined;
      this.serfTimerAtMs = Infinity;
      this.serf?.handleTimeout(systemClock.now());
      this.pumpSerf();
    });
  }

  private dispatch(ev: SerfAnyEvent, now: number): void {
    switch (ev.type) {
      case 'member-join':
      case 'member-leave':
      case 'member-failed':
      case 'member-update':
      case 'member-reap':
        this.snapshot?.memberEvent(ev, this.serf?.clock.time());
        this.emit(ev.type, ev);
        this.emit('member', ev);
        this.coalescer.handle(ev, now);
        break;
      case 'user':
        this.snapshot?.userEvent(ev.ltime);
        this.emit('user', ev);
        if (this.forUsers(ev.name)) this.coalescer.handle(ev, now);
        break;
      case 'query': {
        this.snapshot?.query(ev.ltime);
        const id = ev.id;
        // Answered here, before handlers and streams could claim them (the first answer wins).
        const q: AgentQuery = { ...ev, respond: (payload: Uint8Array) => this.respond(id, payload) };
        const answer = this.queryAnswerers.get(ev.name);
        if (answer !== undefined) {
          try {
            answer(q);
          } catch (err) {
            this.logger.log('ERR', `agent: answering ${ev.name} failed: ${(err as Error).message}`);
          }
        }
        this.emit('query', q);
        if (this.forUsers(ev.name)) this.coalescer.handle(ev, now); // queries pass straight through
        break;
      }
      case 'query-ack':
        this.openQueries.get(ev.queryId)?.ack(ev.from);
        break;
      case 'query-response':
        this.openQueries.get(ev.queryId)?.response(ev.from, ev.payload);
        break;
      case 'query-done': {
        const q = this.openQueries.get(ev.queryId);
        this.openQueries.delete(ev.queryId);
        q?.done();
        break;
      }
      case 'key-result': {
        const k = this.keyOps.get(ev.opId);
        this.keyOps.delete(ev.opId);
        k?.(ev);
        break;
      }
      case 'keyring-changed':
        if (this.opts.keyringFile !== undefined && this.opts.keyringFile !== '' && this.keyring !== null) {
          try {
            writeKeyringFile(this.opts.keyringFile, this.keyring);
          } catch (e) {
            this.logger.log('ERR', `agent: ${(e as Error).message}`);
          }
        }
        break;
    }
  }

  /** Answer a received query (throws serf's error text: too large, already sent, too late). */
  respond(queryId: number, payload: Uint8Array): void {
    this.running().respond(queryId, payload, systemClock.now());
    this.pumpSerf();
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
      respond: (queryId, payload) => {
        try {
          this.respond(queryId, payload);
        } catch (e) {
          return (e as Error).message;
        }
        return undefined;
      },
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
    const advice = joinAdvice(errors);
    this.logger.log('ERR', `agent: Failed to join any node: ${errors.length} error(s)${advice.length > 0 ? `; next: ${advice.join('; ')}` : ''}`);
  }

  /** Serf counts itself as a member; if the core did not announce us, do it from localNode(). */
  private ensureLocalMember(): void {
    const serf = this.serf;
    const driver = this.driver;
    if (serf === undefined || driver === undefined || serf.localMember() !== undefined) return;
    const self = driver.withCore((c) => c.localNode());
    this.onCoreEvent({ type: 'join', node: self });
  }

  emit<K extends keyof AgentEventMap>(type: K, e: AgentEventMap[K]): void {
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

/**
 * serf's agent refuses user queries named `_serf_*` (internal queries), except the ping that
 * `serf reachability` sends: `_serf_ping` without a payload.
 */
function queryNameAllowed(name: string, payload: Uint8Array): boolean {
  return !name.startsWith('_serf_') || (name === '_serf_ping' && payload.length === 0);
}

function toRpcKeyResponse(r: KeyResult): RpcKeyResponse {
  return {
    error: r.error,
    numNodes: r.numNodes,
    numResp: r.numResp,
    numErr: r.numErr,
    messages: r.messages,
    ...(r.op === 'list' ? { keys: r.keys } : {}),
  };
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

export type { KeyResult, Member, MemberEventType, QueryEvent, SerfEvent, UserEvent };

/** RSS and V8's heap, bytes, for `stats` (runtime section). */
function memoryFigures(): Record<string, string> {
  const m = process.memoryUsage();
  return { rss_bytes: String(m.rss), heap_used_bytes: String(m.heapUsed), heap_total_bytes: String(m.heapTotal), external_bytes: String(m.external) };
}
