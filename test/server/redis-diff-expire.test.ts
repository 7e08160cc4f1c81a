// Differential test of the expiry commands: the same script against our server and a real
// redis-server (started here on a free loopback port, without persistence), replies compared
// one by one, errors included. Only replies that do not depend on the millisecond a command
// runs at are compared (TTLs in whole seconds far from a rounding edge, absolute times).
// Skipped, with a message, when redis-server is not installed (Debian: apt-get install redis-server).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, freePort } from '../support/ports.js';
import { type Running, startServer } from './support.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer)
  console.warn(
    'redis-diff-expire.test.ts: redis-server not on PATH, skipping (install Debian package redis-server)',
  );

/** REDIS_START_DEADLINE_MS: how long redis-server may take to accept connections. */
const REDIS_START_DEADLINE_MS = 10_000;

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

async function reply(client: Redis, command: readonly string[]): Promise<string> {
  try {
    return JSON.stringify(await client.call(command[0]!, ...command.slice(1)));
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

describe.skipIf(!hasRedisServer)('expiry commands against a real redis-server', () => {
  let r: Running;
  let redis: ChildProcess;
  let ours: Redis;
  let theirs: Redis;

  beforeAll(async () => {
    r = await startServer();
    const port = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + REDIS_START_DEADLINE_MS;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    ours = new Redis({ port: r.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    theirs = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  });

  afterAll(async () => {
    ours?.disconnect();
    theirs?.disconnect();
    redis?.kill('SIGTERM');
    await r?.stop();
  });

  it('replies exactly as Redis does, errors included', async () => {
    const differences: string[] = [];
    for (const command of SCRIPT) {
      const [a, b] = [await reply(ours, command), await reply(theirs, command)];
      if (a !== b) differences.push(`${command.join(' ')}: ours ${a}, redis ${b}`);
    }
    expect(differences).toEqual([]);
  });
});
