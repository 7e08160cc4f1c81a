// SimNetwork delivers messages between simulated nodes with seeded faults: drops, delays,
// duplicates, reordering (long delays) and partitions, including asymmetric ones (a directed
// link can be cut while the reverse direction still works). Everything random comes from the
// cluster's Prng, so a seed replays exactly.

import type { Message, NodeId } from '../src/raft/index.js';
import { assert } from '../src/stdx/assert.js';
import type { Prng } from '../src/stdx/prng.js';
import { MinHeap } from './heap.js';

/** NetworkOptions are the fault rates of the network; a reliable network has all rates 0. */
export interface NetworkOptions {
  /** dropRate is the probability that a message is lost. */
  readonly dropRate: number;
  /** duplicateRate is the probability that a message is delivered twice. */
  readonly duplicateRate: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** longDelayRate is the probability of a long delay, which reorders messages. */
  readonly longDelayRate: number;
  readonly longDelayMsMax: number;
  /**
   * longDelayResponsesOnly limits long delays to responses, with labrpc's skewed distribution
   * (200 + rand(1 + rand(longDelayMsMax)) ms): the course's "long reordering".
   */
  readonly longDelayResponsesOnly: boolean;
}

export const RELIABLE: NetworkOptions = {
  dropRate: 0,
  duplicateRate: 0,
  delayMsMin: 1,
  delayMsMax: 5,
  longDelayRate: 0,
  longDelayMsMax: 0,
  longDelayResponsesOnly: false,
};

/** UNRELIABLE mirrors the 6.824 labrpc unreliable network (10% loss, 0-27 ms jitter), plus duplicates. */
export const UNRELIABLE: NetworkOptions = {
  dropRate: 0.1,
  duplicateRate: 0.05,
  delayMsMin: 1,
  delayMsMax: 27,
  longDelayRate: 0,
  longDelayMsMax: 0,
  longDelayResponsesOnly: false,
};

/** LONG_REORDERING_DELAY_MS_MIN is labrpc's floor for a long-delayed reply. */
export const LONG_REORDERING_DELAY_MS_MIN = 200;

/** MAX_IN_FLIGHT bounds queued deliveries; more means a runaway protocol or simulator bug. */
export const MAX_IN_FLIGHT = 1_000_000;

/** REQUEST_TYPES are the messages counted as RPCs (the course counts calls, not replies). */
const REQUEST_TYPES = new Set([
  'MsgApp',
  'MsgVote',
  'MsgPreVote',
  'MsgHeartbeat',
  'MsgSnap',
  'MsgTimeoutNow',
]);

/** RESPONSE_TYPES are the replies (labrpc's long reordering delays only replies). */
const RESPONSE_TYPES = new Set([
  'MsgAppResp',
  'MsgVoteResp',
  'MsgPreVoteResp',
  'MsgHeartbeatResp',
  'MsgReadIndexResp',
]);

/** Delivery is a message due at a time, or a snapshot-status report back to its sender. */
export interface Delivery {
  readonly at: number;
  readonly seq: number;
  readonly kind: 'message' | 'snapStatus';
  readonly msg: Message;
}

export class SimNetwork {
  options: NetworkOptions;
  private readonly queue = new MinHeap<Delivery>();
  private seq = 0;
  /** cut holds directed links that lose every message: "from->to". */
  private readonly cut = new Set<string>();
  private readonly prng: Prng;
  /** requests counts request messages handed to the network (the 6.824 "RPC count"). */
  requests = 0;
  /** snapshots counts MsgSnap handed to the network. */
  snapshots = 0;
  sent = 0;
  dropped = 0;
  duplicated = 0;
  delivered = 0;

  constructor(prng: Prng, options: NetworkOptions) {
    this.prng = prng;
    this.options = options;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}->${to}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  /** isolate cuts every link to and from id. */
  isolate(id: NodeId, all: readonly NodeId[]): void {
    for (const other of all) {
      if (other === id) continue;
      this.cutLink(id, other);
      this.cutLink(other, id);
    }
  }

  /** reconnect restores every link to and from id (except those to isolated peers). */
  reconnect(id: NodeId, all: readonly NodeId[]): void {
    for (const other of all) {
      this.cut.delete(`${id}->${other}`);
      this.cut.delete(`${other}->${id}`);
    }
  }

  /** partition splits nodes into groups that cannot talk to each other. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.cut.clear();
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cutLink(a, b);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  private delay(m: Message): number {
    const o = this.options;
    if (o.longDelayRate > 0) {
      if (o.longDelayResponsesOnly) {
        if (RESPONSE_TYPES.has(m.type) && this.prng.chance(o.longDelayRate)) {
          return LONG_REORDERING_DELAY_MS_MIN + this.prng.int(1 + this.prng.int(o.longDelayMsMax));
        }
      } else if (this.prng.chance(o.longDelayRate)) {
        return this.prng.range(o.delayMsMin, o.longDelayMsMax);
      }
    }
    return this.prng.range(o.delayMsMin, o.delayMsMax);
  }

  /** send queues m at time now; it returns false if the message was lost (for snapshot status). */
  send(m: Message, now: number): boolean {
    this.sent++;
    if (REQUEST_TYPES.has(m.type)) this.requests++;
    if (m.type === 'MsgSnap') this.snapshots++;
    if (this.isCut(m.from, m.to) || (this.options.dropRate > 0 && this.prng.chance(this.options.dropRate))) {
      this.dropped++;
      return false;
    }
    this.push({ at: now + this.delay(m), seq: this.seq++, kind: 'message', msg: m });
    if (this.options.duplicateRate > 0 && this.prng.chance(this.options.duplicateRate)) {
      this.duplicated++;
      this.push({ at: now + this.delay(m), seq: this.seq++, kind: 'message', msg: m });
    }
    return true;
  }

  /** schedule queues a delivery that bypasses faults (local reports such as snapshot status). */
  schedule(kind: Delivery['kind'], m: Message, at: number): void {
    this.push({ at, seq: this.seq++, kind, msg: m });
  }

  /** defer re-queues d for a later time (its recipient is busy persisting). */
  defer(d: Delivery, at: number): void {
    this.push({ ...d, at, seq: this.seq++ });
  }

  private push(d: Delivery): void {
    assert(this.queue.size < MAX_IN_FLIGHT, 'too many messages in flight');
    this.queue.push(d);
  }

  nextTime(): number {
    return this.queue.peek()?.at ?? Number.POSITIVE_INFINITY;
  }

  /** popDue returns the next delivery due at or before now, or undefined. */
  popDue(now: number): Delivery | undefined {
    const d = this.queue.peek();
    if (d === undefined || d.at > now) return undefined;
    this.queue.pop();
    return d;
  }

  /** isDeliverable says whether a message may arrive now: links can be cut while it was in flight. */
  isDeliverable(m: Message): boolean {
    return !this.isCut(m.from, m.to);
  }

  clear(): void {
    this.queue.clear();
  }
}
