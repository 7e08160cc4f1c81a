// A small cask store whose newer files hold tombstones of puts in its older files: what a
// partial compaction of the newer files must keep deleted (partial-compaction.test.ts), and what
// a metadata rebuild after such a compaction was cut must not bring back (rebuild-meta.test.ts).
import { FaultyFileSystem } from '../../src/io/faulty-file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { Prng } from '../../src/stdx/prng.js';
import { openCaskPipelined, type PipelinedCask } from './pipelined-cask.js';

/** TOMBSTONE_STORE_OPTIONS: tiny data files, so that 160 writes span several; no background compaction. */
export const TOMBSTONE_STORE_OPTIONS = { dataFileBytes: 4096, autoCompact: false } as const;

/**
 * buildTombstoneStore writes the same store every time: puts of 40 keys spread over the older
 * files, then deletes and rewrites in the newer ones, so that the newer files hold tombstones
 * whose older puts live in files a compaction of the newer ones leaves alone. It closes the
 * store once every sealed file has its hint, and returns the contents.
 */
export async function buildTombstoneStore(dir: string): Promise<Map<string, string>> {
  const rng = new Prng(11);
  const model = new Map<string, string>();
  const db = await openCaskPipelined(dir, TOMBSTONE_STORE_OPTIONS);
  for (let i = 0; i < 40; i++) {
    const value = `first${i}`.padEnd(60, '.');
    await db.put(Buffer.from(`key${i}`), Buffer.from(value));
    model.set(`key${i}`, value);
  }
  await db.engine.rotate();
  for (let i = 0; i < 120; i++) {
    const key = `key${rng.int(40)}`;
    if (rng.chance(0.4)) {
      await db.delete(Buffer.from(key));
      model.delete(key);
    } else {
      const value = `v${i}`.padEnd(rng.range(1, 80), '.');
      await db.put(Buffer.from(key), Buffer.from(value));
      model.set(key, value);
    }
  }
  await db.engine.hintsSettled();
  await db.close();
  return model;
}

/** newerHalf: the newer half of the store's data files, the active one included. */
export function newerHalf(db: PipelinedCask): number[] {
  const ids = db.engine.files.ids();
  return ids.slice(ids.length >> 1);
}

/**
 * partialCompactionSteps: how many file-system mutations the partial compaction of the newer
 * half of a fresh tombstone store makes (built in `dir`, compacted there).
 */
export async function partialCompactionSteps(dir: string): Promise<number> {
  await buildTombstoneStore(dir);
  const probeFs = new FaultyFileSystem(nodeFileSystem);
  const probe = await openCaskPipelined(dir, { ...TOMBSTONE_STORE_OPTIONS, fs: probeFs });
  const start = probeFs.mutations;
  await probe.engine.compactFiles(newerHalf(probe));
  const steps = probeFs.mutations - start;
  await probe.close();
  return steps;
}

/**
 * crashPartialCompaction builds a tombstone store in `dir`, starts the partial compaction of its
 * newer half, and loses power after `step` more file-system mutations (what was not fsynced is
 * gone). It returns the store's contents as written before the compaction.
 */
export async function crashPartialCompaction(dir: string, step: number): Promise<Map<string, string>> {
  const model = await buildTombstoneStore(dir);
  const faulty = new FaultyFileSystem(nodeFileSystem);
  const db = await openCaskPipelined(dir, { ...TOMBSTONE_STORE_OPTIONS, fs: faulty });
  faulty.dieAfter = faulty.mutations + step;
  await db.engine.compactFiles(newerHalf(db)).catch(() => {});
  await db.close().catch(() => {});
  await faulty.powerLoss();
  return model;
}
