// Hashes over RESP, beyond the differential test (redis-diff-hashes.test.ts): durability across a
// restart, TXN.BEGIN/COMMIT, WATCH, Lua's redis.call, keyspace notifications as Redis emits them,
// HSCAN paging over a large hash, the size limit, and the embedded API and HTTP refusing to hand
// a hash out as a string.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../src/server/http/app.js';
import { createMetrics } from '../../src/server/metrics.js';
import { WrongTypeError } from '../../src/storage/errors.js';
import { HASH_BYTES_MAX } from '../../src/storage/hash-codec.js';
import { ValueType } from '../../src/storage/value-type.js';
import { connectIoredis, type Running, startServer } from './support.js';

let r: Running;
let c: Redis;

beforeAll(async () => {
  r = await startServer();
  c = await connectIoredis(r.port);
});

afterAll(async () => {
  c.disconnect();
  await r.stop();
});

describe('hashes', () => {
  it('are durable: every field, the type and the TTL survive a restart', async () => {
    const own = await startServer();
    let client = await connectIoredis(own.port);
    await client.hset('user:1', { name: 'ada', born: '1815' });
    await client.hincrby('user:1', 'visits', 3);
    await client.expire('user:1', 1000);
    await client.set('plain', 'v');
    client.disconnect();
    await own.stop();
    const again = await startServer({ dir: own.dir });
    client = await connectIoredis(again.port);
    try {
      expect(await client.hgetall('user:1')).toEqual({ born: '1815', name: 'ada', visits: '3' });
      expect(await client.type('user:1')).toBe('hash');
      expect(await client.ttl('user:1')).toBeGreaterThan(990);
      expect(await client.get('plain')).toBe('v');
    } finally {
      client.disconnect();
      await again.stop();
    }
  });

  it('work inside TXN.BEGIN / TXN.COMMIT, reading the transaction’s own writes', async () => {
    await c.del('tx:h');
    await c.hset('tx:h', 'a', '1');
    await c.call('TXN.BEGIN');
    expect(await c.hset('tx:h', 'b', '2')).toBe(1);
    expect(await c.hincrby('tx:h', 'a', 10)).toBe(11);
    expect(await c.hgetall('tx:h')).toEqual({ a: '11', b: '2' });
    await expect(c.get('tx:h')).rejects.toThrow('WRONGTYPE');
    // Another client sees nothing of it before the commit.
    const other = await connectIoredis(r.port);
    try {
      expect(await other.hgetall('tx:h')).toEqual({ a: '1' });
      await c.call('TXN.COMMIT');
      expect(await other.hgetall('tx:h')).toEqual({ a: '11', b: '2' });
      expect(await other.type('tx:h')).toBe('hash');
    } finally {
      other.disconnect();
    }
  });

  it('abort a WATCHed EXEC when another client changes the hash', async () => {
    await c.del('w:h');
    await c.hset('w:h', 'n', '1');
    await c.watch('w:h');
    const other = await connectIoredis(r.port);
    try {
      await other.hset('w:h', 'n', '2');
    } finally {
      other.disconnect();
    }
    expect(await c.multi().hset('w:h', 'n', '3').exec()).toBeNull();
    expect(await c.hget('w:h', 'n')).toBe('2');
  });

  it("work from Lua's redis.call, with WRONGTYPE as an error reply", async () => {
    await c.del('lua:h', 'lua:s');
    await c.set('lua:s', 'v');
    const script = "redis.call('HSET', KEYS[1], 'f', ARGV[1]); return redis.call('HGETALL', KEYS[1])";
    expect(await c.eval(script, 1, 'lua:h', 'x')).toEqual(['f', 'x']);
    expect(await c.eval("return redis.call('HINCRBYFLOAT', KEYS[1], 'n', '1.5')", 1, 'lua:h')).toBe('1.5');
    expect(await c.type('lua:h')).toBe('hash');
    await expect(c.eval("return redis.call('HGET', KEYS[1], 'f')", 1, 'lua:s')).rejects.toThrow('WRONGTYPE');
    expect(await c.eval("local ok = redis.pcall('GET', KEYS[1]); return ok['err']", 1, 'lua:h')).toBe(
      'WRONGTYPE Operation against a key holding the wrong kind of value',
    );
  });

  it('publish hset, hdel, hincrby and hincrbyfloat events as Redis does', async () => {
    const admin = await connectIoredis(r.port);
    const sub = await connectIoredis(r.port);
    const got: string[] = [];
    try {
      await admin.config('SET', 'notify-keyspace-events', 'KEA');
      sub.on('pmessage', (_p: string, channel: string, message: string) => got.push(`${channel} ${message}`));
      await sub.psubscribe('__keyevent@0__:*');
      await admin.hset('ev:h', 'a', '1', 'b', '2');
      await admin.hsetnx('ev:h', 'a', '9'); // not written: no event
      await admin.hsetnx('ev:h', 'c', '3');
      await admin.hincrby('ev:h', 'a', 1);
      await admin.hincrbyfloat('ev:h', 'a', '0.5');
      await admin.hdel('ev:h', 'zz'); // nothing deleted: no event
      await admin.hdel('ev:h', 'a', 'b');
      await admin.hdel('ev:h', 'c'); // the last field: the key goes too
      const deadline = Date.now() + 5000;
      while (got.length < 7 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(got).toEqual([
        '__keyevent@0__:hset ev:h',
        '__keyevent@0__:hset ev:h',
        '__keyevent@0__:hincrby ev:h',
        '__keyevent@0__:hincrbyfloat ev:h',
        '__keyevent@0__:hdel ev:h',
        '__keyevent@0__:hdel ev:h',
        '__keyevent@0__:del ev:h',
      ]);
    } finally {
      await admin.config('SET', 'notify-keyspace-events', '');
      admin.disconnect();
      sub.disconnect();
    }
  });

  it('HSCAN pages a large hash in field order, every field exactly once, with COUNT and MATCH', async () => {
    await c.del('big');
    const fields: string[] = [];
    for (let i = 0; i < 500; i++) fields.push(`f${String(i).padStart(3, '0')}`);
    await c.hset('big', Object.fromEntries(fields.map((f) => [f, f.toUpperCase()])));
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const [next, items] = (await c.hscan('big', cursor, 'COUNT', 37)) as [string, string[]];
      for (let i = 0; i < items.length; i += 2) {
        seen.push(items[i]!);
        if (items[i] !== 'zzz-new') expect(items[i + 1]).toBe(items[i]!.toUpperCase());
      }
      cursor = next;
      pages++;
      // Written between pages: fields that stay are still returned once.
      if (pages === 3) await c.hset('big', 'zzz-new', 'x');
    } while (cursor !== '0');
    expect(seen.filter((f) => f !== 'zzz-new')).toEqual(fields);
    expect(pages).toBeGreaterThan(10);
    const [, matched] = (await c.hscan('big', '0', 'MATCH', 'f00*', 'COUNT', 1000)) as [string, string[]];
    expect(matched.filter((_, i) => i % 2 === 0)).toEqual(fields.slice(0, 10));
    await expect(c.hscan('big', '123456789')).rejects.toThrow('ERR invalid cursor');
  });

  it('HRANDFIELD refuses a negative count past HRANDFIELD_PICKS_MAX instead of running out of memory', async () => {
    await c.hset('hr', { a: '1', b: '2' });
    // Once: the server built a 100-million-pick reply whole and died (heap out of memory).
    await expect(c.call('HRANDFIELD', 'hr', '-100000000')).rejects.toThrow(/at most 1000000 fields/);
    await expect(c.call('HRANDFIELD', 'hr', '-5000000000', 'WITHVALUES')).rejects.toThrow(/out of range/);
    const picks = (await c.call('HRANDFIELD', 'hr', '-1000000')) as string[];
    expect(picks.length).toBe(1_000_000);
    expect(new Set(picks)).toEqual(new Set(['a', 'b']));
    expect(await c.ping()).toBe('PONG');
  });

  it('refuses a hash past HASH_BYTES_MAX and keeps what it had', async () => {
    await c.del('huge');
    await c.hset('huge', 'a', 'x'.repeat(1024));
    await expect(c.hset('huge', 'b', 'y'.repeat(HASH_BYTES_MAX))).rejects.toThrow('HASH_BYTES_MAX');
    expect(await c.hkeys('huge')).toEqual(['a']);
  });

  it('are refused by the embedded API and the HTTP API as strings (WRONG_TYPE), and skipped by db.scan', async () => {
    await c.del('api:h');
    await c.hset('api:h', 'f', 'v');
    await c.set('api:s', 'v');
    await expect(r.db.get('api:h')).rejects.toThrow(WrongTypeError);
    await expect(r.db.getString('api:h')).rejects.toThrow('WRONGTYPE');
    await expect(r.db.getWithExpiry('api:h')).rejects.toThrow(WrongTypeError);
    const keys: string[] = [];
    for await (const [k] of r.db.scan({ prefix: 'api:' })) keys.push(String(k));
    expect(keys).toEqual(['api:s']);
    // So do a transaction's and a snapshot's reads; `has` holds for any type.
    const tx = await r.db.begin();
    await expect(tx.get('api:h')).rejects.toThrow(WrongTypeError);
    expect(() => tx.getSync('api:h')).toThrow(WrongTypeError);
    expect(await tx.has('api:h')).toBe(true);
    expect(String(await tx.get('api:s'))).toBe('v');
    tx.rollback();
    const snap = await r.db.snapshot();
    await expect(snap.get('api:h')).rejects.toThrow(WrongTypeError);
    snap.release();
    // Compare-and-swap reads strings: a value comparison or a get of a hash is refused; exists
    // holds for any type, and a set replaces the hash with a string.
    await expect(
      r.db.compareAndSwap({ compare: [{ key: 'api:h', target: 'value', op: '=', value: 'x' }], success: [] }),
    ).rejects.toThrow(WrongTypeError);
    await expect(
      r.db.compareAndSwap({ compare: [], success: [{ type: 'get', key: 'api:h' }] }),
    ).rejects.toThrow(WrongTypeError);
    expect(
      (
        await r.db.compareAndSwap({
          compare: [{ key: 'api:h', target: 'exists', exists: true }],
          success: [],
        })
      ).succeeded,
    ).toBe(true);
    // expire keeps the type (the value is rewritten with it).
    expect(await r.db.expire('api:h', { ttlMs: 100_000 })).toBe(true);
    expect(await c.type('api:h')).toBe('hash');
    expect(r.db.pipeline.readLatest(Buffer.from('api:h')).valueType).toBe(ValueType.HASH);
    const app = createHttpApp({
      db: r.db,
      metrics: createMetrics(r.db, { defaultMetrics: false }),
      version: 'test',
    });
    await app.ready();
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/kv/api:h' });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ error: { code: 'WRONG_TYPE' } });
    } finally {
      await app.close();
    }
  });
});
