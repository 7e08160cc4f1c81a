// The interactive transaction: the one a client opens with TXN.BEGIN and ends with TXN.COMMIT or
// TXN.ROLLBACK (commands/transactions.ts); the data commands in between run inside it. Session
// (session.ts) holds one per connection and rolls it back when the connection idles or closes.
import { CommandError } from './errors.js';
import type { TxnKeyStore } from './txn-key-store.js';

/** RUN_WHEN_TXN_IDLE: the commands that still run after an idle transaction was rolled back. */
export const RUN_WHEN_TXN_IDLE: ReadonlySet<string> = new Set(['txn.rollback', 'txn.commit', 'quit']);

function errTxnIdle(idleMs: number): string {
  return `ERR the transaction was rolled back after ${idleMs} ms idle; TXN.ROLLBACK ends it`;
}

export class InteractiveTxn {
  private store: TxnKeyStore | undefined;
  /** idleError: set when an idle transaction was rolled back, until TXN.ROLLBACK/COMMIT. */
  private idleError: string | undefined;

  /** current: the open transaction's store, if any. */
  get current(): TxnKeyStore | undefined {
    return this.store;
  }

  /** rolledBackForIdleness: the error every command but RUN_WHEN_TXN_IDLE gets, if any. */
  get rolledBackForIdleness(): string | undefined {
    return this.idleError;
  }

  begin(store: TxnKeyStore): void {
    if (this.store !== undefined) {
      store.tx.rollback();
      throw new CommandError('ERR a transaction is already open on this connection');
    }
    this.store = store;
  }

  /**
   * end detaches the transaction (for TXN.COMMIT / TXN.ROLLBACK); undefined when it was already
   * rolled back for idleness and this is TXN.ROLLBACK (TXN.COMMIT gets the error).
   */
  end(command: 'TXN.COMMIT' | 'TXN.ROLLBACK'): TxnKeyStore | undefined {
    const idleError = this.idleError;
    if (idleError !== undefined) {
      this.idleError = undefined;
      if (command === 'TXN.COMMIT') throw new CommandError(idleError);
      return undefined;
    }
    const store = this.store;
    if (store === undefined) throw new CommandError(`ERR ${command} without TXN.BEGIN`);
    this.store = undefined;
    return store;
  }

  /** rollBackForIdleness rolls the open transaction back; later commands get the idle error. */
  rollBackForIdleness(idleMs: number): void {
    if (this.store === undefined) return;
    this.store.tx.rollback();
    this.store = undefined;
    this.idleError = errTxnIdle(idleMs);
  }

  /** reset rolls the open transaction back and forgets an idle rollback (RESET). */
  reset(): void {
    this.close();
    this.idleError = undefined;
  }

  /** close rolls the open transaction back (the connection is gone). */
  close(): void {
    this.store?.tx.rollback();
    this.store = undefined;
  }
}
