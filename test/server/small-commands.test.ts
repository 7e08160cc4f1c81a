// The small commands tools expect (issue 15, section 4): FLUSHALL, TIME, MEMORY USAGE/HELP, the
// INFO fields tools read, and the CLIENT TRACKING queries of an untracked connection (tracking
// itself: tracking.test.ts); over a real socket. With a redis-server
// installed, a differential case compares the replies whose shape Redis fixes.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD_BYTES } from '../../src/server/resp/commands/server.js';
import { differences, hasRedisServer } from '../support/redis-server.js';
import { connectIoredis, type Running, startServer, useRedisPair } from './support.js';

/** infoFields parses INFO's text into field -> value. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return out;
}

/** sectionOf: the `# Title` section that holds `field` in INFO's text. */
function sectionOf(text: string, field: string): string | undefined {
  let section: string | undefined;
  for (const line of text.split('\r\n')) {
    if (line.startsWith('# ')) section = line.slice(2);
    else if (line.startsWith(`${field}:`)) return section;
  }
  return undefined;
}

describe('small commands', () => {
  let r: Running;
  let c: Redis;

  beforeAll(async () => {
    r = await startServer();
    c = await connectIoredis(r.port);
  });

  afterAll(async () => {
    c?.disconnect();
    await r?.stop();
  });

  it('FLUSHALL removes every key, with ASYNC|SYNC or nothing, and refuses anything else', async () => {
    await c.mset('f1', 'a', 'f2', 'b');
    expect(await c.call('FLUSHALL')).toBe('OK');
    expect(await c.dbsize()).toBe(0);
    await c.set('f3', 'c');
    expect(await c.call('FLUSHALL', 'ASYNC')).toBe('OK');
    expect(await c.call('FLUSHALL', 'sync')).toBe('OK');
    expect(await c.exists('f3')).toBe(0);
    await expect(c.call('FLUSHALL', 'LATER')).rejects.toThrow('ERR syntax error');
  });

  it('APPEND and SETRANGE past the largest value answer as Redis does past proto-max-bulk-len', async () => {
    const MAX = 64 * 1024 * 1024; // VALUE_BYTES_MAX
    const tooLong = 'ERR string exceeds maximum allowed size (proto-max-bulk-len)';
    expect(await c.setrange('big', MAX - 1, 'x')).toBe(MAX);
    await expect(c.append('big', 'y')).rejects.toThrow(tooLong);
    await expect(c.setrange('big', MAX, 'y')).rejects.toThrow(tooLong);
    expect(await c.strlen('big')).toBe(MAX);
    await c.del('big');
  });

  it('TIME is two bulk strings near Date.now(), never going backwards', async () => {
    let previousUs = 0;
    for (let i = 0; i < 5; i++) {
      const reply = (await c.call('TIME')) as [string, string];
      expect(reply).toHaveLength(2);
      expect(reply[0]).toMatch(/^[0-9]+$/);
      expect(reply[1]).toMatch(/^[0-9]+$/);
      const us = Number(reply[0]) * 1e6 + Number(reply[1]);
      expect(Number(reply[1])).toBeLessThan(1e6);
      expect(Math.abs(us / 1000 - Date.now())).toBeLessThan(2000);
      expect(us).toBeGreaterThanOrEqual(previousUs);
      previousUs = us;
    }
    await expect(c.call('TIME', 'x')).rejects.toThrow("ERR wrong number of arguments for 'time' command");
  });

  it('MEMORY USAGE estimates key + value + overhead, nil for a missing key', async () => {
    await c.set('small', 'v');
    await c.set('large', 'x'.repeat(100_000));
    expect(await c.call('MEMORY', 'USAGE', 'small')).toBe(5 + 1 + ENTRY_OVERHEAD_BYTES);
    const large = (await c.call('MEMORY', 'USAGE', 'large', 'SAMPLES', '0')) as number;
    expect(large).toBe(5 + 100_000 + ENTRY_OVERHEAD_BYTES);
    expect(await c.call('MEMORY', 'USAGE', 'missing')).toBeNull();
    await expect(c.call('MEMORY', 'USAGE', 'small', 'SAMPLES')).rejects.toThrow('ERR syntax error');
    await expect(c.call('MEMORY', 'USAGE', 'small', 'SAMPLES', '-1')).rejects.toThrow('ERR syntax error');
    await expect(c.call('MEMORY', 'USAGE', 'small', 'SAMPLES', 'x')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(c.call('MEMORY', 'USAGE')).rejects.toThrow(
      "ERR wrong number of arguments for 'memory|usage' command",
    );
    expect(((await c.call('MEMORY', 'HELP')) as string[])[0]).toMatch(/^MEMORY <subcommand>/);
    await expect(c.call('MEMORY', 'DOCTOR')).rejects.toThrow(
      "ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.",
    );
  });

  it('COMMAND GETKEYS finds TXN.CAS keys by its grammar', async () => {
    expect(
      await c.call(
        'COMMAND',
        'GETKEYS',
        'TXN.CAS',
        '2',
        'a',
        'EXISTS',
        '0',
        'b',
        'VALUE',
        '=',
        'x',
        'THEN',
        '1',
        'SET',
        'c',
        'v',
        'ELSE',
        '2',
        'GET',
        'a',
        'DEL',
        'd',
      ),
    ).toEqual(['a', 'b', 'c', 'a', 'd']);
    await expect(c.call('COMMAND', 'GETKEYS', 'TXN.CAS', '1', 'a', 'EXISTS', '0', 'THEN')).rejects.toThrow(
      'ERR Invalid arguments specified for command',
    );
  });

  it('INFO has the fields tools read, in Redis sections', async () => {
    const text = (await c.info('everything')) as string;
    const f = infoFields(text);
    expect(f.get('run_id')).toMatch(/^[0-9a-f]{40}$/);
    expect(Number(f.get('used_memory'))).toBeGreaterThan(0);
    expect(f.get('used_memory_human')).toMatch(/^[0-9]+(\.[0-9]{2}[KMGTP])?B?$/);
    expect(f.get('maxmemory')).toBe('0');
    expect(f.get('maxmemory_human')).toBe('0B');
    expect(f.get('maxmemory_policy')).toBe('noeviction');
    for (const field of ['instantaneous_ops_per_sec', 'keyspace_hits', 'keyspace_misses'])
      expect(f.get(field)).toMatch(/^[0-9]+$/);
    expect(sectionOf(text, 'run_id')).toBe('Server');
    for (const field of ['used_memory_human', 'maxmemory_policy'])
      expect(sectionOf(text, field)).toBe('Memory');
    for (const field of ['instantaneous_ops_per_sec', 'keyspace_hits', 'keyspace_misses'])
      expect(sectionOf(text, field)).toBe('Stats');
    // Stable while the server runs.
    expect(infoFields((await c.info('server')) as string).get('run_id')).toBe(f.get('run_id'));
  });

  it('keyspace_hits and keyspace_misses count GET-style reads', async () => {
    const before = infoFields((await c.info('stats')) as string);
    await c.set('hit', 'v');
    await c.get('hit');
    await c.get('nope');
    await c.mget('hit', 'nope', 'nope2');
    await c.strlen('hit');
    await c.getrange('nope', 0, 1);
    const after = infoFields((await c.info('stats')) as string);
    expect(Number(after.get('keyspace_hits')) - Number(before.get('keyspace_hits'))).toBe(3);
    expect(Number(after.get('keyspace_misses')) - Number(before.get('keyspace_misses'))).toBe(4);
  });

  it('instantaneous_ops_per_sec is above 0 under load', async () => {
    const deadline = Date.now() + 500;
    while (Date.now() < deadline) {
      const p = c.pipeline();
      for (let i = 0; i < 50; i++) p.ping();
      await p.exec();
    }
    const f = infoFields((await c.info('stats')) as string);
    expect(Number(f.get('instantaneous_ops_per_sec'))).toBeGreaterThan(0);
  });

  it('CLIENT TRACKING: bad modes and options are syntax errors; an untracked connection answers as untracked', async () => {
    await expect(c.call('CLIENT', 'TRACKING', 'MAYBE')).rejects.toThrow('ERR syntax error');
    await expect(c.call('CLIENT', 'TRACKING', 'OFF', 'BOGUS')).rejects.toThrow('ERR syntax error');
    expect(await c.call('CLIENT', 'TRACKING', 'OFF')).toBe('OK');
    expect(await c.call('CLIENT', 'GETREDIR')).toBe(-1);
    expect(await c.call('CLIENT', 'TRACKINGINFO')).toEqual([
      'flags',
      ['off'],
      'redirect',
      -1,
      'prefixes',
      [],
    ]);
    await expect(c.call('CLIENT', 'CACHING', 'YES')).rejects.toThrow('ERR CLIENT CACHING can be called only');
  });
});

const hasRedis = hasRedisServer('small-commands.test.ts');

describe.skipIf(!hasRedis)('small commands against a real redis-server', () => {
  const pair = useRedisPair();

  /** SCRIPT: replies that must be equal (no times, no sizes). */
  const SCRIPT: readonly (readonly string[])[] = [
    ['set', 'k', 'v'],
    ['flushall'],
    ['flushall', 'async'],
    ['flushall', 'sync'],
    ['flushall', 'x'],
    ['flushall', 'sync', 'x'],
    ['exists', 'k'],
    ['memory', 'usage', 'missing'],
    ['memory', 'usage'],
    ['memory', 'usage', 'missing', 'samples'],
    ['memory', 'usage', 'missing', 'samples', 'x'],
    ['memory', 'usage', 'missing', 'foo', '1'],
    ['memory', 'nosuch'],
    ['command', 'info', 'nosuchcmd'],
    ['time', 'x'],
    ['client', 'tracking', 'off'],
    ['client', 'tracking', 'maybe'],
    ['client', 'getredir'],
    ['client', 'trackinginfo'],
  ];

  it('replies as Redis does', async () => {
    expect(await differences(pair.ours, pair.theirs, SCRIPT)).toEqual([]);
  });

  it('TIME has the same shape', async () => {
    const [a, b] = [(await pair.ours.call('TIME')) as string[], (await pair.theirs.call('TIME')) as string[]];
    expect(a.map((x) => typeof x)).toEqual(b.map((x) => typeof x));
    expect(Math.abs(Number(a[0]) - Number(b[0]))).toBeLessThanOrEqual(1);
  });
});
