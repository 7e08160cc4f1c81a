// DiskLog against MemoryStorage as the model: random saves (overwriting suffixes, hard states,
// snapshots installed from a leader), snapshots, compactions and reopens; every LogStorage
// answer must equal the model's after every step and after every reopen.
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { AssertionError } from '../stdx/assert.js';
import { LimitError } from '../storage/errors.js';
import { DiskLog } from './disk-log.js';
import { ModelLog, noSyncFileSystem, viewOf } from './test-support.js';
import { MAX_ENTRY_BYTES } from './wal-format.js';

const fastFs = noSyncFileSystem(nodeFileSystem);

const entry = (index: number, term: number, data: number[] = [index & 0xff]): Entry => ({
  index,
  term,
  type: index % 7 === 0 ? 'confChange' : 'normal',
  data: new Uint8Array(data),
});

const conf = (n: number): ConfState => ({
  voters: [1, 2, n + 3],
  learners: n % 2 === 0 ? [] : [9],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: n % 3 === 0,
});

/** Op is a random step; its numbers are fractions resolved against the log's current state. */
type Op =
  | { kind: 'append'; at: number; count: number; bump: boolean; sync: boolean; hs: boolean; len: number }
  | { kind: 'install'; ahead: number; count: number }
  | { kind: 'createSnapshot'; at: number }
  | { kind: 'compact'; at: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      count: fc.integer({ min: 0, max: 6 }),
      bump: fc.boolean(),
      sync: fc.boolean(),
      hs: fc.boolean(),
      len: fc.integer({ min: 0, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('install' as const),
      ahead: fc.integer({ min: -3, max: 6 }),
      count: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('createSnapshot' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

describe('DiskLog against MemoryStorage', () => {
  it('answers as the model after every step and every reopen', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 200, max: 900 }),
        async (ops, segmentBytes) => {
          const dir = path.join(tmpDir('wal-model'), `run-${run++}`);
          let log = await DiskLog.open(fastFs, dir, { segmentBytes });
          const model = new ModelLog();
          let term = 1;
          let n = 0;
          try {
            for (const op of ops) {
              n++;
              const first = model.mem.firstIndex();
              const last = model.mem.lastIndex();
              switch (op.kind) {
                case 'append': {
                  if (op.bump) term++;
                  const start = Math.min(last + 1, first + Math.floor(op.at * (last - first + 2)));
                  const ents = Array.from({ length: op.count }, (_, k) =>
                    entry(
                      start + k,
                      term,
                      Array.from({ length: op.len }, (_, j) => (start + k + j) & 0xff),
                    ),
                  );
                  const hs: HardState | undefined = op.hs
                    ? { term, vote: term % 3, commit: Math.max(0, start - 1) }
                    : undefined;
                  model.save(hs, ents, undefined);
                  await log.save(hs, ents, undefined, op.sync);
                  break;
                }
                case 'install': {
                  term++;
                  const index = Math.max(model.mem.snapshot().metadata.index + 1, last + op.ahead);
                  const snap: Snapshot = {
                    metadata: { index, term, confState: conf(index) },
                    data: new Uint8Array([n, index & 0xff]),
                  };
                  const ents = Array.from({ length: op.count }, (_, k) => entry(index + 1 + k, term));
                  const hs = { term, vote: 0, commit: index };
                  model.save(hs, ents, snap);
                  await log.save(hs, ents, snap, true);
                  break;
                }
                case 'createSnapshot': {
                  const i = Math.min(last, first - 1 + Math.floor(op.at * (last - first + 2)));
                  const data = new Uint8Array([n]);
                  const want = model.createSnapshot(i, conf(i), data);
                  const got = await log.createSnapshot(i, conf(i), data);
                  expect(got.metadata).toEqual(want.metadata);
                  break;
                }
                case 'compact': {
                  const i = Math.min(last, first - 1 + Math.floor(op.at * (last - first + 2)));
                  model.compact(i);
                  await log.compact(i);
                  break;
                }
                case 'reopen':
                  await log.close();
                  log = await DiskLog.open(fastFs, dir, { segmentBytes });
                  expect(log.recovery.tornBytes).toBe(0);
                  break;
              }
              expect(viewOf(log)).toEqual(viewOf(model.mem));
            }
            await log.close();
            const again = await DiskLog.open(fastFs, dir, { segmentBytes });
            expect(viewOf(again)).toEqual(viewOf(model.mem));
            expect(again.hardState()).toEqual(model.hardState());
            await again.close();
          } finally {
            await log.close().catch(() => undefined);
            fs.rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      {
        numRuns: Number(process.env.WAL_RUNS ?? 150),
        examples: [
          [
            [
              { kind: 'install', ahead: 0, count: 1 },
              { kind: 'compact', at: 0.5 },
              { kind: 'createSnapshot', at: 0 },
            ],
            200,
          ],
        ],
      },
    );
  });
});

describe('DiskLog', () => {
  it('starts empty, then keeps entries, hard state and snapshot across a reopen', async () => {
    const dir = tmpDir('wal');
    const log = await DiskLog.open(nodeFileSystem, dir);
    expect(log.recovery).toMatchObject({ segments: 1, entries: 0, tornBytes: 0, torn: undefined });
    expect([log.firstIndex(), log.lastIndex(), log.term(0)]).toEqual([1, 0, 0]);
    await log.save({ term: 2, vote: 1, commit: 1 }, [entry(1, 1), entry(2, 2), entry(3, 2)], undefined, true);
    await log.save(undefined, [entry(3, 3)], undefined, true); // overwrites 3
    await log.createSnapshot(2, conf(0), new Uint8Array([7]));
    await log.close();
    const again = await DiskLog.open(nodeFileSystem, dir);
    expect(again.recovery).toMatchObject({ segments: 1, entries: 3, frames: 6, tornBytes: 0 });
    expect(again.hardState()).toEqual({ term: 2, vote: 1, commit: 1 });
    expect(again.entries(1, 4, 1000).map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(again.snapshot().metadata).toEqual({ index: 2, term: 2, confState: conf(0) });
    await again.close();
  });

  it('updates memory at each call, queues saves behind one in flight, and resolves them in order', async () => {
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const dir = tmpDir('wal');
    const log = await DiskLog.open(faulty, dir);
    const before = faulty.mutations;
    const order: number[] = [];
    const a = log
      .save({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)], undefined, true)
      .then(() => order.push(1));
    expect(log.lastIndex()).toBe(1);
    // Let the writer start on the first save (its write is in flight now).
    await Promise.resolve();
    await Promise.resolve();
    // Queued while the first is in flight (pipelined driver): memory changes at once.
    const b = log.save(undefined, [entry(2, 1)], undefined, true).then(() => order.push(2));
    const c = log
      .save({ term: 1, vote: 1, commit: 2 }, [entry(3, 1)], undefined, false)
      .then(() => order.push(3));
    expect(log.lastIndex()).toBe(3);
    // A snapshot or compaction runs alone: never beside queued saves.
    await expect(log.createSnapshot(1, conf(0), new Uint8Array())).rejects.toThrow(AssertionError);
    await Promise.all([a, b, c]);
    expect(order).toEqual([1, 2, 3]);
    // One write and one fdatasync for the first save, one of each for the two queued behind it,
    // and one write and fdatasync of zeros ahead of the data after the first (preallocation:
    // wal.ts).
    expect(faulty.mutations - before).toBe(6);
    // A save with nothing to write still resolves after the ones before it.
    const d = log.save(undefined, [entry(4, 1)], undefined, true).then(() => order.push(4));
    const e = log.save(undefined, [], undefined, false).then(() => order.push(5));
    await Promise.all([d, e]);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    await log.close();
    const again = await DiskLog.open(nodeFileSystem, dir);
    expect(again.lastIndex()).toBe(4);
    expect(again.hardState()).toEqual({ term: 1, vote: 1, commit: 2 });
    await again.close();
  });

  it('a power cut while queued saves wait keeps every resolved save and a prefix of the rest', async () => {
    const root = tmpDir('wal-queued-crash');
    // Crash points: after each write and each fdatasync of the two groups (first save alone,
    // then the three queued behind it).
    for (let k = 0; k <= 4; k++) {
      const dir = path.join(root, `k${k}`);
      const faulty = new FaultyFileSystem(nodeFileSystem);
      const log = await DiskLog.open(faulty, dir);
      faulty.dieAfter = faulty.mutations + k;
      const resolved: number[] = [];
      const saves = [1, 2, 3, 4].map((i) =>
        log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i, 1)], undefined, true).then(
          () => resolved.push(i),
          () => undefined,
        ),
      );
      await Promise.all(saves);
      await faulty.powerLoss();
      const back = await DiskLog.open(nodeFileSystem, dir);
      const kept = back.lastIndex();
      // Every resolved save survives; the WAL holds a prefix of the saves (no hole).
      expect(kept, `crash after ${k} steps`).toBeGreaterThanOrEqual(Math.max(0, ...resolved));
      expect(back.entries(1, kept + 1, 1e9).map((x) => x.index)).toEqual(
        Array.from({ length: kept }, (_, i) => i + 1),
      );
      await back.close();
    }
  });

  it('refuses oversized entries with a LimitError and changes nothing', async () => {
    const log = await DiskLog.open(nodeFileSystem, tmpDir('wal'));
    const big = { index: 1, term: 1, type: 'normal' as const, data: new Uint8Array(MAX_ENTRY_BYTES + 1) };
    await expect(log.save(undefined, [big], undefined, true)).rejects.toBeInstanceOf(LimitError);
    expect(log.lastIndex()).toBe(0);
    await log.save(undefined, [entry(1, 1)], undefined, true);
    await log.close();
  });

  it('rotates segments and deletes the sealed ones compaction empties, keeping snapshot and hard state', async () => {
    const dir = tmpDir('wal');
    const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: 256 });
    for (let i = 1; i <= 40; i++) {
      await log.save(
        { term: 1, vote: 1, commit: i - 1 },
        [entry(i, 1, [1, 2, 3, 4, 5, 6, 7, 8])],
        undefined,
        i % 2 === 0,
      );
    }
    const before = log.segmentCount();
    expect(before).toBeGreaterThan(5);
    await log.createSnapshot(30, conf(1), new Uint8Array([3, 0]));
    await log.compact(30);
    expect(log.segmentCount()).toBeLessThan(before);
    const view = viewOf(log);
    await log.close();
    const names = fs.readdirSync(dir).filter((n) => n.endsWith('.wal'));
    expect(names[0]?.startsWith('0000000000000001-')).toBe(false);
    const again = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: 256 });
    expect(viewOf(again)).toEqual(view);
    expect(again.firstIndex()).toBe(31);
    expect(again.hardState()).toEqual({ term: 1, vote: 1, commit: 39 });
    await again.close();
  });
});
