// `kodama agent`: run an agent until a signal (or an RPC `leave`). Flags and JSON config keys
// follow `serf agent`; KODAMA_* environment variables sit between the files and the flags.
//
// Signals, as serf: SIGINT leaves gracefully unless skip_leave_on_interrupt; SIGTERM leaves
// gracefully when leave_on_terminate, which kodama defaults to true (serf: false) so that an
// instance being terminated is recorded *left*, not failed; SIGHUP reloads the configuration
// (log level, event handlers, tags; kodama's services, checks and monitoring). A second INT/TERM
// during the leave exits at once.

import { joinAdvice } from '../agent/join-advice.ts';
import { setFlagsFromString } from 'node:v8';
import { Agent } from '../agent/agent.ts';
import type { AgentOptions, Profile } from '../agent/agent.ts';
import { ENV_VARS, configFromEnv, parseDuration, parseTagPairs, readConfigPaths, resolveConfig } from '../agent/config.ts';
import { bindFromInterface, parseHostPort } from '../agent/address.ts';
import type { AgentConfig, ResolvedConfig } from '../agent/config.ts';
import { AgentError } from '../agent/errors.ts';
import { formatJsonRecord, parseLogLevel } from '../agent/log.ts';
import type { LogRecord } from '../agent/log.ts';
import { openSyslog, syslogFacility } from '../agent/syslog.ts';
import type { SyslogWriter } from '../agent/syslog.ts';
import { SerfError } from '../serf/errors.ts';
import { CliError, parseFlags } from './flags.ts';
import type { FlagSpec } from './flags.ts';
import type { CliIo, Command } from './io.ts';
import { nodeOs } from '../wire/builtins.ts';

const help = `Usage: kodama agent [options]

  Starts the kodama agent and runs until an interrupt is received. The
  agent represents a single node in a cluster; it speaks Serf's protocol,
  so it can join a cluster of serf agents.

  Configuration comes from JSON files (serf's keys), then KODAMA_*
  environment variables, then flags: a later source overrides an earlier
  one; tags merge key by key and -join/-retry-join/-event-handler lists
  append.

Options:

  -bind=0.0.0.0:7946       Address to bind network listeners to (UDP and TCP).
  -advertise=addr          Address to advertise to the other cluster members.
  -iface=eth0              Network interface to bind to: can be used instead of
                           -bind if the interface is known but not the address
                           (its first address that is not link-local); with a
                           -bind address, the interface must have it. Also the
                           multicast interface of -discover (interface).
  -discover=cluster        A cluster name to discover peers with mDNS on the
                           local link (IPv4, UDP 5353), as serf's -discover:
                           serf and kodama agents with the same name find and
                           join each other without -join (discover).
  -config-file=foo         Path to a JSON file to read configuration from
                           (serf's keys; an unknown key is an error). Can be
                           specified multiple times.
  -config-dir=foo          Directory of JSON files to read, every "*.json" in
                           alphabetical order. Can be specified multiple times.
  -encrypt=key             Key for encrypting network traffic (base64, 16, 24
                           or 32 bytes). Must match the cluster's key.
  -keyring-file=path       File holding the keyring (JSON list of base64 keys);
                           key changes are written back. Not with -encrypt.
  -event-handler=foo       Script to execute when events occur:
                           "script", "TYPE=script", "user:NAME=script",
                           "query:NAME=script", comma lists of types. Can be
                           specified multiple times.
  -join=addr               An initial agent to join with (host, host:port or a
                           DNS name: every address it resolves to is joined).
                           Can be specified multiple times. Exits 1 on failure.
  -replay                  Replay past user events when joining.
  -retry-join=addr         An agent to join with, retried until it succeeds;
                           can be specified multiple times.
  -retry-interval=30s      Time between -retry-join attempts (at least 1s).
  -retry-max=0             Number of -retry-join retries before exiting 1
                           (0 = unlimited).
  -rejoin                  Ignore a previous leave recorded in the snapshot and
                           rejoin the cluster.
  -snapshot=path           Snapshot file: on restart, rejoin the known members
                           without -join and do not replay old events.
  -log-level=info          Log level of the agent (trace, debug, info, warn,
                           err).
  -log-json                Log one JSON object per line (time, level, subsystem,
                           message, fields) instead of text (KODAMA_LOG_JSON).
  -syslog                  Also send log lines to the local syslog (tag kodama).
  -syslog-facility=LOCAL0  Syslog facility for -syslog (KERN … LOCAL7).
  -statsd=host:port        Send the /metrics figures as statsd lines over UDP
                           every 10 s (statsd_addr).
  -statsite=host:port      The same over TCP to statsite (statsite_addr).
  -node=hostname           Name of this node. Must be unique in the cluster.
  -profile=[lan|wan|local] Timing profile. The default is lan.
  -protocol=n              Serf protocol version to use (2..5, default 5).
  -role=foo                Deprecated: the same as -tag role=foo.
  -rpc-addr=127.0.0.1:7373 Address to bind the RPC listener.
  -rpc-auth=token          Require this token from RPC clients.
  -tag key=value           Tag to attach to this node. Can be specified
                           multiple times.
  -tags-file=path          Persist tags in this file (JSON); reloaded on start.
                           Not together with -tag or tags in config files.
  -broadcast-timeout=5s    Max time to wait for the leave intent to go out.
  -disable-compression     Disable message compression.
  -show-internal-events    Also give kodama's own queries and user events
                           (kodama-*) to event handlers and RPC event streams
                           (debugging; off: they never see them).
  -data-dir=path           Directory where deploys coordinated by this agent
                           persist their state (KODAMA_DATA_DIR); without it the
                           agent refuses \`kodama deploy\` requests.
  -enable-exec             Let \`kodama exec\` and \`kodama rolling\` run commands
                           on this node (off by default; needs an encrypted
                           cluster and an exec token).
  -exec-token=token        The token exec callers must present
                           (KODAMA_EXEC_TOKEN; overrides the config's).
  -http-addr=host:port     Serve the HTTP API (docs/api.md) and the dashboard
                           at http://host:port/ui/ (KODAMA_HTTP_ADDR; off when
                           unset). Anything but loopback needs -http-token.
  -http-token=token        Token every /v1 request must present as
                           "Authorization: Bearer <token>" or ?token=
                           (KODAMA_HTTP_TOKEN).
  -metrics-interval=10s    Sample this host and the agent (load, CPU, memory,
                           disk, network, RSS, event-loop delay) this often
                           into an hour of history for \`kodama metrics\`
                           (KODAMA_METRICS_INTERVAL; 0 turns it off).
  -containers-socket=path  Offer the services of local containers found through
                           this engine API socket (Docker or Podman; see
                           "containers" below; KODAMA_CONTAINERS_SOCKET).

Traffic wiring (config file keys, kodama only):

  "services": [ { "name": "web", "port": 8080, "protocol": "http",
      "weight": 100, "tags": ["v1"],
      "checks": [ { "http": "/health", "status": 200, "host": "web.local" },
                  { "tcp": true },
                  { "script": "check_load -w 5 -c 10" } ] } ]
                           Each check also takes "interval" (1s), "timeout" (1s),
                           "rise" (2) and "fall" (2). A service is advertised as
                           tag s:<name>=<port>[,tcp][,w<weight>][,drain] only while
                           every check passes (script: Nagios exit codes, 1 =
                           warning still passes); no checks = healthy at once.
  "containers": { "socket": "/run/podman/podman.sock", "poll": "1s" }
                           Services of local containers (Docker or Podman, through
                           the engine's Docker-compatible API socket): a running
                           container labelled kodama.service=<name> and
                           kodama.port=<port> (optional kodama.check=tcp|http:/path|
                           none, kodama.interval, kodama.protocol, kodama.weight) is
                           a service, advertised while its check passes, drained
                           when it stops, withdrawn when it is gone. Same as
                           -containers-socket=path (KODAMA_CONTAINERS_SOCKET).
                           Read only at start. docs/traffic.md.
  "leave_drain": "2s"      On a graceful leave, services are gossiped with ",drain"
                           this long before the node leaves (KODAMA_LEAVE_DRAIN).
  "balancer": { "driver": "embedded"|"haproxy",
      "services": { "web": { "bind": "127.0.0.1:8000", "mode": "http",
                             "min_backends": 1, "drain_timeout": "10s" } },
      "haproxy": { "binary": "haproxy", "dir": "...", "slots": 8,
                   "reload_debounce": "2s" },
      "templates": [ { "source": "x.mustache", "destination": "x.conf",
                       "command": "reload-x", "debounce": "250ms" } ] }
                           Run the load-balancer role: one frontend per service,
                           backends = members advertising s:<service>.
  SIGHUP applies changed services (an unchanged one keeps its health; a
  changed one is advertised again once its checks pass); the balancer is read
  only at start.

Monitoring (config file keys, kodama only):

  "checks": [ { "name": "disk", "command": "check_disk -w 20% -c 10% -p /",
                "interval": "10s", "timeout": "5s", "subscriptions": ["role=web"],
                "handlers": ["ops"], "low_flap_threshold": 20,
                "high_flap_threshold": 30 },
              { "name": "page", "http": "/health", "port": 8080, "status": 200 },
              { "name": "db", "tcp": true, "port": 5432, "host": "127.0.0.1" },
              { "name": "heartbeat", "ttl": "30s", "ttl_status": 2 } ]
                           Each check runs on every node whose tags match one of
                           its subscriptions (key=value; none or "*" = every node),
                           and starts/stops when the tags change. command: Nagios
                           plugin contract (exit 0 ok, 1 warning, 2 critical,
                           3 unknown; first output line). ttl: results are pushed
                           (kodama check-result) or the check goes to ttl_status.
                           Defaults: interval 10s, timeout 10s (at most the
                           interval), flap thresholds 20/30 (0/0 = off). The
                           state summary is gossiped as tag chk; detail answers
                           the "kodama-checks" query. Lists append across files.
  "monitoring": { "handlers": {
        "ops":   { "type": "script", "command": "page-oncall", "timeout": "10s",
                   "filters": { "occurrences": 3, "severities": ["critical"],
                                "not_silenced": true, "state_changes_only": true } },
        "hook":  { "type": "webhook", "url": "http://127.0.0.1:9000/alerts" },
        "audit": { "type": "log", "path": "/var/log/kodama/alerts.log" } },
      "default_handlers": ["ops", "audit"], "member_handlers": ["ops"] }
                           Makes this node a monitor (tag mon=1): alerts on check
                           state changes and member failures (the monitor with the
                           lowest name runs the handlers). Handler names used by
                           checks must be defined on monitor nodes.
  SIGHUP applies changed checks and monitoring handlers (unchanged checks keep
  their state and history; alert state and silences stay).

Deploys and actions by role (config file keys, kodama only):

  "data_dir": "/var/lib/kodama"
                           Same as -data-dir.
  "exec": { "enabled": true, "token": "s3cret",
            "allow": ["systemctl restart web", "uptime*"],
            "timeout": "10m", "max_output": "1MiB" }
                           Commands callers may run here (allow: whole-command
                           globs; none = any). Every request is logged. Enabled
                           without a token is an error.

HTTP API and dashboard (config file keys, kodama only):

  "http_addr": "127.0.0.1:8500", "http_token": "s3cret"
                           Same as -http-addr / -http-token (docs/api.md).

Signals:

  SIGINT   graceful leave, then exit (unless skip_leave_on_interrupt).
  SIGTERM  graceful leave, then exit: leave_on_terminate defaults to TRUE in
           kodama (serf's default is false); set it to false in a config file
           or KODAMA_LEAVE_ON_TERMINATE=false to exit without leaving.
  SIGHUP   reload config files/env: log level, event handlers, tags, services,
           checks and monitoring; the log says what changed.

Environment:

  ${ENV_VARS.join(' ')}
  Lists (KODAMA_JOIN, KODAMA_RETRY_JOIN) and KODAMA_TAGS (k=v,k=v) are comma
  separated; KODAMA_EVENT_HANDLERS has one handler per line.
`;

const FLAGS: FlagSpec[] = [
  { name: 'bind', kind: 'string' },
  { name: 'advertise', kind: 'string' },
  { name: 'config-file', kind: 'list' },
  { name: 'config-dir', kind: 'list' },
  { name: 'encrypt', kind: 'string' },
  { name: 'keyring-file', kind: 'string' },
  { name: 'event-handler', kind: 'list' },
  { name: 'join', kind: 'list' },
  { name: 'replay', kind: 'bool' },
  { name: 'retry-join', kind: 'list' },
  { name: 'retry-interval', kind: 'string' },
  { name: 'retry-max', kind: 'string' },
  { name: 'rejoin', kind: 'bool' },
  { name: 'snapshot', kind: 'string' },
  { name: 'log-level', kind: 'string' },
  { name: 'node', kind: 'string' },
  { name: 'profile', kind: 'string' },
  { name: 'protocol', kind: 'string' },
  { name: 'role', kind: 'string' },
  { name: 'rpc-addr', kind: 'string' },
  { name: 'rpc-auth', kind: 'string' },
  { name: 'tag', kind: 'list' },
  { name: 'tags-file', kind: 'string' },
  { name: 'broadcast-timeout', kind: 'string' },
  { name: 'disable-compression', kind: 'bool' },
  { name: 'show-internal-events', kind: 'bool' },
  { name: 'log-json', kind: 'bool' },
  { name: 'statsd', kind: 'string' },
  { name: 'statsite', kind: 'string' },
  { name: 'syslog', kind: 'bool' },
  { name: 'syslog-facility', kind: 'string' },
  { name: 'enable-exec', kind: 'bool' },
  { name: 'exec-token', kind: 'string' },
  { name: 'data-dir', kind: 'string' },
  { name: 'http-addr', kind: 'string' },
  { name: 'http-token', kind: 'string' },
  { name: 'containers-socket', kind: 'string' },
  { name: 'discover', kind: 'string' },
  { name: 'iface', kind: 'string' },
  { name: 'metrics-interval', kind: 'string' },
];

const STRING_FLAGS: Record<string, keyof AgentConfig> = {
  bind: 'bind',
  advertise: 'advertise',
  encrypt: 'encryptKey',
  'keyring-file': 'keyringFile',
  snapshot: 'snapshotPath',
  'log-level': 'logLevel',
  node: 'nodeName',
  profile: 'profile',
  role: 'role',
  'rpc-addr': 'rpcAddr',
  'rpc-auth': 'rpcAuth',
  'tags-file': 'tagsFile',
  'exec-token': 'execToken',
  'data-dir': 'dataDir',
  'http-addr': 'httpAddr',
  'http-token': 'httpToken',
  'containers-socket': 'containersSocket',
  'syslog-facility': 'syslogFacility',
  statsd: 'statsdAddr',
  statsite: 'statsiteAddr',
  discover: 'discover',
  iface: 'iface',
};

/** metrics_interval when no file, env or flag sets it: every `kodama agent` keeps a history. */
const DEFAULT_METRICS_INTERVAL_MS = 10_000;

function intFlag(text: string, name: string): number {
  if (!/^-?\d+$/.test(text)) throw new CliError('ERR_CLI_USAGE', `invalid value "${text}" for flag -${name}: expected an integer`);
  return Number(text);
}

/** What the flags say, as a config layer (flags not given are absent, so they override nothing). */
export function configFromFlags(args: readonly string[]): { config: AgentConfig; configPaths: string[] } {
  const f = parseFlags(args, FLAGS);
  if (f.positional.length > 0) throw new CliError('ERR_CLI_USAGE', `unexpected argument: ${f.positional[0]}`);
  const c: AgentConfig = {};
  const rec = c as Record<string, unknown>;
  for (const [flag, field] of Object.entries(STRING_FLAGS)) {
    const v = f.strings.get(flag);
    if (v !== undefined) rec[field] = v;
  }
  const proto = f.strings.get('protocol');
  if (proto !== undefined) c.protocol = intFlag(proto, 'protocol');
  const rm = f.strings.get('retry-max');
  if (rm !== undefined) c.retryMaxAttempts = intFlag(rm, 'retry-max');
  const ri = f.strings.get('retry-interval');
  if (ri !== undefined) c.retryIntervalMs = parseDuration(ri, '-retry-interval');
  const mi = f.strings.get('metrics-interval');
  if (mi !== undefined) c.metricsIntervalMs = parseDuration(mi, '-metrics-interval');
  const bt = f.strings.get('broadcast-timeout');
  if (bt !== undefined) c.broadcastTimeoutMs = parseDuration(bt, '-broadcast-timeout');
  const tags = f.lists.get('tag');
  if (tags !== undefined) c.tags = parseTagPairs(tags, '-tag');
  const lists: [string, keyof AgentConfig][] = [['join', 'startJoin'], ['retry-join', 'retryJoin'], ['event-handler', 'eventHandlers']];
  for (const [flag, field] of lists) {
    const v = f.lists.get(flag);
    if (v !== undefined) rec[field] = v;
  }
  if (f.bools.has('replay')) c.replayOnJoin = true;
  if (f.bools.has('rejoin')) c.rejoinAfterLeave = true;
  if (f.bools.has('disable-compression')) c.enableCompression = false;
  if (f.bools.has('show-internal-events')) c.showInternalEvents = true;
  if (f.bools.has('log-json')) c.logJson = true;
  if (f.bools.has('syslog')) c.enableSyslog = true;
  if (f.bools.has('enable-exec')) c.execEnabled = true;
  return { config: c, configPaths: [...(f.lists.get('config-file') ?? []), ...(f.lists.get('config-dir') ?? [])] };
}

/** Files < env < flags, resolved. Throws CliError/AgentError with a message for the user. */
export function readAgentConfig(args: readonly string[], env: Record<string, string | undefined>): { config: ResolvedConfig; warnings: string[] } {
  const flags = configFromFlags(args);
  const files = readConfigPaths(flags.configPaths);
  const fromEnv = configFromEnv(env);
  const r = resolveConfig([files.config, fromEnv.config, flags.config], nodeOs().hostname());
  parseLogLevel(r.config.logLevel); // validate now, not at the first log line
  return { config: r.config, warnings: [...files.warnings, ...fromEnv.warnings, ...r.warnings] };
}

/**
 * The agent's options from the resolved config. `ifaceAddr`: the IPv4 address of -iface's
 * interface (bindFromInterface), the interface -discover multicasts on.
 */
export function agentOptions(c: ResolvedConfig, logSink: (line: string) => void, logRecordSink?: (r: LogRecord, line: string) => void, ifaceAddr?: string): AgentOptions {
  return {
    nodeName: c.nodeName,
    bind: c.bind,
    ...(c.advertise !== undefined && c.advertise !== '' ? { advertise: c.advertise } : {}),
    ...(c.encryptKey !== undefined && c.encryptKey !== '' ? { encrypt: c.encryptKey } : {}),
    ...(c.rpcAuth !== undefined && c.rpcAuth !== '' ? { rpcAuth: c.rpcAuth } : {}),
    ...(c.keyringFile !== undefined && c.keyringFile !== '' ? { keyringFile: c.keyringFile } : {}),
    ...(c.tagsFile !== undefined && c.tagsFile !== '' ? { tagsFile: c.tagsFile } : {}),
    ...(c.snapshotPath !== undefined && c.snapshotPath !== '' ? { snapshotPath: c.snapshotPath } : {}),
    tags: c.tags,
    protocol: c.protocol,
    profile: c.profile as Profile,
    rpcAddr: c.rpcAddr,
    logLevel: parseLogLevel(c.logLevel),
    logSink,
    ...(logRecordSink !== undefined ? { logRecordSink } : {}),
    broadcastTimeoutMs: c.broadcastTimeoutMs,
    enableCompression: c.enableCompression,
    ...(c.disableCoordinates === true ? { disableCoordinates: true } : {}),
    ...(c.statsdAddr ? { statsdAddr: c.statsdAddr } : {}),
    ...(c.statsiteAddr ? { statsiteAddr: c.statsiteAddr } : {}),
    ...(c.discover ? { discover: { cluster: c.discover, replay: c.replayOnJoin, ...(ifaceAddr !== undefined ? { ifaceAddr } : {}) } } : {}),
    eventHandlers: c.eventHandlers,
    ...(c.showInternalEvents === true ? { showInternalEvents: true } : {}),
    rejoinAfterLeave: c.rejoinAfterLeave,
    ...(c.reconnectIntervalMs !== undefined ? { reconnectIntervalMs: c.reconnectIntervalMs } : {}),
    ...(c.reconnectTimeoutMs !== undefined ? { reconnectTimeoutMs: c.reconnectTimeoutMs } : {}),
    ...(c.tombstoneTimeoutMs !== undefined ? { tombstoneTimeoutMs: c.tombstoneTimeoutMs } : {}),
    ...(c.maxQueueDepth !== undefined ? { maxQueueDepth: c.maxQueueDepth } : {}),
    ...(c.minQueueDepth !== undefined ? { minQueueDepth: c.minQueueDepth } : {}),
    queryResponseSizeLimit: c.queryResponseSizeLimit ?? 1024,
    querySizeLimit: c.querySizeLimit ?? 1024,
    userEventSizeLimit: c.userEventSizeLimit ?? 512,
    ...(c.services !== undefined ? { services: c.services } : {}),
    ...(c.containers !== undefined ? { containers: c.containers } : {}),
    ...(c.leaveDrainMs !== undefined ? { leaveDrainMs: c.leaveDrainMs } : {}),
    metricsIntervalMs: c.metricsIntervalMs ?? DEFAULT_METRICS_INTERVAL_MS,
    ...(c.metricsHistoryMs !== undefined ? { metricsHistoryMs: c.metricsHistoryMs } : {}),
    ...(c.balancer !== undefined ? { balancer: c.balancer } : {}),
    ...(c.checks !== undefined && c.checks.length > 0 ? { checks: c.checks } : {}),
    ...(c.monitoring !== undefined ? { monitoring: c.monitoring } : {}),
    ...(c.exec !== undefined ? { exec: c.exec } : {}),
    ...(c.dataDir !== undefined && c.dataDir !== '' ? { dataDir: c.dataDir } : {}),
    ...(c.httpAddr !== undefined && c.httpAddr !== '' ? { httpAddr: c.httpAddr } : {}),
    ...(c.httpToken !== undefined && c.httpToken !== '' ? { httpToken: c.httpToken } : {}),
  };
}

function isUserError(e: unknown): e is Error {
  return e instanceof CliError || e instanceof AgentError || e instanceof SerfError;
}

async function run(args: string[], io: CliIo): Promise<number> {
  let agent: Agent;
  let syslog: SyslogWriter | undefined;
  let config: ResolvedConfig;
  try {
    const r = readAgentConfig(args, io.env);
    config = r.config;
    // bin/kodama runs without V8's optimizing compiler (memory); a balancer proxies traffic in
    // this process, where optimized code pays.
    if (config.balancer !== undefined) setFlagsFromString('--opt');
    for (const w of r.warnings) io.stdout(`==> ${w}\n`);
    const text = (line: string): void => io.stdout(`    ${line}\n`);
    if (config.enableSyslog === true) {
      syslog = openSyslog({ facility: config.syslogFacility ?? 'LOCAL0', ...(io.env['KODAMA_SYSLOG_SOCKET'] ? { socket: io.env['KODAMA_SYSLOG_SOCKET'] } : {}), onError: (m) => io.stderr(`==> ${m}\n`) });
    } else if (config.syslogFacility !== undefined) {
      syslogFacility(config.syslogFacility); // a typo is an error even while syslog is off
    }
    const sys = syslog;
    const json = config.logJson === true;
    const records =
      json || sys !== undefined
        ? (r: LogRecord, line: string): void => {
            if (json) io.stdout(`${formatJsonRecord(r)}\n`);
            else text(line);
            sys?.write(r, line);
          }
        : undefined;
    // serf's -iface: the bind address comes from (or must be on) the interface.
    let ifaceAddr: string | undefined;
    if (config.iface !== undefined && config.iface !== '') {
      const b = bindFromInterface(config.iface, config.bind);
      if (b.bind !== config.bind) io.stdout(`==> Using interface '${config.iface}' address '${parseHostPort(b.bind, 0).host}'\n`);
      config = { ...config, bind: b.bind };
      ifaceAddr = b.ifaceAddr;
    }
    agent = Agent.create(agentOptions(config, text, records, ifaceAddr));
  } catch (e) {
    if (e instanceof CliError && e.code === 'ERR_CLI_HELP') {
      io.stdout(help);
      return 0;
    }
    if (isUserError(e)) {
      io.stderr(`${e.message}\n\nRun 'kodama agent -h' for the options.\n`);
      return 1;
    }
    throw e;
  }

  io.stdout('==> Starting kodama agent...\n');
  try {
    await agent.start();
  } catch (e) {
    io.stderr(`==> Failed to start the agent: ${(e as Error).message}\n`);
    return 1;
  }
  let stopRetry = false;
  let exitWith: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    let exiting = false;
    let leaving = false;
    const detach = (): void => {
      stopRetry = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    };
    const exitNow = (code: number): void => {
      if (exiting) return;
      exiting = true;
      detach();
      void agent.stop().finally(() => resolve(code));
    };
    exitWith = exitNow;
    const onSignal = (sig: NodeJS.Signals): void => {
      io.stdout(`==> Caught signal: ${sig}\n`);
      if (sig === 'SIGHUP') {
        reload();
        return;
      }
      if (leaving) {
        io.stdout('==> Second signal during leave: exiting without waiting\n');
        exitNow(1);
        return;
      }
      const graceful = (sig === 'SIGINT' && !config.skipLeaveOnInterrupt) || (sig === 'SIGTERM' && config.leaveOnTerminate);
      if (!graceful) {
        // serf exits 1 without leaving: peers will see this node fail.
        exitNow(1);
        return;
      }
      leaving = true;
      io.stdout('==> Gracefully shutting down agent...\n');
      void (async () => {
        let code = 0;
        try {
          await agent.leave();
        } catch (e) {
          io.stderr(`==> Error: ${(e as Error).message}\n`);
          code = 1;
        }
        exitNow(code);
      })();
    };
    const reload = (): void => {
      io.stdout('==> Reloading configuration...\n');
      let next: ResolvedConfig;
      try {
        next = readAgentConfig(args, io.env).config;
      } catch (e) {
        io.stderr(`==> Failed to reload configs: ${(e as Error).message}\n`);
        return;
      }
      try {
        // With a tags file the file is the tags' home (RPC `tags` rewrites it): config has none to apply.
        const usesTagsFile = next.tagsFile !== undefined && next.tagsFile !== '';
        const o = agentOptions(next, () => {});
        const sections = {
          ...(o.services !== undefined ? { services: o.services } : {}),
          ...(o.checks !== undefined ? { checks: o.checks } : {}),
          ...(o.monitoring !== undefined ? { monitoring: o.monitoring } : {}),
          ...(o.balancer !== undefined ? { balancer: o.balancer } : {}),
          ...(o.containers !== undefined ? { containers: o.containers } : {}),
          ...(o.metricsIntervalMs !== undefined ? { metricsIntervalMs: o.metricsIntervalMs } : {}),
          ...(o.metricsHistoryMs !== undefined ? { metricsHistoryMs: o.metricsHistoryMs } : {}),
        };
        void agent
          .reload({
            logLevel: parseLogLevel(next.logLevel),
            eventHandlers: next.eventHandlers,
            ...(usesTagsFile ? {} : { tags: next.tags }),
            sections,
          })
          .catch((e: unknown) => io.stderr(`==> Failed to reload: ${(e as Error).message}\n`));
        config = { ...next, nodeName: config.nodeName };
      } catch (e) {
        io.stderr(`==> Failed to reload: ${(e as Error).message}\n`);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    agent.on('shutdown', () => {
      detach();
      if (!exiting) {
        exiting = true;
        resolve(0);
      }
    });
  });

  // After the signal handlers are in: an INT/TERM sent on seeing the banner leaves gracefully.
  const bind = agent.bindAddress;
  const rpc = agent.rpcAddress;
  io.stdout(
    [
      '==> kodama agent running!',
      `         Node name: '${agent.nodeName}'`,
      `         Bind addr: '${bind.ip}:${bind.port}'`,
      `    Advertise addr: '${agent.advertiseAddress.ip}:${agent.advertiseAddress.port}'`,
      `          RPC addr: '${rpc === undefined ? '' : `${rpc.host}:${rpc.port}`}'`,
      // Only with -http-addr: the banner stays serf's otherwise.
      ...(agent.http !== undefined ? [`         Dashboard: '${agent.http.url('/ui/')}'`] : []),
      `         Encrypted: ${agent.encrypted}`,
      `          Snapshot: ${config.snapshotPath !== undefined && config.snapshotPath !== ''}`,
      `           Profile: ${config.profile}`,
      // serf prints the mDNS cluster in its banner too.
      ...(config.discover ? [`      mDNS cluster: ${config.discover}`] : []),
      ...(config.services !== undefined && config.services.length > 0
        ? [`          Services: ${config.services.map((sv) => `${sv.name} (${sv.protocol} ${sv.port}, ${sv.checks.length} check${sv.checks.length === 1 ? '' : 's'})`).join(', ')}`]
        : []),
      ...(config.containers !== undefined ? [`        Containers: ${config.containers.socket}`] : []),
      ...(config.balancer !== undefined
        ? [`          Balancer: ${config.balancer.driver}: ${config.balancer.services.map((b) => `${b.service} on ${b.bind.host}:${b.bind.port}`).join(', ')}`]
        : []),
      ...(config.checks !== undefined && config.checks.length > 0
        ? [`            Checks: ${config.checks.map((ch) => `${ch.name}${ch.subscriptions.length > 0 ? ` (${ch.subscriptions.join(', ')})` : ''}`).join(', ')}`]
        : []),
      ...(config.monitoring !== undefined
        ? [`        Monitoring: ${config.monitoring.handlers.length} handler(s): ${config.monitoring.handlers.map((h) => `${h.name} (${h.type})`).join(', ') || 'none'}`]
        : []),
      '',
      '==> Log data will now stream in as it occurs:',
      '',
    ].join('\n') + '\n',
  );

  if (config.startJoin.length > 0) {
    io.stdout(`==> Joining cluster...(replay: ${config.replayOnJoin})\n`);
    const r = await agent.join(config.startJoin, config.replayOnJoin);
    if (r.num === 0) {
      io.stderr(`==> Failed to join: ${r.errors.join('; ')}\n${joinAdvice(r.errors).map((a) => `    ${a}\n`).join('')}`);
      await agent.stop();
      await finished;
      return 1;
    }
    io.stdout(`    Join completed. Synced with ${r.num} initial agents\n`);
  }

  if (config.retryJoin.length > 0) {
    void retryJoin(agent, config, () => stopRetry).then((ok) => {
      if (!ok && !stopRetry) exitWith(1);
    });
  }
  return finished.finally(() => syslog?.close());
}

/**
 * serf's retryJoin: try every retry-join address until one push/pull succeeds; after
 * `retryMaxAttempts` failed attempts (0 = unlimited) give up, which exits the agent with 1.
 */
export async function retryJoin(agent: Agent, config: ResolvedConfig, stopped: () => boolean): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    if (stopped()) return true;
    agent.logger.log('INFO', `agent: Joining cluster...(replay: ${config.replayOnJoin})`);
    let r: { num: number; errors: string[] };
    try {
      r = await agent.join(config.retryJoin, config.replayOnJoin);
    } catch (e) {
      // the agent is leaving or stopped: nothing left to retry for
      agent.logger.log('DEBUG', `agent: retry join stopped: ${(e as Error).message}`);
      return true;
    }
    if (r.num > 0) {
      agent.logger.log('INFO', `agent: Join completed. Synced with ${r.num} initial agents`);
      return true;
    }
    // serf's count: retry-max=N gives up after N retries, i.e. N+1 attempts
    if (config.retryMaxAttempts > 0 && attempt > config.retryMaxAttempts) {
      agent.logger.log('ERR', 'agent: maximum retry join attempts made, exiting');
      return false;
    }
    agent.logger.log('WARN', `agent: Join failed: ${r.errors.join('; ')}, retrying in ${config.retryIntervalMs / 1000}s`);
    const until = Date.now() + config.retryIntervalMs;
    while (Date.now() < until && !stopped()) await new Promise((res) => setTimeout(res, Math.min(250, until - Date.now())));
  }
}

export const agentCommand: Command = { synopsis: 'Runs a kodama agent', help, flags: FLAGS, run };
