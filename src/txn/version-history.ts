// VersionHistory: the overwritten versions of keys that registered snapshots (or the retention
// window) may still read. The grammar and invariant H are in docs/transactions.md:
//
//   history[key] := entry*   ordered by validTo, ascending
//   entry        := { validTo, value, expiresAt, valueType, fromTs }
//                   -- `value` (written at fromTs, with its expiry and type) held until validTo
//
// Keys are latin1 strings of their bytes (binary-safe; JS string order is then byte order), kept
// in a sorted index so snapshot scans can merge them with the engine's scan.
//
// Buffers: values are kept without copying, because none is a caller's: each is the write pipeline's
// own copy of a pending write or a fresh buffer from an engine read (Mvcc.written's `prior`).
// They are shared with the write pipeline and other readers, so nobody writes into them, and they
// leave only as copies (Snapshot.readKey, Mvcc.scanAt).
import { assert } from '../stdx/assert.js';

export interface VersionEntry {
  readonly k: string;
  readonly validTo: number;
  value: Buffer | undefined;
  /**
   * expiresAt: the value's expiry (ms since the epoch), undefined when it has none. Expiry is by
   * the clock, not by timestamp: a reader sees the value as absent once it has passed.
   */
  expiresAt: number | undefined;
  /** valueType: the value's type (storage/value-type.ts; 0: a string). */
  valueType: number;
  fromTs: number;
  /** capturedAtMs: wall time of the capture, for the retention window. */
  readonly capturedAtMs: number;
  /**
   * damaged: the replaced value could not be read (its record is damaged: CorruptionError), so a
   * snapshot that reads this version fails with it, as a read of the engine would have.
   */
  damaged: Error | undefined;
}

/** DurableState: a key's durable value now, with its expiry and type (undefined type: a string). */
export interface DurableState {
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  readonly valueType?: number | undefined;
  /** damaged: the value could not be read (a damaged record); `value` is then undefined. */
  readonly damaged?: Error | undefined;
}

/** lowerBound returns the first index of `sorted` whose element is >= `k`. */
function lowerBound(sorted: readonly string[], k: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class VersionHistory {
  private readonly byKey = new Map<string, VersionEntry[]>();
  /** sortedKeys: the keys of byKey in byte order. */
  private sortedKeys: string[] = [];
  private entries = 0;
  /**
   * fifo: every entry in capture order, which is validTo order (timestamps only grow); `head`
   * indexes the oldest still held. Dropping from the front is O(1) per entry.
   */
  private fifo: VersionEntry[] = [];
  private head = 0;

  /** size: entries retained (the cost of open snapshots, exported as a metric). */
  get size(): number {
    return this.entries;
  }

  get keyCount(): number {
    return this.byKey.size;
  }

  /**
   * add records that `value` (written at fromTs, expiring at `expiresAt`) was replaced by the
   * write at `validTo`.
   */
  add(
    k: string,
    validTo: number,
    value: Buffer | undefined,
    fromTs: number,
    nowMs: number,
    expiresAt?: number,
    valueType = 0,
    damaged?: Error,
  ): void {
    let list = this.byKey.get(k);
    if (list === undefined) {
      list = [];
      this.byKey.set(k, list);
      const at = lowerBound(this.sortedKeys, k);
      this.sortedKeys.splice(at, 0, k);
    }
    const last = list[list.length - 1];
    assert(last === undefined || last.validTo < validTo, 'history entries must be added in ts order');
    const entry: VersionEntry = {
      k,
      validTo,
      value,
      expiresAt,
      valueType,
      fromTs,
      capturedAtMs: nowMs,
      damaged,
    };
    list.push(entry);
    this.fifo.push(entry);
    this.entries++;
  }

  /** lookup returns the entry holding the value of `k` at `s`, if the key changed after `s`. */
  lookup(k: string, s: number): VersionEntry | undefined {
    const list = this.byKey.get(k);
    if (list === undefined) return undefined;
    // Lists are short (one entry per overwrite while a reader is open); newest-first search
    // would be wrong: the first entry with validTo > s is the one that covers s.
    for (const e of list) if (e.validTo > s) return e;
    return undefined;
  }

  /**
   * nextKey returns the smallest key in history that is > `after` (or >= `from` when `after` is
   * undefined) and < `end`, in the given direction; undefined when there is none.
   */
  nextKey(
    bound: string | undefined,
    inclusive: boolean,
    limit: string | undefined,
    reverse: boolean,
  ): string | undefined {
    const keys = this.sortedKeys;
    if (!reverse) {
      let i = bound === undefined ? 0 : lowerBound(keys, bound);
      if (!inclusive && bound !== undefined && keys[i] === bound) i++;
      const k = keys[i];
      return k !== undefined && (limit === undefined || k < limit) ? k : undefined;
    }
    // Reverse: the largest key < bound (or <= bound when inclusive) and >= limit.
    let i = bound === undefined ? keys.length - 1 : lowerBound(keys, bound) - 1;
    if (inclusive && bound !== undefined && keys[i + 1] === bound) i++;
    const k = i >= 0 ? keys[i] : undefined;
    return k !== undefined && (limit === undefined || k >= limit) ? k : undefined;
  }

  /**
   * failed rewrites the entries of `k` whose value came from the failed write at `ts` to the value
   * that write replaced, so no reader ever sees a write that never reached the engine. That value
   * is the failed write's own entry when it was captured, else `durableNow()`: the engine's
   * current value, which the failed write never replaced (the engine applies writes in order and
   * reports a failure before it publishes anything queued after it).
   */
  failed(k: string, ts: number, durableNow: () => DurableState): void {
    const list = this.byKey.get(k);
    if (list === undefined) return;
    const own = list.find((e) => e.validTo === ts);
    for (const e of list) {
      if (e.fromTs !== ts) continue;
      if (own !== undefined) {
        e.value = own.value;
        e.expiresAt = own.expiresAt;
        e.valueType = own.valueType;
        e.fromTs = own.fromTs;
        e.damaged = own.damaged;
      } else {
        const durable = durableNow();
        e.value = durable.value;
        e.expiresAt = durable.expiresAt;
        e.valueType = durable.valueType ?? 0;
        e.fromTs = 0;
        e.damaged = durable.damaged;
      }
    }
  }

  /**
   * dropOldest drops entries from the front of the capture order while `drop` accepts them (each
   * is then the oldest of its key too) and returns the largest validTo dropped (0 if none).
   */
  dropOldest(drop: (e: VersionEntry) => boolean): number {
    let dropped = 0;
    let emptied = false;
    while (this.head < this.fifo.length) {
      const e = this.fifo[this.head]!;
      const list = this.byKey.get(e.k);
      if (list === undefined || list[0] !== e) {
        // Already removed by a full prune.
        this.head++;
        continue;
      }
      if (!drop(e)) break;
      list.shift();
      if (list.length === 0) {
        this.byKey.delete(e.k);
        emptied = true;
      }
      this.entries--;
      this.head++;
      dropped = e.validTo;
    }
    this.compactFifo();
    if (emptied) this.sortedKeys = this.sortedKeys.filter((k) => this.byKey.has(k));
    return dropped;
  }

  /**
   * prune drops every entry `keep` rejects, wherever it is, and returns the largest validTo
   * dropped (0 if none): reads below it may have lost their version (the caller's horizon).
   * O(entries): for occasional use; dropOldest is the cheap, frequent one.
   */
  prune(keep: (e: VersionEntry) => boolean): number {
    let dropped = 0;
    let emptied = false;
    for (const [k, list] of this.byKey) {
      const kept = list.filter((e) => {
        if (keep(e)) return true;
        if (e.validTo > dropped) dropped = e.validTo;
        return false;
      });
      this.entries -= list.length - kept.length;
      if (kept.length === 0) {
        this.byKey.delete(k);
        emptied = true;
      } else if (kept.length !== list.length) this.byKey.set(k, kept);
    }
    if (emptied) this.sortedKeys = this.sortedKeys.filter((k) => this.byKey.has(k));
    this.fifo = this.fifo.slice(this.head).filter((e) => this.byKey.get(e.k)?.includes(e) === true);
    this.head = 0;
    return dropped;
  }

  /** compactFifo reclaims the dropped front of the queue once it is most of the array. */
  private compactFifo(): void {
    if (this.head === this.fifo.length) {
      this.fifo = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.byKey.clear();
    this.sortedKeys = [];
    this.entries = 0;
    this.fifo = [];
    this.head = 0;
  }
}
