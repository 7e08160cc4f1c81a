// Db: the embedded API (`import { open } from 'cairn-db'`). A thin layer over an Engine that
// accepts strings as well as bytes (strings are UTF-8 encoded), returns Buffers, and adds
// prefix scans. Durability is the engine's: every write resolves once durable under the
// store's durability mode (default 'always': after fdatasync).
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"): keys, values and scan bounds are
// borrowed for the call only: a caller may reuse its buffers as soon as a method returns, before
// its promise settles. Every layer below copies what it keeps. Values returned are the caller's
// to keep and to change.
//
// Expiry: `set` and batch `set` operations take `ttlMs` (relative to now on the store's clock)
// or `expiresAt` (ms since the Unix epoch); `expire`, `persist`, `expiry` and `ttl` change and
// read a key's expiry. Expired keys read as absent at once and are deleted in the background.
import * as path from 'node:path';
import { type Clock, systemClock } from '../io/clock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { asBuffer, compareBytes, prefixEnd } from '../stdx/bytes.js';
import type { CaskOptions } from '../storage/cask/cask-options.js';
import { CASK_OPTION_NAMES, guardedListener, validateCaskOptions } from '../storage/cask/cask-options.js';
import type { BackupInfo, BackupSource, Engine, EngineStats, Revision } from '../storage/engine.js';
import { checkKnown, checkOneOf, checkOptionsObject, optionError, shown } from '../storage/engine-options.js';
import {
  CairnError,
  ClosedError,
  ClusterMemberDirectoryError,
  InvalidArgumentError,
  IoError,
  KeyNotFoundError,
  WrongTypeError,
} from '../storage/errors.js';
import { isExpired } from '../storage/expiry-index.js';
import { readMeta } from '../storage/meta.js';
import {
  checkDataDir,
  checkScanReverse,
  EXPIRY_OPTION_NAMES,
  expiresAtOfOptions,
  scanBound,
  textBytes,
} from '../storage/validate.js';
import { valueTypeName } from '../storage/value-type.js';
import { type CasOptions, type CasRequest, type CasResult, compareAndSwap } from '../txn/compare-and-swap.js';
import { TxnFinishedError } from '../txn/errors.js';
import {
  DEFAULT_ISOLATION,
  ISOLATION_LEVELS,
  type Isolation,
  type Mvcc,
  type MvccStats,
} from '../txn/mvcc.js';
import { DEFAULT_TXN_ATTEMPTS, retryAfterConflict } from '../txn/retry.js';
import { Snapshot, Transaction } from '../txn/transaction.js';
import { type BatchOp, WritePipeline } from '../txn/write-pipeline.js';
import { scanStrings } from './string-scan.js';

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;
export type EngineName = 'cask' | 'lmdb';
export const ENGINE_NAMES: readonly EngineName[] = ['cask', 'lmdb'];

export interface OpenOptions extends CaskOptions {
  /**
   * engine: which storage engine. Default: the one recorded in the directory, or 'cask' for a
   * new directory. Naming a different engine than the recorded one fails with IncompatibleError.
   */
  readonly engine?: EngineName;
  /**
   * versionRetentionMs: keep overwritten versions in memory at least this many milliseconds, so
   * `snapshot({ at })` can read that far back. Default 0: versions live only while a snapshot or
   * transaction that may read them is open.
   */
  readonly versionRetentionMs?: number;
}

export interface TransactionOptions {
  /** isolation: 'serializable' (default) or 'snapshot' (see docs/transactions.md). */
  readonly isolation?: Isolation;
}

export interface ManagedTransactionOptions extends TransactionOptions {
  /** maxAttempts: runs of the callback before a conflict is given up on. Default 10. */
  readonly maxAttempts?: number;
}

export interface SnapshotOptions {
  /** at: read as of this commit timestamp (time travel); default: now. */
  readonly at?: number;
}

export { DEFAULT_TXN_ATTEMPTS } from '../txn/retry.js';

/**
 * ExpiryOptions: when a key expires. At most one of the two; neither means the key never
 * expires (and a set clears any expiry the key had).
 */
export interface ExpiryOptions {
  /** ttlMs: expire this many milliseconds from now (a positive integer). */
  readonly ttlMs?: number | undefined;
  /** expiresAt: expire at this time, in ms since the Unix epoch (a non-negative integer). */
  readonly expiresAt?: number | undefined;
}

/** SetOptions: options of Db.set and batch 'set' operations. */
export type SetOptions = ExpiryOptions;

export type DbBatchOp =
  | ({ readonly type: 'set'; readonly key: Key; readonly value: Value } & SetOptions)
  | { readonly type: 'delete'; readonly key: Key };

export interface ScanOptions {
  /** start: first key included. */
  readonly start?: Key;
  /** end: first key excluded. */
  readonly end?: Key;
  /** prefix: only keys starting with these bytes (combined with start/end). */
  readonly prefix?: Key;
  /** limit: at most this many entries. */
  readonly limit?: number;
  /** reverse: descending key order. */
  readonly reverse?: boolean;
}

/**
 * The options each call takes: a misspelt one (`ttl` for `ttlMs`) is refused by name, not
 * ignored (which stored a key without its expiry, or ran a transaction at another isolation).
 */
const BATCH_SET_FIELDS: readonly string[] = ['type', 'key', 'value', ...EXPIRY_OPTION_NAMES];
const BATCH_DELETE_FIELDS: readonly string[] = ['type', 'key'];
const TRANSACTION_OPTION_NAMES: readonly string[] = ['isolation'];
const MANAGED_TRANSACTION_OPTION_NAMES: readonly string[] = ['isolation', 'maxAttempts'];
const SNAPSHOT_OPTION_NAMES: readonly string[] = ['at'];
const SCAN_OPTION_NAMES: readonly string[] = ['start', 'end', 'prefix', 'limit', 'reverse'];

/** OPEN_OPTION_NAMES: every option `open` takes (a misspelt one is refused, not ignored). */
export const OPEN_OPTION_NAMES: readonly string[] = [...CASK_OPTION_NAMES, 'engine', 'versionRetentionMs'];

/**
 * validateOpenOptions checks every option of `open` (InvalidArgumentError naming the option),
 * before anything is opened: a refused open leaves no lock and no file handle behind. The cask
 * engine's options are checked whichever engine is used (lmdb ignores those it has no use for).
 */
export function validateOpenOptions(options: OpenOptions): void {
  checkOptionsObject(options);
  checkKnown(options, OPEN_OPTION_NAMES);
  checkOneOf('engine', options.engine, ENGINE_NAMES);
  const retention = options.versionRetentionMs;
  if (
    retention !== undefined &&
    !(typeof retention === 'number' && Number.isFinite(retention) && retention >= 0)
  ) {
    throw optionError('versionRetentionMs', 'a non-negative number of milliseconds', retention);
  }
  validateCaskOptions(options);
}

/**
 * MEMBER_IDENTITY_PATH: the file that makes a directory a cluster member's (identity.ts's
 * RAFT_DIR and IDENTITY_FILE; this layer may not import the replica's). `open` refuses to write
 * such a directory: ClusterMemberDirectoryError.
 */
export const MEMBER_IDENTITY_PATH: readonly string[] = ['raft', 'member.json'];

/**
 * open opens (creating if needed) the store in `dir`. A cluster member's directory is refused
 * unless `readOnly` (ClusterMemberDirectoryError): only the member writes its store.
 */
export async function open(dir: string, options: OpenOptions = {}): Promise<Db> {
  validateOpenOptions(options);
  const fs = options.fs ?? nodeFileSystem;
  await checkDataDir(fs, dir);
  if (options.readOnly !== true && (await fs.exists(path.join(dir, ...MEMBER_IDENTITY_PATH))))
    throw new ClusterMemberDirectoryError(dir);
  const engine = options.engine ?? (await recordedEngine(dir, options)) ?? 'cask';
  let impl: Engine;
  if (engine === 'cask') {
    const { openCask } = await import('../storage/cask/cask-engine.js');
    impl = await openCask(dir, options);
  } else {
    const { openLmdb } = await import('../storage/lmdb/lmdb-engine.js');
    impl = await openLmdb(dir, options);
  }
  try {
    return new Db(path.resolve(dir), impl, options);
  } catch (err) {
    // Whatever failed, the engine is open: give back its lock and files.
    await impl.close().catch(() => {});
    throw err;
  }
}

/** recordedEngine returns the engine named in a directory's metadata, if it has any. */
export async function recordedEngine(
  dir: string,
  options: OpenOptions = {},
): Promise<EngineName | undefined> {
  const fs = options.fs ?? nodeFileSystem;
  if (!(await fs.exists(dir))) return undefined;
  const { meta } = await readMeta(fs, dir);
  const name = meta?.engine;
  return name === 'cask' || name === 'lmdb' ? name : undefined;
}

/** DbStats: the engine's statistics and the expiry cycle's (one cycle for every engine). */
export interface DbStats extends EngineStats {
  /** expiredKeys: keys the active expiry cycle deleted since open (INFO's `expired_keys`). */
  readonly expiredKeys: number;
}

export class Db {
  /** clock: the store's time source; ttlMs counts from its now, expiry is decided by it. */
  readonly clock: Clock;
  private closed = false;
  /** lastStats: stats() as close() began, answered from then on. */
  private lastStats: DbStats | undefined;

  /** isClosed: close() was called (stats() still answers then; everything else is refused). */
  get isClosed(): boolean {
    return this.closed;
  }
  private readonly engine: Engine;
  private readonly mvcc: Mvcc;
  /**
   * writes: the write pipeline (src/txn/write-pipeline.ts): every write of this Db goes through
   * it; it keeps the pending state and assigns timestamps and revisions.
   */
  private readonly writes: WritePipeline;

  constructor(
    /** dir: the absolute path of the data directory. */
    readonly dir: string,
    engine: Engine,
    options: Pick<OpenOptions, 'clock' | 'versionRetentionMs' | 'onEvent'> = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.engine = engine;
    const onEvent = guardedListener(options.onEvent);
    this.writes = new WritePipeline(engine, this.clock, {
      versionRetentionMs: options.versionRetentionMs,
      onExpiryFailure:
        onEvent === undefined
          ? undefined
          : (err) => onEvent({ type: 'write-failed', detail: { error: String(err), expiry: true } }),
    });
    this.mvcc = this.writes.mvcc;
  }

  /**
   * writeFailure: the failure that refuses every write until the store is reopened (an append
   * that could not be undone: StoreFailedError), whichever path's write met it; else undefined.
   */
  get writeFailure(): Error | undefined {
    return this.engine.writeFailure?.();
  }

  /** engineName: the storage engine underneath ('cask', 'lmdb'). */
  get engineName(): string {
    return this.engine.name;
  }

  /**
   * pipeline: the write pipeline underneath, for the servers (RESP and HTTP run their commands
   * on it: read-modify-write without lost updates, read-your-writes before durability).
   */
  get pipeline(): WritePipeline {
    return this.writes;
  }

  /**
   * begin starts a read-write transaction on a snapshot of now. Its writes take effect at
   * `commit()` (TxnConflictError if a concurrent commit interfered) or never (`rollback()`).
   */
  async begin(options: TransactionOptions = {}): Promise<Transaction> {
    this.checkOpen();
    checkOptionsObject(options);
    checkKnown(options, TRANSACTION_OPTION_NAMES);
    const isolation = options.isolation ?? DEFAULT_ISOLATION;
    if (!ISOLATION_LEVELS.includes(isolation)) {
      throw new InvalidArgumentError(
        `unknown isolation '${String(isolation)}' (expected ${ISOLATION_LEVELS.join(' or ')})`,
      );
    }
    const reg = this.mvcc.register('transaction');
    // Wait for every write before the snapshot to settle: it then shows them only if durable.
    if (!reg.settled) await this.writes.settled();
    return new Transaction(this.mvcc, reg, this.writes, isolation);
  }

  /** snapshot opens a read-only view as of now (or `at`); release() it when done. */
  async snapshot(options: SnapshotOptions = {}): Promise<Snapshot> {
    this.checkOpen();
    checkOptionsObject(options);
    checkKnown(options, SNAPSHOT_OPTION_NAMES);
    const reg = this.mvcc.register('snapshot', options.at);
    // Wait for every write before the snapshot to settle: it then shows them only if durable.
    if (!reg.settled) await this.writes.settled();
    return new Snapshot(this.mvcc, reg);
  }

  /**
   * transaction runs `fn` in a transaction and commits when it returns; a throw rolls back.
   * Conflicts are retried with jittered exponential backoff, up to `maxAttempts` runs: `fn` may
   * run more than once and must not have effects outside the transaction.
   */
  async transaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: ManagedTransactionOptions = {},
  ): Promise<T> {
    return (await this.runTransaction(fn, options)).value;
  }

  /** runTransaction is `transaction` that also returns the commit timestamp. */
  async runTransaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: ManagedTransactionOptions = {},
  ): Promise<{ readonly value: T; readonly ts: number }> {
    if (typeof fn !== 'function')
      throw new InvalidArgumentError(`transaction takes a function (tx) => ..., got ${shown(fn)}`);
    checkOptionsObject(options);
    checkKnown(options, MANAGED_TRANSACTION_OPTION_NAMES);
    const maxAttempts = options.maxAttempts ?? DEFAULT_TXN_ATTEMPTS;
    if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1)) {
      throw new InvalidArgumentError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
    }
    const isolation = options.isolation === undefined ? {} : { isolation: options.isolation };
    for (let attempt = 1; ; attempt++) {
      const tx = await this.begin(isolation);
      // The commit is the wrapper's: fn's own tx.commit() is refused (TxnManagedError).
      const commit = tx.manage();
      try {
        const value = await fn(tx);
        // fn rolled it back: nothing is committed, and the caller is told so in those words (the
        // commit below would say only "already finished").
        if (tx.finished)
          throw new TxnFinishedError(
            'transaction',
            'the transaction was rolled back inside db.transaction(fn): nothing was committed (to abort, throw from fn: the caller then gets that error)',
          );
        const { ts } = await commit();
        return { value, ts };
      } catch (err) {
        tx.rollback();
        await retryAfterConflict(err, attempt, maxAttempts);
      }
    }
  }

  /**
   * compareAndSwap runs an etcd-style compare/then/else transaction in one atomic step.
   * `options.resultBytesMax` bounds the value bytes its gets return (LimitError past it, nothing
   * written): servers pass their answer limit.
   */
  compareAndSwap(request: CasRequest, options?: CasOptions): Promise<CasResult> {
    try {
      // Checked here: a request that touches no key never reaches the engine, which would refuse it.
      this.checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return compareAndSwap(this.writes, request, options);
  }

  /**
   * txnStats: timestamps, open readers and the versions they retain. Like stats(), it still
   * answers after close (the last numbers): the metrics endpoint serves them while a server
   * shuts down.
   */
  txnStats(): MvccStats {
    return this.mvcc.stats();
  }

  /**
   * get returns the value of `key`, or undefined when it has none. A key that holds another
   * type than a string (a hash written over RESP) throws WrongTypeError: its encoding is not a
   * string value.
   */
  async get(key: Key): Promise<Buffer | undefined> {
    const value = await this.engine.get(textBytes(key));
    return value === undefined ? undefined : asBuffer(value);
  }

  /**
   * getWithExpiry returns the value of `key`, its expiry (undefined: none) and its revision
   * (commit timestamps and version count, see `revision`) in one consistent read.
   */
  async getWithExpiry(
    key: Key,
  ): Promise<{ value: Buffer; expiresAt: number | undefined; revision: Revision } | undefined> {
    const stored = await this.engine.getStored(textBytes(key));
    if (stored === undefined) return undefined;
    if (stored.valueType) throw new WrongTypeError(valueTypeName(stored.valueType));
    return { value: asBuffer(stored.value), expiresAt: stored.expiresAt, revision: stored.revision };
  }

  /**
   * revision returns `key`'s revision, etcd style: `mod`, the commit timestamp of its newest
   * write (transactions' commit timestamps are the same clock); `create`, that of the write that
   * created it; `version`, its writes since. Undefined when the key does not exist. Like get, it
   * reads durable state.
   */
  async revision(key: Key): Promise<Revision | undefined> {
    return this.engine.revisionSync(textBytes(key));
  }

  /** getString returns the value of `key` decoded as UTF-8, or undefined. */
  async getString(key: Key): Promise<string | undefined> {
    return (await this.get(key))?.toString('utf8');
  }

  /** require returns the value of `key` or throws KeyNotFoundError. */
  async require(key: Key): Promise<Buffer> {
    const bytes = textBytes(key);
    const value = await this.engine.get(bytes);
    if (value === undefined) throw new KeyNotFoundError(bytes);
    return asBuffer(value);
  }

  has(key: Key): Promise<boolean> {
    try {
      return this.engine.has(textBytes(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** set stores `value` under `key`, with an expiry if `options` give one; resolves once durable. */
  set(key: Key, value: Value, options?: SetOptions): Promise<void> {
    let expiresAt: number | undefined;
    let k: Uint8Array;
    let v: Uint8Array;
    try {
      checkOptionsObject(options);
      if (options !== undefined) checkKnown(options, EXPIRY_OPTION_NAMES);
      expiresAt = this.expiresAtOf(options);
      k = textBytes(key);
      v = textBytes(value);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writes.put(k, v, expiresAt);
  }

  /**
   * expire gives an existing key a new expiry (`options` must name one; a time already past
   * deletes the key). Resolves to whether the key existed, once durable. The value is
   * rewritten with its new expiry: an expiry change costs one write of the value.
   */
  async expire(key: Key, options: ExpiryOptions): Promise<boolean> {
    checkOptionsObject(options);
    if (options !== undefined) checkKnown(options, EXPIRY_OPTION_NAMES);
    const expiresAt = this.expiresAtOf(options);
    if (expiresAt === undefined) throw new InvalidArgumentError('expire needs ttlMs or expiresAt');
    const past = isExpired(expiresAt, this.clock.nowMs());
    // The value is rewritten with its type: an expiry change keeps a hash a hash.
    const { result, durable } = this.writes.update(textBytes(key), (current, _expiresAt, valueType) => {
      if (current === undefined) return { result: false };
      return past ? { result: true, write: null } : { result: true, write: current, expiresAt, valueType };
    });
    await durable;
    return result;
  }

  /** persist removes a key's expiry; resolves to whether it had one, once durable. */
  async persist(key: Key): Promise<boolean> {
    const { result, durable } = this.writes.update(textBytes(key), (current, expiresAt, valueType) =>
      current === undefined || expiresAt === undefined
        ? { result: false }
        : { result: true, write: current, valueType },
    );
    await durable;
    return result;
  }

  /** expiry returns when `key` expires (ms since the epoch), null if never, undefined if it does not exist. */
  async expiry(key: Key): Promise<number | null | undefined> {
    const latest = this.writes.readLatest(textBytes(key));
    await latest.durable;
    if (latest.value === undefined) return undefined;
    return latest.expiresAt ?? null;
  }

  /** ttl returns the milliseconds `key` has left, null if it never expires, undefined if it does not exist. */
  async ttl(key: Key): Promise<number | null | undefined> {
    const at = await this.expiry(key);
    return at === undefined || at === null ? at : Math.max(0, at - this.clock.nowMs());
  }

  /** delete removes `key`; resolves to whether it existed, once durable. */
  delete(key: Key): Promise<boolean> {
    try {
      return this.writes.delete(textBytes(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** batch applies all operations atomically, in order; resolves once durable. */
  batch(ops: readonly DbBatchOp[]): Promise<void> {
    // Checked here: an empty batch never reaches the engine, which would refuse it.
    if (this.closed) return Promise.reject(new ClosedError());
    if (!Array.isArray(ops))
      return Promise.reject(new InvalidArgumentError('batch takes an array of operations'));
    let converted: BatchOp[];
    try {
      converted = ops.map((op) => this.toBatchOp(op));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writes.batch(converted);
  }

  private toBatchOp(op: DbBatchOp): BatchOp {
    if (op === null || typeof op !== 'object' || Array.isArray(op))
      throw new InvalidArgumentError(`a batch operation must be an object, got ${shown(op)}`);
    if (op.type === 'set') checkKnown(op, BATCH_SET_FIELDS);
    else if (op.type === 'delete') checkKnown(op, BATCH_DELETE_FIELDS);
    if (op.type === 'set') {
      const expiresAt = this.expiresAtOf(op);
      return expiresAt === undefined
        ? { type: 'put', key: textBytes(op.key), value: textBytes(op.value) }
        : { type: 'put', key: textBytes(op.key), value: textBytes(op.value), expiresAt };
    }
    if (op.type === 'delete') return { type: 'delete', key: textBytes(op.key) };
    throw new InvalidArgumentError(
      `unknown batch operation type '${String((op as { type: unknown }).type)}'`,
    );
  }

  /** expiresAtOf turns ExpiryOptions into an absolute time on the store's clock, validating them. */
  private expiresAtOf(options: ExpiryOptions | undefined): number | undefined {
    return expiresAtOfOptions(options, () => this.clock.nowMs());
  }

  /**
   * scan yields [key, value] pairs in key order. It is not a snapshot: each value is the
   * newest at the moment it is yielded (use transactions for snapshots). It yields strings only:
   * keys holding another type (hashes written over RESP) are skipped, as `get` refuses them.
   */
  scan(options: ScanOptions = {}): AsyncIterableIterator<[Buffer, Buffer]> {
    checkOptionsObject(options);
    checkKnown(options, SCAN_OPTION_NAMES);
    checkScanReverse(options.reverse);
    let start = options.start === undefined ? undefined : scanBound('start', options.start);
    let end = options.end === undefined ? undefined : scanBound('end', options.end);
    if (options.prefix !== undefined) {
      const prefix = scanBound('prefix', options.prefix);
      if (start === undefined || compareBytes(prefix, start) > 0) start = prefix;
      const upper = prefixEnd(prefix);
      if (upper !== undefined && (end === undefined || compareBytes(upper, end) < 0)) end = upper;
    }
    // The bounds are copied now (ownScanRange inside the engine's scan copies them again, at
    // each call): the generator's body runs only at the first next().
    return scanStrings(this.engine, {
      start: start === undefined ? undefined : Uint8Array.from(start),
      end: end === undefined ? undefined : Uint8Array.from(end),
      limit: options.limit,
      reverse: options.reverse,
    });
  }

  /** flush makes every acknowledged write durable (matters for durability 'interval' and 'never'). */
  flush(): Promise<void> {
    return this.engine.flush();
  }

  /** compact reclaims the space of overwritten and deleted values now. */
  compact(): Promise<void> {
    return this.engine.compact();
  }

  stats(): DbStats {
    // After close() (and while closing) the numbers taken as the engine began to close: the
    // engine refuses stats() from then on, and the metrics endpoint serves them while a server
    // shuts down (README, "Embedded API").
    if (this.closed && this.lastStats !== undefined) return this.lastStats;
    return { ...this.engine.stats(), expiredKeys: this.writes.stats().expiredKeys };
  }

  /**
   * backup writes a consistent copy of the live store into `dir`, which must not exist or be
   * empty, and which `open(dir)` opens as an ordinary store: it holds every write acknowledged
   * before the call, none by halves, and nothing above `lastTs` of the result. Writers are not
   * paused; sealed files are hard-linked where the file system allows (docs/backup.md).
   */
  async backup(dir: string): Promise<BackupInfo> {
    this.checkOpen();
    if (typeof dir !== 'string' || dir === '')
      throw new InvalidArgumentError('backup needs a directory path');
    if (this.engine.backup === undefined) {
      throw new InvalidArgumentError(
        `the ${this.engine.name} engine cannot be backed up online; copy its directory while it is closed`,
      );
    }
    const target = path.resolve(dir);
    try {
      return await this.engine.backup(target);
    } catch (err) {
      // A file-system error of the copy (ENOSPC, ENOTDIR, EACCES) came out as a bare Node error.
      if (err instanceof CairnError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new IoError(`the backup into ${target} failed: ${message}`, err);
    }
  }

  /**
   * backupSource cuts a backup as `backup` does but leaves it open, for writing elsewhere (the
   * snapshot archive of `cairn snapshot save` and GET /v1/snapshot); close it when done.
   */
  async backupSource(): Promise<BackupSource> {
    this.checkOpen();
    if (this.engine.backupSource === undefined) {
      throw new InvalidArgumentError(
        `the ${this.engine.name} engine cannot be backed up online; copy its directory while it is closed`,
      );
    }
    return this.engine.backupSource();
  }

  /**
   * close flushes, fsyncs and releases the directory lock. The engine is closed (and the lock
   * given back) even when stopping the expiry cycle throws (an injected clock's timer): the
   * error is then reported after it.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      try {
        this.lastStats = this.stats();
      } catch {
        // An engine that cannot answer (it failed) leaves stats() to throw after close.
      }
    }
    this.closed = true;
    try {
      this.writes.close();
    } finally {
      await this.engine.close();
    }
  }

  /** checkOpen: a call after close() is refused (the engine refuses its own calls the same way). */
  private checkOpen(): void {
    if (this.closed) throw new ClosedError();
  }
}
