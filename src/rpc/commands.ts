// The command table: what each RPC command does against an RpcBackend. Framing (which commands
// carry bodies) lives in protocol.ts; ordering, auth and refusals in connection.ts. A command
// the backend cannot serve has no entry here and is answered "Feature not supported".

import { nodeCrypto } from '../wire/builtins.ts';
import { coordinateToMsg } from '../serf/coordinate.ts';
import { asBool, asBytes, asInt, asMap, asString, asUint, type MsgValue } from '../wire/index.ts';
import type { RpcBackend, RpcKeyResponse } from './backend.ts';
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
import { eventMatches, eventRecord, logLinePasses, parseEventFilter, parseMonitorLevel, queryRecord } from './streams.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8e = new TextEncoder();

function body(v: MsgValue | undefined): { [key: string]: MsgValue } {
  return asMap(v);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Compare digests so the time taken does not reveal how much of the token matched. */
export function tokenMatches(given: string, expected: string): boolean {
  const { createHash, timingSafeEqual } = nodeCrypto();
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
          if (!eventMatches(filter, e)) return;
          const queryId = e.type === 'query' ? ctx.conn.registerQuery(e.respond, e.timeoutMs) : 0;
          send(eventRecord(e, queryId));
        }),
      );
    });

    // Only queries delivered through `stream` have IDs to respond to.
    t.set('respond', async (ctx, b) => {
      const req = body(b);
      const respond = ctx.conn.pendingQuery(asUint(req['ID']));
      if (respond === undefined) return ctx.reply(RpcErrorText.invalidQueryId);
      try {
        await respond(asBytes(req['Payload']) ?? new Uint8Array(0));
        ctx.reply('');
      } catch (err) {
        ctx.reply(errorText(err));
      }
    });
  }

  const query = backend.query?.bind(backend);
  if (query !== undefined) {
    t.set('query', async (ctx, b) => {
      const req = body(b);
      const timeoutNs = req['Timeout'] === undefined ? 0 : asInt(req['Timeout']);
      const params = {
        name: asString(req['Name']),
        payload: asBytes(req['Payload']) ?? new Uint8Array(0),
        filterNodes: decodeStringList(req['FilterNodes']),
        filterTags: decodeStringMap(req['FilterTags']),
        requestAck: asBool(req['RequestAck']),
        relayFactor: req['RelayFactor'] === undefined ? 0 : asUint(req['RelayFactor']),
        // Go's time.Duration is nanoseconds; round up so a tiny timeout is not "default" (0).
        timeoutMs: timeoutNs <= 0 ? 0 : Math.max(1, Math.ceil(timeoutNs / 1e6)),
      };
      // Results can arrive (the local node acks at once) before the query call returns; serf
      // buffers them until the acknowledging header is out, so the client sees it first.
      let early: MsgValue[] | null = [];
      let finished = false;
      const emit = (record: MsgValue): void => {
        if (finished) return;
        if (early !== null) early.push(record);
        else ctx.conn.sendRecord(ctx.seq, record);
      };
      const sink = {
        ack: (from: string) => emit(queryRecord('ack', from, null)),
        response: (from: string, payload: Uint8Array) => emit(queryRecord('response', from, payload)),
        done: () => {
          emit(queryRecord('done', '', null));
          finished = true;
          ctx.conn.forgetStream(ctx.seq);
        },
      };
      let cancel: () => void;
      try {
        cancel = await query(params, sink);
      } catch (err) {
        finished = true;
        return ctx.reply(errorText(err));
      }
      ctx.reply('');
      const buffered = early;
      early = null;
      for (const r of buffered) ctx.conn.sendRecord(ctx.seq, r);
      const stop = (): void => {
        finished = true;
        cancel();
      };
      if (!finished && !ctx.conn.openStream(ctx.seq, { kind: 'query', stop })) stop();
    });
  }

  const keyOp = (run: (req: { [key: string]: MsgValue }) => Promise<RpcKeyResponse>): CommandHandler => async (ctx, b) => {
    const req = body(b);
    let r: RpcKeyResponse;
    try {
      r = await run(req);
    } catch (err) {
      return ctx.reply(errorText(err));
    }
    ctx.reply(r.error, {
      Keys: r.keys === undefined ? null : { ...r.keys },
      Messages: { ...r.messages },
      NumErr: r.numErr,
      NumNodes: r.numNodes,
      NumResp: r.numResp,
    });
  };
  const installKey = backend.installKey?.bind(backend);
  if (installKey !== undefined) t.set('install-key', keyOp((req) => installKey(asString(req['Key']))));
  const useKey = backend.useKey?.bind(backend);
  if (useKey !== undefined) t.set('use-key', keyOp((req) => useKey(asString(req['Key']))));
  const removeKey = backend.removeKey?.bind(backend);
  if (removeKey !== undefined) t.set('remove-key', keyOp((req) => removeKey(asString(req['Key']))));
  const listKeys = backend.listKeys?.bind(backend);
  if (listKeys !== undefined) t.set('list-keys', keyOp(() => listKeys()));

  const getCoordinate = backend.getCoordinate?.bind(backend);
  if (getCoordinate !== undefined) {
    t.set('get-coordinate', (ctx, b) => {
      const c = getCoordinate(asString(body(b)['Node']));
      if (c === null) return ctx.reply('');
      ctx.reply('', { Coord: coordinateToMsg(c), Ok: true });
    });
  }

  const kodama = backend.kodama?.bind(backend);
  if (kodama !== undefined) {
    t.set('kodama', async (ctx, b) => {
      const req = body(b);
      const op = asString(req['Op']);
      const argBytes = asBytes(req['Args']);
      let args: unknown = null;
      if (argBytes !== null && argBytes.length > 0) {
        try {
          args = JSON.parse(utf8.decode(argBytes));
        } catch {
          return ctx.reply(`operation ${op}: Args is not JSON`);
        }
      }
      let result: unknown;
      try {
        result = await kodama(op, args);
      } catch (err) {
        return ctx.reply(errorText(err));
      }
      const text = result === undefined ? '' : JSON.stringify(result);
      ctx.reply('', { Result: utf8e.encode(text) });
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
