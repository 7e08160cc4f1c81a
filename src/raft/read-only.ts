// ReadOnly tracks ReadIndex requests (Raft thesis §6.4): the leader records its commit index
// for a request, confirms it is still leader with a round of heartbeats carrying the request's
// context, and answers once a quorum acknowledged. No log entry is written.

import { assert } from '../stdx/assert.js';
import type { Message, NodeId } from './types.js';

/** MAX_PENDING_READS bounds queued read requests so a stalled leader cannot grow without limit. */
export const MAX_PENDING_READS = 4096;

interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  /** acks holds the voters that acknowledged the heartbeat; the leader acks itself. */
  readonly acks: Set<NodeId>;
}

/** contextKey turns a read context into a map key (one char per byte). */
export function contextKey(ctx: Uint8Array): string {
  let s = '';
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/** ReadOnly queues ReadIndex requests until a quorum confirms the leader. */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  /** queue holds context keys in request order; the oldest is first. */
  private queue: string[] = [];

  /** addRequest records a read at index; duplicate contexts are ignored. */
  addRequest(index: number, m: Message): void {
    const key = contextKey(m.context);
    if (this.pending.has(key)) return;
    assert(this.queue.length < MAX_PENDING_READS, 'too many pending reads');
    this.pending.set(key, { req: m, index, acks: new Set() });
    this.queue.push(key);
  }

  full(): boolean {
    return this.queue.length >= MAX_PENDING_READS;
  }

  /** recvAck records that id acknowledged the heartbeat for context; it returns the acks so far. */
  recvAck(id: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(contextKey(context));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * advance removes and returns every request up to and including the one with context:
   * a quorum acknowledging a later heartbeat also confirms the earlier requests.
   */
  advance(context: Uint8Array): { req: Message; index: number }[] {
    const key = contextKey(context);
    const i = this.queue.indexOf(key);
    if (i < 0) return [];
    const done = this.queue.splice(0, i + 1);
    const out: { req: Message; index: number }[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      assert(rs !== undefined, 'read index status missing');
      this.pending.delete(k);
      out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  /** lastPendingRequestCtx returns the newest pending context, or undefined if none. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : (this.pending.get(k) as ReadIndexStatus).req.context;
  }

  reset(): void {
    this.pending = new Map();
    this.queue = [];
  }
}
