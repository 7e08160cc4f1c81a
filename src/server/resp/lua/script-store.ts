// ScriptStore: the KeyStore a script's redis.call runs commands against. It answers synchronously
// (a script is one synchronous step: nothing else runs between its reads and its writes) from
// an overlay of the script's own writes over a base: the newest state (the write pipeline) or
// the transaction the script runs in (EXEC, TXN.BEGIN). Writes stay in the overlay, in order,
// until the script ends; then `commit` hands them to the base as ONE atomic batch (Redis applies
// a script's effects as one MULTI/EXEC block to replicas and the AOF: here to the engine).
//
// Durability: a value read from the base may come from a write not yet durable; the script's
// reply may reveal it, so the read's durability is collected and the reply waits for it, with
// the commit's own.
//
// Buffers: the overlay keeps copies of keys and values (a command's arguments are the script's
// strings, and the base's values are not ours to keep).

import { keyString } from '../../../stdx/key-string.js';
import { isExpired } from '../../../storage/expiry-index.js';
import { checkBatch, checkExpiresAt, checkKey, checkValue } from '../../../storage/validate.js';
import { checkValueType } from '../../../storage/value-type.js';
import type { Transaction } from '../../../txn/transaction.js';
import type {
  BatchOp,
  Change,
  Latest,
  ManyChange,
  Updated,
  WritePipeline,
} from '../../../txn/write-pipeline.js';
import { CommandError } from '../errors.js';
import { type KeyStore, readEach } from '../key-store.js';
import type { KeyspaceEvent } from '../notifications.js';

export const ERR_NOT_IN_SCRIPT = 'ERR This command is not supported inside scripts by Cairn';

/** ScriptBase: where a script reads what it has not written, and where its batch goes. */
export interface ScriptBase {
  read(key: Uint8Array): Latest;
  /**
   * commit queues the script's writes as one atomic batch; the durability to wait for, if any.
   * With no writes, what the script's reads of the base wait for (a cluster member's ReadIndex).
   */
  commit(ops: readonly BatchOp[]): Promise<void> | undefined;
}

/** pipelineBase: the newest state; the batch is queued in the write pipeline. */
export function pipelineBase(pipeline: WritePipeline): ScriptBase {
  return {
    read: (key) => pipeline.readLatest(key),
    // A script that writes nothing is a read: a deposed leader must not answer it from its
    // stale state (as WritePipeline.update's writes of nothing).
    commit: (ops) => (ops.length === 0 ? pipeline.confirmRead() : pipeline.batch(ops)),
  };
}

/** txnBase: an open transaction: reads at its snapshot plus its writes; the batch is buffered in it. */
export function txnBase(tx: Transaction): ScriptBase {
  return {
    read: (key) => {
      const value = tx.getAnyType(key);
      const expiresAt = value === undefined ? undefined : tx.expiryOf(key);
      const valueType = value === undefined ? 0 : tx.valueTypeOf(key);
      return { value, expiresAt, valueType, revision: undefined, durable: undefined };
    },
    commit: (ops) => {
      checkBatch(ops);
      for (const op of ops) {
        if (op.type === 'put') tx.set(op.key, op.value, op.expiresAt, op.valueType);
        else tx.delete(op.key);
      }
      return undefined;
    },
  };
}

interface Written {
  readonly key: Buffer;
  /** value: undefined for a delete. */
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** valueType: storage/value-type.ts; 0 for a string (and a delete). */
  readonly valueType: number;
}

export class ScriptStore implements KeyStore {
  private readonly writes = new Map<string, Written>();
  /** events: keyspace notifications of the script's writes, published once its batch is durable. */
  readonly events: KeyspaceEvent[] = [];
  /** reads: the durability of base values the script read (its reply may reveal them). */
  private readonly reads: Promise<void>[] = [];

  constructor(
    private readonly base: ScriptBase,
    private readonly nowMs: () => number,
  ) {}

  /** wrote: the script has written something. */
  get wrote(): boolean {
    return this.writes.size > 0;
  }

  readLatest(key: Uint8Array): Latest {
    const own = this.writes.get(keyString(key));
    if (own !== undefined) {
      const live =
        own.value !== undefined && (own.expiresAt === undefined || !isExpired(own.expiresAt, this.nowMs()));
      return live
        ? {
            value: own.value,
            expiresAt: own.expiresAt,
            valueType: own.valueType,
            revision: undefined,
            durable: undefined,
          }
        : { value: undefined, expiresAt: undefined, valueType: 0, revision: undefined, durable: undefined };
    }
    const latest = this.base.read(key);
    if (latest.durable !== undefined && !this.reads.includes(latest.durable)) this.reads.push(latest.durable);
    return { ...latest, durable: undefined };
  }

  readMany(keys: readonly Uint8Array[], budgetBytes?: number): Latest[] {
    return readEach(keys, budgetBytes, (key) => this.readLatest(key));
  }

  update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined, valueType: number) => Change<T>,
  ): Updated<T> {
    checkKey(key);
    const current = this.readLatest(key);
    const change = fn(current.value, current.expiresAt, current.valueType);
    if (change.write === null) this.record(key, undefined, undefined);
    else if (change.write !== undefined) {
      // Checked here, as WritePipeline.update does: an oversized APPEND fails its own command
      // (which pcall can catch), not the whole script's batch at the end.
      checkValue(change.write);
      checkExpiresAt(change.expiresAt);
      checkValueType(change.valueType);
      this.record(key, change.write, change.expiresAt, change.valueType);
    }
    return { result: change.result, durable: undefined };
  }

  updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      valueTypes: readonly number[],
    ) => ManyChange<T>,
  ): Updated<T> {
    for (const key of keys) checkKey(key);
    const current = this.readMany(keys);
    const change = fn(
      current.map((c) => c.value),
      current.map((c) => c.expiresAt),
      current.map((c) => c.valueType),
    );
    const writes = change.writes ?? [];
    this.checkAll(
      writes.map((w) => (w.value === null ? del(w.key) : put(w.key, w.value, w.expiresAt, w.valueType))),
    );
    for (const w of writes)
      this.record(w.key, w.value ?? undefined, w.value === null ? undefined : w.expiresAt, w.valueType);
    return { result: change.result, durable: undefined };
  }

  put(key: Uint8Array, value: Uint8Array, expiresAt?: number, valueType?: number): undefined {
    checkKey(key);
    checkValue(value);
    checkExpiresAt(expiresAt);
    checkValueType(valueType);
    this.record(key, value, expiresAt, valueType);
    return undefined;
  }

  batch(ops: readonly BatchOp[]): undefined {
    // All checked first: a bad operation records none of them (atomic like MSET).
    this.checkAll(ops);
    for (const op of ops) {
      if (op.type === 'put') this.record(op.key, op.value, op.expiresAt, op.valueType);
      else this.record(op.key, undefined, undefined);
    }
    return undefined;
  }

  keysAfter(): AsyncIterable<Buffer> {
    // Scans read the engine asynchronously; a script cannot wait (docs/lua.md).
    throw new CommandError(ERR_NOT_IN_SCRIPT);
  }

  countKeys(): Promise<number> {
    throw new CommandError(ERR_NOT_IN_SCRIPT);
  }

  /**
   * commit hands the script's writes to the base as one batch, in the order first written, and
   * returns the durability its reply must wait for (its reads' and its batch's).
   */
  commit(): Promise<void> | undefined {
    const ops: BatchOp[] = [];
    for (const w of this.writes.values())
      ops.push(w.value === undefined ? del(w.key) : put(w.key, w.value, w.expiresAt, w.valueType));
    const own = this.base.commit(ops);
    const all = own === undefined ? this.reads : [...this.reads, own];
    if (all.length === 0) return undefined;
    if (all.length === 1) return all[0];
    return Promise.all(all).then(() => undefined);
  }

  private checkAll(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      checkKey(op.key);
      if (op.type === 'put') {
        checkValue(op.value);
        checkExpiresAt(op.expiresAt);
        checkValueType(op.valueType);
      }
    }
  }

  private record(
    key: Uint8Array,
    value: Uint8Array | undefined,
    expiresAt: number | undefined,
    valueType?: number,
  ): void {
    const k = keyString(key);
    // Re-inserted: a key keeps the position of its last write (the batch applies in order anyway).
    this.writes.delete(k);
    this.writes.set(k, {
      key: Buffer.from(key),
      value: value === undefined ? undefined : Buffer.from(value),
      expiresAt: value === undefined ? undefined : expiresAt,
      valueType: value === undefined ? 0 : (valueType ?? 0),
    });
  }
}

function put(
  key: Uint8Array,
  value: Uint8Array,
  expiresAt: number | undefined,
  valueType?: number | undefined,
): BatchOp {
  return valueType
    ? { type: 'put', key, value, expiresAt, valueType }
    : { type: 'put', key, value, expiresAt };
}

function del(key: Uint8Array): BatchOp {
  return { type: 'delete', key };
}
