// CaskEngine: Cairn's Bitcask-style storage engine (docs/format.md, docs/ARCHITECTURE.md).
//
// Writes are encoded at once (sequence number, CRC) and queued; a single flush loop appends
// every queued write with one `write` and one `fdatasync` (group commit), then publishes them to
// the key directory and resolves their promises. So in `always` mode a reader never sees a value
// before it is durable, and a crash loses only writes that were never acknowledged.
//
// Reads look the key up in the in-memory key directory and read the one record with a
// synchronous pread, verifying its CRC: from the page cache that costs a few microseconds,
// where a trip through libuv's thread pool costs tens. The cost: a read that misses the page
// cache blocks the event loop for one disk read (lmdb-js makes the same choice with mmap).
//
// Expiry: keys with a TTL are listed in an ExpiryIndex beside the key directory (the key
// directory itself stays 36 bytes per key); reads treat an expired key as absent, and an active
// cycle on the clock deletes expired keys with ordinary tombstones, through the write queue.
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"): keys, values and scan bounds passed in
// are borrowed. A write copies them into its encoded records in the call (nothing is awaited
// first), and everything queued refers to those records: the key directory gets views into
// them at publish and copies them (key-dir.ts), the value cache copies the value, the pending
// overlay is keyed by latin1 strings. Scans copy their bounds at the call. Values handed out are
// fresh reads or copies of the cache's; keys handed out are the key directory's copies.
//
// Revisions (engine.ts): a write's commit timestamp is its sequence number, so the key
// directory's seq is a key's mod timestamp; its create timestamp and version count live in the
// key directory slot beside it and in the record. Timestamps are assigned at enqueue, in queue
// order (the caller's ts, or the next seq), and create/version are derived then from the newest
// queued state (the overlay) or the key directory.
import * as path from 'node:path';
import { type Clock, systemClock, type Timer } from '../../io/clock.js';
import type { File, FileSystem } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { AssertionError, assert } from '../../stdx/assert.js';
import { asBuffer, bytesEqual, compareBytes, copyBytes } from '../../stdx/bytes.js';
import { DirLock } from '../dir-lock.js';
import type {
  BatchOp,
  Durability,
  Engine,
  EngineStats,
  Entry,
  PutOptions,
  Revision,
  ScanRange,
  Stored,
  WriteOptions,
} from '../engine.js';
import { DEFAULT_DURABILITY, DEFAULT_SYNC_INTERVAL_MS, shown } from '../engine-options.js';
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  openFailure,
  ReadOnlyError,
  StoreFailedError,
} from '../errors.js';
import {
  EXPIRY_CYCLE_INTERVAL_MS,
  EXPIRY_CYCLE_KEYS_MAX,
  type ExpiryEntry,
  type ExpiryIndex,
  isExpired,
} from '../expiry-index.js';
import {
  checkCompatible,
  FORMAT_REVISION,
  FORMAT_VERSION,
  loadOrCreateMeta,
  META_FILES,
  type Meta,
  readMeta,
  writeMeta,
} from '../meta.js';
import { checkKeyVersion, legacyRevision, revisionOfPut, writeTs } from '../revision.js';
import { checkBatch, checkDataDir, checkExpiresAt, checkKey, checkValue, ownScanRange } from '../validate.js';
import {
  type CaskOptions,
  DEFAULT_CACHE_BYTES,
  DEFAULT_COMPACTION_DEAD_RATIO,
  DEFAULT_COMPACTION_MIN_DEAD_BYTES,
  DEFAULT_DATA_FILE_BYTES,
  debugChecksOn,
  validateCaskOptions,
} from './cask-options.js';
import { compact } from './compactor.js';
import type { DataFile, DataFileSet } from './data-file-set.js';
import { DATA_SUFFIX, dataPath, HINT_SUFFIX, parseFileId } from './file-names.js';
import type { KeyDir, Location } from './key-dir.js';
import {
  BATCH_MEMBER,
  DATA_HEADER_BYTES,
  decodeRecord,
  encodeDataHeader,
  encodeRecord,
  extraBytes,
  INVALID,
  Kind,
  NEED_MORE,
  RECORD_HEADER_BYTES,
  recordBytes,
  SEQ_MAX,
} from './record.js';
import { type Recovered, type RecoverOptions, type RecoveryReport, recover } from './recovery.js';
import { ValueCache } from './value-cache.js';

export const ENGINE_NAME = 'cask';
/** SCAN_CHUNK_ENTRIES: entries a scan reads per turn of the event loop. */
const SCAN_CHUNK_ENTRIES = 256;
/**
 * SCAN_CHUNK_VISITS_MAX: key-directory entries a scan examines per turn, yielded or skipped as
 * expired, so a long run of expired keys does not hold the event loop.
 */
const SCAN_CHUNK_VISITS_MAX = 16 * SCAN_CHUNK_ENTRIES;
/**
 * COMPACTION_RETRY_MS_MIN, COMPACTION_RETRY_MS_MAX: after a failed background compaction the next
 * waits this long, doubling from the minimum to the maximum while failures repeat.
 */
const COMPACTION_RETRY_MS_MIN = 1_000;
const COMPACTION_RETRY_MS_MAX = 60_000;
/** GROUP_BYTES_MAX: the most bytes one group commit appends; larger queues take several. */
const GROUP_BYTES_MAX = 32 * 1024 * 1024;
/**
 * PREALLOCATE_BYTES: the active file is extended with zeros this far ahead of its appends.
 * fdatasync of an append that grows a file must also commit the new size to the file system's
 * journal; overwriting already-allocated zeros does not. Measured on this machine under load:
 * 3.9 ms per append+fdatasync against 1.0 ms per overwrite+fdatasync. (PostgreSQL pre-zeroes
 * its WAL segments for the same reason.) Recovery treats a zero tail as unused space.
 */
const PREALLOCATE_BYTES = 2 * 1024 * 1024;
const ZEROS = Buffer.alloc(PREALLOCATE_BYTES);

/** A queued write: its encoded records and what to publish to the key directory once durable. */
interface PendingWrite {
  readonly bytes: Buffer;
  readonly seq: number;
  readonly ops: readonly PendingOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface PendingOp {
  readonly key: Uint8Array;
  readonly kind: Kind;
  /** valueAt: offset of the value within `bytes`. */
  readonly valueAt: number;
  readonly valueLen: number;
  /** overlayKey: the key as a latin1 string, for the pending-existence overlay. */
  readonly overlayKey: string;
  /** expiresAt: a PUT's expiry, undefined for none. */
  readonly expiresAt: number | undefined;
  /** create, version: a PUT's revision (the seq is its mod); 0 for a DELETE. */
  readonly create: number;
  readonly version: number;
}

/** A queued request for the flush loop other than a write. */
interface Barrier {
  readonly barrier: 'rotate' | 'sync';
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type QueueItem = PendingWrite | Barrier;

export interface CaskStats extends EngineStats {
  readonly dataFiles: number;
  readonly deadBytes: number;
  readonly groupCommits: number;
  readonly recovery: RecoveryReport;
}

export async function openCask(dir: string, options: CaskOptions = {}): Promise<CaskEngine> {
  return CaskEngine.open(dir, options);
}

export class CaskEngine implements Engine {
  readonly name = ENGINE_NAME;
  // Shared with the compactor (same package); not part of the public API.
  /** @internal */ readonly fs: FileSystem;
  /** @internal */ readonly clock: Clock;
  /** @internal */ readonly durability: Durability;
  /** @internal */ readonly dataFileBytes: number;
  private readonly syncInline: boolean;
  private readonly cache: ValueCache;
  /** @internal */ meta: Meta;
  /** @internal */ active: DataFile;
  /** @internal */ closing = false;
  /** @internal */ compactions = 0;

  private queue: QueueItem[] = [];
  private flushing: Promise<void> | undefined;
  private failed: StoreFailedError | undefined;
  private nextSeq: number;
  /**
   * Keys with queued, not yet durable writes: their latest queued existence, expiry, revision
   * (mod 0 when deleted) and queue count.
   */
  private readonly overlay = new Map<
    string,
    {
      exists: boolean;
      expiresAt: number | undefined;
      mod: number;
      create: number;
      version: number;
      refs: number;
    }
  >();
  private expiryTimer: Timer | undefined;
  /** metaWrites: the metadata update in progress; the next one waits for it. */
  private metaWrites: Promise<void> = Promise.resolve();
  /** expiring: the active expiry cycle's batch of tombstones in flight, if any. */
  private expiring: Promise<void> | undefined;
  private dirty = false;
  private syncTimer: Timer | undefined;
  private compacting: Promise<void> | undefined;
  /** compactionRetryAtMs: after a failed background compaction, no new one before this time. */
  private compactionRetryAtMs: number | undefined;
  /** preallocateOff: the id of the data file where preallocation failed (and is not tried again). */
  private preallocateOff: number | undefined;
  /** compactionBackoffMs: the wait after the last failure (0: the last run succeeded). */
  private compactionBackoffMs = 0;
  private closed: Promise<void> | undefined;
  private writes = 0;
  /** publishes: counts writes made visible, so scans can tell whether a chunk went stale. */
  private publishes = 0;
  private fsyncs = 0;
  private groupCommits = 0;
  /** expiredKeys: keys the active expiry cycle deleted since open. */
  private expiredKeys = 0;

  private constructor(
    readonly dir: string,
    private readonly options: CaskOptions,
    private readonly lock: DirLock,
    /** @internal */ readonly keyDir: KeyDir,
    /** @internal */ readonly expiries: ExpiryIndex,
    /** @internal */ readonly files: DataFileSet,
    readonly recovery: RecoveryReport,
    meta: Meta,
    active: DataFile,
    /** readOnly: opened with `readOnly` (CaskEngine.openReadOnly): every write is refused. */
    private readonly readOnly = false,
  ) {
    this.fs = options.fs ?? nodeFileSystem;
    this.clock = options.clock ?? systemClock;
    this.durability = options.durability ?? DEFAULT_DURABILITY;
    this.dataFileBytes = options.dataFileBytes ?? DEFAULT_DATA_FILE_BYTES;
    this.syncInline = options.syncOnEventLoop ?? true;
    this.cache = new ValueCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.meta = meta;
    this.active = active;
    this.nextSeq = recovery.maxSeq + 1;
    if (this.durability === 'interval' && !readOnly) {
      this.syncTimer = this.clock.every(options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS, () => {
        if (this.dirty) this.enqueueBarrier('sync').catch(() => {});
      });
    }
    if (expiries.size > 0 && !readOnly) this.startExpiring();
  }

  static async open(dir: string, options: CaskOptions = {}): Promise<CaskEngine> {
    validateCaskOptions(options);
    try {
      return options.readOnly === true
        ? await CaskEngine.openReadOnly(dir, options)
        : await CaskEngine.openWritable(dir, options);
    } catch (err) {
      throw openFailure(dir, err);
    }
  }

  /**
   * openReadOnly opens an existing store without writing anything: no LOCK file, no metadata
   * written or repaired, recovery only reporting (a torn tail stays, and its record is not
   * read), no compaction, no expiry cycle; every write fails with ReadOnlyError.
   */
  private static async openReadOnly(dir: string, options: CaskOptions): Promise<CaskEngine> {
    const fs = options.fs ?? nodeFileSystem;
    await checkDataDir(fs, dir);
    if ((await fs.kind(dir)) === undefined)
      throw new InvalidArgumentError(`no store at ${dir} (it does not exist)`);
    const lock = await DirLock.acquire(dir, true);
    let files: DataFileSet | undefined;
    try {
      const { meta } = await readMeta(fs, dir);
      if (meta === undefined)
        throw new CorruptionError(`${dir} holds no valid Cairn metadata; run \`cairn check\``);
      checkCompatible(meta, ENGINE_NAME, dir);
      const recovered = await recoverStore(fs, dir, meta, {
        repair: false,
        dataFileBytes: options.dataFileBytes ?? DEFAULT_DATA_FILE_BYTES,
      });
      files = recovered.files;
      const ids = files.ids();
      // Nothing is appended: `active` is only a place holder (the newest file, if any).
      const newest = ids.length === 0 ? undefined : files.get(Math.max(...ids));
      return CaskEngine.recovered(dir, options, lock, recovered, meta, newest ?? NO_DATA_FILE, true);
    } catch (err) {
      for (const f of files?.all() ?? []) await f.file.close().catch(() => {});
      await lock.release();
      throw err;
    }
  }

  /** recovered builds the engine from what recovery found (debug checks first), and reports it. */
  private static recovered(
    dir: string,
    options: CaskOptions,
    lock: DirLock,
    recovered: Recovered,
    meta: Meta,
    active: DataFile,
    readOnly: boolean,
  ): CaskEngine {
    if (debugChecksOn(options)) checkIndexes(recovered.keyDir, recovered.expiries, 'recovery');
    const engine = new CaskEngine(
      dir,
      options,
      lock,
      recovered.keyDir,
      recovered.expiries,
      recovered.files,
      recovered.report,
      meta,
      active,
      readOnly,
    );
    options.onEvent?.({ type: 'recovered', detail: { ...recovered.report } });
    return engine;
  }

  private static async openWritable(dir: string, options: CaskOptions): Promise<CaskEngine> {
    const fs = options.fs ?? nodeFileSystem;
    const clock = options.clock ?? systemClock;
    await checkDataDir(fs, dir);
    await fs.mkdir(dir);
    const lock = await DirLock.acquire(dir);
    let opened: DataFileSet | undefined;
    try {
      const names = await fs.readdir(dir);
      // "Empty" means no store files: a directory may hold unrelated files (kvs runs in the
      // current directory), but data or hint files without metadata must not be started over.
      const isEmpty = !names.some(
        (n) => parseFileId(n, DATA_SUFFIX) !== undefined || parseFileId(n, HINT_SUFFIX) !== undefined,
      );
      const { meta, problems } = await loadOrCreateMeta(fs, dir, ENGINE_NAME, clock.nowMs(), isEmpty);
      const recovered = await recoverStore(fs, dir, meta, {
        repair: true,
        dataFileBytes: options.dataFileBytes ?? DEFAULT_DATA_FILE_BYTES,
      });
      opened = recovered.files;
      for (const p of problems) {
        recovered.report.problems.push({
          kind: 'corrupt-range',
          file: META_FILES.find((m) => p.startsWith(m)) ?? 'META',
          detail: p,
          action: 'rewritten from the intact copy',
        });
      }
      let active: DataFile;
      if (recovered.activeId !== undefined) {
        active = recovered.files.get(recovered.activeId);
      } else {
        active = await createDataFile(fs, dir, recovered.files.allocate());
        recovered.files.add(active);
      }
      const engine = CaskEngine.recovered(dir, options, lock, recovered, meta, active, false);
      engine.maybeCompact();
      return engine;
    } catch (err) {
      // Give back every file handle and the directory: a failed open leaves nothing held.
      for (const f of opened?.all() ?? []) await f.file.close().catch(() => {});
      await lock.release();
      throw err;
    }
  }

  // ---- reads ----

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.getSync(key);
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    checkKey(key);
    const expiresAt = this.expiryOf(key);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    if (!this.cache.enabled) {
      const loc = this.keyDir.get(key);
      return loc === undefined ? undefined : this.readValue(key, loc, expiresAt !== undefined);
    }
    const name = asBuffer(key).toString('latin1');
    const cached = this.cache.lookup(name);
    if (cached !== undefined) return copyBytes(cached.value);
    const loc = this.keyDir.get(key);
    if (loc === undefined) return undefined;
    // readValue's buffer is this call's own: the cache keeps a copy, the caller gets it.
    const value = this.readValue(key, loc, expiresAt !== undefined);
    this.cache.set(name, value, loc.seq, loc.create, loc.version);
    return value;
  }

  async has(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    return this.keyDir.has(key) && !this.expired(key);
  }

  async getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.getStoredSync(key);
  }

  getStoredSync(key: Uint8Array): Stored | undefined {
    this.checkOpen();
    checkKey(key);
    const expiresAt = this.expiryOf(key);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    // The same value cache as get(): the server reads through getStored (LatestView). The value
    // and the revision are read in one synchronous step, from one key-directory lookup (or one
    // cache entry), so they belong together.
    const name = this.cache.enabled ? asBuffer(key).toString('latin1') : undefined;
    if (name !== undefined) {
      const cached = this.cache.lookup(name);
      if (cached !== undefined) {
        return { value: copyBytes(cached.value), expiresAt, revision: revisionOf(cached) };
      }
    }
    const loc = this.keyDir.get(key);
    if (loc === undefined) return undefined;
    const value = this.readValue(key, loc, expiresAt !== undefined);
    if (name !== undefined) this.cache.set(name, value, loc.seq, loc.create, loc.version);
    return { value, expiresAt, revision: revisionOf(loc) };
  }

  revisionSync(key: Uint8Array): Revision | undefined {
    this.checkOpen();
    checkKey(key);
    if (this.expired(key)) return undefined;
    if (this.cache.enabled) {
      const cached = this.cache.lookup(asBuffer(key).toString('latin1'));
      if (cached !== undefined) return revisionOf(cached);
    }
    const loc = this.keyDir.get(key);
    return loc === undefined ? undefined : revisionOf(loc);
  }

  lastTs(): number {
    return this.nextSeq - 1;
  }

  async expiry(key: Uint8Array): Promise<number | null | undefined> {
    this.checkOpen();
    checkKey(key);
    if (!this.keyDir.has(key)) return undefined;
    const expiresAt = this.expiryOf(key);
    if (expiresAt === undefined) return null;
    return isExpired(expiresAt, this.clock.nowMs()) ? undefined : expiresAt;
  }

  /** @internal expiryOf returns the expiry the key's current record carries, if any. */
  expiryOf(key: Uint8Array): number | undefined {
    return this.expiries.size === 0 ? undefined : this.expiries.get(asBuffer(key).toString('latin1'));
  }

  private expired(key: Uint8Array): boolean {
    const expiresAt = this.expiryOf(key);
    return expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs());
  }

  /**
   * @internal readValue reads and verifies the record that `loc` points at; `expires` says
   * whether that record carries an expiry field (it moves the key and value by EXPIRY_BYTES).
   */
  readValue(key: Uint8Array, loc: Location, expires = this.expiryOf(key) !== undefined): Buffer {
    const data = this.files.get(loc.fileId);
    const revision = loc.version !== 0;
    const length = recordBytes(key.length, loc.valueLen, expires, revision);
    const start = loc.valueOffset - key.length - RECORD_HEADER_BYTES - extraBytes(expires, revision);
    const buf = Buffer.allocUnsafe(length);
    const n = data.file.readSync(buf, 0, length, start);
    const rec = n === length ? decodeRecord(buf, 0, length) : NEED_MORE;
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
    return buf.subarray(rec.valueStart, rec.valueStart + rec.valueLen);
  }

  scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    // The bounds are borrowed and the generator's body runs only at the first next(): copy them
    // now, while the caller's buffers still hold them.
    return this.scanFrom(ownScanRange(range));
  }

  private async *scanFrom(range: ScanRange): AsyncIterableIterator<Entry> {
    this.checkOpen();
    const { start, end, reverse = false } = range;
    const limit = range.limit;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
      // As the lmdb engine and transactions: 1.5 or '2' is a caller's bug, not a limit.
      throw new InvalidArgumentError(`scan limit must be a non-negative integer, got ${shown(limit)}`);
    }
    let remaining = limit ?? Number.POSITIVE_INFINITY;
    if (start !== undefined) checkKey(start);
    if (end !== undefined) checkKey(end);
    if (start !== undefined && end !== undefined && compareBytes(start, end) >= 0) return;
    let cursor = reverse ? end : start;
    // Forward scans start inclusive at `start`; reverse scans start exclusive at `end`.
    let exclusive = reverse && end !== undefined;
    // previous: the last key walked, across chunks. Keys must strictly increase (decrease in
    // reverse); a key directory whose order is broken would otherwise make a scan repeat keys
    // or cycle forever (issue 10), so that is reported as corruption instead.
    let previous: Uint8Array | undefined;
    while (remaining > 0) {
      this.checkOpen();
      const chunk: Entry[] = [];
      const want = Math.min(remaining, SCAN_CHUNK_ENTRIES);
      // Walk and read in one synchronous step, so every location is current when read.
      const version = this.publishes;
      const nowMs = this.clock.nowMs();
      let last: Uint8Array | undefined;
      let visits = 0;
      let cut = false;
      this.keyDir.walk(cursor, exclusive, reverse, (key, loc) => {
        if (
          reverse
            ? start !== undefined && compareBytes(key, start) < 0
            : end !== undefined && compareBytes(key, end) >= 0
        ) {
          return false;
        }
        if (
          previous !== undefined &&
          (reverse ? compareBytes(key, previous) >= 0 : compareBytes(key, previous) <= 0)
        ) {
          throw new CorruptionError(
            `key directory out of order: scan went from ${hexPrefix(previous)} to ${hexPrefix(key)}; run \`cairn check\``,
          );
        }
        previous = key;
        last = key;
        const expiresAt = this.expiryOf(key);
        if (expiresAt === undefined || !isExpired(expiresAt, nowMs)) {
          chunk.push([key, this.readValue(key, loc, expiresAt !== undefined)]);
          if (chunk.length >= want) return false;
        }
        cut = ++visits >= SCAN_CHUNK_VISITS_MAX;
        return !cut;
      });
      if (last === undefined) return;
      for (const entry of chunk) {
        this.checkOpen();
        if (this.publishes === version) {
          yield entry;
          remaining--;
          continue;
        }
        // Writes landed since the chunk was read: yield the key's value as of now (or skip it
        // if it was deleted), so that every value is the newest when it is yielded.
        const loc = this.keyDir.get(entry[0]);
        if (loc === undefined || this.expired(entry[0])) continue;
        yield [entry[0], this.readValue(entry[0], loc)];
        remaining--;
      }
      if (chunk.length < want && !cut) return;
      cursor = last;
      exclusive = true;
    }
  }

  // ---- writes ----

  put(key: Uint8Array, value: Uint8Array, options?: PutOptions): Promise<void> {
    const expiresAt = options?.expiresAt;
    try {
      this.checkWritable();
      checkKey(key);
      checkValue(value);
      checkExpiresAt(expiresAt);
      const op: BatchOp = {
        type: 'put',
        key,
        value,
        expiresAt,
        create: options?.create,
        version: options?.version,
      };
      const written = this.enqueueWrite([op], false, options?.ts);
      if (expiresAt !== undefined) this.startExpiring();
      return written;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async delete(key: Uint8Array, options?: WriteOptions): Promise<boolean> {
    this.checkWritable();
    checkKey(key);
    writeTs(options?.ts, this.lastTs());
    if (!this.existsLatest(key)) return false;
    await this.enqueueWrite([{ type: 'delete', key }], false, options?.ts);
    return true;
  }

  batch(ops: readonly BatchOp[], options?: WriteOptions): Promise<void> {
    try {
      this.checkWritable();
      checkBatch(ops);
      writeTs(options?.ts, this.lastTs());
      if (ops.length === 0) return Promise.resolve();
      const last = lastOpPerKey(ops);
      const written = this.enqueueWrite(last.ops, true, options?.ts, last.names);
      if (ops.some((op) => op.type === 'put' && op.expiresAt !== undefined)) this.startExpiring();
      return written;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return; // nothing was written
    if (this.durability !== 'always' || this.flushing !== undefined) await this.enqueueBarrier('sync');
  }

  async compact(): Promise<void> {
    this.checkWritable();
    this.compacting ??= this.runCompaction();
    await this.compacting;
  }

  stats(): CaskStats {
    this.checkOpen();
    const total = this.files.totalBytes();
    const live = this.files.liveBytes();
    const expired = this.expiries.size === 0 ? 0 : this.expiries.expiredCount(this.clock.nowMs());
    return {
      engine: ENGINE_NAME,
      keys: this.keyDir.size - expired,
      expires: this.expiries.size - expired,
      expiredKeys: this.expiredKeys,
      avgTtlMs: this.expiries.avgTtlMs(this.clock.nowMs()),
      diskBytes: total,
      liveBytes: live,
      deadBytes: total - live,
      dataFiles: this.files.ids().length,
      writes: this.writes,
      fsyncs: this.fsyncs,
      groupCommits: this.groupCommits,
      compactions: this.compactions,
      recovery: this.recovery,
    };
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.syncTimer?.cancel();
    this.expiryTimer?.cancel();
    // Let compaction stop at its next step, and queued writes finish.
    try {
      await this.compacting?.catch(() => {});
      while (this.flushing !== undefined) await this.flushing;
      if (this.readOnly) return; // the finally below closes the files; nothing to write
      if (this.failed === undefined) await this.trimActive();
      if (this.failed === undefined && this.dirty) {
        await this.active.file.datasync();
        this.fsyncs++;
      }
      if (this.failed === undefined) await this.recordSyncedEnd();
    } finally {
      // Whatever happened above, give back the file handles and the directory.
      for (const f of this.files.all()) await f.file.close().catch(() => {});
      await this.lock.release();
    }
  }

  /**
   * recordSyncedEnd notes in the metadata how far the active file is durable at a clean close
   * (CaskMetaFields.syncedEnd), unless it says so already. Best effort: the data is durable
   * either way, and without the note recovery only knows less about where a torn write can be.
   */
  private async recordSyncedEnd(): Promise<void> {
    const syncedEnd: SyncedEnd = { file: this.active.id, bytes: this.active.size };
    const known = readCaskFields(this.meta).syncedEnd;
    if (known?.file === syncedEnd.file && known.bytes === syncedEnd.bytes) return;
    try {
      await this.commitMeta({ syncedEnd });
    } catch (err) {
      this.options.onEvent?.({ type: 'write-failed', detail: { error: String(err), metadata: true } });
    }
  }

  // ---- the write path ----

  /** existsLatest answers existence including writes that are queued but not yet durable. */
  private existsLatest(key: Uint8Array): boolean {
    if (this.overlay.size > 0) {
      const pending = this.overlay.get(asBuffer(key).toString('latin1'));
      if (pending !== undefined) {
        return (
          pending.exists &&
          (pending.expiresAt === undefined || !isExpired(pending.expiresAt, this.clock.nowMs()))
        );
      }
    }
    return this.keyDir.has(key) && !this.expired(key);
  }

  /**
   * enqueueWrite assigns the write's seq (its commit timestamp: `ts`, or the next one) and every
   * put's revision, encodes the records and queues them. It throws, changing nothing, when `ts`
   * or a caller-assigned revision is invalid.
   */
  private enqueueWrite(
    ops: readonly BatchOp[],
    asBatch: boolean,
    ts?: number,
    /** names: the keys as latin1 strings, when the caller has them already. */
    names?: readonly string[],
  ): Promise<void> {
    const seq = writeTs(ts, this.lastTs());
    assert(seq < SEQ_MAX, 'sequence numbers exhausted');
    // Revisions first, so that a refused one leaves nothing behind.
    const revisions: (Revision | undefined)[] = ops.map((op) => {
      if (op.type !== 'put') return undefined;
      checkKeyVersion(op, seq);
      return revisionOfPut(op.create === undefined ? this.revisionLatest(op.key) : undefined, seq, op);
    });
    this.nextSeq = seq + 1;
    let size = asBatch ? recordBytes(0, 4) : 0;
    for (const op of ops) {
      size +=
        op.type === 'put'
          ? recordBytes(op.key.length, op.value.length, op.expiresAt !== undefined, true)
          : recordBytes(op.key.length, 0);
    }
    const bytes = Buffer.allocUnsafe(size);
    let pos = 0;
    if (asBatch) {
      const count = Buffer.alloc(4);
      count.writeUInt32LE(ops.length, 0);
      pos = encodeRecord(bytes, pos, seq, Kind.BATCH, new Uint8Array(0), count);
    }
    const pending: PendingOp[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as BatchOp;
      const kind = op.type === 'put' ? Kind.PUT : Kind.DELETE;
      const value = op.type === 'put' ? op.value : undefined;
      const expiresAt = op.type === 'put' ? op.expiresAt : undefined;
      const create = revisions[i]?.create ?? 0;
      const version = revisions[i]?.version ?? 0;
      const valueAt =
        pos + RECORD_HEADER_BYTES + extraBytes(expiresAt !== undefined, version !== 0) + op.key.length;
      const rawKind = asBatch ? kind | BATCH_MEMBER : kind;
      pos = encodeRecord(bytes, pos, seq, rawKind, op.key, value, expiresAt, create, version);
      const overlayKey = names?.[i] ?? asBuffer(op.key).toString('latin1');
      const exists = kind === Kind.PUT;
      const mod = exists ? seq : 0;
      const entry = this.overlay.get(overlayKey);
      if (entry === undefined)
        this.overlay.set(overlayKey, { exists, expiresAt, mod, create, version, refs: 1 });
      else {
        entry.exists = exists;
        entry.expiresAt = expiresAt;
        entry.mod = mod;
        entry.create = create;
        entry.version = version;
        entry.refs++;
      }
      // The key is read back from `bytes`, so the caller may reuse its buffer at once. This view
      // keeps the whole write's buffer alive while queued; publish's key-directory insert copies
      // it, so nothing keeps the buffer afterwards but the value cache's own copy.
      const key = bytes.subarray(valueAt - op.key.length, valueAt);
      pending.push({
        key,
        kind,
        valueAt,
        valueLen: value?.length ?? 0,
        overlayKey,
        expiresAt,
        create,
        version,
      });
    }
    assert(pos === size, 'encoded size mismatch');
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes, seq, ops: pending, resolve, reject });
      this.kick();
    });
  }

  /** revisionLatest is a key's revision counting queued writes; undefined when absent or expired. */
  private revisionLatest(key: Uint8Array): Revision | undefined {
    if (this.overlay.size > 0) {
      const pending = this.overlay.get(asBuffer(key).toString('latin1'));
      if (pending !== undefined) {
        if (!pending.exists) return undefined;
        if (pending.expiresAt !== undefined && isExpired(pending.expiresAt, this.clock.nowMs()))
          return undefined;
        return { mod: pending.mod, create: pending.create, version: pending.version };
      }
    }
    if (this.expired(key)) return undefined;
    const loc = this.keyDir.get(key);
    return loc === undefined ? undefined : revisionOf(loc);
  }

  private enqueueBarrier(barrier: Barrier['barrier']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ barrier, resolve, reject });
      this.kick();
    });
  }

  /** @internal rotate seals the active data file and starts a new one, in write order. */
  rotate(): Promise<void> {
    return this.enqueueBarrier('rotate');
  }

  /**
   * kick schedules the flush loop for the check phase of this event-loop turn, so that every
   * write issued during the turn (and the microtasks it spawns) joins one group commit.
   */
  private kick(): void {
    if (this.flushing !== undefined) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flushLoop())
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.kick();
      });
  }

  /** flushLoop commits what is queued now; writes queued meanwhile wait for the next turn. */
  private async flushLoop(): Promise<void> {
    let items = this.queue.length;
    while (items > 0 && this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes < GROUP_BYTES_MAX)) {
        const item = this.queue[n] as QueueItem;
        if ('barrier' in item) {
          if (n === 0) n = 1;
          break;
        }
        bytes += item.bytes.length;
        n++;
      }
      const group = this.queue.splice(0, n);
      items -= n;
      const first = group[0] as QueueItem;
      if ('barrier' in first) await this.runBarrier(first);
      else await this.commitGroup(group as PendingWrite[]);
    }
  }

  private async runBarrier(item: Barrier): Promise<void> {
    try {
      if (this.failed !== undefined) throw this.failed;
      if (item.barrier === 'rotate') await this.rotateNow();
      else if (this.dirty) {
        this.dirty = false;
        await this.active.file.datasync();
        this.fsyncs++;
      }
      item.resolve();
    } catch (err) {
      item.reject(
        err instanceof StoreFailedError ? err : new IoError(`${item.barrier} failed: ${String(err)}`, err),
      );
    }
  }

  /** commitGroup appends a group of writes, makes them durable, then publishes them. */
  private async commitGroup(group: PendingWrite[]): Promise<void> {
    if (this.failed !== undefined) {
      this.rejectAll(group, this.failed);
      return;
    }
    // A store of an older format is raised to FORMAT_REVISION before its first write by this
    // build (every PUT carries a revision field), so that an older build refuses the store
    // rather than "repair" records it cannot read.
    if (this.meta.format < FORMAT_REVISION) {
      try {
        await this.upgradeFormat(FORMAT_REVISION);
      } catch (err) {
        this.rejectAll(group, new IoError(`could not raise the store format: ${String(err)}`, err));
        return;
      }
    }
    // Writes that do not fit the active file go to a fresh one; a group never straddles files
    // except by sealing the first file durably before the rest is written.
    let from = 0;
    while (from < group.length) {
      const start = this.active.size;
      let end = start;
      let to = from;
      while (to < group.length) {
        const len = (group[to] as PendingWrite).bytes.length;
        if (end + len > this.dataFileBytes && end > DATA_HEADER_BYTES) break;
        end += len;
        to++;
      }
      if (to === from) {
        if (!(await this.tryRotate(group.slice(from)))) return;
        continue;
      }
      const part = group.slice(from, to);
      const ok = await this.appendDurably(part, start, end);
      if (!ok) {
        this.rejectAll(
          group.slice(to),
          this.failed ?? new IoError('an earlier write in the group failed', undefined),
        );
        return;
      }
      this.publish(part, start);
      from = to;
      if (from < group.length && !(await this.tryRotate(group.slice(from)))) return;
    }
    this.groupCommits++;
    this.maybeCompact();
  }

  private async appendDurably(part: PendingWrite[], start: number, end: number): Promise<boolean> {
    const data = this.active;
    const bytes =
      part.length === 1
        ? (part[0] as PendingWrite).bytes
        : Buffer.concat(
            part.map((w) => w.bytes),
            end - start,
          );
    try {
      // Extend the file with zeros when the append passes the allocated end (best effort: see
      // preallocate).
      let zeros: Buffer | undefined;
      if (end > data.allocated && this.preallocateOff !== data.id) {
        const target = Math.max(end, Math.min(data.allocated + PREALLOCATE_BYTES, this.dataFileBytes));
        zeros = target > end ? ZEROS.subarray(0, target - end) : undefined;
      }
      if (this.syncInline) {
        data.file.writeSync(bytes, start);
        data.size = end;
        data.allocated = Math.max(data.allocated, end);
        if (zeros !== undefined) this.preallocateSync(data, zeros, end);
        if (this.durability === 'always') data.file.datasyncSync();
      } else {
        await data.file.write(bytes, start);
        data.size = end;
        data.allocated = Math.max(data.allocated, end);
        if (zeros !== undefined) await this.preallocate(data, zeros, end);
        if (this.durability === 'always') await data.file.datasync();
      }
      if (this.durability === 'always') this.fsyncs++;
      else this.dirty = true;
      return true;
    } catch (err) {
      // Undo the partial append so that the file ends at its last acknowledged record again;
      // if even that fails the write path cannot be trusted until recovery runs.
      try {
        if (this.syncInline) {
          data.file.truncateSync(start);
          data.file.datasyncSync();
        } else {
          await data.file.truncate(start);
          await data.file.datasync();
        }
        data.size = start;
        data.allocated = start;
        this.rejectAll(part, new IoError(`write failed: ${String((err as Error).message ?? err)}`, err));
      } catch (repairErr) {
        this.failed = new StoreFailedError(repairErr);
        this.rejectAll(part, this.failed);
        for (const item of this.queue.splice(0)) item.reject(this.failed);
      }
      this.options.onEvent?.({
        type: 'write-failed',
        detail: { error: String(err), failed: this.failed !== undefined },
      });
      return false;
    }
  }

  /**
   * preallocateSync writes `zeros` past the data at `end`. It is an optimization (an fdatasync
   * that need not commit a new file size is ~4x cheaper), so a failure (a disk with less than
   * PREALLOCATE_BYTES free) must not fail the write: the zeros are cut off again and the file
   * grows append by append until it is sealed.
   */
  private preallocateSync(data: DataFile, zeros: Buffer, end: number): void {
    try {
      data.file.writeSync(zeros, end);
      data.allocated = Math.max(data.allocated, end + zeros.length);
    } catch {
      this.preallocateOff = data.id;
      try {
        data.file.truncateSync(end);
      } catch {
        // Some zeros may remain past `end`: free space to recovery, cut at sealing.
        data.allocated = Math.max(data.allocated, end + zeros.length);
      }
    }
  }

  /** preallocate is preallocateSync through the thread pool. */
  private async preallocate(data: DataFile, zeros: Buffer, end: number): Promise<void> {
    try {
      await data.file.write(zeros, end);
      data.allocated = Math.max(data.allocated, end + zeros.length);
    } catch {
      this.preallocateOff = data.id;
      try {
        await data.file.truncate(end);
      } catch {
        data.allocated = Math.max(data.allocated, end + zeros.length);
      }
    }
  }

  private async tryRotate(rest: PendingWrite[]): Promise<boolean> {
    try {
      await this.rotateNow();
      return true;
    } catch (err) {
      this.rejectAll(rest, new IoError(`could not start a new data file: ${String(err)}`, err));
      return false;
    }
  }

  private async rotateNow(): Promise<void> {
    const old = this.active;
    if (old.size === DATA_HEADER_BYTES) return; // nothing to seal
    await this.trimActive();
    if (this.dirty) {
      await old.file.datasync();
      this.fsyncs++;
      this.dirty = false;
    }
    const next = await createDataFile(this.fs, this.dir, this.files.allocate());
    this.files.add(next);
    this.active = next;
  }

  /** trimActive cuts the active file's preallocated zeros off, for sealing or closing. */
  private async trimActive(): Promise<void> {
    const data = this.active;
    if (data.allocated === data.size) return;
    await data.file.truncate(data.size);
    data.allocated = data.size;
    this.dirty = true;
  }

  /** publish makes a durable part visible: key directory, live-byte accounting, promises. */
  private publish(part: PendingWrite[], start: number): void {
    let at = start;
    const fileId = this.active.id;
    for (const w of part) {
      for (const op of w.ops) {
        // The expiry index changes together with the key directory, in this synchronous step:
        // readValue relies on it to know whether the current record has an expiry field.
        const hadExpiry = this.expiries.size > 0 && this.expiries.has(op.overlayKey);
        if (op.kind === Kind.PUT) {
          const expires = op.expiresAt !== undefined;
          if (this.keyDir.set(op.key, fileId, at + op.valueAt, op.valueLen, w.seq, op.create, op.version)) {
            this.dropPrevious(op.key.length, hadExpiry);
          }
          if (expires || hadExpiry) this.expiries.set(op.overlayKey, op.expiresAt);
          this.files.addLive(fileId, recordBytes(op.key.length, op.valueLen, expires, op.version !== 0));
          this.cache.set(
            op.overlayKey,
            w.bytes.subarray(op.valueAt, op.valueAt + op.valueLen),
            w.seq,
            op.create,
            op.version,
          );
        } else {
          if (this.keyDir.remove(op.key)) this.dropPrevious(op.key.length, hadExpiry);
          if (hadExpiry) this.expiries.delete(op.overlayKey);
          this.cache.delete(op.overlayKey);
        }
        this.releaseOverlay(op.overlayKey);
      }
      at += w.bytes.length;
      this.writes++;
      this.publishes++;
      w.resolve();
    }
  }

  private dropPrevious(keyLen: number, expires: boolean): void {
    const prev = this.keyDir.previous;
    this.files.removeLive(prev.fileId, recordBytes(keyLen, prev.valueLen, expires, prev.version !== 0));
  }

  private releaseOverlay(overlayKey: string): void {
    const entry = this.overlay.get(overlayKey);
    assert(entry !== undefined, 'overlay entry missing');
    if (--entry.refs === 0) this.overlay.delete(overlayKey);
  }

  private rejectAll(writes: PendingWrite[], err: unknown): void {
    for (const w of writes) {
      for (const op of w.ops) this.releaseOverlay(op.overlayKey);
      w.reject(err);
    }
  }

  // ---- active expiry ----

  /**
   * expireCycle deletes up to EXPIRY_CYCLE_KEYS_MAX expired keys with one batch of tombstones,
   * queued like any write (Redis propagates a DEL for the same reason: a tombstone shadows every
   * older version of the key, in any file, so nothing expired can come back at recovery).
   * Keys with queued writes are left to those writes, which are ordered before any tombstone
   * queued now and would otherwise be overwritten by it.
   */
  /** startExpiring starts the active expiry cycle, once the store holds (or gets) an expiry. */
  private startExpiring(): void {
    this.expiryTimer ??= this.clock.every(EXPIRY_CYCLE_INTERVAL_MS, () => this.expireCycle());
  }

  private expireCycle(): void {
    if (
      this.expiring !== undefined ||
      this.closing ||
      this.failed !== undefined ||
      this.expiries.size === 0
    ) {
      return;
    }
    const due = this.expiries.takeDue(this.clock.nowMs(), EXPIRY_CYCLE_KEYS_MAX);
    if (due.length === 0) return;
    const ops: BatchOp[] = [];
    const taken: ExpiryEntry[] = [];
    for (const entry of due) {
      if (this.overlay.has(entry.name)) {
        this.expiries.requeue(entry);
        continue;
      }
      ops.push({ type: 'delete', key: Buffer.from(entry.name, 'latin1') });
      taken.push(entry);
    }
    if (ops.length === 0) return;
    const again = due.length === EXPIRY_CYCLE_KEYS_MAX;
    this.expiring = this.enqueueWrite(ops, ops.length > 1).then(
      () => {
        for (const entry of taken) this.expiries.done(entry);
        this.expiredKeys += taken.length;
        this.expiring = undefined;
        if (again) this.expireCycle();
      },
      (err: unknown) => {
        for (const entry of taken) this.expiries.requeue(entry);
        this.expiring = undefined;
        this.options.onEvent?.({ type: 'write-failed', detail: { error: String(err), expiry: true } });
      },
    );
  }

  // ---- compaction ----

  /**
   * maybeCompact starts a background compaction when dead bytes pass the trigger. A background
   * run that fails is reported (`compaction-failed`) and never rejects into the void: the store
   * keeps serving, and the next attempt waits COMPACTION_RETRY_MS_MIN, doubling after each
   * failure up to COMPACTION_RETRY_MS_MAX (a full disk does not free itself at once).
   */
  private maybeCompact(): void {
    if (this.options.autoCompact === false || this.compacting !== undefined || this.closing) return;
    if (this.readOnly) return;
    if (this.failed !== undefined) return;
    if (this.compactionRetryAtMs !== undefined && this.clock.nowMs() < this.compactionRetryAtMs) return;
    const total = this.files.totalBytes();
    const dead = total - this.files.liveBytes();
    const ratio = this.options.compactionDeadRatio ?? DEFAULT_COMPACTION_DEAD_RATIO;
    const minDead = this.options.compactionMinDeadBytes ?? DEFAULT_COMPACTION_MIN_DEAD_BYTES;
    if (dead < minDead || dead < ratio * total) return;
    const run = this.runCompaction();
    this.compacting = run;
    run.catch((err: unknown) => {
      // A broken invariant is a bug: loud (crash on programmer error). I/O is reported by
      // runCompaction's event; here only the back-off.
      if (err instanceof AssertionError) throw err;
      this.compactionBackoffMs = Math.min(
        COMPACTION_RETRY_MS_MAX,
        Math.max(COMPACTION_RETRY_MS_MIN, this.compactionBackoffMs * 2),
      );
      this.compactionRetryAtMs = this.clock.nowMs() + this.compactionBackoffMs;
    });
  }

  private async runCompaction(): Promise<void> {
    const onEvent = this.options.onEvent;
    try {
      onEvent?.({ type: 'compaction-start', detail: { diskBytes: this.files.totalBytes() } });
      const result = await compact(this);
      if (debugChecksOn(this.options)) checkIndexes(this.keyDir, this.expiries, 'compaction');
      this.compactionBackoffMs = 0;
      this.compactionRetryAtMs = undefined;
      if (result !== undefined) {
        this.compactions++;
        onEvent?.({ type: 'compaction-done', detail: { ...result } });
      }
    } catch (err) {
      onEvent?.({ type: 'compaction-failed', detail: { error: String(err) } });
      throw err;
    } finally {
      this.compacting = undefined;
    }
  }

  /** @internal sequence number floor for the metadata: every seq used so far is below it. */
  seqFloor(): number {
    return this.nextSeq - 1;
  }

  /** @internal commitMeta writes new engine fields to both metadata copies (others are kept). */
  commitMeta(fields: Partial<CaskMetaFields>): Promise<void> {
    return this.updateMeta((meta) => ({
      ...meta,
      generation: meta.generation + 1,
      fields: { ...meta.fields, ...fields },
    }));
  }

  /** upgradeFormat raises the metadata's format (compaction may be writing it too: serialized). */
  private upgradeFormat(format: number): Promise<void> {
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

  /** @internal */
  metaFields(): CaskMetaFields {
    return readCaskFields(this.meta);
  }

  private checkOpen(): void {
    if (this.closing) throw new ClosedError();
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) throw new ReadOnlyError(`the store in ${this.dir} was opened read-only`);
    if (this.failed !== undefined) throw this.failed;
  }
}

/**
 * checkIndexes is the debug check (CaskOptions.debugChecks): the key directory and the expiry
 * index verified whole. A failure is a bug in this engine (both are rebuilt from the files at
 * every open), so it is an assertion: loud, never a silently wrong answer.
 */
function checkIndexes(keyDir: KeyDir, expiries: ExpiryIndex, after: string): void {
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

/** hexPrefix names a key in an error message: its first bytes, in hex. */
function hexPrefix(key: Uint8Array): string {
  return asBuffer(key).toString('hex').slice(0, 64);
}

/**
 * NO_DATA_FILE: the place holder `active` of a read-only store without data files. Nothing is
 * ever appended in read-only mode, so any use of its file is a bug.
 */
const NO_DATA_FILE: DataFile = {
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
};

/** revisionOf is the revision a key directory location (or a cache entry copied from one) records. */
function revisionOf(loc: Pick<Location, 'seq' | 'create' | 'version'>): Revision {
  return loc.version === 0
    ? legacyRevision(loc.seq)
    : { mod: loc.seq, create: loc.create, version: loc.version };
}

/**
 * lastOpPerKey drops operations that a later operation on the same key in the same batch
 * overrides. Members of a batch share one sequence number, so on disk "later in the batch"
 * could not otherwise be told apart from "earlier" once recovery reads them back.
 */
function lastOpPerKey(ops: readonly BatchOp[]): { ops: readonly BatchOp[]; names: readonly string[] } {
  const names = ops.map((op) => asBuffer(op.key).toString('latin1'));
  if (ops.length === 1) return { ops, names };
  const seen = new Set<string>();
  const kept: BatchOp[] = [];
  const keptNames: string[] = [];
  for (let i = ops.length - 1; i >= 0; i--) {
    const name = names[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    kept.push(ops[i] as BatchOp);
    keptNames.push(name);
  }
  return kept.length === ops.length ? { ops, names } : { ops: kept.reverse(), names: keptNames.reverse() };
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
}

export interface SyncedEnd {
  readonly file: number;
  readonly bytes: number;
}

/**
 * recoverStore runs recovery as the metadata directs it (retired files, the sequence floor, how
 * far the active file was durable at the last clean close): open, read-only open and check.
 */
export function recoverStore(
  fs: FileSystem,
  dir: string,
  meta: Meta,
  options: Pick<RecoverOptions, 'repair' | 'dataFileBytes' | 'trustHints'>,
): Promise<Recovered> {
  const { retired, seqFloor, syncedEnd } = readCaskFields(meta);
  return recover({ fs, dir, retired, seqFloor, syncedEnd, ...options });
}

/** readCaskFields reads the cask engine's fields of the metadata, ignoring malformed ones. */
function readCaskFields(meta: Meta): CaskMetaFields {
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
  return { retired, seqFloor, syncedEnd };
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
      await tmp.write(encodeDataHeader(FORMAT_VERSION, id), 0);
      await tmp.datasync();
    } finally {
      await tmp.close();
    }
    await fs.rename(tmpPath, filePath);
    await fs.syncDir(dir);
    file = await fs.open(filePath, 'readwrite');
    return { id, file, size: DATA_HEADER_BYTES, allocated: DATA_HEADER_BYTES, liveBytes: 0, liveKeys: 0 };
  } catch (err) {
    await file?.close().catch(() => {});
    await fs.unlink(tmpPath).catch(() => {});
    await fs.unlink(filePath).catch(() => {});
    throw err;
  }
}
