// The WAL's synced-end mark: at a clean close, `DIR/synced-end` records how far the active
// segment was durable (docs/wal.md, "Opening after a crash"). The next open trusts the bytes
// below it and writes the rest of the segment again before it replays it as its own (a failed
// fdatasync leaves pages readable but never to be written: src/io/rewrite-durably.ts). Segments
// are only appended to, so the bytes below the mark stay durable while the segment lives; a mark
// that names another segment, or more bytes than the segment holds (recovery cut it below the
// mark), is removed at open, before anything is appended. A missing or unreadable mark only
// makes the open rewrite the whole active segment.
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import type { FileSystem } from '../io/file-system.js';
import { parseSegmentName, SEGMENT_HEADER_BYTES } from './wal-format.js';

/** SYNCED_END_FILE: the mark's name in the WAL directory. */
export const SYNCED_END_FILE = 'synced-end';
/** SYNCED_END_MAX_BYTES: a mark is a line of JSON; anything larger is not one of ours. */
const SYNCED_END_MAX_BYTES = 4096;

/** SyncedEnd: segment `segment` (its file name) was durable through byte `bytes`. */
export interface SyncedEnd {
  readonly segment: string;
  readonly bytes: number;
}

/** readSyncedEnd returns the mark in dir, or undefined if there is none or it is not valid. */
export async function readSyncedEnd(fs: FileSystem, dir: string): Promise<SyncedEnd | undefined> {
  const file = path.join(dir, SYNCED_END_FILE);
  if ((await fs.kind(file)) !== 'file') return undefined;
  const raw = await fs.readFile(file);
  if (raw.length > SYNCED_END_MAX_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    return undefined; // damaged: the whole active segment is rewritten, which is always safe
  }
  const { segment, bytes } = (parsed ?? {}) as { segment?: unknown; bytes?: unknown };
  if (typeof segment !== 'string' || parseSegmentName(segment) === undefined) return undefined;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < SEGMENT_HEADER_BYTES)
    return undefined;
  return { segment, bytes };
}

/** writeSyncedEnd records the mark durably (a temporary file, fdatasync, rename, directory fsync). */
export async function writeSyncedEnd(fs: FileSystem, dir: string, mark: SyncedEnd): Promise<void> {
  await writeFileAtomic(fs, path.join(dir, SYNCED_END_FILE), Buffer.from(`${JSON.stringify(mark)}\n`));
}

/** removeSyncedEnd removes the mark durably (it no longer holds). */
export async function removeSyncedEnd(fs: FileSystem, dir: string): Promise<void> {
  await fs.unlink(path.join(dir, SYNCED_END_FILE));
  await fs.syncDir(dir);
}
