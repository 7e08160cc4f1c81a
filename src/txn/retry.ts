// The retry policy for transactions that lose a conflict: one place for every surface that
// re-runs them (Db.transaction, HTTP one-shot transactions, RESP EXEC).
import { TxnConflictError } from './errors.js';

/** DEFAULT_TXN_ATTEMPTS: how often a transaction that keeps conflicting is run. */
export const DEFAULT_TXN_ATTEMPTS = 10;
/** TXN_BACKOFF_BASE_MS, TXN_BACKOFF_MAX_MS: bounds of the jittered exponential backoff. */
export const TXN_BACKOFF_BASE_MS = 1;
export const TXN_BACKOFF_MAX_MS = 100;

/**
 * retryAfterConflict decides what follows a failed attempt: rethrows `err` unless it is a
 * conflict and attempts remain; otherwise waits a random time below the attempt's cap (full
 * jitter, so retrying clients spread out) and returns to let the caller run again.
 */
export async function retryAfterConflict(
  err: unknown,
  attempt: number,
  maxAttempts: number,
  maxBackoffMs = TXN_BACKOFF_MAX_MS,
): Promise<void> {
  if (!(err instanceof TxnConflictError) || attempt >= maxAttempts) throw err;
  const cap = Math.min(maxBackoffMs, TXN_BACKOFF_BASE_MS * 2 ** (attempt - 1));
  await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
}
