import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { hash32 } from '../../stdx/hash32.js';
import { cacheRecordBytes, ValueCache } from './value-cache.js';

const k = (s: string) => Buffer.from(s);

describe('ValueCache', () => {
  it('evicts the oldest entries past its capacity, sparing those read since', () => {
    const cache = new ValueCache(1000);
    for (let i = 0; i < 10; i++) cache.set(k(`k${i}`), Buffer.alloc(40, i));
    expect(cache.sizeBytes).toBeLessThanOrEqual(1000);
    expect(cache.get(k('k9'))).toEqual(Buffer.alloc(40, 9));
    for (let i = 10; i < 30; i++) cache.set(k(`k${i}`), Buffer.alloc(40, i));
    expect(cache.get(k('k0'))).toBeUndefined();
    // A hit gives an entry a second chance: read k29 now, then write as many entries as the
    // cache holds (its capacity over the size of one of these records); k29 is the one the FIFO
    // spares.
    expect(cache.get(k('k29'))).toBeDefined();
    const holds = Math.floor(1000 / cacheRecordBytes(3, 40));
    for (let i = 30; i < 30 + holds; i++) cache.set(k(`k${i}`), Buffer.alloc(40, i));
    expect(cache.get(k('k29'))).toEqual(Buffer.alloc(40, 29));
    expect(cache.get(k('k28'))).toBeUndefined();
    expect(cache.get(k('k30'))).toBeUndefined();
  });

  it('hands out copies and copies views into large buffers', () => {
    const cache = new ValueCache(1 << 20);
    const big = Buffer.alloc(100_000, 7);
    cache.set(k('k'), big.subarray(10, 20));
    const got = cache.get(k('k'))!;
    got[0] = 99;
    expect(cache.get(k('k'))![0]).toBe(7);
    big.fill(1); // the caller's buffer is borrowed: the cache kept its own bytes
    expect(cache.get(k('k'))).toEqual(Buffer.alloc(10, 7));
    expect(cache.sizeBytes).toBeLessThan(1000);
    cache.set(k('huge'), Buffer.alloc(1 << 19)); // over a sixteenth of the capacity: not cached
    expect(cache.get(k('huge'))).toBeUndefined();
    // A value too large replaces a cached one: the old one must not be served.
    cache.set(k('k'), Buffer.alloc(1 << 19));
    expect(cache.get(k('k'))).toBeUndefined();
  });

  it('matches a map of what was set, whatever it evicts (model test)', () => {
    const op = fc.oneof(
      fc.record({
        type: fc.constant('set' as const),
        key: fc.integer({ min: 0, max: 40 }),
        len: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 300 })),
        fill: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({ type: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ type: fc.constant('lookup' as const), key: fc.integer({ min: 0, max: 40 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 64, max: 4096 }), fc.array(op, { maxLength: 400 }), (capacity, ops) => {
        const cache = new ValueCache(capacity);
        const model = new Map<number, { value: Buffer; seq: number }>();
        let seq = 0;
        // Keys of several lengths, so records of many sizes share the ring.
        const keyOf = (i: number) => Buffer.from(`key-${'x'.repeat(i % 7)}${i}`);
        for (const o of ops) {
          if (o.type === 'set') {
            const value = Buffer.alloc(o.len, o.fill);
            seq++;
            cache.set(keyOf(o.key), value, seq, seq, 1, o.fill % 2);
            model.set(o.key, { value, seq });
            const fits = o.len <= capacity / 16 && cacheRecordBytes(keyOf(o.key).length, o.len) <= capacity;
            // What was just set is served at once (unless it is too large to cache).
            if (fits) expect(cache.get(keyOf(o.key))).toEqual(value);
          } else if (o.type === 'delete') {
            cache.delete(keyOf(o.key));
            model.delete(o.key);
            expect(cache.lookup(keyOf(o.key))).toBeUndefined();
          } else {
            const got = cache.lookup(keyOf(o.key));
            const want = model.get(o.key);
            // A miss is always allowed (evicted); a hit must be exactly the newest value.
            if (got !== undefined) {
              expect(want).toBeDefined();
              expect(Buffer.from(got.value)).toEqual(want!.value);
              expect([got.seq, got.create, got.version, got.valueType]).toEqual([
                want!.seq,
                want!.seq,
                1,
                want!.value.length === 0 ? got.valueType : (want!.value[0] as number) % 2,
              ]);
            }
          }
          expect(cache.sizeBytes).toBeLessThanOrEqual(capacity);
        }
        // Every entry still cached is the newest value of its key.
        for (let i = 0; i <= 40; i++) {
          const got = cache.get(keyOf(i));
          if (got !== undefined) expect(got).toEqual(model.get(i)?.value);
        }
      }),
      { numRuns: Number(process.env.CAIRN_CACHE_MODEL_RUNS ?? 300) },
    );
  });

  it('keeps many entries through growth and deletes (the hash table stays whole)', () => {
    const cache = new ValueCache(1 << 22);
    for (let i = 0; i < 5000; i++) cache.set(k(`key${i}`), Buffer.from(`v${i}`), i);
    for (let i = 0; i < 5000; i += 2) cache.delete(k(`key${i}`));
    for (let i = 0; i < 5000; i++) {
      const got = cache.lookup(k(`key${i}`));
      if (i % 2 === 0) expect(got).toBeUndefined();
      else expect([got && String(got.value), got?.seq]).toEqual([`v${i}`, i]);
    }
    expect(cache.size).toBe(2500);
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

describe('ValueCache.peek', () => {
  it('answers as lookup does, counting nothing and setting no referenced bit', () => {
    const cache = new ValueCache(4096);
    cache.set(Buffer.from('a'), Buffer.from('one'), 7, 3, 2, 0);
    const peeked = cache.peek(Buffer.from('a'));
    expect(peeked === undefined ? undefined : Buffer.from(peeked.value).toString()).toBe('one');
    expect([peeked?.seq, peeked?.create, peeked?.version]).toEqual([7, 3, 2]);
    expect(cache.peek(Buffer.from('b'))).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([0, 0]);
  });

  it('leaves the second chance to lookups: a peeked entry is evicted where a looked-up one survives', () => {
    for (const touch of ['lookup', 'peek'] as const) {
      const cache = new ValueCache(4096);
      cache.set(Buffer.from('a'), Buffer.from('one'), 1);
      if (touch === 'lookup') cache.lookup(Buffer.from('a'));
      else cache.peek(Buffer.from('a'));
      // Add entries until the first eviction: 'a' is the oldest, so it is the one considered.
      for (let i = 0; cache.size === i + 1; i++) cache.set(Buffer.from(`k${i}`), Buffer.alloc(64, i));
      expect(cache.peek(Buffer.from('a')) !== undefined, touch).toBe(touch === 'lookup');
    }
  });
});

describe('ValueCache.prefetch', () => {
  it('changes nothing: the same answers, no hit or miss counted, no second chance given', () => {
    const cache = new ValueCache(4096);
    const keys = Array.from({ length: 20 }, (_, i) => Buffer.from(`key${i}`));
    for (const [i, key] of keys.entries()) if (i % 2 === 0) cache.set(key, Buffer.alloc(40, i), i + 1);
    const hashes = Uint32Array.from(keys, (key) => hash32(key));
    const before = keys.map((key) => cache.peek(key)?.seq);
    cache.prefetch(hashes, hashes.length);
    expect(new ValueCache(64).prefetch(hashes, hashes.length)).toBe(0); // empty: nothing to touch
    expect(keys.map((key) => cache.peek(key)?.seq)).toEqual(before);
    expect([cache.hits, cache.misses]).toEqual([0, 0]);
    // The oldest entry is evicted first, prefetched or not (a lookup would have spared it).
    for (let i = 0; cache.peek(keys[0]!) !== undefined; i++)
      cache.set(Buffer.from(`more${i}`), Buffer.alloc(40));
    expect(cache.peek(keys[2]!)).toBeDefined();
  });
});
