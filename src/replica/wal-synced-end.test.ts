// The WAL's synced-end mark (wal-synced-end.ts) and the open after a crash: what the open
// replays past the mark is written again and synced, so entries a failed fdatasync left in the
// page cache (readable, never to be written: "fsyncgate") survive a later power cut; after a
// clean close the open rewrites nothing; a mark that no longer holds is removed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Entry } from '../raft/types.js';
import { DiskLog } from './disk-log.js';
import { SYNCED_END_FILE } from './wal-synced-end.js';

const entry = (index: number): Entry => ({
  index,
  term: 1,
  type: 'normal',
  data: new Uint8Array(16).fill(index & 0xff),
});
const entries = (from: number, to: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));

const markOf = (dir: string): { segment: string; bytes: number } | undefined => {
  const file = path.join(dir, SYNCED_END_FILE);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
};
const segmentOf = (dir: string): string => fs.readdirSync(dir).filter((n) => n.endsWith('.wal'))[0] as string;

async function lastIndexOnDisk(dir: string): Promise<number> {
  const log = await DiskLog.open(nodeFileSystem, dir);
  const last = log.lastIndex();
  await log.close();
  return last;
}

describe('WAL: the synced-end mark and the open after a failed fdatasync', () => {
  it('a clean close marks the segment durable to its end, and the next open rewrites nothing', async () => {
    const dir = tmpDir('wal-mark');
    const disk = new FaultyFileSystem(nodeFileSystem);
    const first = await DiskLog.open(disk, dir);
    await first.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3), undefined, true);
    await first.close();
    const mark = markOf(dir);
    expect(mark?.segment).toBe(segmentOf(dir));
    expect(mark?.bytes).toBe(fs.statSync(path.join(dir, segmentOf(dir))).size);
    // Any write to the segment during the open would fail it.
    disk.inject({ op: 'write', code: 'EIO', path: /\.wal$/ });
    const second = await DiskLog.open(disk, dir);
    expect(disk.fired).toBe(0);
    expect(second.lastIndex()).toBe(3);
    disk.clearFaults();
    await second.close();
  });

  it('entries past the mark that a failed fdatasync left readable survive a power cut once replayed', async () => {
    const dir = tmpDir('wal-mark-crash');
    const disk = new FaultyFileSystem(nodeFileSystem);
    const first = await DiskLog.open(disk, dir);
    await first.save({ term: 1, vote: 1, commit: 0 }, entries(1, 2), undefined, true);
    await first.close();
    const second = await DiskLog.open(disk, dir);
    disk.inject({ op: 'datasync', code: 'EIO', path: /\.wal$/ });
    await expect(second.save(undefined, entries(3, 4), undefined, true)).rejects.toThrow(/EIO/);
    await second.close();
    // The restart (same page cache) replays all four and from now on acknowledges them.
    const third = await DiskLog.open(disk, dir);
    expect(third.lastIndex()).toBe(4);
    await disk.powerLoss();
    expect(await lastIndexOnDisk(dir)).toBe(4);
  });

  it('a mark past what the segment holds, or naming another segment, is removed at open', async () => {
    for (const stale of ['past-the-end', 'other-segment'] as const) {
      const dir = tmpDir('wal-mark-stale');
      const first = await DiskLog.open(nodeFileSystem, dir);
      await first.save({ term: 1, vote: 1, commit: 0 }, entries(1, 2), undefined, true);
      await first.close();
      const mark = markOf(dir);
      expect(mark).toBeDefined();
      const written =
        stale === 'past-the-end'
          ? { ...mark, bytes: (mark?.bytes ?? 0) + 4096 }
          : { ...mark, segment: '0000000000000007-00000000000000000099.wal' };
      fs.writeFileSync(path.join(dir, SYNCED_END_FILE), JSON.stringify(written));
      const disk = new FaultyFileSystem(nodeFileSystem);
      const second = await DiskLog.open(disk, dir);
      expect(markOf(dir)).toBeUndefined();
      expect(second.lastIndex()).toBe(2);
      await second.close();
      expect(markOf(dir)).toEqual(mark);
    }
  });
});

describe('WAL: a segment whose creation failed', () => {
  it('is made durable, header and directory entry, before a restart appends to it', async () => {
    const dir = tmpDir('wal-failed-segment');
    const disk = new FaultyFileSystem(nodeFileSystem);
    const first = await DiskLog.open(disk, dir, { segmentBytes: 300 });
    await first.save({ term: 1, vote: 1, commit: 0 }, entries(1, 2), undefined, true);
    // The save that fills segment 1 rotates; the new segment's header datasync fails (so its
    // header is readable, not durable, and its directory entry was never fsynced).
    disk.inject({ op: 'datasync', code: 'EIO', path: /0000000000000002-[0-9]+\.wal$/ });
    await expect(first.save(undefined, entries(3, 12), undefined, true)).rejects.toThrow(/EIO/);
    await first.close();
    expect(disk.fired).toBe(1);
    const second = await DiskLog.open(disk, dir, { segmentBytes: 1 << 20 });
    expect(second.lastIndex()).toBe(12);
    await second.save(undefined, entries(13, 14), undefined, true); // acknowledged
    await disk.powerLoss();
    expect(await lastIndexOnDisk(dir)).toBe(14);
  });
});
