// Store metadata: format version, engine name and engine-owned fields (see docs/format.md).
//
// Two copies, META-1 and META-2, each `crc32c u32le | length u32le | JSON body`. An update
// bumps the generation and replaces both copies one after the other, each by write-temp,
// fsync, rename, fsync-directory, so at every instant at least one copy holds either the old or
// the new generation intact. Readers take the valid copy with the highest generation and report
// (and repair on open) a damaged one.
import * as path from 'node:path';
import type { FileSystem } from '../io/file-system.js';
import { crc32c } from '../stdx/crc32c.js';
import { CorruptionError, IncompatibleError } from './errors.js';

/**
 * FORMAT_VERSION: the on-disk format this build writes and the newest it can read.
 * 1: the original format. 2: records and hint entries may carry an expiry (docs/format.md); an
 * lmdb store holds the expiry database. A store stays at 1 until it may hold an expiry (a cask
 * store at its first write with one, an lmdb store at its first open by this build), so builds
 * that read only format 1 refuse it instead of taking expiry fields for damage.
 * 3: records and hint entries carry revisions (a key's creation timestamp and version count);
 * an lmdb store holds the revision database. A store is raised to 3 the same way: a cask store
 * before its first write (every write now carries a revision), an lmdb store at open.
 * 4: values may carry a type other than string (a hash: storage/value-type.ts). A cask store is
 * raised before the group commit that writes its first typed record, so a store holding only
 * strings stays at 3 (readable by format-3 builds); an lmdb store at open.
 */
export const FORMAT_VERSION = 4;
/** FORMAT_NEW_STORE: the format a new store starts at (raised when it first needs more). */
export const FORMAT_NEW_STORE = 3;
/** FORMAT_TYPED: the first format whose stores may hold typed values (docs/format.md, "Value types"). */
export const FORMAT_TYPED = 4;
/**
 * FILE_HEADER_FORMAT: the format written into data and hint file headers. It stays 3: the
 * metadata is what refuses an older build (it is read before any file), and a format-3 build
 * must still open a store at 3 whose newer files this build wrote.
 */
export const FILE_HEADER_FORMAT = 3;
/** FORMAT_EXPIRY: the first format whose stores may hold expiry times. */
export const FORMAT_EXPIRY = 2;
/** FORMAT_REVISION: the first format whose stores hold revisions (docs/format.md). */
export const FORMAT_REVISION = 3;
export const META_FILES = ['META-1', 'META-2'] as const;
const META_HEADER_BYTES = 8;
/** META_BYTES_MAX: a sanity bound on a metadata copy, far above any real one. */
const META_BYTES_MAX = 16 * 1024 * 1024;

export interface Meta {
  readonly format: number;
  readonly engine: string;
  readonly generation: number;
  readonly createdAtMs: number;
  /** fields: owned by the engine (the cask engine keeps its compaction state here). */
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface MetaRead {
  /** meta: the newest valid copy, or undefined when there is no valid copy. */
  readonly meta: Meta | undefined;
  /** problems: one line for each missing or damaged copy. */
  readonly problems: readonly string[];
  /** copiesFound: how many META files exist at all (valid or not). */
  readonly copiesFound: number;
}

export function encodeMeta(meta: Meta): Buffer {
  const body = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.alloc(META_HEADER_BYTES + body.length);
  out.writeUInt32LE(body.length, 4);
  body.copy(out, META_HEADER_BYTES);
  out.writeUInt32LE(crc32c(out.subarray(4)), 0);
  return out;
}

/** decodeMeta parses one copy; it returns a reason string instead of throwing on damage. */
export function decodeMeta(bytes: Uint8Array): Meta | string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < META_HEADER_BYTES) return 'too short';
  const length = buf.readUInt32LE(4);
  if (length > META_BYTES_MAX || META_HEADER_BYTES + length !== buf.length) return 'length mismatch';
  if (crc32c(buf.subarray(4)) !== buf.readUInt32LE(0)) return 'checksum mismatch';
  try {
    const parsed = JSON.parse(buf.subarray(META_HEADER_BYTES).toString('utf8')) as Partial<Meta>;
    if (
      typeof parsed.format !== 'number' ||
      typeof parsed.engine !== 'string' ||
      typeof parsed.generation !== 'number' ||
      typeof parsed.createdAtMs !== 'number' ||
      typeof parsed.fields !== 'object' ||
      parsed.fields === null
    ) {
      return 'missing fields';
    }
    return parsed as Meta;
  } catch {
    return 'not JSON';
  }
}

export async function readMeta(fs: FileSystem, dir: string): Promise<MetaRead> {
  let best: Meta | undefined;
  const problems: string[] = [];
  let copiesFound = 0;
  for (const name of META_FILES) {
    const file = path.join(dir, name);
    if (!(await fs.exists(file))) {
      problems.push(`${name}: missing`);
      continue;
    }
    copiesFound++;
    const decoded = decodeMeta(await fs.readFile(file));
    if (typeof decoded === 'string') {
      problems.push(`${name}: ${decoded}`);
      continue;
    }
    if (best === undefined || decoded.generation > best.generation) best = decoded;
  }
  return { meta: best, problems, copiesFound };
}

/** writeMeta replaces both copies with `meta` (whose generation the caller has bumped). */
export async function writeMeta(fs: FileSystem, dir: string, meta: Meta): Promise<void> {
  const bytes = encodeMeta(meta);
  for (const name of META_FILES) {
    const tmp = path.join(dir, `${name}.tmp`);
    await fs.unlink(tmp);
    const file = await fs.open(tmp, 'create');
    try {
      await file.write(bytes, 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await fs.rename(tmp, path.join(dir, name));
    await fs.syncDir(dir);
  }
}

/**
 * checkCompatible throws IncompatibleError when this build cannot open a store described by
 * `meta` with engine `engine`.
 */
export function checkCompatible(meta: Meta, engine: string, dir: string): void {
  if (meta.format > FORMAT_VERSION) {
    throw new IncompatibleError(
      `${dir} was written by a newer Cairn (format ${meta.format}; this build reads up to ${FORMAT_VERSION})`,
    );
  }
  if (meta.engine !== engine) {
    throw new IncompatibleError(`${dir} holds a '${meta.engine}' store, not '${engine}'`);
  }
}

/**
 * lostMetaAdvice: what an open that finds no valid metadata copy tells the operator (the open
 * refuses; the rebuild is theirs to run, since it cannot know everything the metadata knew:
 * docs/hardening.md, "Lost metadata").
 */
export function lostMetaAdvice(dir: string): string {
  return (
    `run \`cairn check ${dir}\` to inspect it, then \`cairn repair ${dir}\` to rebuild the metadata ` +
    'from the data files (cask stores)'
  );
}

/**
 * loadOrCreateMeta opens the metadata of a store directory for `engine`: it creates it for a
 * fresh directory, repairs a damaged copy from the good one, and refuses a directory whose
 * metadata is all gone while other files remain (never "start empty" over existing data).
 */
export async function loadOrCreateMeta(
  fs: FileSystem,
  dir: string,
  engine: string,
  nowMs: number,
  isEmpty: boolean,
): Promise<{ meta: Meta; problems: readonly string[] }> {
  const read = await readMeta(fs, dir);
  if (read.meta === undefined) {
    if (read.copiesFound > 0 || !isEmpty) {
      throw new CorruptionError(
        `${dir}: no valid metadata copy (${read.problems.join('; ')}) but the directory holds store files; ` +
          lostMetaAdvice(dir),
      );
    }
    const meta: Meta = { format: FORMAT_NEW_STORE, engine, generation: 1, createdAtMs: nowMs, fields: {} };
    await writeMeta(fs, dir, meta);
    return { meta, problems: [] };
  }
  checkCompatible(read.meta, engine, dir);
  if (read.problems.length > 0) {
    // Rewrite both copies from the good one, one generation later.
    const repaired = { ...read.meta, generation: read.meta.generation + 1 };
    await writeMeta(fs, dir, repaired);
    return { meta: repaired, problems: read.problems };
  }
  return { meta: read.meta, problems: [] };
}
