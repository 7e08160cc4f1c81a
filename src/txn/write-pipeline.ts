// WritePipeline: the one way a write reaches the engine, and the newest state of every key
// (docs/ARCHITECTURE.md, "A SET from socket to disk"). Every write of the embedded API, the
// servers, transactions, compare-and-swap and the expiry cycle passes through it, in one
// downward pass and one synchronous step:
//
//   validate -> look the key up once (pending write, else the engine's state now) -> decide
//   (the caller's update function) -> stamp (Mvcc gives the commit timestamp and captures the
//   replaced value for open snapshots; the revision follows from the one lookup) -> record as
//   pending -> hand the stamped write to the engine (engine.write), which queues it for its group
//   commit.
//
// It is the only keeper of pending state (writes queued, not yet durable: pending-writes.ts)
// and the only place commit timestamps and revisions are assigned; the engines store what they
// are given. No `await` between the lookup and the enqueue, so no other write can slip in
// between (read-modify-write commands such as INCR need nothing more), and writes reach the
// engine in call order.
//
// Durability. The engine shows a write to readers only once it is durable. Readers of the
// newest state get a pending value together with the promise of the write that produced it:
// whoever replies with that value must wait for the promise, so no reply reveals a write before
// it is durable, while every pipelined write of every client shares one fsync.
//
// Failures. A write that fails is removed from the pending state at once, and readers fall back
// to the older pending value or the engine. A write computed from a pending value (INCR on top
// of a queued INCR) carries the durability of that value too: if the earlier write fails, the
// later reply fails as well, because its value includes the failed write (its bytes may still
// reach the disk: the engine cannot retract a queued write; documented in docs/resp-commands.md).
//
// Expiry. Every pending value carries the expiry it was written with, and a pending value whose
// expiry has passed reads as absent, as the engine would show it. Update functions receive the
// current expiry so that a read-modify-write can keep it (Redis: INCR and APPEND keep a key's
// TTL; SET and GETSET clear it unless told otherwise). The one active expiry cycle
// (expiry-cycle.ts) deletes expired keys through this pipeline, skipping keys with pending
// writes (those writes decide); its tombstones change nothing anyone can read (the keys already
// read as absent), so they take a timestamp but are neither pending nor tracked by Mvcc.
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"). Keys and values passed in are borrowed.
// Everything here happens within the call, so keys are used only in it (the pending state keys
// by latin1 strings, copies by construction); values kept as pending writes are copies, so a
// caller reusing its buffer cannot change what readers, snapshots (the MVCC history captures
// pending values) or the engine see. The engine copies what it queues in the call. Values handed
// out (Latest.value) are the pipeline's own or the engine's fresh copies: callers treat them as
// read-only and copy before giving them to code that might write to them.

import { type Clock, systemClock } from '../io/clock.js';
import { AssertionError, assert } from '../stdx/assert.js';
import { asBuffer, copyBytes } from '../stdx/bytes.js';
import { keyFromString, keyString } from '../stdx/key-string.js';
import {
  type BorrowedValueSink,
  type Engine,
  type Entry,
  READ_INTO,
  type ReadInto,
  type Revision,
  type ScanRange,
  type Stored,
  type WriteOp,
} from '../storage/engine.js';
import { CorruptionError } from '../storage/errors.js';
import { isExpired } from '../storage/expiry-index.js';
import { revisionOfPut } from '../storage/revision.js';
import { type CheckedOp, checkBatch, checkExpiresAt, checkKey, checkValue } from '../storage/validate.js';
import { checkValueType } from '../storage/value-type.js';
import { ExpiryCycle, type ExpiryCycleStats } from './expiry-cycle.js';
import { Mvcc, type MvccOptions, type Prior } from './mvcc.js';
import { type PendingWrite, PendingWrites, type Queued } from './pending-writes.js';
import type { DurableState } from './version-history.js';

/**
 * BatchOp: one operation of a write a caller asks for: a put (with its expiry) or a delete,
 * unstamped (the pipeline stamps it into a WriteOp). The same shape checkBatch validates.
 */
export type BatchOp = CheckedOp;

/** Latest is the newest value of a key and, when it comes from a pending write, its durability. */
export interface Latest {
  /** value: the newest value, or undefined when the key does not exist. */
  readonly value: Buffer | undefined;
  /** expiresAt: the value's expiry (ms since the epoch), undefined when it has none or is absent. */
  readonly expiresAt: number | undefined;
  /**
   * valueType: what the value is (storage/value-type.ts): 0 a string (also when absent), 1 a
   * hash. Commands compare it once before they read the value as their own type (WRONGTYPE).
   */
  readonly valueType: number;
  /**
   * revision: the value's revision, undefined when the key does not exist (and from a
   * transaction's KeyStore, whose snapshot versions keep none).
   */
  readonly revision: Revision | undefined;
  /**
   * durable: undefined when the value is already durable; otherwise the promise of the write(s)
   * that produced it. A reply revealing the value must wait for it (and fail if it rejects).
   */
  readonly durable: Promise<void> | undefined;
}

/** Change is what an update function decides: its result, and the write to make (if any). */
export interface Change<T> {
  readonly result: T;
  /** write: a Buffer to store, null to delete the key, undefined to leave it alone. */
  readonly write?: Buffer | null | undefined;
  /** expiresAt: the expiry to store with `write`; undefined stores it without one (clears a TTL). */
  readonly expiresAt?: number | undefined;
  /** valueType: the type of `write` (storage/value-type.ts); undefined or 0 stores a string. */
  readonly valueType?: number | undefined;
}

/** ManyChange is Change over several keys: writes are applied as one atomic batch. */
export interface ManyChange<T> {
  readonly result: T;
  readonly writes?:
    | readonly {
        readonly key: Uint8Array;
        readonly value: Buffer | null;
        readonly expiresAt?: number | undefined;
        readonly valueType?: number | undefined;
      }[]
    | undefined;
}

/** Updated is an update's result and the durability its reply must wait for (see Latest). */
export interface Updated<T> {
  readonly result: T;
  readonly durable: Promise<void> | undefined;
  /** ts: the commit timestamp of the write the update queued; undefined when it wrote nothing. */
  readonly ts?: number | undefined;
}

export interface WritePipelineOptions extends MvccOptions {
  /** onExpiryFailure: told when the expiry cycle's delete fails (for logging). */
  readonly onExpiryFailure?: ((err: unknown) => void) | undefined;
}

export interface PipelineStats extends ExpiryCycleStats {
  /** pendingKeys: keys with writes queued but not yet settled. */
  readonly pendingKeys: number;
}

/** KnownPrior names the durable state a caller already read for a key (see `batch`). */
export type KnownPrior = (k: string) => Prior | undefined;

const noop = (): void => {};
/** NO_PRIOR: the `prior` given to Mvcc.written when it is not capturing, so never called. */
const NO_PRIOR = (): Prior => {
  throw new AssertionError('Mvcc asked for a replaced value while capturing nothing');
};

/** SettleGroup: queued writes whose engine promise is the same one, settled by one callback. */
interface SettleGroup {
  readonly own: Promise<void>;
  readonly writes: Queued[];
  done: boolean;
}
const ABSENT: Latest = {
  value: undefined,
  expiresAt: undefined,
  valueType: 0,
  revision: undefined,
  durable: undefined,
};

function joinDurable(deps: readonly Promise<void>[], own: Promise<void>): Promise<void> {
  if (deps.length === 0) return own;
  const joined = Promise.all([...deps, own]).then(noop);
  joined.catch(noop);
  return joined;
}

function latestOfStored(stored: Stored | undefined): Latest {
  if (stored === undefined) return ABSENT;
  return {
    value: asBuffer(stored.value),
    expiresAt: stored.expiresAt,
    valueType: stored.valueType ?? 0,
    revision: stored.revision,
    durable: undefined,
  };
}

/**
 * Lookup: what one lookup of a key found before a write, reused for the update function, the
 * MVCC capture and the revision, so the key is looked up once.
 */
interface Lookup {
  readonly latest: Latest;
  /** prior: the value the write replaces and the timestamp that wrote it (0: durable). */
  readonly prior: Prior;
}

export class WritePipeline {
  /** mvcc: commit timestamps, readers and the version history (mvcc.ts). */
  readonly mvcc: Mvcc;
  private readonly pending = new PendingWrites();
  private readonly expiry: ExpiryCycle;
  /** expiredListeners: told the keys of each expiry-cycle batch once it is durable (onExpired). */
  private readonly expiredListeners = new Set<(keys: readonly Uint8Array[]) => void>();
  /** queuedListeners: told the keys of every write as it is queued (onQueued). */
  private readonly queuedListeners = new Set<(keys: readonly Uint8Array[]) => void>();
  /**
   * lastQueuedTs: the commit timestamp the last enqueue gave its write, read in the same step;
   * undefined when that write was refused before it had one.
   */
  private lastQueuedTs: number | undefined;
  /** settling: the newest writes that share one durability promise (see settleGroup). */
  private settling: SettleGroup | undefined;

  constructor(
    readonly engine: Engine,
    /** clock: decides when a pending value has expired and runs the expiry cycle. */
    readonly clock: Clock = systemClock,
    options: WritePipelineOptions = {},
  ) {
    this.mvcc = new Mvcc(engine, { clock, versionRetentionMs: options.versionRetentionMs });
    this.expiry = new ExpiryCycle(engine, clock, {
      isPending: (k) => this.pending.has(k),
      deleteKeys: (keys) => this.expire(keys).then(() => this.tellExpired(keys)),
      onFailure: options.onExpiryFailure,
    });
  }

  /**
   * onExpired registers a listener for the keys the expiry cycle deleted, called once their
   * tombstones are durable (keyspace notifications' `expired`); returns its removal.
   */
  onExpired(listener: (keys: readonly Uint8Array[]) => void): () => void {
    this.expiredListeners.add(listener);
    return () => this.expiredListeners.delete(listener);
  }

  /**
   * onQueued registers a listener told, in the same synchronous step, the keys of every write the
   * pipeline queues (commands, commits, the expiry cycle): client tracking's invalidations
   * (src/server/resp/tracking.ts), which must go out before any reply can reveal the write. The
   * keys are borrowed for the call. Returns its removal.
   */
  onQueued(listener: (keys: readonly Uint8Array[]) => void): () => void {
    this.queuedListeners.add(listener);
    return () => this.queuedListeners.delete(listener);
  }

  private tellQueued(keys: readonly Uint8Array[]): void {
    for (const listener of this.queuedListeners) {
      // A listener's failure is not the write's: it is queued either way.
      try {
        listener(keys);
      } catch {
        // nothing to undo
      }
    }
  }

  private tellExpired(keys: readonly Uint8Array[]): void {
    for (const listener of this.expiredListeners) {
      // A listener's failure is not the cycle's: the keys are deleted either way.
      try {
        listener(keys);
      } catch {
        // nothing to undo
      }
    }
  }

  /** pendingKeys counts keys with writes queued but not yet settled (for tests). */
  get trackedKeys(): number {
    return this.pending.keys;
  }

  stats(): PipelineStats {
    return { ...this.expiry.stats(), pendingKeys: this.pending.keys };
  }

  /** readLatest returns the newest value of `key`: its newest pending write, else the engine's. */
  readLatest(key: Uint8Array): Latest {
    // A read needs no Lookup (the prior is for writes), and no key string when nothing is
    // pending (issue 14: a GET's allocations are the engine's copy and the Latest).
    if (this.pending.keys === 0) return latestOfStored(this.engine.getStoredSync(key));
    const newest = this.pending.newest(keyString(key));
    if (newest === undefined) return latestOfStored(this.engine.getStoredSync(key));
    return this.lookupPending(newest).latest;
  }

  /**
   * readStringInto is Engine.readStringInto of the newest state (issue 14: a GET without the
   * Latest and the copies readLatest makes): READ_INTO.OTHER when `key` has pending writes or
   * the engine cannot, so that the caller reads through readLatest.
   */
  readStringInto(key: Uint8Array, sink: BorrowedValueSink): ReadInto {
    if (this.engine.readStringInto === undefined) return READ_INTO.OTHER;
    if (this.pending.keys !== 0 && this.pending.has(keyString(key))) return READ_INTO.OTHER;
    return this.engine.readStringInto(key, sink);
  }

  /** prefetch passes a hint about the keys a batch is about to use on to the engine (Engine.prefetch). */
  prefetch(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void {
    this.engine.prefetch?.(bytes, starts, ends, count);
  }

  /** readMany is readLatest for several keys, consistent with one another (one point in time). */
  readMany(keys: readonly Uint8Array[]): Latest[] {
    return keys.map((key) => this.readLatest(key));
  }

  /**
   * update reads the newest value of `key`, calls `fn` with it and queues the write `fn` asks
   * for, in one synchronous step. The result's `durable` covers the write and the value it read
   * (and, when it writes nothing, the engine's read barrier: see `readOnly`).
   * Invalid keys, values and expiries throw. `fn` also gets the current value's type (0: a string
   * or absent), so a command can refuse a value of another type (WRONGTYPE) before reading it.
   */
  update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined, valueType: number) => Change<T>,
  ): Updated<T> {
    checkKey(key);
    this.engine.checkWriteAllowed?.();
    const k = keyString(key);
    const found = this.lookup(key, k);
    const current = found.latest;
    const change = fn(current.value, current.expiresAt, current.valueType);
    if (change.write === undefined) return { result: change.result, durable: this.readOnly(current.durable) };
    const expiresAt = change.write === null ? undefined : change.expiresAt;
    const valueType = change.write === null ? undefined : change.valueType;
    if (change.write !== null) {
      checkValue(change.write);
      checkExpiresAt(expiresAt);
      checkValueType(valueType);
    }
    // The value may be the caller's (a command's argument): the pending state keeps a copy.
    const value = change.write === null ? undefined : copyBytes(change.write);
    const written = this.enqueueOne(key, k, value, expiresAt, valueType ?? 0, found);
    const deps = current.durable === undefined ? [] : [current.durable];
    return { result: change.result, durable: joinDurable(deps, written), ts: this.lastQueuedTs };
  }

  /** updateMany is update over several keys; the writes are queued as one atomic batch. */
  updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      revisions: readonly (Revision | undefined)[],
      valueTypes: readonly number[],
    ) => ManyChange<T>,
  ): Updated<T> {
    for (const key of keys) checkKey(key);
    this.engine.checkWriteAllowed?.();
    const values = keys.map((key) => this.lookup(key, keyString(key)).latest);
    const change = fn(
      values.map((v) => v.value),
      values.map((v) => v.expiresAt),
      values.map((v) => v.revision),
      values.map((v) => v.valueType),
    );
    const deps: Promise<void>[] = [];
    for (const v of values) if (v.durable !== undefined && !deps.includes(v.durable)) deps.push(v.durable);
    const writes = change.writes ?? [];
    if (writes.length === 0) {
      const readDurable = deps.length === 0 ? undefined : joinDurable(deps.slice(1), deps[0]!);
      return { result: change.result, durable: this.readOnly(readDurable) };
    }
    const ops: BatchOp[] = writes.map((w) =>
      w.value === null
        ? { type: 'delete', key: w.key }
        : { type: 'put', key: w.key, value: w.value, expiresAt: w.expiresAt, valueType: w.valueType },
    );
    checkBatch(ops);
    const own = this.batchNow(ops);
    return { result: change.result, durable: joinDurable(deps, own), ts: this.lastQueuedTs };
  }

  /**
   * put queues `value` under `key` (with `expiresAt`, or clearing any expiry); resolves once
   * durable. Invalid arguments (LimitError, ...) reject.
   */
  put(key: Uint8Array, value: Uint8Array, expiresAt?: number, valueType?: number): Promise<void> {
    try {
      checkKey(key);
      checkValue(value);
      checkExpiresAt(expiresAt);
      checkValueType(valueType);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueueOne(key, keyString(key), copyBytes(value), expiresAt, valueType ?? 0, undefined);
  }

  /** delete removes `key`; resolves to whether it existed (counting pending writes), once durable. */
  async delete(key: Uint8Array): Promise<boolean> {
    let updated: Updated<boolean>;
    try {
      updated = this.update(key, (current) => ({
        result: current !== undefined,
        write: current === undefined ? undefined : null,
      }));
    } catch (err) {
      // The key's record fails verification (damage that recovery could not see: a sealed file
      // read through its hint). Deleting needs no value: the key goes, so that damage can be
      // cleared (docs/hardening.md). Its revision comes from the key directory alone.
      if (!(err instanceof CorruptionError) || this.engine.revisionSync(key) === undefined) throw err;
      await this.batch([{ type: 'delete', key }]);
      return true;
    }
    await updated.durable;
    return updated.result;
  }

  /**
   * batch queues all operations as one atomic write; resolves once durable. `knownPrior` may
   * name the durable state a key has now (a transaction that read it at a snapshot nobody wrote
   * after), which spares a lookup of it.
   */
  batch(ops: readonly BatchOp[], knownPrior?: KnownPrior): Promise<void> {
    try {
      checkBatch(ops);
    } catch (err) {
      return Promise.reject(err);
    }
    if (ops.length === 0) return Promise.resolve();
    return this.batchNow(ops, knownPrior);
  }

  /** settled resolves once every write queued before the call has settled (durable or failed). */
  settled(): Promise<void> {
    return this.pending.settled();
  }

  /**
   * scanDurable scans the engine's durable state (not a snapshot: see Engine.scan). Callers that
   * must see their own earlier writes await settled() first.
   */
  scanDurable(range: ScanRange): AsyncIterableIterator<Entry> {
    return this.engine.scan(range);
  }

  /** durableKeyCount: live keys in the engine's durable state. */
  durableKeyCount(): number {
    return this.engine.stats().keys;
  }

  /**
   * confirmRead: what an answer read from the newest state (readLatest) waits for before it is
   * given, on an engine whose state may be stale (a cluster member: Engine.readBarrier);
   * undefined elsewhere. Start it after the read: it confirms the state as of the call.
   */
  confirmRead(): Promise<void> | undefined {
    return this.engine.readBarrier?.();
  }

  /** close stops the expiry cycle; the engine's close then makes every queued write durable. */
  close(): void {
    this.expiry.stop();
  }

  /**
   * expire queues the expiry cycle's tombstones for keys without pending writes whose values
   * have expired: a write nobody can see (Mvcc.unseen), so it conflicts with no transaction.
   */
  private expire(keys: readonly Uint8Array[]): Promise<void> {
    const ks = keys.map((key) => keyString(key));
    const none = keys.map(() => undefined);
    return this.enqueue(keys, ks, none, none, undefined, false);
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * readOnly: what an update that wrote nothing waits for. Its answer was read from the newest
   * state here, so it waits for the pending writes it read (`durable`) and, on an engine with a
   * read barrier (a cluster member), for the confirmation that this state was current: a deposed
   * leader must not answer DEL of an absent key, or a failed compare-and-swap, from a state its
   * successor has moved past (replica simulator, seed 760383759).
   */
  private readOnly(durable: Promise<void> | undefined): Promise<void> | undefined {
    const barrier = this.confirmRead();
    if (barrier === undefined) return durable;
    return durable === undefined ? barrier : joinDurable([durable], barrier);
  }

  private batchNow(ops: readonly BatchOp[], knownPrior?: KnownPrior): Promise<void> {
    const n = ops.length;
    const keys: Uint8Array[] = new Array(n);
    const ks: string[] = new Array(n);
    const values: (Buffer | undefined)[] = new Array(n);
    const expiries: (number | undefined)[] = new Array(n);
    const found: (Lookup | undefined)[] = new Array(n);
    let types: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const op = ops[i]!;
      keys[i] = op.key;
      ks[i] = keyString(op.key);
      // The pending state keeps copies; the engine copies the ops in the synchronous call.
      values[i] = op.type === 'put' ? copyBytes(op.value) : undefined;
      expiries[i] = op.type === 'put' ? op.expiresAt : undefined;
      const valueType = op.type === 'put' ? (op.valueType ?? 0) : 0;
      if (valueType !== 0) {
        types ??= new Array<number>(n).fill(0);
        types[i] = valueType;
      }
      if (knownPrior !== undefined) found[i] = this.known(ks[i]!, knownPrior);
    }
    return this.enqueue(keys, ks, values, expiries, found, true, types);
  }

  /**
   * known is the state `knownPrior` names for a key without pending writes, when it names one
   * with a revision (a key without an expiry that could have lapsed since it was read).
   */
  private known(k: string, knownPrior: KnownPrior): Lookup | undefined {
    if (this.pending.has(k)) return undefined;
    const known = knownPrior(k);
    if (known === undefined || known.revision === undefined) return undefined;
    return {
      latest: {
        value: known.value,
        expiresAt: undefined,
        valueType: known.valueType ?? 0,
        revision: known.revision,
        durable: undefined,
      },
      prior: known,
    };
  }

  /** lookup is the key's newest state: its newest pending write, else the engine's now. */
  private lookup(key: Uint8Array, k: string): Lookup {
    const newest = this.pending.newest(k);
    if (newest !== undefined) return this.lookupPending(newest);
    const latest = latestOfStored(this.engine.getStoredSync(key));
    return {
      latest,
      prior: {
        value: latest.value,
        expiresAt: latest.expiresAt,
        valueType: latest.valueType,
        fromTs: 0,
        revision: latest.revision,
      },
    };
  }

  private lookupPending(newest: PendingWrite): Lookup {
    // The value replaced is the pending one even when it has expired: a snapshot between the two
    // writes reads it (and sees it expired by its own clock).
    const prior: Prior = {
      value: newest.value,
      expiresAt: newest.expiresAt,
      valueType: newest.valueType,
      fromTs: newest.ts,
    };
    if (newest.expiresAt !== undefined && isExpired(newest.expiresAt, this.clock.nowMs())) {
      return { latest: { ...ABSENT, durable: newest.durable }, prior };
    }
    return {
      latest: {
        value: newest.value,
        expiresAt: newest.expiresAt,
        valueType: newest.valueType,
        revision: newest.revision,
        durable: newest.durable,
      },
      prior,
    };
  }

  /**
   * enqueue stamps one write (to one or more keys; values undefined for deletes) and hands it to
   * the engine, synchronously: the commit timestamp from Mvcc (which captures the replaced
   * values), each put's revision from the state `found` looked up, then the pending state.
   * `types`: each value's type, undefined when all are strings. Returns the write's own
   * durability.
   */
  private enqueue(
    keys: readonly Uint8Array[],
    ks: readonly string[],
    values: readonly (Buffer | undefined)[],
    expiries: readonly (number | undefined)[],
    found?: readonly (Lookup | undefined)[],
    seen = true,
    types?: readonly number[] | undefined,
  ): Promise<void> {
    const n = keys.length;
    this.lastQueuedTs = undefined;
    let ts: number;
    // Every put's revision before this write, from the one lookup (a batch naming a key twice
    // keeps its last operation, which counts once: both derive from the state before the batch).
    const before: (Revision | undefined)[] = new Array(n);
    try {
      // Looked up first: a lookup that throws (a closed store, a key over the engine's limit)
      // refuses the write before Mvcc has recorded anything.
      for (let i = 0; i < n; i++) {
        if (values[i] === undefined) continue;
        const known = found?.[i];
        before[i] = known === undefined ? this.revisionOf(keys[i]!, ks[i]!) : known.latest.revision;
      }
      // Mvcc asks for the replaced values only while someone may read them (an open snapshot,
      // a retention window): a plain write looks up just the revision above.
      ts = seen
        ? this.mvcc.written(ks, (i) => found?.[i]?.prior ?? this.priorOf(keys[i]!, ks[i]!))
        : this.mvcc.unseen();
    } catch (err) {
      return Promise.reject(err);
    }
    const revisions: (Revision | undefined)[] = new Array(n);
    const ops: WriteOp[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const value = values[i];
      if (value === undefined) {
        ops[i] = { type: 'delete', key: keys[i]! };
        continue;
      }
      const revision = revisionOfPut(before[i], ts);
      revisions[i] = revision;
      ops[i] = {
        type: 'put',
        key: keys[i]!,
        value,
        expiresAt: expiries[i],
        create: revision.create,
        version: revision.version,
        valueType: types?.[i],
      };
    }
    this.lastQueuedTs = ts;
    let own: Promise<void>;
    try {
      own = this.engine.write(ts, ops);
      this.tellQueued(keys);
    } catch (err) {
      own = Promise.reject(err);
    }
    if (!seen) {
      own.catch(noop);
      // Not pending: readers already see these keys as absent (expired) in the engine, and a
      // write after the tombstone must take the engine's state (absent since time 0) as prior.
      own.then(
        () => this.mvcc.settled(ts),
        () => this.mvcc.settled(ts),
      );
      return own;
    }
    return this.track(this.pending.add(ks, ts, values, expiries, revisions, own, types), own);
  }

  /**
   * enqueueOne is enqueue for a write of one key (`value` undefined: a delete), the path of put
   * and update (every plain command's write): without the arrays of one element each the
   * general path builds for its keys, values, expiries, lookups, revisions and ops (issue 14: a
   * SET's allocations). `found`: the key's state update looked up, else looked up here. `value`
   * is the pipeline's own copy.
   */
  private enqueueOne(
    key: Uint8Array,
    k: string,
    value: Buffer | undefined,
    expiresAt: number | undefined,
    valueType: number,
    found: Lookup | undefined,
  ): Promise<void> {
    const ks: [string] = [k];
    this.lastQueuedTs = undefined;
    let ts: number;
    let before: Revision | undefined;
    try {
      // As in enqueue: the lookup first, so that one that throws refuses the write before Mvcc
      // has recorded anything.
      if (value !== undefined) before = found === undefined ? this.revisionOf(key, k) : found.latest.revision;
      const prior = this.mvcc.capturing ? () => found?.prior ?? this.priorOf(key, k) : NO_PRIOR;
      ts = this.mvcc.written(ks, prior);
    } catch (err) {
      return Promise.reject(err);
    }
    let op: WriteOp;
    let revision: Revision | undefined;
    if (value === undefined) op = { type: 'delete', key };
    else {
      revision = revisionOfPut(before, ts);
      op = {
        type: 'put',
        key,
        value,
        expiresAt,
        create: revision.create,
        version: revision.version,
        valueType: valueType === 0 ? undefined : valueType,
      };
    }
    this.lastQueuedTs = ts;
    let own: Promise<void>;
    try {
      own = this.engine.write(ts, [op]);
      if (this.queuedListeners.size > 0) this.tellQueued([key]);
    } catch (err) {
      own = Promise.reject(err);
    }
    return this.track(this.pending.addOne(ks, ts, value, expiresAt, valueType, revision, own), own);
  }

  /**
   * track keeps a queued write pending until its durability promise `own` settles, and returns
   * that promise. Writes that share one promise share one settle group.
   */
  private track(queued: Queued, own: Promise<void>): Promise<void> {
    const group = this.settling;
    if (group !== undefined && group.own === own) {
      assert(!group.done, 'a write joined a durability promise that has settled');
      group.writes.push(queued);
      return own;
    }
    // The first write with this promise: one pair of callbacks settles every write that shares
    // it (the cask engine gives the writes of one group commit part one promise).
    const fresh: SettleGroup = { own, writes: [queued], done: false };
    this.settling = fresh;
    own.then(
      () => this.settleGroup(fresh, true),
      () => this.settleGroup(fresh, false),
    );
    return own;
  }

  /** settleGroup drops the pending state of writes that settled together, in queue order. */
  private settleGroup(group: SettleGroup, durable: boolean): void {
    group.done = true;
    if (this.settling === group) this.settling = undefined;
    for (const queued of group.writes) {
      const { ts, ks } = queued;
      this.pending.settle(queued, durable);
      if (!durable) {
        // The history captured values this write replaced; undo with the durable state now.
        this.mvcc.failed(ts, ks, (i) => this.durableOrUndefined(ks[i]!));
      }
      this.mvcc.settled(ts);
    }
  }

  /**
   * priorOf is the value a write now replaces, with its expiry: the newest pending, else the
   * engine's (a snapshot that reads the replaced version sees its expiry too).
   */
  private priorOf(key: Uint8Array, k: string): Prior {
    const newest = this.pending.newest(k);
    if (newest !== undefined) {
      return {
        value: newest.value,
        expiresAt: newest.expiresAt,
        valueType: newest.valueType,
        fromTs: newest.ts,
      };
    }
    let stored: Stored | undefined;
    try {
      stored = this.engine.getStoredSync(key);
    } catch (err) {
      // A damaged record: the write goes ahead (writing or deleting a damaged key is how it is
      // cleared), and a snapshot that would read the version it replaces gets the error.
      if (err instanceof CorruptionError) return { value: undefined, fromTs: 0, damaged: err };
      throw err;
    }
    return stored === undefined
      ? { value: undefined, fromTs: 0 }
      : {
          value: asBuffer(stored.value),
          expiresAt: stored.expiresAt,
          valueType: stored.valueType,
          fromTs: 0,
        };
  }

  /** revisionOf is the revision a key has before a write now queued: pending, else the engine's. */
  private revisionOf(key: Uint8Array, k: string): Revision | undefined {
    const newest = this.pending.newest(k);
    if (newest === undefined) return this.engine.revisionSync(key);
    return this.lookupPending(newest).latest.revision;
  }

  private durableOrUndefined(k: string): DurableState {
    try {
      const stored = this.engine.getStoredSync(keyFromString(k));
      return stored === undefined
        ? { value: undefined, expiresAt: undefined }
        : { value: asBuffer(stored.value), expiresAt: stored.expiresAt, valueType: stored.valueType };
    } catch (err) {
      // A damaged record: snapshots that read it fail, as the engine's reads do.
      if (err instanceof CorruptionError) return { value: undefined, expiresAt: undefined, damaged: err };
      // A store that cannot be read any more serves no snapshot either.
      return { value: undefined, expiresAt: undefined };
    }
  }
}
