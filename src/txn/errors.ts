// The typed errors of transactions. Codes are stable: RESP and HTTP map them to their replies.
import { CairnError, InvalidArgumentError } from '../storage/errors.js';

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
  constructor(what: string, message = `${what} is already finished`) {
    super('TXN_FINISHED', message);
  }
}

/**
 * TxnManagedError: `commit()` was called inside `db.transaction(fn)` (or `runTransaction`), which
 * commits the transaction itself when `fn` returns. Refused before anything is written, so the
 * outcome stays one commit or none: had the inner commit gone through, the wrapper's own commit
 * would have failed although the writes took effect, and a caller retrying on that error would
 * apply them twice. A misuse of the API, hence INVALID_ARGUMENT and not retryable.
 */
export class TxnManagedError extends InvalidArgumentError {
  constructor() {
    super(
      'commit() inside db.transaction(fn): the transaction commits when fn returns (return from fn, or use db.begin() to commit yourself)',
    );
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
