// Compaction copies a value the value cache holds at the record's seq from the cache instead of
// reading its record (cask-engine.ts, the compaction host's readValue). Shown by damaging the
// values on disk: with the cache, the copies are right and the damaged file is retired; without
// it, the same damage is found (the read verifies every record it copies) and carried.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { openCask } from './cask-engine.js';

const KEYS = 200;
const value = (i: number): Buffer => Buffer.from(`value-${i}-`.padEnd(100, 'v'));

/** fill writes KEYS keys, overwrites half of them (dead bytes to compact), and seals the file. */
async function fill(dir: string, cacheBytes: number): Promise<Awaited<ReturnType<typeof openCask>>> {
  const db = await openCask(dir, { cacheBytes, autoCompact: false });
  let ts = db.lastTs();
  for (let i = 0; i < KEYS; i++) {
    ts++;
    await db.write(ts, [{ type: 'put', key: Buffer.from(`k${i}`), value: value(i), create: ts, version: 1 }]);
  }
  for (let i = 0; i < KEYS; i += 2) {
    ts++;
    await db.write(ts, [{ type: 'put', key: Buffer.from(`k${i}`), value: value(i), create: ts, version: 2 }]);
  }
  await db.rotate();
  return db;
}

/** damageValues flips a byte inside every value of the sealed data files ('value-' -> 'valuf-'). */
function damageValues(dir: string): number {
  let flipped = 0;
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.data'))) {
    const file = path.join(dir, name);
    const bytes = fs.readFileSync(file);
    for (let at = bytes.indexOf('value-'); at >= 0; at = bytes.indexOf('value-', at + 1)) {
      bytes[at + 4] = 0x66; // 'e' -> 'f'
      flipped++;
    }
    fs.writeFileSync(file, bytes);
  }
  return flipped;
}

describe('compaction and the value cache', () => {
  it('copies cached values without reading their records', async () => {
    const dir = tmpDir('compact-cache');
    const db = await fill(dir, 1024 * 1024);
    expect(damageValues(dir)).toBeGreaterThan(KEYS);
    await db.compact();
    await db.close();
    // Reopened without the cache: every value is read from the compacted files and verified.
    const again = await openCask(dir, { cacheBytes: 0 });
    for (let i = 0; i < KEYS; i++) expect(again.getSync(Buffer.from(`k${i}`))).toEqual(value(i));
    expect(again.recovery.problems).toEqual([]);
    await again.close();
  });

  it('without the cache the same damage is found, carried as it is and reported', async () => {
    const dir = tmpDir('compact-cache');
    const damaged: unknown[] = [];
    const filled = await fill(dir, 0);
    await filled.close();
    damageValues(dir);
    const again = await openCask(dir, {
      cacheBytes: 0,
      autoCompact: false,
      onEvent: (e) => {
        if (e.type === 'record-damaged') damaged.push(e.detail);
      },
    });
    // The read verifies every record it copies: each damaged one is carried, not dropped
    // (compaction-damage.test.ts), and its key still fails its reads.
    await again.compact();
    expect(damaged).toHaveLength(KEYS);
    expect(() => again.getSync(Buffer.from('k1'))).toThrow(/failed verification/);
    await again.close();
  });
});
