// Compaction encodes a step's records into one buffer, grown when a record does not fit what is
// left of it (compactor.ts, STEP_BUFFER_BYTES), and writes it as it is. Values large enough that
// a step's buffer grows with records already in it must all be copied intact: read back after the
// compaction (the value cache off, so from the new file) and after a reopen.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { openCask } from './cask-engine.js';

/**
 * BIG: a value size such that a step (which takes records until it holds 1 MiB) holds three
 * records when its fourth does not fit the buffer's 1 MiB + 64 KiB.
 */
const BIG = 300_000;

describe('compaction step buffer', () => {
  it('copies values that grow the step buffer, with small ones between them, intact', async () => {
    const dir = tmpDir('compaction-buffer');
    let db = await openCask(dir, { cacheBytes: 0, autoCompact: false });
    const expected = new Map<string, Buffer>();
    let ts = db.lastTs();
    const put = async (k: string, v: Buffer, version = 1): Promise<void> => {
      ts++;
      expected.set(k, v);
      await db.write(ts, [{ type: 'put', key: Buffer.from(k), value: v, create: ts, version }]);
    };
    for (let i = 0; i < 10; i++) {
      await put(`big${i}`, Buffer.alloc(BIG + i, 97 + i));
      await put(`small${i}`, Buffer.from(`small value ${i}`));
    }
    // Garbage for the compaction to drop: every small key written again.
    for (let i = 0; i < 10; i++) await put(`small${i}`, Buffer.from(`small value ${i}, again`), 2);
    await db.compact();
    for (const [k, v] of expected) expect(db.getSync(Buffer.from(k))).toEqual(v);
    await db.close();
    db = await openCask(dir, { cacheBytes: 0, autoCompact: false });
    for (const [k, v] of expected) expect(db.getSync(Buffer.from(k))).toEqual(v);
    expect(db.stats().keys).toBe(expected.size);
    await db.close();
  });
});
