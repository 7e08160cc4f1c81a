// The "fsyncgate" fault model itself (lost-writeback.ts), and the two file systems that use it:
// after a failed datasync the bytes stay readable, a later datasync does not save them, only
// writing them again does, and a power loss takes what was not saved.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem, InjectedFault } from './faulty-file-system.js';
import { LostWriteback, type RestoreRecord } from './lost-writeback.js';
import { nodeFileSystem } from './node-file-system.js';

/** restored: what LostWriteback.powerLoss would put back, in the order it puts it. */
function restored(lost: LostWriteback): { position: number; text: string }[] {
  const out: { position: number; text: string }[] = [];
  lost.powerLoss((r: RestoreRecord) => out.push({ position: r.position, text: r.bytes.toString() }));
  return out;
}

describe('LostWriteback', () => {
  it('keeps the durable bytes under a failed writeback until they are rewritten and synced', () => {
    const lost = new LostWriteback();
    // Synced "abcdef" (6 bytes); then "XY" over bytes 1-2 and "gh" appended: the sync fails.
    lost.failed([{ position: 1, bytes: Buffer.from('bc') }], 6, 8);
    expect(lost.empty).toBe(false);
    lost.synced(); // a later successful sync saves nothing
    const copy = new LostWriteback();
    copy.failed([{ position: 1, bytes: Buffer.from('bc') }], 6, 8);
    expect(restored(copy)).toEqual([
      { position: 6, text: '\0\0' },
      { position: 1, text: 'bc' },
    ]);
    // Rewriting byte 2 and the tail, then a sync: only byte 1 stays lost.
    lost.written(2, 1);
    lost.written(6, 2);
    lost.synced();
    expect(restored(lost)).toEqual([{ position: 1, text: 'b' }]);
    expect(lost.empty).toBe(true);
  });

  it('a rewrite whose own sync fails saves nothing; the oldest bytes win', () => {
    const lost = new LostWriteback();
    lost.failed([{ position: 0, bytes: Buffer.from('old') }], 3, 3);
    lost.written(0, 3);
    // The rewrite's undo record holds the lost bytes the page cache showed ("new").
    lost.failed([{ position: 0, bytes: Buffer.from('new') }], 3, 3);
    lost.synced();
    const out: string[] = [];
    const bytes = Buffer.from('now');
    lost.powerLoss((r) => {
      r.bytes.copy(bytes, r.position);
      out.push(bytes.toString());
    });
    expect(out.at(-1)).toBe('old');
  });

  it('a sync covers only the rewrites made before it was called; a truncation drops lost bytes', () => {
    const lost = new LostWriteback();
    lost.failed([], 0, 10);
    lost.written(0, 4);
    const covered = lost.rewrites;
    lost.written(4, 6); // after the sync was called
    lost.synced(covered);
    lost.truncated(8);
    expect(restored(lost)).toEqual([{ position: 4, text: '\0\0\0\0' }]);
  });
});

describe('FaultyFileSystem: a failed datasync loses its writeback', () => {
  async function setup() {
    const dir = tmpDir('lost-writeback');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const file = path.join(dir, 'f');
    const f = await faulty.open(file, 'create');
    await f.write(Buffer.from('durable|'), 0);
    await f.datasync();
    await faulty.syncDir(dir);
    await f.write(Buffer.from('unsaved'), 8);
    faulty.inject({ op: 'datasync', code: 'EIO' });
    await expect(f.datasync()).rejects.toBeInstanceOf(InjectedFault);
    return { faulty, file, f };
  }

  const text = async (faulty: FaultyFileSystem, file: string) =>
    Buffer.from(await faulty.readFile(file)).toString();

  it('the bytes stay readable, also to a new open, and a later datasync does not save them', async () => {
    const { faulty, file, f } = await setup();
    await f.close();
    const again = await faulty.open(file, 'readwrite');
    expect(await text(faulty, file)).toBe('durable|unsaved');
    await again.datasync(); // succeeds, and writes nothing but the length
    await again.close();
    await faulty.powerLoss();
    expect(await text(faulty, file)).toBe(`durable|${'\0'.repeat(7)}`);
  });

  it('without a later datasync the power loss cuts the file at its synced length', async () => {
    const { faulty, file } = await setup();
    await faulty.powerLoss();
    expect(await text(faulty, file)).toBe('durable|');
  });

  it('a later write extends the durable length over zeros where the lost bytes were', async () => {
    const { faulty, file, f } = await setup();
    await f.write(Buffer.from('!'), 15);
    await f.datasync();
    await faulty.powerLoss();
    expect(await text(faulty, file)).toBe(`durable|${'\0'.repeat(7)}!`);
  });

  it('writing the bytes again and syncing makes them durable', async () => {
    const { faulty, file, f } = await setup();
    const tail = Buffer.alloc(7);
    f.readSync(tail, 0, 7, 8);
    await f.write(tail, 8);
    await f.datasync();
    await faulty.powerLoss();
    expect(await text(faulty, file)).toBe('durable|unsaved');
  });
});
