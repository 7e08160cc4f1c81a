// The two seams that let the cask engine run on another runtime than the machine's (the replica
// simulator's scheduler and disks): CaskOptions.loop, where its background work reads the time
// and waits for a turn, and FileSystem.lockDir, a file system's own directory lock in place of
// the kernel's.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import type { FileSystem, HeldLock } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { type EventLoop, nodeEventLoop } from '../../stdx/event-loop.js';
import { LockedError } from '../errors.js';
import { openCask } from './cask-engine.js';

const utf8 = (s: string): Buffer => Buffer.from(s);

/** countingLoop: the machine's loop, counting the turns the engine waits for and the readings it takes. */
function countingLoop(): EventLoop & { turns: number; readings: number } {
  const loop = {
    turns: 0,
    readings: 0,
    now: () => {
      loop.readings++;
      return nodeEventLoop.now();
    },
    nextTurn: () => {
      loop.turns++;
      return nodeEventLoop.nextTurn();
    },
  };
  return loop;
}

/** lockingFs: the machine's file system with a lock of its own: one holder per directory. */
function lockingFs(): FileSystem & { held: Set<string>; taken: number } {
  const held = new Set<string>();
  const fs = Object.assign(Object.create(nodeFileSystem) as FileSystem, {
    held,
    taken: 0,
    lockDir: (dir: string): Promise<HeldLock> => {
      if (held.has(dir)) return Promise.reject(new LockedError(dir, undefined));
      held.add(dir);
      fs.taken++;
      return Promise.resolve({
        release: () => {
          held.delete(dir);
          return Promise.resolve();
        },
      });
    },
  });
  return fs;
}

describe('CaskOptions.loop', () => {
  it("the group commit waits for the loop's turns, and compaction and hints measure steps by its time", async () => {
    const loop = countingLoop();
    const db = await openCask(tmpDir('cask-loop'), {
      loop,
      dataFileBytes: 64 * 1024,
      autoCompact: false, // the compaction below is the one measured
      compactionStepMs: 0,
    });
    // Rewrites of the same keys: dead bytes for compaction, and sealed files for hints.
    for (let round = 0; round < 8; round++) {
      const ops = Array.from({ length: 100 }, (_, i) => ({
        type: 'put' as const,
        key: utf8(`k${i}`),
        value: Buffer.alloc(100, round),
        create: 1, // the first round's timestamp (each key's revision, storage/engine.ts)
        version: round + 1,
      }));
      await db.write(db.lastTs() + 1, ops);
    }
    expect(loop.turns).toBeGreaterThan(0);
    const readings = loop.readings;
    await db.compact();
    expect(loop.readings).toBeGreaterThan(readings);
    expect((await db.get(utf8('k7')))?.[0]).toBe(7);
    await db.close();
  });
});

describe('FileSystem.lockDir', () => {
  it('takes the place of the kernel lock: a second open is refused, and close gives the lock back', async () => {
    const fs = lockingFs();
    const dir = tmpDir('cask-lock');
    const db = await openCask(dir, { fs });
    expect(fs.held.has(dir)).toBe(true);
    await expect(openCask(dir, { fs })).rejects.toBeInstanceOf(LockedError);
    await db.close();
    expect(fs.held.has(dir)).toBe(false);
    const again = await openCask(dir, { fs, readOnly: true });
    await again.close();
    expect(fs.taken).toBe(2);
  });
});
