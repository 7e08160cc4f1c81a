import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open as openLmdbEnv } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../io/clock.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { describeEngineConformance } from '../engine-conformance.js';
import { InvalidArgumentError } from '../errors.js';
import { EXPIRY_CYCLE_INTERVAL_MS } from '../expiry-index.js';
import { FORMAT_REVISION, readMeta, writeMeta } from '../meta.js';
import { LMDB_KEY_BYTES_MAX, LMDB_SUBDIR, openLmdb } from './lmdb-engine.js';

describeEngineConformance('lmdb', openLmdb, { keyBytesMax: LMDB_KEY_BYTES_MAX });

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** rawEnv opens a closed store's lmdb files directly, to inspect or age them. */
function rawEnv(dir: string) {
  return openLmdbEnv<Buffer, Buffer>(path.join(dir, LMDB_SUBDIR), {
    keyEncoding: 'binary',
    encoding: 'binary',
  });
}

/** revisionKeys lists the keys of a closed store's revision database, as latin1 strings. */
async function revisionKeys(dir: string): Promise<string[]> {
  const env = rawEnv(dir);
  try {
    const revisions = env.openDB<Buffer, Buffer>('cairn-revision', {
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    return [...revisions.getKeys({ snapshot: false })].map((key) => Buffer.from(key).toString('latin1'));
  } finally {
    await env.close();
  }
}

/**
 * ageStore turns a closed store into one as an older build left it: format 2 (no revision
 * database) or format 1 (no expiry database either).
 */
async function ageStore(dir: string, format: 1 | 2): Promise<void> {
  const env = rawEnv(dir);
  try {
    const names = format === 1 ? ['cairn-revision', 'cairn-expiry'] : ['cairn-revision'];
    for (const name of names) {
      await env.openDB<Buffer, Buffer>(name, { keyEncoding: 'binary', encoding: 'binary' }).drop();
    }
  } finally {
    await env.close();
  }
  const { meta } = await readMeta(nodeFileSystem, dir);
  if (meta === undefined) throw new Error('no metadata');
  await writeMeta(nodeFileSystem, dir, { ...meta, format, generation: meta.generation + 1 });
}

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

  for (const format of [2, 1] as const) {
    it(`raises a format-${format} store to format 3 and reports its keys' legacy revisions`, async () => {
      const dir = tempDir();
      let db = await openLmdb(dir);
      await db.put(utf8('a'), utf8('1'));
      await db.put(utf8('b'), utf8('1'));
      await db.close();
      await ageStore(dir, format);

      db = await openLmdb(dir);
      expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_REVISION);
      const legacy = { mod: 1, create: 1, version: 1 };
      expect(db.lastTs()).toBe(1);
      expect(db.revisionSync(utf8('a'))).toEqual(legacy);
      expect((await db.getStored(utf8('b')))?.revision).toEqual(legacy);
      expect(db.revisionSync(utf8('c'))).toBeUndefined();
      expect(db.stats().keys).toBe(2);
      await db.put(utf8('a'), utf8('2'));
      expect(db.revisionSync(utf8('a'))).toEqual({ mod: 2, create: 1, version: 2 });
      await db.put(utf8('c'), utf8('1'));
      expect(db.revisionSync(utf8('c'))).toEqual({ mod: 3, create: 3, version: 1 });
      expect(db.stats().keys).toBe(3);
      await db.close();

      db = await openLmdb(dir);
      expect(db.lastTs()).toBe(3);
      expect(db.revisionSync(utf8('a'))).toEqual({ mod: 2, create: 1, version: 2 });
      expect(db.revisionSync(utf8('b'))).toEqual(legacy);
      expect(await db.delete(utf8('b'))).toBe(true);
      expect(db.revisionSync(utf8('b'))).toBeUndefined();
      await db.close();
    });
  }

  it('starts a fresh store at timestamp 0', async () => {
    const db = await openLmdb(tempDir());
    expect(db.lastTs()).toBe(0);
    await db.put(utf8('a'), utf8('1'));
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 1, create: 1, version: 1 });
    await db.close();
  });

  it('removes revision entries with their keys: delete, batch and the expiry cycle', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const db = await openLmdb(dir, { clock });
    for (const name of ['a', 'b', 'c', 'd', 'e']) await db.put(utf8(name), utf8('1'));
    await db.put(utf8('t'), utf8('1'), { expiresAt: clock.nowMs() + 10 });
    expect(await db.delete(utf8('a'))).toBe(true);
    await db.batch([
      { type: 'delete', key: utf8('b') },
      { type: 'put', key: utf8('f'), value: utf8('1') },
    ]);
    clock.advance(EXPIRY_CYCLE_INTERVAL_MS * 2);
    await db.flush();
    const last = db.lastTs();
    await db.close();
    // The last timestamp lives under 0x00, before every stored key (prefix 0x01).
    expect(await revisionKeys(dir)).toEqual(['\x00', '\x01c', '\x01d', '\x01e', '\x01f']);
    const again = await openLmdb(dir, { clock });
    // The expiry cycle's deletes took a timestamp too.
    expect(again.lastTs()).toBe(last);
    expect(last).toBeGreaterThan(again.revisionSync(utf8('f'))?.mod ?? Number.POSITIVE_INFINITY);
    await again.close();
  });

  it('keeps the timestamp of a delete that removed nothing across a reopen', async () => {
    const dir = tempDir();
    let db = await openLmdb(dir);
    expect(await db.delete(utf8('missing'), { ts: 1_000 })).toBe(false);
    expect(db.lastTs()).toBe(1_000);
    await db.close();
    db = await openLmdb(dir);
    expect(db.lastTs()).toBe(1_000);
    await db.close();
  });

  it('refuses a bad timestamp in an empty batch without taking one', async () => {
    const db = await openLmdb(tempDir());
    await db.put(utf8('a'), utf8('1'), { ts: 10 });
    await expect(db.batch([], { ts: 10 })).rejects.toThrow(InvalidArgumentError);
    await db.batch([], { ts: 11 });
    expect(db.lastTs()).toBe(10);
    await db.close();
  });

  it('counts one version for a key written twice in one batch, as its last operation', async () => {
    const db = await openLmdb(tempDir());
    await db.put(utf8('k'), utf8('0'));
    await db.batch([
      { type: 'put', key: utf8('k'), value: utf8('1') },
      { type: 'put', key: utf8('k'), value: utf8('2') },
      { type: 'put', key: utf8('j'), value: utf8('1') },
      { type: 'delete', key: utf8('j') },
    ]);
    const ts = db.lastTs();
    expect(db.revisionSync(utf8('k'))).toEqual({ mod: ts, create: 1, version: 2 });
    expect(Buffer.from(db.getSync(utf8('k')) ?? [])).toEqual(Buffer.from('2'));
    expect(db.revisionSync(utf8('j'))).toBeUndefined();
    await db.close();
  });

  it('derives from queued deletes and expiring puts', async () => {
    const clock = new ManualClock();
    const db = await openLmdb(tempDir(), { clock });
    await db.put(utf8('k'), utf8('0'));
    const writes = [
      db.delete(utf8('k')),
      db.put(utf8('k'), utf8('1')),
      db.put(utf8('k'), utf8('2'), { expiresAt: clock.nowMs() - 1 }),
      db.put(utf8('k'), utf8('3')),
    ];
    const ts = db.lastTs();
    await Promise.all(writes);
    // The delete restarts the key; the put that arrived already expired ends it again.
    expect(db.revisionSync(utf8('k'))).toEqual({ mod: ts, create: ts, version: 1 });
    await db.close();
  });
});
