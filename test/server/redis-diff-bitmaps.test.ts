// Differential test of the bitmap commands (GETBIT, SETBIT, BITCOUNT, BITPOS, BITOP): the same
// commands against our server and a real redis-server, replies compared one by one, errors
// included. Fixed cases for the argument rules and edges, then random ranges over random strings
// (BITCOUNT and BITPOS in bytes and in bits, negative indexes, empty ranges) and random BITOPs.
// Skipped, with a message, when redis-server is not installed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { differences, hasRedisServer } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-bitmaps.test.ts');

const SCRIPT: readonly (readonly string[])[] = [
  ['setbit', 'b', '7', '1'],
  ['setbit', 'b', '7', '1'],
  ['setbit', 'b', '7', '0'],
  ['setbit', 'b', '100', '1'],
  ['get', 'b'],
  ['strlen', 'b'],
  ['getbit', 'b', '100'],
  ['getbit', 'b', '99'],
  ['getbit', 'b', '1000000'],
  ['getbit', 'b', '4294967295'],
  ['getbit', 'b', '4294967296'],
  ['getbit', 'b', '-1'],
  ['getbit', 'b', 'x'],
  ['getbit', 'missing', '3'],
  ['setbit', 'b', '1', '2'],
  ['setbit', 'b', '1', '-1'],
  ['setbit', 'b', '1', 'x'],
  ['setbit', 'b', '1', ''],
  ['setbit', 'b', '1', '01'],
  ['setbit', 'b', '-1', '1'],
  ['setbit', 'b', '4294967296', '1'],
  ['setbit', 'b'],
  ['set', 's', 'foobar'],
  ['bitcount', 's'],
  ['bitcount', 's', '0', '0'],
  ['bitcount', 's', '1', '1'],
  ['bitcount', 's', '1', '-2'],
  ['bitcount', 's', '-2', '-1'],
  ['bitcount', 's', '-1', '-2'],
  ['bitcount', 's', '5', '30'],
  ['bitcount', 's', '10', '20'],
  ['bitcount', 's', '0', '-100'],
  ['bitcount', 's', '5', '30', 'BIT'],
  ['bitcount', 's', '5', '30', 'bit'],
  ['bitcount', 's', '1', '1', 'BYTE'],
  ['bitcount', 's', '-7', '-3', 'bit'],
  ['bitcount', 's', '1', '1', 'word'],
  ['bitcount', 's', '1'],
  ['bitcount', 's', '1', '2', 'bit', 'x'],
  ['bitcount', 's', 'a', '1'],
  ['bitcount', 'missing'],
  ['bitcount', 'missing', '1'],
  ['bitcount', 'missing', 'a', 'b'],
  ['set', 'z', ''],
  ['bitcount', 'z'],
  ['bitcount', 'z', '0', '-1'],
  ['bitpos', 'z', '0'],
  ['bitpos', 'z', '1'],
  ['set', 'p', '\xff\xf0\x00'],
  ['bitpos', 'p', '0'],
  ['bitpos', 'p', '1'],
  ['bitpos', 'p', '1', '2'],
  ['bitpos', 'p', '0', '0', '0'],
  ['bitpos', 'p', '0', '0', '1'],
  ['bitpos', 'p', '1', '7', '15', 'bit'],
  ['bitpos', 'p', '0', '7', '11', 'bit'],
  ['bitpos', 'p', '0', '0', '-1', 'bit'],
  ['bitpos', 'p', '0', '12', '-1', 'bit'],
  ['bitpos', 'p', '0', '5', '-1', 'BIT'],
  ['bitpos', 'p', '1', '-1'],
  ['bitpos', 'p', '1', '3'],
  ['bitpos', 'p', '0', '3'],
  ['bitpos', 'p', '0', '1', 'x'],
  ['bitpos', 'p', '0', '1', '2', 'nope'],
  ['bitpos', 'p', '0', '1', '2', 'bit', 'x'],
  ['bitpos', 'p', '2'],
  ['bitpos', 'p', 'x'],
  ['bitpos', 'missing', '0'],
  ['bitpos', 'missing', '1'],
  ['bitpos', 'missing', '1', 'x'],
  ['set', 'ones', '\xff\xff'],
  ['bitpos', 'ones', '0'],
  ['bitpos', 'ones', '0', '0'],
  ['bitpos', 'ones', '0', '0', '-1'],
  ['bitpos', 'ones', '0', '0', '15', 'bit'],
  ['set', 'a', 'abc'],
  ['set', 'c', 'xy'],
  ['bitop', 'and', 'r', 'a', 'c'],
  ['get', 'r'],
  ['bitop', 'OR', 'r', 'a', 'c', 'missing'],
  ['get', 'r'],
  ['bitop', 'xor', 'r', 'a', 'c', 'a'],
  ['get', 'r'],
  ['bitop', 'not', 'r', 'a'],
  ['get', 'r'],
  ['bitop', 'not', 'r', 'a', 'c'],
  ['bitop', 'nand', 'r', 'a'],
  ['bitop', 'and', 'r', 'missing', 'missing2'],
  ['exists', 'r'],
  ['bitop', 'and', 'r', 'missing'],
  ['set', 'r', 'kept', 'ex', '100'],
  ['bitop', 'or', 'r', 'a'],
  ['ttl', 'r'],
  ['bitop', 'and', 'a', 'a', 'c'],
  ['get', 'a'],
  ['hset', 'h', 'f', 'v'],
  ['getbit', 'h', '1'],
  ['setbit', 'h', '1', '1'],
  ['bitcount', 'h'],
  ['bitpos', 'h', '1'],
  ['bitop', 'and', 'r', 'a', 'h'],
  ['bitop', 'and', 'h', 'a'],
  ['type', 'h'],
  ['set', 't', 'x', 'ex', '100'],
  ['setbit', 't', '30', '1'],
  ['ttl', 't'],
  // From scripts, as commands.
  [
    'eval',
    "redis.call('setbit', KEYS[1], 9, 1) return {redis.call('bitcount', KEYS[1]), redis.call('bitpos', KEYS[1], 1), redis.call('getbit', KEYS[1], 9)}",
    '1',
    'lua',
  ],
  ['eval', "return redis.call('bitop', 'not', KEYS[1], KEYS[2])", '2', 'lua2', 'lua'],
  ['eval', "return redis.pcall('setbit', KEYS[1], 1, 5)", '1', 'lua'],
  ['set', 'n', '12345'],
  ['setbit', 'n', '0', '1'],
  ['get', 'n'],
  ['getbit', 'n', '2'],
];

describe.skipIf(!hasRedis)('bitmap commands against a real redis-server', () => {
  const pair = useRedisPair();

  it('answers as Redis does, errors included', async () => {
    expect(await differences(pair.ours, pair.theirs, SCRIPT)).toEqual([]);
  });

  it('counts and finds bits in random ranges as Redis does', async () => {
    const index = fc.integer({ min: -40, max: 40 }).map(String);
    const unit = fc.constantFrom<string[]>([], ['BYTE'], ['BIT']);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 6 }),
        fc.array(
          fc.oneof(
            fc.tuple(index, index, unit).map(([s, e, u]) => ['bitcount', 'r', s, e, ...u]),
            fc.tuple(fc.constantFrom('0', '1'), index).map(([b, s]) => ['bitpos', 'r', b, s]),
            fc
              .tuple(fc.constantFrom('0', '1'), index, index, unit)
              .map(([b, s, e, u]) => ['bitpos', 'r', b, s, e, ...u]),
          ),
          { minLength: 1, maxLength: 12 },
        ),
        async (bytes, commands) => {
          const value = Buffer.from(bytes).toString('latin1');
          await pair.ours.set('r', Buffer.from(bytes));
          await pair.theirs.set('r', Buffer.from(bytes));
          const diff = await differences(pair.ours, pair.theirs, commands);
          expect(diff, JSON.stringify(value)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('combines random strings with BITOP and sets random bits as Redis does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 5 }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom('and', 'or', 'xor', 'not'),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.constantFrom('0', '1')), { maxLength: 4 }),
        async (sources, op, bits) => {
          const keys = sources.map((_, i) => `src${i}`);
          for (const [i, bytes] of sources.entries()) {
            await pair.ours.set(keys[i]!, Buffer.from(bytes));
            await pair.theirs.set(keys[i]!, Buffer.from(bytes));
          }
          const commands = [
            ['bitop', op, 'out', ...(op === 'not' ? keys.slice(0, 1) : keys)],
            ['get', 'out'],
            ...bits.map(([offset, bit]) => ['setbit', 'out', String(offset), bit]),
            ['get', 'out'],
            ['bitcount', 'out'],
            ['del', 'out'],
          ];
          expect(await differences(pair.ours, pair.theirs, commands)).toEqual([]);
        },
      ),
      { numRuns: 100 },
    );
  });
});
