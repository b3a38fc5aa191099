// The command table: what each RPC command does against an RpcBackend. Framing (which commands
// carry bodies) lives in protocol.ts; ordering, auth and refusals in connection.ts. A command
// the backend cannot serve has no entry here and is answered "Feature not supported".

import { createHash, timingSafeEqual } from 'node:crypto';
import { asBool, asBytes, asInt, asMap, asString, asUint, type MsgValue } from '../wire/index.ts';
import type { RpcBackend } from './backend.ts';
import type { CommandContext, CommandHandler } from './connection.ts';
import { filterMembers, FilterError } from './filter.ts';
import {
  decodeStringList,
  decodeStringMap,
  IPC_VERSION_MAX,
  IPC_VERSION_MIN,
  memberToWire,
  RpcErrorText,
} from './protocol.ts';
import { eventMatches, eventRecord, logLinePasses, parseEventFilter, parseMonitorLevel } from './streams.ts';

function body(v: MsgValue | undefined): { [key: string]: MsgValue } {
  return asMap(v);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Compare digests so the time taken does not reveal how much of the token matched. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function buildCommandTable(backend: RpcBackend, authKey: string): Map<string, CommandHandler> {
  const t = new Map<string, CommandHandler>();

  t.set('handshake', (ctx, b) => {
    const v = body(b)['Version'];
    const version = v === undefined ? 0 : asInt(v);
    if (version < IPC_VERSION_MIN || version > IPC_VERSION_MAX) return ctx.reply(RpcErrorText.unsupportedIpcVersion);
    if (ctx.conn.version !== 0) return ctx.reply(RpcErrorText.duplicateHandshake);
    ctx.conn.version = version;
    ctx.reply('');
  });

  t.set('auth', (ctx, b) => {
    const key = asString(body(b)['AuthKey']);
    // As serf: with no rpc_auth configured, only an empty token is "right".
    if (tokenMatches(key, authKey)) {
      ctx.conn.didAuth = true;
      return ctx.reply('');
    }
    ctx.conn.refused('authFailed');
    ctx.reply(RpcErrorText.invalidAuthToken);
  });

  const members: CommandHandler = (ctx, b) => {
    let list = backend.members();
    if (ctx.command === 'members-filtered') {
      const req = body(b);
      try {
        list = filterMembers(list, {
          name: asString(req['Name']),
          status: asString(req['Status']),
          tags: decodeStringMap(req['Tags']),
        });
      } catch (err) {
        // serf drops the connection here; an error reply tells the user what was wrong instead.
        if (err instanceof FilterError) return ctx.reply(err.message);
        throw err;
      }
    }
    ctx.reply('', { Members: list.map(memberToWire) });
  };
  t.set('members', members);
  t.set('members-filtered', members);

  t.set('stop', (ctx, b) => {
    ctx.conn.stopStream(asUint(body(b)['Stop']));
    ctx.reply('');
  });

  const join = backend.join?.bind(backend);
  if (join !== undefined) {
    t.set('join', async (ctx, b) => {
      const req = body(b);
      const addrs = decodeStringList(req['Existing']);
      const replay = req['Replay'] === undefined || req['Replay'] === null ? false : asBool(req['Replay']);
      try {
        const r = await join(addrs, replay);
        ctx.reply(r.error, { Num: r.num });
      } catch (err) {
        ctx.reply(errorText(err), { Num: 0 });
      }
    });
  }

  const leave = backend.leave?.bind(backend);
  if (leave !== undefined) {
    t.set('leave', async (ctx) => {
      try {
        await leave();
        ctx.reply('');
      } catch (err) {
        ctx.reply(errorText(err));
      }
    });
  }

  const stats = backend.stats?.bind(backend);
  if (stats !== undefined) {
    t.set('stats', (ctx) => {
      const s = stats();
      const out: { [k: string]: MsgValue } = {};
      for (const [section, kv] of Object.entries(s)) out[section] = { ...kv };
      ctx.reply('', out);
    });
  }

  /** A backend call answered with '' or the error's message (header only). */
  const simple =
    (run: (req: { [key: string]: MsgValue }) => Promise<void>): CommandHandler =>
    async (ctx, b) => {
      const req = body(b);
      let error = '';
      try {
        await run(req);
      } catch (err) {
        error = errorText(err);
      }
      ctx.reply(error);
    };

  const userEvent = backend.userEvent?.bind(backend);
  if (userEvent !== undefined) {
    t.set(
      'event',
      simple((req) => userEvent(asString(req['Name']), asBytes(req['Payload']) ?? new Uint8Array(0), asBool(req['Coalesce']))),
    );
  }

  const forceLeave = backend.forceLeave?.bind(backend);
  if (forceLeave !== undefined) {
    t.set('force-leave', simple((req) => forceLeave(asString(req['Node']), asBool(req['Prune']))));
  }

  const setTags = backend.setTags?.bind(backend);
  if (setTags !== undefined) {
    t.set('tags', simple((req) => setTags(decodeStringMap(req['Tags']), decodeStringList(req['DeleteTags']))));
  }

  const subscribeEvents = backend.subscribeEvents?.bind(backend);
  if (subscribeEvents !== undefined) {
    t.set('stream', (ctx, b) => {
      const filter = parseEventFilter(asString(body(b)['Type']));
      if (filter === null) return ctx.reply(RpcErrorText.invalidFilter);
      if (ctx.conn.streams.has(ctx.seq)) return ctx.reply(RpcErrorText.streamExists);
      // Acknowledge first: the client treats the first response under this Seq as the answer.
      ctx.reply('');
      openSubscription(ctx, 'stream', (send) =>
        subscribeEvents((e) => {
          if (eventMatches(filter, e)) send(eventRecord(e));
        }),
      );
    });
  }

  const subscribeLogs = backend.subscribeLogs?.bind(backend);
  if (subscribeLogs !== undefined) {
    t.set('monitor', (ctx, b) => {
      const asked = asString(body(b)['LogLevel']);
      const level = parseMonitorLevel(asked);
      if (level === null) return ctx.reply(`Unknown log level: ${asked.toUpperCase()}`);
      for (const s of ctx.conn.streams.values()) if (s.kind === 'monitor') return ctx.reply(RpcErrorText.monitorExists);
      ctx.reply('');
      openSubscription(ctx, 'monitor', (send) =>
        subscribeLogs((line) => {
          if (logLinePasses(line, level)) send({ Log: line });
        }),
      );
    });
  }

  return t;
}

/**
 * Subscribe and register the subscription under the request's Seq so `stop` and closing the
 * connection end it. Records sent before registration (a replay) are fine: they carry the Seq.
 */
function openSubscription(
  ctx: CommandContext,
  kind: 'stream' | 'monitor',
  subscribe: (send: (record: MsgValue) => void) => () => void,
): void {
  let active = true;
  const unsubscribe = subscribe((record) => {
    if (active) ctx.conn.sendRecord(ctx.seq, record);
  });
  const stop = (): void => {
    if (!active) return;
    active = false;
    unsubscribe();
  };
  if (!ctx.conn.openStream(ctx.seq, { kind, stop })) stop();
}
