import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { CorruptionError } from '../../src/storage/errors.js';
import { DAMAGED_KEYS, damagedStore } from '../support/damaged-store.js';
import { type Running, startServer } from './support.js';

const KEYS_WRITTEN = DAMAGED_KEYS;

let r: Running | undefined;
afterAll(async () => {
  await r?.stop();
});

describe('a damaged record behind a hint file', () => {
  it('fails reads of its key only; KEYS and SCAN list every key; DEL clears it', async () => {
    const dir = await damagedStore('damaged-record');
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
    const db = await open(await damagedStore('damaged-record'));
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
