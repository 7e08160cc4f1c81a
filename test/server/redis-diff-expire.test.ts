// Differential test of the expiry commands: the same script against our server and a real
// redis-server (started here on a free loopback port, without persistence), replies compared
// one by one, errors included. Only replies that do not depend on the millisecond a command
// runs at are compared (TTLs in whole seconds far from a rounding edge, absolute times).
// Skipped, with a message, when redis-server is not installed (Debian: apt-get install redis-server).
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { differences, execText, hasRedisServer, replyText } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-expire.test.ts');

/** An absolute time in seconds far in the future (2100-01-01), for EXPIREAT and friends. */
const FAR_S = 4_102_444_800;

const SCRIPT: readonly (readonly string[])[] = [
  ['set', 'a', '1', 'EX', '100'],
  ['ttl', 'a'],
  ['set', 'a', '2', 'KEEPTTL'],
  ['ttl', 'a'],
  ['set', 'a', '3'],
  ['ttl', 'a'],
  ['set', 'b', '1', 'EX', '0'],
  ['set', 'b', '1', 'EX', '-1'],
  ['set', 'b', '1', 'PX', '0'],
  ['set', 'b', '1', 'EXAT', '0'],
  ['set', 'b', '1', 'EX', 'x'],
  ['set', 'b', '1', 'EX'],
  ['set', 'b', '1', 'EX', '1', 'PX', '1'],
  ['set', 'b', '1', 'EX', '1', 'EX', '200'],
  ['ttl', 'b'],
  ['set', 'b', '1', 'KEEPTTL', 'EX', '1'],
  ['set', 'b', '1', 'EX', '1', 'KEEPTTL'],
  ['set', 'b', '1', 'NX', 'XX'],
  ['set', 'b', '1', 'GET', 'EX', '10'],
  ['set', 'b', '2', 'NX', 'GET', 'EX', '10'],
  ['ttl', 'b'],
  ['set', 'b', '1', 'PERSIST'],
  ['set', 'c', '1', 'EXAT', '1'],
  ['exists', 'c'],
  ['set', 'c', 'v'],
  ['set', 'c', 'w', 'PXAT', '1', 'GET'],
  ['exists', 'c'],
  ['set', 'b', '1', 'EX', '9223372036854775807'],
  ['set', 'b', '1', 'PX', '9223372036854775807'],
  ['setex', 'd', '0', 'v'],
  ['setex', 'd', '-1', 'v'],
  ['setex', 'd', 'x', 'v'],
  ['setex', 'd', '10', 'v'],
  ['ttl', 'd'],
  ['psetex', 'd', '0', 'v'],
  ['psetex', 'd', '5000', 'v'],
  ['ttl', 'd'],
  ['getex', 'd'],
  ['getex', 'd', 'PERSIST'],
  ['ttl', 'd'],
  ['getex', 'd', 'EX', '50'],
  ['ttl', 'd'],
  ['getex', 'd', 'NX'],
  ['getex', 'd', 'EX', '1', 'PERSIST'],
  ['getex', 'd', 'PERSIST', 'EX', '1'],
  ['getex', 'd', 'EX', '0'],
  ['getex', 'd', 'KEEPTTL'],
  ['getex', 'd', 'EX'],
  ['getex', 'missing', 'EX', '10'],
  ['getex', 'd', 'PXAT', '1'],
  ['exists', 'd'],
  ['getdel', 'e'],
  ['set', 'e', 'v'],
  ['getdel', 'e'],
  ['exists', 'e'],
  ['set', 'f', 'v'],
  ['expire', 'f', '100', 'XX'],
  ['expire', 'f', '100', 'GT'],
  ['expire', 'f', '100', 'LT'],
  ['ttl', 'f'],
  ['expire', 'f', '50', 'NX'],
  ['expire', 'f', '200', 'XX'],
  ['expire', 'f', '100', 'GT'],
  ['expire', 'f', '300', 'gt'],
  ['expire', 'f', '400', 'LT'],
  ['ttl', 'f'],
  ['expire', 'f', '1', 'NX', 'XX'],
  ['expire', 'f', '1', 'GT', 'LT'],
  ['expire', 'f', '1', 'nx', 'gt'],
  ['expire', 'f', '1', 'FOO'],
  ['expire', 'f', '1', 'XX', 'GT'],
  ['expire', 'f', 'x'],
  ['expire', 'f', '9223372036854775807'],
  ['pexpire', 'f', '9223372036854775807'],
  ['expire', 'f', '-9223372036854775808'],
  ['expireat', 'f', '9223372036854775807'],
  ['ttl', 'f'],
  ['expire', 'missing', '10'],
  ['expire', 'f', '-1'],
  ['exists', 'f'],
  ['set', 'g', 'v'],
  ['pexpire', 'g', '0'],
  ['exists', 'g'],
  ['set', 'g', 'v'],
  ['expireat', 'g', '1'],
  ['exists', 'g'],
  ['set', 'h', 'v'],
  ['expireat', 'h', String(FAR_S)],
  ['expiretime', 'h'],
  ['pexpiretime', 'h'],
  ['pexpireat', 'h', `${FAR_S}123`],
  ['pexpiretime', 'h'],
  ['expiretime', 'h'],
  ['ttl', 'missing'],
  ['pttl', 'missing'],
  ['expiretime', 'missing'],
  ['set', 'i', 'v'],
  ['ttl', 'i'],
  ['pttl', 'i'],
  ['expiretime', 'i'],
  ['pexpiretime', 'i'],
  ['persist', 'h'],
  ['persist', 'h'],
  ['persist', 'missing'],
  ['ttl', 'h'],
  ['set', 'n', '1', 'EX', '100'],
  ['incr', 'n'],
  ['ttl', 'n'],
  ['incrby', 'n', '5'],
  ['append', 'n', '0'],
  ['ttl', 'n'],
  ['getset', 'n', '1'],
  ['ttl', 'n'],
  ['set', 'm', '1', 'EX', '100'],
  ['mset', 'm', '2'],
  ['ttl', 'm'],
  ['expire', 'f'],
  ['ttl'],
  ['persist'],
  ['setex', 'a', '1'],
  ['getex'],
  ['getdel'],
];

/**
 * TRANSACTIONS: the same kind of script inside MULTI/EXEC (issue 15): `setup` runs outside,
 * `multi` is queued and EXECed, then `after` runs outside; every reply is compared, the EXEC's
 * array included. TTLs are whole seconds far from a rounding edge, as above.
 */
const TRANSACTIONS: readonly {
  readonly setup: readonly (readonly string[])[];
  readonly multi: readonly (readonly string[])[];
  readonly after: readonly (readonly string[])[];
}[] = [
  {
    setup: [['set', 'tx:a', '1', 'EX', '100']],
    multi: [
      ['ttl', 'tx:a'],
      ['incr', 'tx:a'],
      ['ttl', 'tx:a'],
      ['append', 'tx:a', '0'],
      ['ttl', 'tx:a'],
    ],
    after: [
      ['ttl', 'tx:a'],
      ['get', 'tx:a'],
    ],
  },
  {
    setup: [['set', 'tx:b', '5', 'EX', '100']],
    multi: [
      ['set', 'tx:b', '6', 'KEEPTTL'],
      ['ttl', 'tx:b'],
      ['incrby', 'tx:b', '4'],
      ['expire', 'tx:b', '200', 'GT'],
      ['expire', 'tx:b', '50', 'GT'],
      ['expire', 'tx:b', '300', 'NX'],
      ['expire', 'tx:b', '150', 'XX'],
      ['expire', 'tx:b', '120', 'LT'],
      ['ttl', 'tx:b'],
    ],
    after: [
      ['ttl', 'tx:b'],
      ['get', 'tx:b'],
    ],
  },
  {
    setup: [['del', 'tx:win']],
    multi: [
      ['incr', 'tx:win'],
      ['expire', 'tx:win', '100', 'NX'],
      ['expire', 'tx:win', '200', 'NX'],
      ['ttl', 'tx:win'],
    ],
    after: [['ttl', 'tx:win']],
  },
  {
    setup: [
      ['set', 'tx:c', 'v'],
      ['expireat', 'tx:c', String(FAR_S)],
    ],
    multi: [
      ['expiretime', 'tx:c'],
      ['pexpiretime', 'tx:c'],
      ['getex', 'tx:c', 'PERSIST'],
      ['ttl', 'tx:c'],
      ['set', 'tx:c', 'w', 'EX', '100', 'GET'],
      ['ttl', 'tx:c'],
      ['persist', 'tx:c'],
      ['ttl', 'tx:c'],
    ],
    after: [
      ['ttl', 'tx:c'],
      ['get', 'tx:c'],
    ],
  },
  {
    setup: [['set', 'tx:d', '1', 'PX', '1']],
    multi: [
      ['exists', 'tx:d'],
      ['ttl', 'tx:d'],
      ['incr', 'tx:d'],
      ['ttl', 'tx:d'],
    ],
    after: [
      ['get', 'tx:d'],
      ['ttl', 'tx:d'],
    ],
  },
];

describe.skipIf(!hasRedis)('expiry commands against a real redis-server', () => {
  const pair = useRedisPair();

  it('replies exactly as Redis does, errors included', async () => {
    expect(await differences(pair.ours, pair.theirs, SCRIPT)).toEqual([]);
  });

  it('replies exactly as Redis does inside MULTI/EXEC, expiry kept and compared', async () => {
    const differences: string[] = [];
    const compare = async (what: string, run: (client: Redis) => Promise<string>): Promise<void> => {
      const [a, b] = [await run(pair.ours), await run(pair.theirs)];
      if (a !== b) differences.push(`${what}: ours ${a}, redis ${b}`);
    };
    for (const { setup, multi, after } of TRANSACTIONS) {
      for (const command of setup) await compare(command.join(' '), (c) => replyText(c, command));
      // 'set tx:d 1 PX 1' must have expired by the EXEC in both servers.
      await new Promise((resolve) => setTimeout(resolve, 5));
      await compare(`MULTI ${multi.map((c) => c.join(' ')).join('; ')} EXEC`, (c) => execText(c, multi));
      for (const command of after) await compare(command.join(' '), (c) => replyText(c, command));
    }
    expect(differences).toEqual([]);
  });
});
