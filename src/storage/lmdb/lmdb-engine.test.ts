import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../io/clock.js';
import { describeEngineConformance } from '../engine-conformance.js';
import { InvalidArgumentError } from '../errors.js';
import { LMDB_KEY_BYTES_MAX, LMDB_SUBDIR, openLmdb } from './lmdb-engine.js';

describeEngineConformance('lmdb', openLmdb, { keyBytesMax: LMDB_KEY_BYTES_MAX });

describe('openLmdb', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps lmdb files in their own subdirectory beside the metadata', async () => {
    const dir = tempDir();
    const db = await openLmdb(dir);
    await db.put(Uint8Array.of(1), Uint8Array.of(2));
    await db.close();
    const names = fs.readdirSync(dir).sort();
    expect(names).toContain(LMDB_SUBDIR);
    expect(names).toContain('META-1');
    expect(names).toContain('META-2');
    expect(fs.readdirSync(path.join(dir, LMDB_SUBDIR))).toContain('data.mdb');
  });

  it('scans with bounds longer than any storable key', async () => {
    const db = await openLmdb(tempDir());
    try {
      const short = (fill: number, n: number): Uint8Array => new Uint8Array(n).fill(fill);
      const keys = [
        short(0x61, 1),
        short(0x61, LMDB_KEY_BYTES_MAX),
        short(0x62, 1),
        short(0x62, LMDB_KEY_BYTES_MAX),
      ];
      for (const key of keys) await db.put(key, key.subarray(0, 1));
      const long = (fill: number): Uint8Array => new Uint8Array(LMDB_KEY_BYTES_MAX + 10).fill(fill);
      const scanLengths = async (
        start?: Uint8Array,
        end?: Uint8Array,
        reverse = false,
      ): Promise<string[]> => {
        const out: string[] = [];
        for await (const [k] of db.scan({ start, end, reverse }))
          out.push(`${String.fromCharCode(k[0] ?? 0)}${k.length}`);
        return out;
      };
      const max = LMDB_KEY_BYTES_MAX;
      // 'a' * (max + 10) sorts after 'a' * max and before 'b'.
      expect(await scanLengths(long(0x61))).toEqual(['b1', `b${max}`]);
      expect(await scanLengths(undefined, long(0x61))).toEqual(['a1', `a${max}`]);
      expect(await scanLengths(long(0x61), undefined, true)).toEqual([`b${max}`, 'b1']);
      expect(await scanLengths(undefined, long(0x61), true)).toEqual([`a${max}`, 'a1']);
      expect(await scanLengths(long(0x61), long(0x62))).toEqual(['b1', `b${max}`]);
      expect(await scanLengths(long(0x61), long(0x62), true)).toEqual([`b${max}`, 'b1']);
    } finally {
      await db.close();
    }
  });

  it('rejects a bad scan limit', async () => {
    const db = await openLmdb(tempDir());
    try {
      await expect(db.scan({ limit: -1 }).next()).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(db.scan({ limit: 1.5 }).next()).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await db.close();
    }
  });

  it("fsyncs on the clock's timer in 'interval' mode", async () => {
    const ticks: (() => void)[] = [];
    const clock: Clock = {
      ...systemClock,
      every(_ms, fn) {
        ticks.push(fn);
        return { cancel: () => ticks.splice(ticks.indexOf(fn), 1) };
      },
    };
    const db = await openLmdb(tempDir(), { durability: 'interval', syncIntervalMs: 1000, clock });
    expect(ticks).toHaveLength(1);
    await db.put(Uint8Array.of(1), Uint8Array.of(2));
    expect(db.stats().fsyncs).toBe(0);
    ticks[0]?.();
    await db.flush(); // waits behind the sync the tick started
    expect(db.stats().fsyncs).toBeGreaterThanOrEqual(2);
    await db.close();
    expect(ticks).toHaveLength(0);
  });
});
