// Staging directories for incoming snapshots. A receiving transport restores each snapshot into
// a fresh subdirectory of its staging directory and hands it to onSnapshot; from then on the
// handler owns it and moves it out (a rename, so the staging directory should be on the file
// system of the data directory) or deletes it. Whatever is still there at the next start was
// left by a crash (a restore cut short, or a handler that never got to it) and is deleted:
// Raft sends the snapshot again if it is still needed.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Message } from '../raft/types.js';

/** STAGED_DIR_PREFIX names the staged snapshot directories (and nothing else is touched). */
export const STAGED_DIR_PREFIX = 'incoming-';

/** STAGED_DIR_RANDOM_BYTES: the random part of a staged name, so two receipts never share one. */
const STAGED_DIR_RANDOM_BYTES = 6;

/** stagedDirFor returns a fresh path under `parent` for the snapshot of MsgSnap `m`. */
export function stagedDirFor(parent: string, m: Message): string {
  const meta = m.snapshot?.metadata;
  const name = `${STAGED_DIR_PREFIX}${m.from}-${meta?.term ?? 0}-${meta?.index ?? 0}-${randomBytes(STAGED_DIR_RANDOM_BYTES).toString('hex')}`;
  return path.join(parent, name);
}

/**
 * removeStagedDir deletes a staged directory and what is in it (missing is fine). The FileSystem
 * interface has no directory removal: on the real file system the directory goes too; on
 * another (a test's), its files are unlinked and the empty directory stays.
 */
export async function removeStagedDir(fs: FileSystem, dir: string): Promise<void> {
  if (fs === nodeFileSystem) {
    await fsp.rm(dir, { recursive: true, force: true });
    return;
  }
  if ((await fs.kind(dir)) !== 'directory') return;
  for (const name of await fs.readdir(dir)) await fs.unlink(path.join(dir, name));
}

/**
 * prepareStagingDir creates the staging directory if missing and deletes the staged directories
 * a crash left in it; it returns their names. Other entries are left alone.
 */
export async function prepareStagingDir(dir: string): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const stale = (await fsp.readdir(dir)).filter((name) => name.startsWith(STAGED_DIR_PREFIX));
  for (const name of stale) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  return stale;
}
