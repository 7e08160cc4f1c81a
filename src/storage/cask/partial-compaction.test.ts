// Partial compaction (compaction-plan.ts, docs/compaction.md) against a Map model: random puts,
// deletes, rotations, compactions of random subsets of the data files (the active one
// included), full compactions, clean reopens, power cuts, and power cuts in the middle of a
// partial compaction. The property that matters most: a deleted key never comes back, whatever
// files were compacted before a restart, because an input's tombstone outlives it whenever an
// older put of its key may survive in a file outside the compaction.
import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import {
  buildTombstoneStore,
  crashPartialCompaction,
  newerHalf,
  partialCompactionSteps,
  TOMBSTONE_STORE_OPTIONS,
} from '../../../test/support/tombstone-store.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import type { CaskOptions } from './cask-options.js';
import { planCompaction } from './compaction-plan.js';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];
const keyArb = fc.constantFrom(...KEYS);
const maskArb = fc.array(fc.boolean(), { minLength: 8, maxLength: 8 });
const opArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      key: keyArb,
      len: fc.nat(400),
      tag: fc.nat(999),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('rotate' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('compactSome' as const), mask: maskArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compactAll' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('powerCut' as const) }) },
  // A restart that finds no hint file (a crash before they were written, or damage): every
  // data file is scanned, so every record on disk counts, dead puts included.
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopenWithoutHints' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('cutDuringCompaction' as const),
      mask: maskArb,
      steps: fc.nat(40),
    }),
  },
);

const valueFor = (key: string, len: number, tag: number): string => `${key}${tag}:`.padEnd(len + 6, '.');

/** chosen: the files of `db` that `mask` picks (by position, oldest first). */
function chosen(db: PipelinedCask, mask: readonly boolean[]): number[] {
  return db.engine.files.ids().filter((_, i) => mask[i % mask.length] === true);
}

async function expectModel(db: PipelinedCask, model: Map<string, string>, when: string): Promise<void> {
  for (const key of KEYS) {
    const got = await db.get(Buffer.from(key));
    expect(got === undefined ? undefined : Buffer.from(got).toString(), `${key} ${when}`).toBe(
      model.get(key),
    );
  }
  expect(db.stats().keys, when).toBe(model.size);
}

describe('partial compaction against a Map model', () => {
  it('never brings back a deleted key nor loses a put, across compactions of any files, restarts and power cuts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        const dir = tmpDir('partial');
        let faulty = new FaultyFileSystem(nodeFileSystem);
        const options = (): CaskOptions => ({
          fs: faulty,
          dataFileBytes: 4096,
          autoCompact: false,
          debugChecks: true,
        });
        let db = await openCaskPipelined(dir, options());
        const model = new Map<string, string>();
        const log: string[] = [];
        const restart = async (cut: boolean, dropHints = false): Promise<void> => {
          if (cut) {
            faulty.dieAfter = faulty.mutations;
            await db.close().catch(() => {});
            await faulty.powerLoss();
          } else {
            await db.close();
          }
          if (dropHints)
            for (const name of readdirSync(dir)) if (name.endsWith('.hint')) unlinkSync(join(dir, name));
          faulty = new FaultyFileSystem(nodeFileSystem);
          db = await openCaskPipelined(dir, options());
        };
        try {
          for (const step of ops) {
            log.push(JSON.stringify(step));
            switch (step.op) {
              case 'put': {
                const value = valueFor(step.key, step.len, step.tag);
                await db.put(Buffer.from(step.key), Buffer.from(value));
                model.set(step.key, value);
                break;
              }
              case 'delete':
                await db.delete(Buffer.from(step.key));
                model.delete(step.key);
                break;
              case 'rotate':
                await db.engine.rotate();
                break;
              case 'compactSome':
                await db.engine.compactFiles(chosen(db, step.mask));
                break;
              case 'compactAll':
                await db.compact();
                break;
              case 'reopen':
                await restart(false);
                break;
              case 'reopenWithoutHints':
                await restart(false, true);
                break;
              case 'powerCut':
                // Every acknowledged write was fdatasynced (durability always): all of them stay.
                await restart(true);
                break;
              case 'cutDuringCompaction': {
                faulty.dieAfter = faulty.mutations + step.steps;
                await db.engine.compactFiles(chosen(db, step.mask)).catch(() => {});
                await restart(true);
                break;
              }
            }
            await expectModel(db, model, `after ${log.join(', ')}`);
          }
          // And once more from the disk alone.
          await restart(false);
          await expectModel(db, model, `reopened after ${log.join(', ')}`);
        } finally {
          await db.close().catch(() => {});
        }
      }),
      { numRuns: 120 },
    );
  });

  it('carries a tombstone whose older put lives outside the inputs, and drops it once that put is gone', async () => {
    const dir = tmpDir('partial-carry');
    const db = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    await db.put(Buffer.from('k'), Buffer.from('old'));
    await db.engine.rotate(); // file 1: the put
    await db.delete(Buffer.from('k'));
    await db.put(Buffer.from('other'), Buffer.from('x'));
    await db.engine.rotate(); // file 2: the delete
    const [first, second] = db.engine.files.ids();
    await db.engine.compactFiles([second as number]);
    const output = Math.max(...db.engine.files.ids().filter((id) => id !== db.engine.active.id));
    // The output holds the tombstone (counted as needed, so not dead) beside the live key.
    expect(db.engine.files.get(output).size).toBeGreaterThan(db.engine.files.get(output).liveBytes - 1);
    await db.close();
    let again = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    expect(await again.get(Buffer.from('k'))).toBeUndefined();
    // Now compact the file with the old put together with the output: the tombstone goes too.
    await again.engine.compactFiles([first as number, output]);
    await again.close();
    again = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    expect(await again.get(Buffer.from('k'))).toBeUndefined();
    expect(String(await again.get(Buffer.from('other')))).toBe('x');
    const sizes = again.engine.files.all().map((f) => ({ size: f.size, live: f.liveBytes }));
    expect(sizes.every((f) => f.size - f.live <= 20)).toBe(true); // headers only: no record is dead
    await again.close();
  });
});

describe('a partial compaction that crashes or fails at any step', () => {
  const OPTIONS = TOMBSTONE_STORE_OPTIONS;
  const build = buildTombstoneStore;

  async function expectContents(dir: string, model: Map<string, string>, dropHints: boolean): Promise<void> {
    if (dropHints)
      for (const name of readdirSync(dir)) if (name.endsWith('.hint')) unlinkSync(join(dir, name));
    const db = await openCaskPipelined(dir, OPTIONS);
    try {
      const seen = new Map<string, string>();
      for await (const [k, v] of db.scan()) seen.set(Buffer.from(k).toString(), Buffer.from(v).toString());
      expect(seen).toEqual(model);
    } finally {
      await db.close();
    }
  }

  it('loses no put and revives no deleted key when the machine dies at any step', async () => {
    const steps = await partialCompactionSteps(tmpDir('partial-probe'));
    expect(steps).toBeGreaterThan(10);

    for (let k = 0; k <= steps; k++) {
      const dir = tmpDir('partial-crash');
      const model = await crashPartialCompaction(dir, k);
      try {
        await expectContents(dir, model, false);
        // And with every file scanned, as after a crash before hint files were written: the
        // dead puts of the files left alone are read too, and must stay shadowed.
        await expectContents(dir, model, true);
      } catch (err) {
        throw new Error(`crash after partial compaction step ${k} of ${steps}: ${String(err)}`);
      }
    }
  });

  it('carries the tombstones in the smallest steps too (compactionStepMs 0), and finishes', async () => {
    const dir = tmpDir('partial-steps');
    const model = await build(dir);
    const db = await openCaskPipelined(dir, { ...OPTIONS, compactionStepMs: 0 });
    // A compaction whose every step finds its time slice spent must still make progress (it
    // carried no tombstone once the walk had spent the slice, and never finished).
    const timedOut = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the compaction did not finish')), 20_000).unref(),
    );
    await Promise.race([db.engine.compactFiles(newerHalf(db)), timedOut]);
    await db.close();
    await expectContents(dir, model, false);
    await expectContents(dir, model, true);
  });

  it('loses nothing when a step fails (EIO), and the store keeps working', async () => {
    const steps = await partialCompactionSteps(tmpDir('partial-probe'));

    for (let k = 0; k < steps; k += 3) {
      const dir = tmpDir('partial-eio');
      const model = await build(dir);
      const faulty = new FaultyFileSystem(nodeFileSystem);
      const db = await openCaskPipelined(dir, { ...OPTIONS, fs: faulty });
      for (const op of ['write', 'datasync', 'rename', 'syncDir', 'unlink'] as const) {
        faulty.inject({ op, code: 'EIO', skip: k, times: 1 });
      }
      await db.engine.compactFiles(newerHalf(db)).catch(() => {});
      faulty.clearFaults();
      await db.put(Buffer.from('after'), Buffer.from('fault'));
      model.set('after', 'fault');
      await db.close();
      try {
        await expectContents(dir, model, false);
        await expectContents(dir, model, true);
      } catch (err) {
        throw new Error(`EIO at partial compaction step ${k}: ${String(err)}`);
      }
    }
  });
});

describe('planCompaction', () => {
  const file = (id: number, size: number, liveBytes: number) => ({ id, size, liveBytes });

  it('picks the most fragmented files until the dead ratio would fall to half the trigger', () => {
    const files = [file(1, 1000, 900), file(2, 1000, 100), file(3, 1000, 500), file(4, 1000, 1000)];
    // dead 1500 of 4000; trigger 0.2: free down to 0.1 * 4000 = 400, so at least 1100.
    expect(planCompaction(files, 0.2)).toEqual([2, 3]);
    // trigger 0.3: down to 600, so at least 900: the most fragmented file does it alone.
    expect(planCompaction(files, 0.3)).toEqual([2]);
  });

  it('leaves files that are mostly live alone, even when the trigger fired', () => {
    expect(planCompaction([file(1, 1000, 850), file(2, 1000, 900)], 0.1)).toEqual([]);
  });

  it('takes at least one file when any is worth it', () => {
    expect(planCompaction([file(1, 1000, 700), file(2, 1000, 1000)], 0.9)).toEqual([1]);
  });
});
