// Names of the files in a cask data directory (docs/format.md, "Directory layout").
import * as path from 'node:path';

const ID_DIGITS = 10;
/** FILE_ID_MAX: file ids are u32 on disk (data file header, key directory slots). */
export const FILE_ID_MAX = 0xffff_ffff;

export const DATA_SUFFIX = '.data';
export const HINT_SUFFIX = '.hint';
/** CORRUPT_DIR: where recovery preserves damaged bytes it skipped or truncated. */
export const CORRUPT_DIR = 'corrupt';

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
