// LmdbEngine adapts the `lmdb` package (lmdb-js 3, a binding to Symas LMDB) to the Engine
// interface, so that the same conformance suite, the benchmarks and users who prefer a B+tree can
// run it in place of our Bitcask engine.
//
// How each Engine promise maps onto lmdb-js:
// - Durability 'always' opens lmdb with `overlappingSync: false`, so every commit fsyncs before
//   it becomes visible, and a write's promise resolves only after its commit. (lmdb-js's default,
//   overlappingSync, makes a commit visible first and flushes it afterwards; its write promises
//   then resolve before the data is durable, which would break "reads never observe a write that
//   is not durable".) Concurrent writers share commits: lmdb-js puts every write issued in one
//   event turn into one transaction, which is group commit.
// - 'never' and 'interval' open with `noSync: true`: a commit is written to the OS, not fsynced.
//   flush() and close() fsync through lmdb's env sync; 'interval' also does so every
//   syncIntervalMs on the options' clock.
// - write(ts, ops) is one lmdb-js `batch`, one LMDB write transaction: all of it or none of it.
//   (A lone put without an expiry, in a store that has held none since open, is a plain lmdb-js
//   put: its fast path, one write of one transaction all the same.) The write pipeline
//   (src/txn/write-pipeline.ts) stamps it and keeps it as pending until it resolves; the adapter
//   keeps no overlay of queued writes and derives nothing.
// - scan() iterates with `snapshot: false`: the cursor follows the latest committed state as the
//   read transaction renews between event turns, instead of pinning the snapshot it started on.
//
// Keys: LMDB rejects the empty key and keys longer than 1978 bytes (lmdb-js's limit at the default
// page size). Every key is stored behind a one-byte prefix, which keeps the byte order of the
// keys (a common prefix does not change memcmp order) and makes the empty key storable. The
// length limit is a property of LMDB we keep: keys longer than LMDB_KEY_BYTES_MAX fail with
// LimitError, a documented difference from the cask engine (which takes up to KEY_BYTES_MAX).
//
// Expiry: a second lmdb database (EXPIRY_DB_NAME) maps the same stored keys to their expiresAt
// (u64 little-endian), written in the same transaction as the value (one lmdb-js `batch`). Reads
// consult it only once the store has ever held an expiry, so stores without TTLs pay nothing. An
// in-memory ExpiryIndex, loaded at open and updated as writes commit, answers dueExpiries and the
// expiry counts of stats(). The index can lag lmdb's committed state (a commit is visible before
// its promise settles), so dueExpiries checks each key it lists against the committed expiry
// database: it never lists a key a committed write changed. The write pipeline's one expiry cycle
// (src/txn/expiry-cycle.ts) deletes the keys it lists with ordinary writes.
//
// Revisions: every value is stored behind a fixed-size prefix holding the key's revision
// (VALUE_PREFIX_BYTES: mod u64 | create u64 | version u32, little-endian), so a put writes one
// record of one B-tree, as it did before revisions. Reads make one copy, as lmdb-js's own `get`
// does: get, getSync and getStored copy the bytes past the prefix out of lmdb-js's reused read
// buffer (getBinaryFast), scan returns a view past the prefix of the fresh copy its range hands
// out; revisionSync and getStored decode the prefix.
// (A first design kept revisions in a second named database written in the same transaction.
// Dirtying a second B-tree on every put cost it about half the write throughput in A/B runs
// against storing no revisions at all; the prefix costs 5-25%.)
// - Every write comes stamped (engine.ts): its commit timestamp `ts`, and each put's create and
//   version, which are stored as given (mod is the ts). write() checks the stamps (checkTs,
//   checkKeyVersion) and the limits before it queues anything, so a write refused for any reason
//   changes nothing, lastTs included; lastTs moves when the write is queued, synchronously and in
//   call order.
// - The last timestamp survives restarts in a small named database (META_DB_NAME), under
//   LAST_TS_KEY. A `beforecommit` listener, which lmdb-js runs as the last step of every batched
//   write transaction (its documented use: "a global version stamp based on all previous
//   writes"), writes the in-memory lastTs there when it moved: one extra put per transaction
//   rather than per write, in the same transaction as the writes it covers, and never below the
//   ts of any write committed with it or before it. Open reads it back (0 for a fresh store).
// - Stores written before format 3 hold values without a prefix: open migrates them before it
//   serves anything (migration.ts).
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"). lmdb-js copies a key into its write
// instructions when put()/remove() is called, but keeps only the address of a value and reads it
// on its write thread when the transaction runs, after put() has returned; it reads a range's
// bounds at its first next() and again whenever a `snapshot: false` range renews its read
// transaction. So everything this adapter hands lmdb-js is its own: stored keys (storedKey),
// stored values (encodeStoredValue: prefix and value in one new buffer), expiries and counters
// are fresh buffers built in the call, and scans copy their bounds before the generator runs.
// The caller's keys and values are read only within the call. Out of lmdb-js: getBinaryFast's
// buffer is reused by the next read of any database, so it is decoded or copied at once;
// getRange entries are fresh copies, handed out as they are (values as views past the prefix).
//
// Caveats: `options.fs` is used for the metadata only; lmdb does its own file I/O, so fault
// injection does not reach it. compact() is a no-op: LMDB reuses freed pages in place.
import * as path from 'node:path';
import { open as openLmdbEnv } from 'lmdb';
import type { Clock, Timer } from '../../io/clock.js';
import { systemClock } from '../../io/clock.js';
import { mkdirDurable } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { compareBytes, prefixEnd } from '../../stdx/bytes.js';
import { keyString } from '../../stdx/key-string.js';
import { encodeU64LE, readU64LE } from '../../stdx/u64.js';
import { DATA_SUFFIX, HINT_SUFFIX, parseFileId } from '../cask/file-names.js';
import { DirLock } from '../dir-lock.js';
import type {
  Durability,
  Engine,
  EngineStats,
  Entry,
  Revision,
  ScanRange,
  Stored,
  WriteOp,
} from '../engine.js';
import {
  DEFAULT_DURABILITY,
  DEFAULT_SYNC_INTERVAL_MS,
  type EngineOptions,
  validateEngineOptions,
} from '../engine-options.js';
import { ClosedError, CorruptionError, InvalidArgumentError, WrongTypeError } from '../errors.js';
import { ExpiryIndex, isExpired } from '../expiry-index.js';
import { FORMAT_TYPED, loadOrCreateMeta, readMeta, writeMeta } from '../meta.js';
import { checkKeyVersion, checkTs } from '../revision.js';
import { checkBatch, checkDataDir, ownScanRange, checkKey as sharedCheckKey } from '../validate.js';
import { valueTypeName } from '../value-type.js';
import { type Db, type LmdbEnvSync, namedDbs, type SubDb } from './lmdb-env.js';
import { type LmdbOpenHooks, migrateToRevisions } from './migration.js';
import {
  decodeExpiry,
  decodeRevision,
  decodeValueType,
  encodeExpiry,
  encodeStoredValue,
  LAST_TS_KEY,
  STORED_KEYS_END,
  storedKey,
  userValue,
  userValueView,
} from './value-codec.js';

export const LMDB_ENGINE_NAME = 'lmdb';
/** LMDB_SUBDIR: lmdb's own files (data.mdb, lock.mdb) live in this subdirectory of the store. */
export const LMDB_SUBDIR = 'lmdb';
/** LMDB_STORED_KEY_BYTES_MAX: lmdb-js's longest key at the default page size (its DEFAULT_MAX_KEY_SIZE). */
const LMDB_STORED_KEY_BYTES_MAX = 1978;
/** LMDB_KEY_BYTES_MAX: the longest user key this engine takes; the prefix byte uses one. */
export const LMDB_KEY_BYTES_MAX = LMDB_STORED_KEY_BYTES_MAX - 1;
/** EXPIRY_DB_NAME: the named lmdb database of expiry times; it is one record of the root database. */
const EXPIRY_DB_NAME = 'cairn-expiry';
/** META_DB_NAME: the named lmdb database of the engine's own entries (lastTs, migration progress). */
const META_DB_NAME = 'cairn-meta';
/** SCAN_SKIPS_PER_TURN: expired entries a scan skips before it lets the event loop run. */
const SCAN_SKIPS_PER_TURN = 4096;

interface LmdbPageStats {
  readonly pageSize: number;
  readonly treeBranchPageCount: number;
  readonly treeLeafPageCount: number;
  readonly overflowPages: number;
  readonly entryCount: number;
}

interface LmdbEnvStats extends LmdbPageStats {
  readonly lastPageNumber: number;
  readonly lastTxnId: number;
}

export async function openLmdb(
  dir: string,
  options: EngineOptions = {},
  hooks: LmdbOpenHooks = {},
): Promise<Engine> {
  const fs = options.fs ?? nodeFileSystem;
  const clock = options.clock ?? systemClock;
  const durability = options.durability ?? DEFAULT_DURABILITY;
  validateEngineOptions(options);
  if (options.readOnly === true) {
    // lmdb keeps its reader table in lock.mdb, which it must write even to read.
    throw new InvalidArgumentError('option readOnly is supported by the cask engine only');
  }
  const syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  await checkDataDir(fs, dir);

  await mkdirDurable(fs, dir);
  const lock = await DirLock.acquire(dir);
  let db: Db | undefined;
  try {
    const names = await fs.readdir(dir);
    // "Empty" means no lmdb files yet; unrelated files may share the directory (kvs runs in the
    // current directory), but lmdb files without metadata are never started over.
    // A cask store's data and hint files count too: a cask store whose metadata is gone is not
    // started over as an empty lmdb store either.
    const isEmpty = !names.some(
      (n) =>
        n === LMDB_SUBDIR ||
        parseFileId(n, DATA_SUFFIX) !== undefined ||
        parseFileId(n, HINT_SUFFIX) !== undefined,
    );
    const { meta } = await loadOrCreateMeta(fs, dir, LMDB_ENGINE_NAME, clock.nowMs(), isEmpty);
    db = openLmdbEnv<Buffer, Buffer>(path.join(dir, LMDB_SUBDIR), {
      keyEncoding: 'binary',
      encoding: 'binary',
      ...(durability === 'always' ? { overlappingSync: false } : { noSync: true }),
    });
    const dbNames = namedDbs(db);
    const expiryDb: SubDb = db.openDB<Buffer, Buffer>(EXPIRY_DB_NAME, {
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    const metaDb: SubDb = db.openDB<Buffer, Buffer>(META_DB_NAME, {
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    await migrateToRevisions(fs, dir, meta, db, metaDb, dbNames, hooks);
    // Format 4: a value may carry a type in its prefix (value-codec.ts, VALUE_TYPE_AT). Raised
    // at open, as formats 2 and 3 were for lmdb stores: the value codec has no format-3-safe way
    // to hold a type, and nothing typed is written before the engine exists.
    const current = (await readMeta(fs, dir)).meta ?? meta;
    if (current.format < FORMAT_TYPED) {
      await writeMeta(fs, dir, { ...current, format: FORMAT_TYPED, generation: current.generation + 1 });
    }
    return new LmdbEngine(
      db,
      expiryDb,
      metaDb,
      lock,
      durability,
      durability === 'interval' ? syncIntervalMs : undefined,
      clock,
    );
  } catch (err) {
    try {
      await db?.close();
    } catch {
      // The error that made open fail is the one to report.
    }
    await lock.release();
    throw err;
  }
}

class LmdbEngine implements Engine {
  readonly name = LMDB_ENGINE_NAME;
  private closed = false;
  private writes = 0;
  private syncs = 0;
  /** lastTxnIdAtOpen: to count commits (each one fsynced in 'always' mode) since open. */
  private readonly lastTxnIdAtOpen: number;
  private readonly timer: Timer | undefined;
  /** syncing: the env sync in flight, so that the interval timer never stacks them. */
  private syncing: Promise<void> | undefined;
  /** expiries: committed expiry times, for dueExpiries and stats (reads use expiryDb). */
  private readonly expiries = new ExpiryIndex();
  /** mayExpire: the store has held an expiry since open; until then reads skip expiryDb. */
  private mayExpire: boolean;
  /** last: the highest commit timestamp of a write queued or committed (lastTs()). */
  private last: number;
  /** lastQueued: the last value of `last` queued to LAST_TS_KEY (see persistLastTs). */
  private lastQueued: number;
  /** namedDbs: records of the root database that are named databases, not keys (stats() subtracts them). */
  private readonly namedDbs: number;

  constructor(
    private readonly db: Db,
    private readonly expiryDb: SubDb,
    private readonly metaDb: SubDb,
    private readonly lock: DirLock,
    private readonly durability: Durability,
    syncIntervalMs: number | undefined,
    private readonly clock: Clock,
  ) {
    this.lastTxnIdAtOpen = this.envStats().lastTxnId;
    for (const { key, value } of expiryDb.getRange({ snapshot: false })) {
      this.expiries.set(keyString(key.subarray(1)), decodeExpiry(value));
    }
    this.mayExpire = this.expiries.size > 0;
    this.namedDbs = namedDbs(db).length;
    const rawLast = metaDb.get(LAST_TS_KEY);
    this.last = rawLast === undefined ? 0 : readU64LE(rawLast, 0);
    this.lastQueued = this.last;
    // Runs as the last step of every write transaction lmdb-js batches; see the header.
    db.on('beforecommit', () => this.persistLastTs());
    this.timer =
      syncIntervalMs === undefined
        ? undefined
        : clock.every(syncIntervalMs, () => {
            // A failed background sync is retried on the next tick; flush() and close() report.
            if (this.syncing === undefined) this.sync().catch(() => {});
          });
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.getSync(key);
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    // Both reads run in this one synchronous step, so they see the same committed state. The
    // value is copied out before the expiry read reuses lmdb-js's read buffer.
    const raw = this.db.getBinaryFast(stored);
    if (raw === undefined) return undefined;
    const valueType = decodeValueType(raw);
    const value = userValue(raw);
    if (this.expiredNow(stored)) return undefined;
    // A typed value (a hash) is never handed out as a string.
    if (valueType !== 0) throw new WrongTypeError(valueTypeName(valueType));
    return value;
  }

  async has(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    return this.db.doesExist(stored) && !this.expiredNow(stored);
  }

  async getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.getStoredSync(key);
  }

  getStoredSync(key: Uint8Array): Stored | undefined {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    const raw = this.db.getBinaryFast(stored);
    if (raw === undefined) return undefined;
    // Decoded and copied before the expiry read reuses lmdb-js's read buffer.
    const revision = decodeRevision(raw);
    const valueType = decodeValueType(raw);
    const value = userValue(raw);
    const expiresAt = this.readExpiry(stored);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    return { value, expiresAt, revision, valueType };
  }

  revisionSync(key: Uint8Array): Revision | undefined {
    this.checkOpen();
    checkKey(key);
    return this.readRevision(storedKey(key));
  }

  lastTs(): number {
    return this.last;
  }

  async expiry(key: Uint8Array): Promise<number | null | undefined> {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    if (!this.db.doesExist(stored)) return undefined;
    const expiresAt = this.readExpiry(stored);
    if (expiresAt === undefined) return null;
    return isExpired(expiresAt, this.clock.nowMs()) ? undefined : expiresAt;
  }

  async write(ts: number, ops: readonly WriteOp[]): Promise<void> {
    this.checkOpen();
    checkBatch(ops, checkKey);
    if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
    checkTs(ts, this.last);
    let expires = false;
    for (const op of ops) {
      if (op.type !== 'put') continue;
      checkKeyVersion(op.create, op.version, ts);
      if (op.expiresAt !== undefined) expires = true;
    }
    // Nothing may be awaited before the write is queued: queue order is call order, and lastTs
    // moves in the same synchronous step.
    if (expires) this.mayExpire = true;
    const withExpiry = this.mayExpire;
    // indexed: what the expiry index learns once the write commits, taken now (the caller's keys
    // and ops are borrowed), in op order so that a key's last op wins.
    const indexed = withExpiry
      ? ops.map((op) => [keyString(op.key), op.type === 'put' ? op.expiresAt : undefined] as const)
      : undefined;
    const only = ops[0] as WriteOp;
    let committed: Promise<unknown>;
    if (!withExpiry && ops.length === 1 && only.type === 'put') {
      committed = this.db.put(
        storedKey(only.key),
        encodeStoredValue(revisionOf(only, ts), only.value, only.valueType),
      );
    } else {
      // The callback runs synchronously and queues every op into one transaction, in order, so a
      // key's last op in the write is the one that counts.
      committed = this.db.batch(() => {
        for (const op of ops) {
          const stored = storedKey(op.key);
          if (op.type === 'put')
            this.queuePut(stored, op.value, op.expiresAt, revisionOf(op, ts), op.valueType);
          else this.queueDelete(stored);
        }
      });
    }
    this.last = ts;
    await committed;
    if (indexed !== undefined) for (const [name, expiresAt] of indexed) this.expiries.set(name, expiresAt);
    this.writes++;
  }

  dueExpiries(nowMs: number, max: number): Uint8Array[] {
    this.checkOpen();
    if (this.expiries.size === 0) return [];
    const due: Uint8Array[] = [];
    for (const entry of this.expiries.peekDue(nowMs, max)) {
      const key = Buffer.from(entry.name, 'latin1');
      // The index may lag a commit that lmdb already shows (see the header): list only keys the
      // committed state holds with the expiry the index has.
      const stored = storedKey(key);
      if (this.readExpiry(stored) === entry.expiresAt && this.db.doesExist(stored)) due.push(key);
    }
    return due;
  }

  /**
   * queuePut queues a value behind its revision, and its expiry (or the removal of an old one);
   * call inside a batch.
   */
  private queuePut(
    stored: Buffer,
    value: Uint8Array,
    expiresAt: number | undefined,
    revision: Revision,
    valueType: number | undefined,
  ): void {
    void this.db.put(stored, encodeStoredValue(revision, value, valueType));
    if (expiresAt !== undefined) void this.expiryDb.put(stored, encodeExpiry(expiresAt));
    else if (this.mayExpire) void this.expiryDb.remove(stored);
  }

  /** queueDelete queues the removal of a key with its expiry; call inside a batch. */
  private queueDelete(stored: Buffer): void {
    void this.db.remove(stored);
    if (this.mayExpire) void this.expiryDb.remove(stored);
  }

  /** readRevision reads a live key's committed revision (undefined: absent or expired). */
  private readRevision(stored: Buffer, nowMs = this.clock.nowMs()): Revision | undefined {
    const raw = this.db.getBinaryFast(stored); // decoded before the next read reuses it
    if (raw === undefined) return undefined;
    const revision = decodeRevision(raw);
    const expiresAt = this.readExpiry(stored);
    return expiresAt !== undefined && isExpired(expiresAt, nowMs) ? undefined : revision;
  }

  /**
   * persistLastTs queues lastTs to LAST_TS_KEY when it moved since last queued. It is lmdb-js's
   * `beforecommit` listener: it runs as the last step of a write transaction, whose writes all
   * took their timestamps (at most lastTs) before it.
   */
  private persistLastTs(): void {
    if (this.last === this.lastQueued) return;
    this.lastQueued = this.last;
    this.metaDb.put(LAST_TS_KEY, encodeU64LE(this.last)).then(undefined, () => {
      // The writes of the failed transaction report the failure; queue lastTs again next time.
      this.lastQueued = -1;
    });
  }

  /** readExpiry reads a stored key's committed expiry (undefined: none). */
  private readExpiry(stored: Buffer): number | undefined {
    if (!this.mayExpire) return undefined;
    const raw = this.expiryDb.getBinaryFast(stored); // decoded before the next read reuses it
    return raw === undefined ? undefined : decodeExpiry(raw);
  }

  private expiredNow(stored: Buffer): boolean {
    const expiresAt = this.readExpiry(stored);
    return expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs());
  }

  scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    // The bounds are borrowed and the generator's body runs only at the first next(): copy them
    // now. (lmdb-js itself reads a range's bounds lazily, at the first next() and again whenever
    // a `snapshot: false` range renews its read transaction: it only ever gets our own copies.)
    return this.scanFrom(ownScanRange(range));
  }

  private async *scanFrom(range: ScanRange): AsyncIterableIterator<Entry> {
    this.checkOpen();
    const { start, end, limit, reverse = false } = range;
    if (start !== undefined) checkKeyBound(start);
    if (end !== undefined) checkKeyBound(end);
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
      throw new InvalidArgumentError(`scan limit must be a non-negative integer, got ${limit}`);
    }
    if (limit === 0 || (start !== undefined && end !== undefined && compareBytes(start, end) >= 0)) return;
    // A bound longer than any storable key cannot go to lmdb as it is (lmdb-js rejects it): the
    // range is widened to bounds that fit, and the true bound is checked here for each key.
    const lowExact = start === undefined || start.length <= LMDB_KEY_BYTES_MAX;
    const highExact = end === undefined || end.length <= LMDB_KEY_BYTES_MAX;
    const low = storedKey(start === undefined ? new Uint8Array(0) : start.subarray(0, LMDB_KEY_BYTES_MAX));
    const highKey =
      end === undefined ? undefined : highExact ? end : prefixEnd(end.subarray(0, LMDB_KEY_BYTES_MAX));
    const high = highKey === undefined ? STORED_KEYS_END : storedKey(highKey);
    // lmdb-js ranges run from `start` towards `end`; in reverse that is from the high bound down,
    // so the bounds swap and their inclusiveness with them.
    const entries = this.db.getRange(
      reverse
        ? { start: high, end: low, reverse: true, exclusiveStart: true, inclusiveEnd: true, snapshot: false }
        : { start: low, end: high, snapshot: false },
    );
    let yielded = 0;
    let skipped = 0;
    // previous: keys must strictly increase (decrease in reverse); anything else is reported as
    // corruption rather than yielded (a broken order could repeat keys or never end).
    let previous: Buffer | undefined;
    // Iterated by hand so that a scan outliving close() fails with ClosedError before lmdb-js
    // touches the closed environment.
    const iter = entries[Symbol.iterator]();
    try {
      for (;;) {
        this.checkOpen();
        const next = iter.next();
        if (next.done === true) return;
        const { key: stored, value } = next.value;
        // Keys and values from a binary lmdb-js range are fresh copies; the views drop the prefixes.
        const key = stored.subarray(1);
        if (
          previous !== undefined &&
          (reverse ? compareBytes(stored, previous) >= 0 : compareBytes(stored, previous) <= 0)
        ) {
          throw new CorruptionError('lmdb returned keys out of order during a scan');
        }
        previous = stored;
        if (this.expiredNow(stored)) {
          // A long run of expired keys must not hold the event loop for the whole run.
          if (++skipped % SCAN_SKIPS_PER_TURN === 0)
            await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        if (!lowExact && compareBytes(key, start) < 0) {
          if (reverse) return;
          continue;
        }
        if (!highExact && compareBytes(key, end) >= 0) {
          if (reverse) continue;
          return;
        }
        const valueType = decodeValueType(value);
        yield valueType === 0 ? [key, userValueView(value)] : [key, userValueView(value), valueType];
        if (limit !== undefined && ++yielded >= limit) return;
      }
    } finally {
      if (!this.closed) iter.return?.();
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.durability === 'always') return;
    await this.sync();
  }

  async compact(): Promise<void> {
    this.checkOpen();
  }

  stats(): EngineStats {
    this.checkOpen();
    const env = this.envStats();
    const used = env.treeBranchPageCount + env.treeLeafPageCount + env.overflowPages;
    const expired = this.expiries.size === 0 ? 0 : this.expiries.expiredCount(this.clock.nowMs());
    return {
      engine: this.name,
      keys: env.entryCount - this.namedDbs - expired,
      expires: this.expiries.size - expired,
      avgTtlMs: this.expiries.avgTtlMs(this.clock.nowMs()),
      // The data file holds pages 0..lastPageNumber; the lock file is not data.
      diskBytes: (env.lastPageNumber + 1) * env.pageSize,
      liveBytes: used * env.pageSize,
      writes: this.writes,
      // In 'always' mode every commit fsyncs; otherwise only our explicit syncs do.
      fsyncs: this.durability === 'always' ? env.lastTxnId - this.lastTxnIdAtOpen : this.syncs,
      compactions: 0,
    };
  }

  close(): Promise<void> {
    // Idempotent: a second close waits for the first.
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async shutdown(): Promise<void> {
    this.closed = true;
    try {
      // Inside the try: an injected clock's timer that throws must not keep the lock held.
      this.timer?.cancel();
      // Writes already queued still land; then make them durable before the env goes away.
      await this.db.committed;
      if (this.durability !== 'always') await this.sync();
      await this.db.close();
    } finally {
      await this.lock.release();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError();
  }

  private envStats(): LmdbEnvStats {
    return this.db.getStats() as LmdbEnvStats;
  }

  /** sync fsyncs everything committed so far; concurrent callers share one sync in flight. */
  private sync(): Promise<void> {
    if (this.syncing !== undefined) {
      // A sync already running may have started before the caller's writes were committed;
      // run one more after it.
      return this.syncing.then(() => this.sync());
    }
    const env = this.db as unknown as LmdbEnvSync;
    const syncing = new Promise<void>((resolve, reject) => {
      env.sync((error) => (error === undefined || error === null ? resolve() : reject(error)));
    }).finally(() => {
      this.syncing = undefined;
    });
    this.syncing = syncing;
    this.syncs++;
    return syncing;
  }
}

function checkKey(key: Uint8Array): void {
  sharedCheckKey(key, LMDB_KEY_BYTES_MAX, 'LMDB_KEY_BYTES_MAX');
}

function checkKeyBound(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError('scan bound must be a Uint8Array');
}

/** revisionOf is the revision a stamped put at `ts` stores. */
function revisionOf(op: { readonly create: number; readonly version: number }, ts: number): Revision {
  return { mod: ts, create: op.create, version: op.version };
}
