// A record damaged inside a sealed data file that has a hint file: start-up trusts the hint (it
// reads no data file), so the damage shows only when the record is read. Then a clear error
// for that key alone: listing keys (KEYS, SCAN) reads no record and still works, and DEL can
// clear the damaged key (found from outside: both failed for every key, and DEL too).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { CorruptionError } from '../../src/storage/errors.js';
import { tmpDir } from '../support/tmp-dir.js';
import { type Running, startServer } from './support.js';

/** KEYS_WRITTEN: enough 1 KB values to fill a few small data files. */
const KEYS_WRITTEN = 600;
const DATA_FILE_BYTES = 128 * 1024;

let r: Running | undefined;
afterAll(async () => {
  await r?.stop();
});

/** damagedStore: a store whose first (sealed, hinted) data file has a flipped byte in k0010's value. */
async function damagedStore(): Promise<string> {
  const dir = tmpDir('damaged-record');
  const db = await open(dir, { dataFileBytes: DATA_FILE_BYTES });
  for (let i = 0; i < KEYS_WRITTEN; i++) {
    await db.set(`k${String(i).padStart(4, '0')}`, `${`value-${i}-`.padEnd(1000, 'x')}`);
  }
  await db.close();
  const data = path.join(dir, '0000000001.data');
  expect(fs.existsSync(path.join(dir, '0000000001.hint'))).toBe(true);
  const bytes = fs.readFileSync(data);
  const at = bytes.indexOf('value-10-');
  expect(at).toBeGreaterThan(0);
  bytes[at + 20] = (bytes[at + 20] as number) ^ 0xff;
  fs.writeFileSync(data, bytes);
  return dir;
}

describe('a damaged record behind a hint file', () => {
  it('fails reads of its key only; KEYS and SCAN list every key; DEL clears it', async () => {
    const dir = await damagedStore();
    r = await startServer({ dir });
    const c = new Redis({ port: r.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      await expect(c.get('k0010')).rejects.toThrow(/failed verification/);
      expect(await c.get('k0011')).toBe(`${'value-11-'.padEnd(1000, 'x')}`);
      expect((await c.keys('*')).length).toBe(KEYS_WRITTEN);
      const scanned: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await c.scan(cursor, 'COUNT', 100);
        scanned.push(...keys);
        cursor = next;
      } while (cursor !== '0');
      expect(new Set(scanned).size).toBe(KEYS_WRITTEN);
      // DEL counts the damaged key and removes it; the other key in the same call goes too.
      expect(await c.del('k0010', 'k0012', 'never-there')).toBe(2);
      expect(await c.get('k0010')).toBeNull();
      expect(await c.get('k0012')).toBeNull();
      expect(await c.dbsize()).toBe(KEYS_WRITTEN - 2);
    } finally {
      c.disconnect();
    }
  });

  it('the embedded API: get refuses the key, delete clears it, the other keys read', async () => {
    const db = await open(await damagedStore());
    try {
      await expect(db.get('k0010')).rejects.toBeInstanceOf(CorruptionError);
      expect(await db.delete('k0010')).toBe(true);
      expect(await db.get('k0010')).toBeUndefined();
      expect(await db.getString('k0011')).toBe(`${'value-11-'.padEnd(1000, 'x')}`);
      expect(db.stats().keys).toBe(KEYS_WRITTEN - 1);
    } finally {
      await db.close();
    }
  });
});
