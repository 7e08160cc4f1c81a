// Engine is the small interface every storage engine implements: our Bitcask engine
// (storage/cask), and adapters for peers (storage/lmdb, bench's classic-level). One conformance
// suite (storage/engine-conformance.ts) runs against every implementation.
//
// Semantics every implementation must keep:
// - Keys and values are bytes. Keys order lexicographically by unsigned byte.
// - Buffers are borrowed (docs/ARCHITECTURE.md, "Who owns a buffer"): a key, value or scan bound
//   passed in may be reused by the caller as soon as the call returns, before its promise
//   settles, so an engine copies whatever it keeps (also a scan's bounds, before the generator's
//   body runs). Values and keys handed out are the caller's to keep and change. The conformance
//   suites run a second time with every caller buffer overwritten after each call.
// - The engine is the bottom of the write pipeline (src/txn/write-pipeline.ts), which is the
//   only keeper of writes queued but not yet durable and the only place commit timestamps and
//   revisions are assigned. An engine takes writes already stamped: `write(ts, ops)` with the
//   commit timestamp and, for every put, its `create` and `version`. It derives nothing and keeps
//   no overlay of queued writes; it checks the stamps (InvalidArgumentError) and the limits
//   (LimitError) and stores them.
// - A write resolves only once it is durable under the engine's durability mode; it is atomic
//   (all of its ops or none, also after a crash); writes are applied in call order (nothing is
//   awaited before a write is queued), and a write that settles (resolves or rejects) has every
//   write queued before it settled too.
// - Reads (get, getStored, scan, ...) return the durable state: never a write that has not
//   resolved durable in `always` mode. The synchronous reads (getSync, getStoredSync,
//   revisionSync) are the state at this instant, which the pipeline combines with its pending
//   writes into the newest state.
// - Expiry (TTL): a put may carry `expiresAt`, an absolute time in ms since the Unix epoch, read
//   from the engine's Clock. A key whose expiresAt is below the clock's now (Redis's rule: alive
//   while now <= expiresAt) reads as absent: get, has, scan, expiry and stats().keys all skip
//   it at once (lazy expiry). The engine lists due keys (`dueExpiries`); the pipeline's one
//   expiry cycle deletes them with ordinary tombstones, so their space is reclaimed by normal
//   compaction and an expired key can never come back after a restart. A put without
//   expiresAt clears any expiry.
// - Value types: a put may carry `valueType` (storage/value-type.ts: 0 a string, 1 a hash, ...),
//   stored beside the value as expiresAt is and handed back with it (Stored, Entry). A put
//   without it stores a string. An engine raises its store's format to FORMAT_TYPED before it
//   holds a typed value, so that an older build refuses the store.
// - Revisions (etcd's mod_revision, create_revision, version): every write has a commit
//   timestamp `ts`, strictly increasing over the life of the store (also across restarts); the
//   ops of one write share it. Every live key carries a Revision: `mod`, the ts of its newest
//   put; `create`, the ts of the put that created it (after it was absent, deleted or expired);
//   `version`, the puts since then (1 for the first). The pipeline assigns all three
//   (storage/revision.ts has the rules); the engine stores them with the value, and they survive
//   restarts, compaction and recovery.

/**
 * Revision: the commit timestamps and version count of a live key (etcd's mod_revision,
 * create_revision and version). A key written before revisions were stored (format < 3) reads
 * as `{ mod: its sequence number, create: mod, version: 1 }` until its next write.
 */
export interface Revision {
  /** mod: the commit timestamp of the key's newest put. */
  readonly mod: number;
  /** create: the commit timestamp of the put that created the key. */
  readonly create: number;
  /** version: puts since the key was created; 1 for the creating put. */
  readonly version: number;
}

/**
 * WriteOp: one operation of a stamped write. A put carries the revision the write pipeline gave
 * it: `create` in [1, ts] and `version` >= 1 (the write's ts is its `mod`).
 */
export type WriteOp =
  | {
      readonly type: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      /** expiresAt: ms since the Unix epoch after which the key reads as absent; undefined: never. */
      readonly expiresAt?: number | undefined;
      readonly create: number;
      readonly version: number;
      /**
       * valueType: what the value is (storage/value-type.ts); undefined or 0 is a string. The
       * engine stores it beside the value and never looks inside the value.
       */
      readonly valueType?: number | undefined;
    }
  | { readonly type: 'delete'; readonly key: Uint8Array };

/**
 * Stored is a live value with its expiry (undefined when the key never expires), revision and
 * value type (undefined or 0: a string).
 */
export interface Stored {
  readonly value: Uint8Array;
  readonly expiresAt: number | undefined;
  readonly revision: Revision;
  readonly valueType?: number | undefined;
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
  /**
   * keysOnly: the caller wants the keys alone (KEYS, SCAN): an engine that can list them
   * without reading their records yields a zero-length value and no value type, so a damaged
   * record fails only the reads of its own key, not every listing. Others ignore it.
   */
  readonly keysOnly?: boolean | undefined;
}

/** Entry: a scanned key and value, with the value's type when it is not a string (0 or absent). */
export type Entry = readonly [key: Uint8Array, value: Uint8Array, valueType?: number];

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
  /** avgTtlMs: mean time to expiry of the keys that carry one (INFO's `avg_ttl`), 0 for none. */
  readonly avgTtlMs: number;
  /** diskBytes: bytes of all files the engine owns. */
  readonly diskBytes: number;
  /** liveBytes: bytes on disk still referenced by live keys, where the engine knows it. */
  readonly liveBytes: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly compactions: number;
}

/**
 * BackupInfo: what a backup (Engine.backup) holds and how it was made. Every write acknowledged
 * before the backup began is in it, no write is in it by halves, and no write with a commit
 * timestamp above `lastTs` is in it.
 */
export interface BackupInfo {
  /** engine: the engine of the copied store ('cask'). */
  readonly engine: string;
  /** files: files the backup holds (data, hint and metadata files). */
  readonly files: number;
  /** linked: files that are hard links to the source's (sealed files on the same file system). */
  readonly linked: number;
  /**
   * copied: files whose bytes were copied (another file system) or written fresh (the metadata,
   * and the cask copy's own empty active data file).
   */
  readonly copied: number;
  /** bytes: the size of every file of the backup, linked or copied. */
  readonly bytes: number;
  /** keys: live keys of the store at the instant the backup was cut. */
  readonly keys: number;
  /** lastTs: the highest commit timestamp the backup can hold (every write up to it that was acknowledged is in). */
  readonly lastTs: number;
}

/** BackupFileEntry: one file of a backup source, by name within the store directory. */
export interface BackupFileEntry {
  readonly name: string;
  /** size: the file's length in bytes (the file is immutable while the source is open). */
  readonly size: number;
}

/**
 * BackupSource: a consistent cut of a live store, held open so it can be copied file by file
 * (Engine.backupSource): into a directory (Engine.backup) or into an archive stream
 * (storage/snapshot-archive.ts). While it is open the engine keeps every file it lists; `close`
 * lets compaction delete them again. The files come in the order they must be written: data
 * and hint files first, the metadata last (a copy without metadata is refused by open).
 */
export interface BackupSource {
  readonly engine: string;
  readonly files: readonly BackupFileEntry[];
  readonly keys: number;
  readonly lastTs: number;
  /**
   * read reads up to `length` bytes of file `name` at `position` into `buffer[offset..]`,
   * returning how many it read (0 at the end).
   */
  read(name: string, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** close releases the files (idempotent). */
  close(): Promise<void>;
}

/** BorrowedValueSink: takes a value lent for the call only (it copies what it keeps). */
export interface BorrowedValueSink {
  bulkBorrowed(value: Buffer): void;
}

/** READ_INTO: what Engine.readStringInto did. */
export const READ_INTO = { WRITTEN: 0, ABSENT: 1, OTHER: 2 } as const;
export type ReadInto = (typeof READ_INTO)[keyof typeof READ_INTO];

export interface Engine {
  readonly name: string;
  /**
   * get reads a string: a key whose value has another type (a hash) throws WrongTypeError
   * rather than hand its encoding out as if it were a string (getStored reads any type).
   */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * getSync is `get` done synchronously: the durable state at this instant. Transactions need it
   * to read a snapshot and to capture the version a write replaces in one synchronous step
   * (docs/transactions.md).
   */
  getSync(key: Uint8Array): Uint8Array | undefined;
  has(key: Uint8Array): Promise<boolean>;
  /** getStored returns the value, expiry and revision of a live key in one consistent read. */
  getStored(key: Uint8Array): Promise<Stored | undefined>;
  /**
   * getStoredSync is getStored done synchronously (the durable state at this instant), as
   * getSync is get: a transaction's snapshot read takes the revision with the value, so that
   * its commit need not look the key up again.
   */
  getStoredSync(key: Uint8Array): Stored | undefined;
  /**
   * readStringInto (optional): getStoredSync's read of a string, handed to `sink` without
   * copying it first (issue 14: a server's GET, whose reply copies the bytes anyway). When `key`
   * holds a string now, `sink.bulkBorrowed` gets its value, lent for the call only, and the
   * result is READ_INTO.WRITTEN; READ_INTO.ABSENT when the key has no live value (nothing is
   * handed over); READ_INTO.OTHER when the caller must read through getStoredSync (a value of
   * another type). Errors are getStoredSync's.
   */
  readStringInto?(key: Uint8Array, sink: BorrowedValueSink): ReadInto;
  /**
   * expiry returns a live key's expiresAt, null when the key exists without an expiry, and
   * undefined when the key does not exist (or has expired): Redis's PTTL cases.
   */
  expiry(key: Uint8Array): Promise<number | null | undefined>;
  /**
   * revisionSync returns a live key's revision in the durable state at this instant (undefined
   * when the key does not exist or has expired), synchronously like getSync.
   */
  revisionSync(key: Uint8Array): Revision | undefined;
  /**
   * lastTs is the highest commit timestamp of any write handed to `write` so far, and at open the
   * highest any earlier process gave to a write that survived: never below the mod of a stored
   * key. The next write's ts must exceed it.
   */
  lastTs(): number;
  /**
   * write applies `ops` as one atomic write at commit timestamp `ts` (a safe integer above
   * lastTs(), else InvalidArgumentError) and resolves once it is durable. The write is queued
   * (and lastTs() moves) before the call returns; a write refused (bad stamps, limits, a closed
   * or failed store) throws or rejects and changes nothing. An empty `ops` is refused.
   */
  write(ts: number, ops: readonly WriteOp[]): Promise<void>;
  /**
   * checkWriteAllowed (optional) throws when the engine cannot take writes now (a cluster member
   * that is not the ready leader: ClusterDownError). The write pipeline asks before it decides a
   * write, so that a command which would write nothing (DEL of an absent key, SET NX of a present
   * one) is refused there too rather than answered from a state that may be stale.
   */
  checkWriteAllowed?(): void;
  /**
   * writeFailure (optional): the failure that refuses every write until the store is reopened
   * (StoreFailedError: an append that could not be undone), or undefined while writes are served.
   * /healthz reports it, whichever protocol's write met it.
   */
  writeFailure?(): Error | undefined;
  /**
   * readBarrier (optional) resolves once a read of this engine's state made before the call is
   * known to have been current at the call: a cluster member's leader confirms with a ReadIndex
   * round that it still leads (ClusterDownError if it cannot). The write pipeline waits for it
   * when a command decides to write nothing, since that answer is a read: a deposed leader that
   * has not heard of its successor would otherwise answer DEL of a key the successor wrote from
   * its stale state. Engines that are their own single source of truth leave it out.
   */
  readBarrier?(): Promise<void>;
  /**
   * prefetch (optional) is a hint: the keys `bytes[starts[i]..ends[i])`, i < count, are about to
   * be read or written, one after another (a pipelined batch of commands); the engine may touch
   * the memory their lookups will need so that the CPU overlaps those cache misses. It changes
   * nothing and never throws; the keys are borrowed for the call.
   */
  prefetch?(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void;
  /**
   * dueExpiries returns up to `max` keys (copies) whose expiry has passed at `nowMs` in the
   * state at this instant, soonest expiry first; it changes nothing. A read-only engine returns
   * none. The write pipeline's expiry cycle deletes them.
   */
  dueExpiries(nowMs: number, max: number): Uint8Array[];
  /** scan yields entries in key order; it is not a snapshot: each value is the latest when yielded. */
  scan(range?: ScanRange): AsyncIterableIterator<Entry>;
  /** flush makes every acknowledged write durable (a no-op in `always` mode). */
  flush(): Promise<void>;
  /** compact reclaims space now instead of waiting for the background trigger. */
  compact(): Promise<void>;
  stats(): EngineStats;
  /**
   * backup writes a consistent copy of the store into `dir`, which must not exist or be empty,
   * and which `open(dir)` then opens as an ordinary store (docs/backup.md). Optional: an engine
   * without it cannot be backed up online (Db.backup says so).
   */
  backup?(dir: string): Promise<BackupInfo>;
  /** backupSource cuts a consistent backup and holds its files open for copying (see BackupSource). */
  backupSource?(): Promise<BackupSource>;
  /**
   * close flushes, fsyncs and releases the directory; every other method fails with
   * ClosedError afterwards. close itself is idempotent: a second call resolves with the first.
   */
  close(): Promise<void>;
}
