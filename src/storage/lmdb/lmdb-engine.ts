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
// Caveats: `options.fs` is used for the metadata only; lmdb does its own file I/O, so fault
// injection does not reach it. compact() is a no-op: LMDB reuses freed pages in place.
import * as path from 'node:path';
import { type Database, IF_EXISTS, open as openLmdbEnv, type RootDatabase } from 'lmdb';
import type { Clock, Timer } from '../../io/clock.js';
import { systemClock } from '../../io/clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { compareBytes, prefixEnd } from '../../stdx/bytes.js';
import { DirLock } from '../dir-lock.js';
import type {
  BatchOp,
  Durability,
  Engine,
  EngineStats,
  Entry,
  PutOptions,
  ScanRange,
  Stored,
} from '../engine.js';
import { DEFAULT_DURABILITY, DEFAULT_SYNC_INTERVAL_MS, type EngineOptions } from '../engine-options.js';
import { ClosedError, InvalidArgumentError } from '../errors.js';
import {
  EXPIRY_CYCLE_INTERVAL_MS,
  EXPIRY_CYCLE_KEYS_MAX,
  type ExpiryEntry,
  ExpiryIndex,
  isExpired,
} from '../expiry-index.js';
import { FORMAT_EXPIRY, loadOrCreateMeta, writeMeta } from '../meta.js';
import { checkBatch, checkExpiresAt, checkValue, checkKey as sharedCheckKey } from '../validate.js';

export const LMDB_ENGINE_NAME = 'lmdb';
/** LMDB_SUBDIR: lmdb's own files (data.mdb, lock.mdb) live in this subdirectory of the store. */
export const LMDB_SUBDIR = 'lmdb';
/** KEY_PREFIX: the byte stored before every key (see the header: makes the empty key storable). */
const KEY_PREFIX = 0x01;
/** LMDB_STORED_KEY_BYTES_MAX: lmdb-js's longest key at the default page size (its DEFAULT_MAX_KEY_SIZE). */
const LMDB_STORED_KEY_BYTES_MAX = 1978;
/** LMDB_KEY_BYTES_MAX: the longest user key this engine takes; the prefix byte uses one. */
export const LMDB_KEY_BYTES_MAX = LMDB_STORED_KEY_BYTES_MAX - 1;
/** Stored keys run from [KEY_PREFIX] (the empty user key) up to, excluding, [KEY_PREFIX + 1]. */
const STORED_KEYS_END = Buffer.from([KEY_PREFIX + 1]);
/** EXPIRY_DB_NAME: the named lmdb database of expiry times; it is one record of the root database. */
const EXPIRY_DB_NAME = 'cairn-expiry';
/** NAMED_DBS: records of the root database that are named databases, not keys (stats() subtracts them). */
const NAMED_DBS = 1;
const U32 = 0x1_0000_0000;
/** SCAN_SKIPS_PER_TURN: expired entries a scan skips before it lets the event loop run. */
const SCAN_SKIPS_PER_TURN = 4096;

/** The parts of lmdb-js we use that its type declarations leave out. */
interface LmdbEnvSync {
  /** sync runs mdb_env_sync(force) on a worker thread and calls back when done. */
  sync(callback: (error?: unknown) => void): void;
}

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

type Db = RootDatabase<Buffer, Buffer>;
type ExpiryDb = Database<Buffer, Buffer>;

export async function openLmdb(dir: string, options: EngineOptions = {}): Promise<Engine> {
  const fs = options.fs ?? nodeFileSystem;
  const clock = options.clock ?? systemClock;
  const durability = options.durability ?? DEFAULT_DURABILITY;
  const syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  if (!Number.isFinite(syncIntervalMs) || syncIntervalMs <= 0) {
    throw new InvalidArgumentError(`syncIntervalMs must be a positive number, got ${syncIntervalMs}`);
  }

  await fs.mkdir(dir);
  const lock = await DirLock.acquire(dir);
  try {
    const names = await fs.readdir(dir);
    // "Empty" means no lmdb files yet; unrelated files may share the directory (kvs runs in the
    // current directory), but lmdb files without metadata are never started over.
    const isEmpty = !names.includes(LMDB_SUBDIR);
    const { meta } = await loadOrCreateMeta(fs, dir, LMDB_ENGINE_NAME, clock.nowMs(), isEmpty);
    // Opening creates the expiry database (a record of the root database that a format-1 build
    // would count as a key), so the store is raised to FORMAT_EXPIRY first.
    if (meta.format < FORMAT_EXPIRY) {
      await writeMeta(fs, dir, { ...meta, format: FORMAT_EXPIRY, generation: meta.generation + 1 });
    }
    const db: Db = openLmdbEnv<Buffer, Buffer>(path.join(dir, LMDB_SUBDIR), {
      keyEncoding: 'binary',
      encoding: 'binary',
      ...(durability === 'always' ? { overlappingSync: false } : { noSync: true }),
    });
    const expiryDb: ExpiryDb = db.openDB<Buffer, Buffer>(EXPIRY_DB_NAME, {
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    return new LmdbEngine(
      db,
      expiryDb,
      lock,
      durability,
      durability === 'interval' ? syncIntervalMs : undefined,
      clock,
    );
  } catch (err) {
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
  /** expiries: committed expiry times, for the active cycle and stats (reads use expiryDb). */
  private readonly expiries = new ExpiryIndex();
  /** mayExpire: the store has held an expiry since open; until then reads skip expiryDb. */
  private mayExpire: boolean;
  /** expiryTimer: runs the active expiry cycle; started once the store holds an expiry. */
  private expiryTimer: Timer | undefined;
  /** expiring: the active expiry cycle's transaction in flight, if any. */
  private expiring: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly expiryDb: ExpiryDb,
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
    // lmdb-js returns a fresh copy for the binary encoding. Both reads run in this one
    // synchronous step, so they see the same committed state.
    const value = this.db.get(stored);
    if (value === undefined || this.expiredNow(stored)) return undefined;
    return value;
  }

  async has(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    return this.db.doesExist(stored) && !this.expiredNow(stored);
  }

  async getStored(key: Uint8Array): Promise<Stored | undefined> {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    const value = this.db.get(stored);
    if (value === undefined) return undefined;
    const expiresAt = this.readExpiry(stored);
    if (expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs())) return undefined;
    return { value, expiresAt };
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
    const stored = storedKey(key);
    // Nothing may be awaited before the write is queued: queue order is call order.
    if (expiresAt === undefined && !this.mayExpire) {
      await this.db.put(stored, copyValue(value));
    } else {
      this.startExpiring();
      await this.db.batch(() => this.queuePut(stored, value, expiresAt));
      this.expiries.set(nameOf(key), expiresAt);
    }
    this.writes++;
  }

  async delete(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    const stored = storedKey(key);
    const expiredAtCall = this.expiredNow(stored);
    // IF_EXISTS makes the removal conditional on the key existing at commit; the promise
    // resolves false when it did not. The expiry goes after the value in the same event turn
    // (lmdb-js commits both in one transaction; were they ever split, an expiry left without
    // its key is harmless, the reverse would make the key permanent).
    const existed = this.db.remove(stored, IF_EXISTS);
    const expiryGone = this.mayExpire ? this.expiryDb.remove(stored) : undefined;
    const result = await existed;
    if (expiryGone !== undefined) {
      await expiryGone;
      this.expiries.delete(nameOf(key));
    }
    this.writes++;
    return result && !expiredAtCall;
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    this.checkOpen();
    checkBatch(ops, checkKey);
    if (ops.length === 0) return;
    if (ops.some((op) => op.type === 'put' && op.expiresAt !== undefined)) this.startExpiring();
    // The callback runs synchronously and queues every write into one transaction, in order.
    await this.db.batch(() => {
      for (const op of ops) {
        if (op.type === 'put') this.queuePut(storedKey(op.key), op.value, op.expiresAt);
        else {
          void this.db.remove(storedKey(op.key));
          if (this.mayExpire) void this.expiryDb.remove(storedKey(op.key));
        }
      }
    });
    if (this.mayExpire) {
      for (const op of ops) this.expiries.set(nameOf(op.key), op.type === 'put' ? op.expiresAt : undefined);
    }
    this.writes++;
  }

  /** startExpiring turns on expiry reads and the active cycle (from the first expiry on). */
  private startExpiring(): void {
    this.mayExpire = true;
    this.expiryTimer ??= this.clock.every(EXPIRY_CYCLE_INTERVAL_MS, () => this.expireCycle());
  }

  /** queuePut queues a value and its expiry (or the removal of an old one); call inside a batch. */
  private queuePut(stored: Buffer, value: Uint8Array, expiresAt: number | undefined): void {
    void this.db.put(stored, copyValue(value));
    if (expiresAt !== undefined) void this.expiryDb.put(stored, encodeExpiry(expiresAt));
    else if (this.mayExpire) void this.expiryDb.remove(stored);
  }

  /** readExpiry reads a stored key's committed expiry (undefined: none). */
  private readExpiry(stored: Buffer): number | undefined {
    if (!this.mayExpire) return undefined;
    const raw = this.expiryDb.get(stored);
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
    const due = this.expiries.takeDue(nowMs, EXPIRY_CYCLE_KEYS_MAX);
    if (due.length === 0) return;
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

  async *scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
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
    // Iterated by hand so that a scan outliving close() fails with ClosedError before lmdb-js
    // touches the closed environment.
    const iter = entries[Symbol.iterator]();
    try {
      for (;;) {
        this.checkOpen();
        const next = iter.next();
        if (next.done === true) return;
        const { key: stored, value } = next.value;
        // Keys and values from a binary lmdb-js range are fresh copies; the key view drops the prefix.
        const key = stored.subarray(1);
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
        yield [key, value];
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
      keys: env.entryCount - NAMED_DBS - expired,
      expires: this.expiries.size - expired,
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

function encodeExpiry(expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32LE(expiresAt % U32, 0);
  out.writeUInt32LE(Math.floor(expiresAt / U32), 4);
  return out;
}

function decodeExpiry(raw: Buffer): number {
  return raw.readUInt32LE(4) * U32 + raw.readUInt32LE(0);
}

function storedKey(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  out[0] = KEY_PREFIX;
  out.set(key, 1);
  return out;
}

/**
 * copyValue hands lmdb a private copy: lmdb-js reads a value's bytes by address on its write
 * thread after put() returns, so a caller reusing its buffer must not change what is written.
 */
function copyValue(value: Uint8Array): Buffer {
  return Buffer.from(value);
}

function checkKey(key: Uint8Array): void {
  sharedCheckKey(key, LMDB_KEY_BYTES_MAX, 'LMDB_KEY_BYTES_MAX');
}

function checkKeyBound(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError('scan bound must be a Uint8Array');
}
