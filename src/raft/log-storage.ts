// LogStorage is the core's read-only view of the durable log; MemoryStorage is the in-memory
// implementation used by tests and the simulator. The driver writes to its storage (append,
// applySnapshot, setHardState) when it handles a Ready; the core only ever reads.

import { assert } from '../stdx/assert.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, EMPTY_SNAPSHOT, limitSize } from './types.js';

/**
 * LogStorage is what the core reads at start-up and when it needs entries that are already
 * persisted. Index firstIndex()-1 is the index of the latest snapshot (or 0), whose term is
 * still known; entries below firstIndex() are compacted.
 */
export interface LogStorage {
  /** initialState returns the persisted hard state and the membership of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * entries returns entries in [lo, hi), at most maxSize bytes but at least one. The caller
   * guarantees firstIndex() <= lo < hi <= lastIndex()+1.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** term returns the term of entry i, or undefined if i is compacted or beyond lastIndex(). */
  term(i: number): number | undefined;
  lastIndex(): number;
  firstIndex(): number;
  /** snapshot returns the latest snapshot; its index is 0 if there is none. */
  snapshot(): Snapshot;
}

/**
 * MemoryStorage keeps the log in an array whose element 0 is a dummy entry holding the
 * snapshot's index and term, as etcd's MemoryStorage does.
 */
export class MemoryStorage implements LogStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** ents[0] is the dummy entry at the snapshot index; it is never empty. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  /** setHardState records the hard state persisted by the driver. */
  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.offset();
    assert(lo > offset, `entries(${lo}) compacted (first ${offset + 1})`);
    assert(hi <= this.lastIndex() + 1, `entries(${hi}) beyond last ${this.lastIndex()}`);
    assert(lo <= hi, 'entries: lo > hi');
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number | undefined {
    const offset = this.offset();
    if (i < offset) return undefined;
    return this.ents[i - offset]?.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** applySnapshot replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    const { index, term } = snap.metadata;
    if (index <= this.snap.metadata.index) return; // Older than what we have: nothing to do.
    this.snap = snap;
    this.ents = [{ term, index, type: 'normal', data: new Uint8Array(0) }];
  }

  /**
   * createSnapshot records the application's snapshot at index i (which must be applied, so
   * at most lastIndex) and returns it. Compaction is a separate step (compact).
   */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    const offset = this.offset();
    if (i <= this.snap.metadata.index) return this.snap;
    assert(i <= this.lastIndex(), `snapshot ${i} beyond last index ${this.lastIndex()}`);
    const term = this.ents[i - offset]?.term;
    assert(term !== undefined, 'snapshot term');
    this.snap = {
      metadata: { index: i, term, confState: confState ?? this.snap.metadata.confState ?? EMPTY_CONF_STATE },
      data,
    };
    return this.snap;
  }

  /** compact discards entries before compactIndex; compactIndex becomes the new dummy entry. */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) return;
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} beyond last ${this.lastIndex()}`);
    const keep = this.ents[compactIndex - offset];
    assert(keep !== undefined, 'compact: missing entry');
    const dummy: Entry = { term: keep.term, index: keep.index, type: 'normal', data: new Uint8Array(0) };
    this.ents = [dummy].concat(this.ents.slice(compactIndex - offset + 1));
  }

  /**
   * append adds entries, replacing any existing suffix from entries[0].index on. Entries
   * below firstIndex (already in the snapshot) are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[entries.length - 1] as Entry).index;
    if (last < first) return;
    let todo = entries;
    if (first > (entries[0] as Entry).index) todo = entries.slice(first - (entries[0] as Entry).index);
    const start = (todo[0] as Entry).index;
    const offset = this.offset();
    assert(start - offset <= this.ents.length, `append gap: last ${this.lastIndex()}, new ${start}`);
    this.ents = this.ents.slice(0, start - offset).concat(todo);
  }

  private offset(): number {
    return (this.ents[0] as Entry).index;
  }
}
