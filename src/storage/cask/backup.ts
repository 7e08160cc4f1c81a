// Online backup of a cask store (docs/backup.md). Two steps:
//
// 1. Cut (cutBackup): seal the active data file through the group commit, in write order, and in
//    the same synchronous step as the new file takes over, list the sealed data files (minus any
//    a committed compaction retired) and pin them. Every write acknowledged before the call was
//    queued before the seal, so it is in a sealed file; a write is one record or one batch under
//    one checksum, so none is in by halves; writes queued after the seal go to the new file,
//    which is left out. Sealed files are immutable and were fdatasynced when sealed. Writers are
//    not paused: the seal is one barrier in their queue.
// 2. Copy (backupInto, or the archive writer in storage/snapshot-archive.ts): hard-link each
//    listed data file and its hint file into the target (copy when the file system cannot link:
//    EXDEV across devices), add a fresh empty data file numbered above them (see backupInto),
//    fsync the target directory, then write the metadata last (a fresh generation, no retired
//    files, the sequence floor raised to the cut), so that a copy cut short by a crash has data
//    files but no metadata, which open refuses.
//
// Compaction is the only thing that deletes a data file while a store is open. A backup pins
// the files it listed until it is closed (BackupPins); compaction waits for the pins before it
// deletes its retired inputs or undoes its outputs (compactor.ts). A backup lists no retired
// file, so a compaction committed before the cut never waits.
import * as path from 'node:path';
import type { Clock } from '../../io/clock.js';
import type { File, FileSystem } from '../../io/file-system.js';
import { assert } from '../../stdx/assert.js';
import type { BackupFileEntry, BackupInfo, BackupSource } from '../engine.js';
import { InvalidArgumentError, IoError } from '../errors.js';
import { encodeMeta, META_FILES, type Meta, writeMeta } from '../meta.js';
import { DATA_SUFFIX, dataFileName, hintFileName, parseFileId } from './file-names.js';
import { type CaskStore, createDataFile } from './store-state.js';

/** BACKUP_CHUNK_BYTES: bytes a copy reads and writes per step. */
export const BACKUP_CHUNK_BYTES = 1024 * 1024;
/**
 * LINK_FALLBACK_CODES: link() failures that mean "this file system cannot link these two
 * paths", answered by copying the bytes instead (any other failure fails the backup).
 */
const LINK_FALLBACK_CODES: ReadonlySet<string> = new Set([
  'EXDEV',
  'EPERM',
  'ENOTSUP',
  'EOPNOTSUPP',
  'EMLINK',
  'ENOSYS',
]);

/** BackupPins counts the backups that still copy files they listed (see the file comment). */
export class BackupPins {
  private held = 0;
  private waiters: (() => void)[] = [];

  /** hold pins the store's listed files until the returned release is called (idempotent). */
  hold(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      assert(this.held >= 0, 'backup pins released more often than held');
      if (this.held === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  get pinned(): boolean {
    return this.held > 0;
  }

  /** unpinned resolves once no pin is held (at once when none is). */
  unpinned(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** CutHost: what a backup needs of an open cask store. */
export interface CutHost {
  readonly store: CaskStore;
  readonly clock: Clock;
  readonly pins: BackupPins;
  /** readOnly: nothing is appended, so every file counts as sealed and nothing is rotated. */
  readonly readOnly: boolean;
  /** rotate seals the active file in write order and runs `atDone` as the new one takes over. */
  rotate(atDone: () => void): Promise<void>;
}

interface SourceFile extends BackupFileEntry {
  /** path: where the file is in the store directory (undefined for the metadata, written fresh). */
  readonly path: string | undefined;
  readonly bytes: Buffer | undefined;
}

/** CaskBackupSource: a cut of a cask store (BackupSource) that also knows where each file is. */
export class CaskBackupSource implements BackupSource {
  readonly engine = 'cask';
  private readonly handles = new Map<string, Promise<File>>();
  private closed = false;

  constructor(
    private readonly fs: FileSystem,
    readonly entries: readonly SourceFile[],
    /** meta: the metadata the copy gets (also encoded in the META entries). */
    readonly meta: Meta,
    readonly keys: number,
    readonly lastTs: number,
    private readonly release: () => void,
  ) {}

  get files(): readonly BackupFileEntry[] {
    return this.entries.map(({ name, size }) => ({ name, size }));
  }

  async read(
    name: string,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    assert(!this.closed, 'read from a closed backup source');
    const entry = this.entries.find((e) => e.name === name);
    assert(entry !== undefined, `backup source has no file ${name}`);
    const n = Math.max(0, Math.min(length, entry.size - position));
    if (n === 0) return 0;
    if (entry.bytes !== undefined) {
      buffer.set(entry.bytes.subarray(position, position + n), offset);
      return n;
    }
    assert(entry.path !== undefined, `backup file ${name} has neither path nor bytes`);
    let handle = this.handles.get(name);
    if (handle === undefined) {
      handle = this.fs.open(entry.path, 'read');
      this.handles.set(name, handle);
    }
    return (await handle).read(buffer, offset, n, position);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release();
    for (const handle of this.handles.values())
      await (await handle.catch(() => undefined))?.close().catch(() => {});
    this.handles.clear();
  }
}

/**
 * cutBackup seals and lists the store's files (see the file comment) and pins them; the caller
 * must close the source. The metadata is encoded here, so the source is complete.
 */
export async function cutBackup(host: CutHost): Promise<CaskBackupSource> {
  const { store } = host;
  // Every write queued so far has a timestamp at most this, and is ahead of the seal below.
  const lastTs = store.lastTs;
  let cut: { ids: number[]; hinted: Set<number>; keys: number; meta: Meta; release: () => void } | undefined;
  const take = (): void => {
    const retired = new Set(store.metaFields().retired);
    // Every file but the active one is sealed: compaction outputs may have higher ids than it.
    const activeId = host.readOnly ? undefined : store.active.id;
    const ids = store.files.ids().filter((id) => id !== activeId && !retired.has(id));
    const expired = store.expiries.size === 0 ? 0 : store.expiries.expiredCount(host.clock.nowMs());
    // Only hint files that exist now: a sealed file's hint written after the cut is built from
    // the key directory then, and leaves out records that later writes replaced, which the copy
    // holds without those writes (a transaction's write was found half there: one key new, the
    // other old). Without a hint the copy's open scans the file.
    const hinted = new Set(ids.filter((id) => store.files.get(id).hinted));
    cut = { ids, hinted, keys: store.keyDir.size - expired, meta: store.meta, release: host.pins.hold() };
  };
  if (host.readOnly) take();
  else await host.rotate(take);
  assert(cut !== undefined, 'the backup seal resolved without cutting');
  const { ids, hinted, keys, meta, release } = cut;
  try {
    const entries: SourceFile[] = [];
    for (const id of ids) {
      for (const name of [dataFileName(id), hintFileName(id)]) {
        const file = path.join(store.dir, name);
        if (name.endsWith('.hint') && (!hinted.has(id) || (await store.fs.kind(file)) !== 'file')) continue;
        entries.push({ name, size: await sizeOf(store.fs, file), path: file, bytes: undefined });
      }
    }
    const fields = meta.fields;
    const floor = typeof fields.seqFloor === 'number' ? fields.seqFloor : 0;
    const copyMeta: Meta = {
      format: meta.format,
      engine: meta.engine,
      generation: 1,
      createdAtMs: host.clock.nowMs(),
      // No retired files (none were listed) and no syncedEnd (the copy was never opened); the
      // floor covers every timestamp the cut could hold, so the copy never reuses one.
      // `files` names exactly the files copied (the copy's own active file is listed by its
      // first open), so the copy's first open finds none missing.
      fields: { ...withoutSyncedEnd(fields), retired: [], seqFloor: Math.max(floor, lastTs), files: ids },
    };
    const metaBytes = encodeMeta(copyMeta);
    for (const name of META_FILES) {
      entries.push({ name, size: metaBytes.length, path: undefined, bytes: metaBytes });
    }
    return new CaskBackupSource(store.fs, entries, copyMeta, keys, lastTs, release);
  } catch (err) {
    release();
    throw err;
  }
}

function withoutSyncedEnd(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { syncedEnd: _dropped, ...rest } = fields;
  return rest;
}

async function sizeOf(fs: FileSystem, file: string): Promise<number> {
  const handle = await fs.open(file, 'read');
  try {
    return await handle.size();
  } finally {
    await handle.close();
  }
}

/**
 * prepareTarget checks that `dir` is absent (it is created, and its entry synced into its
 * parent) or an empty directory; anything else is refused before a byte is written.
 */
export async function prepareTarget(fs: FileSystem, dir: string): Promise<void> {
  const kind = await fs.kind(dir);
  if (kind === undefined) {
    await fs.mkdir(dir);
    await fs.syncDir(path.dirname(path.resolve(dir)));
    return;
  }
  if (kind !== 'directory') throw new InvalidArgumentError(`${dir} exists and is not a directory`);
  const names = await fs.readdir(dir);
  if (names.length > 0) {
    throw new InvalidArgumentError(
      `${dir} is not empty (${names.length} entries, e.g. ${names[0]}); a backup or restore needs a new or empty directory`,
    );
  }
}

/**
 * backupInto copies a cut into `dir` (new or empty): hard links where the file system allows,
 * copies otherwise, a fresh empty data file, the directory fsynced, then the metadata. On
 * failure it removes what it wrote (best effort: without metadata, what remains is refused by
 * open anyway).
 *
 * The fresh data file: a linked file is the same inode as the source's file (and as every other
 * backup's link to it), so the copy must never write into one. Opening a store appends to its
 * newest data file without a hint file and repairs a torn tail only there (recovery.ts,
 * appendTarget and the active candidate); without the fresh file that would be the last sealed
 * file of the cut, and a write to the opened copy would land in the source store (seen at its
 * next open) and in any later backup that linked the same file. Numbered above every listed
 * file, the empty file is the copy's active file instead. Copies (EXDEV) get it too: one rule.
 */
export async function backupInto(
  fs: FileSystem,
  source: CaskBackupSource,
  dir: string,
  options: { readonly copy?: boolean } = {},
): Promise<BackupInfo> {
  await prepareTarget(fs, dir);
  const written: string[] = [];
  let linked = 0;
  let copied = 0;
  let bytes = 0;
  try {
    for (const entry of source.entries) {
      if (entry.bytes !== undefined) continue; // the metadata, last
      assert(entry.path !== undefined, `backup file ${entry.name} has neither path nor bytes`);
      const target = path.join(dir, entry.name);
      written.push(target);
      bytes += entry.size;
      if (options.copy !== true && (await tryLink(fs, entry.path, target))) {
        linked++;
        continue;
      }
      await copyFile(fs, source, entry, target);
      copied++;
    }
    // The copy's own active file, above every listed one (see the comment above).
    let lastId = 0;
    for (const entry of source.entries) lastId = Math.max(lastId, parseFileId(entry.name, DATA_SUFFIX) ?? 0);
    written.push(path.join(dir, dataFileName(lastId + 1)));
    const fresh = await createDataFile(fs, dir, lastId + 1);
    await fresh.file.close();
    copied++;
    bytes += fresh.size;
    // The links and copies are directory entries: durable before the metadata names them a store.
    await fs.syncDir(dir);
    for (const name of META_FILES) written.push(path.join(dir, name));
    await writeMeta(fs, dir, source.meta);
    const metaBytes = source.entries.filter((e) => e.bytes !== undefined).reduce((n, e) => n + e.size, 0);
    return {
      engine: source.engine,
      files: linked + copied + META_FILES.length,
      linked,
      copied: copied + META_FILES.length,
      bytes: bytes + metaBytes,
      keys: source.keys,
      lastTs: source.lastTs,
    };
  } catch (err) {
    for (const file of written.reverse()) await fs.unlink(file).catch(() => {});
    for (const name of META_FILES) await fs.unlink(path.join(dir, `${name}.tmp`)).catch(() => {});
    throw err;
  }
}

/** tryLink links `existing` as `target`; false when the file system cannot (copy instead). */
async function tryLink(fs: FileSystem, existing: string, target: string): Promise<boolean> {
  try {
    await fs.link(existing, target);
    return true;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && LINK_FALLBACK_CODES.has(code)) return false;
    throw err;
  }
}

async function copyFile(
  fs: FileSystem,
  source: BackupSource,
  entry: BackupFileEntry,
  target: string,
): Promise<void> {
  const out = await fs.open(target, 'create');
  try {
    const buf = Buffer.allocUnsafe(Math.min(BACKUP_CHUNK_BYTES, Math.max(1, entry.size)));
    let at = 0;
    while (at < entry.size) {
      const n = await source.read(entry.name, buf, 0, Math.min(buf.length, entry.size - at), at);
      if (n === 0) {
        throw new IoError(
          `${entry.name} ended at byte ${at} of ${entry.size} while it was copied`,
          undefined,
        );
      }
      await out.write(buf.subarray(0, n), at);
      at += n;
    }
    await out.datasync();
  } finally {
    await out.close();
  }
}
