// Typed operating errors. Each has a stable `code` that the CLI, RESP and HTTP layers map to
// their own error replies; programmer errors are AssertionErrors instead (src/stdx/assert.ts).

export type ErrorCode =
  | 'KEY_NOT_FOUND'
  | 'CORRUPTION'
  | 'CLOSED'
  | 'LIMIT'
  | 'INVALID_ARGUMENT'
  | 'LOCKED'
  | 'INCOMPATIBLE'
  | 'IO'
  | 'STORE_FAILED'
  | 'TXN_CONFLICT'
  | 'TXN_FINISHED'
  | 'SNAPSHOT_TOO_OLD'
  | 'READ_ONLY'
  | 'CLUSTER_DOWN'
  | 'UNCERTAIN'
  | 'WRONG_TYPE';

export class CairnError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** KeyNotFoundError: an API that promises a key (`Db.require`, `kvs rm`) found none. */
export class KeyNotFoundError extends CairnError {
  constructor(readonly key: Uint8Array) {
    super('KEY_NOT_FOUND', 'Key not found');
  }
}

/** CorruptionError: bytes on disk failed their checksum or do not parse. */
export class CorruptionError extends CairnError {
  constructor(message: string) {
    super('CORRUPTION', message);
  }
}

/** ClosedError: the store was used after close() (or while closing). */
export class ClosedError extends CairnError {
  constructor() {
    super('CLOSED', 'the store is closed');
  }
}

/** LimitError: a key, value or batch exceeds a documented limit (see src/storage/limits.ts). */
export class LimitError extends CairnError {
  constructor(message: string) {
    super('LIMIT', message);
  }
}

export class InvalidArgumentError extends CairnError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** LockedError: another live process has the data directory open. */
export class LockedError extends CairnError {
  constructor(
    readonly dir: string,
    readonly ownerPid: number | undefined,
  ) {
    super(
      'LOCKED',
      ownerPid === process.pid
        ? `data directory ${dir} is already open in this process (close it first)`
        : `data directory ${dir} is in use by another process${ownerPid === undefined ? '' : ` (pid ${ownerPid})`}`,
    );
  }
}

/** IncompatibleError: the directory was written by a newer format or by another engine. */
export class IncompatibleError extends CairnError {
  constructor(message: string) {
    super('INCOMPATIBLE', message);
  }
}

/**
 * ClusterMemberDirectoryError: an open for writing of a cluster member's data directory (it
 * holds `raft/member.json`). Only the member itself (`cairn serve`) writes that engine, in the
 * order of the cluster's log, and repairs it from its log or its peers: a write by any other
 * program makes this member's data differ from the others' for good (and a write's timestamp
 * above entries it has not applied yet makes its replay skip them), and a repairing open hides
 * damage from the member's own repair. Reading it with `{ readOnly: true }` is allowed.
 */
export class ClusterMemberDirectoryError extends IncompatibleError {
  constructor(readonly dir: string) {
    super(
      `${dir} is a cluster member's data directory (it holds raft/member.json): only the member itself writes its store, in the order of the cluster's log, so a write from here would make this member's data differ from the other members'. Write through the cluster (any member's RESP or HTTP address), or read this directory while the member is stopped with { readOnly: true } (\`cairn get\`, \`scan\` and \`stats\` do that by themselves)`,
    );
  }
}

/** IoError: a read, write or fsync failed. The operation that saw it did not take effect. */
export class IoError extends CairnError {
  constructor(
    message: string,
    cause: unknown,
    /**
     * readableReason: set when a read-only open still reads the store (a full disk): what went
     * wrong, without the message's advice for the embedded API, so that a CLI can give its own.
     */
    readonly readableReason?: string,
  ) {
    super('IO', message, { cause });
  }
}

/**
 * StoreFailedError: an earlier I/O failure left the write path in a state that could not be
 * repaired in place; writes are refused until the store is closed and reopened (which runs
 * recovery). Reads keep working.
 */
export class StoreFailedError extends CairnError {
  constructor(cause: unknown) {
    super('STORE_FAILED', `writes are disabled after an unrecoverable I/O error: ${String(cause)}`, {
      cause,
    });
  }
}

/**
 * ReadOnlyError: a write to a store opened with `readOnly`, or an open for writing of a data
 * directory the process may not write (a read-only file system or permissions): open it with
 * `{ readOnly: true }` to read it.
 */
export class ReadOnlyError extends CairnError {
  constructor(
    message: string,
    /**
     * readableReason: set when a read-only open reads the store (a directory that cannot be
     * written): what went wrong, without the message's advice for the embedded API, so that a
     * CLI can give its own.
     */
    readonly readableReason?: string,
  ) {
    super('READ_ONLY', message);
  }
}

/** READ_ONLY_OPEN_ADVICE: how the embedded API reads a store it cannot open for writing. */
export const READ_ONLY_OPEN_ADVICE = 'open it with { readOnly: true } to read it';

/** READ_ONLY_ERRNOS: the errno codes that say a path may be read but not written. */
const READ_ONLY_ERRNOS = new Set(['EROFS', 'EACCES', 'EPERM']);
/** FULL_DISK_ERRNOS: the errno codes that say the file system (or the user's quota) is full. */
const FULL_DISK_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);

/**
 * openFailure turns what an open threw into a Cairn error: its own errors unchanged, a file
 * system that refuses writes into ReadOnlyError, a full one into IoError saying so (both with
 * the way to read the store meanwhile), any other errno error into IoError naming the
 * directory (a raw `ENOTDIR ... stat '.../META-1'` says little to whoever typed the path).
 */
export function openFailure(dir: string, err: unknown): Error {
  if (err instanceof CairnError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code !== undefined && READ_ONLY_ERRNOS.has(code)) {
    const reason = `the data directory ${dir} cannot be written (${message})`;
    return new ReadOnlyError(`${reason}; ${READ_ONLY_OPEN_ADVICE}`, reason);
  }
  if (code !== undefined && FULL_DISK_ERRNOS.has(code)) {
    // Opening for writing writes (the LOCK file, the metadata, recovery's repairs): on a full
    // disk that fails, but nothing is lost and a read-only open writes nothing.
    const reason = `the disk holding ${dir} is full (${message}): free some space to open the store for writing`;
    return new IoError(`${reason}; meanwhile ${READ_ONLY_OPEN_ADVICE}`, err, reason);
  }
  if (typeof code === 'string') return new IoError(`could not open the store in ${dir}: ${message}`, err);
  return err instanceof Error ? err : new Error(message);
}

/**
 * ClusterDownError: a replicated store has no leader it can reach, or no quorum, or this member
 * cannot serve the request now. The request did NOT take effect: retrying it is safe.
 */
export class ClusterDownError extends CairnError {
  constructor(message: string) {
    super('CLUSTER_DOWN', message);
  }
}

/**
 * UncertainError: a write was proposed to the cluster, then the leader changed or the request
 * timed out before its outcome was known. It may or may not have taken effect (a later read
 * tells); retry only what is safe to apply twice.
 */
export class UncertainError extends CairnError {
  constructor(message: string) {
    super('UNCERTAIN', message);
  }
}

/**
 * WrongTypeError: a string operation on a key that holds another type (a hash written over RESP),
 * or the reverse: Redis's WRONGTYPE. The value is not handed out as if it were a string.
 */
export class WrongTypeError extends CairnError {
  constructor(
    readonly valueType: string,
    message = `WRONGTYPE Operation against a key holding the wrong kind of value (it holds a ${valueType})`,
  ) {
    super('WRONG_TYPE', message);
  }
}
