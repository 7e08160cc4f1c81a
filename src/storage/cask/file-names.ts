// Names of the files in a cask data directory (docs/format.md, "Directory layout").
import * as path from 'node:path';

const ID_DIGITS = 10;
/** FILE_ID_MAX: file ids are u32 on disk (data file header, key directory slots). */
export const FILE_ID_MAX = 0xffff_ffff;

export const DATA_SUFFIX = '.data';
export const HINT_SUFFIX = '.hint';
/** CORRUPT_DIR: where recovery preserves damaged bytes it skipped or truncated. */
export const CORRUPT_DIR = 'corrupt';
/** TEMP_SUFFIX: a file being written under a temporary name, renamed once complete and synced. */
export const TEMP_SUFFIX = '.tmp';
/**
 * COMPACTING_SUFFIX: a compaction output being written (`NNNNNNNNNN.data.compacting`); renamed
 * to its `.data` name once its data and hint file are durable (docs/hardening.md).
 */
export const COMPACTING_SUFFIX = '.compacting';

/**
 * LEFTOVER: the names of the temporary files Cairn writes in a data directory, exactly: metadata
 * copies, data files being created, hint files and compaction outputs being written. Recovery
 * removes these and nothing else (docs/format.md, "Directory layout"): a user's `notes.tmp`
 * in the same directory is not ours.
 */
const LEFTOVER = /^(?:META-[12]\.tmp|\d{10}\.data\.tmp|\d{10}\.hint\.tmp|\d{10}\.data\.compacting)$/;
/** CORRUPT_LEFTOVER: a copy into CORRUPT_DIR that was interrupted (`NNNNNNNNNN.data.FROM-TO.tmp`). */
const CORRUPT_LEFTOVER = /^\d{10}\.data\.\d+-\d+\.tmp$/;

/** isLeftover tells whether `name` (in the data directory) is a temporary file of Cairn's. */
export function isLeftover(name: string): boolean {
  return LEFTOVER.test(name);
}

/** isCorruptLeftover tells whether `name` (in CORRUPT_DIR) is an interrupted copy of Cairn's. */
export function isCorruptLeftover(name: string): boolean {
  return CORRUPT_LEFTOVER.test(name);
}

/** compactingPath is where compaction writes output `id` until it is complete. */
export function compactingPath(dir: string, id: number): string {
  return `${dataPath(dir, id)}${COMPACTING_SUFFIX}`;
}

export function dataFileName(id: number): string {
  return `${String(id).padStart(ID_DIGITS, '0')}${DATA_SUFFIX}`;
}

export function hintFileName(id: number): string {
  return `${String(id).padStart(ID_DIGITS, '0')}${HINT_SUFFIX}`;
}

export function dataPath(dir: string, id: number): string {
  return path.join(dir, dataFileName(id));
}

export function hintPath(dir: string, id: number): string {
  return path.join(dir, hintFileName(id));
}

/** parseFileId returns the id of a data or hint file name with the given suffix, or undefined. */
export function parseFileId(name: string, suffix: string): number | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const digits = name.slice(0, -suffix.length);
  if (!/^\d{10}$/.test(digits)) return undefined;
  const id = Number(digits);
  return id <= FILE_ID_MAX ? id : undefined;
}
