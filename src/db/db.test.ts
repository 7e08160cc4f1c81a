import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { IncompatibleError, KeyNotFoundError } from '../storage/errors.js';
import { open } from './db.js';

describe('Db (embedded API)', () => {
  it('accepts strings and bytes, returns Buffers', async () => {
    const db = await open(tmpDir('db'));
    await db.set('name', 'cairn');
    await db.set(Buffer.from([0, 255]), new Uint8Array([1, 2, 3]));
    expect(await db.getString('name')).toBe('cairn');
    expect(await db.get(Buffer.from([0, 255]))).toEqual(Buffer.from([1, 2, 3]));
    expect(await db.get('missing')).toBeUndefined();
    await expect(db.require('missing')).rejects.toBeInstanceOf(KeyNotFoundError);
    expect(await db.has('name')).toBe(true);
    expect(await db.delete('name')).toBe(true);
    expect(await db.delete('name')).toBe(false);
    await db.close();
  });

  it('scans by prefix, range, limit and in reverse', async () => {
    const db = await open(tmpDir('db'));
    await db.batch([
      { type: 'set', key: 'user:1', value: 'ada' },
      { type: 'set', key: 'user:2', value: 'bob' },
      { type: 'set', key: 'user:3', value: 'cy' },
      { type: 'set', key: 'users', value: 'x' },
      { type: 'set', key: 'zzz', value: 'z' },
    ]);
    const keys = async (opts: Parameters<typeof db.scan>[0]) => {
      const out: string[] = [];
      for await (const [k] of db.scan(opts)) out.push(k.toString());
      return out;
    };
    expect(await keys({ prefix: 'user:' })).toEqual(['user:1', 'user:2', 'user:3']);
    expect(await keys({ prefix: 'user:', reverse: true, limit: 2 })).toEqual(['user:3', 'user:2']);
    expect(await keys({ start: 'user:2', end: 'zzz' })).toEqual(['user:2', 'user:3', 'users']);
    expect(await keys({ prefix: 'user:', start: 'user:2' })).toEqual(['user:2', 'user:3']);
    expect(await keys({})).toHaveLength(5);
    const prefix = Buffer.from('user:');
    expect(await keys({ prefix })).toEqual(['user:1', 'user:2', 'user:3']);
    expect(prefix.toString()).toBe('user:');
    await db.close();
  });

  it('remembers its engine and refuses another', async () => {
    const dir = tmpDir('db');
    const db = await open(dir);
    expect(db.engine.name).toBe('cask');
    await db.close();
    await expect(open(dir, { engine: 'lmdb' })).rejects.toBeInstanceOf(IncompatibleError);
    const again = await open(dir);
    expect(again.engine.name).toBe('cask');
    await again.close();
  });
});
