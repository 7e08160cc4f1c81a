// Differential test of the hash commands: the same script against our server and a real
// redis-server (started here on a free loopback port, without persistence), replies compared
// one by one, errors included: hash commands, their error texts, WRONGTYPE both ways (string
// commands on a hash, hash commands on a string), TYPE, TTLs kept by hash writes, HINCRBYFLOAT's
// formatting, HSCAN with MATCH and COUNT (on small hashes, which Redis returns in one page), and
// hashes inside MULTI/EXEC. Replies that are not deterministic (HRANDFIELD) are compared by shape.
// Field order is unspecified in Redis (a small hash answers in insertion order, a large one in
// hash order; Cairn in byte order, docs/format.md "Value types"), as is SCAN's key order, so
// HGETALL, HKEYS, HVALS, HSCAN and SCAN replies are compared as sorted sets of pairs / items.
// Skipped, with a message, when redis-server is not installed.
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { execText, hasRedisServer, replyText } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-hashes.test.ts');

const SCRIPT: readonly (readonly string[])[] = [
  ['hset', 'h', 'a', '1'],
  ['hset', 'h', 'a', '2', 'b', '3', 'c', 'x'],
  ['hset', 'h', 'a'],
  ['hset', 'h'],
  ['hmset', 'h', 'd', '4', 'e', '5'],
  ['hmset', 'h', 'd'],
  ['hget', 'h', 'a'],
  ['hget', 'h', 'zz'],
  ['hget', 'missing', 'a'],
  ['hmget', 'h', 'a', 'zz', 'b'],
  ['hmget', 'missing', 'a', 'b'],
  ['hgetall', 'h'],
  ['hgetall', 'missing'],
  ['hkeys', 'h'],
  ['hvals', 'h'],
  ['hlen', 'h'],
  ['hlen', 'missing'],
  ['hexists', 'h', 'a'],
  ['hexists', 'h', 'zz'],
  ['hstrlen', 'h', 'c'],
  ['hstrlen', 'h', 'zz'],
  ['hsetnx', 'h', 'a', '9'],
  ['hsetnx', 'h', 'f', '9'],
  ['hget', 'h', 'f'],
  ['type', 'h'],
  ['type', 'missing'],
  ['hincrby', 'h', 'a', '10'],
  ['hincrby', 'h', 'new', '-3'],
  ['hincrby', 'h', 'c', '1'],
  ['hincrby', 'h', 'a', 'x'],
  ['hincrby', 'h', 'a', '1.5'],
  ['hincrby', 'h', 'a', '9223372036854775807'],
  ['hset', 'h', 'big', '9223372036854775807'],
  ['hincrby', 'h', 'big', '1'],
  ['hincrby', 'h', 'big', '0'],
  ['hincrbyfloat', 'h', 'fl', '10.5'],
  ['hincrbyfloat', 'h', 'fl', '0.1'],
  ['hincrbyfloat', 'h', 'fl', '-5'],
  ['hincrbyfloat', 'h', 'fl', '5.0e3'],
  ['hincrbyfloat', 'h', 'fl', '2.0e2'],
  ['hincrbyfloat', 'h', 'fl', '1e-3'],
  ['hincrbyfloat', 'h', 'a', '1'],
  ['hincrbyfloat', 'h', 'c', '1'],
  ['hincrbyfloat', 'h', 'fl', 'x'],
  ['hincrbyfloat', 'h', 'fl', ''],
  ['hincrbyfloat', 'h', 'fl', 'nan'],
  ['hincrbyfloat', 'h', 'fl', 'inf'],
  ['hset', 'h', 'three', '3.0'],
  ['hincrbyfloat', 'h', 'three', '0'],
  ['hset', 'h', 'zero', '0.1'],
  ['hincrbyfloat', 'h', 'zero', '0.2'],
  ['hincrbyfloat', 'h', 'neg', '-0.5'],
  ['hincrbyfloat', 'h', 'neg', '.5'],
  ['hset', 'h', 'hex', '0x1p3'],
  ['hincrbyfloat', 'h', 'hex', '0x1p3'],
  ['hincrbyfloat', 'h', 'hex', '0x1.0000000000000001p0'],
  ['hincrbyfloat', 'h', 'hex', '0x'],
  ['hincrbyfloat', 'h', 'hex', '1e5000'],
  ['hset', 'h', 'huge', '0x1p16383'],
  ['hincrbyfloat', 'h', 'huge', '0x1p16383'],
  ['hdel', 'h', 'zz'],
  ['hdel', 'h', 'a', 'b', 'b', 'zz'],
  ['hdel', 'h'],
  ['hlen', 'h'],
  ['hset', 'small', 'only', 'v'],
  ['hdel', 'small', 'only'],
  ['exists', 'small'],
  ['type', 'small'],
  // WRONGTYPE both ways.
  ['set', 's', 'v'],
  ['hset', 's', 'a', '1'],
  ['hget', 's', 'a'],
  ['hmget', 's', 'a'],
  ['hgetall', 's'],
  ['hdel', 's', 'a'],
  ['hexists', 's', 'a'],
  ['hlen', 's'],
  ['hkeys', 's'],
  ['hvals', 's'],
  ['hincrby', 's', 'a', '1'],
  ['hincrbyfloat', 's', 'a', '1'],
  ['hsetnx', 's', 'a', '1'],
  ['hstrlen', 's', 'a'],
  ['hscan', 's', '0'],
  ['hrandfield', 's'],
  ['get', 'h'],
  ['getset', 'h', 'v'],
  ['getdel', 'h'],
  ['getex', 'h'],
  ['append', 'h', 'v'],
  ['strlen', 'h'],
  ['getrange', 'h', '0', '1'],
  ['incr', 'h'],
  ['decrby', 'h', '2'],
  ['set', 'h', 'v', 'GET'],
  ['mget', 's', 'h', 'missing'],
  ['setnx', 'h', 'v'],
  ['set', 'h', 'v', 'NX'],
  ['type', 'h'],
  ['exists', 'h', 's'],
  ['hset', 'h2', 'a', '1'],
  ['set', 'h2', 'now a string'],
  ['type', 'h2'],
  ['get', 'h2'],
  ['hset', 'h3', 'a', '1'],
  ['mset', 'h3', 'str'],
  ['type', 'h3'],
  ['del', 'h3', 'h2'],
  // TTLs: hash writes keep them, EXPIRE and PERSIST keep the type.
  ['hset', 't', 'a', '1'],
  ['expire', 't', '100'],
  ['ttl', 't'],
  ['hset', 't', 'b', '2'],
  ['ttl', 't'],
  ['hincrby', 't', 'a', '1'],
  ['hdel', 't', 'b'],
  ['ttl', 't'],
  ['type', 't'],
  ['persist', 't'],
  ['ttl', 't'],
  ['hgetall', 't'],
  // HSCAN on a small hash: one page, cursor 0, whatever COUNT says.
  ['hset', 'sc', 'one', '1', 'two', '2', 'three', '3', 'four', '4', 'five', '5'],
  ['hscan', 'sc', '0'],
  ['hscan', 'sc', '0', 'COUNT', '2'],
  ['hscan', 'sc', '0', 'MATCH', 't*'],
  ['hscan', 'sc', '0', 'MATCH', '*o*', 'COUNT', '100'],
  ['hscan', 'sc', '0', 'COUNT', '0'],
  ['hscan', 'sc', '0', 'COUNT'],
  ['hscan', 'sc', '0', 'FOO', 'bar'],
  ['hscan', 'sc', 'x'],
  ['hscan', 'missing', '0'],
  // Redis's order: the cursor, the key (missing: an empty page) and its type, then the options.
  ['hscan', 'missing', '0', 'COUNT', 'x'],
  ['hscan', 'missing', '0', 'FOO'],
  ['hscan', 'missing', '0', 'MATCH'],
  ['hscan', 's', '0', 'COUNT', 'x'],
  ['hscan', 's', '0', 'FOO'],
  // The cursor's syntax is strtoul's (a sign, digits, or nothing); its value matters only on a hash.
  ['hscan', 'missing', '5'],
  ['hscan', 'missing', '-1'],
  ['hscan', 'missing', '18446744073709551615'],
  ['hscan', 'missing', '18446744073709551616'],
  ['hscan', 'missing', ' 1'],
  ['hscan', 'missing', '1x'],
  ['hscan', 'missing', '+'],
  ['hscan', 's', '5'],
  ['hscan', 's', '-1'],
  ['hscan', 'sc', ''],
  ['hscan', 'sc', '00'],
  ['hscan', 'sc', '+0'],
  ['hscan', 'sc', '12345'],
  ['hscan', 'sc', '-1'],
  // HRANDFIELD: the count before the syntax.
  ['hrandfield', 's', 'x', 'x'],
  ['hrandfield', 'missing', 'x', 'withvalues'],
  ['hrandfield', 'missing', '1', 'x'],
  ['hrandfield', 'missing', '1', 'withvalues', 'x'],
  ['hrandfield', 'missing'],
  ['hrandfield', 'missing', '2'],
  ['hrandfield', 'sc', '0'],
  ['hrandfield', 'sc', '1', 'foo'],
  ['hrandfield', 'sc', 'x'],
  ['hrandfield', 'sc', '-9223372036854775808'],
  ['hrandfield', 'sc', '-9223372036854775808', 'WITHVALUES'],
  // WITHVALUES: a count past half the range is refused (found from outside: the whole hash).
  ['hrandfield', 'sc', '4611686018427387904', 'WITHVALUES'],
  ['hrandfield', 'sc', '9223372036854775807', 'WITHVALUES'],
  ['scan', '0', 'TYPE', 'hash', 'COUNT', '1000'],
  ['scan', '0', 'TYPE', 'string', 'MATCH', 's', 'COUNT', '1000'],
  ['hget', 'h'],
  ['hgetall'],
  ['hincrby', 'h', 'a'],
];

/** TRANSACTIONS: hashes inside MULTI/EXEC, EXEC's array compared, then the state after. */
const TRANSACTIONS: readonly {
  readonly setup: readonly (readonly string[])[];
  readonly multi: readonly (readonly string[])[];
  readonly after: readonly (readonly string[])[];
}[] = [
  {
    setup: [
      ['del', 'tx:h', 'tx:s'],
      ['set', 'tx:s', 'v'],
    ],
    multi: [
      ['hset', 'tx:h', 'a', '1', 'b', '2'],
      ['hincrby', 'tx:h', 'a', '5'],
      ['hincrbyfloat', 'tx:h', 'b', '0.25'],
      ['hget', 'tx:h', 'a'],
      ['hgetall', 'tx:h'],
      ['hset', 'tx:s', 'a', '1'],
      ['get', 'tx:h'],
      ['type', 'tx:h'],
      ['hdel', 'tx:h', 'a'],
      ['hlen', 'tx:h'],
    ],
    after: [
      ['hgetall', 'tx:h'],
      ['type', 'tx:h'],
      ['get', 'tx:s'],
    ],
  },
  {
    setup: [
      ['del', 'tx:t'],
      ['hset', 'tx:t', 'f', 'v'],
      ['expire', 'tx:t', '100'],
    ],
    multi: [
      ['hset', 'tx:t', 'g', 'w'],
      ['ttl', 'tx:t'],
      ['hdel', 'tx:t', 'f', 'g'],
      ['exists', 'tx:t'],
      ['hset', 'tx:t', 'again', '1'],
      ['ttl', 'tx:t'],
    ],
    after: [
      ['ttl', 'tx:t'],
      ['hgetall', 'tx:t'],
    ],
  },
];

/** UNORDERED: commands whose reply order Redis leaves unspecified (see the header). */
const UNORDERED = new Set(['hgetall', 'hkeys', 'hvals', 'hscan', 'scan']);

/** pairsSorted: a flat field, value, ... array as its pairs in sorted order. */
function pairsSorted(flat: unknown[]): unknown[] {
  const pairs: string[] = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push(JSON.stringify([flat[i], flat[i + 1]]));
  return pairs.sort();
}

/** normalized: a reply with the order Redis leaves unspecified taken out. */
function normalized(command: readonly string[], text: string): string {
  const name = command[0]!.toLowerCase();
  if (!UNORDERED.has(name) || text.startsWith('error')) return text;
  const reply = JSON.parse(text) as unknown[];
  if (name === 'hgetall') return JSON.stringify(pairsSorted(reply));
  if (name === 'hkeys' || name === 'hvals') return JSON.stringify([...(reply as string[])].sort());
  const [cursor, items] = reply as [string, unknown[]];
  const noValues = name === 'scan' || command.some((a) => a.toLowerCase() === 'novalues');
  return JSON.stringify([cursor, noValues ? [...(items as string[])].sort() : pairsSorted(items)]);
}

/** differences runs each command on both servers in turn and lists where their replies differ. */
async function differences(
  ours: Redis,
  theirs: Redis,
  commands: readonly (readonly string[])[],
): Promise<string[]> {
  const out: string[] = [];
  for (const command of commands) {
    const a = normalized(command, await replyText(ours, command));
    const b = normalized(command, await replyText(theirs, command));
    if (a !== b) out.push(`${command.join(' ')}: ours ${a}, redis ${b}`);
  }
  return out;
}

describe.skipIf(!hasRedis)('hash commands against a real redis-server', () => {
  const pair = useRedisPair();

  it('replies exactly as Redis does, errors and WRONGTYPE included', async () => {
    expect(await differences(pair.ours, pair.theirs, SCRIPT)).toEqual([]);
  });

  it('replies exactly as Redis does inside MULTI/EXEC', async () => {
    const found: string[] = [];
    const compare = async (what: string, run: (client: Redis) => Promise<string>): Promise<void> => {
      const [a, b] = [await run(pair.ours), await run(pair.theirs)];
      if (a !== b) found.push(`${what}: ours ${a}, redis ${b}`);
    };
    for (const { setup, multi, after } of TRANSACTIONS) {
      for (const command of setup) await compare(command.join(' '), (c) => replyText(c, command));
      await compare(`MULTI ${multi.map((c) => c.join(' ')).join('; ')} EXEC`, (c) => execText(c, multi));
      for (const command of after) await compare(command.join(' '), (c) => replyText(c, command));
    }
    expect(found).toEqual([]);
  });

  it('HRANDFIELD answers in the shapes Redis does', async () => {
    for (const client of [pair.ours, pair.theirs]) {
      await client.call('del', 'rf');
      await client.call('hset', 'rf', 'a', '1', 'b', '2', 'c', '3');
    }
    const shape = async (client: Redis, args: string[]): Promise<string> => {
      const reply = (await client.call('hrandfield', 'rf', ...args)) as unknown;
      if (!Array.isArray(reply)) return typeof reply;
      return `array of ${reply.length}`;
    };
    for (const args of [[], ['2'], ['5'], ['-5'], ['2', 'WITHVALUES'], ['-4', 'withvalues']]) {
      expect(await shape(pair.ours, args), args.join(' ')).toBe(await shape(pair.theirs, args));
    }
    const picked = (await pair.ours.call('hrandfield', 'rf', '3')) as string[];
    expect([...picked].sort()).toEqual(['a', 'b', 'c']);
  });
});
