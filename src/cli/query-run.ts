// Running a query over RPC until its deadline, shared by `query` and `reachability`. It goes
// through RpcClient.subscribe rather than RpcClient.query so that "no payload" is sent as nil,
// as serf's CLI does: serf only lets `_serf_ping` through RPC when its payload is nil.

import type { RpcClient, RpcError } from '../rpc/index.ts';
import { decodeQueryRecord } from '../rpc/streams.ts';
import type { RpcQueryResult } from '../rpc/streams.ts';

export interface QueryRequest {
  name: string;
  /** null = no payload (nil on the wire). */
  payload: Uint8Array | null;
  filterNodes: string[];
  filterTags: Record<string, string>;
  requestAck: boolean;
  relayFactor: number;
  /** 0 = the agent's default. */
  timeoutMs: number;
}

/**
 * Send the query and deliver results until the agent says the deadline passed ('done'), the
 * user interrupts ('interrupted') or the connection dies (rejects with its RpcError).
 */
export async function runQuery(
  client: RpcClient,
  q: QueryRequest,
  on: { started?: () => void; result: (r: RpcQueryResult) => void },
  interrupt: AbortSignal | undefined,
): Promise<'done' | 'interrupted'> {
  let settle!: (how: 'done' | 'interrupted') => void;
  let fail!: (err: RpcError) => void;
  const finished = new Promise<'done' | 'interrupted'>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // When we return early (interrupted before waiting), nobody awaits `finished`; the client's
  // close then rejects it. Mark it handled so that is not an unhandled rejection (a crash).
  finished.catch(() => undefined);
  const onAbort = (): void => settle('interrupted');
  // Records parsed in the same chunk as the acknowledging header arrive before `subscribe`
  // resolves: hold them so that `started` (serf's "Query 'x' dispatched") always comes first.
  let early: RpcQueryResult[] | null = [];
  await client.subscribe(
    'query',
    {
      FilterNodes: q.filterNodes.length === 0 ? null : [...q.filterNodes],
      FilterTags: Object.keys(q.filterTags).length === 0 ? null : { ...q.filterTags },
      Name: q.name,
      Payload: q.payload,
      RelayFactor: q.relayFactor,
      RequestAck: q.requestAck,
      // Go time.Duration: nanoseconds
      Timeout: Math.round(q.timeoutMs * 1e6),
    },
    (body) => {
      const r = decodeQueryRecord(body);
      if (r === 'done') {
        settle('done');
        return 'end';
      }
      // A real serf agent may stream a burst of acks from '' at the end: its RPC stream selects on
      // the query's ack channel, which is closed at the deadline, before its own end-of-query
      // timer fires (serf ipc_query_response_stream.go), so every read of the closed channel
      // becomes an "ack". Under load that was 168 of them in one `reachability`. No member has
      // an empty name, so such records carry nothing: drop them.
      if (r.from === '') return undefined;
      if (early !== null) early.push(r);
      else on.result(r);
      return undefined;
    },
    (err) => fail(err),
  );
  on.started?.();
  const held = early;
  early = null;
  for (const r of held) on.result(r);
  if (interrupt?.aborted === true) return 'interrupted';
  interrupt?.addEventListener('abort', onAbort, { once: true });
  try {
    return await finished;
  } finally {
    interrupt?.removeEventListener('abort', onAbort);
  }
}
