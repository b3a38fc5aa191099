// Push/pull state exchange (doc §3.2, §4.11, §4.12): full anti-entropy over a stream, used both
// to join (Join = true) and periodically to repair whatever gossip missed.

import type { NodeInfo } from './api.ts';
import { hasVsn, type NodeStates } from './nodes.ts';
import { bytesToIp } from '../wire/addr.ts';
import type { NodeRef } from './table.ts';
import type { PushNodeState, PushPullMsg } from '../wire/types.ts';

/** Clusters above this size push/pull less often so the total TCP load stays flat. */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/** interval × (ceil(log2 n − log2 32) + 1) above 32 nodes, else interval. */
export function pushPullScaleMs(intervalMs: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return mult * intervalMs;
}

/** Our whole table (dead and left included until purged) plus the delegate's state. */
export function buildPushPull(nodes: readonly NodeRef[], join: boolean, userState: Uint8Array): PushPullMsg {
  return {
    type: 'pushPull',
    join,
    nodes: nodes.map((n) => ({
      name: n.name,
      addr: n.ipBytes,
      port: n.addr.port,
      meta: n.meta,
      incarnation: n.incarnation,
      state: n.state,
      vsn: n.vsn,
    })),
    userState,
  };
}

/**
 * Every node's current protocol versions must fit the range all alive nodes (remote and local)
 * understand. Returns the error text memberlist would give, or null when compatible.
 */
export function verifyProtocol(remote: readonly PushNodeState[], local: readonly NodeInfo[]): string | null {
  let maxPMin = 0;
  let minPMax = 255;
  let maxDMin = 0;
  let minDMax = 255;
  const widen = (v: readonly number[]): void => {
    maxPMin = Math.max(maxPMin, v[0] ?? 0);
    minPMax = Math.min(minPMax, v[1] ?? 0);
    maxDMin = Math.max(maxDMin, v[3] ?? 0);
    minDMax = Math.min(minDMax, v[4] ?? 0);
  };
  for (const r of remote) if (r.state === 'alive' && hasVsn(r.vsn)) widen(r.vsn);
  for (const n of local) if (n.state === 'alive') widen(n.vsn);
  const check = (name: string, v: readonly number[]): string | null => {
    const pCur = v.length > 0 ? (v[2] ?? 0) : 0;
    const dCur = v.length > 0 ? (v[5] ?? 0) : 0;
    if (pCur < maxPMin || pCur > minPMax) {
      return `Node '${name}' protocol version (${pCur}) is incompatible: [${maxPMin}, ${minPMax}]`;
    }
    if (dCur < maxDMin || dCur > minDMax) {
      return `Node '${name}' delegate protocol version (${dCur}) is incompatible: [${maxDMin}, ${minDMax}]`;
    }
    return null;
  };
  for (const r of remote) {
    const err = check(r.name, r.vsn);
    if (err !== null) return err;
  }
  for (const n of local) {
    const err = check(n.name, n.vsn);
    if (err !== null) return err;
  }
  return null;
}

/**
 * Merge a remote node list: alive → alive news; left → dead news from the node itself (= left);
 * suspect and dead → only a suspicion accused by us (a remote "dead" must not kill a node we
 * can still reach). Entries with an unusable address are skipped and reported.
 */
export function mergeState(
  states: NodeStates,
  selfName: string,
  remote: readonly PushNodeState[],
  now: number,
  onBad: (name: string, detail: string) => void,
): void {
  states.quietly(() => mergeEntries(states, selfName, remote, now, onBad));
}

function mergeEntries(
  states: NodeStates,
  selfName: string,
  remote: readonly PushNodeState[],
  now: number,
  onBad: (name: string, detail: string) => void,
): void {
  for (const r of remote) {
    switch (r.state) {
      case 'alive': {
        let ip: string;
        try {
          ip = bytesToIp(r.addr);
        } catch (e) {
          onBad(r.name, (e as Error).message);
          continue;
        }
        states.aliveNode(
          {
            incarnation: r.incarnation,
            node: r.name,
            addr: { ip, port: r.port },
            ip4: r.addr.length === 4 ? r.addr : undefined,
            meta: r.meta,
            vsn: r.vsn,
          },
          now,
          false,
        );
        break;
      }
      case 'left':
        states.deadNode({ incarnation: r.incarnation, node: r.name, from: r.name }, now);
        break;
      case 'dead':
      case 'suspect':
        states.suspectNode({ incarnation: r.incarnation, node: r.name, from: selfName }, now);
        break;
    }
  }
}
