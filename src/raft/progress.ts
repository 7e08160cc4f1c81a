// Progress is the leader's view of one follower's log; Inflights is its flow-control window.
// See etcd-io/raft tracker/progress.go and docs/raft.md ("Flow control").

import { assert } from '../stdx/assert.js';

/**
 * Inflights bounds the append messages in flight to one follower, by count and by bytes.
 * Each element is the last index of one MsgApp and its payload size; acknowledgements free
 * every element up to the acknowledged index.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  /** start is the position of the oldest element in the arrays (a lazily compacted queue). */
  private start = 0;
  private bytes = 0;
  readonly size: number;
  readonly maxBytes: number;

  constructor(size: number, maxBytes: number) {
    assert(size > 0, 'inflights size must be positive');
    assert(maxBytes > 0, 'inflights maxBytes must be positive');
    this.size = size;
    this.maxBytes = maxBytes;
  }

  count(): number {
    return this.indexes.length - this.start;
  }

  add(index: number, bytes: number): void {
    assert(!this.full(), 'inflights add while full');
    const last = this.indexes[this.indexes.length - 1];
    assert(this.count() === 0 || last === undefined || index > last, 'inflights out of order');
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** freeLE frees every in-flight message whose last index is <= to. */
  freeLE(to: number): void {
    while (this.start < this.indexes.length && (this.indexes[this.start] as number) <= to) {
      this.bytes -= this.sizes[this.start] as number;
      this.start++;
    }
    // Compact occasionally so the arrays stay bounded by size.
    if (this.start > this.size) {
      this.indexes.splice(0, this.start);
      this.sizes.splice(0, this.start);
      this.start = 0;
    }
  }

  full(): boolean {
    return this.count() >= this.size || this.bytes >= this.maxBytes;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}

/**
 * ProgressState: probe sends one append per heartbeat interval until the follower's match is
 * found; replicate streams appends optimistically within the inflight window; snapshot waits
 * for a snapshot to be installed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Progress is the leader's view of one follower's log. */
export class Progress {
  /** match is the highest index known to be replicated on the follower; 0 if none is known. */
  match = 0;
  /** next is the index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** pendingSnapshot is the index of the snapshot being sent; 0 unless state is snapshot. */
  pendingSnapshot = 0;
  /** recentActive is set when the follower was heard from since the last check-quorum. */
  recentActive = false;
  /** msgAppFlowPaused is set in probe state after one append, until the next heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, inflights: Inflights, isLearner: boolean) {
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  /**
   * clone copies the progress for a configuration change, so that a change that is only being
   * checked (or is refused) never alters the live configuration. The window is shared: a
   * change never touches it, and the old progress is discarded once the change applies.
   */
  clone(): Progress {
    const p = new Progress(this.next, this.inflights, this.isLearner);
    p.match = this.match;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    return p;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** sentEntries updates the progress after sending entries ending at lastIndex. */
  sentEntries(count: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next += count;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      if (count > 0) this.msgAppFlowPaused = true;
    } else {
      assert(false, `sending entries in state ${this.state}`);
    }
  }

  /** maybeUpdate records an acknowledgement of index n; it returns false if it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * maybeDecrTo handles a rejected append of index rejected; matchHint is the follower's
   * suggestion for the last index that may match. It returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Stale unless it rejects the first entry after match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the rejection of the last probe (next-1) is relevant.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** isPaused says whether the leader should hold back appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }

  toString(): string {
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? ' learner' : ''}`;
  }
}
