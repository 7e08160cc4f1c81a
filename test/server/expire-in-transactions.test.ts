// Expiry inside transactions over RESP (issue 15, part 1): MULTI/EXEC and TXN.BEGIN read each
// key's expiry with its value and keep it through read-modify-write commands, as Redis does,
// and a WATCHed key that expires before EXEC aborts the EXEC (Redis 7). Real clients on loopback,
// the server's real clock; a differential run against redis-server is in redis-diff-expire.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIoredis, type Running, startServer } from './support.js';

/** LIMITER_HITS, LIMITER_EVERY_MS: the fixed-window limiter's requests, as in the issue. */
const LIMITER_HITS = 8;
const LIMITER_EVERY_MS = 300;

let r: Running;
let io: Redis;

beforeAll(async () => {
  r = await startServer();
  io = await connectIoredis(r.port);
});

afterAll(async () => {
  io.disconnect();
  await r.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('expiry inside MULTI/EXEC and TXN.BEGIN', () => {
  it('PTTL and TTL inside MULTI see the key’s expiry', async () => {
    await io.set('m:pttl', '1', 'PX', 60_000);
    const replies = (await io.multi().pttl('m:pttl').ttl('m:pttl').exec()) as [unknown, number][];
    const pttl = replies[0]![1];
    const ttl = replies[1]![1];
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(ttl).toBe(60);
  });

  it('INCR, APPEND and SET KEEPTTL inside MULTI keep the TTL', async () => {
    await io.set('m:incr', '1', 'EX', 100);
    await io.multi().incr('m:incr').exec();
    expect(await io.ttl('m:incr')).toBe(100);
    await io.multi().append('m:incr', '0').exec();
    expect(await io.ttl('m:incr')).toBe(100);
    await io.multi().set('m:incr', '7', 'KEEPTTL').exec();
    expect(await io.ttl('m:incr')).toBe(100);
    expect(await io.get('m:incr')).toBe('7');
    // SET without KEEPTTL clears it, inside as outside.
    await io.multi().set('m:incr', '8').exec();
    expect(await io.ttl('m:incr')).toBe(-1);
  });

  it('EXPIRE GT/LT/NX/XX inside TXN.BEGIN compare with the key’s expiry', async () => {
    await io.set('t:gt', 'v', 'EX', 100);
    expect(await io.call('TXN.BEGIN')).toBe('OK');
    expect(await io.call('EXPIRE', 't:gt', '200', 'GT')).toBe(1);
    expect(await io.call('EXPIRE', 't:gt', '50', 'GT')).toBe(0);
    expect(await io.call('EXPIRE', 't:gt', '300', 'NX')).toBe(0);
    expect(await io.call('EXPIRE', 't:gt', '150', 'XX')).toBe(1);
    expect(await io.call('TTL', 't:gt')).toBe(150);
    await io.call('TXN.COMMIT');
    expect(await io.ttl('t:gt')).toBe(150);
  });

  it('a fixed-window limiter (MULTI; INCR; EXPIRE 1 NX; EXEC) resets every window', async () => {
    const counts: number[] = [];
    for (let i = 0; i < LIMITER_HITS; i++) {
      const replies = (await io.multi().incr('m:win').expire('m:win', 1, 'NX').exec()) as [unknown, number][];
      counts.push(replies[0]![1]);
      await sleep(LIMITER_EVERY_MS);
    }
    // Redis counts 1,2,3,4,1,2,3,4: a one-second window holds at most four hits 300 ms apart
    // (fewer on a slow machine), and the count starts over once the window has expired.
    expect(Math.max(...counts)).toBeLessThanOrEqual(4);
    expect(counts.slice(1)).toContain(1);
  });

  it('a WATCHed key that expires before EXEC aborts the EXEC; one already gone does not', async () => {
    const watcher = await connectIoredis(r.port);
    try {
      await watcher.set('w:ttl', 'v', 'PX', 150);
      await watcher.watch('w:ttl');
      await sleep(300);
      expect(await watcher.exists('w:ttl')).toBe(0);
      expect(await watcher.multi().set('w:other', '1').exec()).toBeNull();
      expect(await watcher.exists('w:other')).toBe(0);
      // Watched after it expired: nothing changes before EXEC, which runs.
      await watcher.watch('w:ttl');
      expect(await watcher.multi().set('w:other', '2').exec()).toEqual([[null, 'OK']]);
      // Alive with a TTL that does not pass before EXEC: EXEC runs.
      await watcher.set('w:long', 'v', 'EX', 100);
      await watcher.watch('w:long');
      expect(await watcher.multi().set('w:other', '3').exec()).toEqual([[null, 'OK']]);
    } finally {
      watcher.disconnect();
    }
  });
});
