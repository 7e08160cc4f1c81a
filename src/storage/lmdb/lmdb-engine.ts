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
// - batch() is one lmdb-js `batch`, one LMDB write transaction: all of it or none of it.
// - delete() uses lmdb-js's IF_EXISTS condition, checked inside the write transaction at commit,
//   so it counts writes queued before it.
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
// in-memory ExpiryIndex, loaded at open and updated as writes commit, drives the active expiry
// cycle and the expired-key count of stats(); the cycle re-checks every key's expiry inside its
// own write transaction before deleting, so a lagging index can never delete a newer write.
// delete() of a key that expired but was not yet removed reports false when the committed state
// at call time says so (the conditional removal itself is checked at commit, as before).
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
// - Timestamps are assigned when a write is queued, synchronously and in call order (writeTs),
//   so a write refused for any reason changes nothing, lastTs included. Every put, delete (also
//   of a missing key: simpler than predicting the commit-time IF_EXISTS check) and non-empty
//   batch takes one, and so does each run of the expiry cycle that deletes keys.
// - The last timestamp survives restarts in a small named database (META_DB_NAME), under
//   LAST_TS_KEY. A `beforecommit` listener, which lmdb-js runs as the last step of every batched
//   write transaction (its documented use: "a global version stamp based on all previous
//   writes"), writes the in-memory lastTs there when it moved: one extra put per transaction
//   rather than per write, in the same transaction as the writes it covers, and never below the
//   ts of any write committed with it or before it. Open reads it back (0 for a fresh store).
// - create and version: a put that carries them (the Db's MVCC layer) stores them as given. For
//   any other put they are derived (revisionOfPut) from the key's newest queued state: first
//   `queued`, an in-memory map of the writes queued but not yet committed (an entry is dropped
//   when its write settles, unless a later write of the key replaced it), else the prefix of the
//   committed value, one read that only this path pays. An expired state counts as absent. We
//   keep this overlay rather than derive inside the write transaction (lmdb-js `transaction`
//   callbacks) so that writes stay on lmdb-js's fast path, where the write thread commits
//   without calling back into the JS thread. Should a commit fail, writes queued behind it keep
//   the create/version they derived from it (a version one too high).
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
import { IF_EXISTS, open as openLmdbEnv } from 'lmdb';
import type { Clock, Timer } from '../../io/clock.js';
import { systemClock } from '../../io/clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { compareBytes, prefixEnd } from '../../stdx/bytes.js';
import { encodeU64LE, readU64LE } from '../../stdx/u64.js';
import { DirLock } from '../dir-lock.js';
import type {
  BatchOp,
  Durability,
  Engine,
  EngineStats,
  Entry,
  KeyVersion,
  PutOptions,
  Revision,
  ScanRange,
  Stored,
  WriteOptions,
} from '../engine.js';
import {
  DEFAULT_DURABILITY,
  DEFAULT_SYNC_INTERVAL_MS,
  type EngineOptions,
  validateEngineOptions,
} from '../engine-options.js';
import { ClosedError, CorruptionError, InvalidArgumentError } from '../errors.js';
import {
  EXPIRY_CYCLE_INTERVAL_MS,
  EXPIRY_CYCLE_KEYS_MAX,
  type ExpiryEntry,
  ExpiryIndex,
  isExpired,
} from '../expiry-index.js';
import { loadOrCreateMeta } from '../meta.js';
import { checkKeyVersion, revisionOfPut, TS_MAX, writeTs } from '../revision.js';
import {
  checkBatch,
  checkDataDir,
  checkExpiresAt,
  checkValue,
  ownScanRange,
  checkKey as sharedCheckKey,
} from '../validate.js';
import { type Db, type LmdbEnvSync, namedDbs, type SubDb } from './lmdb-env.js';
import { type LmdbOpenHooks, migrateToRevisions } from './migration.js';
import {
  decodeExpiry,
  decodeRevision,
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
const NO_KEY_VERSION: KeyVersion = {};
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

/** BatchMember: a key's last operation in a batch, with the revision a put stores. */
interface BatchMember {
  readonly name: string;
  readonly stored: Buffer;
  readonly op: BatchOp;
  readonly revision: Revision | undefined;
}

/** Queued: the newest state of a key among the writes queued but not yet committed. */
interface Queued {
  /** ts: the write's commit timestamp, which identifies it among the key's queued writes. */
  readonly ts: number;
  /** revision: undefined when the write deletes the key. */
  readonly revision: Revision | undefined;
  readonly expiresAt: number | undefined;
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

  await fs.mkdir(dir);
  const lock = await DirLock.acquire(dir);
  let db: Db | undefined;
  try {
    const names = await fs.readdir(dir);
    // "Empty" means no lmdb files yet; unrelated files may share the directory (kvs runs in the
    // current directory), but lmdb files without metadata are never started over.
    const isEmpty = !names.includes(LMDB_SUBDIR);
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
  /** expiredKeys: keys the active expiry cycle deleted since open. */
  private expiredKeys = 0;
  private syncs = 0;
  /** lastTxnIdAtOpen: to count commits (each one fsynced in 'always' mode) since open. */
  private readonly lastTxnIdAtOpen: number;
  private readonly timer: Timer | undefined;
  /** syncing: the env sync in flight, so that the interval timer never stacks them. */
  private syncing: Promise<void> | undefined;
  /** expiries: committed expiry times, for the active cycle and stats (reads use expiryDb). */
  private readonly expiries = new ExpiryIndex();
  /** mayExpire: the store has held an expiry since open; until then reads skip expiryDb. */
  private mayExpire: boolean;
  /** expiryTimer: runs the active expiry cycle; started once the store holds an expiry. */
  private expiryTimer: Timer | undefined;
  /** expiring: the active expiry cycle's transaction in flight, if any. */
  private expiring: Promise<void> | undefined;
  /** last: the highest commit timestamp given to a write, queued or committed (lastTs()). */
  private last: number;
  /** lastQueued: the last value of `last` queued to LAST_TS_KEY (see persistLastTs). */
  private lastQueued: number;
  /** queued: each key's newest state among writes not yet committed, by nameOf (see the header). */
  private readonly queued = new Map<string, Queued>();
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
      this.expiries.set(nameOf(key.subarray(1)), decodeExpiry(value));
    }
    this.mayExpire = false;
    if (this.expiries.size > 0) this.startExpiring();
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
    const value = userValue(raw);
    return this.expiredNow(stored) ? undefined : value;
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
    const value = userValue(raw);
    const expiresAt = this.readExpiry(stored);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    return { value, expiresAt, revision };
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

  async put(key: Uint8Array, value: Uint8Array, options?: PutOptions): Promise<void> {
    this.checkOpen();
    checkKey(key);
    checkValue(value);
    const expiresAt = options?.expiresAt;
    checkExpiresAt(expiresAt);
    // Nothing may be awaited before the write is queued: queue order is call order, and the
    // timestamp is assigned in the same synchronous step.
    const ts = writeTs(options?.ts, this.last);
    const given: KeyVersion = options ?? NO_KEY_VERSION;
    checkKeyVersion(given, ts);
    const stored = storedKey(key);
    const name = nameOf(key);
    const nowMs = this.clock.nowMs();
    const revision = revisionOfPut(
      given.create === undefined ? this.newestRevision(name, stored, nowMs) : undefined,
      ts,
      given,
    );
    let committed: Promise<unknown>;
    const withExpiry = expiresAt !== undefined || this.mayExpire;
    if (!withExpiry) {
      committed = this.db.put(stored, encodeStoredValue(revision, value));
    } else {
      this.startExpiring();
      committed = this.db.batch(() => this.queuePut(stored, value, expiresAt, revision));
    }
    this.last = ts;
    this.queued.set(name, { ts, revision, expiresAt });
    try {
      await committed;
    } finally {
      this.settled(name, ts);
    }
    if (withExpiry) this.expiries.set(name, expiresAt);
    this.writes++;
  }

  async delete(key: Uint8Array, options?: WriteOptions): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    const ts = writeTs(options?.ts, this.last);
    const stored = storedKey(key);
    const name = nameOf(key);
    const expiredAtCall = this.expiredNow(stored);
    // IF_EXISTS makes the removal conditional on the key existing at commit; the promise
    // resolves false when it did not. The expiry goes after the value in the same synchronous
    // step (lmdb-js commits them in one transaction; were they ever split, an expiry left
    // without its key is harmless, the reverse would make the key permanent). Removing one
    // where there is none changes nothing.
    const existed = this.db.remove(stored, IF_EXISTS);
    const expiryGone = this.mayExpire ? this.expiryDb.remove(stored) : undefined;
    this.last = ts;
    this.queued.set(name, { ts, revision: undefined, expiresAt: undefined });
    let result: boolean;
    try {
      [result] = await Promise.all([existed, expiryGone]);
    } finally {
      this.settled(name, ts);
    }
    if (expiryGone !== undefined) this.expiries.delete(name);
    this.writes++;
    return result && !expiredAtCall;
  }

  async batch(ops: readonly BatchOp[], options?: WriteOptions): Promise<void> {
    this.checkOpen();
    checkBatch(ops, checkKey);
    const ts = writeTs(options?.ts, this.last);
    if (ops.length === 0) return;
    // Members share the ts, so a key's last operation in the batch is the one that counts (as
    // in the cask engine, whose records could not order two members of one key).
    const last = new Map<string, BatchOp>();
    for (const op of ops) {
      if (op.type === 'put') checkKeyVersion(op, ts);
      last.set(nameOf(op.key), op);
    }
    const nowMs = this.clock.nowMs();
    const members: BatchMember[] = [];
    for (const [name, op] of last) {
      const stored = storedKey(op.key);
      const revision =
        op.type === 'put'
          ? revisionOfPut(
              op.create === undefined ? this.newestRevision(name, stored, nowMs) : undefined,
              ts,
              op,
            )
          : undefined;
      members.push({ name, stored, op, revision });
    }
    if (ops.some((op) => op.type === 'put' && op.expiresAt !== undefined)) this.startExpiring();
    // The callback runs synchronously and queues every write into one transaction.
    const committed = this.db.batch(() => {
      for (const { stored, op, revision } of members) {
        if (op.type === 'put' && revision !== undefined)
          this.queuePut(stored, op.value, op.expiresAt, revision);
        else this.queueDelete(stored);
      }
    });
    this.last = ts;
    for (const { name, op, revision } of members) {
      this.queued.set(name, { ts, revision, expiresAt: op.type === 'put' ? op.expiresAt : undefined });
    }
    try {
      await committed;
    } finally {
      for (const { name } of members) this.settled(name, ts);
    }
    if (this.mayExpire) {
      for (const { name, op } of members)
        this.expiries.set(name, op.type === 'put' ? op.expiresAt : undefined);
    }
    this.writes++;
  }

  /** startExpiring turns on expiry reads and the active cycle (from the first expiry on). */
  private startExpiring(): void {
    this.mayExpire = true;
    this.expiryTimer ??= this.clock.every(EXPIRY_CYCLE_INTERVAL_MS, () => this.expireCycle());
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
  ): void {
    void this.db.put(stored, encodeStoredValue(revision, value));
    if (expiresAt !== undefined) void this.expiryDb.put(stored, encodeExpiry(expiresAt));
    else if (this.mayExpire) void this.expiryDb.remove(stored);
  }

  /** queueDelete queues the removal of a key with its expiry; call inside a batch. */
  private queueDelete(stored: Buffer): void {
    void this.db.remove(stored);
    if (this.mayExpire) void this.expiryDb.remove(stored);
  }

  /** settled drops a key's entry from `queued` once the write at `ts` settled, unless a later write replaced it. */
  private settled(name: string, ts: number): void {
    if (this.queued.get(name)?.ts === ts) this.queued.delete(name);
  }

  /**
   * newestRevision is a key's revision in the newest state queued (undefined: absent, deleted or
   * expired at nowMs), from which a put derives create and version.
   */
  private newestRevision(name: string, stored: Buffer, nowMs: number): Revision | undefined {
    const queued = this.queued.size === 0 ? undefined : this.queued.get(name);
    if (queued === undefined) return this.readRevision(stored, nowMs);
    if (queued.expiresAt !== undefined && isExpired(queued.expiresAt, nowMs)) return undefined;
    return queued.revision;
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

  /**
   * expireCycle deletes up to EXPIRY_CYCLE_KEYS_MAX expired keys in one write transaction,
   * checking inside it that each key still carries the expiry the index says (a write that
   * committed meanwhile wins).
   */
  private expireCycle(): void {
    if (this.expiring !== undefined || this.closed || this.expiries.size === 0) return;
    const nowMs = this.clock.nowMs();
    // The cycle's deletes take a timestamp like any write (assigned when queued, in call order).
    if (this.last >= TS_MAX) return;
    const due = this.expiries.takeDue(nowMs, EXPIRY_CYCLE_KEYS_MAX);
    if (due.length === 0) return;
    this.last = writeTs(undefined, this.last);
    const removed: ExpiryEntry[] = [];
    this.expiring = this.db
      .transaction(() => {
        for (const entry of due) {
          const stored = storedKey(Buffer.from(entry.name, 'latin1'));
          const raw = this.expiryDb.get(stored);
          if (raw === undefined || decodeExpiry(raw) !== entry.expiresAt) continue;
          void this.db.remove(stored);
          void this.expiryDb.remove(stored);
          removed.push(entry);
        }
      })
      .then(
        () => {
          for (const entry of due) this.expiries.done(entry);
          for (const entry of removed) this.expiries.deleteEntry(entry);
          this.expiredKeys += removed.length;
          this.expiring = undefined;
          if (due.length === EXPIRY_CYCLE_KEYS_MAX && !this.closed) this.expireCycle();
        },
        () => {
          // Retried by the next cycle; close() and writes report I/O failures themselves.
          for (const entry of due) this.expiries.requeue(entry);
          this.expiring = undefined;
        },
      );
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
        yield [key, userValueView(value)];
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
      expiredKeys: this.expiredKeys,
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
    this.timer?.cancel();
    this.expiryTimer?.cancel();
    try {
      await this.expiring;
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

/** nameOf is a user key as a latin1 string (one UTF-16 unit per byte), the ExpiryIndex's key. */
function nameOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function checkKey(key: Uint8Array): void {
  sharedCheckKey(key, LMDB_KEY_BYTES_MAX, 'LMDB_KEY_BYTES_MAX');
}

function checkKeyBound(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError('scan bound must be a Uint8Array');
}
