// `kodama silence add|list|remove`: silences stop alerts for matching checks (by node, role
// and/or check) until they expire or are removed. Adding and removing are user events
// (`kodama-silence`, a SilenceOp) every monitor applies; listing asks the monitors (query
// `kodama-silences`, sent only to members tagged mon=1) and merges their answers by id.

import { randomBytes } from 'node:crypto';
import { MONITOR_TAG, SILENCE_EVENT, SILENCES_QUERY } from '../checks/types.ts';
import type { Silence, SilenceOp } from '../checks/types.ts';
import type { Command } from './io.ts';
import { subcommandGroup } from './subcommands.ts';
import { parseDurationMs } from './duration.ts';
import { columnize } from './columnize.ts';
import { DEFAULT_QUERY_TIMEOUT_MS, collectAnswers, exactRegexp } from './checks.ts';
import { RPC_HELP, rpcCommand, usage } from './rpc-command.ts';

/** serf's user event limit: name + payload. */
const USER_EVENT_LIMIT_BYTES = 512;
export const DEFAULT_EXPIRE_MS = 3_600_000;
const MAX_FIELD_CHARS = 128;
const MAX_REASON_CHARS = 256;

const topHelp = `Usage: kodama silence <subcommand> [options]

  Silences stop alerts for the checks they match until they expire or are
  removed. Every monitor (agent with "monitoring" in its config) applies them.

Subcommands:

    add       Add a silence (prints its id)
    list      List the silences the monitors know
    remove    Remove a silence by id

Run "kodama silence <subcommand> -help" for its options.
`;

const addHelp = `Usage: kodama silence add [options]

  Silences alerts for every check matching all the given matchers (at least
  one). Sent to the cluster as user event "${SILENCE_EVENT}"; prints the new
  silence's id (for "kodama silence remove").

Options:

  -node=NAME                Checks of this node.
  -role=NAME                Checks of nodes with tag role=NAME.
  -check=NAME               Checks with this name.
  -expire=1h                How long the silence lasts (Go duration: 30m,
                            2h, 1h30m); "never" = until removed.
  -reason=TEXT              Why (shown by "kodama silence list"; at most 256
                            characters).
${RPC_HELP}
`;

const listHelp = `Usage: kodama silence list [options]

  Lists the silences in force, as the monitors (members with tag
  ${MONITOR_TAG}=1) report them (query "${SILENCES_QUERY}"), merged by id.
  Exits 1 when no monitor answers.

Options:

  -format=text|json         Output format (default text). JSON: {"silences":
                            [{"id", "node", "role", "check", "expires_at" (ms
                            since the epoch, or null), "reason", "creator",
                            "created_at"}], "monitors": ["name", ...],
                            "truncated": true when a monitor could list
                            only its newest (an answer holds ~1 KB)}.
  -timeout=5s               How long to wait for the monitors at most.
${RPC_HELP}
`;

const removeHelp = `Usage: kodama silence remove [options] <id>

  Removes a silence (ids from "kodama silence list"). Sent to the cluster as
  user event "${SILENCE_EVENT}".

Options:

${RPC_HELP}
`;

function silenceMatchers(s: Pick<Silence, 'node' | 'role' | 'check'>): string {
  return [s.node === undefined ? '' : `node=${s.node}`, s.role === undefined ? '' : `role=${s.role}`, s.check === undefined ? '' : `check=${s.check}`]
    .filter((x) => x !== '')
    .join(' ');
}

export function formatIn(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 === 0 ? '' : `${s % 60}s`}`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 === 0 ? '' : `${m % 60}m`}`;
}

const addCommand = rpcCommand({
  name: 'silence add',
  synopsis: 'Add a silence',
  help: addHelp,
  flags: [
    { name: 'node', kind: 'string' },
    { name: 'role', kind: 'string' },
    { name: 'check', kind: 'string' },
    { name: 'expire', kind: 'string' },
    { name: 'reason', kind: 'string' },
  ],
  failure: 'Error sending the silence',
  parse: (f, io) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    // the monitors refuse longer fields (src/checks/silences.ts): say so here, not silently there
    const pick = (k: string): string | undefined => {
      const v = f.strings.get(k);
      if (v === '') throw usage(`-${k} must not be empty`);
      if (v !== undefined && v.length > MAX_FIELD_CHARS) throw usage(`-${k} is longer than ${MAX_FIELD_CHARS} characters`);
      return v;
    };
    const node = pick('node');
    const role = pick('role');
    const check = pick('check');
    if (node === undefined && role === undefined && check === undefined) {
      throw usage('A silence needs at least one matcher: -node, -role or -check.');
    }
    const e = f.strings.get('expire');
    const expireMs = e === undefined ? DEFAULT_EXPIRE_MS : e === 'never' ? undefined : parseDurationMs(e);
    if (expireMs !== undefined && expireMs <= 0) throw usage(`-expire must be positive (or "never"), got "${e}"`);
    const reason = f.strings.get('reason');
    if (reason !== undefined && reason.length > MAX_REASON_CHARS) throw usage(`-reason is longer than ${MAX_REASON_CHARS} characters`);
    const user = io.env['USER'] ?? io.env['LOGNAME'];
    return { node, role, check, expireMs, reason, user };
  },
  exec: async (client, o, io) => {
    const now = Date.now();
    const silence: Silence = {
      id: randomBytes(4).toString('hex'),
      ...(o.node === undefined ? {} : { node: o.node }),
      ...(o.role === undefined ? {} : { role: o.role }),
      ...(o.check === undefined ? {} : { check: o.check }),
      ...(o.expireMs === undefined ? {} : { expiresAt: now + o.expireMs }),
      ...(o.reason === undefined ? {} : { reason: o.reason }),
      ...(o.user === undefined || o.user === '' ? {} : { creator: o.user }),
      createdAt: now,
    };
    const op: SilenceOp = { op: 'add', silence };
    const payload = new TextEncoder().encode(JSON.stringify(op));
    if (SILENCE_EVENT.length + payload.length > USER_EVENT_LIMIT_BYTES) {
      io.stderr(`The silence does not fit a user event (${SILENCE_EVENT.length + payload.length} > ${USER_EVENT_LIMIT_BYTES} bytes): shorten -reason.\n`);
      return 1;
    }
    // Not coalesced: two silences added in a row must both arrive.
    await client.userEvent(SILENCE_EVENT, payload, false);
    const expires = o.expireMs === undefined ? 'never expires' : `expires in ${formatIn(o.expireMs)}`;
    io.stdout(`Silence ${silence.id} added (${silenceMatchers(silence)}; ${expires})\n`);
    return 0;
  },
});

/**
 * A monitor's answer: {"monitor", "silences": [...], "total", "truncated"} (a bare list is read
 * too); entries without an id are skipped. undefined when it is not such an answer.
 */
export function parseSilences(text: string): { silences: Silence[]; total: number; truncated: boolean } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const obj = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const list = Array.isArray(v) ? (v as unknown[]) : Array.isArray(obj?.['silences']) ? (obj['silences'] as unknown[]) : undefined;
  if (list === undefined) return undefined;
  const out: Silence[] = [];
  for (const x of list) {
    if (typeof x !== 'object' || x === null) continue;
    const s = x as Record<string, unknown>;
    if (typeof s['id'] !== 'string' || s['id'] === '') continue;
    const str = (k: string): string | undefined => (typeof s[k] === 'string' && s[k] !== '' ? (s[k] as string) : undefined);
    const node = str('node');
    const role = str('role');
    const check = str('check');
    const reason = str('reason');
    const creator = str('creator');
    const expiresAt = typeof s['expiresAt'] === 'number' ? s['expiresAt'] : undefined;
    out.push({
      id: s['id'] as string,
      ...(node === undefined ? {} : { node }),
      ...(role === undefined ? {} : { role }),
      ...(check === undefined ? {} : { check }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(reason === undefined ? {} : { reason }),
      ...(creator === undefined ? {} : { creator }),
      createdAt: typeof s['createdAt'] === 'number' ? s['createdAt'] : 0,
    });
  }
  const total = typeof obj?.['total'] === 'number' ? obj['total'] : out.length;
  return { silences: out, total, truncated: obj?.['truncated'] === true || total > out.length };
}

/** Merge the monitors' lists by id, dropping what has expired by `nowMs`; sorted by id. */
export function mergeSilences(lists: readonly Silence[][], nowMs: number): Silence[] {
  const byId = new Map<string, Silence>();
  for (const l of lists) for (const s of l) if (s.expiresAt === undefined || s.expiresAt > nowMs) byId.set(s.id, byId.get(s.id) ?? s);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

const listCommand = rpcCommand({
  name: 'silence list',
  synopsis: 'List silences',
  help: listHelp,
  flags: [
    { name: 'format', kind: 'string' },
    { name: 'timeout', kind: 'string' },
  ],
  failure: 'Error listing silences',
  parse: (f) => {
    if (f.positional.length > 0) throw usage(`unexpected argument: ${f.positional[0]}`);
    const format = f.strings.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw usage(`Invalid format: ${format} (use text or json)`);
    const t = f.strings.get('timeout');
    const timeoutMs = t === undefined ? DEFAULT_QUERY_TIMEOUT_MS : parseDurationMs(t);
    if (timeoutMs <= 0) throw usage(`-timeout must be positive, got "${t}"`);
    return { format, timeoutMs };
  },
  exec: async (client, o, io) => {
    const monitors = (await client.members()).filter((m) => m.status === 'alive' && m.tags[MONITOR_TAG] === '1').map((m) => m.name);
    const { answers, interrupted } = await collectAnswers(
      client,
      {
        name: SILENCES_QUERY,
        payload: null,
        filterNodes: [],
        filterTags: { [MONITOR_TAG]: exactRegexp('1') },
        requestAck: false,
        relayFactor: 0,
        timeoutMs: o.timeoutMs,
      },
      io,
      { waitFor: new Set(monitors), askAgain: (got) => monitors.filter((n) => !got.has(n)) },
    );
    if (interrupted) return 1;
    const lists: Silence[][] = [];
    const answered: string[] = [];
    let mostHeld = 0;
    let truncated = false;
    for (const [from, text] of answers) {
      const l = parseSilences(text);
      if (l === undefined) {
        io.stderr(`Ignoring an unreadable answer from ${from}\n`);
        continue;
      }
      lists.push(l.silences);
      answered.push(from);
      mostHeld = Math.max(mostHeld, l.total);
      truncated ||= l.truncated;
    }
    if (answered.length === 0) {
      io.stderr(
        monitors.length === 0
          ? `No monitor in the cluster (no alive member with tag ${MONITOR_TAG}=1): give an agent a "monitoring" section in its config.\n`
          : `No monitor answered within ${formatIn(o.timeoutMs)} (monitors: ${monitors.join(', ')}); try a longer -timeout.\n`,
      );
      return 1;
    }
    const now = Date.now();
    const silences = mergeSilences(lists, now);
    // A query answer holds ~1 KB: a monitor with many silences lists its newest only.
    if (truncated) io.stderr(`Only part of the list fits a query answer: showing ${silences.length}, a monitor holds ${mostHeld}.\n`);
    if (o.format === 'json') {
      const doc = {
        silences: silences.map((s) => ({
          id: s.id,
          node: s.node ?? null,
          role: s.role ?? null,
          check: s.check ?? null,
          expires_at: s.expiresAt ?? null,
          reason: s.reason ?? '',
          creator: s.creator ?? '',
          created_at: s.createdAt,
        })),
        monitors: answered.sort(),
        truncated,
      };
      io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
      return 0;
    }
    if (silences.length === 0) {
      io.stdout('No silences.\n');
      return 0;
    }
    const rows = [
      ['ID', 'MATCHES', 'EXPIRES IN', 'CREATOR', 'REASON'],
      ...silences.map((s) => [s.id, silenceMatchers(s), s.expiresAt === undefined ? 'never' : formatIn(s.expiresAt - now), s.creator ?? '-', s.reason ?? '']),
    ];
    io.stdout(`${columnize(rows)}\n`);
    return 0;
  },
});

const removeCommand = rpcCommand({
  name: 'silence remove',
  synopsis: 'Remove a silence',
  help: removeHelp,
  flags: [],
  failure: 'Error sending the removal',
  parse: (f) => {
    const [id, ...more] = f.positional;
    if (id === undefined || id === '') throw usage('A silence id must be specified (see "kodama silence list").');
    if (more.length > 0) throw usage('Too many arguments: only one silence id.');
    return { id };
  },
  exec: async (client, o, io) => {
    const op: SilenceOp = { op: 'remove', id: o.id };
    await client.userEvent(SILENCE_EVENT, new TextEncoder().encode(JSON.stringify(op)), false);
    io.stdout(`Silence ${o.id} removal sent\n`);
    return 0;
  },
});

const SUBCOMMANDS: Record<string, Command> = { add: addCommand, list: listCommand, remove: removeCommand };

export const silenceCommand: Command = subcommandGroup('Add, list or remove alert silences', topHelp, SUBCOMMANDS);
