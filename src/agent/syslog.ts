// `-syslog` / `-syslog-facility`, as serf has them: every log line that passes the level filter
// also goes to the local syslog, tagged `kodama[<pid>]`, at the facility given (default LOCAL0)
// and a priority from its level as serf maps them (ERR → err, WARN → warning, INFO → notice,
// DEBUG → info, TRACE → debug),
// without the timestamp and level the text line carries (syslog adds its own).
//
// Node cannot send to a Unix datagram socket (/dev/log), so the lines go through one long-lived
// `logger` process (util-linux, on every Debian system) reading them on stdin, each with its own
// `<PRI>` prefix (`--prio-prefix`). The socket is the first of /dev/log, /var/run/syslog,
// /var/run/log that is a socket (serf's order), or KODAMA_SYSLOG_SOCKET.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { AgentError } from './errors.ts';
import type { LogLevel, LogRecord } from './log.ts';

const FACILITIES: Record<string, number> = {
  KERN: 0, USER: 1, MAIL: 2, DAEMON: 3, AUTH: 4, SYSLOG: 5, LPR: 6, NEWS: 7, UUCP: 8, CRON: 9, AUTHPRIV: 10, FTP: 11,
  LOCAL0: 16, LOCAL1: 17, LOCAL2: 18, LOCAL3: 19, LOCAL4: 20, LOCAL5: 21, LOCAL6: 22, LOCAL7: 23,
};
/** serf's mapping (its syslog wrapper): one step more urgent than the names say below WARN. */
const SEVERITY: Record<LogLevel, number> = { ERR: 3, WARN: 4, INFO: 5, DEBUG: 6, TRACE: 7 };
export const SYSLOG_SOCKETS = ['/dev/log', '/var/run/syslog', '/var/run/log'];
/** A line longer than this is cut (logger's own default limit is 1 KiB per message). */
const MAX_LINE = 1024;

/** The facility's number; throws AgentError (ERR_AGENT_CONFIG) naming the valid ones. */
export function syslogFacility(name: string): number {
  const f = FACILITIES[name.toUpperCase()];
  if (f === undefined) {
    throw new AgentError('ERR_AGENT_CONFIG', `invalid syslog facility "${name}": use one of ${Object.keys(FACILITIES).join(', ')}`);
  }
  return f;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** `<PRI>` of a line: facility × 8 + severity. */
export function syslogPriority(facility: number, level: LogLevel): number {
  return facility * 8 + SEVERITY[level];
}

export interface SyslogWriter {
  /** `line` is the text line (`2026/12/07 09:41:09 [INFO] serf: …`): what follows its level is sent. */
  write(r: LogRecord, line: string): void;
  close(): void;
}

export interface SyslogOptions {
  facility: string;
  /** Default: KODAMA_SYSLOG_SOCKET, else the first of SYSLOG_SOCKETS that exists. */
  socket?: string;
  tag?: string;
  /** Where to say that syslog stopped taking lines (once). */
  onError?: (msg: string) => void;
}

/** Start the writer; throws AgentError when no syslog socket exists or the facility is unknown. */
export function openSyslog(o: SyslogOptions): SyslogWriter {
  const facility = syslogFacility(o.facility);
  const socket = o.socket ?? SYSLOG_SOCKETS.find(isSocket);
  if (socket === undefined || !isSocket(socket)) {
    throw new AgentError(
      'ERR_AGENT_CONFIG',
      `Syslog setup failed: no syslog socket at ${socket ?? SYSLOG_SOCKETS.join(', ')} (KODAMA_SYSLOG_SOCKET names another): is a syslog daemon (rsyslog, journald) running? Or start without -syslog`,
    );
  }
  let child: ChildProcess | undefined = spawn('logger', ['--prio-prefix', '--tag', o.tag ?? 'kodama', `--id=${process.pid}`, '--socket-errors=on', '--socket', socket], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let err = '';
  const gone = (why: string): void => {
    if (child === undefined) return;
    child = undefined;
    o.onError?.(`syslog: stopped writing to ${socket}: ${why}${err !== '' ? `: ${err.trim().slice(0, 300)}` : ''}`);
  };
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-1000);
  });
  child.on('error', (e) => gone(e.message));
  child.on('exit', (code, signal) => gone(`logger exited (${signal ?? code})`));
  child.stdin!.on('error', () => undefined); // the exit handler reports it
  // The agent must not wait for it at exit: it ends when its stdin closes.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    write: (r, line) => {
      if (child === undefined) return;
      const at = line.indexOf('] ');
      const text = (at < 0 ? line : line.slice(at + 2)).replace(/\n/g, ' ').slice(0, MAX_LINE);
      child.stdin!.write(`<${syslogPriority(facility, r.level)}>${text}\n`);
    },
    close: () => {
      const c = child;
      child = undefined;
      c?.stdin?.end();
    },
  };
}
