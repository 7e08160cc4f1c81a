// Mvcc: commit timestamps, registered readers, the version history and commit validation for one
// store. docs/transactions.md has the model, the invariants and the failure cases; in short:
//
// - Every write is reported here synchronously by the write pipeline, before the engine sees it
//   (`written`): it gets its commit timestamp, and while anyone may read older versions the
//   value it replaces is captured in the history (invariant H).
// - Readers (snapshots, transactions, WATCH) register at a start timestamp `s`; reads at `s` are
//   synchronous: the history, else the engine's durable value.
// - Buffers: keys are tracked as latin1 strings; the values captured (see version-history.ts)
//   are the write pipeline's own or fresh engine reads, never a caller's, and `read` returns them
//   shared: its callers copy before handing them out.
// - Commit validation (`validate`) is synchronous too, and the caller enqueues the commit in the
//   same turn of the event loop, so nothing can commit in between.
import { type Clock, systemClock } from '../io/clock.js';
import { assert } from '../stdx/assert.js';
import { asBuffer } from '../stdx/bytes.js';
import { keyFromString, keyString } from '../stdx/key-string.js';
import type { Engine, Revision, ScanRange } from '../storage/engine.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { isExpired } from '../storage/expiry-index.js';
import { SnapshotTooOldError, TxnConflictError } from './errors.js';
import { type DurableState, type VersionEntry, VersionHistory } from './version-history.js';

/** PRUNE_EVERY_CAPTURES: with a retention window, prune the history after this many captures. */
const PRUNE_EVERY_CAPTURES = 4096;
/**
 * FULL_PRUNE_MIN_ENTRIES: the cheap prune drops versions from the oldest end only, so a
 * long-lived snapshot keeps every version captured after it. Once the history holds this many
 * entries (and twice as many as after the last full prune) a full prune keeps only the versions
 * some reader can actually see: at most one per key per reader.
 */
const FULL_PRUNE_MIN_ENTRIES = 65_536;
/** US_PER_MS: commit timestamps count microseconds. */
const US_PER_MS = 1000;

export type Isolation = 'snapshot' | 'serializable';
export const ISOLATION_LEVELS: readonly Isolation[] = ['snapshot', 'serializable'];
export const DEFAULT_ISOLATION: Isolation = 'serializable';

/** Registration: one reader pinning the versions it may read. */
export interface Registration {
  readonly id: number;
  readonly startTs: number;
  readonly kind: 'snapshot' | 'transaction' | 'watch';
  /**
   * settled: every write at or before startTs had settled at registration, so reads may start at
   * once; otherwise the caller waits for the write pipeline to settle them first.
   */
  readonly settled: boolean;
}

/**
 * KeyRange: [start, end) of latin1 key strings, or [start, end] when `endInclusive`; undefined
 * bounds are open. The inclusive form lets a forward scan cover "up to the last key it yielded"
 * by moving `end` in place, without building the key's successor string per entry.
 */
export interface KeyRange {
  readonly start: string | undefined;
  readonly end: string | undefined;
  readonly endInclusive?: boolean;
}

/** ReadSet: what a serializable transaction read, for validation. */
export interface ReadSet {
  readonly keys: Iterable<string>;
  readonly ranges: readonly KeyRange[];
}

export interface MvccStats {
  /** lastTs: the newest commit timestamp handed out. */
  readonly lastTs: number;
  /** readers: registered snapshots, transactions and watches. */
  readonly readers: number;
  /** oldestReaderTs: the start of the oldest registered reader, or undefined. */
  readonly oldestReaderTs: number | undefined;
  /** versionsRetained: overwritten versions kept in memory for readers and retention. */
  readonly versionsRetained: number;
  /** horizonTs: time-travel reads below this timestamp fail. */
  readonly horizonTs: number;
  readonly commits: number;
  readonly conflicts: number;
}

/** Prior: the value a write replaces and the timestamp that wrote it (0: durable before open). */
export interface Prior {
  readonly value: Buffer | undefined;
  /** expiresAt: that value's expiry (ms since the epoch); undefined when it has none. */
  readonly expiresAt?: number | undefined;
  /** valueType: that value's type (storage/value-type.ts); undefined or 0 is a string. */
  readonly valueType?: number | undefined;
  readonly fromTs: number;
  /** revision: the key's revision with that value, when the caller knows it (see write-pipeline.ts). */
  readonly revision?: Revision | undefined;
  /**
   * damaged: the value could not be read (its record is damaged); the write still goes ahead (a
   * damaged key is cleared by writing or deleting it), and snapshots that would read the
   * replaced version fail with this error instead.
   */
  readonly damaged?: Error | undefined;
}

/**
 * SnapshotRead: a value read at a snapshot, with its expiry (undefined: none, or absent) and its
 * revision when the engine supplied it. A value whose expiry has passed reads as absent.
 */
export interface SnapshotRead {
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** valueType: the value's type (storage/value-type.ts; 0: a string, also when absent). */
  readonly valueType: number;
  /**
   * revision: the key's durable revision when the value came from the engine and carries no
   * expiry (undefined from the history, or for a key with an expiry, which may lapse before a
   * commit: then nobody may rely on it).
   */
  readonly revision: Revision | undefined;
}

/** ABSENT: a read of a key that is not there (or whose value has expired). */
export const ABSENT: SnapshotRead = {
  value: undefined,
  expiresAt: undefined,
  valueType: 0,
  revision: undefined,
};

export interface MvccOptions {
  readonly clock?: Clock | undefined;
  /**
   * versionRetentionMs: keep overwritten versions at least this long, so that time-travel reads
   * (`db.snapshot({ at })`) can reach that far back. Default 0: keep versions only while a
   * registered reader needs them.
   */
  readonly versionRetentionMs?: number | undefined;
}

export class Mvcc {
  private ts = 0;
  private nextId = 1;
  /**
   * readers: registrations at the settled watermark, in registration order, which is startTs
   * order (the watermark only grows): the first is the oldest. pinned: every other registration
   * (watches and fallbacks at lastTs, time travel at `at`); few, scanned for the minimum.
   */
  private readonly readers = new Map<number, Registration>();
  private readonly pinned = new Map<number, Registration>();
  private fullPruneAt = FULL_PRUNE_MIN_ENTRIES;
  readonly history = new VersionHistory();
  /** horizon: versions replaced at or before it may be gone (see docs/transactions.md). */
  private horizon = 0;
  /** lastWrite: key -> ts of its newest write, while readers are registered (for validation). */
  private readonly lastWrite = new Map<string, number>();
  /** commitLog: writes in ts order with their keys, while readers are registered (for ranges). */
  private commitLog: { readonly ts: number; readonly keys: readonly string[] }[] = [];
  /** logHead: commitLog entries before it are trimmed (kept as an index to make trimming O(1)). */
  private logHead = 0;
  private capturesSincePrune = 0;
  /** settledTs: every write at or before it has settled (durable or failed). */
  private settledTs: number;
  /**
   * unsettled: timestamps of writes not settled yet, in ts order (from `unsettledHead`), and
   * settledEarly: those among them that settled before an older one did (a write the engine
   * refuses at once, e.g. on a closed store, settles before the writes queued ahead of it).
   * settledTs advances only over a settled prefix.
   */
  private unsettled: number[] = [];
  private unsettledHead = 0;
  private readonly settledEarly = new Set<number>();
  /**
   * untrackedTs: the newest write whose key is not (or no longer) in lastWrite/commitLog. A
   * reader may start at the watermark only above it: validation must see every later write.
   */
  private untrackedTs = 0;
  /** retiredBefore: registrations with a smaller id were retired (retireReaders). */
  private retiredBefore = 0;
  private commits = 0;
  private conflicts = 0;
  private readonly clock: Clock;
  private readonly retentionMs: number;

  constructor(
    private readonly engine: Engine,
    options: MvccOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    const retention = options.versionRetentionMs ?? 0;
    if (!(Number.isFinite(retention) && retention >= 0)) {
      throw new InvalidArgumentError(`versionRetentionMs must be a non-negative number, got ${retention}`);
    }
    this.retentionMs = retention;
    // Commit timestamps are the engine's revisions and persist: start above every stored one,
    // even if the wall clock went back across a restart.
    this.ts = Math.max(this.clock.nowMs() * US_PER_MS, engine.lastTs());
    this.horizon = this.ts;
    this.settledTs = this.ts;
  }

  /** lastTs: the newest commit timestamp handed out (every write before it has a smaller one). */
  get lastTs(): number {
    return this.ts;
  }

  get horizonTs(): number {
    return this.horizon;
  }

  // ---- writes (called by the write pipeline) ---------------------------------------------------------

  /**
   * unseen assigns the commit timestamp of a write no reader can tell happened: the expiry
   * cycle's tombstones, which delete values that already read as absent at every timestamp
   * (the engine hides an expired value by the clock, not by a reader's timestamp). Nothing is
   * captured or tracked for validation, so a transaction that read such a key as absent does
   * not conflict with its tombstone; the write still settles like any other.
   */
  unseen(): number {
    const ts = this.nextTs();
    this.unsettled.push(ts);
    return ts;
  }

  /** nextTs is the next commit timestamp: above the last, microseconds of the clock when ahead. */
  private nextTs(): number {
    const ts = Math.max(this.ts + 1, this.engine.lastTs() + 1, Math.floor(this.clock.nowMs() * US_PER_MS));
    assert(Number.isSafeInteger(ts), 'commit timestamps must stay below 2^53');
    this.ts = ts;
    return ts;
  }

  /**
   * capturing: a write now must give `written` the values it replaces (a reader is registered,
   * or versions are retained); otherwise `written` never calls its `prior`.
   */
  get capturing(): boolean {
    return this.retentionMs > 0 || this.readerCount() > 0;
  }

  /**
   * written assigns the commit timestamp of a write to `ks` (called synchronously before the
   * engine sees the write) and captures the values it replaces when someone may read them.
   */
  written(ks: readonly string[], prior: (i: number) => Prior): number {
    const tracking = this.readerCount() > 0;
    const capture = tracking || this.retentionMs > 0;
    // Read what the write replaces before anything changes: reading may throw (a closed or
    // damaged store), and then the write is refused whole.
    let unique: readonly string[] = ks;
    let priors: Prior[] | undefined;
    if (capture) {
      priors = [];
      if (ks.length === 1) priors.push(prior(0));
      else {
        // A batch may name a key twice; the value it replaces is the one before the batch.
        const seen = new Set<string>();
        const keys: string[] = [];
        for (let i = 0; i < ks.length; i++) {
          const k = ks[i]!;
          if (seen.has(k)) continue;
          seen.add(k);
          keys.push(k);
          priors.push(prior(i));
        }
        unique = keys;
      }
    }
    const ts = this.nextTs();
    this.commits++;
    this.unsettled.push(ts);
    if (!tracking) this.untrackedTs = ts;
    if (!capture) {
      // Nobody can read below this write any more: time travel stops here.
      this.horizon = ts;
      return ts;
    }
    const nowMs = this.clock.nowMs();
    for (let i = 0; i < unique.length; i++) {
      const k = unique[i]!;
      const p = priors![i]!;
      this.history.add(k, ts, p.value, p.fromTs, nowMs, p.expiresAt, p.valueType ?? 0, p.damaged);
      if (tracking) this.lastWrite.set(k, ts);
    }
    if (tracking) this.commitLog.push({ ts, keys: unique });
    if (this.history.size >= this.fullPruneAt) this.prune();
    else if (this.retentionMs > 0 && ++this.capturesSincePrune >= PRUNE_EVERY_CAPTURES) this.prune();
    return ts;
  }

  /** settled: the write at `ts` settled (durable or failed), in whatever order they settle. */
  settled(ts: number): void {
    const q = this.unsettled;
    if (this.settledEarly.size === 0 && q[this.unsettledHead] === ts) {
      // In order, nothing settled early: the common case, without the set (issue 14).
      this.settledTs = ts;
      this.unsettledHead++;
    } else {
      this.settledEarly.add(ts);
      while (this.unsettledHead < q.length && this.settledEarly.delete(q[this.unsettledHead]!)) {
        this.settledTs = q[this.unsettledHead++]!;
      }
    }
    if (this.unsettledHead === q.length) {
      this.unsettled = [];
      this.unsettledHead = 0;
    } else if (this.unsettledHead > 1024 && this.unsettledHead * 2 > q.length) {
      this.unsettled = q.slice(this.unsettledHead);
      this.unsettledHead = 0;
    }
  }

  /** failed undoes what `written` recorded for a write that never reached the engine. */
  failed(ts: number, ks: readonly string[], durableNow: (i: number) => DurableState): void {
    for (let i = 0; i < ks.length; i++) this.history.failed(ks[i]!, ts, () => durableNow(i));
  }

  // ---- readers -----------------------------------------------------------------------------------

  /** register pins the versions visible at `at` (default: now) until `release`. */
  register(kind: Registration['kind'], at?: number): Registration {
    if (at !== undefined) {
      if (!Number.isSafeInteger(at) || at < 0) {
        throw new InvalidArgumentError(`a snapshot timestamp must be a non-negative integer, got ${at}`);
      }
      if (at < this.horizon) throw new SnapshotTooOldError(at, this.horizon);
      if (at > this.ts) {
        throw new InvalidArgumentError(`cannot read as of ${at}: the newest commit is ${this.ts}`);
      }
    }
    // Snapshots and transactions start at the settled watermark when every later write is
    // tracked and captured: they read durable data at once, without waiting for a group commit
    // (which also keeps their conflict window short). WATCH must start at lastTs: only writes
    // after it count.
    const W = this.settledTs;
    if (at === undefined && kind !== 'watch' && this.untrackedTs <= W && this.horizon <= W) {
      const reg: Registration = { id: this.nextId++, startTs: W, kind, settled: true };
      this.readers.set(reg.id, reg);
      return reg;
    }
    const startTs = at ?? this.ts;
    const reg: Registration = { id: this.nextId++, startTs, kind, settled: startTs <= W };
    this.pinned.set(reg.id, reg);
    return reg;
  }

  release(reg: Registration): void {
    const oldest = this.oldestStart();
    if (!this.readers.delete(reg.id) && !this.pinned.delete(reg.id)) return;
    // Only the oldest reader holds back pruning.
    if (reg.startTs === oldest) this.prune();
  }

  /**
   * retireReaders is for a cluster member whose leadership changed (src/replica): writes another
   * leader made reach its engine without passing through here, so nothing captured what they
   * replaced, and open readers could see them mixed with older state. Every registration open
   * now is retired (its next read or commit fails with a retryable conflict: isRetired), and the
   * timestamps and the watermark move up to the engine's newest write, so readers registered
   * later start above every write this Mvcc did not see, and time travel below it is refused.
   */
  retireReaders(): void {
    this.retiredBefore = this.nextId;
    const engineTs = this.engine.lastTs();
    if (engineTs > this.ts) this.ts = engineTs;
    if (this.unsettledHead === this.unsettled.length && this.ts > this.settledTs) this.settledTs = this.ts;
    if (engineTs > this.horizon) this.horizon = engineTs;
  }

  /** expiredNow: an expiry (ms since the epoch; undefined: none) has passed by the store's clock. */
  expiredNow(expiresAt: number | undefined): boolean {
    return expiresAt !== undefined && isExpired(expiresAt, this.clock.nowMs());
  }

  /** isRetired: the registration was open when retireReaders ran. */
  isRetired(reg: Registration): boolean {
    return reg.id < this.retiredBefore;
  }

  isRegistered(reg: Registration): boolean {
    return this.readers.has(reg.id) || this.pinned.has(reg.id);
  }

  /**
   * read returns the value of `key` as of `s` and its expiry; synchronous, so it is one point in
   * time. Expiry goes by the clock, as everywhere (a value whose expiry has passed reads as
   * absent), whichever version the snapshot sees.
   */
  read(key: Uint8Array, k: string, s: number): SnapshotRead {
    const entry = this.history.lookup(k, s);
    if (entry !== undefined) {
      if (entry.damaged !== undefined) throw entry.damaged;
      if (entry.expiresAt !== undefined && isExpired(entry.expiresAt, this.clock.nowMs())) return ABSENT;
      return {
        value: entry.value,
        expiresAt: entry.expiresAt,
        valueType: entry.valueType,
        revision: undefined,
      };
    }
    const stored = this.engine.getStoredSync(key);
    if (stored === undefined) return ABSENT;
    return {
      value: asBuffer(stored.value),
      expiresAt: stored.expiresAt,
      valueType: stored.valueType ?? 0,
      // A revision only without an expiry: one that may lapse before a commit is no promise.
      revision: stored.expiresAt === undefined ? stored.revision : undefined,
    };
  }

  /**
   * scanAt yields the entries of `range` as of `s`: the engine's scan (the newest durable state)
   * merged key by key with the history, which holds every key changed after `s` (docs). Each
   * entry carries its value's type (storage/value-type.ts; 0: a string): values of every type
   * are yielded, and callers that serve strings only skip the rest.
   */
  async *scanAt(s: number, range: ScanRange): AsyncGenerator<[string, Buffer, number]> {
    const reverse = range.reverse === true;
    const startK = range.start === undefined ? undefined : keyString(range.start);
    const endK = range.end === undefined ? undefined : keyString(range.end);
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0 || (startK !== undefined && endK !== undefined && startK >= endK)) return;
    const iter = this.engine.scan({ start: range.start, end: range.end, reverse });
    let next = await iter.next();
    let cursor: string | undefined;
    let yielded = 0;
    try {
      while (yielded < limit) {
        const ek = next.done === true ? undefined : keyString(next.value[0]);
        const hk =
          cursor === undefined
            ? this.history.nextKey(reverse ? endK : startK, !reverse, reverse ? startK : endK, reverse)
            : this.history.nextKey(cursor, false, reverse ? startK : endK, reverse);
        if (ek === undefined && hk === undefined) return;
        let k: string;
        let fromEngine: Buffer | undefined;
        let engineType = 0;
        const engineFirst = ek !== undefined && (hk === undefined || (reverse ? ek >= hk : ek <= hk));
        if (engineFirst) {
          k = ek;
          fromEngine = asBuffer(next.done === true ? new Uint8Array(0) : next.value[1]);
          engineType = next.done === true ? 0 : (next.value[2] ?? 0);
        } else k = hk!;
        cursor = k;
        // Resolve after the engine's read: a write since then has left its entry in history.
        const entry = this.history.lookup(k, s);
        if (entry?.damaged !== undefined) throw entry.damaged;
        let value: Buffer | undefined;
        let valueType = 0;
        if (entry !== undefined) {
          const lapsed = entry.expiresAt !== undefined && isExpired(entry.expiresAt, this.clock.nowMs());
          value = lapsed ? undefined : entry.value && Buffer.from(entry.value);
          valueType = entry.valueType;
        } else if (fromEngine !== undefined) {
          value = fromEngine;
          valueType = engineType;
        } else {
          // getStoredSync, not getSync: a snapshot scan reads values of every type.
          const stored = this.engine.getStoredSync(keyFromString(k));
          value = stored === undefined ? undefined : asBuffer(stored.value);
          valueType = stored?.valueType ?? 0;
        }
        if (engineFirst || ek === k) {
          try {
            next = await iter.next();
          } catch (err) {
            // The engine could not read the entry after this one (a damaged record): this one is
            // still yielded, so the scan stops at the damaged key, not one entry before it.
            if (value !== undefined) yield [k, value, valueType];
            throw err;
          }
        }
        if (value === undefined) continue;
        yielded++;
        yield [k, value, valueType];
      }
    } finally {
      await iter.return?.();
    }
  }

  // ---- validation --------------------------------------------------------------------------------

  /**
   * validate throws TxnConflictError when a commit after `s` wrote a key in `writes` (snapshot
   * and serializable) or in `reads` (serializable). Synchronous: enqueue the commit right after.
   */
  validate(s: number, isolation: Isolation, writes: Iterable<string>, reads: ReadSet | undefined): void {
    for (const k of writes) {
      const t = this.lastWrite.get(k);
      if (t !== undefined && t > s) this.conflict(`write-write conflict on key ${printable(k)}`, k);
    }
    if (isolation !== 'serializable' || reads === undefined) return;
    for (const k of reads.keys) {
      const t = this.lastWrite.get(k);
      if (t !== undefined && t > s) this.conflict(`key ${printable(k)} read by the transaction changed`, k);
    }
    if (reads.ranges.length === 0) return;
    for (let i = this.commitLog.length - 1; i >= this.logHead; i--) {
      const c = this.commitLog[i]!;
      if (c.ts <= s) break;
      for (const k of c.keys) {
        for (const r of reads.ranges) {
          if (
            (r.start === undefined || k >= r.start) &&
            (r.end === undefined || k < r.end || (r.endInclusive === true && k === r.end))
          ) {
            this.conflict(`a write to ${printable(k)} falls in a range scanned by the transaction`, k);
          }
        }
      }
    }
  }

  /** changedSince reports whether `k` was written after `s` (WATCH). */
  changedSince(k: string, s: number): boolean {
    const t = this.lastWrite.get(k);
    return t !== undefined && t > s;
  }

  stats(): MvccStats {
    return {
      lastTs: this.ts,
      readers: this.readerCount(),
      oldestReaderTs: this.oldestStart(),
      versionsRetained: this.history.size,
      horizonTs: this.horizon,
      commits: this.commits,
      conflicts: this.conflicts,
    };
  }

  // ---- internals ---------------------------------------------------------------------------------

  private conflict(message: string, k: string): never {
    this.conflicts++;
    throw new TxnConflictError(message, keyFromString(k));
  }

  private readerCount(): number {
    return this.readers.size + this.pinned.size;
  }

  private oldestStart(): number | undefined {
    let oldest = this.readers.values().next().value?.startTs;
    for (const r of this.pinned.values()) if (oldest === undefined || r.startTs < oldest) oldest = r.startTs;
    return oldest;
  }

  /**
   * prune drops what no registered reader and no retention window needs any more: validation
   * state up to the oldest reader's start, and versions from the oldest end (every version
   * replaced at or before the oldest start is invisible to all readers). When the history has
   * grown large, a full pass also drops versions in the middle that no reader can see.
   */
  prune(): void {
    this.capturesSincePrune = 0;
    const oldest = this.oldestStart();
    const log = this.commitLog;
    while (this.logHead < log.length && (oldest === undefined || log[this.logHead]!.ts <= oldest)) {
      const c = log[this.logHead++]!;
      for (const k of c.keys) if (this.lastWrite.get(k) === c.ts) this.lastWrite.delete(k);
      // Validation can no longer see this write: no reader may start below it.
      if (c.ts > this.untrackedTs) this.untrackedTs = c.ts;
    }
    if (this.logHead === log.length) {
      this.commitLog = [];
      this.logHead = 0;
    } else if (this.logHead > 1024 && this.logHead * 2 > log.length) {
      this.commitLog = log.slice(this.logHead);
      this.logHead = 0;
    }
    if (this.history.size === 0) return;
    const keepSinceMs = this.clock.nowMs() - this.retentionMs;
    const retained = (e: VersionEntry) => this.retentionMs > 0 && e.capturedAtMs >= keepSinceMs;
    let dropped = this.history.dropOldest(
      (e) => (oldest === undefined || e.validTo <= oldest) && !retained(e),
    );
    if (this.history.size >= this.fullPruneAt) {
      const starts = [...this.readers.values(), ...this.pinned.values()].map((r) => r.startTs);
      dropped = Math.max(
        dropped,
        this.history.prune((e) => retained(e) || starts.some((s) => e.fromTs <= s && s < e.validTo)),
      );
      this.fullPruneAt = Math.max(FULL_PRUNE_MIN_ENTRIES, 2 * this.history.size);
    }
    if (dropped > this.horizon) this.horizon = dropped;
  }
}

function printable(k: string): string {
  const bytes = keyFromString(k);
  const text = bytes.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) && text.length <= 64
    ? `'${text}'`
    : `0x${bytes.toString('hex').slice(0, 64)}`;
}
