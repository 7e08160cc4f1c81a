// The typed errors of transactions. Codes are stable: RESP and HTTP map them to their replies.
import { CairnError } from '../storage/errors.js';

/**
 * TxnConflictError: another commit touched what this transaction read or wrote after its snapshot.
 * Retryable: running the transaction again (on a new snapshot) may succeed; `db.transaction`
 * does so automatically.
 */
export class TxnConflictError extends CairnError {
  readonly retryable = true;
  constructor(
    message: string,
    /** key: the conflicting key, when one key is to blame (hex for binary keys in messages). */
    readonly key?: Uint8Array,
  ) {
    super('TXN_CONFLICT', message);
  }
}

/** TxnFinishedError: a transaction or snapshot was used after commit, rollback or release. */
export class TxnFinishedError extends CairnError {
  constructor(what: string) {
    super('TXN_FINISHED', `${what} is already finished`);
  }
}

/** SnapshotTooOldError: a time-travel read asked for a timestamp whose versions are gone. */
export class SnapshotTooOldError extends CairnError {
  constructor(
    readonly at: number,
    readonly horizon: number,
  ) {
    super(
      'SNAPSHOT_TOO_OLD',
      `cannot read as of ${at}: versions before ${horizon} are no longer retained (raise versionRetentionMs)`,
    );
  }
}
