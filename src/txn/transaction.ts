// Snapshot and Transaction: the read-only view and the read-write transaction of
// docs/transactions.md. A Snapshot reads the store as of its start timestamp; a Transaction adds
// buffered writes (read back by its own reads and scans) and, at commit, validation plus one
// atomic batch.
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"): keys, values and scan bounds passed in
// are borrowed; the buffered writes and the scan bounds are copies made at the call (a scan's
// body runs only at its first next()). Values handed out are copies too: the buffered writes,
// the remembered reads and the version history are never given to a caller to write into.
import { assert } from '../stdx/assert.js';
import { asBuffer, compareBytes, copyBytes, prefixEnd } from '../stdx/bytes.js';
import { keyFromString, keyString } from '../stdx/key-string.js';
import { checkKnown, checkOptionsObject } from '../storage/engine-options.js';
import { InvalidArgumentError, WrongTypeError } from '../storage/errors.js';
import {
  checkExpiresAt,
  checkKey,
  checkScanReverse,
  checkValue,
  EXPIRY_OPTION_NAMES,
  expiresAtOfOptions,
  scanBound,
  textBytes,
} from '../storage/validate.js';
import { checkValueType, ValueType, valueTypeName } from '../storage/value-type.js';
import { TxnConflictError, TxnFinishedError, TxnManagedError } from './errors.js';
import {
  ABSENT,
  type Isolation,
  type KeyRange,
  type Mvcc,
  type Registration,
  type SnapshotRead,
} from './mvcc.js';
import type { BatchOp, WritePipeline } from './write-pipeline.js';

export type TxnKey = string | Uint8Array;
export type TxnValue = string | Uint8Array;

export interface TxnScanOptions {
  /** start: first key included. */
  readonly start?: TxnKey;
  /** end: first key excluded. */
  readonly end?: TxnKey;
  /** prefix: only keys starting with these bytes (combined with start/end). */
  readonly prefix?: TxnKey;
  /** limit: at most this many entries. */
  readonly limit?: number;
  /** reverse: descending key order. */
  readonly reverse?: boolean;
}

/** CommitResult: the commit timestamp (the snapshot's own for a transaction that wrote nothing). */
export interface CommitResult {
  readonly ts: number;
}

/** TXN_SCAN_OPTION_NAMES: the options of a transaction's or snapshot's scan. */
const TXN_SCAN_OPTION_NAMES: readonly string[] = ['start', 'end', 'prefix', 'limit', 'reverse'];

interface Bounds {
  readonly start: Buffer | undefined;
  readonly end: Buffer | undefined;
}

/** TypedEntry: a scanned key, its value and the value's type (storage/value-type.ts; 0: a string). */
export type TypedEntry = [key: Buffer, value: Buffer, valueType: number];

/** pairs drops the type of each entry (scan's [key, value] pairs). */
async function* pairs(entries: AsyncIterableIterator<TypedEntry>): AsyncIterableIterator<[Buffer, Buffer]> {
  // An early return() here reaches `entries` through for-await.
  for await (const [k, v] of entries) yield [k, v];
}

/** bounds computes a scan's [start, end) from its options, as copies of the borrowed bytes. */
function bounds(options: TxnScanOptions): Bounds {
  // A misspelt option (`prefx`) is refused, as Db.scan refuses it: ignored, it scanned everything.
  checkOptionsObject(options);
  checkKnown(options, TXN_SCAN_OPTION_NAMES);
  let start = options.start === undefined ? undefined : copyBytes(scanBound('start', options.start));
  let end = options.end === undefined ? undefined : copyBytes(scanBound('end', options.end));
  if (options.prefix !== undefined) {
    const prefix = copyBytes(scanBound('prefix', options.prefix));
    if (start === undefined || compareBytes(prefix, start) > 0) start = prefix;
    const upper = prefixEnd(prefix);
    if (upper !== undefined && (end === undefined || compareBytes(upper, end) < 0)) end = asBuffer(upper);
  }
  return { start, end };
}

function copy(value: Buffer | undefined): Buffer | undefined {
  return value === undefined ? undefined : Buffer.from(value);
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new InvalidArgumentError(`scan limit must be a non-negative integer, got ${limit}`);
  }
}

/** CoveredRange: a KeyRange a running scan widens in place (Transaction.scanBounded). */
interface CoveredRange {
  start: string | undefined;
  end: string | undefined;
  endInclusive: boolean;
}

/** ReadEntry: a value read (undefined: absent) and its expiry (undefined: none). */
interface ReadEntry {
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** valueType: storage/value-type.ts; 0 for a string (and when absent). */
  readonly valueType: number;
}

/** Snapshot: a read-only view of the store as of `ts`. Release it when done (it pins versions). */
export class Snapshot {
  protected done = false;

  constructor(
    protected readonly mvcc: Mvcc,
    protected readonly reg: Registration,
    private readonly what = 'snapshot',
  ) {}

  /** ts: the snapshot's timestamp: it sees exactly the commits at or before it. */
  get ts(): number {
    return this.reg.startTs;
  }

  get finished(): boolean {
    return this.done;
  }

  /**
   * get returns the value of `key` as the snapshot sees it. A key holding another type than a
   * string (a hash written over RESP) throws WrongTypeError, as Db.get does: its encoding is not
   * a string value.
   */
  async get(key: TxnKey): Promise<Buffer | undefined> {
    return this.getSync(key);
  }

  /**
   * getSync is get for callers that cannot await: a Lua script inside EXEC or TXN.BEGIN runs as
   * one synchronous step (src/server/resp/lua/script-store.ts). Reads are synchronous anyway.
   */
  getSync(key: TxnKey): Buffer | undefined {
    this.checkActive();
    const bytes = textBytes(key);
    checkKey(bytes);
    const read = this.readEntry(bytes, keyString(bytes));
    if (read.value !== undefined && read.valueType !== ValueType.STRING)
      throw new WrongTypeError(valueTypeName(read.valueType));
    // A copy: a value from the version history is shared with every other reader.
    return copy(read.value);
  }

  /**
   * getAnyType is get for a value of any type, encoded as stored (the server's key stores, which
   * check the type themselves with valueTypeOf).
   */
  getAnyType(key: TxnKey): Buffer | undefined {
    this.checkActive();
    const bytes = textBytes(key);
    checkKey(bytes);
    return this.readKey(bytes, keyString(bytes));
  }

  async getString(key: TxnKey): Promise<string | undefined> {
    return (await this.get(key))?.toString('utf8');
  }

  /**
   * expiry returns when `key` expires (ms since the epoch) as the snapshot sees it, null when it
   * never does, undefined when it does not exist (Db.expiry's cases). A version keeps the expiry
   * it was written with, and one whose expiry has passed reads as absent.
   */
  async expiry(key: TxnKey): Promise<number | null | undefined> {
    this.checkActive();
    const bytes = textBytes(key);
    checkKey(bytes);
    const read = this.readEntry(bytes, keyString(bytes));
    return read.value === undefined ? undefined : (read.expiresAt ?? null);
  }

  async has(key: TxnKey): Promise<boolean> {
    return this.getAnyType(key) !== undefined;
  }

  /**
   * scan yields [key, value] pairs of string values in key order, as of the snapshot. Keys
   * holding another type (a hash written over RESP) are skipped, as Db.scan skips them and Db.get
   * refuses them: their values are encodings, not what was written. The limit counts the pairs
   * yielded.
   */
  scan(options: TxnScanOptions = {}): AsyncIterableIterator<[Buffer, Buffer]> {
    // Bounds are copied now: the generator's body runs only at the first next().
    return pairs(this.scanBounded(options, bounds(options), true));
  }

  /**
   * scanTyped yields [key, value, valueType] for keys of every type (storage/value-type.ts; a
   * hash's value is its encoding), for callers that list every key, as the RESP key stores do
   * for KEYS, SCAN and DBSIZE. The limit counts every entry.
   */
  scanTyped(options: TxnScanOptions = {}): AsyncIterableIterator<TypedEntry> {
    return this.scanBounded(options, bounds(options), false);
  }

  /** scanBounded: scan and scanTyped; `stringsOnly` skips other types before the limit counts. */
  protected async *scanBounded(
    options: TxnScanOptions,
    { start, end }: Bounds,
    stringsOnly: boolean,
  ): AsyncIterableIterator<TypedEntry> {
    this.checkActive();
    checkLimit(options.limit);
    checkScanReverse(options.reverse);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit === 0) return;
    let yielded = 0;
    for await (const [k, v, type] of this.mvcc.scanAt(this.reg.startTs, {
      start,
      end,
      // Skipped types would spend a limit passed down: the count is kept here instead.
      limit: stringsOnly ? undefined : options.limit,
      reverse: options.reverse,
    })) {
      this.checkActive();
      if (stringsOnly && type !== ValueType.STRING) continue;
      yield [keyFromString(k), v, type];
      if (++yielded >= limit) return;
    }
  }

  /** release unpins the versions this snapshot reads; using it afterwards fails. */
  release(): void {
    if (this.done) return;
    this.done = true;
    this.mvcc.release(this.reg);
  }

  protected readKey(key: Uint8Array, k: string): Buffer | undefined {
    // A copy: a value from the version history is shared with every other reader.
    return copy(this.readEntry(key, k).value);
  }

  /** readEntry reads a key's value and expiry at the snapshot (shared: callers copy the value). */
  protected readEntry(key: Uint8Array, k: string): ReadEntry {
    return this.mvcc.read(key, k, this.reg.startTs);
  }

  protected checkActive(): void {
    if (this.done) throw new TxnFinishedError(this.what);
    if (this.mvcc.isRetired(this.reg)) {
      // A cluster member's leadership or engine changed since it began (Mvcc.retireReaders,
      // src/replica/member-readers.ts).
      throw new TxnConflictError(
        `the cluster's leader changed, or a snapshot from the leader replaced this member's state, since this ${this.what} began; retry it`,
      );
    }
  }
}

/** Transaction: reads at its snapshot, buffers writes, validates and commits atomically. */
export class Transaction extends Snapshot {
  /** writes: buffered writes by key (undefined value: delete), in first-write order. */
  private readonly writes = new Map<
    string,
    { readonly key: Buffer; value: Buffer | undefined; expiresAt: number | undefined; valueType: number }
  >();
  /**
   * reads: keys read from the snapshot (present or absent) and what was read: serializable
   * validation checks the keys; repeated reads reuse the values; the commit hands value, expiry
   * and revision (read from the engine, without an expiry) on to the write pipeline, sparing it
   * a lookup per written key.
   */
  private readonly reads = new Map<string, SnapshotRead>();
  private readonly ranges: KeyRange[] = [];

  constructor(
    mvcc: Mvcc,
    reg: Registration,
    private readonly pipeline: WritePipeline,
    readonly isolation: Isolation,
  ) {
    super(mvcc, reg, 'transaction');
  }

  private enqueuedTs: number | undefined;

  /**
   * committedTs: set synchronously by `commit()` once its batch is enqueued (the snapshot's ts
   * for a transaction that wrote nothing): from then on later commands see its writes, and only
   * durability is pending. Undefined while validation failed or the store refused the batch.
   */
  get committedTs(): number | undefined {
    return this.enqueuedTs;
  }

  /**
   * writesChanged counts buffered writes, so that a scan in progress sees the writes made
   * between its steps (scanBounded re-reads the keys ahead of it when this moves).
   */
  private writesChanged = 0;

  /** writeCount: buffered writes (distinct keys). */
  get writeCount(): number {
    return this.writes.size;
  }

  /**
   * set buffers a write; it takes effect at commit. `expiry` gives the key an expiry, as Db.set's
   * options do (`{ ttlMs }`, counted from now on the store's clock, or `{ expiresAt }`), or as a
   * time in ms since the epoch; without it the key has none (like Db.set).
   */
  set(
    key: TxnKey,
    value: TxnValue,
    expiry?: number | { readonly ttlMs?: number | undefined; readonly expiresAt?: number | undefined },
    valueType?: number,
  ): void {
    this.checkActive();
    const k = textBytes(key);
    const v = textBytes(value);
    checkKey(k);
    checkValue(v);
    let expiresAt: number | undefined;
    if (typeof expiry === 'object' && expiry !== null) {
      checkOptionsObject(expiry);
      checkKnown(expiry, EXPIRY_OPTION_NAMES);
      expiresAt = expiresAtOfOptions(expiry, () => this.pipeline.clock.nowMs());
    } else {
      expiresAt = expiry;
      checkExpiresAt(expiresAt);
    }
    checkValueType(valueType);
    // Copies: the caller may reuse its buffers before commit.
    this.buffer(copyBytes(k), copyBytes(v), expiresAt, valueType ?? 0);
  }

  /**
   * valueTypeOf: the type of `key`'s value as this transaction sees it (storage/value-type.ts;
   * 0 for a string or an absent key). A read like `get`, synchronous like expiryOf.
   */
  valueTypeOf(key: TxnKey): number {
    this.checkActive();
    const bytes = textBytes(key);
    checkKey(bytes);
    const read = this.readEntry(bytes, keyString(bytes));
    return read.value === undefined ? 0 : read.valueType;
  }

  /**
   * expiryOf: the expiry of `key` as this transaction sees it (its own write's, else the
   * snapshot's), undefined when the key has none or does not exist. A read like `get` (it joins
   * the read set), synchronous for read-modify-write commands that read value and expiry together.
   */
  expiryOf(key: TxnKey): number | undefined {
    this.checkActive();
    const bytes = textBytes(key);
    checkKey(bytes);
    const read = this.readEntry(bytes, keyString(bytes));
    return read.value === undefined ? undefined : read.expiresAt;
  }

  /** delete buffers the removal of `key`. */
  delete(key: TxnKey): void {
    this.checkActive();
    const k = textBytes(key);
    checkKey(k);
    // A copy: the caller may reuse its buffer before commit.
    this.buffer(copyBytes(k), undefined, undefined, 0);
  }

  protected override async *scanBounded(
    options: TxnScanOptions,
    { start, end }: Bounds,
    stringsOnly: boolean,
  ): AsyncIterableIterator<TypedEntry> {
    this.checkActive();
    checkLimit(options.limit);
    checkScanReverse(options.reverse);
    const reverse = options.reverse === true;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const startK = start === undefined ? undefined : keyString(start);
    const endK = end === undefined ? undefined : keyString(end);
    // Own writes in range, in scan order, ahead of `after` (the last key the scan passed). A
    // write made while the scan runs (between two next() calls) is seen when its key is still
    // ahead: the scan reads its own writes as get() does, never a key the transaction deleted.
    const ownAhead = (after: string | undefined): string[] => {
      const keys = [...this.writes.keys()].filter(
        (k) =>
          (startK === undefined || k >= startK) &&
          (endK === undefined || k < endK) &&
          (after === undefined || (reverse ? k < after : k > after)),
      );
      keys.sort();
      if (reverse) keys.reverse();
      return keys;
    };
    let own = ownAhead(undefined);
    let ownAsOf = this.writesChanged;
    let passed: string | undefined;
    let i = 0;
    let yielded = 0;
    let complete = false;
    // What the caller has seen, widened as each entry is yielded (not when the generator ends: a
    // caller may stop calling next() without return(), and a throw must not cover the rest).
    let covered: CoveredRange | undefined;
    const snapshot = this.mvcc.scanAt(this.reg.startTs, { start, end, reverse });
    try {
      let next = await snapshot.next();
      // advance: the snapshot's entry was used; the next one is read when the loop resumes, not
      // before this one is yielded, so that a damaged record after it (CorruptionError) stops
      // the scan at the damaged key instead of one entry before it.
      let advance = false;
      while (yielded < limit) {
        if (advance) {
          next = await snapshot.next();
          advance = false;
        }
        if (this.writesChanged !== ownAsOf) {
          own = ownAhead(passed);
          ownAsOf = this.writesChanged;
          i = 0;
        }
        const sk = next.done === true ? undefined : next.value[0];
        const ok = own[i];
        if (sk === undefined && ok === undefined) {
          complete = true;
          break;
        }
        const ownFirst = ok !== undefined && (sk === undefined || (reverse ? ok >= sk : ok <= sk));
        let k: string;
        let value: Buffer | undefined;
        let valueType = 0;
        if (ownFirst) {
          k = ok;
          const write = this.writes.get(ok);
          value = copy(write?.value);
          valueType = write?.valueType ?? 0;
          i++;
          if (sk === ok) advance = true;
        } else {
          k = sk!;
          value = next.done === true ? undefined : next.value[1];
          valueType = next.done === true ? 0 : next.value[2];
          advance = true;
        }
        passed = k;
        this.checkActive();
        if (value === undefined || (stringsOnly && valueType !== ValueType.STRING)) continue;
        yielded++;
        // Covered before the caller sees the entry, since the generator may never resume: from
        // the range's start in scan order through `k`. A write there changes what the caller
        // saw (the key itself, or a phantom ahead of it); one past `k` the scan never looked at.
        // One object per scan, its moving bound updated in place: no allocation per entry.
        if (covered === undefined) {
          covered = reverse
            ? { start: k, end: endK, endInclusive: false }
            : { start: startK, end: k, endInclusive: true };
          this.ranges.push(covered);
        } else if (reverse) covered.start = k;
        else covered.end = k;
        yield [keyFromString(k), value, valueType];
      }
    } finally {
      await snapshot.return(undefined);
    }
    // Exhausted: the caller learns that nothing else is in the range, all of it is read. Not on
    // a throw (the finally's included), nor when the limit stopped the scan before its end.
    if (complete) {
      if (covered === undefined) this.ranges.push({ start: startK, end: endK });
      else {
        covered.start = startK;
        covered.end = endK;
        covered.endInclusive = false;
      }
    }
  }

  /** managed: Db.runTransaction commits this transaction itself (manage). */
  private managed = false;

  /**
   * @internal manage hands the commit to Db.runTransaction: `commit()` refuses from then on
   * (TxnManagedError, before anything is written) and the returned function is the only way to
   * commit. Once per transaction, so a callback cannot take the commit back with it.
   */
  manage(): () => Promise<CommitResult> {
    assert(!this.managed, 'transaction is already managed');
    this.managed = true;
    return () => {
      // Lifted and used in one synchronous step (commit() marks the transaction finished before
      // its first await), so no task of the callback's can commit in between. Through commit()
      // itself, so that the wrapper commits exactly as a manual caller does.
      this.managed = false;
      return this.commit();
    };
  }

  /**
   * commit validates against commits after the snapshot and writes everything as one atomic
   * batch; resolves once durable. Conflicts reject with TxnConflictError (nothing written).
   * Inside `db.transaction(fn)` it rejects with TxnManagedError, and the transaction goes on:
   * the wrapper commits when `fn` returns.
   */
  async commit(): Promise<CommitResult> {
    this.checkActive();
    if (this.managed) throw new TxnManagedError();
    this.done = true;
    try {
      if (this.writes.size === 0) {
        this.enqueuedTs = this.reg.startTs;
        return { ts: this.reg.startTs };
      }
      // From here to the enqueue nothing is awaited: no other commit can slip in between.
      this.mvcc.validate(
        this.reg.startTs,
        this.isolation,
        this.writes.keys(),
        this.isolation === 'serializable' ? { keys: this.reads.keys(), ranges: this.ranges } : undefined,
      );
      const ops: BatchOp[] = [];
      for (const { key, value, expiresAt, valueType } of this.writes.values()) {
        ops.push(
          value === undefined
            ? { type: 'delete', key }
            : { type: 'put', key, value, expiresAt, ...(valueType === 0 ? {} : { valueType }) },
        );
      }
      // Validation proved no write after the snapshot touched the written keys, and every
      // write before it has settled: a written key's current durable value is what was read.
      const before = this.mvcc.lastTs;
      const durable = this.pipeline.batch(ops, (k) => {
        const read = this.reads.get(k);
        return read === undefined ? undefined : { ...read, fromTs: 0 };
      });
      // Enqueued iff it took a timestamp; a refused batch rejects `durable` instead.
      if (this.mvcc.lastTs !== before) this.enqueuedTs = this.mvcc.lastTs;
      // Released once enqueued: the commit no longer reads anything.
      this.mvcc.release(this.reg);
      await durable;
      return { ts: this.enqueuedTs! };
    } finally {
      this.mvcc.release(this.reg);
    }
  }

  /** rollback discards the buffered writes. Idempotent; a no-op after commit. */
  rollback(): void {
    this.release();
  }

  /**
   * readEntry: the transaction's own write of `key`, else what it read of it at the snapshot
   * (remembered: repeated reads agree, serializable validation checks the key, and the commit
   * reuses the value and revision). Callers copy the value before handing it out.
   */
  protected override readEntry(key: Uint8Array, k: string): ReadEntry {
    const own = this.writes.get(k);
    if (own !== undefined) {
      if (own.value === undefined || this.mvcc.expiredNow(own.expiresAt)) return ABSENT;
      return { value: own.value, expiresAt: own.expiresAt, valueType: own.valueType };
    }
    let read = this.reads.get(k);
    if (read === undefined) {
      read = this.mvcc.read(key, k, this.reg.startTs);
      this.reads.set(k, read);
    }
    // An expired key reads as absent at once, everywhere (README): a value read before its expiry
    // passed is remembered (validation and the commit use it), but read again it is gone, as
    // from a snapshot. Found from outside: a transaction kept answering it.
    return this.mvcc.expiredNow(read.expiresAt) ? ABSENT : read;
  }

  private buffer(
    key: Buffer,
    value: Buffer | undefined,
    expiresAt: number | undefined,
    valueType: number,
  ): void {
    const k = keyString(key);
    this.writesChanged++;
    const existing = this.writes.get(k);
    if (existing !== undefined) {
      existing.value = value;
      existing.expiresAt = expiresAt;
      existing.valueType = valueType;
    } else this.writes.set(k, { key, value, expiresAt, valueType });
  }
}
