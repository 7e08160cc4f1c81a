// rebuildMeta: `cairn repair`. When both metadata copies are lost (damaged, truncated, deleted)
// while the data files remain, open refuses the directory (it never starts an empty store over
// data). This rebuilds the metadata from what the directory holds, so that the normal open, with
// its own recovery, serves the data again (docs/hardening.md, "Lost metadata").
//
// What the metadata holds, and where each part comes from here:
//
// - engine: `cask` from the data and hint file names. An lmdb store (`lmdb/`) is refused: its
//   format (1, 2, or 3 and later) says whether its values carry format 3's revision prefix,
//   which cannot be told safely from the values themselves.
// - format: the lowest the data needs, from every record of every data file (EXPIRES: 2,
//   REVISION: 3, TYPED: 4, dead records included: an older build would read any of them as
//   damage) and every data file header (a build refuses a header newer than its format); a data
//   or hint file of a newer format than this build reads is refused. Never below what any
//   record needs, never above FORMAT_VERSION.
// - fields.files: every data file present, plus the id of every hint file whose data file is
//   gone: either a retired compaction input whose deletion was cut short, or a lost data file;
//   the two cannot be told apart, so it is listed (every open reports it as missing and keeps
//   its hint, which names the keys it held) rather than its hint deleted as an orphan.
// - fields.seqFloor: the highest seq of any record found. A seq that only a record compaction
//   dropped held is gone with it; the next commit timestamp is still above the clock
//   (txn/mvcc.ts takes the larger of the clock and lastTs).
// - fields.retired: empty (every file present is kept and read). This is the dangerous part:
//   see `suspects` below.
// - fields.syncedEnd: absent, as after a crash: the active file's tail is checked as a torn write
//   could be (it is copied to corrupt/ before any cut).
//
// A valid `META-n.tmp` (an update cut short after its fdatasync, before its rename) is the newest
// metadata the store had: when one exists its engine fields are taken as they are (`retired`
// included), the format raised if the records need more.
//
// Retired files. A committed compaction lists its inputs in `retired`, then deletes them; a crash
// (or a failed unlink) between the two leaves some inputs on disk, and with the metadata lost
// nothing says they are retired. Reading them is harmless for the state they held at the
// compaction, because every record an output holds is a copy (same key, same seq) of an input
// record and records resolve by seq: with every input of a compaction present, the newest record
// of each key is what it was. The danger is a compaction whose inputs are partly deleted: a
// tombstone in a deleted input may have been dropped (docs/compaction.md, "Tombstones"), and an
// older put of its key in a surviving input then wins again, resurrecting a deleted key. Whether
// a compaction committed cannot be told from the files (an uncommitted one leaves the same
// outputs and all its inputs, and its inputs' records past the outputs' last key are rightly
// live), so nothing is dropped: the keys that could be resurrected are reported. A file is known
// as a compaction input when a higher-numbered file holds a copy of a record of it that is some
// key's current record; a key is a suspect when its current record is in such a file and no other
// file holds a copy of it (every record live at a compaction was copied).
import * as path from 'node:path';
import { type Clock, systemClock } from '../../io/clock.js';
import type { File, FileSystem } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { keyString } from '../../stdx/key-string.js';
import { DirLock } from '../dir-lock.js';
import { IncompatibleError, InvalidArgumentError } from '../errors.js';
import {
  decodeMeta,
  FORMAT_EXPIRY,
  FORMAT_REVISION,
  FORMAT_TYPED,
  FORMAT_VERSION,
  META_FILES,
  type Meta,
  readMeta,
  writeMeta,
} from '../meta.js';
import { recoverStore } from './cask-engine.js';
import { DEFAULT_DATA_FILE_BYTES } from './cask-options.js';
import {
  CORRUPT_DIR,
  DATA_SUFFIX,
  dataFileName,
  HINT_SUFFIX,
  hintFileName,
  parseFileId,
  TEMP_SUFFIX,
} from './file-names.js';
import { HINT_MAGIC } from './hint.js';
import { HINT_V1_MAGIC } from './hint-v1.js';
import type { KeyDir } from './key-dir.js';
import {
  DATA_HEADER_BYTES,
  type Decoded,
  decodeDataHeader,
  decodeRecord,
  INVALID,
  Kind,
  NEED_MORE,
  RECORD_HEADER_BYTES,
  recordBytesAt,
} from './record.js';
import type { Problem } from './recovery.js';
import { type CaskMetaFields, readCaskFields } from './store-state.js';

/** ENGINE_NAME: the engine whose metadata this rebuilds (cask-engine.ts's). */
const ENGINE_NAME = 'cask';
/** LMDB_DATA_DIR: where an lmdb store keeps its data (lmdb-engine.ts's LMDB_SUBDIR, not imported: that module loads lmdb). */
const LMDB_DATA_DIR = 'lmdb';
/** FORMAT_OLDEST: the format of records without any optional field (the original format). */
const FORMAT_OLDEST = 1;
/** REBUILD_SCAN_CHUNK_BYTES: how much of a data file the rebuild reads at a time. */
const REBUILD_SCAN_CHUNK_BYTES = 8 * 1024 * 1024;
/** HINT_HEADER_PREFIX_BYTES: a hint file's magic and format (both versions start so). */
const HINT_HEADER_PREFIX_BYTES = 12;
/** SUSPECT_KEYS_NAMED: suspect keys the report names (hex); it counts them all. */
export const SUSPECT_KEYS_NAMED = 20;
/** SUSPECT_KEY_HEX_MAX: hex digits of a suspect key named in the report. */
const SUSPECT_KEY_HEX_MAX = 64;

export interface RebuildOptions {
  /** fs: the file system (tests inject faults). */
  readonly fs?: FileSystem;
  /** clock: the new metadata's createdAtMs and the names of saved copies. */
  readonly clock?: Clock;
}

/** CompactionFound: data files that hold copies of records of lower-numbered files. */
export interface CompactionFound {
  /** input: a data file some of whose records are copied into `outputs`. */
  readonly input: number;
  readonly outputs: readonly number[];
}

export interface RebuildReport {
  readonly dir: string;
  /** meta: what was written to META-1 and META-2. */
  readonly meta: Meta;
  /** source: where the engine fields came from: the records, or a valid `META-n.tmp`. */
  readonly source: string;
  /** formatReasons: why the format is what it is (one line for each flag or header that raised it). */
  readonly formatReasons: readonly string[];
  readonly dataFiles: number;
  readonly hintFiles: number;
  readonly records: number;
  readonly keys: number;
  readonly maxSeq: number;
  /** missing: ids listed in `files` though their data file is gone (they have a hint file). */
  readonly missing: readonly number[];
  /** saved: where the damaged metadata copies were kept (relative to the directory). */
  readonly saved: readonly string[];
  /** compactions: inputs of compactions whose outputs and inputs are both present. */
  readonly compactions: readonly CompactionFound[];
  /** suspects: keys that a committed compaction may have deleted (see the header); named up to SUSPECT_KEYS_NAMED. */
  readonly suspects: { readonly count: number; readonly named: readonly string[] };
  /** problems: what the next (repairing) open will report and do, as `cairn check` says it. */
  readonly problems: readonly Problem[];
}

/**
 * rebuildMeta writes new metadata for a cask directory whose metadata copies are all lost (see
 * the header). It refuses (InvalidArgumentError) a directory with a valid copy, or without data
 * files, and (IncompatibleError) an lmdb store or files of a newer format. It takes the
 * directory's lock, deletes nothing, keeps the damaged copies in corrupt/, and returns what it
 * inferred.
 */
export async function rebuildMeta(dir: string, options: RebuildOptions = {}): Promise<RebuildReport> {
  const fs = options.fs ?? nodeFileSystem;
  const clock = options.clock ?? systemClock;
  if ((await fs.kind(dir)) !== 'directory') throw new InvalidArgumentError(`no store directory at ${dir}`);
  const lock = await DirLock.acquire(dir);
  try {
    return await rebuildLocked(fs, dir, clock);
  } finally {
    await lock.release();
  }
}

async function rebuildLocked(fs: FileSystem, dir: string, clock: Clock): Promise<RebuildReport> {
  const read = await readMeta(fs, dir);
  if (read.meta !== undefined) {
    const m = read.meta;
    throw new InvalidArgumentError(
      `nothing to rebuild: ${dir} has a valid metadata copy (generation ${m.generation}, engine ${m.engine}, ` +
        `format ${m.format})${read.problems.length > 0 ? `; an open rewrites the damaged one from it (${read.problems.join('; ')})` : ''}`,
    );
  }
  const names = await fs.readdir(dir);
  const dataIds: number[] = [];
  const hintIds: number[] = [];
  for (const name of names) {
    const d = parseFileId(name, DATA_SUFFIX);
    if (d !== undefined) dataIds.push(d);
    const h = parseFileId(name, HINT_SUFFIX);
    if (h !== undefined) hintIds.push(h);
  }
  dataIds.sort((a, b) => a - b);
  hintIds.sort((a, b) => a - b);
  if (names.includes(LMDB_DATA_DIR)) {
    throw new IncompatibleError(
      `${dir} holds an lmdb store (${LMDB_DATA_DIR}/): \`cairn repair\` rebuilds the metadata of cask stores only. ` +
        "An lmdb store's metadata records its format (1, 2, or 3 and later), which says whether its values " +
        'carry the revision prefix of format 3; that cannot be told safely from the values. Restore META-1 ' +
        'and META-2 from a backup of this store',
    );
  }
  if (dataIds.length === 0) {
    throw new InvalidArgumentError(
      `nothing to rebuild from: ${dir} holds no data files (${hintIds.length} hint files); its metadata cannot be rebuilt`,
    );
  }

  // The newest metadata an interrupted update left under its temporary name, if intact.
  const temp = await readTempMeta(fs, dir);
  const base: CaskMetaFields = temp === undefined ? { retired: [], seqFloor: 0 } : readCaskFields(temp.meta);
  const present = new Set(dataIds);
  const retired = new Set(base.retired);
  const missing = hintIds.filter((id) => !present.has(id) && !retired.has(id));
  const files = [...new Set([...(base.files ?? []), ...dataIds, ...missing])]
    .filter((id) => !retired.has(id))
    .sort((a, b) => a - b);

  // Headers first: a file of a newer format is refused before anything is read or written.
  const formatReasons: string[] = [];
  let format = FORMAT_OLDEST;
  const raise = (to: number, why: string): void => {
    if (to > format) {
      format = to;
      formatReasons.push(`format ${to}: ${why}`);
    }
  };
  if (temp !== undefined) raise(temp.meta.format, `${temp.name} says so`);
  for (const id of dataIds) {
    const header = await readHeader(fs, path.join(dir, dataFileName(id)), DATA_HEADER_BYTES);
    const decoded = typeof header === 'string' ? header : decodeDataHeader(header);
    if (typeof decoded === 'string') continue; // recovery reports it (bad-header)
    refuseNewer(decoded.format, dataFileName(id));
    raise(decoded.format, `the header of ${dataFileName(id)}`);
  }
  for (const id of hintIds) {
    const header = await readHeader(fs, path.join(dir, hintFileName(id)), HINT_HEADER_PREFIX_BYTES);
    if (typeof header === 'string') continue;
    const magic = header.subarray(0, HINT_MAGIC.length);
    if (!magic.equals(HINT_MAGIC) && !magic.equals(HINT_V1_MAGIC)) continue; // rejected at open, file scanned
    // Refused when newer, but no reason to raise: a sealed file's hint says the writer's
    // FORMAT_VERSION whatever the store's format (and an older build only scans past a hint).
    refuseNewer(header.readUInt32LE(HINT_MAGIC.length), hintFileName(id));
  }

  // Recovery as an open would run it under the rebuilt fields, changing nothing: the key
  // directory it builds says which record of each key is current.
  const provisional: Meta = {
    format: FORMAT_VERSION,
    engine: ENGINE_NAME,
    generation: 0,
    createdAtMs: 0,
    fields: { ...base, retired: [...retired], files },
  };
  const recovered = await recoverStore(fs, dir, provisional, {
    repair: false,
    dataFileBytes: DEFAULT_DATA_FILE_BYTES,
  });
  const { keyDir, report } = recovered;
  for (const f of recovered.files.all()) await f.file.close();

  // Every record of every file: the format it needs, the highest seq, and copies of current records.
  let maxSeq = 0;
  let records = 0;
  /** copied: keys whose current record has a copy in another file. */
  const copied = new Set<string>();
  /** outputsOf: input file id -> files holding copies of its current records. */
  const outputsOf = new Map<number, Set<number>>();
  for (const id of dataIds) {
    if (retired.has(id)) continue;
    const name = dataFileName(id);
    await scanRecords(fs, path.join(dir, name), (rec, buf) => {
      records++;
      if (rec.seq > maxSeq) maxSeq = rec.seq;
      if (rec.valueType !== 0) raise(FORMAT_TYPED, `${name} holds a typed value (a hash)`);
      if (rec.version !== 0) raise(FORMAT_REVISION, `${name} holds records with revisions`);
      if (rec.expiresAt !== undefined) raise(FORMAT_EXPIRY, `${name} holds a record with an expiry`);
      if (rec.kind === Kind.BATCH) return;
      const key = buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen);
      const current = keyDir.get(key);
      if (current === undefined || current.seq !== rec.seq || current.fileId === id) return;
      copied.add(keyString(key));
      // Compaction gives its outputs ids above its inputs'.
      const input = Math.min(id, current.fileId);
      const output = Math.max(id, current.fileId);
      let outs = outputsOf.get(input);
      if (outs === undefined) outputsOf.set(input, (outs = new Set()));
      outs.add(output);
    });
  }
  const suspects = suspectKeys(keyDir, outputsOf, copied);

  const seqFloor = Math.max(base.seqFloor, maxSeq);
  const meta: Meta = {
    format,
    engine: ENGINE_NAME,
    generation: (temp?.meta.generation ?? 0) + 1,
    createdAtMs: temp?.meta.createdAtMs ?? clock.nowMs(),
    fields: { ...(temp?.meta.fields ?? {}), retired: [...retired].sort((a, b) => a - b), seqFloor, files },
  };
  const saved = await saveDamagedCopies(fs, dir, clock.nowMs());
  await writeMeta(fs, dir, meta);
  return {
    dir,
    meta,
    source: temp === undefined ? 'data files' : temp.name,
    formatReasons,
    dataFiles: dataIds.length,
    hintFiles: hintIds.length,
    records,
    keys: keyDir.size,
    maxSeq,
    missing,
    saved,
    compactions: [...outputsOf]
      .sort(([a], [b]) => a - b)
      .map(([input, outs]) => ({ input, outputs: [...outs].sort((a, b) => a - b) })),
    suspects,
    problems: report.problems,
  };
}

/** refuseNewer throws IncompatibleError for a file of a format newer than this build reads. */
function refuseNewer(fileFormat: number, name: string): void {
  if (fileFormat > FORMAT_VERSION) {
    throw new IncompatibleError(
      `${name} was written by a newer Cairn (format ${fileFormat}; this build reads up to ${FORMAT_VERSION}): ` +
        'rebuild the metadata with that version',
    );
  }
}

/** readTempMeta returns an intact, compatible `META-n.tmp` (the newest if both are), if any. */
async function readTempMeta(fs: FileSystem, dir: string): Promise<{ name: string; meta: Meta } | undefined> {
  let best: { name: string; meta: Meta } | undefined;
  for (const copy of META_FILES) {
    const name = `${copy}${TEMP_SUFFIX}`;
    const file = path.join(dir, name);
    if (!(await fs.exists(file))) continue;
    const meta = decodeMeta(await fs.readFile(file));
    if (typeof meta === 'string' || meta.engine !== ENGINE_NAME || meta.format > FORMAT_VERSION) continue;
    if (best === undefined || meta.generation > best.meta.generation) best = { name, meta };
  }
  return best;
}

/** readHeader reads a file's first `bytes` bytes; a reason string when it is shorter. */
async function readHeader(fs: FileSystem, file: string, bytes: number): Promise<Buffer | string> {
  const handle = await fs.open(file, 'read');
  try {
    const buf = Buffer.alloc(bytes);
    const got = await handle.read(buf, 0, bytes, 0);
    return got < bytes ? 'too short' : buf;
  } finally {
    await handle.close();
  }
}

/**
 * scanRecords calls `visit` for every valid record of a data file, in file order, stepping over
 * bytes that are not records one at a time (recovery reports those; here only the records
 * count). `buf` holds the record at the offsets `rec` gives, for the call only.
 */
async function scanRecords(
  fs: FileSystem,
  file: string,
  visit: (rec: Decoded, buf: Buffer) => void,
): Promise<void> {
  const handle: File = await fs.open(file, 'read');
  try {
    const size = await handle.size();
    let buf = Buffer.allocUnsafe(REBUILD_SCAN_CHUNK_BYTES);
    /** start: the file offset of buf[0]; len: the bytes of buf that hold the file. */
    let start = DATA_HEADER_BYTES;
    let len = 0;
    let at = 0;
    const rec = {} as Decoded;
    for (;;) {
      const got = decodeRecord(buf, at, len, rec);
      if (got === INVALID) {
        at++;
        continue;
      }
      if (got !== NEED_MORE) {
        visit(got, buf);
        at = got.end;
        continue;
      }
      const need = len - at >= RECORD_HEADER_BYTES ? recordBytesAt(buf, at) : RECORD_HEADER_BYTES;
      if (start + at + need > size) {
        // Cannot be a record (it would run past the end): damage, or a torn tail. Step over a
        // byte, as over any invalid one, so that records after damage are still found.
        if (at >= len) return;
        at++;
        continue;
      }
      // Keep the unread part, read more; a record longer than the buffer gets a buffer its size
      // (decodeRecord refused lengths past the limits, so this is bounded).
      const next = need > buf.length ? Buffer.allocUnsafe(need) : buf;
      buf.copy(next, 0, at, len);
      buf = next;
      start += at;
      len -= at;
      at = 0;
      const n = await handle.read(buf, len, Math.min(buf.length - len, size - start - len), start + len);
      if (n === 0) return;
      len += n;
    }
  } finally {
    await handle.close();
  }
}

/** suspectKeys lists the keys whose current record is in a compaction input without a copy (see the header). */
function suspectKeys(
  keyDir: KeyDir,
  outputsOf: ReadonlyMap<number, ReadonlySet<number>>,
  copied: ReadonlySet<string>,
): { count: number; named: string[] } {
  let count = 0;
  const named: string[] = [];
  if (outputsOf.size === 0) return { count, named };
  keyDir.walk(undefined, false, false, (key, loc) => {
    if (outputsOf.has(loc.fileId) && !copied.has(keyString(key))) {
      count++;
      if (named.length < SUSPECT_KEYS_NAMED)
        named.push(Buffer.from(key).toString('hex').slice(0, SUSPECT_KEY_HEX_MAX));
    }
    return true;
  });
  return { count, named };
}

/**
 * saveDamagedCopies copies each metadata copy still on disk (`META-n`, `META-n.tmp`) to
 * `corrupt/<name>.<ms>` (fsynced) before it is replaced: nothing the directory held is thrown
 * away. Returns the saved names.
 */
async function saveDamagedCopies(fs: FileSystem, dir: string, nowMs: number): Promise<string[]> {
  const saved: string[] = [];
  const corrupt = path.join(dir, CORRUPT_DIR);
  // The temporary copies too: writeMeta replaces them (an intact one was read already).
  for (const name of [...META_FILES, ...META_FILES.map((m) => `${m}${TEMP_SUFFIX}`)]) {
    const from = path.join(dir, name);
    if (!(await fs.exists(from))) continue;
    const bytes = await fs.readFile(from);
    await fs.mkdir(corrupt);
    const to = path.join(CORRUPT_DIR, `${name}.${nowMs}`);
    const file = await fs.open(path.join(dir, to), 'create');
    try {
      await file.write(bytes, 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    saved.push(to);
  }
  if (saved.length > 0) {
    await fs.syncDir(corrupt);
    await fs.syncDir(dir);
  }
  return saved;
}
