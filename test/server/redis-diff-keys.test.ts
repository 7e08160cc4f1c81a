import { describe, expect, it } from 'vitest';
import { differences, execText, hasRedisServer, rawDifferences } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-keys.test.ts');

/** An absolute time in seconds far in the future (2100-01-01). */
const FAR_S = String(4_102_444_800);

const SCRIPT: readonly (readonly string[])[] = [
  // RENAME / RENAMENX: the value, its type and its TTL move; errors as Redis.
  ['set', 'r1', 'one'],
  ['expireat', 'r1', FAR_S],
  ['rename', 'r1', 'r2'],
  ['exists', 'r1'],
  ['get', 'r2'],
  ['expiretime', 'r2'],
  ['rename', 'missing', 'r3'],
  ['rename', 'r2', 'r2'],
  ['rename', 'missing', 'missing'],
  ['set', 'r3', 'three'],
  ['rename', 'r2', 'r3'],
  ['get', 'r3'],
  ['expiretime', 'r3'],
  ['set', 'r4', 'four'],
  ['renamenx', 'r3', 'r4'],
  ['renamenx', 'r3', 'r5'],
  ['renamenx', 'r5', 'r5'],
  ['renamenx', 'missing', 'r6'],
  ['hset', 'h1', 'f', 'v'],
  ['rename', 'h1', 'h2'],
  ['type', 'h2'],
  ['hget', 'h2', 'f'],
  ['rename', 'r4'],
  // COPY: type and TTL too; REPLACE, DB 0, errors.
  ['copy', 'r5', 'c1'],
  ['get', 'c1'],
  ['expiretime', 'c1'],
  ['copy', 'r5', 'c1'],
  ['set', 'c2', 'x'],
  ['copy', 'r5', 'c2', 'REPLACE'],
  ['get', 'c2'],
  ['copy', 'missing', 'c3'],
  ['copy', 'r5', 'r5'],
  ['copy', 'r5', 'c4', 'DB', '0'],
  ['copy', 'r5', 'c5', 'DB', 'x'],
  ['copy', 'r5', 'c5', 'FOO'],
  ['copy', 'h2', 'h3'],
  ['hgetall', 'h3'],
  // TOUCH counts existing keys, duplicates too.
  ['touch', 'c1', 'c2', 'missing', 'c1'],
  ['touch'],
  // SETRANGE and SUBSTR.
  ['setrange', 's1', '0', 'hello'],
  ['setrange', 's1', '6', 'world'],
  ['get', 's1'],
  ['strlen', 's1'],
  ['setrange', 's1', '1', 'EL'],
  ['get', 's1'],
  ['setrange', 's2', '3', ''],
  ['exists', 's2'],
  ['setrange', 's1', '2', ''],
  ['setrange', 's1', '-1', 'x'],
  ['setrange', 's1', 'x', 'y'],
  ['setrange', 's1', '536870912', 'y'],
  ['setrange', 'h2', '0', 'x'],
  // Redis's order: the key's type, an empty value (no length check), then the length.
  ['setrange', 'h2', '536870912', 'x'],
  ['setrange', 'h2', '67108864', 'x'],
  ['setrange', 's1', '999999999999', ''],
  ['setrange', 'missing', '999999999999', ''],
  // GETEX: the options' syntax, the key (missing: nil) and its type, then the expire value.
  ['getex', 'h2', 'EX', 'x'],
  ['getex', 'h2', 'EX', '-1'],
  ['getex', 'missing', 'EX', 'x'],
  ['getex', 'missing', 'PX', '0'],
  ['getex', 'missing', 'FOO'],
  ['getex', 's1', 'EX', 'x'],
  ['getex', 's1', 'PX', '0'],
  ['substr', 's1', '0', '4'],
  ['substr', 's1', '-5', '-1'],
  ['substr', 'missing', '0', '1'],
  // INCRBYFLOAT: Redis's digits, its errors, the TTL kept.
  ['set', 'f1', '10.50'],
  ['expireat', 'f1', FAR_S],
  ['incrbyfloat', 'f1', '0.1'],
  ['incrbyfloat', 'f1', '-5'],
  ['incrbyfloat', 'f1', '5.0e3'],
  ['expiretime', 'f1'],
  ['incrbyfloat', 'f2', '3'],
  ['incrbyfloat', 'f2', 'abc'],
  ['incrbyfloat', 'f2', 'inf'],
  ['incrbyfloat', 'f2', 'nan'],
  ['incrbyfloat', 's1', '1'],
  ['incrbyfloat', 'h2', '1'],
  ['set', 'f3', '1.7976931348623157e308'],
  ['incrbyfloat', 'f3', '1.7976931348623157e308'],
  ['incrbyfloat', 'f2', '0.1'],
  ['incrbyfloat', 'f2', '-3.1'],
  // Redis's order: the key's type, its value, then the increment (an infinite one fails as the sum).
  ['incrbyfloat', 'h2', 'abc'],
  ['incrbyfloat', 'h2', 'inf'],
  ['incrbyfloat', 's1', 'inf'],
  ['incrbyfloat', 's1', 'abc'],
  ['incrbyfloat', 'nokey', 'inf'],
  ['incrbyfloat', 'nokey', '-inf'],
  ['incrbyfloat', 'nokey', 'nan'],
  // strtold's forms: hexadecimal floats, long double's range (past it: refused), no spaces.
  ['incrbyfloat', 'hx', '0x10'],
  ['incrbyfloat', 'hx', '0x1p3'],
  ['incrbyfloat', 'hx', '0X.8'],
  ['incrbyfloat', 'hx', '-0x1.8P1'],
  ['incrbyfloat', 'hx', '+0x1P+2'],
  ['incrbyfloat', 'hx', '0x10e'],
  ['incrbyfloat', 'hx', '0x'],
  ['incrbyfloat', 'hx', '0x1p'],
  ['incrbyfloat', 'hx', '0x.p1'],
  ['incrbyfloat', 'hx', '0xg'],
  ['incrbyfloat', 'hx', ' 1'],
  ['incrbyfloat', 'hx', '1 '],
  ['incrbyfloat', 'hx', '0x1p99999'],
  ['incrbyfloat', 'hx', '0x1p-99999'],
  ['incrbyfloat', 'hx', '1e5000'],
  ['incrbyfloat', 'hx', '1e-5000'],
  ['incrbyfloat', 'hx', '0e99999'],
  ['get', 'hx'],
  ['set', 'hx2', '0x10'],
  ['incrbyfloat', 'hx2', '1'],
  ['incrbyfloat', 'big', '1e400'],
  ['incrbyfloat', 'big2', '0x1p16383'],
  ['incrbyfloat', 'big2', '0x1p16383'],
  ['set', 'hx3', ' 0x10'],
  ['incrbyfloat', 'hx3', '1'],
];

describe.skipIf(!hasRedis)(
  'RENAME, COPY, TOUCH, SETRANGE, SUBSTR, INCRBYFLOAT against a real redis-server',
  () => {
    const pair = useRedisPair();

    it('replies exactly as Redis does, errors included', async () => {
      expect(await differences(pair.ours, pair.theirs, SCRIPT)).toEqual([]);
    });

    it('replies exactly as Redis does inside MULTI/EXEC', async () => {
      const multi: readonly (readonly string[])[] = [
        ['set', 'm1', 'a'],
        ['rename', 'm1', 'm2'],
        ['copy', 'm2', 'm3'],
        ['setrange', 'm3', '1', 'bc'],
        ['incrbyfloat', 'm4', '1.5'],
        ['renamenx', 'm2', 'm3'],
        ['touch', 'm1', 'm2', 'm3', 'm4'],
        ['substr', 'm3', '0', '-1'],
        ['rename', 'm9', 'm10'],
      ];
      expect(await execText(pair.ours, multi)).toBe(await execText(pair.theirs, multi));
    });
  },
);

describe.skipIf(!hasRedis)('the empty key and field against a real redis-server', () => {
  const pair = useRedisPair();

  it('`*` alone lists them (KEYS, SCAN, HSCAN do not match), no other pattern matches them', async () => {
    expect(
      await rawDifferences(pair.ours.options.port!, pair.theirs.options.port!, [
        ['set', '', 'v'],
        ['keys', '*'],
        ['keys', '**'],
        ['keys', '*?'],
        ['keys', ''],
        ['scan', '0', 'match', '*'],
        ['scan', '0', 'match', '**'],
        ['del', ''],
        ['hset', 'h', '', 'x'],
        ['hscan', 'h', '0', 'match', '*'],
        ['hscan', 'h', '0', 'match', '**'],
        ['hscan', 'h', '0', 'match', ''],
      ]),
    ).toEqual([]);
  });
});
