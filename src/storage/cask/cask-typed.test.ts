// Typed values (format 4) in the cask engine: the TYPED record flag, values of type hash through
// restart (a data-file scan), hint files after compaction, the value cache, and the format
// upgrade, which a store gets only with its first typed record. The lmdb engine's typed prefix
// is checked at the end.
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { crc32cRange } from '../../stdx/crc32c.js';
import type { Entry } from '../engine.js';
import { WrongTypeError } from '../errors.js';
import { decodeHash, encodeHash } from '../hash-codec.js';
import { openLmdb } from '../lmdb/lmdb-engine.js';
import { FORMAT_NEW_STORE, FORMAT_REVISION, FORMAT_TYPED, readMeta } from '../meta.js';
import { ValueType } from '../value-type.js';
import {
  decodeRecord,
  encodeRecord,
  INVALID,
  Kind,
  RECORD_HEADER_BYTES,
  REVISION_BYTES,
  recordBytes,
  TYPED,
  VALUE_TYPE_BYTES,
} from './record.js';

const b = (s: string) => Buffer.from(s);
const hash = (pairs: Record<string, string>) =>
  encodeHash(new Map(Object.entries(pairs).map(([f, v]) => [f, b(v)])));

async function format(dir: string): Promise<number | undefined> {
  return (await readMeta(nodeFileSystem, dir)).meta?.format;
}

describe('TYPED records', () => {
  it('carry the type as the first byte of the value field; strings are unchanged', () => {
    const value = b('payload');
    const plain = Buffer.alloc(recordBytes(1, value.length, false, true));
    encodeRecord(plain, 0, 5, Kind.PUT, b('k'), value, undefined, 5, 1);
    const typed = Buffer.alloc(recordBytes(1, value.length + VALUE_TYPE_BYTES, false, true));
    encodeRecord(typed, 0, 5, Kind.PUT, b('k'), value, undefined, 5, 1, ValueType.HASH);
    expect(typed.length).toBe(plain.length + 1);
    expect((typed[12] as number) & TYPED).toBe(TYPED);
    expect((plain[12] as number) & TYPED).toBe(0);
    const rec = decodeRecord(typed, 0, typed.length);
    if (rec === INVALID || rec === 'need-more') throw new Error('not decoded');
    expect(rec.valueType).toBe(ValueType.HASH);
    expect(rec.valueStart).toBe(RECORD_HEADER_BYTES + REVISION_BYTES + 1);
    expect(rec.valueLen).toBe(value.length + 1);
    expect(typed.subarray(rec.valueStart + 1, rec.valueStart + rec.valueLen).toString()).toBe('payload');
    const plainRec = decodeRecord(plain, 0, plain.length);
    if (plainRec === INVALID || plainRec === 'need-more') throw new Error('not decoded');
    expect(plainRec.valueType).toBe(0);
  });

  it('refuses a TYPED flag on a DELETE and a type byte of 0 as damage', () => {
    const del = Buffer.alloc(recordBytes(1, 0));
    encodeRecord(del, 0, 1, Kind.DELETE, b('k'), undefined);
    del[12] = (del[12] as number) | TYPED;
    expect(decodeRecord(del, 0, del.length)).toBe(INVALID);
    // A TYPED record whose type byte is 0 (with a valid CRC: written so) is refused on its own
    // terms: a string never carries the flag.
    const typed = Buffer.alloc(recordBytes(1, 2, false, true));
    encodeRecord(typed, 0, 5, Kind.PUT, b('k'), b('v'), undefined, 5, 1, ValueType.HASH);
    expect(decodeRecord(typed, 0, typed.length)).not.toBe(INVALID);
    typed[RECORD_HEADER_BYTES + REVISION_BYTES + 1] = 0;
    typed.writeUInt32LE(crc32cRange(typed, 4, typed.length), 0);
    expect(decodeRecord(typed, 0, typed.length)).toBe(INVALID);
    expect(() =>
      encodeRecord(Buffer.alloc(64), 0, 5, Kind.PUT, b('k'), b('v'), undefined, 5, 1, 256),
    ).toThrow();
  });
});

describe('typed values in a cask store', () => {
  it('survive restart, hint files after compaction and the value cache, with their type', async () => {
    const dir = tmpDir('cask-typed');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    for (const cacheBytes of [0, 1024 * 1024]) {
      let db = await openCaskPipelined(dir, { clock, autoCompact: false, cacheBytes });
      await db.pipeline.put(b('h'), hash({ a: '1', b: '2' }), undefined, ValueType.HASH);
      await db.pipeline.put(b('ttl'), hash({ x: 'y' }), t0 + 60_000, ValueType.HASH);
      await db.put(b('s'), b('string'));
      const check = async (): Promise<void> => {
        const stored = db.getStoredSync(b('h'));
        expect(stored?.valueType).toBe(ValueType.HASH);
        expect([...decodeHash(stored!.value)]).toEqual([
          ['a', b('1')],
          ['b', b('2')],
        ]);
        expect(db.getStoredSync(b('ttl'))).toMatchObject({
          valueType: ValueType.HASH,
          expiresAt: t0 + 60_000,
        });
        expect(db.getStoredSync(b('s'))?.valueType).toBe(0);
        expect(String(await db.get(b('s')))).toBe('string');
        // A hash is never handed out as if it were a string; twice, so a cached copy is refused too.
        expect(() => db.getSync(b('h'))).toThrow(WrongTypeError);
        expect(() => db.getSync(b('h'))).toThrow(WrongTypeError);
        const scanned: Entry[] = [];
        for await (const entry of db.engine.scan()) scanned.push(entry);
        expect(scanned.map(([k, , t]) => [String(k), t ?? 0])).toEqual([
          ['h', ValueType.HASH],
          ['s', 0],
          ['ttl', ValueType.HASH],
        ]);
      };
      await check();
      await db.close();
      // Restart: recovery scans the data file.
      db = await openCaskPipelined(dir, { clock, autoCompact: false, cacheBytes });
      expect(db.engine.recovery.problems).toEqual([]);
      await check();
      // Compaction copies the records with their type, and writes hint files for them.
      const live = db.stats().liveBytes;
      await db.compact();
      expect(db.stats().liveBytes).toBe(live);
      await check();
      await db.close();
      db = await openCaskPipelined(dir, { clock, autoCompact: false, cacheBytes });
      expect(db.engine.recovery.hintFilesUsed).toBeGreaterThan(0);
      expect(db.engine.recovery.problems).toEqual([]);
      await check();
      // A string written over a hash is a string again.
      await db.put(b('h'), b('plain'));
      expect(db.getStoredSync(b('h'))?.valueType).toBe(0);
      expect(String(db.getSync(b('h')))).toBe('plain');
      await db.delete(b('h'));
      await db.close();
    }
  });

  it('stays at format 3 until its first typed write, which raises it to 4 first', async () => {
    const dir = tmpDir('cask-typed');
    let db = await openCaskPipelined(dir);
    await db.put(b('s'), b('v'));
    await db.batch([
      { type: 'put', key: b('t'), value: b('v') },
      { type: 'delete', key: b('s') },
    ]);
    await db.close();
    expect(FORMAT_NEW_STORE).toBe(FORMAT_REVISION);
    expect(await format(dir)).toBe(FORMAT_REVISION);
    db = await openCaskPipelined(dir);
    await db.put(b('s2'), b('still a string'));
    expect(await format(dir)).toBe(FORMAT_REVISION);
    // The write that holds the store's first typed record is durable only after the raise.
    await db.batch([
      { type: 'put', key: b('h'), value: hash({ f: 'v' }), valueType: ValueType.HASH },
      { type: 'put', key: b('s3'), value: b('v') },
    ]);
    expect(await format(dir)).toBe(FORMAT_TYPED);
    await db.close();
    db = await openCaskPipelined(dir);
    expect(db.getStoredSync(b('h'))?.valueType).toBe(ValueType.HASH);
    expect(await format(dir)).toBe(FORMAT_TYPED);
    await db.close();
  });
});

describe('typed values in an lmdb store', () => {
  it('keep their type in the revision prefix, through restart', async () => {
    const dir = tmpDir('lmdb-typed');
    let engine = await openLmdb(dir);
    expect(await format(dir)).toBe(FORMAT_TYPED);
    const ts = engine.lastTs() + 1;
    await engine.write(ts, [
      {
        type: 'put',
        key: b('h'),
        value: hash({ a: '1' }),
        create: ts,
        version: 1,
        valueType: ValueType.HASH,
      },
      { type: 'put', key: b('s'), value: b('v'), create: ts, version: 1 },
    ]);
    await engine.close();
    engine = await openLmdb(dir);
    const stored = engine.getStoredSync(b('h'));
    expect(stored).toMatchObject({
      valueType: ValueType.HASH,
      revision: { mod: ts, create: ts, version: 1 },
    });
    expect([...decodeHash(stored!.value)]).toEqual([['a', b('1')]]);
    expect(engine.getStoredSync(b('s'))?.valueType).toBe(0);
    expect(() => engine.getSync(b('h'))).toThrow(WrongTypeError);
    expect(engine.revisionSync(b('h'))).toEqual({ mod: ts, create: ts, version: 1 });
    const scanned: Entry[] = [];
    for await (const entry of engine.scan()) scanned.push(entry);
    expect(scanned.map(([k, , t]) => [String(k), t ?? 0])).toEqual([
      ['h', ValueType.HASH],
      ['s', 0],
    ]);
    await engine.close();
  });
});
