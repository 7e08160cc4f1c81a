// Revisions (etcd's mod_revision, create_revision, version): the rules every engine applies when
// it assigns a write's commit timestamp and derives a put's creation timestamp and version count,
// and the argument checks for callers that assign them (the Db's MVCC layer). Semantics are in
// engine.ts; docs/transactions.md explains why the MVCC commit timestamp is the revision.
import type { KeyVersion, Revision } from './engine.js';
import { InvalidArgumentError } from './errors.js';

/** TS_MAX: timestamps are JS numbers, so they stay integers below 2^53 (a u64 on disk). */
export const TS_MAX = Number.MAX_SAFE_INTEGER;

/**
 * writeTs returns the commit timestamp of a write: `given` when it is a safe integer above
 * `lastTs`, lastTs + 1 when it is undefined. Anything else is the caller's mistake.
 */
export function writeTs(given: number | undefined, lastTs: number): number {
  if (given === undefined) {
    if (lastTs >= TS_MAX) throw new InvalidArgumentError('commit timestamps are exhausted');
    return lastTs + 1;
  }
  if (!Number.isSafeInteger(given) || given <= lastTs || given > TS_MAX) {
    throw new InvalidArgumentError(
      `a write's ts must be an integer above the last one (${lastTs}), got ${String(given)}`,
    );
  }
  return given;
}

/**
 * checkKeyVersion accepts a put's `create` and `version` when both are absent, or both present
 * with 1 <= create <= ts and version a positive safe integer.
 */
export function checkKeyVersion(kv: KeyVersion, ts?: number): void {
  const { create, version } = kv;
  if (create === undefined && version === undefined) return;
  if (create === undefined || version === undefined) {
    throw new InvalidArgumentError('a put takes both `create` and `version`, or neither');
  }
  if (!Number.isSafeInteger(create) || create < 1 || (ts !== undefined && create > ts)) {
    throw new InvalidArgumentError(
      `create must be an integer in [1, ts${ts === undefined ? '' : ` = ${ts}`}], got ${String(create)}`,
    );
  }
  if (!Number.isSafeInteger(version) || version < 1 || version > VERSION_MAX) {
    throw new InvalidArgumentError(
      `version must be an integer in [1, ${VERSION_MAX}], got ${String(version)}`,
    );
  }
}

/**
 * VERSION_MAX: the largest version count; a u32 on disk. A key rewritten every microsecond
 * would take over an hour to reach it; past it the count stays at the maximum (see nextVersion).
 */
export const VERSION_MAX = 0xffff_ffff;

/**
 * revisionOfPut is the revision a put at `ts` gives a key whose newest state is `prior`
 * (undefined: absent, deleted or expired), unless the caller assigned create and version.
 */
export function revisionOfPut(prior: Revision | undefined, ts: number, given: KeyVersion): Revision {
  if (given.create !== undefined && given.version !== undefined) {
    return { mod: ts, create: given.create, version: given.version };
  }
  if (prior === undefined) return { mod: ts, create: ts, version: 1 };
  return { mod: ts, create: prior.create, version: nextVersion(prior.version) };
}

/** nextVersion counts one more put, saturating at VERSION_MAX rather than wrapping to a lie. */
export function nextVersion(version: number): number {
  return version >= VERSION_MAX ? VERSION_MAX : version + 1;
}

/** legacyRevision: what a record written before revisions were stored (format < 3) reports. */
export function legacyRevision(seq: number): Revision {
  return { mod: seq, create: seq, version: 1 };
}
