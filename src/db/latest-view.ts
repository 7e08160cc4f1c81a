// LatestView: a linearizable view of the newest state of every key, for read-modify-write
// commands (RESP INCR, APPEND, SETNX, MSETNX, DEL counting, ...) and read-your-writes across
// pipelined commands, without giving up durability.
//
// The engine shows a write to readers only once it is durable. A server that reads the engine
// while its own writes are still queued would therefore lose updates (two INCRs read the same
// value) and break read-your-writes (SET then GET in one pipeline). Waiting for every write to
// be durable before running the next command would serialize everything on fsync and defeat
// group commit. So the view keeps, for each key with queued-but-not-durable writes, the values
// of those writes (newest last) and the promises of their durability. Readers get the newest
// value together with the promise of the write that produced it: whoever replies with that value
// must wait for the promise, so no reply reveals a write before it is durable.
//
// Every write must go through the view (Db routes its writes here); it forwards them to the
// engine synchronously, in call order, so the engine's queue order is the view's order.
//
// Failures. A write that fails is removed from the overlay at once, and readers fall back to
// the older pending value or the engine. A write computed from a pending value (INCR on top of
// a queued INCR) carries the durability of that value too: if the earlier write fails, the later
// reply fails as well, because its value includes the failed write (its bytes may still reach
// the disk: the engine cannot retract a queued write; documented in docs/resp-commands.md).
//
// JS is single-threaded: between the last read of a key and the enqueue of the write computed
// from it there is no `await`, so no other write can slip in between. Reads from the engine are
// asynchronous, so a read that awaited the engine re-checks the key's version afterwards and
// starts over when a write was queued meanwhile.
//
// Expiry. Every pending value carries the expiry it was written with (undefined: none), and a
// pending value whose expiry has passed on the view's clock reads as absent, as the engine would
// show it. Update functions receive the current expiry so that a read-modify-write can keep it
// (Redis: INCR and APPEND keep a key's TTL; SET and GETSET clear it unless told otherwise).
// The engine's active expiry cycle deletes expired keys without going through the view; that is
// safe because such a key already reads as absent before its tombstone and after it, and a
// cycle's tombstone only ever removes a value whose own expiry has passed (never one queued
// after the cycle looked, nor one with a later expiry).
//
// Revisions. The view assigns every write's commit timestamp (the observer's, else the engine's
// next) and every put's creation timestamp and version count from the newest state it knows
// (pending, else durable), and hands all three to the engine, which stores them; so a reader of
// a pending value sees the revision the engine will store. A write queued on top of one that
// then fails keeps the count it was given (the engine cannot retract a queued write either).
//
// Buffers (docs/ARCHITECTURE.md, "Who owns a buffer"). Keys and values passed in are borrowed:
// the view keeps only copies. Keys become latin1 strings at once (the overlay's map keys); a key
// needed again after an `await` (update's write, an engine read retried, a failure's lookup) is
// a copy made at the call or rebuilt from that string. Values kept as pending writes are copies
// made when the write is queued, so a caller reusing its buffer cannot change what readers,
// snapshots (the MVCC history captures pending values) or the engine see. Values handed out
// (Latest.value) are the view's own or the engine's fresh copies: callers treat them as
// read-only, and copy before giving them to code that might write to them.

import { type Clock, systemClock } from '../io/clock.js';
import { assert } from '../stdx/assert.js';
import { asBuffer, copyBytes } from '../stdx/bytes.js';
import type { BatchOp, Engine, Revision, Stored } from '../storage/engine.js';
import { isExpired } from '../storage/expiry-index.js';
import { revisionOfPut, writeTs } from '../storage/revision.js';
import { checkBatch, checkExpiresAt, checkKey, checkValue } from '../storage/validate.js';
import type { Prior } from '../txn/mvcc.js';

/** Latest is the newest value of a key and, when it comes from a queued write, its durability. */
export interface Latest {
  /** value: the newest value, or undefined when the key does not exist. */
  readonly value: Buffer | undefined;
  /** expiresAt: the value's expiry (ms since the epoch), undefined when it has none or is absent. */
  readonly expiresAt: number | undefined;
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
}

/** ManyChange is Change over several keys: writes are applied as one atomic batch. */
export interface ManyChange<T> {
  readonly result: T;
  readonly writes?:
    | readonly {
        readonly key: Uint8Array;
        readonly value: Buffer | null;
        readonly expiresAt?: number | undefined;
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

/**
 * WriteObserver is told of every write synchronously, before the engine sees it (the MVCC layer,
 * src/txn/mvcc.ts: commit timestamps and the versions snapshots may still read).
 */
export interface WriteObserver {
  /**
   * written returns the write's commit timestamp. `prior(i)` is the value `ks[i]` has before the
   * write (the newest pending value, or the durable one) and the timestamp that wrote it. Throwing
   * refuses the write.
   */
  written(ks: readonly string[], prior: (i: number) => Prior): number;
  /** failed: the write at `ts` failed; `durableNow(i)` reads `ks[i]`'s durable value. */
  failed(ts: number, ks: readonly string[], durableNow: (i: number) => Buffer | undefined): void;
  /** settled: the write at `ts` settled, durable or failed (after `failed` for a failure). */
  settled(ts: number): void;
}

/** PendingWrite: one queued write to one key, in a doubly linked list from oldest to newest. */
interface PendingWrite {
  readonly version: number;
  /** ts: the write's commit timestamp (0 without an observer). */
  readonly ts: number;
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** revision: a put's revision; undefined for a delete. */
  readonly revision: Revision | undefined;
  /** durable: this write's durability, joined with that of the values it was computed from. */
  readonly durable: Promise<void>;
  older: PendingWrite | undefined;
  newer: PendingWrite | undefined;
}

/** KeyState exists while a key has pending writes or readers awaiting the engine. */
interface KeyState {
  /** version: bumped by every write queued to the key, so engine readers can detect races. */
  version: number;
  readers: number;
  oldest: PendingWrite | undefined;
  newest: PendingWrite | undefined;
}

const noop = (): void => {};

function keyOf(key: Uint8Array): string {
  // latin1 maps every byte to one UTF-16 unit: binary-safe and cheap.
  return asBuffer(key).toString('latin1');
}

/** keyBytesOf turns a keyOf string back into bytes of their own. */
function keyBytesOf(k: string): Buffer {
  return Buffer.from(k, 'latin1');
}

/** ownCopy copies a value the view keeps (undefined stays undefined). */
function ownCopy(value: Uint8Array | undefined): Buffer | undefined {
  return value === undefined ? undefined : copyBytes(value);
}

function joinDurable(deps: readonly Promise<void>[], own: Promise<void>): Promise<void> {
  if (deps.length === 0) return own;
  const joined = Promise.all([...deps, own]).then(noop);
  joined.catch(noop);
  return joined;
}

export class LatestView {
  private readonly states = new Map<string, KeyState>();
  /** seq, settledSeq: write sequence numbers, for settled() (the engine settles in order). */
  private seq = 0;
  private settledSeq = 0;
  private pendingWrites = 0;
  /** enqueuedTs: the commit timestamp of the newest write queued (read in the same step). */
  private enqueuedTs = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];

  constructor(
    readonly engine: Engine,
    /** clock: decides when a pending value has expired; the engine's own clock. */
    readonly clock: Clock = systemClock,
    /** observer: told of every write before the engine sees it (the MVCC layer). */
    private readonly observer?: WriteObserver,
  ) {}

  /** pendingKeys counts keys with queued, not yet settled writes or engine readers (for tests). */
  get trackedKeys(): number {
    return this.states.size;
  }

  /** readLatest returns the newest value of `key`, from the overlay or the engine. */
  async readLatest(key: Uint8Array): Promise<Latest> {
    const k = keyOf(key);
    const peeked = this.states.get(k)?.newest;
    if (peeked !== undefined) return this.latestOf(peeked);
    const [value] = await this.readRaw([key], [k]);
    return value!;
  }

  /** readMany is readLatest for several keys, consistent with one another (one point in time). */
  async readMany(keys: readonly Uint8Array[]): Promise<Latest[]> {
    return this.readRaw(
      keys,
      keys.map((key) => keyOf(key)),
    );
  }

  /**
   * update reads the newest value of `key`, calls `fn` with it and queues the write `fn` asks for,
   * with no `await` in between. The result's `durable` covers the write and the value it read.
   */
  async update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined) => Change<T>,
  ): Promise<Updated<T>> {
    checkKey(key);
    // The key is used again after the engine read below: a copy, since the caller's is borrowed.
    const own = copyBytes(key);
    const k = keyOf(own);
    const latest = await this.readConsistent([own], [k], (values) => {
      const current = values[0]!;
      const change = fn(current.value, current.expiresAt);
      const deps = current.durable === undefined ? [] : [current.durable];
      if (change.write === undefined) return { result: change.result, durable: current.durable };
      const expiresAt = change.write === null ? undefined : change.expiresAt;
      if (change.write !== null) {
        checkValue(change.write);
        checkExpiresAt(expiresAt);
      }
      // The value to write may be the caller's (a command's argument): the overlay keeps a copy.
      const value = change.write === null ? undefined : copyBytes(change.write);
      const written = this.enqueue(
        [own],
        [k],
        [value],
        (e, ts, revs) =>
          value === undefined
            ? e.delete(own, { ts }).then(noop)
            : e.put(own, value, {
                expiresAt,
                ts,
                create: revs[0]?.create,
                version: revs[0]?.version,
              }),
        [expiresAt],
      );
      return { result: change.result, durable: joinDurable(deps, written) };
    });
    return latest;
  }

  /** updateMany is update over several keys; the writes are queued as one atomic batch. */
  async updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      revisions: readonly (Revision | undefined)[],
    ) => ManyChange<T>,
  ): Promise<Updated<T>> {
    for (const key of keys) checkKey(key);
    // Borrowed keys, read again if the engine read below is retried: copies.
    const own = keys.map((key) => copyBytes(key));
    const ks = own.map((key) => keyOf(key));
    return this.readConsistent(own, ks, (values) => {
      const change = fn(
        values.map((v) => v.value),
        values.map((v) => v.expiresAt),
        values.map((v) => v.revision),
      );
      const deps: Promise<void>[] = [];
      for (const v of values) if (v.durable !== undefined && !deps.includes(v.durable)) deps.push(v.durable);
      const writes = change.writes ?? [];
      const readDurable = deps.length === 0 ? undefined : joinDurable(deps.slice(1), deps[0]!);
      if (writes.length === 0) return { result: change.result, durable: readDurable };
      const own = this.batchNow(
        writes.map((w) =>
          w.value === null
            ? { type: 'delete', key: w.key }
            : { type: 'put', key: w.key, value: w.value, expiresAt: w.expiresAt },
        ),
      );
      return { result: change.result, durable: joinDurable(deps, own), ts: this.enqueuedTs };
    });
  }

  /**
   * put queues `value` under `key` (with `expiresAt`, or clearing any expiry); resolves once
   * durable. Invalid arguments (LimitError, ...) reject.
   */
  put(key: Uint8Array, value: Uint8Array, expiresAt?: number): Promise<void> {
    try {
      checkKey(key);
      checkValue(value);
      checkExpiresAt(expiresAt);
    } catch (err) {
      return Promise.reject(err);
    }
    // The engine copies what it queues in this same synchronous step; the overlay keeps a copy.
    return this.enqueue(
      [key],
      [keyOf(key)],
      [copyBytes(value)],
      (e, ts, revs) =>
        e.put(key, value, { expiresAt, ts, create: revs[0]?.create, version: revs[0]?.version }),
      [expiresAt],
    );
  }

  /** delete removes `key`; resolves to whether it existed (counting queued writes), once durable. */
  async delete(key: Uint8Array): Promise<boolean> {
    const { result, durable } = await this.update(key, (current) => ({
      result: current !== undefined,
      write: current === undefined ? undefined : null,
    }));
    await durable;
    return result;
  }

  /**
   * batch queues all operations as one atomic write; resolves once durable. `knownPrior` may
   * name the durable value a key has now (a transaction that read it at a snapshot nobody wrote
   * after), which spares the observer a read of it.
   */
  batch(ops: readonly BatchOp[], knownPrior?: (k: string) => Prior | undefined): Promise<void> {
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
    if (this.pendingWrites === 0 || this.settledSeq >= this.seq) return Promise.resolve();
    const seq = this.seq;
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  // ---- internals -------------------------------------------------------------------------------

  private batchNow(ops: readonly BatchOp[], knownPrior?: (k: string) => Prior | undefined): Promise<void> {
    const n = ops.length;
    const keys: Uint8Array[] = new Array(n);
    const ks: string[] = new Array(n);
    const values: (Buffer | undefined)[] = new Array(n);
    const expiries: (number | undefined)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const op = ops[i]!;
      keys[i] = op.key;
      ks[i] = keyOf(op.key);
      // The overlay keeps copies; the engine copies the ops in the synchronous call below.
      values[i] = op.type === 'put' ? ownCopy(op.value) : undefined;
      expiries[i] = op.type === 'put' ? op.expiresAt : undefined;
    }
    return this.enqueue(
      keys,
      ks,
      values,
      (e, ts, revs) => {
        const withRevisions: BatchOp[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const op = ops[i]!;
          withRevisions[i] =
            op.type === 'put'
              ? {
                  type: 'put',
                  key: op.key,
                  value: op.value,
                  expiresAt: op.expiresAt,
                  create: revs[i]?.create,
                  version: revs[i]?.version,
                }
              : op;
        }
        return e.batch(withRevisions, { ts });
      },
      expiries,
      knownPrior,
    );
  }

  /**
   * readRaw reads keys from the overlay or, for those without pending writes, from the engine;
   * it starts over when a write to a key read from the engine was queued during the await.
   */
  private readRaw(keys: readonly Uint8Array[], ks: readonly string[]): Promise<Latest[]> {
    return this.readConsistent(keys, ks, (values) => values);
  }

  private async readConsistent<R>(
    borrowed: readonly Uint8Array[],
    ks: readonly string[],
    then: (values: Latest[]) => R,
  ): Promise<R> {
    // The first engine read happens within the call; a retry comes after an await, when the
    // caller's keys may hold other bytes: it reads keys rebuilt from their strings.
    let keys = borrowed;
    for (let attempt = 0; ; attempt++) {
      if (attempt === 1) keys = ks.map(keyBytesOf);
      const values: (Latest | undefined)[] = new Array(keys.length);
      const fromEngine: number[] = [];
      for (let i = 0; i < keys.length; i++) {
        const newest = this.states.get(ks[i]!)?.newest;
        if (newest !== undefined) values[i] = this.latestOf(newest);
        else fromEngine.push(i);
      }
      if (fromEngine.length === 0) return then(values as Latest[]);
      const watched = fromEngine.map((i) => {
        const k = ks[i]!;
        let st = this.states.get(k);
        if (st === undefined) {
          st = { version: 0, readers: 0, oldest: undefined, newest: undefined };
          this.states.set(k, st);
        }
        st.readers++;
        return { st, k, version: st.version };
      });
      let read: (Stored | undefined)[];
      try {
        read =
          fromEngine.length === 1
            ? [await this.engine.getStored(keys[fromEngine[0]!]!)]
            : await Promise.all(fromEngine.map((i) => this.engine.getStored(keys[i]!)));
      } finally {
        for (const w of watched) {
          w.st.readers--;
          this.maybeDrop(w.k, w.st);
        }
      }
      // A write queued to any of these keys during the await may not be in what we read.
      if (watched.some((w) => w.st.version !== w.version)) continue;
      for (let j = 0; j < fromEngine.length; j++) {
        const v = read[j];
        values[fromEngine[j]!] =
          v === undefined
            ? { value: undefined, expiresAt: undefined, revision: undefined, durable: undefined }
            : { value: asBuffer(v.value), expiresAt: v.expiresAt, revision: v.revision, durable: undefined };
      }
      return then(values as Latest[]);
    }
  }

  /** latestOf is what readers see of a pending write: absent once its expiry has passed. */
  private latestOf(node: PendingWrite): Latest {
    if (node.expiresAt !== undefined && isExpired(node.expiresAt, this.clock.nowMs())) {
      return { value: undefined, expiresAt: undefined, revision: undefined, durable: node.durable };
    }
    return { value: node.value, expiresAt: node.expiresAt, revision: node.revision, durable: node.durable };
  }

  /**
   * enqueue records one write (to one or more keys, values undefined for deletes, with their
   * expiries, all undefined when omitted) in the overlay and hands it to the engine,
   * synchronously. Returns the write's own durability.
   */
  private enqueue(
    keys: readonly Uint8Array[],
    ks: readonly string[],
    values: readonly (Buffer | undefined)[],
    write: (engine: Engine, ts: number, revisions: readonly (Revision | undefined)[]) => Promise<void>,
    expiries?: readonly (number | undefined)[],
    knownPrior?: (k: string) => Prior | undefined,
  ): Promise<void> {
    assert(keys.length === ks.length && ks.length === values.length, 'enqueue: parallel arrays');
    let ts: number;
    let revisions: (Revision | undefined)[];
    try {
      ts =
        this.observer === undefined
          ? writeTs(undefined, this.engine.lastTs())
          : this.observer.written(ks, (i) => this.prior(keys[i]!, ks[i]!, knownPrior));
      // Every put's revision, from the state before this write (a batch naming a key twice
      // keeps its last operation, which counts once).
      revisions = values.map((value, i) =>
        value === undefined
          ? undefined
          : revisionOfPut(this.revisionBefore(keys[i]!, ks[i]!, knownPrior), ts, {}),
      );
    } catch (err) {
      return Promise.reject(err);
    }
    this.enqueuedTs = ts;
    let own: Promise<void>;
    try {
      own = write(this.engine, ts, revisions);
    } catch (err) {
      own = Promise.reject(err);
    }
    own.catch(noop);
    const seq = ++this.seq;
    this.pendingWrites++;
    const nodes: { k: string; st: KeyState; node: PendingWrite }[] = [];
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i]!;
      let st = this.states.get(k);
      if (st === undefined) {
        st = { version: 0, readers: 0, oldest: undefined, newest: undefined };
        this.states.set(k, st);
      }
      st.version++;
      const node: PendingWrite = {
        version: st.version,
        ts,
        value: values[i],
        expiresAt: expiries?.[i],
        revision: revisions[i],
        durable: own,
        older: st.newest,
        newer: undefined,
      };
      if (st.newest !== undefined) st.newest.newer = node;
      else st.oldest = node;
      st.newest = node;
      nodes.push({ k, st, node });
    }
    own.then(
      () => {
        this.settle(seq, nodes, true);
        this.observer?.settled(ts);
      },
      () => {
        this.settle(seq, nodes, false);
        if (this.observer !== undefined) {
          // Later than the call: the key's bytes from its string, not the borrowed buffer.
          this.observer.failed(ts, ks, (i) => this.durableOrUndefined(keyBytesOf(ks[i]!)));
          this.observer.settled(ts);
        }
      },
    );
    return own;
  }

  /** prior is the value `key` has before a write now being queued: pending, else durable. */
  private prior(
    key: Uint8Array,
    k: string,
    knownPrior: ((k: string) => Prior | undefined) | undefined,
  ): Prior {
    const newest = this.states.get(k)?.newest;
    if (newest !== undefined) return { value: newest.value, fromTs: newest.ts };
    const known = knownPrior?.(k);
    if (known !== undefined) return known;
    const value = this.engine.getSync(key);
    return { value: value === undefined ? undefined : asBuffer(value), fromTs: 0 };
  }

  /**
   * revisionBefore is `key`'s revision before a write now being queued: pending, else durable
   * (as `knownPrior` names it: a transaction that read the key at a snapshot nobody wrote after,
   * without an expiry that could have lapsed since, knows it; else looked up).
   */
  private revisionBefore(
    key: Uint8Array,
    k: string,
    knownPrior?: (k: string) => Prior | undefined,
  ): Revision | undefined {
    const newest = this.states.get(k)?.newest;
    if (newest !== undefined) return this.latestOf(newest).revision;
    const known = knownPrior?.(k);
    if (known !== undefined && known.revision !== undefined) return known.revision;
    return this.engine.revisionSync(key);
  }

  private durableOrUndefined(key: Uint8Array): Buffer | undefined {
    try {
      const value = this.engine.getSync(key);
      return value === undefined ? undefined : asBuffer(value);
    } catch {
      // A store that cannot be read any more serves no snapshot either.
      return undefined;
    }
  }

  /**
   * settle drops a settled write from the overlay. Success: the engine now shows it and every
   * write queued before it (the engine applies writes in order), so those entries go too.
   * Failure: only this write goes; readers see the older pending value or the engine's.
   */
  private settle(
    seq: number,
    nodes: readonly { k: string; st: KeyState; node: PendingWrite }[],
    ok: boolean,
  ) {
    this.pendingWrites--;
    if (seq > this.settledSeq) this.settledSeq = seq;
    for (const { k, st, node } of nodes) {
      if (ok) {
        while (st.oldest !== undefined && st.oldest.version <= node.version) {
          const next = st.oldest.newer;
          st.oldest.newer = undefined;
          st.oldest = next;
          if (next !== undefined) next.older = undefined;
        }
        if (st.oldest === undefined) st.newest = undefined;
      } else if (node.older !== undefined || node.newer !== undefined || st.oldest === node) {
        // Unlink, if an earlier success did not already drop it.
        if (node.older !== undefined) node.older.newer = node.newer;
        else st.oldest = node.newer;
        if (node.newer !== undefined) node.newer.older = node.older;
        else st.newest = node.older;
        node.older = undefined;
        node.newer = undefined;
      }
      this.maybeDrop(k, st);
    }
    if (this.waiters.length > 0) {
      const all = this.pendingWrites === 0;
      const keep: typeof this.waiters = [];
      for (const w of this.waiters) {
        if (all || w.seq <= this.settledSeq) w.resolve();
        else keep.push(w);
      }
      this.waiters = keep;
    }
  }

  private maybeDrop(k: string, st: KeyState): void {
    if (st.readers === 0 && st.newest === undefined && this.states.get(k) === st) this.states.delete(k);
  }
}
