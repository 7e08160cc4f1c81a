// WalReplay rebuilds the in-memory log (LogCache) from the committed frames of the WAL, in
// order, checking the log's rules as it goes (docs/wal.md, "Replay"). It sees only frames whose
// batch passed its commit checksum; anything it refuses is corruption, never a torn tail.
import { assert } from '../stdx/assert.js';
import { WalCorruptError } from './errors.js';
import type { LogCache } from './log-cache.js';
import type { SnapshotMarker, WalFrame } from './wal-format.js';

export class WalReplay {
  /**
   * anchored: the log's beginning is known. It is false only when the oldest segment on disk is
   * not the first ever written (compaction deleted its predecessors): until the first entry or
   * reset marker, the entries before the first surviving one may be missing.
   */
  private anchored: boolean;
  /**
   * hole: the log start's term is unknown because the entries before the first surviving one
   * went with deleted segments. A later marker must cover it (compaction writes one before it
   * deletes a segment); if none does, a segment was lost and finish() refuses.
   */
  private hole = false;
  /** holeFile, holeOffset: where the entry that opened the hole was read (for the error). */
  private holeFile = '';
  private holeOffset = 0;
  /** frames counts the frames applied. */
  frames = 0;

  constructor(
    private readonly log: LogCache,
    /** prefixMayBeDeleted: the oldest segment's sequence number is not the first one. */
    prefixMayBeDeleted: boolean,
  ) {
    this.anchored = !prefixMayBeDeleted;
  }

  /** apply applies one committed frame read from `file` at `offset`. */
  apply(frame: WalFrame, file: string, offset: number): void {
    this.frames++;
    switch (frame.type) {
      case 'entry':
        this.entry(frame.entry.index, frame, file, offset);
        return;
      case 'hardState':
        this.log.setHardState(frame.hardState);
        return;
      case 'snapshot':
        this.marker(frame.marker, file, offset);
        return;
      case 'commit':
        assert(false, 'commit frames are not replayed');
    }
  }

  /** finish checks the end state: no hole may remain. */
  finish(): void {
    if (this.hole) {
      throw new WalCorruptError(
        this.holeFile,
        this.holeOffset,
        `entries before index ${this.log.firstIndex()} are missing (a segment was lost)`,
      );
    }
  }

  private entry(index: number, frame: WalFrame & { type: 'entry' }, file: string, offset: number): void {
    const log = this.log;
    const start = log.firstIndex() - 1;
    if (!this.anchored || (this.hole && index <= start)) {
      // The first entry on disk after deleted segments (or an overwrite reaching below it).
      if (index !== log.lastIndex() + 1 || this.hole) {
        log.resetTo({ index: index - 1, term: 0 });
        this.hole = index - 1 > 0;
        this.holeFile = file;
        this.holeOffset = offset;
      }
      this.anchored = true;
      log.put(frame.entry);
      return;
    }
    if (index <= start) {
      throw new WalCorruptError(file, offset, `entry ${index} at or below the log start ${start}`);
    }
    if (index > log.lastIndex() + 1) {
      throw new WalCorruptError(file, offset, `entry ${index} leaves a gap after ${log.lastIndex()}`);
    }
    log.put(frame.entry);
  }

  private marker(m: SnapshotMarker, file: string, offset: number): void {
    const log = this.log;
    log.setSnapshot(m.snapshot);
    if (m.reset) {
      log.resetTo(m.snapshot.metadata);
      this.hole = false;
      this.anchored = true;
      return;
    }
    const { index, term } = m.logStart;
    const start = log.firstIndex() - 1;
    if (index < start) return; // The log was compacted further since: nothing to do.
    if (index > log.lastIndex()) {
      if (this.anchored) {
        throw new WalCorruptError(file, offset, `log start ${index} beyond last index ${log.lastIndex()}`);
      }
      log.resetTo(m.logStart); // Written before any surviving entry: the entries between are deleted.
      return;
    }
    if (index > start || this.hole) {
      const known = index > start ? log.term(index) : undefined;
      if (known !== undefined && known !== term) {
        throw new WalCorruptError(file, offset, `log start ${index} has term ${term}, entry has ${known}`);
      }
      log.compact(index);
      log.setStartTerm(term);
      this.hole = false;
      return;
    }
    if (log.term(index) !== term) {
      throw new WalCorruptError(
        file,
        offset,
        `log start ${index} has term ${term}, log has ${log.term(index)}`,
      );
    }
  }
}
