import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open as openLmdbEnv } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { poisoned } from '../../../test/support/poison.js';
import { type Clock, systemClock } from '../../io/clock.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { describeEngineConformance } from '../../txn/engine-conformance.js';
import { type PipelinedEngine, pipelined } from '../../txn/pipelined-engine.js';
import type { Entry } from '../engine.js';
import type { EngineOptions } from '../engine-options.js';
import { ClosedError, InvalidArgumentError } from '../errors.js';
import { EXPIRY_CYCLE_INTERVAL_MS } from '../expiry-index.js';
import { FORMAT_REVISION, FORMAT_TYPED, readMeta, writeMeta } from '../meta.js';
import { LMDB_KEY_BYTES_MAX, LMDB_SUBDIR, openLmdb } from './lmdb-engine.js';

describeEngineConformance('lmdb', openLmdb, { keyBytesMax: LMDB_KEY_BYTES_MAX });
// Again with every caller buffer overwritten once the call returns and once it settles (lmdb-js
// reads a value by address on its write thread after put() returns: the adapter must copy).
describeEngineConformance('lmdb', async (dir, options) => poisoned(await openLmdb(dir, options)), {
  keyBytesMax: LMDB_KEY_BYTES_MAX,
  variant: 'borrowed buffers poisoned',
});

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * openPipelined opens a store behind a write pipeline on the options' clock: the plain
 * put/delete/batch surface, with timestamps and revisions stamped as the Db stamps them.
 */
async function openPipelined(
  dir: string,
  options: EngineOptions = {},
  hooks: Parameters<typeof openLmdb>[2] = {},
): Promise<PipelinedEngine> {
  return pipelined(await openLmdb(dir, options, hooks), options.clock);
}

/**
 * counting: a clock at 0 ms. The pipeline's commit timestamps are the clock's microseconds when
 * those are ahead, so on this clock they count 1, 2, 3, ... from the store's lastTs.
 */
const counting = (): ManualClock => new ManualClock(0);

/** rawEnv opens a closed store's lmdb files directly, to inspect or age them. */
function rawEnv(dir: string) {
  return openLmdbEnv<Buffer, Buffer>(path.join(dir, LMDB_SUBDIR), {
    keyEncoding: 'binary',
    encoding: 'binary',
  });
}

/** StoredRecord: a main-database entry of a closed store, its key without the one-byte prefix. */
interface StoredRecord {
  readonly key: string;
  readonly value: Buffer;
}

/** storedRecords lists the main database of a closed store as it is on disk (values with prefixes). */
async function storedRecords(dir: string): Promise<StoredRecord[]> {
  const env = rawEnv(dir);
  try {
    return [...env.getRange({ start: Buffer.from([1]), end: Buffer.from([2]), snapshot: false })].map(
      ({ key, value }) => ({
        key: Buffer.from(key).subarray(1).toString('latin1'),
        value: Buffer.from(value),
      }),
    );
  } finally {
    await env.close();
  }
}

/** prefixOf decodes a stored value's revision prefix (mod u64 | create u64 | version u32). */
function prefixOf(value: Buffer): { mod: number; create: number; version: number } {
  const u64 = (at: number): number => value.readUInt32LE(at + 4) * 0x1_0000_0000 + value.readUInt32LE(at);
  return { mod: u64(0), create: u64(8), version: value.readUInt32LE(16) };
}

/** metaEntry reads an entry of a closed store's meta database (undefined: none). */
async function metaEntry(dir: string, key: string): Promise<Buffer | undefined> {
  const env = rawEnv(dir);
  try {
    const metaDb = env.openDB<Buffer, Buffer>('cairn-meta', { keyEncoding: 'binary', encoding: 'binary' });
    const raw = metaDb.get(Buffer.from(key));
    return raw === undefined ? undefined : Buffer.from(raw);
  } finally {
    await env.close();
  }
}

/**
 * writeLegacyStore writes a store as an older build left it: values without a revision prefix,
 * format 1 (no expiry database) or 2 (an expiry database, with `expiries`); with `dev`, as the
 * unreleased development build left it (format 3 and a `cairn-revision` database).
 */
async function writeLegacyStore(
  dir: string,
  format: 1 | 2 | 'dev',
  values: ReadonlyMap<string, Uint8Array>,
  expiries: ReadonlyMap<string, number> = new Map(),
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const stored = (key: string): Buffer => Buffer.concat([Buffer.of(1), Buffer.from(key, 'latin1')]);
  const env = rawEnv(dir);
  try {
    await env.batch(() => {
      for (const [key, value] of values) void env.put(stored(key), Buffer.from(value));
    });
    if (format !== 1) {
      const expiryDb = env.openDB<Buffer, Buffer>('cairn-expiry', {
        keyEncoding: 'binary',
        encoding: 'binary',
      });
      await expiryDb.batch(() => {
        for (const [key, at] of expiries) {
          const raw = Buffer.alloc(8);
          raw.writeUInt32LE(at % 0x1_0000_0000, 0);
          raw.writeUInt32LE(Math.floor(at / 0x1_0000_0000), 4);
          void expiryDb.put(stored(key), raw);
        }
      });
    }
    if (format === 'dev') {
      const revisionDb = env.openDB<Buffer, Buffer>('cairn-revision', {
        keyEncoding: 'binary',
        encoding: 'binary',
      });
      await revisionDb.put(Buffer.of(0), Buffer.alloc(8, 0));
    }
  } finally {
    await env.close();
  }
  await writeMeta(nodeFileSystem, dir, {
    format: format === 'dev' ? 3 : format,
    engine: 'lmdb',
    generation: 1,
    createdAtMs: 0,
    fields: {},
  });
}

/** scanAll reads every live entry of an engine, keys and values as latin1 strings. */
async function scanAll(db: { scan(): AsyncIterableIterator<Entry> }) {
  const out: [string, string][] = [];
  for await (const [k, v] of db.scan()) {
    out.push([Buffer.from(k).toString('latin1'), Buffer.from(v).toString('latin1')]);
  }
  return out;
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
    const db = await openPipelined(dir);
    await db.put(Uint8Array.of(1), Uint8Array.of(2));
    await db.close();
    const names = fs.readdirSync(dir).sort();
    expect(names).toContain(LMDB_SUBDIR);
    expect(names).toContain('META-1');
    expect(names).toContain('META-2');
    expect(fs.readdirSync(path.join(dir, LMDB_SUBDIR))).toContain('data.mdb');
  });

  it('scans with bounds longer than any storable key', async () => {
    const db = await openPipelined(tempDir());
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
    const engine = await openLmdb(tempDir(), { durability: 'interval', syncIntervalMs: 1000, clock });
    expect(ticks).toHaveLength(1);
    // The pipeline's expiry cycle adds its own timer (ticks[1]).
    const db = pipelined(engine, clock);
    await db.put(Uint8Array.of(1), Uint8Array.of(2));
    expect(db.stats().fsyncs).toBe(0);
    ticks[0]?.();
    await db.flush(); // waits behind the sync the tick started
    expect(db.stats().fsyncs).toBeGreaterThanOrEqual(2);
    await db.close();
    expect(ticks).toHaveLength(0);
  });

  const legacy = { mod: 1, create: 1, version: 1 };
  const prefixBytes = 20;
  /** legacyValues: an empty value, one exactly as long as the prefix, and ordinary ones. */
  const legacyValues = new Map<string, Uint8Array>([
    ['a', utf8('1')],
    ['b', utf8('1')],
    ['empty', new Uint8Array(0)],
    ['twenty', new Uint8Array(prefixBytes).fill(7)],
  ]);

  for (const format of [2, 1] as const) {
    it(`migrates a format-${format} store to prefixed values with legacy revisions`, async () => {
      const dir = tempDir();
      await writeLegacyStore(dir, format, legacyValues);

      const clock = counting();
      let db = await openPipelined(dir, { clock });
      expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_TYPED);
      expect(db.lastTs()).toBe(1);
      for (const [key, value] of legacyValues) {
        expect(Buffer.from(db.getSync(utf8(key)) ?? [0xff])).toEqual(Buffer.from(value));
        expect(db.revisionSync(utf8(key))).toEqual(legacy);
      }
      expect((await db.getStored(utf8('b')))?.revision).toEqual(legacy);
      expect(await scanAll(db)).toEqual(
        [...legacyValues].map(([k, v]) => [k, Buffer.from(v).toString('latin1')]).sort(),
      );
      expect(db.revisionSync(utf8('c'))).toBeUndefined();
      expect(db.stats().keys).toBe(4);
      await db.put(utf8('a'), utf8('2'));
      expect(db.revisionSync(utf8('a'))).toEqual({ mod: 2, create: 1, version: 2 });
      await db.put(utf8('c'), utf8('1'));
      expect(db.revisionSync(utf8('c'))).toEqual({ mod: 3, create: 3, version: 1 });
      expect(db.stats().keys).toBe(5);
      await db.close();

      // Every value carries exactly one prefix; the marker is gone.
      for (const { key, value } of await storedRecords(dir)) {
        const original = key === 'a' ? utf8('2') : key === 'c' ? utf8('1') : legacyValues.get(key);
        expect(value.length).toBe(prefixBytes + (original?.length ?? -1));
        expect(value.subarray(prefixBytes)).toEqual(Buffer.from(original ?? []));
      }
      expect(await metaEntry(dir, 'migration')).toBeUndefined();

      db = await openPipelined(dir, { clock });
      expect(db.lastTs()).toBe(3);
      expect(db.revisionSync(utf8('a'))).toEqual({ mod: 2, create: 1, version: 2 });
      expect(db.revisionSync(utf8('b'))).toEqual(legacy);
      expect(Buffer.from(db.getSync(utf8('twenty')) ?? [])).toEqual(Buffer.alloc(prefixBytes, 7));
      expect(await db.delete(utf8('b'))).toBe(true);
      expect(db.revisionSync(utf8('b'))).toBeUndefined();
      await db.close();
    });
  }

  it('keeps the expiries of a migrated format-2 store', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const at = clock.nowMs() + 1_000;
    await writeLegacyStore(dir, 2, legacyValues, new Map([['a', at]]));
    const db = await openLmdb(dir, { clock });
    expect(await db.expiry(utf8('a'))).toBe(at);
    expect((await db.getStored(utf8('a')))?.expiresAt).toBe(at);
    expect(db.stats().expires).toBe(1);
    clock.advance(2_000);
    expect(db.getSync(utf8('a'))).toBeUndefined();
    expect(db.revisionSync(utf8('a'))).toBeUndefined();
    await db.close();
  });

  it('migrates an empty format-2 store and starts it at timestamp 0', async () => {
    const dir = tempDir();
    await writeLegacyStore(dir, 2, new Map());
    const db = await openLmdb(dir);
    expect(db.lastTs()).toBe(0);
    expect(db.stats().keys).toBe(0);
    await db.close();
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_TYPED);
  });

  it('resumes an interrupted migration after its last chunk, prefixing no value twice', async () => {
    const dir = tempDir();
    const values = new Map<string, Uint8Array>();
    for (let i = 0; i < 25; i++) values.set(`k${String(i).padStart(2, '0')}`, utf8(`v${i}`));
    values.set('k99', new Uint8Array(prefixBytes).fill(9));
    await writeLegacyStore(dir, 2, values);

    // The first open stops after one chunk of 10 keys, as a crash would.
    await expect(openLmdb(dir, {}, { migrationChunkKeys: 10, migrationChunksMax: 1 })).rejects.toThrow(
      'test hook',
    );
    // The metadata was raised before the first prefixed value: older builds refuse the store.
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_REVISION);
    const records = await storedRecords(dir);
    const prefixed = records.filter(
      ({ key, value }) => value.length === prefixBytes + (values.get(key)?.length ?? 0),
    );
    expect(prefixed.map(({ key }) => key)).toEqual([...values.keys()].slice(0, 10));
    for (const { value } of prefixed) expect(prefixOf(value)).toEqual(legacy);
    expect((await metaEntry(dir, 'migration'))?.toString('latin1')).toBe('\x01k09');

    // A second interrupted open moves on by one more chunk.
    await expect(openLmdb(dir, {}, { migrationChunkKeys: 10, migrationChunksMax: 1 })).rejects.toThrow(
      'test hook',
    );
    expect((await metaEntry(dir, 'migration'))?.toString('latin1')).toBe('\x01k19');

    const db = await openPipelined(dir, { clock: counting() }, { migrationChunkKeys: 10 });
    expect(db.lastTs()).toBe(1);
    expect(await scanAll(db)).toEqual([...values].map(([k, v]) => [k, Buffer.from(v).toString('latin1')]));
    for (const key of values.keys()) expect(db.revisionSync(utf8(key))).toEqual(legacy);
    await db.put(utf8('k00'), utf8('new'));
    expect(db.revisionSync(utf8('k00'))).toEqual({ mod: 2, create: 1, version: 2 });
    await db.close();
    for (const { key, value } of await storedRecords(dir)) {
      if (key === 'k00') continue;
      expect(value.length).toBe(prefixBytes + (values.get(key)?.length ?? -1));
    }
    expect(await metaEntry(dir, 'migration')).toBeUndefined();
  });

  it('starts over a migration whose marker was written before the metadata was raised', async () => {
    const dir = tempDir();
    await writeLegacyStore(dir, 2, legacyValues);
    // As if the first open crashed between its durable marker and raising the metadata.
    const env = rawEnv(dir);
    const metaDb = env.openDB<Buffer, Buffer>('cairn-meta', { keyEncoding: 'binary', encoding: 'binary' });
    await metaDb.put(Buffer.from('migration'), Buffer.of(0));
    await env.close();
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(2);
    const db = await openLmdb(dir);
    for (const [key, value] of legacyValues) {
      expect(Buffer.from(db.getSync(utf8(key)) ?? [0xff])).toEqual(Buffer.from(value));
    }
    await db.close();
  });

  it('migrates a store left by the unreleased revision-database build and drops that database', async () => {
    const dir = tempDir();
    await writeLegacyStore(dir, 'dev', legacyValues);
    // Interrupted once, after a chunk of two keys: the revision database stays until the end.
    await expect(openLmdb(dir, {}, { migrationChunkKeys: 2, migrationChunksMax: 1 })).rejects.toThrow(
      'test hook',
    );
    expect((await metaEntry(dir, 'migration'))?.toString('latin1')).toBe('\x01b');
    const db = await openLmdb(dir);
    for (const [key, value] of legacyValues) {
      expect(Buffer.from(db.getSync(utf8(key)) ?? [0xff])).toEqual(Buffer.from(value));
      expect(db.revisionSync(utf8(key))).toEqual(legacy);
    }
    expect(db.stats().keys).toBe(legacyValues.size);
    await db.close();
    const env = rawEnv(dir);
    const names = [...env.getKeys({ start: Buffer.from([2]), snapshot: false })].map((k) =>
      Buffer.from(k).toString(),
    );
    await env.close();
    // lmdb-js keys a named database by its name and a NUL byte.
    expect(names.sort()).toEqual(['cairn-expiry\0', 'cairn-meta\0']);
  });

  it('stores empty values and values exactly as long as the revision prefix', async () => {
    const dir = tempDir();
    const clock = counting();
    let db = await openPipelined(dir, { clock });
    const twenty = new Uint8Array(prefixBytes).fill(0xab);
    await db.put(utf8('empty'), new Uint8Array(0));
    await db.put(utf8('twenty'), twenty);
    await db.batch([
      { type: 'put', key: utf8('b-empty'), value: new Uint8Array(0) },
      { type: 'put', key: utf8('b-twenty'), value: twenty },
    ]);
    const check = async (): Promise<void> => {
      for (const key of ['empty', 'b-empty']) {
        expect(db.getSync(utf8(key))?.length).toBe(0);
        expect(await db.has(utf8(key))).toBe(true);
        expect((await db.getStored(utf8(key)))?.value.length).toBe(0);
      }
      for (const key of ['twenty', 'b-twenty']) {
        expect(Buffer.from((await db.get(utf8(key))) ?? [])).toEqual(Buffer.from(twenty));
      }
      expect(db.revisionSync(utf8('empty'))).toEqual({ mod: 1, create: 1, version: 1 });
      expect(db.revisionSync(utf8('twenty'))).toEqual({ mod: 2, create: 2, version: 1 });
      expect(db.revisionSync(utf8('b-twenty'))).toEqual({ mod: 3, create: 3, version: 1 });
      expect((await scanAll(db)).map(([k, v]) => [k, v.length])).toEqual([
        ['b-empty', 0],
        ['b-twenty', prefixBytes],
        ['empty', 0],
        ['twenty', prefixBytes],
      ]);
    };
    await check();
    await db.close();
    db = await openPipelined(dir, { clock });
    await check();
    await db.close();
  });

  it('keeps revisions of values of 16 MiB and more (lmdb-js returns them as memory-map views)', async () => {
    const dir = tempDir();
    const clock = counting();
    let db = await openPipelined(dir, { durability: 'never', clock });
    const big = new Uint8Array(17 * 1024 * 1024).fill(5);
    big[big.length - 1] = 6;
    await db.put(utf8('big'), big);
    await db.put(utf8('big'), big);
    const check = async (): Promise<void> => {
      expect(db.revisionSync(utf8('big'))).toEqual({ mod: 2, create: 1, version: 2 });
      const stored = await db.getStored(utf8('big'));
      expect(stored?.revision).toEqual({ mod: 2, create: 1, version: 2 });
      for (const value of [stored?.value, db.getSync(utf8('big')), (await db.scan().next()).value?.[1]]) {
        expect(value?.length).toBe(big.length);
        expect(value?.[0]).toBe(5);
        expect(value?.[big.length - 1]).toBe(6);
      }
    };
    await check();
    await db.close();
    db = await openPipelined(dir, { durability: 'never', clock });
    await check();
    await db.close();
  });

  it('returns values the caller may keep while later reads and writes run', async () => {
    const db = await openPipelined(tempDir());
    await db.put(utf8('a'), utf8('first'));
    await db.put(utf8('b'), utf8('second'));
    const a = db.getSync(utf8('a'));
    const stored = await db.getStored(utf8('a'));
    const scanned = (await db.scan().next()).value as readonly [Uint8Array, Uint8Array];
    db.revisionSync(utf8('b'));
    db.getSync(utf8('b'));
    await db.put(utf8('a'), utf8('third'));
    await db.put(utf8('c'), utf8('fourth-value'));
    expect(Buffer.from(a ?? []).toString()).toBe('first');
    expect(Buffer.from(stored?.value ?? []).toString()).toBe('first');
    expect(Buffer.from(scanned[1]).toString()).toBe('first');
    await db.close();
  });

  it('starts a fresh store at timestamp 0', async () => {
    const db = await openPipelined(tempDir(), { clock: counting() });
    expect(db.lastTs()).toBe(0);
    await db.put(utf8('a'), utf8('1'));
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 1, create: 1, version: 1 });
    await db.close();
  });

  it('stores revisions with values and removes them with keys: delete, batch and the expiry cycle', async () => {
    const dir = tempDir();
    const clock = counting();
    const db = await openPipelined(dir, { clock });
    for (const name of ['a', 'b', 'c', 'd', 'e']) await db.put(utf8(name), utf8('1'));
    await db.put(utf8('t'), utf8('1'), { expiresAt: clock.nowMs() + 10 });
    expect(await db.delete(utf8('a'))).toBe(true);
    await db.batch([
      { type: 'delete', key: utf8('b') },
      { type: 'put', key: utf8('f'), value: utf8('1') },
    ]);
    await db.put(utf8('c'), utf8('2'));
    clock.advance(EXPIRY_CYCLE_INTERVAL_MS * 2);
    await db.flush();
    const last = db.lastTs();
    const revisions = new Map(['c', 'd', 'e', 'f'].map((k) => [k, db.revisionSync(utf8(k))]));
    await db.close();
    const records = await storedRecords(dir);
    expect(records.map(({ key }) => key)).toEqual(['c', 'd', 'e', 'f']);
    for (const { key, value } of records) {
      expect(prefixOf(value)).toEqual(revisions.get(key));
      expect(value.subarray(prefixBytes).toString()).toBe(key === 'c' ? '2' : '1');
    }
    expect(prefixOf(records[0]?.value ?? Buffer.alloc(prefixBytes))).toEqual({
      mod: 9,
      create: 3,
      version: 2,
    });
    const again = await openLmdb(dir, { clock });
    // The expiry cycle's deletes (the pipeline's) took a timestamp too.
    expect(again.lastTs()).toBe(last);
    expect(last).toBeGreaterThan(again.revisionSync(utf8('c'))?.mod ?? Number.POSITIVE_INFINITY);
    expect(again.stats().keys).toBe(4);
    await again.close();
  });

  it('keeps the timestamp of a delete that removed nothing across a reopen', async () => {
    const dir = tempDir();
    let db = await openLmdb(dir);
    expect(await db.write(1_000, [{ type: 'delete', key: utf8('missing') }])).toBeUndefined();
    expect(await db.has(utf8('missing'))).toBe(false);
    expect(db.lastTs()).toBe(1_000);
    await db.close();
    db = await openLmdb(dir);
    expect(db.lastTs()).toBe(1_000);
    await db.close();
  });

  it('refuses a bad timestamp and an empty write without taking one', async () => {
    const db = await openLmdb(tempDir());
    const put = (value: string) =>
      [{ type: 'put', key: utf8('a'), value: utf8(value), create: 10, version: 1 }] as const;
    await db.write(10, put('1'));
    await expect(db.write(10, [])).rejects.toThrow(InvalidArgumentError);
    await expect(db.write(10, put('2'))).rejects.toThrow(InvalidArgumentError);
    // An empty write is refused whatever its ts (the contract: nothing to stamp).
    await expect(db.write(11, [])).rejects.toThrow(InvalidArgumentError);
    expect(db.lastTs()).toBe(10);
    expect(Buffer.from(db.getSync(utf8('a')) ?? []).toString()).toBe('1');
    await db.close();
  });

  it('stores the stamps a write carries and refuses bad ones without changing anything', async () => {
    const dir = tempDir();
    let db = await openLmdb(dir);
    const put = (key: string, create: number, version: number) =>
      ({ type: 'put', key: utf8(key), value: utf8(`${key}${version}`), create, version }) as const;
    await db.write(5, [put('a', 5, 1), put('b', 5, 1)]);
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 5, create: 5, version: 1 });
    for (const [ts, op] of [
      [5, put('a', 5, 2)], // ts not above lastTs
      [6, put('a', 7, 2)], // create above ts
      [6, put('a', 0, 2)], // create below 1
      [6, put('a', 5, 0)], // version below 1
      [6.5, put('a', 5, 2)], // ts not an integer
    ] as const) {
      await expect(db.write(ts, [op, { type: 'delete', key: utf8('b') }])).rejects.toThrow(
        InvalidArgumentError,
      );
    }
    expect(db.lastTs()).toBe(5);
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 5, create: 5, version: 1 });
    expect(await db.has(utf8('b'))).toBe(true);
    // lastTs moves when the write is queued, before it is durable.
    const written = db.write(7, [put('a', 5, 2), { type: 'delete', key: utf8('b') }]);
    expect(db.lastTs()).toBe(7);
    await written;
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 7, create: 5, version: 2 });
    expect(Buffer.from(db.getSync(utf8('a')) ?? []).toString()).toBe('a2');
    expect(db.revisionSync(utf8('b'))).toBeUndefined();
    await db.close();
    await expect(db.write(8, [put('a', 5, 3)])).rejects.toThrow(ClosedError);
    db = await openLmdb(dir);
    expect(db.lastTs()).toBe(7);
    expect(db.revisionSync(utf8('a'))).toEqual({ mod: 7, create: 5, version: 2 });
    await db.close();
  });

  it('lists due expiries soonest first from the committed state, changing nothing', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const now = clock.nowMs();
    let db = await openLmdb(dir, { clock });
    expect(db.dueExpiries(now + 1_000, 10)).toEqual([]);
    const put = (key: string, expiresAt: number | undefined, ts: number) =>
      ({ type: 'put', key: utf8(key), value: utf8('v'), expiresAt, create: ts, version: 1 }) as const;
    await db.write(1, [put('late', now + 30, 1), put('soon', now + 10, 1), put('never', undefined, 1)]);
    await db.write(2, [put('mid', now + 20, 2), put('gone', now + 5, 2)]);
    await db.write(3, [{ type: 'delete', key: utf8('gone') }]);
    const names = (keys: Uint8Array[]): string[] => keys.map((k) => Buffer.from(k).toString());
    expect(names(db.dueExpiries(now, 10))).toEqual([]);
    expect(names(db.dueExpiries(now + 25, 10))).toEqual(['soon', 'mid']);
    expect(names(db.dueExpiries(now + 100, 10))).toEqual(['soon', 'mid', 'late']);
    expect(names(db.dueExpiries(now + 100, 2))).toEqual(['soon', 'mid']);
    // Nothing changed: the keys are still there (alive at the clock's now) and listed again.
    expect(await db.has(utf8('soon'))).toBe(true);
    expect(db.stats().expires).toBe(3);
    expect(names(db.dueExpiries(now + 100, 10))).toEqual(['soon', 'mid', 'late']);
    // A put without an expiry clears it; one with a later expiry moves the key back.
    await db.write(4, [put('soon', undefined, 4), put('mid', now + 50, 4)]);
    expect(names(db.dueExpiries(now + 40, 10))).toEqual(['late']);
    const due = db.dueExpiries(now + 100, 10);
    expect(names(due)).toEqual(['late', 'mid']);
    // The keys handed out are copies.
    due[0]?.fill(0);
    expect(names(db.dueExpiries(now + 100, 10))).toEqual(['late', 'mid']);
    await db.close();
    expect(() => db.dueExpiries(now + 100, 10)).toThrow(ClosedError);
    // The index is rebuilt from the expiry database at open.
    db = await openLmdb(dir, { clock });
    expect(names(db.dueExpiries(now + 100, 10))).toEqual(['late', 'mid']);
    await db.close();
  });

  it('counts one version for a key written twice in one batch, as its last operation', async () => {
    const db = await openPipelined(tempDir(), { clock: counting() });
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
    const db = await openPipelined(tempDir(), { clock });
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
