import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { ValueCache } from './value-cache.js';

describe('ValueCache', () => {
  it('evicts the least recently used entries past its capacity', () => {
    const cache = new ValueCache(1000);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, Buffer.alloc(40, i));
    expect(cache.sizeBytes).toBeLessThanOrEqual(1000);
    expect(cache.get('k0')).toBeUndefined();
    expect(cache.get('k9')).toEqual(Buffer.alloc(40, 9));
    // A hit makes an entry the most recently used one.
    const survivor = [...Array(10).keys()].find((i) => cache.get(`k${i}`) !== undefined)!;
    for (let i = 10; i < 13; i++) cache.set(`k${i}`, Buffer.alloc(40, i));
    expect(cache.get(`k${survivor}`)).toBeDefined();
  });

  it('hands out copies and copies views into large buffers', () => {
    const cache = new ValueCache(1 << 20);
    const big = Buffer.alloc(100_000, 7);
    cache.set('k', big.subarray(10, 20));
    const got = cache.get('k')!;
    got[0] = 99;
    expect(cache.get('k')![0]).toBe(7);
    expect(cache.sizeBytes).toBeLessThan(1000); // did not pin the 100 kB buffer
    cache.set('huge', Buffer.alloc(1 << 19)); // over a sixteenth of the capacity: not cached
    expect(cache.get('huge')).toBeUndefined();
  });

  it('never serves a value the engine no longer holds', async () => {
    const db = await openCaskPipelined(tmpDir('cache'), { cacheBytes: 4096 });
    const b = (s: string) => Buffer.from(s);
    await db.put(b('a'), b('1'));
    expect(String(await db.get(b('a')))).toBe('1');
    await db.put(b('a'), b('2'));
    expect(String(await db.get(b('a')))).toBe('2');
    await db.batch([
      { type: 'delete', key: b('a') },
      { type: 'put', key: b('c'), value: b('3') },
    ]);
    expect(await db.get(b('a'))).toBeUndefined();
    // Values returned from the cache may be modified by the caller without harm.
    const c = (await db.get(b('c'))) as Buffer;
    c[0] = 0x78;
    expect(String(await db.get(b('c')))).toBe('3');
    // Many keys through a small cache: evictions fall back to disk reads.
    for (let i = 0; i < 200; i++) await db.put(b(`k${i}`), b(`v${i}`.repeat(10)));
    for (let i = 0; i < 200; i++) expect(String(await db.get(b(`k${i}`)))).toBe(`v${i}`.repeat(10));
    await db.compact();
    for (let i = 0; i < 200; i++) expect(String(await db.get(b(`k${i}`)))).toBe(`v${i}`.repeat(10));
    await db.close();
  });

  it('serves revisions and values that match the key directory, through writes and compaction', async () => {
    const dir = tmpDir('cache-revision');
    const cached = await openCaskPipelined(dir, { cacheBytes: 1 << 20 });
    const b = (s: string) => Buffer.from(s);
    const check = async (key: string) => {
      // The cache's answer must be the one the key directory and the disk give.
      const fromCache = await cached.getStored(b(key));
      const loc = cached.engine.keyDir.get(b(key));
      if (loc === undefined) {
        expect(fromCache).toBeUndefined();
        expect(cached.revisionSync(b(key))).toBeUndefined();
        return;
      }
      expect(fromCache?.value).toEqual(cached.engine.readValue(b(key), loc));
      expect(fromCache?.revision).toEqual({ mod: loc.seq, create: loc.create, version: loc.version });
      expect(cached.revisionSync(b(key))).toEqual(fromCache?.revision);
    };
    await cached.put(b('a'), b('1'));
    await check('a');
    await cached.put(b('a'), b('2'));
    await check('a');
    expect(cached.revisionSync(b('a'))?.version).toBe(2);
    // A value too large for the cache replaces a cached one: the old one must not be served.
    await cached.put(b('a'), Buffer.alloc(1 << 17, 3));
    await check('a');
    expect((await cached.getStored(b('a')))?.value.length).toBe(1 << 17);
    await cached.batch([
      { type: 'delete', key: b('a') },
      { type: 'put', key: b('c'), value: b('3') },
    ]);
    await check('a');
    await check('c');
    for (let i = 0; i < 50; i++) await cached.put(b(`k${i % 5}`), b(`v${i}`));
    await cached.compact();
    for (let i = 0; i < 5; i++) await check(`k${i}`);
    // A hit hands out a copy of the value; modifying it changes nothing.
    const got = (await cached.getStored(b('c')))!.value as Buffer;
    got[0] = 0x78;
    expect(String(await cached.get(b('c')))).toBe('3');
    await cached.close();
  });
});
