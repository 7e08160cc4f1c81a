// Preallocation (wal.ts, PREALLOCATE_BYTES): the active segment is extended with synced zeros past
// its data, so synced saves overwrite allocated space instead of growing the file. Zeros after
// the last batch are free space to recovery; sealed and cleanly closed segments end at their
// data; a disk too full for the zeros fails no save.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { segmentFiles } from '../../test/support/data-files.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Entry } from '../raft/types.js';
import { IoError } from '../storage/errors.js';
import { DiskLog } from './disk-log.js';
import { WalCorruptError } from './errors.js';
import { viewOf } from './test-support.js';

const entry = (index: number): Entry => ({
  index,
  term: 1,
  type: 'normal',
  data: new Uint8Array(100).fill(index & 0xff),
});

/** SMALL_SEGMENT_BYTES: segments small enough that a few dozen saves seal several. */
const SMALL_SEGMENT_BYTES = 4096;

/** sealedLog writes entries 1..n, one synced save each, into small segments (several sealed). */
async function sealedLog(label: string, n: number): Promise<{ dir: string; log: DiskLog }> {
  const dir = tmpDir(label);
  const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SMALL_SEGMENT_BYTES });
  for (let i = 1; i <= n; i++)
    await log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
  return { dir, log };
}

/** reopenKilled opens a copy of `dir` as it is now: what a SIGKILL (no close) leaves. */
async function reopenKilled(
  dir: string,
  options?: { segmentBytes: number },
): Promise<{ copy: string; again: DiskLog }> {
  const copy = tmpDir(`${path.basename(dir)}-kill`);
  fs.cpSync(dir, copy, { recursive: true });
  return { copy, again: await DiskLog.open(nodeFileSystem, copy, options) };
}

/**
 * dataEnd: where a segment's data ends: after its last nonzero byte, rounded up to the frames'
 * 8-byte alignment (a commit frame ends in 4 zero bytes).
 */
function dataEnd(file: string): number {
  const bytes = fs.readFileSync(file);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return Math.ceil(end / 8) * 8;
}

describe('WAL preallocation', () => {
  it('a synced save leaves zeros after the data; a restart from there (no close) finds no torn tail', async () => {
    const dir = tmpDir('wal-prealloc');
    const log = await DiskLog.open(nodeFileSystem, dir);
    for (let i = 1; i <= 20; i++)
      await log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
    const [active] = segmentFiles(dir);
    const size = fs.statSync(active as string).size;
    expect(size).toBeGreaterThanOrEqual(1024 * 1024); // the zeros ahead of the data
    expect(dataEnd(active as string)).toBeLessThan(size);
    const { copy, again } = await reopenKilled(dir);
    expect(again.recovery.torn).toBeUndefined();
    expect(again.recovery.tornBytes).toBe(0);
    expect(viewOf(again)).toEqual(viewOf(log));
    // Appends go on over the zeros: the file does not grow.
    await again.save({ term: 1, vote: 1, commit: 20 }, [entry(21)], undefined, true);
    const after = viewOf(again);
    expect(fs.statSync(segmentFiles(copy)[0] as string).size).toBe(size);
    await again.close();
    await log.close();
    // A clean close trims the zeros: the segment ends at its data.
    const closed = segmentFiles(copy)[0] as string;
    expect(fs.statSync(closed).size).toBe(dataEnd(closed));
    const third = await DiskLog.open(nodeFileSystem, copy);
    expect(third.recovery.torn).toBeUndefined();
    expect(viewOf(third)).toEqual(after);
    await third.close();
  });

  it('a sealed segment ends at its data (recovery refuses anything after a sealed segment’s last batch)', async () => {
    const { dir, log } = await sealedLog('wal-prealloc-seal', 120);
    const all = segmentFiles(dir);
    expect(all.length).toBeGreaterThan(2);
    for (const sealed of all.slice(0, -1)) expect(fs.statSync(sealed).size).toBe(dataEnd(sealed));
    // Zeros up to segmentBytes at most, never past it.
    expect(fs.statSync(all.at(-1) as string).size).toBeLessThanOrEqual(SMALL_SEGMENT_BYTES + 1024);
    const { again } = await reopenKilled(dir, { segmentBytes: SMALL_SEGMENT_BYTES });
    expect(again.recovery.torn).toBeUndefined();
    expect(viewOf(again)).toEqual(viewOf(log));
    await again.close();
    await log.close();
  });

  it('a disk too full for the zeros fails no save; the segment grows write by write', async () => {
    const dir = tmpDir('wal-prealloc-full');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const log = await DiskLog.open(faulty, dir);
    // The first save's own write goes through; the zeros after it do not fit.
    faulty.inject({ op: 'write', code: 'ENOSPC', path: /\.wal$/, skip: 1 });
    await log.save({ term: 1, vote: 1, commit: 0 }, [entry(1)], undefined, true);
    expect(faulty.fired).toBe(1);
    for (let i = 2; i <= 10; i++)
      await log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
    expect(faulty.fired).toBe(1); // not tried again in this segment
    const active = segmentFiles(dir)[0] as string;
    expect(fs.statSync(active).size).toBe(dataEnd(active));
    const { again } = await reopenKilled(dir);
    expect(again.recovery.torn).toBeUndefined();
    expect(viewOf(again)).toEqual(viewOf(log));
    await again.close();
    await log.close();
  });

  it('no zeros are written after unsynced bytes: a failed fdatasync must fail the log, not a best-effort step', async () => {
    // Unsynced batches over the held cap go to the file at once (dirty). If the zeros' fdatasync
    // ran then and its failure were swallowed, Linux could drop those pages and the error, and
    // the next synced save would succeed over a hole (fsyncgate).
    const dir = tmpDir('wal-prealloc-dirty');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const log = await DiskLog.open(faulty, dir);
    await log.save({ term: 1, vote: 1, commit: 0 }, [entry(1)], undefined, true);
    const big = (index: number): Entry => ({
      index,
      term: 1,
      type: 'normal',
      data: new Uint8Array(800 * 1024).fill(index & 0xff),
    });
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.wal$/ });
    // Unsynced, past the zeros ahead of the data: nothing may datasync them but a synced save.
    for (let i = 2; i <= 4; i++) await log.save(undefined, [big(i)], undefined, false);
    expect(faulty.fired).toBe(0);
    await expect(log.save(undefined, [entry(5)], undefined, true)).rejects.toBeInstanceOf(IoError);
    expect(faulty.fired).toBe(1);
    await log.close().catch(() => undefined);
  });

  it('a segment reopened with a smaller segment size is sealed without its zeros', async () => {
    const dir = tmpDir('wal-prealloc-shrink');
    const log = await DiskLog.open(nodeFileSystem, dir);
    for (let i = 1; i <= 50; i++)
      await log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
    // A SIGKILL: the zeros stay; the restart asks for segments smaller than the file is now.
    const { copy, again: small } = await reopenKilled(dir, { segmentBytes: SMALL_SEGMENT_BYTES });
    await log.close();
    for (let i = 51; i <= 60; i++)
      await small.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
    const view = viewOf(small);
    await small.close();
    const all = segmentFiles(copy);
    expect(all.length).toBeGreaterThan(1);
    for (const sealed of all.slice(0, -1)) expect(fs.statSync(sealed).size).toBe(dataEnd(sealed));
    const again = await DiskLog.open(nodeFileSystem, copy, { segmentBytes: SMALL_SEGMENT_BYTES });
    expect(again.recovery.torn).toBeUndefined();
    expect(viewOf(again)).toEqual(view);
    await again.close();
  });

  it('zeros after the data of a sealed segment are corruption, not free space', async () => {
    const { dir, log } = await sealedLog('wal-prealloc-sealed-zeros', 80);
    await log.close();
    const all = segmentFiles(dir);
    expect(all.length).toBeGreaterThan(1);
    fs.appendFileSync(all[0] as string, new Uint8Array(64));
    const err = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SMALL_SEGMENT_BYTES }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WalCorruptError);
    expect((err as WalCorruptError).file).toBe(all[0]);
  });
});
