// Installing a Raft snapshot's engine files (docs/cluster.md, "Snapshots and log compaction"):
// the files a leader streamed were restored and verified into a staging directory under
// DIR/raft; they now replace the engine's files in DIR, with the engine closed.
//
// A member's DIR holds the engine's files directly (the same layout as a single server's store),
// so the replacement cannot be one rename of a directory. It is a roll-forward procedure with a
// marker, DIR/raft/install.json, written atomically before anything changes:
//
//   marker := { "stage": path of the staging directory relative to DIR, "phase": "clear" | "move" }
//
//   clear: remove every engine file of DIR (anything but raft/, LOCK and set-aside directories),
//          fsync DIR, rewrite the marker with phase "move";
//   move:  rename every file of the staging directory into DIR (metadata last), fsync DIR, remove
//          the marker.
//
// Each phase is idempotent from any point a crash can leave it at, so a member that finds the
// marker at start-up (finishInstall) runs the rest of it before opening the engine. Removing the
// old files first matters: both sets use the same names (0000000001.data, ...), and a crash
// halfway through the moves must not leave a mix that a second "clear" would then half-delete.
// The old engine's files are thrown away on purpose: they are a replica of state the snapshot
// supersedes (every committed write up to its index), not data only this member holds.
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import type { FileSystem } from '../io/file-system.js';
import { CorruptionError } from '../storage/errors.js';
import { RAFT_DIR } from './identity.js';

/** INSTALL_MARKER: in DIR/raft while a snapshot's files replace the engine's. */
export const INSTALL_MARKER = 'install.json';
/** SET_ASIDE_PREFIX: directories of damaged engine files a member set aside (member.ts). */
export const SET_ASIDE_PREFIX = 'engine-set-aside-';
/** LOCK_FILE: the engine's directory lock, not one of its files. */
const LOCK_FILE = 'LOCK';

type Phase = 'clear' | 'move';

interface Marker {
  readonly stage: string;
  readonly phase: Phase;
}

/** isEngineEntry: whether a name in DIR belongs to the engine (not the member's own files). */
export function isEngineEntry(name: string): boolean {
  return name !== RAFT_DIR && name !== LOCK_FILE && !name.startsWith(SET_ASIDE_PREFIX);
}

/**
 * installEngineFiles replaces the engine files of `dir` with those of `stage` (a directory inside
 * dir/raft, holding a complete, verified store). The engine must be closed.
 */
export async function installEngineFiles(fs: FileSystem, dir: string, stage: string): Promise<void> {
  const rel = path.relative(dir, stage);
  if (rel.startsWith('..') || path.isAbsolute(rel) || !rel.startsWith(`${RAFT_DIR}${path.sep}`)) {
    throw new Error(`a snapshot's staging directory must be inside ${path.join(dir, RAFT_DIR)}: ${stage}`);
  }
  const marker: Marker = { stage: rel, phase: 'clear' };
  await writeMarker(fs, dir, marker);
  if (!(await rollForward(fs, dir, marker))) {
    throw new CorruptionError(`no snapshot files are staged in ${stage}: the engine was left as it was`);
  }
}

/**
 * finishInstall completes an install a crash interrupted (the marker is present). It returns
 * undefined when there was nothing to finish, else the staging directory and whether the install
 * completed (false: its staged files were lost before the engine was touched; the old engine
 * stays, which is consistent because the log never recorded that snapshot).
 */
export async function finishInstall(
  fs: FileSystem,
  dir: string,
): Promise<{ stage: string; installed: boolean } | undefined> {
  const file = markerPath(dir);
  if (!(await fs.exists(file))) return undefined;
  const marker = parseMarker(await fs.readFile(file), file);
  return { stage: marker.stage, installed: await rollForward(fs, dir, marker) };
}

/** rollForward runs the rest of an install; false when the staged files were missing (nothing changed). */
async function rollForward(fs: FileSystem, dir: string, marker: Marker): Promise<boolean> {
  const stage = path.join(dir, marker.stage);
  if (marker.phase === 'clear' && (await stagedNames(fs, stage)).length === 0) {
    // The staged files did not survive (a power cut before they were durable): nothing was
    // removed yet and the log never recorded the snapshot, so the old engine stays.
    await fs.unlink(markerPath(dir));
    await fs.syncDir(path.join(dir, RAFT_DIR));
    return false;
  }
  if (marker.phase === 'clear') {
    for (const name of await fs.readdir(dir)) {
      if (!isEngineEntry(name)) continue;
      const p = path.join(dir, name);
      // Only files: a store is flat, and a directory here is not ours to remove.
      if ((await fs.kind(p)) === 'file') await fs.unlink(p);
    }
    await fs.syncDir(dir);
    await writeMarker(fs, dir, { stage: marker.stage, phase: 'move' });
  }
  const names = await stagedNames(fs, stage);
  // Metadata last: a store without its metadata is refused by open, so until the last rename the
  // directory is visibly incomplete (the marker still says so too).
  names.sort((a, b) => Number(isMeta(a)) - Number(isMeta(b)) || (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) await fs.rename(path.join(stage, name), path.join(dir, name));
  await fs.syncDir(dir);
  if (names.length > 0) await fs.syncDir(stage);
  await fs.unlink(markerPath(dir));
  await fs.syncDir(path.join(dir, RAFT_DIR));
  return true;
}

async function stagedNames(fs: FileSystem, stage: string): Promise<string[]> {
  return (await fs.kind(stage)) === 'directory' ? await fs.readdir(stage) : [];
}

function isMeta(name: string): boolean {
  return name.startsWith('META');
}

function markerPath(dir: string): string {
  return path.join(dir, RAFT_DIR, INSTALL_MARKER);
}

function writeMarker(fs: FileSystem, dir: string, marker: Marker): Promise<void> {
  return writeFileAtomic(fs, markerPath(dir), Buffer.from(`${JSON.stringify(marker)}\n`));
}

function parseMarker(bytes: Uint8Array, file: string): Marker {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new CorruptionError(
      `${file} is not valid JSON: an interrupted snapshot install cannot be finished`,
    );
  }
  const m = v as Partial<Marker> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.stage !== 'string' ||
    (m.phase !== 'clear' && m.phase !== 'move') ||
    !m.stage.startsWith(`${RAFT_DIR}${path.sep}`) ||
    m.stage.split(path.sep).includes('..')
  ) {
    throw new CorruptionError(`${file} is malformed: an interrupted snapshot install cannot be finished`);
  }
  return { stage: m.stage, phase: m.phase };
}
