// Faults: power loss at every file-system step of saves, segment rotation, snapshots and
// compaction (and of the repair recovery makes); EIO, ENOSPC and torn writes from write and
// datasync. After each, a reopened log must be the state after some prefix of the operations
// that includes every durable one (saves with sync=true, createSnapshot, compact).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { IoError, StoreFailedError } from '../storage/errors.js';
import { DiskLog } from './disk-log.js';
import { type LogView, ModelLog, viewOf } from './test-support.js';

const SEGMENT_BYTES = 200;

const entry = (index: number, term: number, len = 10): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(len).fill((index * 7 + term) & 0xff),
});
const ents = (from: number, to: number, term: number): Entry[] => {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
};
const hs = (term: number, commit: number, vote = 1): HardState => ({ term, vote, commit });
const cs: ConfState = {
  voters: [1, 2, 3],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

interface Step {
  /** durable: once the call resolves, its effect must survive power loss. */
  readonly durable: boolean;
  run(log: DiskLog): Promise<unknown>;
  model(m: ModelLog): void;
}

const save = (h: HardState | undefined, e: Entry[], sync: boolean, snap?: Snapshot): Step => ({
  durable: sync,
  run: (log) => log.save(h, e, snap, sync),
  model: (m) => m.save(h, e, snap),
});
const createSnapshot = (i: number): Step => ({
  durable: true,
  run: (log) => log.createSnapshot(i, cs, new Uint8Array([i])),
  model: (m) => m.createSnapshot(i, cs, new Uint8Array([i])),
});
const compact = (i: number): Step => ({
  durable: true,
  run: (log) => log.compact(i),
  model: (m) => m.compact(i),
});

/** SCRIPT covers appends, unsynced commit moves, suffix overwrites across a rotation, a snapshot
 * from the leader, local snapshots and compactions that delete segments. */
const SCRIPT: Step[] = [
  save(hs(1, 0), ents(1, 3, 1), true),
  save(hs(1, 2), [], false),
  save(undefined, ents(4, 6, 1), true),
  save(hs(2, 3, 2), ents(5, 7, 2), true),
  save(hs(2, 5, 2), [], false),
  save(undefined, ents(8, 9, 2), false),
  save(undefined, ents(10, 11, 2), true),
  createSnapshot(6),
  compact(6),
  save(hs(3, 9, 3), ents(9, 12, 3), true),
  save(hs(4, 20, 0), ents(21, 22, 4), true, {
    metadata: { index: 20, term: 4, confState: cs },
    data: new Uint8Array([20]),
  }),
  save(undefined, ents(23, 26, 4), true),
  createSnapshot(24),
  compact(23),
  save(hs(4, 25, 0), ents(27, 28, 4), false),
];

/** STATES[i] is the model's view after the first i steps. */
const STATES: LogView[] = (() => {
  const m = new ModelLog();
  const out = [viewOf(m.mem)];
  for (const s of SCRIPT) {
    s.model(m);
    out.push(viewOf(m.mem));
  }
  return out;
})();

/** runScript runs SCRIPT until a step fails; returns the last durable prefix and the attempted one. */
async function runScript(
  faulty: FaultyFileSystem,
  dir: string,
): Promise<{ durable: number; attempted: number }> {
  let log: DiskLog;
  try {
    log = await DiskLog.open(faulty, dir, { segmentBytes: SEGMENT_BYTES });
  } catch {
    return { durable: 0, attempted: 0 };
  }
  let durable = 0;
  let attempted = 0;
  for (const [i, step] of SCRIPT.entries()) {
    attempted = i + 1;
    try {
      await step.run(log);
    } catch {
      break;
    }
    if (step.durable) durable = i + 1;
  }
  await log.close().catch(() => undefined);
  return { durable, attempted };
}

function matchingPrefix(view: LogView, from: number, to: number): number | undefined {
  for (let j = to; j >= from; j--) {
    if (JSON.stringify(STATES[j]) === JSON.stringify(view)) return j;
  }
  return undefined;
}

describe('power loss', () => {
  it('at every file-system step of the script, recovery keeps every durable operation', async () => {
    const clean = new FaultyFileSystem(nodeFileSystem);
    const cleanDir = path.join(tmpDir('wal-crash'), 'wal');
    const whole = await runScript(clean, cleanDir);
    expect(whole).toEqual({ durable: SCRIPT.length - 1, attempted: SCRIPT.length });
    // The script rotates segments and its compactions delete the first ones.
    const names = fs.readdirSync(cleanDir).filter((n) => n.endsWith('.wal'));
    expect(names.length).toBeGreaterThan(1);
    expect(names.some((n) => n.startsWith('0000000000000001-'))).toBe(false);
    const steps = clean.mutations;
    expect(steps).toBeGreaterThan(40);
    const root = tmpDir('wal-crash');
    const seen = new Set<number>();
    for (let k = 0; k <= steps; k++) {
      const dir = path.join(root, `k${k}`);
      const faulty = new FaultyFileSystem(nodeFileSystem);
      faulty.dieAfter = k;
      const { durable, attempted } = await runScript(faulty, dir);
      await faulty.powerLoss();
      const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
      const j = matchingPrefix(viewOf(log), durable, attempted);
      expect(j, `crash after ${k} steps (durable ${durable}, attempted ${attempted})`).toBeDefined();
      seen.add(j as number);
      // The recovered log takes new writes and keeps them.
      await log.save(undefined, [entry(log.lastIndex() + 1, 9)], undefined, true);
      const view = viewOf(log);
      await log.close();
      const again = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
      expect(viewOf(again)).toEqual(view);
      await again.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(seen.size).toBeGreaterThan(SCRIPT.length / 2);
  });

  it('at every step of a torn-tail repair, the torn bytes stay in the segment or in corrupt/', async () => {
    const root = tmpDir('wal-crash');
    const make = async (dir: string): Promise<{ torn: Buffer; last: string }> => {
      const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
      for (let i = 1; i <= 4; i++) await log.save(hs(1, i), [entry(i, 1)], undefined, true);
      await log.close();
      const last = fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.wal'))
        .sort()
        .at(-1) as string;
      const torn = Buffer.from('torn bytes that must never be thrown away');
      fs.appendFileSync(path.join(dir, last), torn);
      return { torn, last: path.join(dir, last) };
    };
    const probe = path.join(root, 'probe');
    await make(probe);
    const counting = new FaultyFileSystem(nodeFileSystem);
    await (await DiskLog.open(counting, probe, { segmentBytes: SEGMENT_BYTES })).close();
    for (let k = 0; k <= counting.mutations; k++) {
      const dir = path.join(root, `k${k}`);
      const { torn, last } = await make(dir);
      const faulty = new FaultyFileSystem(nodeFileSystem);
      faulty.dieAfter = k;
      await DiskLog.open(faulty, dir, { segmentBytes: SEGMENT_BYTES }).then(
        (l) => l.close(),
        () => undefined,
      );
      await faulty.powerLoss();
      const inSegment = fs.readFileSync(last).includes(torn);
      const corrupt = path.join(dir, 'corrupt');
      const copies = fs.existsSync(corrupt)
        ? fs.readdirSync(corrupt).map((n) => fs.readFileSync(path.join(corrupt, n)))
        : [];
      expect(inSegment || copies.some((c) => c.equals(torn)), `crash after ${k} steps`).toBe(true);
      const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
      expect(log.lastIndex()).toBe(4);
      expect(log.hardState()).toEqual(hs(1, 4));
      await log.close();
    }
  });
});

describe('I/O errors', () => {
  for (const code of ['EIO', 'ENOSPC'] as const) {
    for (const op of ['write', 'datasync'] as const) {
      it(`${code} from ${op}: the save rejects, the log refuses more, a reopen recovers`, async () => {
        const dir = tmpDir('wal-fault');
        const faulty = new FaultyFileSystem(nodeFileSystem);
        const log = await DiskLog.open(faulty, dir, { segmentBytes: 1 << 20 });
        await log.save(hs(1, 1), ents(1, 3, 1), undefined, true);
        const before = viewOf(log);
        faulty.inject({ op, code, path: /\.wal$/ });
        const err = await log.save(hs(1, 3), ents(4, 5, 1), undefined, true).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(IoError);
        expect(String((err as Error).message)).toContain(code);
        const after = viewOf(log); // memory moved at the call, as the contract says
        await expect(log.save(undefined, ents(6, 6, 1), undefined, true)).rejects.toBeInstanceOf(
          StoreFailedError,
        );
        await expect(log.createSnapshot(2, cs, new Uint8Array())).rejects.toBeInstanceOf(StoreFailedError);
        await expect(log.compact(2)).rejects.toBeInstanceOf(StoreFailedError);
        expect(log.lastIndex()).toBe(5); // refused calls change nothing
        await log.close();
        const again = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: 1 << 20 });
        const view = JSON.stringify(viewOf(again));
        expect([JSON.stringify(before), JSON.stringify(after)]).toContain(view);
        await again.save(undefined, ents(again.lastIndex() + 1, again.lastIndex() + 1, 2), undefined, true);
        await again.close();
      });
    }
  }

  it('a torn write: rejected, and the torn bytes are cut off (and kept) at the next open', async () => {
    const dir = tmpDir('wal-fault');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const log = await DiskLog.open(faulty, dir);
    await log.save(hs(1, 1), ents(1, 2, 1), undefined, true);
    const before = viewOf(log);
    faulty.inject({ op: 'write', code: 'EIO', path: /\.wal$/, tornBytes: 21 });
    await expect(log.save(hs(1, 2), ents(3, 4, 1), undefined, true)).rejects.toBeInstanceOf(IoError);
    await expect(log.save(undefined, ents(5, 5, 1), undefined, false)).rejects.toBeInstanceOf(
      StoreFailedError,
    );
    await log.close();
    const again = await DiskLog.open(nodeFileSystem, dir);
    // The 21 bytes landed on the zeros preallocated after the first save: the torn tail is both,
    // kept whole in corrupt/.
    const torn = again.recovery.torn;
    expect(torn?.reason).toBeDefined();
    const copy = fs.readFileSync(torn?.copy as string);
    expect(again.recovery.tornBytes).toBe(copy.length);
    expect(copy.length).toBeGreaterThan(21);
    expect(copy.subarray(0, 21).some((b) => b !== 0)).toBe(true);
    expect(copy.subarray(21).every((b) => b === 0)).toBe(true);
    expect(viewOf(again)).toEqual(before);
    await again.close();
  });

  it('a failure while starting the next segment fails the log; the sealed one is whole', async () => {
    const dir = tmpDir('wal-fault');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const log = await DiskLog.open(faulty, dir, { segmentBytes: SEGMENT_BYTES });
    await log.save(hs(1, 1), ents(1, 2, 1), undefined, true);
    faulty.inject({ op: 'syncDir', code: 'EIO' });
    await expect(log.save(hs(1, 2), ents(3, 8, 1), undefined, true)).rejects.toBeInstanceOf(IoError);
    const view = viewOf(log);
    await expect(log.save(undefined, ents(9, 9, 1), undefined, true)).rejects.toBeInstanceOf(
      StoreFailedError,
    );
    await log.close();
    await faulty.powerLoss();
    const again = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
    expect(viewOf(again)).toEqual(view); // the batch was synced before the rotation failed
    await again.close();
  });

  // Found by the replica simulator (seed 20189): a Ready that installs a snapshot need not be
  // mustSync, but the acknowledgement after it tells the leader everything up to the snapshot's
  // index is here. A power cut must not take the snapshot back.
  it('a snapshot installed from a leader survives a power cut even when the save did not ask for a sync', async () => {
    const dir = tmpDir('wal-fault');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const log = await DiskLog.open(faulty, dir, { segmentBytes: SEGMENT_BYTES });
    await log.save(hs(1, 1), ents(1, 3, 1), undefined, true);
    const snap: Snapshot = {
      metadata: {
        index: 15,
        term: 2,
        confState: {
          voters: [1, 2, 3],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: new Uint8Array([1]),
    };
    await log.save(undefined, [], snap, false);
    // The machine dies here (close would sync).
    faulty.dieAfter = faulty.mutations;
    await faulty.powerLoss();
    const again = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
    expect(again.snapshot().metadata.index).toBe(15);
    expect([again.firstIndex(), again.lastIndex()]).toEqual([16, 15]);
    await again.close();
  });
});
