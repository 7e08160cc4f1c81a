// Revisions (etcd's mod_revision, create_revision, version): the rules the write pipeline
// (txn/write-pipeline.ts) applies when it derives a put's creation timestamp and version count,
// and the checks every engine applies to the stamps it is given. Semantics are in engine.ts;
// docs/transactions.md explains why the MVCC commit timestamp is the revision.
import type { Revision } from './engine.js';
import { InvalidArgumentError } from './errors.js';

/** TS_MAX: timestamps are JS numbers, so they stay integers below 2^53 (a u64 on disk). */
export const TS_MAX = Number.MAX_SAFE_INTEGER;

/**
 * checkTs accepts a write's commit timestamp: a safe integer above `lastTs` (and at most TS_MAX).
 * Anything else is the caller's mistake (InvalidArgumentError).
 */
export function checkTs(ts: number, lastTs: number): void {
  if (!Number.isSafeInteger(ts) || ts <= lastTs || ts > TS_MAX) {
    throw new InvalidArgumentError(
      `a write's ts must be an integer above the last one (${lastTs}), got ${String(ts)}`,
    );
  }
}

/** checkKeyVersion accepts a put's stamps: 1 <= create <= ts and version in [1, VERSION_MAX]. */
export function checkKeyVersion(create: number, version: number, ts: number): void {
  if (!Number.isSafeInteger(create) || create < 1 || create > ts) {
    throw new InvalidArgumentError(`create must be an integer in [1, ts = ${ts}], got ${String(create)}`);
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
 * (undefined: absent, deleted or expired).
 */
export function revisionOfPut(prior: Revision | undefined, ts: number): Revision {
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
