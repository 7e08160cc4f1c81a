// Unsynced saves (only the commit index moved) are held in memory and written in front of the
// next synced save, in the same write (wal.ts, `append`): until then the file does not change;
// after it, a reopen finds both in order; a clean close writes what is held.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Entry } from '../raft/types.js';
import { DiskLog } from './disk-log.js';

const entry = (index: number): Entry => ({
  index,
  term: 1,
  type: 'normal',
  data: new Uint8Array(16).fill(index & 0xff),
});

/**
 * walBytes: the total size of the directory's segments up to their last nonzero byte (the zeros
 * after the data are preallocated space, not writes).
 */
function walBytes(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .reduce((sum, n) => {
      const bytes = fs.readFileSync(path.join(dir, n));
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--;
      return sum + end;
    }, 0);
}

/** onDisk opens a second DiskLog on dir (what a restart after SIGKILL would find) and closes it. */
async function onDisk(dir: string): Promise<{ commit: number; last: number }> {
  const log = await DiskLog.open(nodeFileSystem, dir);
  const out = { commit: log.hardState().commit, last: log.lastIndex() };
  await log.close();
  return out;
}

describe('WAL: unsynced saves are held for the next synced write', () => {
  it('writes nothing for a commit-only save, then both with the next synced save', async () => {
    const dir = tmpDir('wal-held');
    const log = await DiskLog.open(nodeFileSystem, dir);
    await log.save({ term: 1, vote: 1, commit: 0 }, [entry(1), entry(2)], undefined, true);
    const before = walBytes(dir);
    await log.save({ term: 1, vote: 1, commit: 2 }, [], undefined, false);
    expect(log.hardState().commit).toBe(2); // memory moves at the call
    expect(walBytes(dir)).toBe(before);
    // A crash now finds the older commit index: allowed, a restart learns it again.
    const copy = tmpDir('wal-held-copy');
    fs.cpSync(dir, copy, { recursive: true });
    expect(await onDisk(copy)).toEqual({ commit: 0, last: 2 });

    await log.save({ term: 1, vote: 1, commit: 2 }, [entry(3)], undefined, true);
    expect(walBytes(dir)).toBeGreaterThan(before);
    const copy2 = tmpDir('wal-held-copy');
    fs.cpSync(dir, copy2, { recursive: true });
    expect(await onDisk(copy2)).toEqual({ commit: 2, last: 3 });
    await log.close();
    expect(await onDisk(dir)).toEqual({ commit: 2, last: 3 });
  });

  it('a clean close writes and syncs what is held', async () => {
    const dir = tmpDir('wal-held');
    const log = await DiskLog.open(nodeFileSystem, dir);
    await log.save({ term: 1, vote: 1, commit: 0 }, [entry(1)], undefined, true);
    await log.save({ term: 1, vote: 1, commit: 1 }, [], undefined, false);
    await log.close();
    expect(await onDisk(dir)).toEqual({ commit: 1, last: 1 });
  });

  it('writes held bytes unsynced once they pass the cap, and stays readable', async () => {
    const dir = tmpDir('wal-held');
    const log = await DiskLog.open(nodeFileSystem, dir);
    await log.save({ term: 1, vote: 1, commit: 0 }, [entry(1)], undefined, true);
    const before = walBytes(dir);
    // A hard-state batch is a few dozen bytes: 5,000 of them pass the 64 KiB cap.
    for (let c = 1; c <= 5_000; c++) await log.save({ term: 1, vote: 1, commit: 1 }, [], undefined, false);
    expect(walBytes(dir)).toBeGreaterThan(before);
    await log.save({ term: 1, vote: 1, commit: 1 }, [entry(2)], undefined, true);
    await log.save({ term: 1, vote: 1, commit: 2 }, [], undefined, false);
    await log.save({ term: 1, vote: 1, commit: 2 }, [entry(3)], undefined, true);
    await log.close();
    expect(await onDisk(dir)).toEqual({ commit: 2, last: 3 });
  });
});

describe('WAL: an open makes what it replays durable', () => {
  // A process that dies between a save's write and its datasync leaves the entries in the page
  // cache. The next process replays them and acknowledges them as its own, so the open must
  // sync them: a later power cut may not take them (while a later O_DSYNC write, which covers
  // only its own bytes, keeps the commit index that followed them). Found by the replica
  // simulator (seeds 467748212 and 136613614: "commit beyond last index" after the restart).
  it('keeps entries a crashed process wrote but never synced once a restart has replayed them', async () => {
    const dir = tmpDir('wal-open-sync');
    const disk = new FaultyFileSystem(nodeFileSystem);
    const first = await DiskLog.open(disk, dir);
    await first.save({ term: 1, vote: 1, commit: 0 }, [entry(1), entry(2)], undefined, true);
    // The write of entries 3-4 lands; the process dies before its datasync.
    disk.inject({ op: 'datasync', code: 'EIO' });
    await expect(first.save(undefined, [entry(3), entry(4)], undefined, true)).rejects.toThrow(/EIO/);
    // The restart (same disk, same page cache) replays all four.
    const second = await DiskLog.open(disk, dir);
    expect(second.lastIndex()).toBe(4);
    // The power goes before this process writes anything more.
    await disk.powerLoss();
    expect(await onDisk(dir)).toEqual({ commit: 0, last: 4 });
  });
});
