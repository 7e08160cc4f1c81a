// Engine is the small interface every storage engine implements: our Bitcask engine
// (storage/cask), and adapters for peers (storage/lmdb, bench's classic-level). One conformance
// suite (storage/engine-conformance.ts) runs against every implementation.
//
// Semantics every implementation must keep:
// - Keys and values are bytes. Keys order lexicographically by unsigned byte.
// - A write (put, delete, batch) resolves only once it is durable under the engine's
//   durability mode; a batch is atomic (all of it or none of it, also after a crash).
// - Reads never observe a write that has not resolved durable in `always` mode.
// - Writes from one caller are applied in call order.
// - Expiry (TTL): a put may carry `expiresAt`, an absolute time in ms since the Unix epoch, read
//   from the engine's Clock. A key whose expiresAt is below the clock's now (Redis's rule: alive
//   while now <= expiresAt) reads as absent: get, has, scan, expiry and stats().keys all skip
//   it at once (lazy expiry). An active expiry cycle, bounded per run, then deletes expired keys
//   with ordinary tombstones, so their space is reclaimed by normal compaction and an expired
//   key can never come back after a restart. A put without expiresAt clears any expiry.

export type BatchOp =
  | {
      readonly type: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      /** expiresAt: ms since the Unix epoch after which the key reads as absent; undefined: never. */
      readonly expiresAt?: number | undefined;
    }
  | { readonly type: 'delete'; readonly key: Uint8Array };

/** PutOptions: per-write options of put(). */
export interface PutOptions {
  /** expiresAt: ms since the Unix epoch after which the key reads as absent; undefined: never. */
  readonly expiresAt?: number | undefined;
}

/** Stored is a live value with its expiry (undefined when the key never expires). */
export interface Stored {
  readonly value: Uint8Array;
  readonly expiresAt: number | undefined;
}

/** ScanRange selects keys in [start, end) (both optional), in ascending or descending order. */
export interface ScanRange {
  /** start: the first key included; undefined starts at the first key. */
  readonly start?: Uint8Array | undefined;
  /** end: the first key excluded; undefined runs to the last key. */
  readonly end?: Uint8Array | undefined;
  /** limit: at most this many entries; undefined for no limit. */
  readonly limit?: number | undefined;
  /** reverse: descending key order (from just below `end` down to `start`). */
  readonly reverse?: boolean | undefined;
}

export type Entry = readonly [key: Uint8Array, value: Uint8Array];

/** Durability says when a write is acknowledged. */
export type Durability =
  /** always: after the bytes are fsynced (fdatasync); the default. */
  | 'always'
  /** interval: after the bytes are written to the OS; fsynced every `syncIntervalMs`. */
  | 'interval'
  /** never: after the bytes are written to the OS; fsynced only on close or flush(). */
  | 'never';

export interface EngineStats {
  readonly engine: string;
  /** keys: live keys (expired keys not counted, even before the expiry cycle deletes them). */
  readonly keys: number;
  /** expires: live keys that carry an expiry (INFO's `expires=`). */
  readonly expires: number;
  /** diskBytes: bytes of all files the engine owns. */
  readonly diskBytes: number;
  /** liveBytes: bytes on disk still referenced by live keys, where the engine knows it. */
  readonly liveBytes: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly compactions: number;
}

export interface Engine {
  readonly name: string;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * getSync is `get` done synchronously: the durable state at this instant. Transactions need it
   * to read a snapshot and to capture the version a write replaces in one synchronous step
   * (docs/transactions.md).
   */
  getSync(key: Uint8Array): Uint8Array | undefined;
  has(key: Uint8Array): Promise<boolean>;
  /** getStored returns the value and expiry of a live key in one consistent read. */
  getStored(key: Uint8Array): Promise<Stored | undefined>;
  /**
   * expiry returns a live key's expiresAt, null when the key exists without an expiry, and
   * undefined when the key does not exist (or has expired): Redis's PTTL cases.
   */
  expiry(key: Uint8Array): Promise<number | null | undefined>;
  /** put stores a value; without `options.expiresAt` any earlier expiry of the key is cleared. */
  put(key: Uint8Array, value: Uint8Array, options?: PutOptions): Promise<void>;
  /** delete removes a key; resolves true when the key existed (counting writes queued before it). */
  delete(key: Uint8Array): Promise<boolean>;
  batch(ops: readonly BatchOp[]): Promise<void>;
  /** scan yields entries in key order; it is not a snapshot: each value is the latest when yielded. */
  scan(range?: ScanRange): AsyncIterableIterator<Entry>;
  /** flush makes every acknowledged write durable (a no-op in `always` mode). */
  flush(): Promise<void>;
  /** compact reclaims space now instead of waiting for the background trigger. */
  compact(): Promise<void>;
  stats(): EngineStats;
  /**
   * close flushes, fsyncs and releases the directory; every other method fails with
   * ClosedError afterwards. close itself is idempotent: a second call resolves with the first.
   */
  close(): Promise<void>;
}
