// One command's reply is bounded (limits.ts, REPLY_BYTES_MAX): MGET, KEYS and EXEC that would
// gather more than the limit answer an error, having built nothing, and the server goes on. MGET
// of 150 keys naming one 32 MiB value made the server hold 5 GB before (found from outside); a
// few clients doing that at once would have run it out of memory. The limit is lowered here.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startServer } from './support.js';

/** REPLY_BYTES: the lowered limit; VALUE_BYTES: a value, a quarter of it. */
const REPLY_BYTES = 1024 * 1024;
const VALUE_BYTES = REPLY_BYTES / 4;

let r: Running;
let c: Redis;
beforeAll(async () => {
  r = await startServer({ limits: { replyBytes: REPLY_BYTES } });
  c = new Redis({ port: r.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  await c.set('big', 'x'.repeat(VALUE_BYTES));
});
afterAll(async () => {
  c.disconnect();
  await r.stop();
});

describe('the reply limit', () => {
  it('MGET answers within the limit and refuses past it', async () => {
    const within = await c.mget('big', 'big', 'big', 'missing', 'big');
    expect(within.map((v) => v?.length ?? null)).toEqual([
      VALUE_BYTES,
      VALUE_BYTES,
      VALUE_BYTES,
      null,
      VALUE_BYTES,
    ]);
    await expect(c.mget('big', 'big', 'big', 'big', 'big')).rejects.toThrow(
      /^ERR reply too large: the values asked for pass 1048576 bytes; ask for fewer keys at a time$/,
    );
    // The connection and the server go on.
    expect(await c.get('big')).toHaveLength(VALUE_BYTES);
  });

  it('EXEC whose replies pass the limit runs nothing', async () => {
    await c.set('counter', '0');
    const results = await c
      .multi()
      .incr('counter')
      .get('big')
      .get('big')
      .get('big')
      .get('big')
      .get('big')
      .exec()
      .catch((err: Error) => err);
    expect(results).toBeInstanceOf(Error);
    expect(String(results)).toMatch(/reply too large: the replies of the queued commands pass 1048576 bytes/);
    expect(await c.get('counter')).toBe('0');
    // Within the limit, it runs.
    const ok = await c.multi().incr('counter').get('big').exec();
    expect(ok?.[0]).toEqual([null, 1]);
  });

  it('TXN.CAS whose gets pass the limit writes nothing', async () => {
    // Each get returns its own copy of the value: 10 000 gets of one large value made one
    // request hold that many copies (found from outside, over HTTP and RESP alike).
    await c.set('cas:n', '0');
    const gets = (n: number) => Array.from({ length: n }, () => ['GET', 'big']).flat();
    await expect(c.call('TXN.CAS', '0', 'THEN', '6', 'SET', 'cas:n', '1', ...gets(5))).rejects.toThrow(
      /gets return pass 1048576 bytes .*get fewer keys at a time/,
    );
    expect(await c.get('cas:n')).toBe('0');
    const ok = (await c.call('TXN.CAS', '0', 'THEN', '4', 'SET', 'cas:n', '1', ...gets(3))) as unknown[];
    expect(ok[0]).toBe(1);
    expect(await c.get('cas:n')).toBe('1');
  });

  it('KEYS refuses once the keys it matched pass the limit; SCAN still lists them', async () => {
    const keyBytes = 32 * 1024;
    const names = Array.from(
      { length: 40 },
      (_, i) => `${String(i).padStart(4, '0')}${'k'.repeat(keyBytes - 4)}`,
    );
    for (const name of names) await c.set(name, 'v');
    await expect(c.keys('*')).rejects.toThrow(
      /reply too large: the keys matched pass 1048576 bytes; use SCAN/,
    );
    expect(await c.keys('000*')).toHaveLength(10);
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'COUNT', 10);
      for (const k of keys) seen.add(k);
      cursor = next;
    } while (cursor !== '0');
    expect(names.every((n) => seen.has(n))).toBe(true);
  });

  it('HRANDFIELD with a negative count and HMGET naming a field many times are bounded', async () => {
    // 8 fields of 8 KB: the hash is small, but its fields repeated can pass the limit.
    const fields: string[] = [];
    for (let i = 0; i < 8; i++) fields.push(`f${i}`, 'v'.repeat(8000));
    await c.hset('rh', ...fields);
    const pick = (count: number, ...more: string[]) => c.call('hrandfield', 'rh', String(count), ...more);
    await expect(pick(-150, 'WITHVALUES')).rejects.toThrow(
      /^ERR reply too large: the fields picked pass 1048576 bytes; ask for a smaller count$/,
    );
    expect(await pick(-100, 'WITHVALUES')).toHaveLength(200);
    expect(await pick(-150)).toHaveLength(150);
    await expect(c.hmget('rh', ...Array<string>(150).fill('f0'))).rejects.toThrow(
      /^ERR reply too large: the values asked for pass 1048576 bytes; ask for fewer fields at a time$/,
    );
    expect(await c.hmget('rh', ...Array<string>(100).fill('f0'))).toHaveLength(100);
  });

  it('redis.call MGET inside a script is bounded too', async () => {
    await expect(c.eval("return #redis.call('MGET', 'big', 'big', 'big', 'big', 'big')", 0)).rejects.toThrow(
      /reply too large/,
    );
    expect(await c.eval("return #redis.call('MGET', 'big', 'big')", 0)).toBe(2);
  });
});
