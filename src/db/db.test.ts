import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { ManualClock } from '../io/manual-clock.js';
import { identityPath, RAFT_DIR } from '../replica/identity.js';
import {
  ClusterMemberDirectoryError,
  IncompatibleError,
  InvalidArgumentError,
  KeyNotFoundError,
} from '../storage/errors.js';
import { MEMBER_IDENTITY_PATH, open } from './db.js';

describe('Db (embedded API)', () => {
  it("refuses to open a cluster member's directory for writing; reads it with readOnly", async () => {
    // A write here bypasses the cluster's log: the member's data would differ from the others'
    // for good (found from outside: `cairn set --dir` on a stopped member, then `check hash`).
    const dir = tmpDir('db');
    const db = await open(dir);
    await db.set('k', 'v');
    await db.close();
    fs.mkdirSync(path.join(dir, RAFT_DIR));
    fs.writeFileSync(identityPath(dir), '{}');
    const before = fs.readdirSync(dir).sort();
    const err = await open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterMemberDirectoryError);
    expect(err).toBeInstanceOf(IncompatibleError);
    expect((err as Error).message).toContain("is a cluster member's data directory");
    expect(fs.readdirSync(dir).sort()).toEqual(before); // no LOCK left, nothing written
    const ro = await open(dir, { readOnly: true });
    expect(await ro.getString('k')).toBe('v');
    await ro.close();
    expect(path.join(...MEMBER_IDENTITY_PATH)).toBe(path.relative(dir, identityPath(dir)));
  });

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
    expect(db.engineName).toBe('cask');
    await db.close();
    await expect(open(dir, { engine: 'lmdb' })).rejects.toBeInstanceOf(IncompatibleError);
    const again = await open(dir);
    expect(again.engineName).toBe('cask');
    await again.close();
  });
});

describe('Db expiry', () => {
  it('sets with ttlMs or expiresAt, reads ttl/expiry, expires, persists', async () => {
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const db = await open(tmpDir('db'), { clock });
    await db.set('a', '1', { ttlMs: 1000 });
    await db.set('b', '2', { expiresAt: t0 + 2000 });
    await db.set('c', '3');
    expect(await db.ttl('a')).toBe(1000);
    expect(await db.expiry('b')).toBe(t0 + 2000);
    expect(await db.ttl('c')).toBeNull();
    expect(await db.ttl('missing')).toBeUndefined();
    clock.set(t0 + 400);
    expect(await db.ttl('a')).toBe(600);
    expect(await db.expire('c', { ttlMs: 100 })).toBe(true);
    expect(await db.expire('missing', { ttlMs: 100 })).toBe(false);
    expect(await db.getString('c')).toBe('3');
    expect(await db.persist('b')).toBe(true);
    expect(await db.persist('b')).toBe(false);
    expect(await db.ttl('b')).toBeNull();
    clock.set(t0 + 1001);
    expect(await db.get('a')).toBeUndefined();
    expect(await db.has('c')).toBe(false);
    expect(await db.getString('b')).toBe('2');
    // A time already past deletes the key, as Redis's EXPIRE does.
    expect(await db.expire('b', { expiresAt: t0 })).toBe(true);
    expect(await db.has('b')).toBe(false);
    // A set without options clears an expiry.
    await db.set('d', '4', { ttlMs: 10 });
    await db.set('d', '5');
    expect(await db.ttl('d')).toBeNull();
    await db.close();
  });

  it('sets with expiry in batches and rejects bad options', async () => {
    const clock = new ManualClock();
    const db = await open(tmpDir('db'), { clock });
    await db.batch([
      { type: 'set', key: 'x', value: '1', ttlMs: 50 },
      { type: 'set', key: 'y', value: '2' },
    ]);
    expect(await db.ttl('x')).toBe(50);
    await expect(db.set('k', 'v', { ttlMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(db.set('k', 'v', { ttlMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(db.set('k', 'v', { ttlMs: 1, expiresAt: 5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(db.set('k', 'v', { expiresAt: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(db.batch([{ type: 'set', key: 'k', value: 'v', ttlMs: -5 }])).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(db.expire('x', {})).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await db.has('k')).toBe(false);
    clock.set(clock.nowMs() + 51);
    expect(await db.has('x')).toBe(false);
    expect(db.stats().keys).toBe(1);
    await db.close();
  });
});
