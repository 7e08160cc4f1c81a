// TxnKeyStore: the KeyStore of a transaction (EXEC, TXN.BEGIN). Reads see the snapshot plus the
// transaction's own writes; writes are buffered in the transaction and take effect at commit.
// Nothing it returns waits for durability: the snapshot holds only durable data, and buffered
// writes are not written yet (the commit's reply is the one that waits).
//
// Expiry: every version read from the snapshot carries the expiry it was written with, and the
// transaction's own writes the expiry they were given; a value whose expiry has passed reads as
// absent. So TTL/PTTL answer inside a transaction as outside, and INCR, APPEND, SET KEEPTTL and
// EXPIRE's NX/XX/GT/LT rewrite a key with (or against) the expiry it has (as Redis does).
import { checkBatch } from '../../storage/validate.js';
import type { Transaction } from '../../txn/transaction.js';
import type { BatchOp, Change, Latest, ManyChange, Updated } from '../../txn/write-pipeline.js';
import { type KeyStore, keyAfter, spendReply } from './key-store.js';
import type { KeyspaceEvent } from './notifications.js';

export class TxnKeyStore implements KeyStore {
  /**
   * events: keyspace events of the transaction's writes, published once its commit is durable
   * (commands/notify.ts; EXEC and TXN.COMMIT hand them to the notifier).
   */
  readonly events: KeyspaceEvent[] = [];

  constructor(readonly tx: Transaction) {}

  async readLatest(key: Uint8Array): Promise<Latest> {
    const value = this.tx.getAnyType(key);
    // Snapshot versions keep no revision (docs/transactions.md), so none is reported here.
    return {
      value,
      expiresAt: this.expiry(key, value),
      valueType: this.valueType(key, value),
      revision: undefined,
      durable: undefined,
    };
  }

  async readMany(keys: readonly Uint8Array[], budgetBytes?: number): Promise<Latest[]> {
    const out: Latest[] = [];
    let spent = 0;
    for (const key of keys) {
      const latest = await this.readLatest(key);
      spent = spendReply(spent, latest, budgetBytes);
      out.push(latest);
    }
    return out;
  }

  async update<T>(
    key: Uint8Array,
    fn: (current: Buffer | undefined, expiresAt: number | undefined, valueType: number) => Change<T>,
  ): Promise<Updated<T>> {
    const current = this.tx.getAnyType(key);
    const change = fn(current, this.expiry(key, current), this.valueType(key, current));
    if (change.write === null) this.tx.delete(key);
    else if (change.write !== undefined) this.tx.set(key, change.write, change.expiresAt, change.valueType);
    return { result: change.result, durable: undefined };
  }

  async updateMany<T>(
    keys: readonly Uint8Array[],
    fn: (
      current: readonly (Buffer | undefined)[],
      expiresAt: readonly (number | undefined)[],
      valueTypes: readonly number[],
    ) => ManyChange<T>,
  ): Promise<Updated<T>> {
    const current: (Buffer | undefined)[] = [];
    for (const key of keys) current.push(this.tx.getAnyType(key));
    const change = fn(
      current,
      keys.map((key, i) => this.expiry(key, current[i])),
      keys.map((key, i) => this.valueType(key, current[i])),
    );
    for (const w of change.writes ?? []) {
      if (w.value === null) this.tx.delete(w.key);
      else this.tx.set(w.key, w.value, w.expiresAt, w.valueType);
    }
    return { result: change.result, durable: undefined };
  }

  put(key: Uint8Array, value: Uint8Array, expiresAt?: number, valueType?: number): undefined {
    this.tx.set(key, value, expiresAt, valueType);
    return undefined;
  }

  private expiry(key: Uint8Array, value: Buffer | undefined): number | undefined {
    return value === undefined ? undefined : this.tx.expiryOf(key);
  }

  private valueType(key: Uint8Array, value: Buffer | undefined): number {
    return value === undefined ? 0 : this.tx.valueTypeOf(key);
  }

  batch(ops: readonly BatchOp[]): undefined {
    // Check the whole batch first: a bad operation leaves none of it buffered (atomic like MSET).
    checkBatch(ops);
    for (const op of ops) {
      if (op.type === 'put') this.tx.set(op.key, op.value, op.expiresAt, op.valueType);
      else this.tx.delete(op.key);
    }
    return undefined;
  }

  async *keysAfter(after: Buffer | undefined, limit?: number): AsyncIterable<Buffer> {
    const start = after === undefined ? undefined : keyAfter(after);
    for await (const [k] of this.tx.scanTyped({ start, limit })) yield k;
  }

  async countKeys(): Promise<number> {
    // The snapshot has no key count; counting is linear (documented for DBSIZE in a transaction).
    let n = 0;
    for await (const _ of this.tx.scanTyped()) n++;
    return n;
  }
}
