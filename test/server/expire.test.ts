// Key expiry over RESP, through real clients against a server on loopback: SET's expiry
// options, SETEX/PSETEX, GETEX, GETDEL, the EXPIRE family with NX/XX/GT/LT, TTL/PTTL,
// EXPIRETIME/PEXPIRETIME, PERSIST, and which commands keep or clear a TTL (Redis 7 semantics).
// Expiry uses the server's real clock: short TTLs are observed by polling with a deadline.
import type { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIoredis, type Running, startServer } from './support.js';

/** POLL_DEADLINE_MS, POLL_INTERVAL_MS: how long and how often to wait for a key to expire. */
const POLL_DEADLINE_MS = 5000;
const POLL_INTERVAL_MS = 5;

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

/** expiresSoon polls until `key` no longer exists, failing after POLL_DEADLINE_MS. */
async function waitGone(key: string): Promise<void> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  while ((await io.exists(key)) === 1) {
    if (Date.now() > deadline) throw new Error(`${key} did not expire within ${POLL_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

describe('RESP expiry', () => {
  it('SET EX/PX give a TTL that TTL and PTTL report; -1 and -2 otherwise', async () => {
    expect(await io.set('t:ex', 'v', 'EX', 100)).toBe('OK');
    expect(await io.ttl('t:ex')).toBe(100);
    const pttl = await io.pttl('t:ex');
    expect(pttl).toBeGreaterThan(99_000);
    expect(pttl).toBeLessThanOrEqual(100_000);
    expect(await io.set('t:plain', 'v')).toBe('OK');
    expect(await io.ttl('t:plain')).toBe(-1);
    expect(await io.pttl('t:plain')).toBe(-1);
    expect(await io.ttl('t:missing')).toBe(-2);
    expect(await io.pttl('t:missing')).toBe(-2);
    expect(await io.call('expiretime', 't:missing')).toBe(-2);
    expect(await io.call('expiretime', 't:plain')).toBe(-1);
  });

  it('a PX key disappears for GET, EXISTS, KEYS, SCAN and DBSIZE once it expires', async () => {
    await io.flushdb();
    await io.set('t:keep', 'v');
    expect(await io.set('t:px', 'v', 'PX', 30)).toBe('OK');
    expect(await io.get('t:px')).toBe('v');
    await waitGone('t:px');
    expect(await io.get('t:px')).toBeNull();
    expect(await io.ttl('t:px')).toBe(-2);
    expect(await io.keys('*')).toEqual(['t:keep']);
    expect((await io.scan('0'))[1]).toEqual(['t:keep']);
    expect(await io.dbsize()).toBe(1);
  });

  it('SET EXAT/PXAT take absolute times; a time in the past leaves no key', async () => {
    const inAMinute = Math.floor(Date.now() / 1000) + 60;
    expect(await io.call('set', 't:exat', 'v', 'EXAT', inAMinute)).toBe('OK');
    expect(await io.call('expiretime', 't:exat')).toBe(inAMinute);
    expect(await io.call('pexpiretime', 't:exat')).toBe(inAMinute * 1000);
    const pxat = Date.now() + 60_000;
    expect(await io.call('set', 't:pxat', 'v', 'PXAT', pxat)).toBe('OK');
    expect(await io.call('pexpiretime', 't:pxat')).toBe(pxat);
    await io.set('t:past', 'old');
    expect(await io.call('set', 't:past', 'v', 'PXAT', 1)).toBe('OK');
    expect(await io.exists('t:past')).toBe(0);
    expect(await io.call('set', 't:past2', 'v', 'EXAT', 1)).toBe('OK');
    expect(await io.exists('t:past2')).toBe(0);
  });

  it('SET rejects bad expire times and option combinations with Redis texts', async () => {
    for (const bad of ['0', '-5']) {
      await expect(io.call('set', 'k', 'v', 'EX', bad)).rejects.toThrow(
        "ERR invalid expire time in 'set' command",
      );
      await expect(io.call('set', 'k', 'v', 'PX', bad)).rejects.toThrow(
        "ERR invalid expire time in 'set' command",
      );
      await expect(io.call('set', 'k', 'v', 'EXAT', bad)).rejects.toThrow(
        "ERR invalid expire time in 'set' command",
      );
    }
    await expect(io.call('set', 'k', 'v', 'EX', '9223372036854775807')).rejects.toThrow(
      "ERR invalid expire time in 'set' command",
    );
    await expect(io.call('set', 'k', 'v', 'EX', 'ten')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(io.call('set', 'k', 'v', 'EX')).rejects.toThrow('ERR syntax error');
    await expect(io.call('set', 'k', 'v', 'EX', '10', 'PX', '10')).rejects.toThrow('ERR syntax error');
    await expect(io.call('set', 'k', 'v', 'EX', '10', 'KEEPTTL')).rejects.toThrow('ERR syntax error');
    await expect(io.call('set', 'k', 'v', 'KEEPTTL', 'EX', '10')).rejects.toThrow('ERR syntax error');
    await expect(io.call('set', 'k', 'v', 'NX', 'XX')).rejects.toThrow('ERR syntax error');
    await expect(io.call('set', 'k', 'v', 'PERSIST')).rejects.toThrow('ERR syntax error');
    expect(await io.exists('k')).toBe(0);
  });

  it('SET clears a TTL unless KEEPTTL; NX, XX and GET combine with expiry', async () => {
    await io.set('t:s', 'a', 'EX', 100);
    expect(await io.call('set', 't:s', 'b', 'KEEPTTL')).toBe('OK');
    expect(await io.ttl('t:s')).toBe(100);
    expect(await io.get('t:s')).toBe('b');
    expect(await io.set('t:s', 'c')).toBe('OK');
    expect(await io.ttl('t:s')).toBe(-1);
    expect(await io.call('set', 't:s', 'd', 'NX', 'EX', '50')).toBeNull();
    expect(await io.ttl('t:s')).toBe(-1);
    expect(await io.call('set', 't:s', 'd', 'XX', 'EX', '50')).toBe('OK');
    expect(await io.ttl('t:s')).toBe(50);
    expect(await io.call('set', 't:s', 'e', 'GET', 'PX', '70000')).toBe('d');
    expect(await io.ttl('t:s')).toBe(70);
    expect(await io.call('set', 't:new', 'x', 'NX', 'GET', 'EX', '20')).toBeNull();
    expect(await io.ttl('t:new')).toBe(20);
    expect(await io.call('set', 't:none', 'x', 'XX', 'EX', '20')).toBeNull();
    expect(await io.exists('t:none')).toBe(0);
  });

  it('SETEX and PSETEX set value and TTL; bad times use their own command names', async () => {
    expect(await io.setex('t:setex', 30, 'v')).toBe('OK');
    expect(await io.ttl('t:setex')).toBe(30);
    expect(await io.psetex('t:psetex', 45_000, 'v')).toBe('OK');
    expect(await io.ttl('t:psetex')).toBe(45);
    await expect(io.call('setex', 'k', '0', 'v')).rejects.toThrow(
      "ERR invalid expire time in 'setex' command",
    );
    await expect(io.call('setex', 'k', '-1', 'v')).rejects.toThrow(
      "ERR invalid expire time in 'setex' command",
    );
    await expect(io.call('psetex', 'k', '0', 'v')).rejects.toThrow(
      "ERR invalid expire time in 'psetex' command",
    );
    await expect(io.call('setex', 'k', 'x', 'v')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(io.call('setex', 'k', '10')).rejects.toThrow(
      "ERR wrong number of arguments for 'setex' command",
    );
    expect(await io.exists('k')).toBe(0);
  });

  it('GETEX sets, replaces or removes a TTL and returns the value; GETDEL deletes', async () => {
    await io.set('t:gx', 'v');
    expect(await io.call('getex', 't:gx')).toBe('v');
    expect(await io.ttl('t:gx')).toBe(-1);
    expect(await io.call('getex', 't:gx', 'EX', '100')).toBe('v');
    expect(await io.ttl('t:gx')).toBe(100);
    expect(await io.call('getex', 't:gx', 'PX', '200000')).toBe('v');
    expect(await io.ttl('t:gx')).toBe(200);
    expect(await io.call('getex', 't:gx', 'PERSIST')).toBe('v');
    expect(await io.ttl('t:gx')).toBe(-1);
    const exat = Math.floor(Date.now() / 1000) + 300;
    expect(await io.call('getex', 't:gx', 'EXAT', String(exat))).toBe('v');
    expect(await io.call('expiretime', 't:gx')).toBe(exat);
    expect(await io.call('getex', 't:gx', 'PXAT', '1')).toBe('v');
    expect(await io.exists('t:gx')).toBe(0);
    expect(await io.call('getex', 't:missing')).toBeNull();
    expect(await io.call('getex', 't:missing', 'EX', '10')).toBeNull();
    expect(await io.exists('t:missing')).toBe(0);
    await expect(io.call('getex', 'k', 'NX')).rejects.toThrow('ERR syntax error');
    await expect(io.call('getex', 'k', 'KEEPTTL')).rejects.toThrow('ERR syntax error');
    await expect(io.call('getex', 'k', 'EX', '1', 'PERSIST')).rejects.toThrow('ERR syntax error');
    // The expire value is checked on an existing string only, as Redis (a missing key: nil).
    await io.set('t:gx2', 'v');
    await expect(io.call('getex', 't:gx2', 'EX', '0')).rejects.toThrow(
      "ERR invalid expire time in 'getex' command",
    );
    expect(await io.call('getex', 't:missing', 'EX', '0')).toBeNull();
    await io.set('t:gd', 'v', 'EX', 100);
    expect(await io.getdel('t:gd')).toBe('v');
    expect(await io.exists('t:gd')).toBe(0);
    expect(await io.getdel('t:gd')).toBeNull();
  });

  it('EXPIRE family: set, condition with NX/XX/GT/LT, delete on a past time, 0 on a missing key', async () => {
    await io.set('t:e', 'v');
    expect(await io.expire('t:missing', 10)).toBe(0);
    expect(await io.call('expire', 't:e', '100', 'XX')).toBe(0);
    expect(await io.ttl('t:e')).toBe(-1);
    expect(await io.call('expire', 't:e', '100', 'GT')).toBe(0); // no TTL counts as infinite
    expect(await io.call('expire', 't:e', '100', 'LT')).toBe(1);
    expect(await io.ttl('t:e')).toBe(100);
    expect(await io.call('expire', 't:e', '50', 'NX')).toBe(0);
    expect(await io.call('expire', 't:e', '200', 'XX')).toBe(1);
    expect(await io.ttl('t:e')).toBe(200);
    expect(await io.call('expire', 't:e', '100', 'GT')).toBe(0);
    expect(await io.call('expire', 't:e', '300', 'GT')).toBe(1);
    expect(await io.call('expire', 't:e', '400', 'LT')).toBe(0);
    expect(await io.call('expire', 't:e', '150', 'LT')).toBe(1);
    expect(await io.ttl('t:e')).toBe(150);
    expect(await io.get('t:e')).toBe('v');
    expect(await io.pexpire('t:e', 120_000)).toBe(1);
    expect(await io.ttl('t:e')).toBe(120);
    const at = Math.floor(Date.now() / 1000) + 500;
    expect(await io.expireat('t:e', at)).toBe(1);
    expect(await io.call('expiretime', 't:e')).toBe(at);
    expect(await io.pexpireat('t:e', at * 1000 + 1)).toBe(1);
    expect(await io.call('pexpiretime', 't:e')).toBe(at * 1000 + 1);
    await io.set('t:neg', 'v');
    expect(await io.expire('t:neg', -1)).toBe(1);
    expect(await io.exists('t:neg')).toBe(0);
    await io.set('t:zero', 'v');
    expect(await io.pexpire('t:zero', 0)).toBe(1);
    expect(await io.exists('t:zero')).toBe(0);
    await io.set('t:old', 'v');
    expect(await io.expireat('t:old', 1)).toBe(1);
    expect(await io.exists('t:old')).toBe(0);
  });

  it('EXPIRE errors use Redis texts', async () => {
    await io.set('t:err', 'v');
    await expect(io.call('expire', 't:err', '10', 'NX', 'XX')).rejects.toThrow(
      'ERR NX and XX, GT or LT options at the same time are not compatible',
    );
    await expect(io.call('expire', 't:err', '10', 'GT', 'LT')).rejects.toThrow(
      'ERR GT and LT options at the same time are not compatible',
    );
    await expect(io.call('expire', 't:err', '10', 'FOO')).rejects.toThrow('ERR Unsupported option FOO');
    await expect(io.call('expire', 't:err', 'x')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(io.call('expire', 't:err', '9223372036854775807')).rejects.toThrow(
      "ERR invalid expire time in 'expire' command",
    );
    await expect(io.call('pexpire', 't:err', '9223372036854775807')).rejects.toThrow(
      "ERR invalid expire time in 'pexpire' command",
    );
    await expect(io.call('expire', 't:err')).rejects.toThrow(
      "ERR wrong number of arguments for 'expire' command",
    );
    expect(await io.ttl('t:err')).toBe(-1);
  });

  it('PERSIST removes a TTL: 1 when there was one, 0 otherwise', async () => {
    await io.set('t:p', 'v', 'EX', 100);
    expect(await io.persist('t:p')).toBe(1);
    expect(await io.ttl('t:p')).toBe(-1);
    expect(await io.persist('t:p')).toBe(0);
    expect(await io.persist('t:missing')).toBe(0);
    expect(await io.get('t:p')).toBe('v');
  });

  it('INCR and APPEND keep the TTL; GETSET and MSET clear it', async () => {
    await io.set('t:n', '1', 'EX', 100);
    expect(await io.incr('t:n')).toBe(2);
    expect(await io.incrby('t:n', 5)).toBe(7);
    expect(await io.ttl('t:n')).toBe(100);
    expect(await io.append('t:n', '0')).toBe(2);
    expect(await io.ttl('t:n')).toBe(100);
    expect(await io.get('t:n')).toBe('70');
    expect(await io.getset('t:n', '1')).toBe('70');
    expect(await io.ttl('t:n')).toBe(-1);
    await io.set('t:m', 'v', 'EX', 100);
    await io.mset('t:m', 'w');
    expect(await io.ttl('t:m')).toBe(-1);
  });

  it('INCR on an expired key starts from nothing, and the new key has no TTL', async () => {
    await io.set('t:ni', '41', 'PX', 20);
    await waitGone('t:ni');
    expect(await io.incr('t:ni')).toBe(1);
    expect(await io.ttl('t:ni')).toBe(-1);
  });

  it('reads the TTL a pipelined write just gave, before it is durable', async () => {
    const p = io.pipeline();
    p.set('t:pipe', 'v', 'EX', 100)
      .ttl('t:pipe')
      .persist('t:pipe')
      .ttl('t:pipe')
      .expire('t:pipe', 7)
      .ttl('t:pipe');
    const results = (await p.exec())!.map(([err, value]) => (err === null ? value : err));
    expect(results).toEqual(['OK', 100, 1, -1, 1, 7]);
  });

  it('reports expires= in INFO keyspace and registers every command for COMMAND', async () => {
    await io.flushdb();
    await io.set('t:i1', 'v', 'EX', 100);
    await io.set('t:i2', 'v');
    const keyspace = /db0:keys=2,expires=1,avg_ttl=(\d+)/.exec(await io.info('keyspace'));
    // The exact mean time to expiry of the one key with a TTL: 100 s, less the time since SET.
    expect(Number(keyspace?.[1])).toBeGreaterThan(95_000);
    expect(Number(keyspace?.[1])).toBeLessThanOrEqual(100_000);
    // expired_keys counts the keys the expiry cycle deletes.
    const expiredBefore = Number(/expired_keys:(\d+)/.exec(await io.info('stats'))?.[1]);
    await io.set('t:gone1', 'v', 'PX', 1);
    await io.set('t:gone2', 'v', 'PX', 1);
    const t0 = Date.now();
    let expired = expiredBefore;
    while (expired < expiredBefore + 2 && Date.now() - t0 < 5_000) {
      await new Promise((r) => setTimeout(r, 50));
      expired = Number(/expired_keys:(\d+)/.exec(await io.info('stats'))?.[1]);
    }
    expect(expired).toBe(expiredBefore + 2);
    const infos = (await io.command(
      'INFO',
      'setex',
      'psetex',
      'getex',
      'getdel',
      'expire',
      'pexpire',
      'expireat',
      'pexpireat',
      'ttl',
      'pttl',
      'expiretime',
      'pexpiretime',
      'persist',
    )) as unknown[][];
    expect(infos.map((i) => [i[0], i[1]])).toEqual([
      ['setex', 4],
      ['psetex', 4],
      ['getex', -2],
      ['getdel', 2],
      ['expire', -3],
      ['pexpire', -3],
      ['expireat', -3],
      ['pexpireat', -3],
      ['ttl', 2],
      ['pttl', 2],
      ['expiretime', 2],
      ['pexpiretime', 2],
      ['persist', 2],
    ]);
  });
});

describe('RESP expiry via node-redis (RESP3)', () => {
  it('round-trips SET with EX, TTL, EXPIRE and PERSIST', async () => {
    const client = createClient({ socket: { port: r.port, host: '127.0.0.1' }, RESP: 3 });
    await client.connect();
    try {
      expect(await client.set('nr:t', 'v', { EX: 60 })).toBe('OK');
      expect(await client.ttl('nr:t')).toBe(60);
      expect(await client.expire('nr:t', 90, 'GT')).toBe(1);
      expect(await client.pTTL('nr:t')).toBeGreaterThan(89_000);
      expect(await client.persist('nr:t')).toBe(1);
      expect(await client.ttl('nr:t')).toBe(-1);
      expect(await client.getEx('nr:t', { PX: 5000 })).toBe('v');
      expect(await client.ttl('nr:t')).toBe(5);
    } finally {
      await client.quit();
    }
  });
});
