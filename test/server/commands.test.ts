// Round trips of every command through real clients: ioredis (RESP2) and node-redis (RESP3).
import type { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

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

describe('RESP commands via ioredis', () => {
  it('connection commands', async () => {
    expect(await io.ping()).toBe('PONG');
    expect(await io.ping('hi')).toBe('hi');
    expect(await io.echo('x y')).toBe('x y');
    expect(await io.select(0)).toBe('OK');
    await expect(io.select(1)).rejects.toThrow('ERR DB index is out of range');
    await expect(io.call('select', 'a')).rejects.toThrow('ERR value is not an integer or out of range');
    expect(await io.client('SETNAME', 'tester')).toBe('OK');
    expect(await io.client('GETNAME')).toBe('tester');
    expect(typeof (await io.client('ID'))).toBe('number');
    expect(await io.call('client', 'setinfo', 'lib-name', 'x')).toBe('OK');
    expect(String(await io.call('client', 'info'))).toContain('name=tester');
    expect(String(await io.call('client', 'list'))).toContain('lib-name=x');
    await expect(io.call('client', 'setname', 'a b')).rejects.toThrow('cannot contain spaces');
    await expect(io.call('client', 'nope')).rejects.toThrow(
      "ERR unknown subcommand 'nope'. Try CLIENT HELP.",
    );
    await expect(io.call('auth', 'x')).rejects.toThrow('without any password configured');
  });

  it('unknown commands and arity errors use Redis texts', async () => {
    await expect(io.call('foo', 'a', 'b')).rejects.toThrow(
      "ERR unknown command 'foo', with args beginning with: 'a' 'b' ",
    );
    await expect(io.call('get')).rejects.toThrow("ERR wrong number of arguments for 'get' command");
    await expect(io.call('mset', 'a')).rejects.toThrow("ERR wrong number of arguments for 'mset' command");
  });

  it('GET, SET and its options, GETSET, SETNX', async () => {
    expect(await io.set('s', 'v')).toBe('OK');
    expect(await io.get('s')).toBe('v');
    expect(await io.get('missing')).toBeNull();
    expect(await io.set('s', 'w', 'NX')).toBeNull();
    expect(await io.set('s2', 'w', 'XX')).toBeNull();
    expect(await io.set('s', 'w', 'XX')).toBe('OK');
    expect(await io.set('s', 'z', 'GET')).toBe('w');
    expect(await io.call('set', 's', 'q', 'NX', 'GET')).toBe('z');
    expect(await io.call('set', 's', 'k', 'KEEPTTL')).toBe('OK');
    expect(await io.set('s-ex', 'v', 'EX', 10)).toBe('OK');
    expect(await io.ttl('s-ex')).toBe(10);
    await expect(io.call('set', 's', 'v', 'NX', 'XX')).rejects.toThrow('ERR syntax error');
    expect(await io.getset('s', 'n')).toBe('k');
    expect(await io.setnx('s', 'x')).toBe(0);
    expect(await io.setnx('fresh', 'x')).toBe(1);
    const big = Buffer.alloc(100_000, 7);
    await io.set(Buffer.from([0, 1, 255]), big);
    expect(await io.getBuffer(Buffer.from([0, 1, 255]))).toEqual(big);
  });

  it('MGET, MSET, MSETNX', async () => {
    expect(await io.mset('m1', '1', 'm2', '2')).toBe('OK');
    expect(await io.mget('m1', 'nope', 'm2')).toEqual(['1', null, '2']);
    expect(await io.msetnx('m2', 'x', 'm3', 'y')).toBe(0);
    expect(await io.exists('m3')).toBe(0);
    expect(await io.msetnx('m3', 'x', 'm4', 'y')).toBe(1);
    expect(await io.mget('m3', 'm4')).toEqual(['x', 'y']);
  });

  it('INCR family with 64-bit limits', async () => {
    expect(await io.incr('c')).toBe(1);
    expect(await io.incrby('c', 10)).toBe(11);
    expect(await io.decr('c')).toBe(10);
    expect(await io.decrby('c', 20)).toBe(-10);
    await io.set('c', '9223372036854775806');
    await io.incr('c'); // ioredis parses the reply as a Number, so check the stored text
    expect(await io.get('c')).toBe('9223372036854775807');
    await expect(io.incr('c')).rejects.toThrow('ERR increment or decrement would overflow');
    await io.set('c', 'abc');
    await expect(io.incr('c')).rejects.toThrow('ERR value is not an integer or out of range');
    await io.set('c', ' 1');
    await expect(io.incr('c')).rejects.toThrow('ERR value is not an integer or out of range');
    await expect(io.call('incrby', 'c2', '1.5')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(io.call('decrby', 'c2', '-9223372036854775808')).rejects.toThrow(
      'ERR decrement would overflow',
    );
  });

  it('APPEND, STRLEN, GETRANGE', async () => {
    expect(await io.append('a', 'Hello')).toBe(5);
    expect(await io.append('a', ' World')).toBe(11);
    expect(await io.strlen('a')).toBe(11);
    expect(await io.strlen('nope')).toBe(0);
    expect(await io.getrange('a', 0, 4)).toBe('Hello');
    expect(await io.getrange('a', -5, -1)).toBe('World');
    expect(await io.getrange('a', -1, -5)).toBe('');
    expect(await io.getrange('a', 0, 100)).toBe('Hello World');
    expect(await io.getrange('nope', 0, 1)).toBe('');
  });

  it('DEL, UNLINK, EXISTS, TYPE', async () => {
    await io.mset('d1', 'a', 'd2', 'b', 'd3', 'c');
    expect(await io.exists('d1', 'd1', 'nope')).toBe(2);
    expect(await io.type('d1')).toBe('string');
    expect(await io.type('nope')).toBe('none');
    expect(await io.del('d1', 'd1', 'd2', 'nope')).toBe(2);
    expect(await io.unlink('d3')).toBe(1);
    expect(await io.exists('d1', 'd2', 'd3')).toBe(0);
  });

  it('KEYS, SCAN with MATCH and COUNT, DBSIZE, FLUSHDB', async () => {
    await io.flushdb();
    expect(await io.dbsize()).toBe(0);
    const pipeline = io.pipeline();
    for (let i = 0; i < 250; i++) pipeline.set(`user:${String(i).padStart(3, '0')}`, 'x');
    pipeline.set('other', 'y');
    await pipeline.exec();
    expect(await io.dbsize()).toBe(251);
    expect((await io.keys('user:1?9')).sort()).toEqual([
      'user:109',
      'user:119',
      'user:129',
      'user:139',
      'user:149',
      'user:159',
      'user:169',
      'user:179',
      'user:189',
      'user:199',
    ]);
    expect(await io.keys('oth[a-f]r')).toEqual(['other']);
    const seen: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await io.scan(cursor, 'MATCH', 'user:*', 'COUNT', 20);
      seen.push(...keys);
      cursor = next;
      // Writes during the iteration must not disturb it.
      await io.set(`zz:${cursor}`, '1');
    } while (cursor !== '0');
    expect(seen).toHaveLength(250);
    expect(new Set(seen).size).toBe(250);
    await expect(io.scan('12345678')).rejects.toThrow('ERR invalid cursor');
    await expect(io.scan('abc')).rejects.toThrow('ERR invalid cursor');
    expect(await io.flushdb()).toBe('OK');
    expect(await io.dbsize()).toBe(0);
  });

  it('INFO, CONFIG, COMMAND', async () => {
    const info = await io.info();
    expect(info).toContain('redis_version:');
    expect(info).toContain('loading:0');
    expect(await io.info('keyspace')).toContain('# Keyspace');
    expect(await io.config('GET', 'save')).toEqual(['save', '']);
    expect(await io.config('GET', 'append*')).toEqual(['appendonly', 'yes', 'appendfsync', 'always']);
    expect(await io.config('SET', 'maxclients', '100')).toBe('OK');
    expect(await io.config('GET', 'maxclients')).toEqual(['maxclients', '100']);
    await expect(io.config('SET', 'nope', '1')).rejects.toThrow('ERR Unknown option');
    // As Redis 7: a parameter named twice, or out of range, is refused and nothing changes.
    await expect(io.call('config', 'set', 'maxclients', '5', 'maxclients', '6')).rejects.toThrow(
      "ERR CONFIG SET failed (possibly related to argument 'maxclients') - duplicate parameter",
    );
    await expect(io.call('config', 'set', 'maxclients', '0')).rejects.toThrow(
      "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and",
    );
    await expect(io.call('config', 'set', 'maxclients', 'x')).rejects.toThrow(
      "couldn't be parsed into an integer",
    );
    expect(await io.config('GET', 'maxclients')).toEqual(['maxclients', '100']);
    expect(((await io.call('config', 'help')) as string[])[0]).toMatch(/^CONFIG <subcommand>/);
    await io.config('SET', 'maxclients', '10000');
    const count = (await io.command('COUNT')) as unknown as number;
    expect(count).toBeGreaterThan(30);
    const [getInfo] = (await io.command('INFO', 'get')) as unknown[][];
    expect(getInfo?.slice(0, 2)).toEqual(['get', 2]);
    const docs = (await io.call('command', 'docs', 'set')) as unknown[];
    expect(docs[0]).toBe('set');
  });

  it('reads its own writes across a pipeline, in order', async () => {
    const p = io.pipeline();
    for (let i = 0; i < 100; i++) p.incr('pipe').get('pipe');
    const results = (await p.exec())!;
    results.forEach(([err, value], i) => {
      expect(err).toBeNull();
      const n = Math.floor(i / 2) + 1;
      expect(i % 2 === 0 ? value : Number(value)).toBe(n);
    });
  });
});

describe('RESP3 via node-redis', () => {
  it('round-trips commands with HELLO 3', async () => {
    const client = createClient({ socket: { port: r.port, host: '127.0.0.1' }, RESP: 3 });
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    expect(await client.set('n3', 'v')).toBe('OK');
    expect(await client.get('n3')).toBe('v');
    expect(await client.get('missing3')).toBeNull();
    expect(await client.incr('n3c')).toBe(1);
    expect(await client.mGet(['n3', 'missing3'])).toEqual(['v', null]);
    expect(await client.exists('n3')).toBe(1);
    expect(await client.append('n3', 'w')).toBe(2);
    expect(await client.getRange('n3', 0, 0)).toBe('v');
    expect(await client.del('n3')).toBe(1);
    expect(String(await client.info('server'))).toContain('redis_version');
    expect(String(await client.clientInfo().then((i) => i.resp))).toBe('3');
    const keys: string[] = [];
    await client.mSet({ it1: 'a', it2: 'b' });
    for await (const batch of client.scanIterator({ MATCH: 'it*' })) keys.push(...batch);
    expect(keys.sort()).toEqual(['it1', 'it2']);
    await client.quit();
  });

  it('COMMAND INFO of an unknown name is a null bulk string, as Redis replies', async () => {
    const c = await RawClient.connect(r.port);
    c.send('COMMAND INFO nosuchcmd\r\n');
    expect(await c.until((t) => t.endsWith('$-1\r\n') || t.endsWith('*-1\r\n'))).toBe('*1\r\n$-1\r\n');
    c.close();
  });

  it('answers HELLO 3 with a map and nulls as _', async () => {
    const c = await RawClient.connect(r.port);
    c.send('HELLO 3\r\nGET nothing-here\r\n');
    const text = await c.until((t) => t.endsWith('_\r\n'));
    expect(text.startsWith('%7\r\n')).toBe(true);
    expect(text).toContain('$5\r\nproto\r\n:3\r\n');
    c.close();
  });
});
