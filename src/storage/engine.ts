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

export type BatchOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: Uint8Array };

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
  /** keys: live keys. */
  readonly keys: number;
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
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
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
