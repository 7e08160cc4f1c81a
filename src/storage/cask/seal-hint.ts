// Hint files for sealed data files (issue 14): without them every open decodes every record of
// every file that compaction has not rewritten, and inserts the keys into the key directory in
// random order (3.6 s for 1M keys); with them an open streams sorted runs (docs/format.md,
// "Hint files").
//
// A sealed file's hint is built from the key directory, not by reading the file back: it lists
// (in key order, from a walk) every key whose current record lives in the file, plus every
// DELETE record the file holds (tombstones, which the key directory forgets; the store notes
// them as they are written, and recovery as it scans). Records of the file that a newer record
// replaced are left out: at recovery the newer one wins anyway, provided it survives. So:
//
// - Before the hint file gets its name, every write published so far is made durable (`sync`):
//   a key left out because a newer write replaced it must not come back at its old value, nor
//   vanish, when a power cut takes that newer write (modes `interval` and `never`).
// - Outside compaction the set of keys pointing into a sealed file only shrinks (writes go to
//   the active file), so the walk may yield to the event loop between chunks: a key it misses
//   moved out, to a record published before the sync. Compaction moves keys out of its inputs
//   into outputs, and back when it fails; so no compaction may run during the walk: the walk
//   starts when none runs and is done again if one started meanwhile (`compactionEpoch`). One
//   that starts after the walk changes nothing the hint says: its outputs are durable copies.
// - The hint file is written as compaction writes its own: `.hint.tmp`, fdatasync, rename,
//   directory fsync. A crash at any point leaves no hint (the file is scanned, as before) or a
//   complete one; recovery checks its CRC and the data file's size, and scans on any doubt.
import type { FileSystem } from '../../io/file-system.js';
import type { EventLoop } from '../../stdx/event-loop.js';
import { Pacer } from '../../stdx/pacer.js';
import { FORMAT_VERSION } from '../meta.js';
import type { DataFileSet } from './data-file-set.js';
import { hintPath, TEMP_SUFFIX } from './file-names.js';
import { HintWriter } from './hint.js';
import type { KeyDir, WalkResume } from './key-dir.js';
import type { Tombstone } from './store-state.js';

/**
 * WALK_CHUNK_VISITS: at most this many key directory entries are looked at per turn of the
 * event loop (and fewer once the host's stepMs is spent).
 */
const WALK_CHUNK_VISITS = 65_536;
/**
 * CLOSE_HINT_MIN_BYTES: a clean close gives the active file a hint file (sealing it: the next
 * open starts a new file) only from this size up. A smaller file scans in a few milliseconds,
 * and sealing every small file would leave a new data file behind every short-lived process.
 */
export const CLOSE_HINT_MIN_BYTES = 1024 * 1024;

/** SealHintHost: what writing a sealed file's hint needs of the store. */
export interface SealHintHost {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly files: DataFileSet;
  readonly keyDir: KeyDir;
  /**
   * tombstones: the deletes each data file holds; a file's entry is dropped here once its hint
   * lists them (or the file is gone), not before: a partial compaction may need them meanwhile.
   */
  readonly tombstones: Map<number, Tombstone[]>;
  /**
   * stepMs: how long one step may hold the event loop (CaskOptions.compactionStepMs); less on a
   * busy loop without writes (stdx/pacer.ts, docs/compaction.md "Pacing").
   */
  readonly stepMs: number;
  /** loop: the time steps are measured by, and the turns between them (CaskOptions.loop). */
  readonly loop: EventLoop;
  /** publishedBytes: the bytes of the writes the store has published (the pacer watches them). */
  publishedBytes(): number;
  expiryOf(key: Uint8Array): number | undefined;
  /** stopping: the store is closing; give up (the file is scanned at the next open). */
  stopping(): boolean;
  /** sync: make every write published so far durable (a group-commit barrier). */
  sync(): Promise<void>;
  /** compactionEpoch: changes when a compaction starts or ends; odd while one runs. */
  compactionEpoch(): number;
  /** compactionDone: resolves once no compaction runs (check the epoch again after it). */
  compactionDone(): Promise<void>;
}

/** WALK_ATTEMPTS_MAX: walks begun again for compactions before the hint is given up. */
const WALK_ATTEMPTS_MAX = 8;

/**
 * writeSealHint writes the hint file of sealed data file `id`. It returns whether it wrote one;
 * false when the file is gone (compacted) or the store is closing. I/O errors are thrown, having
 * removed the temporary file: the data file is then scanned at the next open, as before.
 */
export async function writeSealHint(host: SealHintHost, id: number, yieldBetween = true): Promise<boolean> {
  // No rate reported: while writes are published a step takes the whole budget (files are sealed,
  // and their hints queued, as fast as the writes fill them); on a loop busy with reads only it
  // takes the loop's share (stdx/pacer.ts).
  const slice = new Pacer(host.stepMs, { publishedBytes: () => host.publishedBytes() }, host.loop);
  // Without yielding (a close), the whole walk is one step.
  const over = yieldBetween ? slice.over : () => false;
  let hint: HintWriter | undefined;
  for (let attempt = 0; hint === undefined; attempt++) {
    if (attempt === WALK_ATTEMPTS_MAX) return false;
    await host.compactionDone();
    const epoch = host.compactionEpoch();
    if (epoch % 2 === 1) continue;
    const walked = new HintWriter(FORMAT_VERSION, id);
    const files = new Set([id]);
    let cursor: WalkResume | undefined;
    do {
      if (host.stopping()) return false;
      if (host.files.tryGet(id) === undefined) return gone(host, id);
      slice.start();
      cursor = host.keyDir.walkFiles(files, cursor, WALK_CHUNK_VISITS, over, (key, loc) => {
        walked.add(key, loc.seq, loc.valueOffset, loc.valueLen, host.expiryOf(key), loc.create, loc.version);
        return true;
      });
      if (cursor !== undefined && yieldBetween) await slice.pause();
    } while (cursor !== undefined && host.compactionEpoch() === epoch);
    if (host.compactionEpoch() === epoch) hint = walked;
  }
  const data = host.files.tryGet(id);
  if (data === undefined) return gone(host, id);
  // A sealed file's list of deletes is complete and no longer changes.
  const tombstones = host.tombstones.get(id) ?? [];
  for (const t of tombstones) hint.addTombstone(t.key, t.seq);
  const bytes = yieldBetween
    ? await hint.finishInSteps(data.size, slice, slice.pause)
    : hint.finish(data.size);
  await host.sync();
  if (host.files.tryGet(id) === undefined) return gone(host, id);
  const target = hintPath(host.dir, id);
  const tmp = `${target}${TEMP_SUFFIX}`;
  try {
    await host.fs.unlink(tmp);
    const file = await host.fs.open(tmp, 'create');
    try {
      await file.write(bytes, 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await host.fs.rename(tmp, target);
    await host.fs.syncDir(host.dir);
    if (host.files.tryGet(id) === undefined) {
      // A compaction retired the file while the hint was being written, and may have deleted
      // the files before the rename: take the hint away again (if this fails too, the next open
      // removes it as an orphan).
      await host.fs.unlink(target).catch(() => {});
      return gone(host, id);
    }
    // The hint lists the deletes now (a failure above keeps them noted: the file has no hint).
    host.tombstones.delete(id);
    const data = host.files.tryGet(id);
    if (data !== undefined) data.hinted = true;
    return true;
  } catch (err) {
    await host.fs.unlink(tmp).catch(() => {});
    throw err;
  }
}

/** gone: data file `id` was compacted away before its hint was written; its deletes went with it. */
function gone(host: SealHintHost, id: number): false {
  host.tombstones.delete(id);
  return false;
}
