// RaftLog is the core's view of the log: the durable part in LogStorage, plus the unstable
// part (entries and possibly a snapshot) that the driver has not yet persisted.

import { assert } from '../stdx/assert.js';
import type { LogStorage } from './log-storage.js';
import type { Entry, Snapshot } from './types.js';
import { limitSize } from './types.js';

/**
 * Unstable holds what has been accepted but not yet persisted. entries[i] has index offset+i.
 * snapshot is undefined unless a snapshot from the leader awaits persisting.
 */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;
  /**
   * offsetInProgress: entries below it (from offset) were handed to the driver in a pipelined
   * Ready (RawNode.readyPipelined) and are being saved; entries from it on are not handed out
   * yet. Equal to offset when nothing is in flight (always, for drivers of one Ready at a time).
   */
  offsetInProgress: number;
  /** snapshotInProgress: the unstable snapshot was handed out in a pipelined Ready. */
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** entriesToHand: the unstable entries not yet handed to the driver for saving. */
  entriesToHand(): Entry[] {
    return this.entries.slice(this.offsetInProgress - this.offset);
  }

  /** snapshotToHand: the unstable snapshot, unless it was handed out already. */
  snapshotToHand(): Snapshot | undefined {
    return this.snapshotInProgress ? undefined : this.snapshot;
  }

  /** acceptInProgress marks every unstable entry and the snapshot as handed out (being saved). */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /** maybeFirstIndex returns the first index if there is an unstable snapshot, else undefined. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i)
        return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]?.term;
  }

  /** stableTo marks entries up to (i, t) persisted, unless they have since been replaced. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    // Only drop entries if the term still matches: a newer append may have replaced them.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
      this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = (ents[0] as Entry).index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      // The new entries replace everything unstable; storage's suffix is replaced when persisted.
      this.offset = after;
      this.offsetInProgress = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
      // Replaced entries that were being saved must be handed out again, in their new form.
      this.offsetInProgress = Math.min(this.offsetInProgress, after);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, `unstable.slice[${lo},${hi})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** NO_LIMIT is a size limit that never binds. */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export class RaftLog {
  readonly storage: LogStorage;
  readonly unstable: Unstable;
  /** committed is the highest index known to be committed; it never decreases. */
  committed: number;
  /** applied is the highest index the application has applied; applied <= committed. */
  applied: number;
  /** maxNextEntsSize caps the bytes of committed entries handed out in one Ready. */
  readonly maxNextEntsSize: number;

  constructor(storage: LogStorage, maxNextEntsSize: number = NO_LIMIT) {
    this.storage = storage;
    this.maxNextEntsSize = maxNextEntsSize;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'last term unknown');
    return t;
  }

  /** term returns the term of entry i, or undefined if it is compacted or does not exist. */
  term(i: number): number | undefined {
    // The valid range is [index of dummy entry, last index].
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** isUpToDate says whether a candidate's log (lasti, term) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /**
   * maybeAppend appends entries after (index, logTerm) if that entry matches, and advances
   * commit to min(committed, last new index). It returns the last new index, or undefined
   * if the entry at index does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `conflict at ${ci} with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - index - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as Entry).index - 1;
    assert(after >= this.committed, `append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * findConflict returns the index of the first entry whose term differs from ours, or the
   * first new entry if all existing ones match, or 0 if there is nothing new.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * findConflictByTerm returns the largest index <= index whose term is <= term, and that
   * term: the fast log back-up of Raft §5.3 (the "optimization" paragraph) as etcd does it.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; ; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  /**
   * applyHeld: committed entries are not handed out (RawNode.setStateMachineMissing): the
   * application has no state machine to apply them to. They stay in the log meanwhile.
   */
  applyHeld = false;

  /** nextCommittedEnts returns committed entries not yet applied, at most maxNextEntsSize bytes. */
  nextCommittedEnts(): Entry[] {
    if (this.applyHeld) return [];
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextCommittedEnts(): boolean {
    if (this.applyHeld) return false;
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** snapshot returns the unstable snapshot if there is one, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(tocommit: number): void {
    if (this.committed < tocommit) {
      assert(tocommit <= this.lastIndex(), `commit ${tocommit} beyond last index ${this.lastIndex()}`);
      this.committed = tocommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(
      i <= this.committed && i >= this.applied,
      `applied ${i} not in [${this.applied}, ${this.committed}]`,
    );
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** entries returns entries from i on, at most maxSize bytes (but at least one if any exist). */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** allEntries returns the whole log available (test helper). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), NO_LIMIT);
  }

  /**
   * maybeCommit commits up to maxIndex if that entry is from term (Raft §5.4.2: a leader
   * only commits entries of its own term by counting replicas).
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** slice returns entries in [lo, hi) limited to maxSize bytes; lo must not be compacted. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    assert(lo >= this.firstIndex(), `slice ${lo} compacted (first ${this.firstIndex()})`);
    assert(hi <= this.lastIndex() + 1, `slice ${hi} beyond last ${this.lastIndex()}`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    if (lo < this.unstable.offset) {
      ents = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxSize);
      // Storage returned fewer than asked (size limit): do not add unstable ones.
      if (ents.length < Math.min(hi, this.unstable.offset) - lo) return ents;
    }
    if (hi > this.unstable.offset) {
      const u = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  /** isCompacted says whether index i is below the first available index. */
  isCompacted(i: number): boolean {
    return i < this.firstIndex();
  }
}
