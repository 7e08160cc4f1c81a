// Wal is the Raft log's files: a directory of segments, the active (last) one appended to.
// open() recovers: it reads every segment, replays the committed frames into a LogCache,
// repairs a torn tail of the last segment (its bytes copied to corrupt/ first) and refuses
// anything else. docs/wal.md describes the format, the recovery rules and the fsync discipline.
import * as path from 'node:path';
import { type File, type FileSystem, mkdirDurable } from '../io/file-system.js';
import { rewriteDurably } from '../io/rewrite-durably.js';
import { assert } from '../stdx/assert.js';
import { crc32cRange } from '../stdx/crc32c.js';
import { IoError, StoreFailedError } from '../storage/errors.js';
import { WalCorruptError } from './errors.js';
import { LogCache } from './log-cache.js';
import {
  decodeFrame,
  decodeSegmentHeader,
  encodeSegmentHeader,
  parseSegmentName,
  SEGMENT_HEADER_BYTES,
  segmentName,
  type WalFrame,
} from './wal-format.js';
import { WalReplay } from './wal-replay.js';
import { readSyncedEnd, removeSyncedEnd, type SyncedEnd, writeSyncedEnd } from './wal-synced-end.js';

/** DEFAULT_SEGMENT_BYTES: a segment is sealed once it grows past this (etcd and raft-wal: 64 MB). */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** MAX_SEGMENT_BYTES: recovery reads a whole segment into memory; a batch may overshoot the target. */
export const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;
/** CORRUPT_DIR: where recovery keeps the bytes it cut off, under the WAL directory. */
export const CORRUPT_DIR = 'corrupt';
/** MAX_TORN_COPIES: how many copies of the same torn offset may pile up before we give up naming. */
const MAX_TORN_COPIES = 1000;
/**
 * MAX_HELD_BYTES: unsynced batches (commit-index-only saves) kept in memory for the next synced
 * write; past this they are written at once, unsynced, as before.
 */
const MAX_HELD_BYTES = 64 * 1024;
/**
 * PREALLOCATE_BYTES: the active segment is extended with zeros this far past its data. A synced
 * write that grows a file must also commit the new length to the file system's journal, where it
 * waits behind every other file's metadata (this member's engine, the other members on the same
 * disk); a write over zeros already allocated commits data alone. Measured on this machine
 * (`node bench/wal-prealloc.mjs`: three processes appending 1.5 KB O_DSYNC writes beside a
 * buffered writer), p50 0.36-0.56 ms growing the file against 0.28-0.43 ms over synced zeros
 * (etcd preallocates its 64 MB segments for the same reason). Recovery reads zeros after the
 * last batch as free space (docs/wal.md).
 */
const PREALLOCATE_BYTES = 2 * 1024 * 1024;
/** FIRST_SEGMENT_SEQ: the sequence number of the first segment ever written in a directory. */
export const FIRST_SEGMENT_SEQ = 1;

export interface WalOptions {
  /** segmentBytes: seal the active segment and start a new one once it is larger than this. */
  readonly segmentBytes?: number;
}

/** WalRecovery reports what open() found and repaired. */
export interface WalRecovery {
  /** segments: segment files read (including a torn one that was set aside). */
  readonly segments: number;
  /** frames: committed frames replayed (entries, hard states, snapshot markers). */
  readonly frames: number;
  /** entries: entries in the recovered log. */
  readonly entries: number;
  /** tornBytes: bytes cut off the end of the last segment (0: the log ended cleanly). */
  readonly tornBytes: number;
  /** torn: where the torn tail started, why, and where its bytes were copied; undefined if none. */
  readonly torn:
    | { readonly segment: string; readonly offset: number; readonly reason: string; readonly copy: string }
    | undefined;
}

interface Segment {
  readonly seq: number;
  readonly firstIndex: number;
  readonly path: string;
}

/** TornTail is a repair planned by recovery, carried out once every segment has been checked. */
interface TornTail {
  readonly segment: Segment;
  readonly bytes: Uint8Array;
  readonly offset: number;
  readonly reason: string;
  /** whole: the segment's header itself never became durable; the file is set aside entirely. */
  readonly whole: boolean;
}

export class Wal {
  /** failure: the I/O error that stopped the WAL; once set, every append is refused. */
  private failure: unknown;
  /** dirty: bytes were written to the active segment since its last datasync. */
  private dirty = false;
  /** held: unsynced batches not yet written, in order (see `append`); heldBytes their total. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private closed = false;
  /** allocated: the active segment's length: its data (up to `tail`), then zeros (PREALLOCATE_BYTES). */
  private allocated: number;
  /**
   * preallocateOff: preallocation failed in the active segment (a nearly full disk) and is not
   * tried again on every append; the next segment tries again.
   */
  private preallocateOff = false;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly segmentBytes: number,
    /** segments: oldest first; the last one is the active segment. */
    private readonly segments: Segment[],
    private file: File,
    /** tail: where the next batch goes in the active segment. */
    private tail: number,
    allocated: number,
    /** syncedEnd: the synced-end mark on disk, if it holds (wal-synced-end.ts). */
    private syncedEnd: SyncedEnd | undefined,
  ) {
    this.allocated = allocated;
  }

  /** open recovers the WAL in dir (created if missing) and returns it with the replayed log. */
  static async open(
    fs: FileSystem,
    dir: string,
    options: WalOptions = {},
  ): Promise<{ wal: Wal; log: LogCache; recovery: WalRecovery }> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    assert(
      Number.isSafeInteger(segmentBytes) && segmentBytes > 0 && segmentBytes <= MAX_SEGMENT_BYTES,
      'segmentBytes out of range',
    );
    // The new directory's entry (and its new parents') must outlive a power loss too.
    await mkdirDurable(fs, dir);
    const segments = await listSegments(fs, dir);
    const log = new LogCache();
    const replay = new WalReplay(
      log,
      segments.length > 0 && (segments[0] as Segment).seq !== FIRST_SEGMENT_SEQ,
    );
    let torn: TornTail | undefined;
    /** ends[i]: where the valid data of segments[i] ends. */
    const ends: number[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] as Segment;
      const last = i === segments.length - 1;
      const buf = await fs.readFile(seg.path);
      const result = readSegment(seg, buf, replay, last);
      if (result.torn !== undefined) torn = result.torn;
      ends.push(result.end);
    }
    replay.finish();
    if (torn?.whole === true && segments.length === 1 && torn.segment.seq !== FIRST_SEGMENT_SEQ) {
      // Compaction deletes only sealed segments, so the one left is never one whose creation tore.
      throw new WalCorruptError(torn.segment.path, 0, `${torn.reason}, and no other segment is left`);
    }
    let tail = ends[ends.length - 1] ?? 0;

    // Every segment checked: only now is anything on disk changed.
    let copy = '';
    if (torn !== undefined) {
      copy = await saveTornBytes(fs, dir, torn);
      if (torn.whole) {
        await fs.unlink(torn.segment.path);
        await fs.syncDir(dir);
        segments.pop();
        ends.pop();
        tail = ends[ends.length - 1] ?? 0;
      }
    }
    let file: File;
    let allocated = tail;
    const active = segments[segments.length - 1];
    const mark = await readSyncedEnd(fs, dir);
    let markHolds = false;
    if (active === undefined) {
      const seg = segmentAt(dir, FIRST_SEGMENT_SEQ, log.lastIndex() + 1);
      file = await createSegment(fs, dir, seg);
      segments.push(seg);
      tail = SEGMENT_HEADER_BYTES;
      allocated = tail;
    } else {
      file = await fs.open(active.path, 'readwrite');
      if (torn !== undefined && !torn.whole) await file.truncate(tail);
      // What was just replayed may never have reached the disk: a process that crashed between
      // a write and its datasync leaves the bytes in the page cache, where this open reads them.
      // This member now counts those entries and votes as its own (it acknowledges them, and
      // the leader may count them toward a commit), so they must be durable first: a power cut
      // later would otherwise take entries a quorum counted on, while a later synced write
      // (O_DSYNC covers only its own bytes) keeps the commit index that followed them (the
      // replica simulator's "commit beyond last index", seeds 467748212 and 136613614).
      // A datasync alone is not enough: if the crashed process's datasync failed, the kernel
      // marked the pages clean without writing them, and would not write them now either
      // ("fsyncgate"). So everything past the last clean close's synced-end mark is written
      // again, then synced; after a clean close that is nothing (docs/wal.md).
      // The header too: a process whose datasync failed while it created the segment left the
      // segment behind, its header readable and not durable (the seed 2104244460 of the replica
      // simulator, --lost-directory: appends after such a header would read as corruption once
      // a power cut zeroed it). Likewise the segment's directory entry, whose fsync came after,
      // and the directory's own, which a failed first open may have left (as creating it does).
      markHolds = mark !== undefined && mark.segment === path.basename(active.path) && mark.bytes <= tail;
      await rewriteDurably(file, markHolds && mark !== undefined ? mark.bytes : 0, tail);
      if (!markHolds) {
        await fs.syncDir(dir);
        await fs.syncDir(path.dirname(dir));
      }
      // Zeros after the data (preallocated, see PREALLOCATE_BYTES) stay, for the next appends.
      allocated = await file.size();
    }
    // A mark for another segment, or past what recovery kept, must not outlive this open: the
    // next appends would go below it.
    if (mark !== undefined && !markHolds) await removeSyncedEnd(fs, dir);
    const recovery: WalRecovery = {
      segments: segments.length + (torn?.whole === true ? 1 : 0),
      frames: replay.frames,
      entries: log.entryCount(),
      tornBytes: torn === undefined ? 0 : torn.bytes.length - (torn.whole ? 0 : torn.offset),
      torn:
        torn === undefined
          ? undefined
          : { segment: torn.segment.path, offset: torn.offset, reason: torn.reason, copy },
    };
    const wal = new Wal(fs, dir, segmentBytes, segments, file, tail, allocated, markHolds ? mark : undefined);
    return { wal, log, recovery };
  }

  /** segmentCount is the number of segment files (for tests and status). */
  segmentCount(): number {
    return this.segments.length;
  }

  /**
   * append writes one encoded batch (frames and their commit frame) with one File.write, then
   * datasyncs if sync; a batch of undefined writes nothing and only syncs. When the active
   * segment has grown past segmentBytes it is sealed and a new one started, whose header
   * records nextIndex (the log's lastIndex + 1). Any I/O failure stops the WAL for good: the
   * bytes a failed write left are unknown, so nothing more may be appended after them.
   */
  async append(batch: Uint8Array | undefined, sync: boolean, nextIndex: number): Promise<void> {
    this.checkUsable();
    if (!sync && batch !== undefined && this.heldBytes + batch.length <= MAX_HELD_BYTES) {
      // Nobody waits for an unsynced batch to reach the file (Raft needs only entries and votes
      // durable; this one moves the commit index, which a restart learns again from the
      // leader), so it is written in front of the next synced batch, in the same write: one
      // system call and one event-loop turn fewer per commit, and the synced write finds no
      // unsynced bytes before it (writeDurable). A crash loses what is held, as a power cut loses
      // an unsynced write.
      this.held.push(batch);
      this.heldBytes += batch.length;
      return;
    }
    try {
      const bytes = this.takeHeld(batch);
      if (bytes !== undefined) {
        // In the thread pool, not writeSync: an append that grows the file may wait for the
        // file system's journal while an fsync (this member's engine's, another process's)
        // commits it, and on the event loop that wait would stall every client and peer of the
        // member. (A writeSync variant was tried with the pipelined driver; under this
        // machine's load it showed no gain, and the leader's own saves looked slower.)
        if (sync && !this.dirty) {
          // One step (O_DSYNC): a busy leader's event loop is between the write's completion
          // and the datasync's start, and again after it; this saves one of those turns.
          await this.file.writeDurable(bytes, this.tail);
        } else {
          this.dirty = true;
          await this.file.write(bytes, this.tail);
        }
        this.tail += bytes.length;
      }
      if (sync && this.dirty) {
        await this.file.datasync();
        this.dirty = false;
      }
      if (this.tail > this.segmentBytes) await this.rotate(nextIndex);
      // Only after a synced save: a failed datasync of unsynced batches must fail the WAL
      // (fsyncgate), which a best-effort step would hide.
      else if (!this.preallocateOff && this.tail > this.allocated && !this.dirty) await this.preallocate();
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * preallocate extends the active segment with zeros past its data, up to PREALLOCATE_BYTES (not
   * past segmentBytes, where it is sealed), and datasyncs them: until the file system has
   * allocated their blocks (ext4 allocates at writeback), a synced write landing in them would
   * still commit an allocation to the journal (the same script: unsynced zeros 0.34-0.52 ms
   * p50, synced 0.28-0.43). One fdatasync per PREALLOCATE_BYTES of log. Their durability is not
   * needed for correctness: lost, the file is only shorter. Best effort: a failure (a nearly
   * full disk) is not a failed save; the zeros are cut off again if that works (left, they are
   * free space to recovery) and the segment grows write by write until it is sealed.
   */
  private async preallocate(): Promise<void> {
    const target = Math.min(this.tail + PREALLOCATE_BYTES, Math.max(this.segmentBytes, this.tail));
    if (target <= this.tail) return;
    try {
      await this.file.write(new Uint8Array(target - this.tail), this.tail);
      await this.file.datasync();
      this.allocated = target;
    } catch {
      this.preallocateOff = true;
      // Zeros left past the data (if this fails too) are cut off when the segment is sealed.
      this.allocated = target;
      await this.file.truncate(this.tail).then(
        () => {
          this.allocated = this.tail;
        },
        () => undefined,
      );
    }
  }

  /** trim cuts the preallocated zeros off the active segment (sealing, closing), unsynced. */
  private async trim(): Promise<void> {
    if (this.allocated <= this.tail) return;
    await this.file.truncate(this.tail);
    this.allocated = this.tail;
    this.dirty = true;
  }

  /** takeHeld returns the held batches followed by `batch` as one buffer (undefined: nothing). */
  private takeHeld(batch: Uint8Array | undefined): Uint8Array | undefined {
    if (this.held.length === 0) return batch;
    const parts = this.held;
    if (batch !== undefined) parts.push(batch);
    this.held = [];
    this.heldBytes = 0;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** activeSeq is the sequence number of the segment the next batch goes to. */
  activeSeq(): number {
    return (this.segments[this.segments.length - 1] as Segment).seq;
  }

  /**
   * dropSegmentsThrough deletes the oldest sealed segments whose live entries are all at or
   * below index, and only segments older than `before`. The live entries of a sealed segment are
   * below the next segment's firstIndex (that was lastIndex + 1 when it was created; anything
   * higher in it was overwritten before). The caller has first made durable, in segment
   * `before`, a marker with the compacted log start, the snapshot and the hard state, so what the
   * deleted segments held survives them. One directory sync per deleted segment keeps the
   * deletions a prefix even if the file system reorders directory updates.
   */
  async dropSegmentsThrough(index: number, before: number): Promise<number> {
    this.checkUsable();
    let dropped = 0;
    try {
      while (this.segments.length > 1) {
        const old = this.segments[0] as Segment;
        const next = this.segments[1] as Segment;
        if (old.seq >= before || next.firstIndex - 1 > index) break;
        await this.fs.unlink(old.path);
        await this.fs.syncDir(this.dir);
        this.segments.shift();
        dropped++;
      }
    } catch (err) {
      throw this.fail(err);
    }
    return dropped;
  }

  /** close makes written bytes durable (unless the WAL failed) and closes the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.failure === undefined) {
        const held = this.takeHeld(undefined);
        if (held !== undefined) {
          await this.file.write(held, this.tail);
          this.tail += held.length;
          this.dirty = true;
        }
        // A cleanly closed segment ends at its data, as a sealed one does.
        await this.trim();
        if (this.dirty) await this.file.datasync();
        this.dirty = false;
        await this.markSyncedEnd();
      }
    } finally {
      await this.file.close();
    }
  }

  /**
   * markSyncedEnd records, at a clean close, that the active segment is durable up to its tail,
   * so that the next open rewrites nothing (wal-synced-end.ts). Best effort: without the mark
   * the next open rewrites the whole active segment, which is slower, never wrong.
   */
  private async markSyncedEnd(): Promise<void> {
    const mark: SyncedEnd = {
      segment: path.basename((this.segments[this.segments.length - 1] as Segment).path),
      bytes: this.tail,
    };
    if (this.syncedEnd?.segment === mark.segment && this.syncedEnd.bytes === mark.bytes) return;
    try {
      await writeSyncedEnd(this.fs, this.dir, mark);
      this.syncedEnd = mark;
    } catch {
      // Left as it was: an older mark names fewer bytes (or another segment, which the next
      // open removes), so the next open rewrites more, never less.
    }
  }

  /** checkUsable throws StoreFailedError once an I/O failure has stopped the WAL. */
  checkUsable(): void {
    assert(!this.closed, 'the WAL is closed');
    if (this.failure !== undefined) throw new StoreFailedError(this.failure);
  }

  private fail(err: unknown): Error {
    this.failure = err;
    const message = err instanceof Error ? err.message : String(err);
    return new IoError(`WAL write failed in ${this.dir}: ${message}`, err);
  }

  /**
   * rotate seals the active segment (datasync, so a sealed segment is always whole) and starts
   * the next: create, write and datasync its header, then sync the directory so that its entry
   * is durable before anything in it is acknowledged.
   */
  private async rotate(nextIndex: number): Promise<void> {
    // A sealed segment must be valid to its last byte: no preallocated zeros.
    await this.trim();
    if (this.dirty) {
      await this.file.datasync();
      this.dirty = false;
    }
    const active = this.segments[this.segments.length - 1] as Segment;
    const seg = segmentAt(this.dir, active.seq + 1, nextIndex);
    const file = await createSegment(this.fs, this.dir, seg);
    const old = this.file;
    this.file = file;
    this.segments.push(seg);
    this.tail = SEGMENT_HEADER_BYTES;
    this.allocated = SEGMENT_HEADER_BYTES;
    this.preallocateOff = false;
    await old.close();
  }
}

function segmentAt(dir: string, seq: number, firstIndex: number): Segment {
  return { seq, firstIndex, path: path.join(dir, segmentName(seq, firstIndex)) };
}

/** createSegment creates a segment file holding only its header, durably (file and directory). */
async function createSegment(fs: FileSystem, dir: string, seg: Segment): Promise<File> {
  const file = await fs.open(seg.path, 'create');
  try {
    await file.write(encodeSegmentHeader(seg.seq, seg.firstIndex), 0);
    await file.datasync();
    await fs.syncDir(dir);
  } catch (err) {
    await file.close().catch(() => undefined); // The write error is the one to report.
    throw err;
  }
  return file;
}

/** listSegments lists the segment files in dir in sequence order; a gap in sequence is corruption. */
async function listSegments(fs: FileSystem, dir: string): Promise<Segment[]> {
  const out: Segment[] = [];
  for (const name of await fs.readdir(dir)) {
    const parsed = parseSegmentName(name);
    if (parsed !== undefined) out.push({ ...parsed, path: path.join(dir, name) });
  }
  out.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1] as Segment;
    const seg = out[i] as Segment;
    if (seg.seq !== prev.seq + 1) {
      const what =
        seg.seq === prev.seq ? 'a second segment with sequence' : 'missing segment before sequence';
      throw new WalCorruptError(seg.path, 0, `${what} ${seg.seq}`);
    }
  }
  return out;
}

/**
 * readSegment checks one segment and replays its committed batches. A sealed segment must be
 * valid to its last byte; in the last one, the first bad frame, a zeroed header or a batch
 * without its commit frame starts a torn tail, returned for repair. end is where valid data ends.
 */
function readSegment(
  seg: Segment,
  buf: Uint8Array,
  replay: WalReplay,
  last: boolean,
): { end: number; torn: TornTail | undefined } {
  const header = decodeSegmentHeader(buf);
  if (typeof header === 'string') {
    // A segment is created, its header written and synced, and only then its directory entry
    // synced; a crash in between may leave the entry with a short or zeroed header. Only the
    // last segment, and only if nothing but (part of) a header could have been written to it.
    if (last && (buf.length <= SEGMENT_HEADER_BYTES || buf.every((b) => b === 0))) {
      return {
        end: 0,
        torn: { segment: seg, bytes: buf, offset: 0, reason: `segment header: ${header}`, whole: true },
      };
    }
    throw new WalCorruptError(seg.path, 0, `segment header: ${header}`);
  }
  if (header.seq !== seg.seq || header.firstIndex !== seg.firstIndex) {
    throw new WalCorruptError(seg.path, 0, 'segment header does not match the file name');
  }
  let at = SEGMENT_HEADER_BYTES;
  let batchStart = at;
  const pending: { frame: WalFrame; offset: number }[] = [];
  let reason = 'batch without its commit frame';
  while (at < buf.length) {
    const d = decodeFrame(buf, at, buf.length);
    if (d.kind === 'end') {
      reason = 'zeroed data';
      break;
    }
    if (d.kind === 'bad') {
      reason = d.reason;
      break;
    }
    if (d.frame.type === 'commit') {
      if (crc32cRange(buf, batchStart, at) !== d.frame.batchCrc) {
        reason = 'batch checksum mismatch';
        break;
      }
      for (const p of pending) replay.apply(p.frame, seg.path, p.offset);
      pending.length = 0;
      batchStart = d.end;
    } else {
      pending.push({ frame: d.frame, offset: at });
    }
    at = d.end;
  }
  if (batchStart === buf.length) return { end: batchStart, torn: undefined };
  // Zeros from the end of the last batch on: preallocated space (or unsynced appends a crash
  // undid), not damage. Anything else after them is a torn tail, as before.
  if (last && allZero(buf, batchStart)) return { end: batchStart, torn: undefined };
  if (!last) {
    throw new WalCorruptError(seg.path, at < buf.length ? at : batchStart, `sealed segment: ${reason}`);
  }
  // The torn bytes run to the end of the file, preallocated zeros after a torn write included:
  // what was written cannot be told from the zeros it landed on, so all of it is kept.
  return { end: batchStart, torn: { segment: seg, bytes: buf, offset: batchStart, reason, whole: false } };
}

/** allZero: every byte of `buf` from `from` on is zero. */
function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * saveTornBytes copies what recovery cuts off to corrupt/<segment>.<offset>.torn (a numbered
 * variant if that exists), durably, before anything is truncated: recovery never throws bytes away.
 */
async function saveTornBytes(fs: FileSystem, dir: string, torn: TornTail): Promise<string> {
  const corruptDir = path.join(dir, CORRUPT_DIR);
  const made = !(await fs.exists(corruptDir));
  await fs.mkdir(corruptDir);
  if (made) await fs.syncDir(dir);
  const base = path.join(corruptDir, `${path.basename(torn.segment.path)}.${torn.offset}.torn`);
  let target = base;
  for (let n = 1; await fs.exists(target); n++) {
    assert(n <= MAX_TORN_COPIES, `too many torn copies named ${base}`);
    target = `${base}.${n}`;
  }
  const file = await fs.open(target, 'create');
  try {
    await file.write(torn.bytes.subarray(torn.whole ? 0 : torn.offset), 0);
    await file.datasync();
  } finally {
    await file.close();
  }
  await fs.syncDir(corruptDir);
  return target;
}
