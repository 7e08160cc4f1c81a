// CaskEngine: Cairn's Bitcask-style storage engine (docs/format.md, docs/ARCHITECTURE.md), the
// façade that implements Engine over three parts:
//
// - the store state (store-state.ts): key directory, data files, expiry index, value cache,
//   metadata and the last commit timestamp, and the rules that keep them consistent;
// - the group commit (group-commit.ts): the write queue, one append and one fdatasync per group,
//   writes applied to the store state in order once durable, failure repair;
// - compaction (compactor.ts), which sees the store only through a CompactionHost built here.
//
// Writes arrive stamped by the write pipeline (src/txn/write-pipeline.ts), which keeps every
// pending write and runs the one expiry cycle; this engine checks the stamps and the limits,
// encodes the records (their seq is the commit timestamp) and queues them. It derives nothing
// and keeps no overlay of queued writes: reads show the durable state.
//
// Reads look the key up in the in-memory key directory and read the one record with a
// synchronous pread, verifying its CRC: from the page cache that costs a few microseconds,
// where a trip through libuv's thread pool costs tens. The cost: a read that misses the page
// cache blocks the event loop for one disk read (lmdb-js makes the same choice with mmap).
//
// Expiry: keys with a TTL are listed in an ExpiryIndex beside the key directory (the key
// directory itself stays 36 bytes per key); reads treat an expired key as absent, and
// `dueExpiries` lists the ones the pipeline's cycle should delete with ordinary tombstones.
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"): keys, values and scan bounds passed in
// are borrowed. A write copies them into its encoded records in the call (nothing is awaited
// first), and everything queued refers to those records: the key directory gets views into
// them once durable and copies them (key-dir.ts), the value cache copies the value. Scans copy
// their bounds at the call. Values handed out are fresh reads or copies of the cache's; keys
// handed out are the key directory's copies.
//
// Revisions (engine.ts): a write's commit timestamp is its sequence number, so the key
// directory's seq is a key's mod timestamp; its create timestamp and version count live in the
// key directory slot beside it and in the record.
import { type Clock, systemClock } from '../../io/clock.js';
import { type FileSystem, type HeldLock, mkdirDurable } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { AssertionError, assert } from '../../stdx/assert.js';
import { compareBytes, copyBytes } from '../../stdx/bytes.js';
import { type EventLoop, nodeEventLoop } from '../../stdx/event-loop.js';
import { DirLock } from '../dir-lock.js';
import {
  type BackupInfo,
  type BorrowedValueSink,
  type Durability,
  type Engine,
  type EngineStats,
  type Entry,
  READ_INTO,
  type ReadInto,
  type Revision,
  type ScanRange,
  type Stored,
  type WriteOp,
} from '../engine.js';
import { DEFAULT_DURABILITY, DEFAULT_SYNC_INTERVAL_MS, shown } from '../engine-options.js';
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  openFailure,
  ReadOnlyError,
  WrongTypeError,
} from '../errors.js';
import { type ExpiryIndex, isExpired } from '../expiry-index.js';
import {
  checkCompatible,
  loadOrCreateMeta,
  lostMetaAdvice,
  META_FILES,
  type Meta,
  readMeta,
  writeMeta,
} from '../meta.js';
import { checkKeyVersion, checkTs } from '../revision.js';
import { checkBatch, checkDataDir, checkKey, ownScanRange } from '../validate.js';
import { valueTypeName } from '../value-type.js';
import { BackupPins, backupInto, type CaskBackupSource, cutBackup } from './backup.js';
import {
  type CaskOptions,
  DEFAULT_CACHE_BYTES,
  DEFAULT_COMPACTION_DEAD_RATIO,
  DEFAULT_COMPACTION_MIN_DEAD_BYTES,
  DEFAULT_COMPACTION_STEP_MS,
  DEFAULT_DATA_FILE_BYTES,
  debugChecksOn,
  guardedListener,
  validateCaskOptions,
} from './cask-options.js';
import { planCompaction } from './compaction-plan.js';
import { type CompactionHost, compact } from './compactor.js';
import type { DataFile, DataFileSet } from './data-file-set.js';
import { DATA_SUFFIX, HINT_SUFFIX, hintPath, parseFileId } from './file-names.js';
import { GroupCommit } from './group-commit.js';
import { decodeHint, openHintCursor } from './hint.js';
import type { KeyDir, Location } from './key-dir.js';
import { SEQ_MAX } from './record.js';
import {
  type Recovered,
  type RecoverOptions,
  type RecoveryReport,
  recover,
  scanTombstones,
} from './recovery.js';
import { CLOSE_HINT_MIN_BYTES, type SealHintHost, writeSealHint } from './seal-hint.js';
import {
  type CaskMetaFields,
  CaskStore,
  checkIndexes,
  createDataFile,
  hexPrefix,
  NO_DATA_FILE,
  readCaskFields,
  revisionOf,
  type SyncedEnd,
  type Tombstone,
} from './store-state.js';

export const ENGINE_NAME = 'cask';

/** NO_VALUE: the value of a keys-only scan's entries (ScanRange.keysOnly). */
const NO_VALUE = new Uint8Array(0);
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
/**
 * COPY_MARGIN: a compaction keeps up with the writes by copying, for each byte written, this
 * many times the live bytes that reclaiming it takes. Inputs at the trigger ratio r hold (1 - r)
 * live bytes per r dead, and an overwrite makes about its own size dead: (1 - r) / r copied per
 * byte written; the margin pays for the writes that compaction's own reclaiming misses (dead
 * records in files not yet worth compacting). Used by the pacer (stdx/pacer.ts).
 */
const COPY_MARGIN = 1.5;
/**
 * COMPACTION_BEHIND_MARGIN: dead bytes this far past the trigger ratio mean the writes outran
 * compaction (the pacer's estimate of the work per written byte fell short): while writes come,
 * every step takes the whole compactionStepMs. A safety net: a burst of writes that ended leaves
 * a store past it, with nothing growing, and is paid at the loop's share.
 */
const COMPACTION_BEHIND_MARGIN = 0.25;

export interface CaskStats extends EngineStats {
  readonly dataFiles: number;
  readonly deadBytes: number;
  readonly groupCommits: number;
  readonly recovery: RecoveryReport;
}

export async function openCask(dir: string, options: CaskOptions = {}): Promise<CaskEngine> {
  return CaskEngine.open(dir, options);
}

/** LiveRead: what CaskEngine.readLive found besides the value. */
interface LiveRead {
  /** cached: the value is a view of the value cache (copy it before it leaves the engine). */
  cached: boolean;
  expiresAt: number | undefined;
  valueType: number;
  seq: number;
  create: number;
  version: number;
}

export class CaskEngine implements Engine {
  readonly name = ENGINE_NAME;
  /** @internal store: the state reads, the group commit and compaction share (tests look in). */
  readonly store: CaskStore;
  private readonly commit: GroupCommit;
  private readonly clock: Clock;
  /** loop: the time and the turns of the engine's background work (CaskOptions.loop). */
  private readonly loop: EventLoop;
  private readonly durability: Durability;
  /** closing: close has begun; every call but close fails, and compaction stops. */
  private closing = false;
  /** live: what the last readLive found besides the value (one reused object, no allocation per read). */
  private readonly live: LiveRead = {
    cached: false,
    expiresAt: undefined,
    valueType: 0,
    seq: 0,
    create: 0,
    version: 0,
  };
  private compactions = 0;
  private compacting: Promise<void> | undefined;
  /** compactionRetryAtMs: after a failed background compaction, no new one before this time. */
  private compactionRetryAtMs: number | undefined;
  /** compactionBackoffMs: the wait after the last failure (0: the last run succeeded). */
  private compactionBackoffMs = 0;
  private closed: Promise<void> | undefined;
  /** backupPins: files listed by backups still copying them; compaction deletes none meanwhile. */
  private readonly backupPins = new BackupPins();
  /** hinting: the tail of the chain that writes sealed files' hint files, one at a time. */
  private hinting: Promise<void> = Promise.resolve();
  /**
   * compactionEpoch: raised when a compaction starts and when it ends (odd while one runs). A
   * sealed file's hint is built from a key-directory walk that no compaction may overlap
   * (compaction moves keys out of the file, and back when it fails): seal-hint.ts.
   */
  private compactionEpoch = 0;
  /** hintsWritten: sealed files given a hint file since open (tests and stats look). */
  hintsWritten = 0;

  private constructor(
    readonly dir: string,
    private readonly options: CaskOptions,
    private readonly lock: HeldLock,
    recovered: Recovered,
    meta: Meta,
    active: DataFile,
    readonly recovery: RecoveryReport,
    /** readOnly: opened with `readOnly` (CaskEngine.openReadOnly): every write is refused. */
    private readonly readOnly = false,
  ) {
    this.clock = options.clock ?? systemClock;
    this.loop = options.loop ?? nodeEventLoop;
    this.durability = options.durability ?? DEFAULT_DURABILITY;
    this.store = new CaskStore({
      fs: options.fs ?? nodeFileSystem,
      dir,
      clock: this.clock,
      dataFileBytes: options.dataFileBytes ?? DEFAULT_DATA_FILE_BYTES,
      cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES,
      keyDir: recovered.keyDir,
      expiries: recovered.expiries,
      files: recovered.files,
      meta,
      active,
      lastTs: recovered.report.maxSeq,
      tombstones: recovered.tombstones,
      debugChecks: debugChecksOn(options),
    });
    this.commit = new GroupCommit(this.store, {
      durability: this.durability,
      syncInline: options.syncOnEventLoop ?? false,
      afterCall: options.commitAfterCall ?? false,
      // A read-only store writes nothing, so it has nothing to sync.
      syncIntervalMs: readOnly ? undefined : (options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS),
      clock: this.clock,
      loop: this.loop,
      onEvent: options.onEvent,
      afterGroup: () => this.maybeCompact(),
      onSealed: (id) => this.queueSealHint(id),
    });
    // A small store's point index is complete already (the store built it); a larger store's is
    // built in the background, after the open (reads use the B+tree until it is complete).
    if (!this.store.pointIndexComplete) this.indexing = this.buildPointIndex();
  }

  /** indexing: the background build of the point index after the open (settled once complete). */
  private indexing: Promise<void> = Promise.resolve();

  /** buildPointIndex adds a chunk of keys to the point index per turn until it holds every key. */
  private async buildPointIndex(): Promise<void> {
    // Not a chunk in this turn: it would run inside the open (this is the engine's constructor),
    // and the first chunk allocates the index's tables: about 50 ms at 1M keys, which the open
    // had been paying although a65605a meant to take it out.
    do await this.loop.nextTurn();
    while (!this.closing && !this.store.buildPointIndex());
  }

  /** @internal pointIndexBuilt resolves once the point index holds every key (benchmarks, tests). */
  pointIndexBuilt(): Promise<void> {
    return this.indexing;
  }

  /** @internal keyDir: the key directory (debug checks in tests look at it). */
  get keyDir(): KeyDir {
    return this.store.keyDir;
  }

  /** @internal expiries: the expiry index (tests look at it). */
  get expiries(): ExpiryIndex {
    return this.store.expiries;
  }

  /** @internal files: the open data files (tests look at them). */
  get files(): DataFileSet {
    return this.store.files;
  }

  /** @internal active: the data file appends go to (tests look at its size). */
  get active(): DataFile {
    return this.store.active;
  }

  /** @internal readValue: see CaskStore.readValue (tests compare it with the cache). */
  readValue(key: Uint8Array, loc: Location): Buffer {
    return this.store.readValue(key, loc);
  }

  /** @internal metaFields: the engine's fields of the metadata now (tests check the floor). */
  metaFields(): CaskMetaFields {
    return this.store.metaFields();
  }

  static async open(dir: string, given: CaskOptions = {}): Promise<CaskEngine> {
    validateCaskOptions(given);
    // Every event goes through the guard: a listener's throw must not change what a step does.
    const options =
      given.onEvent === undefined ? given : { ...given, onEvent: guardedListener(given.onEvent) };
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
   * read), no compaction; every write fails with ReadOnlyError.
   */
  private static async openReadOnly(dir: string, options: CaskOptions): Promise<CaskEngine> {
    const fs = options.fs ?? nodeFileSystem;
    await checkDataDir(fs, dir);
    if ((await fs.kind(dir)) === undefined)
      throw new InvalidArgumentError(`no store at ${dir} (it does not exist)`);
    const lock = await lockDir(fs, dir, true);
    let files: DataFileSet | undefined;
    try {
      const { meta } = await readMeta(fs, dir);
      if (meta === undefined)
        throw new CorruptionError(`${dir} holds no valid Cairn metadata; ${lostMetaAdvice(dir)}`);
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
    lock: HeldLock,
    recovered: Recovered,
    meta: Meta,
    active: DataFile,
    readOnly: boolean,
  ): CaskEngine {
    if (debugChecksOn(options)) checkIndexes(recovered.keyDir, recovered.expiries, 'recovery');
    const engine = new CaskEngine(dir, options, lock, recovered, meta, active, recovered.report, readOnly);
    options.onEvent?.({ type: 'recovered', detail: { ...recovered.report } });
    return engine;
  }

  private static async openWritable(dir: string, options: CaskOptions): Promise<CaskEngine> {
    const fs = options.fs ?? nodeFileSystem;
    const clock = options.clock ?? systemClock;
    await checkDataDir(fs, dir);
    await mkdirDurable(fs, dir);
    const lock = await lockDir(fs, dir, false);
    let opened: DataFileSet | undefined;
    try {
      const names = await fs.readdir(dir);
      // "Empty" means no store files: a directory may hold unrelated files (kvs runs in the
      // current directory), but data or hint files without metadata must not be started over,
      // nor an lmdb store's `lmdb/` (docs/format.md: its data lives there) whose metadata is gone.
      const isEmpty = !holdsStoreFiles(names);
      const loaded = await loadOrCreateMeta(fs, dir, ENGINE_NAME, clock.nowMs(), isEmpty);
      const problems = loaded.problems;
      let meta = loaded.meta;
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
      meta = await listDataFiles(fs, dir, meta, recovered);
      const engine = CaskEngine.recovered(dir, options, lock, recovered, meta, active, false);
      // Sealed files that were scanned (older stores, a crash before their hint was written)
      // get their hint files now, so the next open reads them fast.
      for (const id of recovered.hintable) engine.queueSealHint(id);
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
    const value = this.readLive(key);
    if (value === undefined) return undefined;
    // A typed value (a hash) is never handed out as a string: one number compared, no allocation.
    if (this.live.valueType !== 0) throw wrongType(this.live.valueType);
    return this.live.cached ? copyBytes(value) : value;
  }

  /**
   * readLive is every point read's lookup (getSync, getStoredSync, readStringInto): the live
   * value of `key`, from the value cache (a view of it, valid until the cache next changes) or
   * read and verified (the call's own buffer, which the cache then copies); undefined when the
   * key has none or it expired. What else the read found is left in `live`.
   */
  private readLive(key: Uint8Array): Buffer | undefined {
    this.checkOpen();
    checkKey(key);
    const store = this.store;
    const live = this.live;
    const expiresAt = store.expiryOf(key);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    live.expiresAt = expiresAt;
    const caching = store.cache.enabled;
    if (caching) {
      const cached = store.cache.lookup(key);
      if (cached !== undefined) {
        live.cached = true;
        live.valueType = cached.valueType;
        live.seq = cached.seq;
        live.create = cached.create;
        live.version = cached.version;
        return cached.value;
      }
    }
    const value = store.readKey(key, expiresAt !== undefined);
    if (value === undefined) return undefined;
    live.cached = false;
    live.valueType = store.readType;
    live.seq = store.readSeq;
    live.create = store.readCreate;
    live.version = store.readVersion;
    if (caching) store.cache.set(key, value, live.seq, live.create, live.version, live.valueType);
    return value;
  }

  prefetch(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void {
    if (!this.closing) this.store.prefetchRanges(bytes, starts, ends, count);
  }

  async has(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    return !this.store.absent(key) && this.store.keyDir.has(key) && !this.store.expired(key);
  }

  async getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.getStoredSync(key);
  }

  getStoredSync(key: Uint8Array): Stored | undefined {
    // The server reads through getStoredSync (the write pipeline). The value and the revision
    // come from one synchronous lookup (one cache entry or one record), so they belong together.
    const value = this.readLive(key);
    if (value === undefined) return undefined;
    const live = this.live;
    return {
      value: live.cached ? copyBytes(value) : value,
      expiresAt: live.expiresAt,
      revision: revisionOf(live),
      valueType: live.valueType,
    };
  }

  readStringInto(key: Uint8Array, sink: BorrowedValueSink): ReadInto {
    // As getStoredSync, without the copy of the value, the Stored and the revision it makes.
    const value = this.readLive(key);
    if (value === undefined) return READ_INTO.ABSENT;
    if (this.live.valueType !== 0) return READ_INTO.OTHER;
    sink.bulkBorrowed(value);
    return READ_INTO.WRITTEN;
  }

  revisionSync(key: Uint8Array): Revision | undefined {
    this.checkOpen();
    checkKey(key);
    if (this.store.expired(key)) return undefined;
    if (this.store.cache.enabled) {
      const cached = this.store.cache.lookup(key);
      if (cached !== undefined) return revisionOf(cached);
    }
    if (this.store.absent(key)) return undefined;
    const loc = this.store.keyDir.get(key);
    return loc === undefined ? undefined : revisionOf(loc);
  }

  lastTs(): number {
    return this.store.lastTs;
  }

  async expiry(key: Uint8Array): Promise<number | null | undefined> {
    this.checkOpen();
    checkKey(key);
    if (this.store.absent(key) || !this.store.keyDir.has(key)) return undefined;
    const expiresAt = this.store.expiryOf(key);
    if (expiresAt === undefined) return null;
    return isExpired(expiresAt, this.clock.nowMs()) ? undefined : expiresAt;
  }

  scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    // The bounds are borrowed and the generator's body runs only at the first next(): copy them
    // now, while the caller's buffers still hold them.
    return this.scanFrom(ownScanRange(range));
  }

  private async *scanFrom(range: ScanRange): AsyncIterableIterator<Entry> {
    this.checkOpen();
    const { start, end, reverse = false, keysOnly = false } = range;
    const limit = range.limit;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
      // As the lmdb engine and transactions: 1.5 or '2' is a caller's bug, not a limit.
      throw new InvalidArgumentError(`scan limit must be a non-negative integer, got ${shown(limit)}`);
    }
    let remaining = limit ?? Number.POSITIVE_INFINITY;
    // Bounds are not keys: one longer than KEY_BYTES_MAX orders among keys like any other (a
    // listing may resume after a long key, or ask for a range of long keys), as on lmdb.
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
      const version = this.store.publishes;
      const nowMs = this.clock.nowMs();
      let last: Uint8Array | undefined;
      let visits = 0;
      let cut = false;
      // failure: a value that could not be read (a damaged record). The entries before it in
      // this chunk are yielded first: the scan stops at the damaged key, as documented, instead
      // of dropping up to a chunk of good entries ahead of it (a forward scan of a store with a
      // damaged 70th key yielded nothing).
      let failure: unknown;
      this.store.keyDir.walk(cursor, exclusive, reverse, (key, loc) => {
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
        const expiresAt = this.store.expiryOf(key);
        if (expiresAt === undefined || !isExpired(expiresAt, nowMs)) {
          if (keysOnly) chunk.push([key, NO_VALUE]);
          else {
            let value: Uint8Array;
            try {
              value = this.store.readValue(key, loc, expiresAt !== undefined);
            } catch (err) {
              failure = err;
              return false;
            }
            const valueType = this.store.readType;
            chunk.push(valueType === 0 ? [key, value] : [key, value, valueType]);
          }
          if (chunk.length >= want) return false;
        }
        cut = ++visits >= SCAN_CHUNK_VISITS_MAX;
        return !cut;
      });
      if (last === undefined) return;
      for (const entry of chunk) {
        this.checkOpen();
        if (this.store.publishes === version) {
          yield entry;
          remaining--;
          continue;
        }
        // Writes landed since the chunk was read: yield the key's value as of now (or skip it
        // if it was deleted), so that every value is the newest when it is yielded.
        const loc = this.store.keyDir.get(entry[0]);
        if (loc === undefined || this.store.expired(entry[0])) continue;
        const value = this.store.readValue(entry[0], loc);
        const valueType = this.store.readType;
        yield valueType === 0 ? [entry[0], value] : [entry[0], value, valueType];
        remaining--;
      }
      if (failure !== undefined) throw failure;
      if (chunk.length < want && !cut) return;
      cursor = last;
      exclusive = true;
    }
  }

  // ---- writes ----

  /**
   * write checks a stamped write (the ts, every put's create and version, the limits), encodes
   * its records and queues them for the group commit, all before it returns: a refused write
   * changes nothing, and lastTs moves with the queue.
   */
  write(ts: number, ops: readonly WriteOp[]): Promise<void> {
    try {
      this.checkWritable();
      checkTs(ts, this.store.lastTs);
      checkBatch(ops);
      if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
      for (const op of ops) if (op.type === 'put') checkKeyVersion(op.create, op.version, ts);
      assert(ts < SEQ_MAX, 'sequence numbers exhausted');
      const durable = this.commit.enqueue(ts, ops);
      this.store.lastTs = ts;
      return durable;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  dueExpiries(nowMs: number, max: number): Uint8Array[] {
    this.checkOpen();
    // A read-only store deletes nothing; a failed one can queue no tombstone.
    if (this.readOnly || this.commit.failed !== undefined) return [];
    return this.store.dueExpiries(nowMs, max);
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return; // nothing was written
    if (this.durability !== 'always' || this.commit.busy) await this.commit.sync();
  }

  async compact(): Promise<void> {
    this.checkWritable();
    this.compacting ??= this.runCompaction(undefined);
    await this.compacting;
  }

  /**
   * @internal compactFiles compacts the given data files only (a partial compaction, as the
   * background trigger runs one; the active file is sealed first if it is among them). Tests
   * choose the files; it waits for a compaction already running.
   */
  async compactFiles(ids: readonly number[]): Promise<void> {
    this.checkWritable();
    while (this.compacting !== undefined) await this.compacting.catch(() => {});
    this.compacting = this.runCompaction(ids);
    await this.compacting;
  }

  stats(): CaskStats {
    this.checkOpen();
    const { files, keyDir, expiries } = this.store;
    const total = files.totalBytes();
    const live = files.liveBytes();
    const nowMs = this.clock.nowMs();
    const expired = expiries.size === 0 ? 0 : expiries.expiredCount(nowMs);
    return {
      engine: ENGINE_NAME,
      keys: keyDir.size - expired,
      expires: expiries.size - expired,
      avgTtlMs: expiries.avgTtlMs(nowMs),
      diskBytes: total,
      liveBytes: live,
      deadBytes: total - live,
      dataFiles: files.ids().length,
      writes: this.commit.writes,
      fsyncs: this.commit.fsyncs,
      groupCommits: this.commit.groupCommits,
      compactions: this.compactions,
      recovery: this.recovery,
    };
  }

  // ---- backup (backup.ts, docs/backup.md) ----

  /** backup writes a consistent copy of the store into `dir` (new or empty): see backup.ts. */
  async backup(dir: string): Promise<BackupInfo> {
    const source = await this.backupSource();
    try {
      return await backupInto(this.store.fs, source, dir);
    } finally {
      await source.close();
    }
  }

  /** backupSource cuts a consistent backup and pins its files until it is closed. */
  backupSource(): Promise<CaskBackupSource> {
    try {
      this.checkOpen();
      if (!this.readOnly) this.checkWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    return cutBackup({
      store: this.store,
      clock: this.clock,
      pins: this.backupPins,
      readOnly: this.readOnly,
      rotate: (atDone) => this.commit.rotate(atDone),
    });
  }

  writeFailure(): Error | undefined {
    return this.commit.failed;
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    try {
      // Inside the try: an injected clock's timer that throws must not keep the lock held.
      this.commit.cancelTimer();
      // Let compaction stop at its next step, and queued writes finish.
      await this.compacting?.catch(() => {});
      await this.hinting;
      await this.indexing;
      if (this.readOnly) return; // the finally below closes the files; nothing to write
      if (await this.commit.close()) {
        await this.sealAtClose();
        await this.recordSyncedEnd();
      }
    } finally {
      // Whatever happened above, give back the file handles and the directory.
      await this.store.closeFiles();
      await this.lock.release();
    }
  }

  /**
   * sealAtClose gives a large enough active file its hint file at a clean close, which seals it:
   * the next open reads it through the hint and starts a new file (recovery's appendTarget).
   * Best effort, like the hints of rotation: without it the file is scanned.
   */
  private async sealAtClose(): Promise<void> {
    const active = this.store.active;
    if (active.size < CLOSE_HINT_MIN_BYTES) return;
    try {
      // Everything is durable (the group commit closed): nothing to sync, nothing to stop for.
      const host = { ...this.sealHintHost(), stopping: () => false, sync: async () => {} };
      if (await writeSealHint(host, active.id, false)) this.hintsWritten++;
    } catch (err) {
      this.options.onEvent?.({ type: 'hint-failed', detail: { file: active.id, error: String(err) } });
    }
  }

  /** queueSealHint writes sealed file `id`'s hint file in the background, after what runs there. */
  private queueSealHint(id: number): void {
    if (this.readOnly) return;
    this.runHintJob(async () => {
      if (this.closing) {
        this.store.tombstones.delete(id);
        return;
      }
      try {
        if (await writeSealHint(this.sealHintHost(), id)) this.hintsWritten++;
      } catch (err) {
        this.options.onEvent?.({ type: 'hint-failed', detail: { file: id, error: String(err) } });
      }
    }).catch(() => {});
  }

  /** @internal hintsSettled resolves once every hint write queued so far is done (tests wait on it). */
  hintsSettled(): Promise<void> {
    return this.hinting;
  }

  /** runHintJob runs `job` after every hint write queued before it. */
  private runHintJob<T>(job: () => Promise<T>): Promise<T> {
    const run = this.hinting.then(job);
    this.hinting = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private sealHintHost(): SealHintHost {
    const store = this.store;
    return {
      fs: store.fs,
      dir: store.dir,
      files: store.files,
      keyDir: store.keyDir,
      tombstones: store.tombstones,
      stepMs: this.options.compactionStepMs ?? DEFAULT_COMPACTION_STEP_MS,
      loop: this.loop,
      publishedBytes: () => store.publishedBytes,
      expiryOf: (key) => store.expiryOf(key),
      stopping: () => this.closing,
      sync: () => this.commit.sync(),
      compactionEpoch: () => this.compactionEpoch,
      compactionDone: async () => {
        await this.compacting?.catch(() => {});
      },
    };
  }

  /**
   * recordSyncedEnd notes in the metadata how far the active file is durable at a clean close
   * (CaskMetaFields.syncedEnd), unless it says so already. Best effort: the data is durable
   * either way, and without the note recovery only knows less about where a torn write can be.
   */
  private async recordSyncedEnd(): Promise<void> {
    const active = this.store.active;
    const syncedEnd: SyncedEnd = { file: active.id, bytes: active.size };
    const known = this.store.metaFields().syncedEnd;
    if (known?.file === syncedEnd.file && known.bytes === syncedEnd.bytes) return;
    try {
      await this.store.commitMeta({ syncedEnd });
    } catch (err) {
      this.options.onEvent?.({ type: 'write-failed', detail: { error: String(err), metadata: true } });
    }
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
    if (this.commit.failed !== undefined) return;
    if (this.compactionRetryAtMs !== undefined && this.clock.nowMs() < this.compactionRetryAtMs) return;
    const files = this.store.files;
    const total = files.totalBytes();
    const dead = total - files.liveBytes();
    const ratio = this.deadRatioTrigger();
    const minDead = this.options.compactionMinDeadBytes ?? DEFAULT_COMPACTION_MIN_DEAD_BYTES;
    if (dead < minDead || dead < ratio * total) return;
    // The most fragmented files only (compaction-plan.ts); none when no file is worth a copy.
    const inputs = planCompaction(files.all(), ratio);
    if (inputs.length === 0) return;
    const run = this.runCompaction(inputs);
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

  /** deadRatioTrigger: the share of dead bytes that starts a compaction (compactionDeadRatio). */
  private deadRatioTrigger(): number {
    return this.options.compactionDeadRatio ?? DEFAULT_COMPACTION_DEAD_RATIO;
  }

  /** runCompaction compacts `inputs` (a plan: partial), or every sealed file when undefined. */
  private async runCompaction(inputs: readonly number[] | undefined): Promise<void> {
    const onEvent = this.options.onEvent;
    try {
      onEvent?.({ type: 'compaction-start', detail: { diskBytes: this.store.files.totalBytes() } });
      this.compactionEpoch++;
      let result: Awaited<ReturnType<typeof compact>>;
      try {
        result = await compact(this.compactionHost(inputs));
      } finally {
        this.compactionEpoch++;
      }
      if (debugChecksOn(this.options)) this.store.checkIndexes('compaction');
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

  /**
   * compactionHost is what compaction sees of this store: the store state, plus sealing through
   * the group commit (so the inputs hold every write queued before) and the closing flag.
   */
  private compactionHost(planned: readonly number[] | undefined): CompactionHost {
    const store = this.store;
    const ratio = this.deadRatioTrigger();
    return {
      fs: store.fs,
      dir: store.dir,
      dataFileBytes: store.dataFileBytes,
      files: store.files,
      stepMs: this.options.compactionStepMs ?? DEFAULT_COMPACTION_STEP_MS,
      loop: this.loop,
      publishedBytes: () => store.publishedBytes,
      behind: () => {
        const total = store.files.totalBytes();
        return total > 0 && (total - store.files.liveBytes()) / total >= ratio + COMPACTION_BEHIND_MARGIN;
      },
      copyPerWrittenByte: COPY_MARGIN * ((1 - ratio) / ratio),
      stopping: () => this.closing,
      chooseInputs: async () => {
        // Sealing behind every write queued before, so the inputs hold all of them. A partial
        // plan seals only when it chose the active file (or one it has become since).
        if (planned === undefined || planned.some((id) => id >= store.active.id)) await this.commit.rotate();
        const sealed = store.sealedIds();
        return planned === undefined ? sealed : sealed.filter((id) => planned.includes(id));
      },
      tombstonesOf: (id) => this.tombstonesOf(id),
      isLive: (key) => store.keyDir.has(key),
      retired: (id) => {
        store.tombstones.delete(id);
      },
      sync: () => this.commit.sync(),
      // Every seq fdatasynced now: the seal synced every record of the inputs, and it never
      // counts a write a power cut could still lose (faults.test.ts, "the sequence floor").
      seqFloor: () => store.syncedTs,
      walkFiles: (files, from, maxVisits, over, visit) =>
        store.keyDir.walkFiles(files, from, maxVisits, over, visit),
      expiryOf: (key) => store.expiryOf(key),
      readValue: (key, loc, expires) => {
        // Most of what a compaction copies was written recently and is still cached: a cached
        // value at the record's seq and version is that record's value, so no read (a system
        // call per record, about 3 µs here, most of a copy's cost). Its source record is then
        // not verified on the way; the copy is right either way, and the source file is retired.
        const cached = store.cache.peek(key);
        if (cached !== undefined && cached.seq === loc.seq && cached.version === loc.version)
          return { value: cached.value, valueType: cached.valueType };
        const value = store.readValue(key, loc, expires);
        return { value, valueType: store.readType };
      },
      readRecordBytes: (key, loc, expires) => store.readRecordBytes(key, loc, expires),
      damaged: (detail) => this.options.onEvent?.({ type: 'record-damaged', detail: { ...detail } }),
      move: (key, fromFile, fromOffset, toFile, toOffset, size) =>
        store.move(key, fromFile, fromOffset, toFile, toOffset, size),
      metaFields: () => store.metaFields(),
      pinned: () => this.backupPins.pinned,
      unpinned: () => this.backupPins.unpinned(),
      commitMeta: (fields) => store.commitMeta(fields),
    };
  }

  /**
   * tombstonesOf lists sealed data file `id`'s DELETE records for a compaction: the store's note
   * while the file waits for its hint file, else the hint file's tombstone section, else (no
   * usable hint: a file with damage) a scan of the file.
   */
  private async tombstonesOf(id: number): Promise<readonly Tombstone[]> {
    const store = this.store;
    const noted = store.tombstones.get(id);
    if (noted !== undefined) return noted;
    const data = store.files.get(id);
    const hintFile = hintPath(store.dir, id);
    if (await store.fs.exists(hintFile)) {
      const found: Tombstone[] = [];
      // A copy of each key: the hint's bytes are dropped after the call.
      const keep = (key: Uint8Array, seq: number) => found.push({ key: Buffer.from(key), seq });
      const bytes = await store.fs.readFile(hintFile);
      // A version-2 file is checked without rebuilding its keys (decodeHint's two passes that
      // rebuild every key held the event loop 20-40 ms for a 64 MiB file's hint).
      // Nothing is visited from a file it refuses (a string) or does not read (undefined: version 1).
      const cursor = openHintCursor(bytes, id, data.size, keep);
      if (cursor !== undefined && typeof cursor !== 'string') return found;
      if (cursor === undefined && decodeHint(bytes, id, data.size, () => {}, keep) === undefined)
        return found;
    }
    return scanTombstones(store.fs, store.dir, data.file, id, data.size);
  }

  /** @internal rotate seals the active data file and starts a new one, in write order. */
  rotate(): Promise<void> {
    return this.commit.rotate();
  }

  private checkOpen(): void {
    if (this.closing) throw new ClosedError();
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) throw new ReadOnlyError(`the store in ${this.dir} was opened read-only`);
    const failed = this.commit.failed;
    if (failed !== undefined) throw failed;
  }
}

/**
 * recoverStore runs recovery as the metadata directs it (retired files, the sequence floor, how
 * far the active file was durable at the last clean close): open, read-only open and check.
 */
/**
 * listDataFiles brings the metadata's `files` up to what this open found, before anything is
 * written: every data file it holds open (a compaction output or an active file that a crash
 * left unlisted; the new active file) plus the listed ones that are missing, which stay listed
 * so that every open and check reports them. Gives it to a store written before the field
 * existed. Returns the metadata in force.
 */
async function listDataFiles(fs: FileSystem, dir: string, meta: Meta, recovered: Recovered): Promise<Meta> {
  const files = [...new Set([...recovered.files.ids(), ...recovered.missing])].sort((a, b) => a - b);
  const listed = readCaskFields(meta).files;
  if (listed !== undefined && listed.length === files.length && listed.every((id, i) => id === files[i]))
    return meta;
  const next: Meta = { ...meta, generation: meta.generation + 1, fields: { ...meta.fields, files } };
  await writeMeta(fs, dir, next);
  return next;
}

/** LMDB_DATA_DIR: where an lmdb store keeps its data (lmdb-engine.ts's LMDB_SUBDIR, not imported: that module loads lmdb). */
const LMDB_DATA_DIR = 'lmdb';

/**
 * holdsStoreFiles: whether a directory listing has a store's data (data or hint files, or an lmdb
 * store's `lmdb/`), metadata aside: such a directory is never started over as a new store.
 */
export function holdsStoreFiles(names: readonly string[]): boolean {
  return names.some(
    (n) =>
      n === LMDB_DATA_DIR ||
      parseFileId(n, DATA_SUFFIX) !== undefined ||
      parseFileId(n, HINT_SUFFIX) !== undefined,
  );
}

/** lockDir takes `dir`'s lock from the file system, or the kernel's (dir-lock.ts) on the machine's. */
function lockDir(fs: FileSystem, dir: string, readOnly: boolean): Promise<HeldLock> {
  return fs.lockDir === undefined ? DirLock.acquire(dir, readOnly) : fs.lockDir(dir, readOnly);
}

/** wrongType: what get() throws for a key whose value is not a string. */
function wrongType(valueType: number): WrongTypeError {
  return new WrongTypeError(valueTypeName(valueType));
}

export function recoverStore(
  fs: FileSystem,
  dir: string,
  meta: Meta,
  options: Pick<RecoverOptions, 'repair' | 'dataFileBytes' | 'trustHints'>,
): Promise<Recovered> {
  const { retired, seqFloor, syncedEnd, files } = readCaskFields(meta);
  return recover({ fs, dir, retired, seqFloor, syncedEnd, listed: files, ...options });
}
