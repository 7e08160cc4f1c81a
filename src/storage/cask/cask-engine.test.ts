import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { dirBytes, tmpDir } from '../../../test/support/tmp-dir.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import {
  ClosedError,
  CorruptionError,
  IncompatibleError,
  InvalidArgumentError,
  LimitError,
  LockedError,
  ReadOnlyError,
} from '../errors.js';
import { KEY_BYTES_MAX } from '../limits.js';
import { loadOrCreateMeta } from '../meta.js';
import { openCask } from './cask-engine.js';
import type { CaskEvent } from './cask-options.js';
import { POINT_INDEX_BUILD_CHUNK } from './store-state.js';

const b = (s: string) => Buffer.from(s);

describe('CaskEngine', () => {
  it('reads back what it wrote, across reopen', async () => {
    const dir = tmpDir('cask');
    let db = await openCaskPipelined(dir);
    await db.put(b('a'), b('1'));
    await db.batch([
      { type: 'put', key: b('b'), value: b('2') },
      { type: 'put', key: b('c'), value: b('3') },
      { type: 'delete', key: b('a') },
    ]);
    expect(await db.delete(b('missing'))).toBe(false);
    await db.close();
    db = await openCaskPipelined(dir);
    expect(await db.get(b('a'))).toBeUndefined();
    expect(String(await db.get(b('b')))).toBe('2');
    expect(db.stats().keys).toBe(2);
    expect(db.engine.recovery.problems).toEqual([]);
    await db.close();
  });

  it('does not show a write to readers before it is durable', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    const write = db.put(b('k'), b('v'));
    // The write is queued (and its fsync in flight): readers still see the old state.
    expect(await db.get(b('k'))).toBeUndefined();
    expect(await db.has(b('k'))).toBe(false);
    await write;
    expect(String(await db.get(b('k')))).toBe('v');
    await db.close();
  });

  it('answers delete with the latest queued state', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    const put = db.put(b('k'), b('v'));
    const del = db.delete(b('k'));
    const del2 = db.delete(b('k'));
    await put;
    expect(await del).toBe(true);
    expect(await del2).toBe(false);
    expect(await db.get(b('k'))).toBeUndefined();
    await db.close();
  });

  it('groups concurrent writers into few fsyncs', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    await Promise.all(Array.from({ length: 500 }, (_, i) => db.put(b(`k${i}`), b(`v${i}`))));
    const stats = db.stats();
    expect(stats.writes).toBe(500);
    expect(stats.fsyncs).toBeLessThan(100);
    await db.close();
  });

  it('rotates data files at the configured size', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    for (let i = 0; i < 200; i++) await db.put(b(`key${i}`), Buffer.alloc(100, i));
    expect(db.stats().dataFiles).toBeGreaterThan(5);
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.data'))) {
      expect(fs.statSync(path.join(dir, name)).size).toBeLessThanOrEqual(4096);
    }
    for (let i = 0; i < 200; i++) expect(await db.get(b(`key${i}`))).toEqual(Buffer.alloc(100, i));
    await db.close();
  });

  it('enforces limits without changing anything', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    await expect(db.put(Buffer.alloc(KEY_BYTES_MAX + 1), b('v'))).rejects.toBeInstanceOf(LimitError);
    await expect(
      db.batch([
        { type: 'put', key: b('ok'), value: b('v') },
        { type: 'put', key: Buffer.alloc(KEY_BYTES_MAX + 1), value: b('v') },
      ]),
    ).rejects.toBeInstanceOf(LimitError);
    expect(await db.has(b('ok'))).toBe(false);
    await db.close();
  });

  it('refuses use after close, a second opener, and a foreign directory', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    await expect(openCaskPipelined(dir)).rejects.toBeInstanceOf(LockedError);
    await db.close();
    await expect(db.get(b('k'))).rejects.toBeInstanceOf(ClosedError);
    // The engine refuses the write (the write pipeline in front of it reads the key first, so
    // its put throws the same ClosedError synchronously).
    await expect(
      db.engine.write(db.lastTs() + 1, [{ type: 'put', key: b('k'), value: b('v'), create: 1, version: 1 }]),
    ).rejects.toBeInstanceOf(ClosedError);
    const other = tmpDir('lmdbish');
    await loadOrCreateMeta(nodeFileSystem, other, 'lmdb', Date.now(), true);
    await expect(openCaskPipelined(other)).rejects.toBeInstanceOf(IncompatibleError);
  });

  it('never starts an empty store over an lmdb store whose metadata is gone, nor the other way round', async () => {
    const { open } = await import('../../db/db.js');
    const lmdbDir = tmpDir('lmdb-nometa');
    const lmdb = await open(lmdbDir, { engine: 'lmdb' });
    await lmdb.set('k', 'v');
    await lmdb.close();
    for (const name of ['META-1', 'META-2']) fs.unlinkSync(path.join(lmdbDir, name));
    await expect(openCaskPipelined(lmdbDir)).rejects.toBeInstanceOf(CorruptionError);
    await expect(open(lmdbDir, { engine: 'lmdb' })).rejects.toBeInstanceOf(CorruptionError);
    expect(fs.readdirSync(lmdbDir).sort()).toEqual(['lmdb']);
    const caskDir = tmpDir('cask-nometa');
    const cask = await openCaskPipelined(caskDir);
    await cask.put(b('k'), b('v'));
    await cask.close();
    for (const name of ['META-1', 'META-2']) fs.unlinkSync(path.join(caskDir, name));
    await expect(open(caskDir, { engine: 'lmdb' })).rejects.toBeInstanceOf(CorruptionError);
    expect(fs.readdirSync(caskDir)).not.toContain('lmdb');
  });

  it('refuses a directory written by a newer format', async () => {
    const dir = tmpDir('cask');
    await (await openCaskPipelined(dir)).close();
    const { readMeta, writeMeta } = await import('../meta.js');
    const { meta } = await readMeta(nodeFileSystem, dir);
    await writeMeta(nodeFileSystem, dir, { ...meta!, format: 99, generation: meta!.generation + 1 });
    await expect(openCaskPipelined(dir)).rejects.toThrow(/newer Cairn/);
  });

  it('shrinks the directory under repeated overwrites (talent-plan compaction)', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir, { dataFileBytes: 64 * 1024, compactionMinDeadBytes: 128 * 1024 });
    let peak = 0;
    let shrank = false;
    for (let iter = 0; iter < 60 && !shrank; iter++) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => db.put(b(`key${i}`), b(`value${iter}`))));
      const size = dirBytes(dir);
      if (size < peak) shrank = true;
      peak = Math.max(peak, size);
      // Give background compaction its turns.
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(shrank).toBe(true);
    const last = await db.get(b('key999'));
    await db.close();
    const again = await openCaskPipelined(dir);
    expect(String(await again.get(b('key999')))).toBe(String(last));
    for (let i = 0; i < 1000; i++) expect(String(await again.get(b(`key${i}`)))).toBe(String(last));
    await again.close();
  });

  it('compacts in steps of compactionStepMs, yielding to writes that race it, and loses nothing', async () => {
    // Step 0: every step is as small as the work can be cut (64 keys looked at, 64 relocated,
    // 1024 hint entries encoded); 1000: a step per output, as before steps had a time budget.
    // No cache: every copy reads its record.
    const race = async (compactionStepMs: number): Promise<number> => {
      const dir = tmpDir('cask');
      const onEvent = (e: CaskEvent) => {
        if (e.type === 'compaction-done') steps = e.detail.steps as number;
      };
      const options = {
        dataFileBytes: 64 * 1024,
        autoCompact: false,
        compactionStepMs,
        cacheBytes: 0,
        onEvent,
      };
      const db = await openCaskPipelined(dir, options);
      const key = (i: number) => b(`key${String(i).padStart(5, '0')}`);
      const model = new Map<number, string>();
      const n = 4000;
      for (let round = 0; round < 2; round++) {
        await Promise.all(
          Array.from({ length: n }, (_, i) => {
            model.set(i, `v${round}-${i}`.padEnd(40, '.'));
            return db.put(key(i), b(model.get(i) as string));
          }),
        );
      }
      let steps = 0;
      let done = false;
      const compacted = db.engine.compact().finally(() => {
        done = true;
      });
      // Writes and deletes between the steps, to keys the walk has passed and keys ahead of it.
      for (let t = 0; !done; t++) {
        await new Promise((r) => setImmediate(r));
        const i = (t * 7919) % n;
        if (t % 3 === 0) {
          model.delete(i);
          await db.delete(key(i));
        } else {
          model.set(i, `w${t}`);
          await db.put(key(i), b(`w${t}`));
        }
      }
      await compacted;
      const check = async (store: typeof db) => {
        for (let i = 0; i < n; i++) {
          const got = await store.get(key(i));
          expect(got === undefined ? undefined : String(got), `key ${i}`).toBe(model.get(i));
        }
      };
      await check(db);
      await db.close();
      const again = await openCaskPipelined(dir, options);
      await check(again);
      await again.close();
      return steps;
    };
    const fine = await race(0);
    const coarse = await race(1000);
    // About 4000 keys walked 64 at a time and relocated 64 at a time: over 100 steps (fewer keys
    // when the racing deletes got there first). A step per output when the budget is never spent.
    expect(fine).toBeGreaterThan(100);
    expect(coarse).toBeLessThan(20);
  });

  it('fails a scan whose key directory repeats keys with CorruptionError instead of cycling', async () => {
    const dir = tmpDir('cask');
    const db = await openCaskPipelined(dir);
    try {
      const n = 2000;
      await Promise.all(
        Array.from({ length: n }, (_, i) => db.put(b(`k${String(i).padStart(5, '0')}`), b('v'))),
      );
      // Damage the directory as the aliasing bug did: separators rewritten in place, here so
      // that every descent goes to the first leaf. A scan re-seeks by key after each chunk of
      // 256 entries, so its second chunk starts over near the beginning.
      const root = (db.engine.keyDir as unknown as { root: { keys: Uint8Array[] } }).root;
      for (const sep of root.keys) sep.fill(0xff);
      let yielded = 0;
      const scan = async () => {
        for await (const _ of db.scan()) yielded++;
      };
      await expect(scan()).rejects.toBeInstanceOf(CorruptionError);
      expect(yielded).toBeLessThan(n);
    } finally {
      await db.close();
    }
  });
});

describe('CaskEngine stamped writes', () => {
  const put = (key: string, value: string, create: number, version: number, expiresAt?: number) => ({
    type: 'put' as const,
    key: b(key),
    value: b(value),
    create,
    version,
    expiresAt,
  });

  it('stores the stamps it is given, and moves lastTs before the write is durable', async () => {
    const dir = tmpDir('cask');
    let db = await openCask(dir);
    const written = db.write(10, [put('a', '1', 10, 1), put('b', '2', 3, 7)]);
    expect(db.lastTs()).toBe(10);
    expect(db.revisionSync(b('a'))).toBeUndefined(); // not durable yet: reads show the durable state
    await written;
    expect(db.revisionSync(b('a'))).toEqual({ mod: 10, create: 10, version: 1 });
    expect(db.revisionSync(b('b'))).toEqual({ mod: 10, create: 3, version: 7 });
    await db.write(11, [{ type: 'delete', key: b('a') }]);
    await db.close();
    db = await openCask(dir);
    expect(db.lastTs()).toBe(11);
    expect(await db.get(b('a'))).toBeUndefined();
    expect(db.revisionSync(b('b'))).toEqual({ mod: 10, create: 3, version: 7 });
    await db.close();
  });

  it('keeps the last op per key of one write', async () => {
    const db = await openCask(tmpDir('cask'));
    await db.write(5, [put('k', 'first', 5, 1), { type: 'delete', key: b('k') }, put('k', 'last', 5, 1)]);
    expect(String(await db.get(b('k')))).toBe('last');
    expect(db.stats().keys).toBe(1);
    await db.close();
  });

  it('refuses a ts at or below lastTs, bad stamps, an empty write and oversized ones, changing nothing', async () => {
    const dir = tmpDir('cask');
    const db = await openCask(dir);
    await db.write(7, [put('k', 'v', 7, 1)]);
    const refused = [
      db.write(7, [put('x', 'v', 7, 1)]), // ts not above lastTs
      db.write(6, [put('x', 'v', 6, 1)]),
      db.write(8.5, [put('x', 'v', 8, 1)]), // not an integer
      db.write(8, [put('x', 'v', 9, 1)]), // create above ts
      db.write(8, [put('x', 'v', 0, 1)]), // create below 1
      db.write(8, [put('x', 'v', 8, 0)]), // version below 1
      db.write(8, [put('ok', 'v', 8, 1), put('x', 'v', 8, 1.5)]), // one bad op refuses the write
      db.write(8, []),
    ];
    for (const w of refused) await expect(w).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(db.write(8, [put('x'.repeat(KEY_BYTES_MAX + 1), 'v', 8, 1)])).rejects.toBeInstanceOf(
      LimitError,
    );
    expect(db.lastTs()).toBe(7);
    expect(await db.has(b('ok'))).toBe(false);
    expect(db.stats().writes).toBe(1);
    await db.write(8, [put('ok', 'v', 8, 1)]);
    expect(db.revisionSync(b('ok'))).toEqual({ mod: 8, create: 8, version: 1 });
    await db.close();
  });

  it('lists due expiries soonest first without changing anything', async () => {
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const dir = tmpDir('cask');
    let db = await openCask(dir, { clock });
    await db.write(1, [
      put('late', 'v', 1, 1, t0 + 30),
      put('soon', 'v', 1, 1, t0 + 10),
      put('never', 'v', 1, 1),
    ]);
    await db.write(2, [put('mid', 'v', 2, 1, t0 + 20)]);
    expect(db.dueExpiries(t0, 10)).toEqual([]);
    clock.set(t0 + 25);
    const names = (keys: Uint8Array[]) => keys.map((k) => String(Buffer.from(k)));
    expect(names(db.dueExpiries(clock.nowMs(), 10))).toEqual(['soon', 'mid']);
    expect(names(db.dueExpiries(clock.nowMs(), 1))).toEqual(['soon']);
    expect(names(db.dueExpiries(clock.nowMs(), 10))).toEqual(['soon', 'mid']); // asked twice: the same
    expect(db.stats().keys).toBe(2); // lazily expired; nothing was deleted
    db.expiries.checkInvariants();
    // A key rewritten without an expiry is no longer due.
    await db.write(3, [put('soon', 'again', 1, 2)]);
    expect(names(db.dueExpiries(clock.nowMs(), 10))).toEqual(['mid']);
    await db.close();
    db = await openCask(dir, { clock, readOnly: true });
    expect(db.dueExpiries(clock.nowMs(), 10)).toEqual([]); // a read-only store deletes nothing
    await expect(db.write(4, [put('k', 'v', 4, 1)])).rejects.toBeInstanceOf(ReadOnlyError);
    await db.close();
  });

  it('serves reads and writes while its point index is built after an open, and then through it', async () => {
    // More keys than one chunk, so the open leaves the index to the background build.
    const dir = tmpDir('cask');
    const n = POINT_INDEX_BUILD_CHUNK * 2 + 100;
    const name = (i: number) => b(`key:${String(i).padStart(6, '0')}`);
    let db = await openCaskPipelined(dir);
    for (let base = 0; base < n; base += 1000) {
      const ops = [];
      for (let i = base; i < Math.min(n, base + 1000); i++)
        ops.push({ type: 'put' as const, key: name(i), value: b(`v${i}`) });
      await db.batch(ops);
    }
    expect(db.engine.keyDir.pointIndex?.size).toBe(n);
    await db.close();
    db = await openCaskPipelined(dir);
    expect(db.engine.keyDir.pointIndex).toBeUndefined(); // still being built
    // Changes below, inside and above the part built so far; reads through the B+tree meanwhile.
    const changes = [
      db.put(name(1), b('new1')),
      db.delete(name(2)),
      db.put(name(n - 1), b('newLast')),
      db.delete(name(n - 2)),
      db.put(b('key:~'), b('added')),
    ];
    expect(String(await db.get(name(3)))).toBe('v3');
    await Promise.all(changes);
    await db.engine.pointIndexBuilt();
    const index = db.engine.keyDir.pointIndex;
    expect(index?.size).toBe(n - 1);
    db.engine.keyDir.checkInvariants(); // the index agrees with the B+tree, entry by entry
    expect(String(await db.get(name(1)))).toBe('new1');
    expect(await db.get(name(2))).toBeUndefined();
    expect(await db.has(name(2))).toBe(false);
    expect(String(await db.get(name(n - 1)))).toBe('newLast');
    expect(await db.get(name(n - 2))).toBeUndefined();
    expect(String(await db.get(b('key:~')))).toBe('added');
    expect(db.revisionSync(b('nope'))).toBeUndefined();
    expect((await db.getStored(name(5)))?.revision).toEqual(db.revisionSync(name(5)));
    for (let i = 3; i < n - 2; i += 997) expect(String(await db.get(name(i)))).toBe(`v${i}`);
    await db.close();
  });
});
