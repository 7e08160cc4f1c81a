// Argument checks shared by every engine: the limits of src/storage/limits.ts, enforced with
// LimitError before anything is queued, so an oversized request changes nothing.
import type { FileSystem } from '../io/file-system.js';
import { copyBytes, toBytes } from '../stdx/bytes.js';
import type { ScanRange } from './engine.js';

/** CheckedOp: what checkBatch reads of an operation (a caller's request or a stamped WriteOp). */
export type CheckedOp =
  | {
      readonly type: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly expiresAt?: number | undefined;
      /** valueType: storage/value-type.ts; undefined or 0 is a string. */
      readonly valueType?: number | undefined;
    }
  | { readonly type: 'delete'; readonly key: Uint8Array };

import { shown } from './engine-options.js';
import { CairnError, InvalidArgumentError, IoError, LimitError } from './errors.js';
import { BATCH_BYTES_MAX, BATCH_OPS_MAX, EXPIRES_AT_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX } from './limits.js';
import { checkValueType } from './value-type.js';

/**
 * checkKey enforces KEY_BYTES_MAX, or an engine's own smaller limit (`limit`, called
 * `limitName` in the message) where its format cannot hold the general one.
 */
export function checkKey(key: Uint8Array, limit = KEY_BYTES_MAX, limitName = 'KEY_BYTES_MAX'): void {
  if (!(key instanceof Uint8Array)) throw new InvalidArgumentError('a key must be a Uint8Array or string');
  if (key.length > limit) {
    throw new LimitError(`key is ${key.length} bytes; the limit is ${limit} (${limitName})`);
  }
}

export function checkValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) {
    throw new InvalidArgumentError('a value must be a Uint8Array or string');
  }
  if (value.length > VALUE_BYTES_MAX) {
    throw new LimitError(`value is ${value.length} bytes; the limit is ${VALUE_BYTES_MAX} (VALUE_BYTES_MAX)`);
  }
}

/** EXPIRY_OPTION_NAMES: the fields of an expiry's options (`{ ttlMs }` or `{ expiresAt }`). */
export const EXPIRY_OPTION_NAMES: readonly string[] = ['ttlMs', 'expiresAt'];

/**
 * expiresAtOfOptions turns expiry options (`ttlMs` from `nowMs()`, or an absolute `expiresAt`)
 * into an absolute time, validating them; undefined when they give none. Db.set, batch 'set'
 * operations and a transaction's set share it.
 */
export function expiresAtOfOptions(
  options: { readonly ttlMs?: number | undefined; readonly expiresAt?: number | undefined } | undefined,
  nowMs: () => number,
): number | undefined {
  if (options === undefined) return undefined;
  const { ttlMs, expiresAt } = options;
  if (ttlMs !== undefined && expiresAt !== undefined) {
    throw new InvalidArgumentError('give ttlMs or expiresAt, not both');
  }
  if (ttlMs !== undefined) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
      throw new InvalidArgumentError(`ttlMs must be a positive integer, got ${shown(ttlMs)}`);
    }
    const now = nowMs();
    if (ttlMs > EXPIRES_AT_MAX - now) {
      // Said in terms of what the caller sent, not of the expiresAt it would make.
      throw new InvalidArgumentError(
        `ttlMs ${ttlMs} is too large: an expiry can be at most ${EXPIRES_AT_MAX} ms since the epoch, so ttlMs at most ${EXPIRES_AT_MAX - now} now`,
      );
    }
    return now + ttlMs;
  }
  checkExpiresAt(expiresAt);
  return expiresAt;
}

/** checkExpiresAt accepts undefined (no expiry) or an integer time in [0, EXPIRES_AT_MAX]. */
export function checkExpiresAt(expiresAt: number | undefined): void {
  if (expiresAt === undefined) return;
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || expiresAt > EXPIRES_AT_MAX) {
    throw new InvalidArgumentError(
      `expiresAt must be an integer number of ms since the epoch in [0, ${EXPIRES_AT_MAX}], got ${shown(expiresAt)}`,
    );
  }
}

/**
 * checkKeyDefault is checkKey with its default limit, as one function: a default parameter's
 * arrow would be a new closure on every call of checkBatch, every write's path (issue 14).
 */
function checkKeyDefault(key: Uint8Array): void {
  checkKey(key);
}

/**
 * checkBatch validates every operation (keys with `checkOneKey`, so an engine can apply its own
 * key limit) and returns the batch's key-plus-value bytes.
 */
export function checkBatch(
  ops: readonly CheckedOp[],
  checkOneKey: (key: Uint8Array) => void = checkKeyDefault,
): number {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('a batch must be an array of operations');
  if (ops.length > BATCH_OPS_MAX) {
    throw new LimitError(`batch has ${ops.length} operations; the limit is ${BATCH_OPS_MAX} (BATCH_OPS_MAX)`);
  }
  let bytes = 0;
  for (const op of ops) {
    checkOneKey(op.key);
    bytes += op.key.length;
    if (op.type === 'put') {
      checkValue(op.value);
      checkExpiresAt(op.expiresAt);
      if (op.valueType !== undefined) checkValueType(op.valueType);
      bytes += op.value.length;
    } else if (op.type !== 'delete') {
      throw new InvalidArgumentError(
        `unknown batch operation type '${String((op as { type: unknown }).type)}'`,
      );
    }
  }
  if (bytes > BATCH_BYTES_MAX) {
    throw new LimitError(`batch is ${bytes} bytes; the limit is ${BATCH_BYTES_MAX} (BATCH_BYTES_MAX)`);
  }
  return bytes;
}

/** checkScanReverse: a scan's `reverse` is true, false or absent ('yes' is a caller's bug). */
export function checkScanReverse(reverse: unknown): void {
  if (reverse !== undefined && typeof reverse !== 'boolean') {
    throw new InvalidArgumentError(`scan reverse must be true or false, got ${shown(reverse)}`);
  }
}

/**
 * scanBound turns a scan's `start`, `end` or `prefix` into bytes, refusing what is neither a
 * string nor bytes by name: a number or an array used to pass through and give a wrong answer
 * (`scan({ prefix: 5 })` listed every key, `scan({ end: 5 })` none) or a TypeError.
 */
export function scanBound(name: 'start' | 'end' | 'prefix', bound: unknown): Uint8Array {
  if (typeof bound !== 'string' && !(bound instanceof Uint8Array)) {
    throw new InvalidArgumentError(`scan ${name} must be a string or a Uint8Array, got ${shown(bound)}`);
  }
  return textBytes(bound);
}

/**
 * ownScanRange copies a scan's bounds, which the caller only lends for the call: an engine's scan
 * is a generator whose body runs at the first next(), so it takes this copy first. A bound that
 * is not bytes is left for the scan's own validation to refuse.
 */
export function ownScanRange(range: ScanRange): ScanRange {
  const own = (bound: Uint8Array | undefined) => (bound instanceof Uint8Array ? copyBytes(bound) : bound);
  return { ...range, start: own(range.start), end: own(range.end) };
}

/**
 * checkDataDir refuses a data directory path that is not one: empty, holding a NUL byte, or
 * naming a file. (A missing one is fine: open creates it.) Without this the first file
 * operation inside it fails with a raw ENOTDIR or ENOENT that names META-1 rather than the
 * user's mistake. A path the system cannot look at (ENOTDIR: a file on the way, EACCES) is an
 * IoError naming it, not the raw errno error.
 */
export async function checkDataDir(fs: FileSystem, dir: string): Promise<void> {
  if (typeof dir !== 'string' || dir === '') {
    throw new InvalidArgumentError(`the data directory must be a non-empty path, got ${JSON.stringify(dir)}`);
  }
  if (dir.includes('\0')) {
    throw new InvalidArgumentError(
      `the data directory path ${JSON.stringify(dir)} holds a NUL byte, which no file system takes`,
    );
  }
  let kind: Awaited<ReturnType<FileSystem['kind']>>;
  try {
    kind = await fs.kind(dir);
  } catch (err) {
    // Not openFailure: a path that cannot even be looked at is no read-only store either.
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (err instanceof CairnError || typeof code !== 'string' || code.startsWith('ERR_')) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new IoError(`could not open the store in ${dir}: ${message}`, err);
  }
  if (kind !== undefined && kind !== 'directory') {
    throw new InvalidArgumentError(
      `${dir} is not a directory (it is a ${kind}); give the path of a data directory`,
    );
  }
}

/**
 * textBytes turns a key or value given as a string into its UTF-8 bytes (bytes pass through).
 * A string with a lone surrogate is refused: UTF-8 has no encoding for it, and TextEncoder would
 * write U+FFFD instead, so '\ud800' and '\udc00' would silently name one key
 * (defects-2026-12.md, entry 17).
 */
export function textBytes(input: string | Uint8Array): Uint8Array {
  // isWellFormed (ES2024, in Node 20) is a native scan: this runs for every string key and value.
  if (typeof input === 'string' && !(input as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidArgumentError(
      'a string key or value must be well-formed UTF-16: this one has a lone surrogate, which UTF-8 cannot encode; pass bytes instead',
    );
  }
  return toBytes(input);
}
