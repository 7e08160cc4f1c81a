// CaskStore: the state of an open cask store, which the read path (cask-engine.ts), the group
// commit (group-commit.ts) and compaction (compactor.ts) share: the key directory, the data
// files (and which one takes appends), the expiry index, the value cache, the metadata and the
// last commit timestamp. It holds the rules that keep these consistent with one another:
//
// - A durable write is applied to all of them in one synchronous step (`apply`), so a reader
//   never sees a key directory entry whose record disagrees with the expiry index (readValue
//   relies on the index to know whether a record carries an expiry field), nor a stale cached
//   value.
// - Live-byte accounting follows every key directory change (apply, move), so compaction's
//   trigger and `stats()` are exact.
// - Metadata updates run one at a time (updateMeta): the write path's format upgrade and
//   compaction's commit would otherwise overwrite each other's temporary files.
//
// Buffers: the keys apply receives are views into an encoded write's records; the key directory
// copies them on insert and the value cache copies values, so nothing here keeps a caller's
// buffer or the write's.
import * as path from 'node:path';
import type { Clock } from '../../io/clock.js';
import type { File, FileSystem } from '../../io/file-system.js';
import { AssertionError, assert } from '../../stdx/assert.js';
import { asBuffer, bytesEqual } from '../../stdx/bytes.js';
import { hash32 } from '../../stdx/hash32.js';
import { keyString } from '../../stdx/key-string.js';
import type { Revision } from '../engine.js';
import { CorruptionError } from '../errors.js';
import { type ExpiryIndex, isExpired } from '../expiry-index.js';
import { FILE_HEADER_FORMAT, type Meta, writeMeta } from '../meta.js';
import { legacyRevision } from '../revision.js';
import type { DataFile, DataFileSet } from './data-file-set.js';
import { dataPath } from './file-names.js';
import type { KeyDir, Location } from './key-dir.js';
import { NO_SLOT, type PointIndex } from './point-index.js';
import {
  DATA_HEADER_BYTES,
  type Decoded,
  decodeRecord,
  encodeDataHeader,
  INVALID,
  Kind,
  NEED_MORE,
  recordBytes,
  recordStart,
  VALUE_TYPE_BYTES,
} from './record.js';
import { ValueCache } from './value-cache.js';

/**
 * DurableWrite: one write's encoded records, and what each op changes once they are durable. The
 * records are `len` bytes at `at` in `bytes`, a buffer the write may share with the writes queued
 * beside it (the group commit encodes a part's writes into one buffer: group-commit.ts).
 */
export interface DurableWrite {
  readonly bytes: Buffer;
  /** at: where the write's records start in `bytes`. */
  readonly at: number;
  /** len: the size of the write's records. */
  readonly len: number;
  /** seq: the write's commit timestamp, the sequence number of all its records. */
  readonly seq: number;
  readonly ops: readonly DurableOp[];
  /** typed: some PUT carries a value type (the store must be at FORMAT_TYPED before it is written). */
  readonly typed: boolean;
}

export interface DurableOp {
  /** key: a view into the write's `bytes` (so the caller's buffer may be reused at once). */
  readonly key: Uint8Array;
  readonly kind: Kind;
  /** valueAt: offset of the value from the start of the write's records (`at`). */
  readonly valueAt: number;
  readonly valueLen: number;
  /** expiresAt: a PUT's expiry, undefined for none. */
  readonly expiresAt: number | undefined;
  /** create, version: a PUT's revision (the seq is its mod); 0 for a DELETE. */
  readonly create: number;
  readonly version: number;
  /** valueType: a PUT's value type (0: a string; else valueLen counts its type byte at valueAt). */
  readonly valueType: number;
}

/** CaskMetaFields: what the cask engine keeps in the store metadata (docs/format.md). */
export interface CaskMetaFields {
  /** retired: data files replaced by a committed compaction; deleted on sight. */
  readonly retired: readonly number[];
  /** seqFloor: every sequence number used before the last compaction is at most this. */
  readonly seqFloor: number;
  /**
   * syncedEnd: at the last clean close, data file `file` (then the active one) was fdatasynced
   * through byte `bytes`. Recovery knows from it that damage before that byte cannot be a torn
   * write (docs/hardening.md, rule 6).
   */
  readonly syncedEnd?: SyncedEnd | undefined;
  /**
   * files: the data files that must be in the directory (docs/format.md, "Metadata"): every
   * file that may hold an acknowledged write, recorded after it was created durably and before
   * anything in it was acknowledged, and taken out only in the metadata update that retires it.
   * Recovery reports a listed file that is missing (`missing-data-file`). Undefined in the
   * metadata of a store written before the field existed, until its next writable open.
   */
  readonly files?: readonly number[] | undefined;
}

export interface SyncedEnd {
  readonly file: number;
  readonly bytes: number;
}

/** CaskStoreParts: what recovery rebuilt and the open decided, from which a CaskStore starts. */
export interface CaskStoreParts {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly clock: Clock;
  readonly dataFileBytes: number;
  readonly cacheBytes: number;
  readonly keyDir: KeyDir;
  readonly expiries: ExpiryIndex;
  readonly files: DataFileSet;
  readonly meta: Meta;
  /** active: the data file appends go to (a place holder in a read-only store). */
  readonly active: DataFile;
  /** lastTs: the highest commit timestamp any earlier process used (recovery's maxSeq). */
  readonly lastTs: number;
  /** tombstones: the deletes of each data file that has no hint file yet (recovery's). */
  readonly tombstones?: Map<number, Tombstone[]>;
  /** debugChecks: cross-check every point-index read with the B+tree (CaskOptions.debugChecks). */
  readonly debugChecks?: boolean;
}

/**
 * POINT_INDEX_BUILD_CHUNK: keys added to the point index per turn of the event loop while it is
 * built after an open (about 5 ms of random writes into the tables here; the rest of the store
 * serves meanwhile, point lookups through the B+tree).
 */
export const POINT_INDEX_BUILD_CHUNK = 16_384;

/**
 * READ_SCRATCH_BYTES: records up to this size are read into one buffer the store reuses, and the
 * value is copied out of it; larger ones into a buffer of their own, which the value is a view
 * of. Measured (bench/read-budget.ts): a pread into a fresh Buffer cost 1.4 µs more than into a
 * reused one, far more than the copy of a small value; for large values the copy would cost more.
 */
const READ_SCRATCH_BYTES = 64 * 1024;
/** PREFETCH_KEYS_MAX: keys one prefetch touches at most (the rest of a batch goes without). */
const PREFETCH_KEYS_MAX = 64;

/** Candidate: what reading one point-index candidate found (readCandidate). */
const Candidate = {
  /** the key's record: its value was returned */
  MATCH: 0,
  /** a sound PUT record of another key (two keys with one hash): try the next candidate */
  OTHER_KEY: 1,
  /** anything else: let the B+tree decide (and report corruption, if it is that) */
  DOUBT: 2,
} as const;

/** Tombstone: a DELETE record of a data file, as its hint file will list it. */
export interface Tombstone {
  readonly key: Uint8Array;
  readonly seq: number;
}

export class CaskStore {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly clock: Clock;
  readonly dataFileBytes: number;
  readonly keyDir: KeyDir;
  readonly expiries: ExpiryIndex;
  readonly files: DataFileSet;
  readonly cache: ValueCache;
  meta: Meta;
  /** active: the data file the group commit appends to; every other file is sealed. */
  active: DataFile;
  /** lastTs: the commit timestamp of the newest write queued (durable or not). It moves when a write is queued. */
  lastTs: number;
  /** durableTs: the commit timestamp of the newest write published (durable under the durability mode; in ts order). */
  durableTs: number;
  /**
   * syncedTs: every write at or below it is on stable storage (fdatasynced): durableTs in mode
   * `always`, less in `interval` and `never` until a sync or a seal. It is the sequence floor
   * compaction records: a floor must never count a write that a power cut could still take
   * away, because a cluster member replays its Raft log from the engine's lastTs
   * (docs/cluster.md) and would skip it.
   */
  syncedTs: number;
  /** publishes: counts writes applied, so a scan can tell whether a chunk it read went stale. */
  publishes = 0;
  /** publishedBytes: the record bytes of the writes applied (background jobs pace by it). */
  publishedBytes = 0;
  /**
   * tombstones: the DELETE records written to each data file not yet given a hint file (the
   * active one, and sealed ones whose hint file is still to be written): the key directory
   * forgets deleted keys, but a sealed file's hint must list its deletes (seal-hint.ts).
   */
  readonly tombstones: Map<number, Tombstone[]>;
  /** metaWrites: the metadata update in progress; the next one waits for it. */
  private metaWrites: Promise<void> = Promise.resolve();
  private readonly debugChecks: boolean;
  /** candidate: what the last readCandidate found (a field, so that a read allocates no pair). */
  private candidate: number = Candidate.DOUBT;
  /** scratch: the reused read buffer (READ_SCRATCH_BYTES); nothing outlives a call in it. */
  private readonly scratch = Buffer.allocUnsafeSlow(READ_SCRATCH_BYTES);
  /** decoded: the reused result of decoding a record read for a point read. */
  private readonly decoded = {} as Decoded;
  /** prefetchHashes, prefetchLeaves: the prefetches' scratch (the keys' hashes, their leaf hints). */
  private readonly prefetchHashes = new Uint32Array(PREFETCH_KEYS_MAX);
  private readonly prefetchLeaves = new Int32Array(PREFETCH_KEYS_MAX);
  /**
   * @internal prefetchSink: a sum of what the last prefetch read, kept so that its loads are not
   * dead code to the compiler (nothing else reads it).
   */
  prefetchSink = 0;

  constructor(parts: CaskStoreParts) {
    this.fs = parts.fs;
    this.dir = parts.dir;
    this.clock = parts.clock;
    this.dataFileBytes = parts.dataFileBytes;
    this.keyDir = parts.keyDir;
    this.expiries = parts.expiries;
    this.files = parts.files;
    this.cache = new ValueCache(parts.cacheBytes);
    this.meta = parts.meta;
    this.active = parts.active;
    this.lastTs = parts.lastTs;
    this.durableTs = parts.lastTs;
    this.syncedTs = parts.lastTs;
    this.tombstones = parts.tombstones ?? new Map();
    this.debugChecks = parts.debugChecks ?? false;
    // The point index: a small store's at once; a large one's later, in chunks (buildPointIndex),
    // its tables' allocation included (about 50 ms at 1M keys, a twentieth of the open).
    if (this.keyDir.size <= POINT_INDEX_BUILD_CHUNK) this.keyDir.buildPointIndex(POINT_INDEX_BUILD_CHUNK);
  }

  /** pointIndexComplete: the point index holds every key (else buildPointIndex has more to do). */
  get pointIndexComplete(): boolean {
    return this.keyDir.pointIndex !== undefined;
  }

  /** buildPointIndex adds the next chunk of keys to the point index (begun at the first call); true once complete. */
  buildPointIndex(): boolean {
    return this.keyDir.buildPointIndex(POINT_INDEX_BUILD_CHUNK);
  }

  // ---- reads ----

  /** expiryOf returns the expiry the key's current record carries, if any. */
  expiryOf(key: Uint8Array): number | undefined {
    return this.expiries.size === 0 ? undefined : this.expiries.get(keyString(key));
  }

  /** expired: the key carries an expiry that has passed (it reads as absent). */
  expired(key: Uint8Array): boolean {
    const expiresAt = this.expiryOf(key);
    return expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs());
  }

  /**
   * readType: the value type of the record the last readValue or readKey read (0: a string). Read
   * in the same synchronous step as that call; a field rather than a returned pair so that the
   * string read path (GET) allocates nothing more than the value.
   */
  readType = 0;
  /** readSeq, readCreate, readVersion: the revision fields of the record readKey last read (as Location's). */
  readSeq = 0;
  readCreate = 0;
  readVersion = 0;

  /**
   * absent: the point index proves that `key` is not in the key directory (no slot has its
   * hash). False means "may be there": ask the key directory.
   */
  absent(key: Uint8Array): boolean {
    const index = this.keyDir.pointIndex;
    return index !== undefined && index.first(hash32(key)) === NO_SLOT;
  }

  /**
   * readKey reads `key`'s value, or undefined when the key directory has none; `expires` says
   * whether its record carries an expiry (the expiry index knows). The value's type is left in
   * readType and its record's revision in readSeq, readCreate and readVersion.
   *
   * Through the point index when it is complete: each slot with the key's hash is a candidate,
   * read and confirmed by the record's own key (and CRC); a sound record of another key means
   * two keys share a hash, so the next candidate is tried. Anything doubtful (a record that does
   * not decode where a candidate points, which a hash shared with a key of another length also
   * gives) goes to the B+tree, whose readValue verifies everything and reports corruption.
   */
  readKey(key: Uint8Array, expires: boolean): Buffer | undefined {
    const index = this.keyDir.pointIndex;
    if (index !== undefined) {
      const hash = hash32(key);
      let pos = index.first(hash);
      for (; pos !== NO_SLOT; pos = index.next(hash, pos)) {
        const value = this.readCandidate(key, expires, index, pos);
        if (this.candidate === Candidate.MATCH) {
          if (this.debugChecks) this.checkPointRead(key, index, pos);
          return value;
        }
        if (this.candidate === Candidate.DOUBT) break;
      }
      if (pos === NO_SLOT) {
        if (this.debugChecks)
          assert(
            !this.keyDir.has(key),
            `point index misses key ${hexPrefix(key)} that the key directory has`,
          );
        return undefined;
      }
    }
    const loc = this.keyDir.get(key);
    if (loc === undefined) return undefined;
    const value = this.readValue(key, loc, expires);
    this.readSeq = loc.seq;
    this.readCreate = loc.create;
    this.readVersion = loc.version;
    return value;
  }

  /**
   * readCandidate reads the record that point-index slot `pos` locates, as `key`'s; the verdict
   * is left in `candidate`, and the value is returned on a MATCH.
   */
  private readCandidate(
    key: Uint8Array,
    expires: boolean,
    index: PointIndex,
    pos: number,
  ): Buffer | undefined {
    this.candidate = Candidate.DOUBT;
    const data = this.files.tryGet(index.fileAt(pos));
    if (data === undefined) return undefined;
    const revision = !index.legacyAt(pos);
    const valueLen = index.valueLenAt(pos);
    const length = recordBytes(key.length, valueLen, expires, revision);
    const start = recordStart(index.valueOffsetAt(pos), key.length, expires, revision);
    if (start < DATA_HEADER_BYTES) return undefined;
    const buf = length <= READ_SCRATCH_BYTES ? this.scratch : Buffer.allocUnsafe(length);
    const n = data.file.readSync(buf, 0, length, start);
    const rec = n === length ? decodeRecord(buf, 0, length, this.decoded) : NEED_MORE;
    if (rec === NEED_MORE || rec === INVALID || rec.kind !== Kind.PUT) return undefined;
    if (
      rec.keyLen !== key.length ||
      !bytesEqual(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen), key)
    ) {
      this.candidate = Candidate.OTHER_KEY;
      return undefined;
    }
    if ((rec.expiresAt !== undefined) !== expires || (rec.version !== 0) !== revision) return undefined;
    this.candidate = Candidate.MATCH;
    this.readType = rec.valueType;
    this.readSeq = rec.seq;
    this.readCreate = rec.create;
    this.readVersion = rec.version;
    const skip = rec.valueType === 0 ? 0 : VALUE_TYPE_BYTES;
    return this.valueOut(buf, rec.valueStart + skip, rec.valueStart + rec.valueLen);
  }

  /**
   * valueOut hands out bytes [start, end) of a record just read: a copy when it is in the scratch
   * buffer (reused by the next read), else a view of the record's own buffer.
   */
  private valueOut(buf: Buffer, start: number, end: number): Buffer {
    if (buf !== this.scratch) return buf.subarray(start, end);
    const out = Buffer.allocUnsafe(end - start);
    buf.copy(out, 0, start, end);
    return out;
  }

  /** checkPointRead (debug checks): a read through the point index found what the B+tree has. */
  private checkPointRead(key: Uint8Array, index: PointIndex, pos: number): void {
    const loc = this.keyDir.get(key);
    assert(
      loc !== undefined &&
        loc.fileId === index.fileAt(pos) &&
        loc.valueOffset === index.valueOffsetAt(pos) &&
        loc.valueLen === index.valueLenAt(pos) &&
        loc.seq === this.readSeq &&
        loc.version === this.readVersion,
      `point index read of key ${hexPrefix(key)} disagrees with the key directory`,
    );
  }

  /**
   * readRecordBytes reads the bytes of the record `loc` points at as they are, unverified, into
   * a fresh buffer of exactly the record's size (zeros past the end of a short file): what
   * compaction carries forward of a record that failed verification (docs/hardening.md).
   */
  readRecordBytes(key: Uint8Array, loc: Location, expires: boolean): Buffer {
    const data = this.files.get(loc.fileId);
    const revision = loc.version !== 0;
    const length = recordBytes(key.length, loc.valueLen, expires, revision);
    const start = recordStart(loc.valueOffset, key.length, expires, revision);
    const buf = Buffer.alloc(length);
    data.file.readSync(buf, 0, length, start);
    return buf;
  }

  /**
   * readValue reads and verifies the record that `loc` points at; `expires` says whether that
   * record carries an expiry field (it moves the key and value by EXPIRY_BYTES). The value
   * returned is the payload (a TYPED record's type byte skipped); its type is left in readType.
   */
  readValue(key: Uint8Array, loc: Location, expires = this.expiryOf(key) !== undefined): Buffer {
    const data = this.files.get(loc.fileId);
    const revision = loc.version !== 0;
    const length = recordBytes(key.length, loc.valueLen, expires, revision);
    const start = recordStart(loc.valueOffset, key.length, expires, revision);
    const buf = length <= READ_SCRATCH_BYTES ? this.scratch : Buffer.allocUnsafe(length);
    const n = data.file.readSync(buf, 0, length, start);
    const rec = n === length ? decodeRecord(buf, 0, length, this.decoded) : NEED_MORE;
    if (
      rec === NEED_MORE ||
      rec === INVALID ||
      rec.kind !== Kind.PUT ||
      (rec.expiresAt !== undefined) !== expires ||
      rec.version !== loc.version ||
      rec.seq !== loc.seq ||
      !bytesEqual(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen), key)
    ) {
      throw new CorruptionError(
        `record at ${path.basename(data.file.path)}:${start} (key ${hexPrefix(key)}) failed verification`,
      );
    }
    this.readType = rec.valueType;
    const skip = rec.valueType === 0 ? 0 : VALUE_TYPE_BYTES;
    return this.valueOut(buf, rec.valueStart + skip, rec.valueStart + rec.valueLen);
  }

  /**
   * dueExpiries lists up to `max` keys (copies) whose expiry passed at `nowMs`, soonest first,
   * changing nothing anyone can observe: the entries taken from the heap go straight back
   * (stale heap entries met on the way are dropped, as takeDue always does).
   */
  dueExpiries(nowMs: number, max: number): Uint8Array[] {
    if (this.expiries.size === 0) return [];
    const due = this.expiries.takeDue(nowMs, max);
    for (const entry of due) this.expiries.requeue(entry);
    return due.map((entry) => Buffer.from(entry.name, 'latin1'));
  }

  // ---- changes ----

  /**
   * apply makes a durable write visible: key directory, expiry index, live-byte accounting and
   * value cache, in one synchronous step. `at` is where the write's bytes start in data file
   * `fileId`.
   */
  apply(write: DurableWrite, fileId: number, at: number): void {
    for (const op of write.ops) {
      const expires = op.expiresAt !== undefined;
      // The key string, the expiry index's key, only where the index is involved: most stores
      // have no expiring keys, and a write then makes no key string here (issue 14).
      const name = expires || this.expiries.size > 0 ? keyString(op.key) : '';
      const hadExpiry = this.expiries.size > 0 && this.expiries.has(name);
      if (op.kind === Kind.PUT) {
        if (this.keyDir.set(op.key, fileId, at + op.valueAt, op.valueLen, write.seq, op.create, op.version)) {
          this.dropPrevious(op.key.length, hadExpiry);
        }
        if (expires || hadExpiry) this.expiries.set(name, op.expiresAt);
        this.files.addLive(fileId, recordBytes(op.key.length, op.valueLen, expires, op.version !== 0));
        const skip = op.valueType === 0 ? 0 : VALUE_TYPE_BYTES;
        this.cache.set(
          op.key,
          write.bytes.subarray(write.at + op.valueAt + skip, write.at + op.valueAt + op.valueLen),
          write.seq,
          op.create,
          op.version,
          op.valueType,
        );
      } else {
        if (this.keyDir.remove(op.key)) this.dropPrevious(op.key.length, hadExpiry);
        if (hadExpiry) this.expiries.delete(name);
        this.cache.delete(op.key);
        // A copy: op.key is a view into the write's buffer, which should not live on.
        this.noteTombstone(fileId, Buffer.from(op.key), write.seq);
      }
    }
    this.publishes++;
    this.publishedBytes += write.len;
  }

  /**
   * prefetchRanges touches what lookups of the keys `bytes[starts[i]..ends[i])` (i < count, at
   * most PREFETCH_KEYS_MAX) will read: their value cache entries and their key directory
   * entries (Engine.prefetch). Changes nothing.
   */
  prefetchRanges(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void {
    const n = Math.min(count, PREFETCH_KEYS_MAX);
    const hashes = this.prefetchHashes;
    for (let i = 0; i < n; i++) hashes[i] = hash32(bytes, starts[i] as number, ends[i] as number);
    // Not the tree's leaves: a read, and a write's revision lookup, end at the value cache or the
    // point index; a write reaches the leaves at publish, which prefetches them then.
    this.touch(n, false);
  }

  /**
   * prefetchWrites is prefetchRanges for the keys of the writes from `writes[from]` on, whole
   * writes until they hold `keys` keys (at least the first write, at most PREFETCH_KEYS_MAX of
   * its keys), about to be applied in turn (the group commit's publish: by then what a read's
   * prefetch touched is long out of the CPU's caches, as a group holds every write of a turn of
   * the loop). Returns the index of the first write it did not prefetch.
   */
  prefetchWrites(writes: readonly DurableWrite[], from: number, keys: number): number {
    const hashes = this.prefetchHashes;
    const max = Math.min(keys, PREFETCH_KEYS_MAX);
    let n = 0;
    let i = from;
    for (; i < writes.length && (n === 0 || n < max); i++) {
      const ops = (writes[i] as DurableWrite).ops;
      for (let j = 0; j < ops.length && n < PREFETCH_KEYS_MAX; j++)
        hashes[n++] = hash32((ops[j] as DurableOp).key);
    }
    this.touch(n, true);
    return i;
  }

  /**
   * touch prefetches the keys whose hashes are prefetchHashes[0..n), with their leaves in the
   * tree or not (see prefetchSink).
   */
  private touch(n: number, leaves: boolean): void {
    const hashes = this.prefetchHashes;
    this.prefetchSink =
      this.cache.prefetch(hashes, n) +
      this.keyDir.prefetch(hashes, n, leaves ? this.prefetchLeaves : undefined);
  }

  /** noteTombstone remembers a DELETE record of data file `fileId` for its hint file. */
  noteTombstone(fileId: number, key: Uint8Array, seq: number): void {
    const list = this.tombstones.get(fileId);
    if (list === undefined) this.tombstones.set(fileId, [{ key, seq }]);
    else list.push({ key, seq });
  }

  /** dropPrevious takes the record the last key directory change replaced off the live bytes. */
  private dropPrevious(keyLen: number, expires: boolean): void {
    const prev = this.keyDir.previous;
    this.files.removeLive(prev.fileId, recordBytes(keyLen, prev.valueLen, expires, prev.version !== 0));
  }

  /**
   * move points `key` at the copy of its record at (toFile, toOffset) if it still points at
   * (fromFile, fromOffset) (a write since then wins), moving its `size` live bytes along. The
   * record is the same (seq, revision, expiry), so nothing else changes: the value cache stays.
   */
  move(
    key: Uint8Array,
    fromFile: number,
    fromOffset: number,
    toFile: number,
    toOffset: number,
    size: number,
  ): boolean {
    if (!this.keyDir.relocate(key, fromFile, fromOffset, toFile, toOffset)) return false;
    this.files.removeLive(fromFile, size);
    this.files.addLive(toFile, size);
    return true;
  }

  /** sealedIds: the data files no longer appended to, oldest first. */
  sealedIds(): number[] {
    const activeId = this.active.id;
    return this.files.ids().filter((id) => id < activeId);
  }

  /**
   * startDataFile creates the next data file, durably, records it in the metadata's `files`
   * and makes it the active one: nothing is written to it, so nothing in it acknowledged,
   * before the metadata names it. A crash between the two leaves an unlisted file, which the
   * next open lists; if the metadata cannot be written the file is removed again and the old
   * one stays active.
   */
  async startDataFile(): Promise<void> {
    const next = await createDataFile(this.fs, this.dir, this.files.allocate());
    try {
      await this.commitMeta((current) => ({ files: listFiles(current.files, [next.id], []) }));
    } catch (err) {
      await next.file.close().catch(() => {});
      await this.fs.unlink(dataPath(this.dir, next.id)).catch(() => {});
      throw err;
    }
    this.files.add(next);
    this.active = next;
  }

  /** closeFiles gives back every data file handle (best effort: the store is going away). */
  async closeFiles(): Promise<void> {
    for (const f of this.files.all()) await f.file.close().catch(() => {});
  }

  // ---- metadata ----

  metaFields(): CaskMetaFields {
    return readCaskFields(this.meta);
  }

  /**
   * commitMeta writes new engine fields to both metadata copies (others are kept). `fields` may
   * be a function of the fields current when the update runs (updates are serialized: one
   * computed earlier could undo another's change, e.g. to `files`).
   */
  commitMeta(
    fields: Partial<CaskMetaFields> | ((current: CaskMetaFields) => Partial<CaskMetaFields>),
  ): Promise<void> {
    return this.updateMeta((meta) => ({
      ...meta,
      generation: meta.generation + 1,
      fields: { ...meta.fields, ...(typeof fields === 'function' ? fields(readCaskFields(meta)) : fields) },
    }));
  }

  /** upgradeFormat raises the metadata's format (compaction may be writing it too: serialized). */
  upgradeFormat(format: number): Promise<void> {
    return this.updateMeta((meta) =>
      meta.format >= format ? meta : { ...meta, format, generation: meta.generation + 1 },
    );
  }

  /**
   * updateMeta applies `change` to the newest metadata and writes it; updates run one at a time
   * (compaction's commit and the format upgrade of the write path may overlap otherwise, and
   * both write the same temporary files).
   */
  private updateMeta(change: (meta: Meta) => Meta): Promise<void> {
    const run = this.metaWrites.then(async () => {
      const next = change(this.meta);
      if (next === this.meta) return;
      await writeMeta(this.fs, this.dir, next);
      this.meta = next;
    });
    this.metaWrites = run.catch(() => {});
    return run;
  }

  /**
   * checkIndexes is the debug check (CaskOptions.debugChecks): the key directory and the expiry
   * index verified whole. A failure is a bug in this engine (both are rebuilt from the files at
   * every open), so it is an assertion: loud, never a silently wrong answer.
   */
  checkIndexes(after: string): void {
    checkIndexes(this.keyDir, this.expiries, after);
  }
}

/** checkIndexes: see CaskStore.checkIndexes (also run on what recovery built, before a store exists). */
export function checkIndexes(keyDir: KeyDir, expiries: ExpiryIndex, after: string): void {
  const problems = keyDir.verify();
  assert(problems.length === 0, `key directory damaged after ${after}: ${problems.join('; ')}`);
  expiries.checkInvariants();
  // The two change in one synchronous step: an expiry belongs to a live key.
  for (const name of expiries.names()) {
    assert(
      keyDir.has(Buffer.from(name, 'latin1')),
      `expiry of a key not in the key directory after ${after}`,
    );
  }
}

/** revisionOf is the revision a key directory location (or a cache entry copied from one) records. */
export function revisionOf(loc: Pick<Location, 'seq' | 'create' | 'version'>): Revision {
  return loc.version === 0
    ? legacyRevision(loc.seq)
    : { mod: loc.seq, create: loc.create, version: loc.version };
}

/** hexPrefix names a key in an error message: its first bytes, in hex. */
export function hexPrefix(key: Uint8Array): string {
  return asBuffer(key).toString('hex').slice(0, 64);
}

/** readCaskFields reads the cask engine's fields of the metadata, ignoring malformed ones. */
export function readCaskFields(meta: Meta): CaskMetaFields {
  const retired = Array.isArray(meta.fields.retired)
    ? meta.fields.retired.filter((x): x is number => Number.isInteger(x))
    : [];
  const seqFloor = typeof meta.fields.seqFloor === 'number' ? meta.fields.seqFloor : 0;
  const raw = meta.fields.syncedEnd as { file?: unknown; bytes?: unknown } | undefined;
  const syncedEnd =
    raw !== null &&
    typeof raw === 'object' &&
    Number.isSafeInteger(raw.file) &&
    Number.isSafeInteger(raw.bytes)
      ? { file: raw.file as number, bytes: raw.bytes as number }
      : undefined;
  const files = Array.isArray(meta.fields.files)
    ? meta.fields.files.filter((x): x is number => Number.isInteger(x))
    : undefined;
  return { retired, seqFloor, syncedEnd, files };
}

/**
 * listFiles is the metadata's `files` list with `add` in and `remove` out (sorted, each id once);
 * undefined while the metadata has no list (a store from before the field: its next writable
 * open writes the whole list, from the files it finds).
 */
export function listFiles(
  files: readonly number[] | undefined,
  add: readonly number[],
  remove: readonly number[],
): number[] | undefined {
  if (files === undefined) return undefined;
  const out = new Set(files);
  for (const id of add) out.add(id);
  for (const id of remove) out.delete(id);
  return [...out].sort((a, b) => a - b);
}

/** createDataFile creates a data file with its header, durably (file and directory entry). */
export async function createDataFile(fs: FileSystem, dir: string, id: number): Promise<DataFile> {
  // Written under a temporary name and renamed, so that a crash never leaves a data file
  // without its header (a `.tmp` leftover is deleted by the next open).
  const filePath = dataPath(dir, id);
  const tmpPath = `${filePath}.tmp`;
  let file: File | undefined;
  try {
    const tmp = await fs.open(tmpPath, 'create');
    try {
      await tmp.write(encodeDataHeader(FILE_HEADER_FORMAT, id), 0);
      await tmp.datasync();
    } finally {
      await tmp.close();
    }
    await fs.rename(tmpPath, filePath);
    await fs.syncDir(dir);
    file = await fs.open(filePath, 'readwrite');
    return {
      id,
      file,
      size: DATA_HEADER_BYTES,
      allocated: DATA_HEADER_BYTES,
      liveBytes: 0,
      liveKeys: 0,
      minSeq: Number.POSITIVE_INFINITY,
      hinted: false,
    };
  } catch (err) {
    await file?.close().catch(() => {});
    await fs.unlink(tmpPath).catch(() => {});
    await fs.unlink(filePath).catch(() => {});
    throw err;
  }
}

/**
 * NO_DATA_FILE: the place holder `active` of a read-only store without data files. Nothing is
 * ever appended in read-only mode, so any use of its file is a bug.
 */
export const NO_DATA_FILE: DataFile = {
  id: 0,
  file: new Proxy({} as File, {
    get(_target, prop) {
      if (prop === 'path') return '(no data file)';
      return () => {
        throw new AssertionError(
          `a read-only store without data files used its active file (${String(prop)})`,
        );
      };
    },
  }),
  size: DATA_HEADER_BYTES,
  allocated: DATA_HEADER_BYTES,
  liveBytes: 0,
  liveKeys: 0,
  minSeq: Number.POSITIVE_INFINITY,
  hinted: false,
};
