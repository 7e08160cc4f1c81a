// Connection, transaction and server commands against a real redis-server, compared byte for
// byte on raw connections: AUTH without a configured password, EXEC refused before it runs,
// SHUTDOWN's option checks.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { hasRedisServer, rawDifferences } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-connection.test.ts');

describe.skipIf(!hasRedis)('connection and transaction commands against a real redis-server', () => {
  const pair = useRedisPair();
  const diff = (commands: readonly (readonly string[])[]) =>
    rawDifferences(pair.ours.options.port!, pair.theirs.options.port!, commands);

  it('AUTH without a configured password: the default user takes any password', async () => {
    expect(
      await diff([
        ['auth', 'default', 'x'],
        ['auth', 'default', ''],
        ['auth', 'x'],
        ['auth', 'other', 'x'],
        ['auth', 'a', 'b', 'c'],
        ['hello', '2', 'auth', 'other', 'x'],
        ['config', 'set', 'requirepass', ''],
        ['auth', 'default', 'y'],
        ['auth', 'y'],
        ['config', 'set', 'requirepass', 'secret'],
        ['auth', 'default', 'wrong'],
        ['auth', 'wrong'],
        ['auth', 'default', 'secret'],
        ['config', 'set', 'requirepass', ''],
      ]),
    ).toEqual([]);
  });

  it('EXEC refused before it runs ends the transaction with EXECABORT; MULTI and DISCARD do not', async () => {
    expect(
      await diff([
        ['del', 'a'],
        ['multi'],
        ['set', 'a', '1'],
        ['exec', 'x'],
        ['get', 'a'],
        ['exec'],
        ['exec', 'x'],
        ['discard', 'x'],
        ['discard'],
        ['multi', 'x'],
        ['multi'],
        ['multi', 'x'],
        ['discard', 'x'],
        ['set', 'a', '2'],
        ['exec'],
        ['get', 'a'],
        ['subscribe', 'c'],
        ['multi'],
        ['exec'],
        ['discard'],
        ['unsubscribe'],
        ['exec'],
      ]),
    ).toEqual([]);
    // NOAUTH: a connection opened after a password is set.
    expect(await diff([['config', 'set', 'requirepass', 'p']])).toEqual([]);
    expect(
      await diff([
        ['multi'],
        ['exec'],
        ['exec', 'x'],
        ['discard'],
        ['auth', 'p'],
        ['multi'],
        ['exec'],
        ['config', 'set', 'requirepass', ''],
      ]),
    ).toEqual([]);
  });

  it('SHUTDOWN refuses contradictory options without shutting down', async () => {
    expect(
      await diff([
        ['shutdown', 'nosave', 'save'],
        ['shutdown', 'save', 'nosave', 'now'],
        ['shutdown', 'abort', 'now'],
        ['shutdown', 'save', 'save', 'abort'],
        ['shutdown', 'abort', 'abort'],
        ['shutdown', 'abort'],
        ['shutdown', 'x'],
        ['ping'],
      ]),
    ).toEqual([]);
  });

  it('subcommand arities and options: SCRIPT, PUBSUB HELP, CONFIG, COMMAND LIST', async () => {
    expect(
      await diff([
        ['script', 'load'],
        ['script', 'load', 'return 1', 'x'],
        ['script', 'exists'],
        ['script', 'help', 'x'],
        ['script', 'kill', 'x'],
        ['script', 'flush', 'sync', 'async'],
        ['script', 'flush', 'x'],
        ['script', 'flush', 'SYNC'],
        ['script', 'flush'],
        ['script', 'nope'],
        ['pubsub', 'help', 'x'],
        ['config', 'help', 'x'],
        ['config', 'resetstat', 'x'],
        ['config', 'resetstat'],
        ['config', 'rewrite', 'x'],
        ['command', 'list', 'x'],
        ['command', 'list', 'filterby', 'pattern'],
        ['command', 'list', 'filterby', 'pattern', 'a', 'b'],
        ['command', 'list', 'filterby', 'nope', 'x'],
        ['command', 'list', 'filterby', 'module', 'x'],
        ['command', 'list', 'filterby', 'aclcat', 'nosuch'],
        ['command', 'list', 'FILTERBY', 'PATTERN', 'hsetn?'],
      ]),
    ).toEqual([]);
    // Order is Redis's hash table's: compared sorted.
    const sorted = async (c: Redis, ...args: string[]) =>
      ((await c.call('command', ...args)) as string[]).sort();
    for (const filter of [
      ['filterby', 'pattern', 'HSET*'],
      ['filterby', 'pattern', 'h*get*'],
      ['filterby', 'aclcat', 'hash'],
    ]) {
      expect(await sorted(pair.ours, 'list', ...filter), filter.join(' ')).toEqual(
        await sorted(pair.theirs, 'list', ...filter),
      );
    }
  });

  it('ioredis connects with the username "default" and any password', async () => {
    const c = new Redis({
      port: pair.ours.options.port!,
      host: '127.0.0.1',
      username: 'default',
      password: 'anything',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await c.connect();
      expect(await c.ping()).toBe('PONG');
    } finally {
      c.disconnect();
    }
  });
});
