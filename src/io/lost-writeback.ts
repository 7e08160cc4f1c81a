// LostWriteback models what Linux does to a file's dirty pages when their writeback fails (the
// EIO that fsync/fdatasync reports): the kernel marks the pages clean anyway. Their bytes stay
// readable from the page cache, so a process that reopens the file after the failure reads
// them as if nothing happened, but they never reach the disk: a later fsync returns success
// without writing them (it writes only pages dirtied since), and a power cut takes them away.
// Only writing those bytes again (which dirties their pages anew) and then a successful sync
// makes them durable. This is "fsyncgate" (PostgreSQL, 2018: it had retried fsync).
//
// Both fault models keep one of these per file: FaultyFileSystem (src/io/faulty-file-system.ts,
// over real files) and SimDisk's Inode (sim/replica-disk.ts). Each keeps its own undo records
// for the ordinary case (bytes overwritten since the last sync, put back at power loss); this
// keeps the bytes that no sync will save.
//
// Granularity is the byte, not the 4 KiB page: rewriting some bytes of a page brings back only
// those bytes here, where the kernel would write back the whole page. So the model loses at
// least what Linux may lose, never less: code that passes it does not lean on page sizes.

/** RestoreRecord: bytes to put back at `position` when the power goes. */
export interface RestoreRecord {
  readonly position: number;
  readonly bytes: Buffer;
}

export class LostWriteback {
  /** lost: oldest first, the durable bytes under ranges whose writeback failed. */
  private lost: RestoreRecord[] = [];
  /** rewritten: [from, to) ranges written since the last sync, while some bytes are lost. */
  private rewritten: [number, number][] = [];
  /** failures: how many writebacks failed (a sync called before one must not clear anything). */
  failures = 0;

  /** empty: nothing is lost (what a sync makes durable is exactly what it covers). */
  get empty(): boolean {
    return this.lost.length === 0;
  }

  /** rewrites: how many writes were noted since the last sync (a sync in flight covers these). */
  get rewrites(): number {
    return this.rewritten.length;
  }

  /** lostBelow: some byte before `end` is lost (a checker's question: is [0, end) durable?). */
  lostBelow(end: number): boolean {
    return this.lost.some((r) => r.position < end);
  }

  /** written notes a write of `length` bytes at `position` (it dirties those pages again). */
  written(position: number, length: number): void {
    if (this.lost.length > 0 && length > 0) this.rewritten.push([position, position + length]);
  }

  /**
   * failed: a sync failed, and every byte dirty at that moment is lost. `undo` holds what writes
   * since the last successful sync overwrote below `syncedSize` (oldest first: together, the
   * durable bytes there); the file's bytes from `syncedSize` to `size` were never on the disk
   * and read as zeros there should a later sync make the length durable. The caller forgets its
   * undo records: they are kept here now.
   */
  failed(undo: readonly RestoreRecord[], syncedSize: number, size: number): void {
    this.failures++;
    this.lost.push(...undo);
    if (size > syncedSize) this.lost.push({ position: syncedSize, bytes: Buffer.alloc(size - syncedSize) });
    this.rewritten = [];
  }

  /**
   * synced: a sync succeeded. The first `covered` writes noted since the last sync (all of them
   * by default; a simulated sync covers those made before it was called) are durable, so the
   * bytes they rewrote are no longer lost.
   */
  synced(covered: number = this.rewritten.length): void {
    const ranges = this.rewritten.splice(0, covered);
    if (ranges.length === 0) return;
    let records = this.lost;
    for (const [from, to] of ranges) records = records.flatMap((r) => cut(r, from, to));
    this.lost = records;
  }

  /** truncated: the file was cut to `length`; bytes past it are gone, not lost. */
  truncated(length: number): void {
    if (this.lost.length === 0) return;
    this.lost = this.lost.flatMap((r) => cut(r, length, Number.POSITIVE_INFINITY));
  }

  /**
   * powerLoss puts the durable bytes back through `put`, newest loss first so that the oldest
   * (what the disk holds) wins, and forgets everything: after the cut the page cache is empty.
   * Call it after the caller has put back its own undo records (which are newer).
   */
  powerLoss(put: (record: RestoreRecord) => void): void {
    for (let i = this.lost.length - 1; i >= 0; i--) put(this.lost[i] as RestoreRecord);
    this.lost = [];
    this.rewritten = [];
  }
}

/** cut returns what is left of `r` outside [from, to) (zero, one or two records). */
function cut(r: RestoreRecord, from: number, to: number): RestoreRecord[] {
  const end = r.position + r.bytes.length;
  if (to <= r.position || from >= end) return [r];
  const out: RestoreRecord[] = [];
  if (from > r.position) out.push({ position: r.position, bytes: r.bytes.subarray(0, from - r.position) });
  if (to < end) out.push({ position: to, bytes: r.bytes.subarray(to - r.position) });
  return out;
}
