// KeyStore: the data access the command handlers need. Normally it is the store's newest state
// (LatestKeyStore over the write pipeline, linearizable, replies held until durable); inside a
// transaction (EXEC, TXN.BEGIN) it is TxnKeyStore (src/server/resp/txn-key-store.ts): reads from
// the transaction's snapshot plus its own writes, writes buffered until commit. Handlers never
// reach for the pipeline or the engine themselves, so the same handler runs in both worlds.
// Buffers: both pass the handlers' arguments (views into socket chunks) straight on; the
// write pipeline and the Transaction copy what they keep.
import { asBuffer } from '../../stdx/bytes.js';
import type { BorrowedValueSink, ReadInto } from '../../storage/engine.js';
import type {
  BatchOp,
  Change,
  Latest,
  ManyChange,
  Updated,
  WritePipeline,
} from '../../txn/write-pipeline.js';
import type { MaybePromise } from './commands/args.js';
import { replyTooLarge } from './errors.js';

const NUL = Buffer.from([0]);

/**
 * A KeyStore's reads and updates may answer at once or later: the script store answers at once
 * (a script runs as one synchronous step), the others return promises.
 */
export interface KeyStore {
  /** readLatest: the key's value and the durability a reply revealing it must wait for. */
  readLatest(key: Uint8Array): MaybePromise<Latest>;
  /**
   * readStringInto (optional): readLatest of a string whose reply can be written now, handed to
   * `sink` (Engine.readStringInto; READ_INTO.OTHER: use readLatest). Only a store whose reads
   * answer at once and reveal nothing pending has it.
   */
  readStringInto?(key: Uint8Array, sink: BorrowedValueSink): ReadInto;
  /**
   * readMany: readLatest for several keys, consistent with one another. With `budgetBytes`, it
   * refuses (replyTooLarge) as soon as the values read pass that many bytes, holding at most
   * one value more than the budget (limits.ts, REPLY_BYTES_MAX).
   */
  readMany(keys: readonly Uint8Array[], budgetBytes?: number): MaybePromise<Latest[]>;
  /**
   * update: read-modify-write of one key with nothing in between (see WritePipeline.update); `fn`
   * also gets the key's expiry so that a rewrite can keep it, and its value type (0: a string or
   * absent; commands/type-check.ts) so that it can answer WRONGTYPE.
   */
  update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined, valueType: number) => Change<T>,
  ): MaybePromise<Updated<T>>;
  /** updateMany: update over several keys; the writes are atomic. */
  updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      valueTypes: readonly number[],
    ) => ManyChange<T>,
  ): MaybePromise<Updated<T>>;
  /**
   * put and batch write; the result is the durability to wait for before replying (undefined
   * inside a transaction: the write is buffered and only the commit reply waits). `valueType`
   * (storage/value-type.ts) defaults to a string.
   */
  put(key: Uint8Array, value: Uint8Array, expiresAt?: number, valueType?: number): Promise<void> | undefined;
  batch(ops: readonly BatchOp[]): Promise<void> | undefined;
  /**
   * keysAfter yields up to `limit` keys strictly after `after` (all keys when undefined), in key
   * order, including every write queued before the call.
   */
  keysAfter(after: Buffer | undefined, limit?: number): AsyncIterable<Buffer>;
  /** countKeys: how many keys exist. */
  countKeys(): Promise<number>;
  /**
   * prefetch (optional): a hint that the keys `bytes[starts[i]..ends[i])`, i < count, are about
   * to be used by a pipelined batch (Engine.prefetch). Changes nothing.
   */
  prefetch?(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void;
}

/**
 * spendReply adds a value read for a reply to the bytes `spent` so far and refuses the reply
 * once they pass `budgetBytes` (see KeyStore.readMany).
 */
export function spendReply(spent: number, latest: Latest, budgetBytes: number | undefined): number {
  const total = spent + (latest.value?.length ?? 0);
  if (budgetBytes !== undefined && total > budgetBytes)
    throw replyTooLarge('the values asked for', budgetBytes, 'ask for fewer keys at a time');
  return total;
}

/** readEach is readMany over readLatest, one key at a time, within `budgetBytes`. */
export function readEach(
  keys: readonly Uint8Array[],
  budgetBytes: number | undefined,
  read: (key: Uint8Array) => Latest,
): Latest[] {
  const out: Latest[] = new Array(keys.length);
  let spent = 0;
  for (let i = 0; i < keys.length; i++) {
    const latest = read(keys[i]!);
    spent = spendReply(spent, latest, budgetBytes);
    out[i] = latest;
  }
  return out;
}

/** keyAfter: the smallest key greater than `key` (a scan's inclusive start after `key`). */
export function keyAfter(key: Buffer): Buffer {
  return Buffer.concat([key, NUL]);
}

/**
 * LatestKeyStore: the newest state, through the write pipeline. Its reads and updates are
 * synchronous (one lookup, no await) and answer at once, so a plain GET, SET or INCR runs and
 * replies within the socket read that brought it: no promise, no microtask, no second pass of
 * the connection's loop per command (issue 14). What they throw, the handler throws.
 * Whole-keyspace reads first wait until every write queued before them has settled
 * (WritePipeline.settled()), then read the engine: they see the connection's own earlier writes
 * and reveal nothing that is not durable.
 */
export class LatestKeyStore implements KeyStore {
  constructor(private readonly pipeline: WritePipeline) {}

  readLatest(key: Uint8Array): Latest {
    return this.pipeline.readLatest(key);
  }

  readStringInto(key: Uint8Array, sink: BorrowedValueSink): ReadInto {
    return this.pipeline.readStringInto(key, sink);
  }

  prefetch(bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, count: number): void {
    this.pipeline.prefetch(bytes, starts, ends, count);
  }

  readMany(keys: readonly Uint8Array[], budgetBytes?: number): Latest[] {
    // One synchronous pass either way: the values are of one point in time.
    if (budgetBytes === undefined) return this.pipeline.readMany(keys);
    return readEach(keys, budgetBytes, (key) => this.pipeline.readLatest(key));
  }

  update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined, valueType: number) => Change<T>,
  ): Updated<T> {
    return this.pipeline.update(key, fn);
  }

  updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      valueTypes: readonly number[],
    ) => ManyChange<T>,
  ): Updated<T> {
    return this.pipeline.updateMany(keys, (current, expiresAt, _revisions, types) =>
      fn(current, expiresAt, types),
    );
  }

  put(key: Uint8Array, value: Uint8Array, expiresAt?: number, valueType?: number): Promise<void> {
    return this.pipeline.put(key, value, expiresAt, valueType);
  }

  batch(ops: readonly BatchOp[]): Promise<void> {
    return this.pipeline.batch(ops);
  }

  async *keysAfter(after: Buffer | undefined, limit?: number): AsyncIterable<Buffer> {
    await this.pipeline.settled();
    const start = after === undefined ? undefined : keyAfter(after);
    // Keys only: a listing reads no record, so one damaged record cannot fail it.
    for await (const [k] of this.pipeline.scanDurable({ start, limit, keysOnly: true })) yield asBuffer(k);
  }

  async countKeys(): Promise<number> {
    await this.pipeline.settled();
    return this.pipeline.durableKeyCount();
  }
}
