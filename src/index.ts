// The public API of Cairn. Everything a user imports comes from here; nothing else is stable.
export {
  Db,
  type DbBatchOp,
  DEFAULT_TXN_ATTEMPTS,
  ENGINE_NAMES,
  type EngineName,
  type ExpiryOptions,
  type Key,
  type ManagedTransactionOptions,
  type OpenOptions,
  open,
  type ScanOptions,
  type SetOptions,
  type SnapshotOptions,
  type TransactionOptions,
  type Value,
} from './db/db.js';
export * from './db/errors.js';
export type { CaskEvent } from './storage/cask/cask-options.js';
export { type CheckResult, checkStore } from './storage/cask/check.js';
export { type RebuildReport, rebuildMeta } from './storage/cask/rebuild-meta.js';
export type { Durability, EngineStats, Revision } from './storage/engine.js';
export { BATCH_BYTES_MAX, BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX } from './storage/limits.js';
export type {
  CasOp,
  CasOptions,
  CasRequest,
  CasResult,
  CompareOp,
  Comparison,
  RevisionTarget,
} from './txn/compare-and-swap.js';
export { SnapshotTooOldError, TxnConflictError, TxnFinishedError, TxnManagedError } from './txn/errors.js';
export type { Isolation, MvccStats } from './txn/mvcc.js';
export type { CommitResult, Snapshot, Transaction, TxnScanOptions } from './txn/transaction.js';
