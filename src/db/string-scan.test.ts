// Db.scan yields strings only, and its limit counts what it yields: keys holding a hash (written
// over RESP) do not use up the limit. Found from outside: an HTTP listing page of `limit` items
// came back short and without `next` when hashes were in range, ending the walk early.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { keyAfter } from '../stdx/bytes.js';
import { encodeHash } from '../storage/hash-codec.js';
import { KEY_BYTES_MAX } from '../storage/limits.js';
import { ValueType } from '../storage/value-type.js';
import { type Db, ENGINE_NAMES, open } from './db.js';

const b = (s: string) => Buffer.from(s);

async function putHash(db: Db, key: string): Promise<void> {
  await db.pipeline.put(b(key), encodeHash(new Map([['f', b('v')]])), undefined, ValueType.HASH);
}

async function keys(db: Db, options: Parameters<Db['scan']>[0]): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of db.scan(options)) out.push(k.toString());
  return out;
}

describe('Db.scan with hashes in range', () => {
  for (const engine of ENGINE_NAMES) {
    it(`counts only the strings it yields against the limit (${engine})`, async () => {
      const db = await open(tmpDir('string-scan'), { engine });
      try {
        // p:1 p:2 hashes, p:3 p:4 strings, p:5 hash, p:6 string.
        await putHash(db, 'p:1');
        await putHash(db, 'p:2');
        await db.set('p:3', 's3');
        await db.set('p:4', 's4');
        await putHash(db, 'p:5');
        await db.set('p:6', 's6');
        expect(await keys(db, { prefix: 'p:' })).toEqual(['p:3', 'p:4', 'p:6']);
        expect(await keys(db, { prefix: 'p:', limit: 1 })).toEqual(['p:3']);
        expect(await keys(db, { prefix: 'p:', limit: 3 })).toEqual(['p:3', 'p:4', 'p:6']);
        expect(await keys(db, { prefix: 'p:', limit: 10 })).toEqual(['p:3', 'p:4', 'p:6']);
        expect(await keys(db, { prefix: 'p:', limit: 2, reverse: true })).toEqual(['p:6', 'p:4']);
        expect(await keys(db, { prefix: 'p:', limit: 3, reverse: true })).toEqual(['p:6', 'p:4', 'p:3']);
        expect(await keys(db, { start: 'p:5', limit: 1 })).toEqual(['p:6']);
        expect(await keys(db, { prefix: 'p:', limit: 0 })).toEqual([]);
      } finally {
        await db.close();
      }
    });
  }

  it('resumes after a hash at the key length limit', async () => {
    const db = await open(tmpDir('string-scan'));
    try {
      const long = 'm'.repeat(KEY_BYTES_MAX);
      await putHash(db, long);
      await db.set(`${'m'.repeat(KEY_BYTES_MAX - 1)}n`, 'after');
      expect((await keys(db, { prefix: 'mm', limit: 1 })).map((k) => k.at(-1))).toEqual(['n']);
    } finally {
      await db.close();
    }
  });

  it('still refuses a bad limit', async () => {
    const db = await open(tmpDir('string-scan'));
    try {
      for (const limit of [-1, 1.5, Number.NaN]) {
        await expect(db.scan({ limit }).next()).rejects.toThrow(/scan limit must be a non-negative integer/);
      }
    } finally {
      await db.close();
    }
  });
});

describe('keyAfter', () => {
  it('appends a zero byte below the length limit, and takes the next prefix at it', () => {
    expect(keyAfter(b('ab'), 4)).toEqual(new Uint8Array([0x61, 0x62, 0]));
    expect(keyAfter(b('abcd'), 4)).toEqual(new Uint8Array([0x61, 0x62, 0x63, 0x65]));
    expect(keyAfter(new Uint8Array([0x61, 0xff]), 2)).toEqual(new Uint8Array([0x62]));
    expect(keyAfter(new Uint8Array([0xff, 0xff]), 2)).toBeUndefined();
  });
});
