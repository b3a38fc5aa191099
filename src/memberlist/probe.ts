// The failure detector's probe cycle (doc §4.3–4.5), one probe at a time:
//
//   ping (or ping + suspect compound if the target is suspect)
//     └─ no ack after probeTimeoutMs → indirect pings through k random alive nodes (asking for
//        nacks from PMax ≥ 4 relays) and, concurrently, a TCP ping (PMax ≥ 3, unless disabled)
//          └─ no ack by the probe deadline (probe interval × (health + 1)) → suspect the target
//
// Awareness: −1 per successful probe; on failure + the number of missing nacks (or +1 when no
// relay could nack). Also serves other nodes' indirect pings (relay with our own sequence
// number, answer with theirs).

import type { Delegate, NodeInfo, Random } from './api.ts';
import type { Awareness } from './awareness.ts';
import type { MemberlistConfig } from './config.ts';
import { snapshot, type NodeStates } from './nodes.ts';
import type { NodeTable } from './table.ts';
import type { TimerHandle, TimerSet } from './timers.ts';
import { bytesToIp, ipToBytes } from '../wire/addr.ts';
import type { Address, IndirectPingMsg, Message, PingMsg } from '../wire/types.ts';

/** Upper bound on indirect pings we relay at once; more are dropped (overload protection). */
export const MAX_PENDING_RELAYS = 1024;

export interface StreamHandlers {
  reply(msg: Message, now: number): void;
  fail(reason: string, now: number): void;
}

export interface ProbeHost {
  readonly config: MemberlistConfig;
  readonly table: NodeTable;
  readonly states: NodeStates;
  readonly awareness: Awareness;
  readonly timers: TimerSet;
  readonly random: Random;
  readonly delegate: Delegate | null;
  /** Send one message by UDP, piggybacking pending broadcasts. */
  sendMsg(to: Address, msg: Message, node?: NodeInfo): void;
  /** Send messages by UDP as given (compound when several), no piggyback. */
  sendRaw(to: Address, msgs: Message[], node?: NodeInfo): void;
  /** Open a stream, write msg, read one reply message. */
  openStream(to: Address, msg: Message, timeoutMs: number, now: number, h: StreamHandlers): void;
  drop(reason: string, detail: string, from?: Address): void;
  count(key: string, by?: number): void;
}

interface AckHandler {
  ack(payload: Uint8Array | null, now: number, viaTcp: boolean): void;
  nack(): void;
}

interface ProbeRun {
  seq: number;
  node: NodeInfo;
  sentMs: number;
  /** Past probeTimeoutMs: indirect pings are out, acks no longer measure RTT. */
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
  timeoutTimer: TimerHandle;
  deadlineTimer: TimerHandle;
}

export class Prober {
  private readonly acks = new Map<number, AckHandler>();
  private seq = 0;
  private current: ProbeRun | undefined;
  /** A probe tick arrived while a probe was running; start the next one when it ends. */
  private tickPending = false;
  private relays = 0;

  constructor(private readonly host: ProbeHost) {}

  /** uint32 sequence numbers shared by pings, indirect pings and TCP pings. */
  nextSeqNo(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  get probing(): boolean {
    return this.current !== undefined;
  }

  get pendingAcks(): number {
    return this.acks.size;
  }

  /** The periodic probe timer fired. */
  tick(now: number): void {
    if (this.current !== undefined) {
      this.tickPending = true;
      return;
    }
    const { config, table } = this.host;
    const target = table.nextProbeTarget(config.name, now, config.gossipToTheDeadMs);
    if (target !== undefined) this.probeNode(target, now);
  }

  private selfPing(seq: number, target: string): PingMsg {
    const { advertise, name } = this.host.config;
    return {
      type: 'ping',
      seqNo: seq,
      node: target,
      sourceAddr: ipToBytes(advertise.ip),
      sourcePort: advertise.port,
      sourceNode: name,
    };
  }

  private probeNode(target: NodeInfo, now: number): void {
    const { config, awareness, timers } = this.host;
    // A copy: the probe outlives this call, a table view may not (table.ts).
    const node = snapshot(target);
    const intervalMs = awareness.scaleTimeoutMs(config.probeIntervalMs);
    const seq = this.nextSeqNo();
    const ping = this.selfPing(seq, node.name);
    this.host.count('probes');
    const run: ProbeRun = {
      seq,
      node,
      sentMs: now,
      indirect: false,
      expectedNacks: 0,
      nacks: 0,
      timeoutTimer: timers.at(now + config.probeTimeoutMs, (t) => this.probeTimedOut(run, t)),
      deadlineTimer: timers.at(now + intervalMs, (t) => this.probeFailed(run, t)),
    };
    this.current = run;
    this.acks.set(seq, {
      ack: (payload, t, viaTcp) => this.probeSucceeded(run, payload, t, viaTcp),
      nack: () => {
        run.nacks++;
      },
    });
    if (node.state === 'alive') {
      this.host.sendMsg(node.addr, ping, target);
    } else {
      // Tell a suspect node it is suspected, so it can refute before the timeout.
      this.host.sendRaw(
        node.addr,
        [ping, { type: 'suspect', incarnation: node.incarnation, node: node.name, from: config.name }],
        target,
      );
    }
  }

  private probeTimedOut(run: ProbeRun, now: number): void {
    if (this.current !== run) return;
    run.indirect = true;
    const { config, table } = this.host;
    const peers = table.kRandom(
      config.indirectChecks,
      (n) => n.name === config.name || n.name === run.node.name || n.state !== 'alive',
    );
    const base = this.selfPing(run.seq, run.node.name);
    for (const peer of peers) {
      const nack = (peer.vsn[1] ?? 0) >= 4;
      if (nack) run.expectedNacks++;
      const ind: IndirectPingMsg = {
        type: 'indirectPing',
        seqNo: run.seq,
        target: ipToBytes(run.node.addr.ip),
        port: run.node.addr.port,
        node: run.node.name,
        nack,
        sourceAddr: base.sourceAddr,
        sourcePort: base.sourcePort,
        sourceNode: base.sourceNode,
      };
      this.host.sendMsg(peer.addr, ind, peer);
    }
    this.host.count('indirect-probes', peers.length);
    if (!config.disableTcpPings && (run.node.vsn[1] ?? 0) >= 3) {
      const timeoutMs = Math.max(1, run.deadlineTimer.atMs - now);
      this.host.count('tcp-probes');
      this.host.openStream(run.node.addr, base, timeoutMs, now, {
        reply: (msg, t) => {
          if (msg.type === 'ack' && msg.seqNo === run.seq) {
            this.acks.get(run.seq)?.ack(null, t, true);
          } else {
            this.host.drop('tcp-ping-bad-reply', `TCP ping to ${run.node.name} got ${msg.type}`, run.node.addr);
          }
        },
        fail: () => {
          // The UDP paths may still answer before the deadline; nothing to do here.
        },
      });
    }
  }

  private finish(run: ProbeRun, now: number): void {
    run.timeoutTimer.cancel();
    run.deadlineTimer.cancel();
    this.acks.delete(run.seq);
    this.current = undefined;
    if (this.tickPending) {
      this.tickPending = false;
      this.tick(now);
    }
  }

  private probeSucceeded(run: ProbeRun, payload: Uint8Array | null, now: number, viaTcp: boolean): void {
    if (this.current !== run) return;
    if (viaTcp) this.host.count('probe-tcp-only');
    this.host.awareness.applyDelta(-1);
    // Only a direct ack inside the probe timeout measures the round trip (Serf coordinates).
    if (!run.indirect && !viaTcp) {
      const node = this.host.table.get(run.node.name);
      this.host.delegate?.notifyPingComplete?.(node !== undefined ? snapshot(node) : run.node, now - run.sentMs, payload);
    }
    this.finish(run, now);
  }

  private probeFailed(run: ProbeRun, now: number): void {
    if (this.current !== run) return;
    let delta = 0;
    if (run.expectedNacks > 0) {
      if (run.nacks < run.expectedNacks) delta += run.expectedNacks - run.nacks;
    } else {
      delta += 1;
    }
    this.host.awareness.applyDelta(delta);
    this.host.count('probe-failures');
    // Suspect before the next probe may start (a pending tick runs in finish()).
    this.host.states.suspectNode(
      { incarnation: run.node.incarnation, node: run.node.name, from: this.host.config.name },
      now,
    );
    this.finish(run, now);
  }

  handleAck(seq: number, payload: Uint8Array | null, from: Address, now: number): void {
    const h = this.acks.get(seq);
    if (h === undefined) {
      this.host.drop('ack-unmatched', `ack with unknown sequence number ${seq}`, from);
      return;
    }
    h.ack(payload, now, false);
  }

  handleNack(seq: number, from: Address): void {
    const h = this.acks.get(seq);
    if (h === undefined) {
      this.host.drop('nack-unmatched', `nack with unknown sequence number ${seq}`, from);
      return;
    }
    h.nack();
  }

  /** One ping to `to` for `node`, outside the probe cycle; onAck(rtt) if answered within the probe timeout. */
  pingOnce(node: string, to: Address, now: number, onAck: (rttMs: number, now: number) => void): void {
    const seq = this.nextSeqNo();
    let done = false;
    const timer = this.host.timers.at(now + this.host.config.probeTimeoutMs, () => {
      done = true;
      this.acks.delete(seq);
    });
    this.acks.set(seq, {
      ack: (_payload, t) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.acks.delete(seq);
        onAck(t - now, t);
      },
      nack: () => {},
    });
    this.host.sendRaw(to, [this.selfPing(seq, node)]);
  }

  /** Relay an indirect ping: ping the target ourselves, report back ack (or nack on timeout). */
  serveIndirect(ind: IndirectPingMsg, from: Address, now: number): void {
    const { config, timers } = this.host;
    if (this.relays >= MAX_PENDING_RELAYS) {
      this.host.drop('indirect-ping-overload', `more than ${MAX_PENDING_RELAYS} relays pending`, from);
      return;
    }
    let target: Address;
    let requester: Address = from;
    try {
      target = { ip: bytesToIp(ind.target), port: ind.port === 0 ? config.advertise.port : ind.port };
      if (ind.sourceAddr !== undefined && ind.sourceAddr.length > 0 && (ind.sourcePort ?? 0) > 0) {
        requester = { ip: bytesToIp(ind.sourceAddr), port: ind.sourcePort ?? 0 };
      }
    } catch (e) {
      this.host.drop('indirect-ping-bad-addr', (e as Error).message, from);
      return;
    }
    const localSeq = this.nextSeqNo();
    this.relays++;
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      this.relays--;
      this.acks.delete(localSeq);
      timer.cancel();
    };
    const timer = timers.at(now + config.probeTimeoutMs, () => {
      if (done) return;
      end();
      if (ind.nack) this.host.sendMsg(requester, { type: 'nack', seqNo: ind.seqNo });
    });
    this.acks.set(localSeq, {
      ack: () => {
        if (done) return;
        end();
        this.host.sendMsg(requester, { type: 'ack', seqNo: ind.seqNo, payload: null });
      },
      nack: () => {},
    });
    this.host.sendMsg(target, this.selfPing(localSeq, ind.node));
  }

  clear(): void {
    this.acks.clear();
    this.current = undefined;
    this.tickPending = false;
    this.relays = 0;
  }
}
