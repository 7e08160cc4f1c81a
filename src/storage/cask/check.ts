// checkStore inspects a cask directory without changing anything: `cairn check` prints what a
// repairing open would do (recovery in report-only mode) plus the metadata's state. Every
// record's checksum is verified, also in files that have hint files, unless `fast`.
import type { FileSystem } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { DirLock } from '../dir-lock.js';
import { LockedError } from '../errors.js';
import type { ExpiryIndex } from '../expiry-index.js';
import { type Meta, readMeta } from '../meta.js';
import { recoverStore } from './cask-engine.js';
import { DEFAULT_DATA_FILE_BYTES } from './cask-options.js';
import type { KeyDir } from './key-dir.js';
import type { Problem, RecoveryReport } from './recovery.js';

export interface CheckResult {
  readonly meta: Meta | undefined;
  readonly metaProblems: readonly string[];
  /** report: undefined when the directory is not a cask store (see `meta.engine`). */
  readonly report: RecoveryReport | undefined;
  /** ok: nothing is damaged (problems that are routine clean-up do not count). */
  readonly ok: boolean;
}

const ROUTINE = new Set(['retired-file', 'leftover-temp', 'orphan-hint', 'in-flight']);

/**
 * IN_FLIGHT: what a writer that has the store open leaves at the end of its active file while it
 * appends (a record half written, a batch whose members are still coming, a new file whose
 * header is being written): a torn write for a closed store, not damage for a live one.
 */
const IN_FLIGHT = new Set(['torn-tail', 'torn-batch', 'short-file']);

/**
 * liveOwner: whether another process (or this one) has `dir` open: the pid named as its owner,
 * 0 when the owner is unknown, undefined when nobody holds it. The probe takes the lock read-only
 * and gives it back at once, so a check never keeps a server from starting.
 */
async function liveOwner(dir: string): Promise<number | undefined> {
  try {
    const lock = await DirLock.acquire(dir, true);
    await lock.release();
    return undefined;
  } catch (err) {
    if (err instanceof LockedError) return err.ownerPid ?? 0;
    return undefined;
  }
}

/**
 * inFlight reclassifies the torn-write problems of the newest data file as writes in flight when
 * the store is open elsewhere: `cairn check` of a healthy server's store under load called it
 * DAMAGED (found from outside), since it reads the active file while the server appends to it.
 */
function inFlight(problems: Problem[], owner: number): void {
  let newest = '';
  for (const p of problems) if (IN_FLIGHT.has(p.kind) && p.file > newest) newest = p.file;
  for (let i = 0; i < problems.length; i++) {
    const p = problems[i]!;
    if (!IN_FLIGHT.has(p.kind) || p.file !== newest) continue;
    problems[i] = {
      ...p,
      kind: 'in-flight',
      detail: `the store is open in another process${owner > 0 ? ` (pid ${owner})` : ''}, which is writing here: ${p.detail}`,
      action: 'none (writes in flight; check a stopped store to verify its last records)',
    };
  }
}

/** INDEX: the `file` of a problem found in the in-memory index rather than in a file. */
const INDEX = '(key directory)';

/**
 * indexProblems checks the key directory and expiry index that recovery built from the files:
 * its structure (KeyDir.verify), that a lookup of every key it holds finds that key where a walk
 * does, and that every expiry belongs to a key. The index is rebuilt at every open, so a problem
 * here is a bug in Cairn, never damage on disk; it is reported because its symptoms (keys that
 * `get` misses but `scan` shows, scans that never end) are otherwise silent.
 */
export function indexProblems(keyDir: KeyDir, expiries: ExpiryIndex): Problem[] {
  const found: string[] = keyDir.verify();
  let misses = 0;
  keyDir.walk(undefined, false, false, (key, loc) => {
    const got = keyDir.get(key);
    if (got === undefined || got.fileId !== loc.fileId || got.valueOffset !== loc.valueOffset) {
      if (misses++ === 0)
        found.push(`a lookup of key ${Buffer.from(key).toString('hex').slice(0, 64)} misses it`);
    }
    return true;
  });
  if (misses > 1) found.push(`${misses} keys in all are missed by a lookup`);
  for (const name of expiries.names()) {
    if (!keyDir.has(Buffer.from(name, 'latin1'))) {
      found.push('an expiry is recorded for a key the key directory does not hold');
      break;
    }
  }
  return found.map((detail) => ({
    kind: 'damaged-index',
    file: INDEX,
    detail,
    action: 'nothing changed (the index is rebuilt at every open; please report this as a Cairn bug)',
  }));
}

export interface CheckOptions {
  /** fs: the file system (tests inject faults). */
  readonly fs?: FileSystem;
  /**
   * fast: read compacted files through their hint files instead of verifying every record's
   * checksum (quicker, but blind to damage in values the hints point at).
   */
  readonly fast?: boolean;
}

export async function checkStore(dir: string, options: CheckOptions = {}): Promise<CheckResult> {
  const fs = options.fs ?? nodeFileSystem;
  const { meta, problems } = await readMeta(fs, dir);
  if (meta === undefined || meta.engine !== 'cask') {
    return {
      meta,
      metaProblems: problems,
      report: undefined,
      ok: meta !== undefined && problems.length === 0,
    };
  }
  // Asked before the files are read: a writer that stops meanwhile leaves a tail that was in
  // flight when it was read (reported as such), never damage that is not there.
  const owner = options.fs === undefined ? await liveOwner(dir) : undefined;
  const { report, files, keyDir, expiries } = await recoverStore(fs, dir, meta, {
    repair: false,
    dataFileBytes: DEFAULT_DATA_FILE_BYTES,
    trustHints: options.fast === true,
  });
  for (const f of files.all()) await f.file.close();
  if (owner !== undefined) inFlight(report.problems, owner);
  report.problems.push(...indexProblems(keyDir, expiries));
  const damaged = report.problems.some((p) => !ROUTINE.has(p.kind));
  return { meta, metaProblems: problems, report, ok: !damaged && problems.length === 0 };
}
