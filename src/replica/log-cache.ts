// LogCache is the Raft log held in memory: the hard state, the latest snapshot, where the
// retained log starts and the entries after it. It answers LogStorage exactly as MemoryStorage
// does (src/raft/log-storage.ts), and its mutators have MemoryStorage's semantics, so DiskLog can
// update it synchronously and recovery can rebuild it by replaying the WAL.
//
// Unlike MemoryStorage it keeps no dummy entry object and changes its array in place (push and
// truncate by length), so an append costs what it appends, not the length of the log.
import type { LogStorage } from '../raft/log-storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { EMPTY_HARD_STATE, EMPTY_SNAPSHOT, entrySize } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import type { LogPosition } from './wal-format.js';

export class LogCache implements LogStorage {
  private hs: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** startIndex, startTerm: the entry before firstIndex() (MemoryStorage's dummy entry). */
  private startIndex = 0;
  private startTerm = 0;
  /** ents[k] has index startIndex + 1 + k. The entries are the callers' objects, not copies. */
  private readonly ents: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hs, confState: this.snap.metadata.confState };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    assert(lo > this.startIndex, `entries(${lo}) compacted (first ${this.startIndex + 1})`);
    assert(hi <= this.lastIndex() + 1, `entries(${hi}) beyond last ${this.lastIndex()}`);
    assert(lo <= hi, 'entries: lo > hi');
    if (lo === hi) return [];
    // limitSize's rule (at least one entry, then while the total stays within maxSize), counted
    // before slicing so that only the returned prefix is copied.
    const k = lo - this.startIndex - 1;
    let size = entrySize(this.ents[k] as Entry);
    let n = 1;
    for (; lo + n < hi; n++) {
      size += entrySize(this.ents[k + n] as Entry);
      if (size > maxSize) break;
    }
    return this.ents.slice(k, k + n);
  }

  term(i: number): number | undefined {
    if (i < this.startIndex) return undefined;
    if (i === this.startIndex) return this.startTerm;
    return this.ents[i - this.startIndex - 1]?.term;
  }

  lastIndex(): number {
    return this.startIndex + this.ents.length;
  }

  firstIndex(): number {
    return this.startIndex + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  hardState(): HardState {
    return this.hs;
  }

  /** logStart is the position before firstIndex(): where a replay of the retained log begins. */
  logStart(): LogPosition {
    return { index: this.startIndex, term: this.startTerm };
  }

  /** entryCount is how many entries are held. */
  entryCount(): number {
    return this.ents.length;
  }

  setHardState(hs: HardState): void {
    this.hs = hs;
  }

  /**
   * append adds entries (contiguous, ascending), replacing the suffix from entries[0].index on;
   * entries below firstIndex are ignored (MemoryStorage.append). It returns the entries that were
   * actually added: what must be written to disk.
   */
  append(entries: readonly Entry[]): readonly Entry[] {
    if (entries.length === 0) return entries;
    const first = this.firstIndex();
    const head = (entries[0] as Entry).index;
    if ((entries[entries.length - 1] as Entry).index < first) return [];
    const todo = head < first ? entries.slice(first - head) : entries;
    const start = (todo[0] as Entry).index;
    assert(start <= this.lastIndex() + 1, `append gap: last ${this.lastIndex()}, new ${start}`);
    this.ents.length = start - first;
    for (const e of todo) this.ents.push(e);
    return todo;
  }

  /** applySnapshot replaces the log with a newer snapshot; false if it is not newer (ignored). */
  applySnapshot(snap: Snapshot): boolean {
    if (snap.metadata.index <= this.snap.metadata.index) return false;
    this.snap = snap;
    this.resetTo(snap.metadata);
    return true;
  }

  /**
   * createSnapshot records a snapshot at index i (at most lastIndex, at least the log start) as
   * MemoryStorage.createSnapshot does; it returns undefined when i is not newer than the
   * current snapshot (which then stays).
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot | undefined {
    if (i <= this.snap.metadata.index) return undefined;
    assert(i <= this.lastIndex(), `snapshot ${i} beyond last index ${this.lastIndex()}`);
    const term = this.term(i);
    assert(term !== undefined, 'snapshot term');
    this.snap = { metadata: { index: i, term, confState }, data };
    return this.snap;
  }

  /** compact discards entries up to i, which becomes the log start; false if nothing changed. */
  compact(i: number): boolean {
    if (i <= this.startIndex) return false;
    assert(i <= this.lastIndex(), `compact ${i} beyond last ${this.lastIndex()}`);
    this.startTerm = this.term(i) as number;
    this.ents.splice(0, i - this.startIndex);
    this.startIndex = i;
    return true;
  }

  // ---- for recovery (wal.ts replay), which checks the WAL's rules before calling these ----

  /** setSnapshot replaces the snapshot without touching the log. */
  setSnapshot(snap: Snapshot): void {
    this.snap = snap;
  }

  /** resetTo empties the log so that it starts after pos. */
  resetTo(pos: LogPosition): void {
    this.startIndex = pos.index;
    this.startTerm = pos.term;
    this.ents.length = 0;
  }

  /** setStartTerm sets the term of the log start (recovery learns it from a later marker). */
  setStartTerm(term: number): void {
    this.startTerm = term;
  }

  /** put stores e at its index (firstIndex <= e.index <= lastIndex+1), dropping any suffix. */
  put(e: Entry): void {
    const k = e.index - this.startIndex - 1;
    assert(k >= 0 && k <= this.ents.length, `put ${e.index} outside the log`);
    this.ents.length = k;
    this.ents.push(e);
  }
}
