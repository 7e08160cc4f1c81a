// The two Node clients' own examples for scripts, pub/sub and hashes: ioredis (EVAL, EVALSHA,
// defineCommand with its NOSCRIPT fallback, SUBSCRIBE/PSUBSCRIBE) and node-redis (scripts
// defined with defineScript, subscribe/pSubscribe on a duplicate, RESP3 pub/sub). Hash examples
// run once the server has hash commands (probed with COMMAND INFO hset; skipped before).
import { createClient, defineScript } from 'redis';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo } from './support.js';

/** until waits for a condition the server brings about asynchronously (a delivered message). */
async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ADD_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

describeTargets('ioredis and node-redis examples', (target) => {
  it('ioredis: EVAL, EVALSHA, SCRIPT LOAD/EXISTS, defineCommand (also after SCRIPT FLUSH)', async () => {
    const redis = ioredisTo(target());
    try {
      expect(
        await redis.eval('return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}', 2, 'key1', 'key2', 'first', 'second'),
      ).toEqual(['key1', 'key2', 'first', 'second']);
      const sha = (await redis.script('LOAD', ADD_SCRIPT)) as string;
      expect(await redis.script('EXISTS', sha)).toEqual([1]);
      expect(await redis.evalsha(sha, 1, 'counter', 5)).toBe(5);
      await expect(redis.evalsha('0'.repeat(40), 0)).rejects.toThrow(/NOSCRIPT/);
      redis.defineCommand('myecho', {
        numberOfKeys: 2,
        lua: 'return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}',
      });
      const withCustom = redis as typeof redis & {
        myecho(...args: string[]): Promise<string[]>;
      };
      expect(await withCustom.myecho('k1', 'k2', 'a1', 'a2')).toEqual(['k1', 'k2', 'a1', 'a2']);
      // ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT.
      await redis.script('FLUSH');
      expect(await withCustom.myecho('k1', 'k2', 'a1', 'a2')).toEqual(['k1', 'k2', 'a1', 'a2']);
      // Errors from redis.error_reply and a script's failed call reach the caller.
      await expect(redis.eval("return redis.error_reply('MY failure')", 0)).rejects.toThrow('MY failure');
      // In MULTI too (the flush above dropped the loaded script: load it again).
      expect(await redis.script('LOAD', ADD_SCRIPT)).toBe(sha);
      const results = await redis.multi().evalsha(sha, 1, 'counter', 1).get('counter').exec();
      expect(results).toEqual([
        [null, 6],
        [null, '6'],
      ]);
    } finally {
      redis.disconnect();
    }
  });

  it('node-redis: scripts defined with defineScript run by EVALSHA, loaded on demand', async () => {
    const client = createClient({
      url: target().url,
      scripts: {
        add: defineScript({
          SCRIPT: ADD_SCRIPT,
          NUMBER_OF_KEYS: 1,
          parseCommand(parser, key: string, toAdd: number) {
            parser.pushKey(key);
            parser.push(toAdd.toString());
          },
          transformReply: undefined as unknown as () => number,
        }),
      },
    });
    await client.connect();
    try {
      await client.scriptFlush();
      expect(await client.add('nr-counter', 3)).toBe(3);
      expect(await client.add('nr-counter', 4)).toBe(7);
      expect(await client.eval('return ARGV[1]', { keys: [], arguments: ['x'] })).toBe('x');
    } finally {
      await client.close();
    }
  });

  it('ioredis: SUBSCRIBE and PSUBSCRIBE receive what PUBLISH sends, counted', async () => {
    const sub = ioredisTo(target());
    const pub = ioredisTo(target());
    try {
      const got: string[] = [];
      sub.on('message', (channel: string, message: string) => got.push(`${channel}:${message}`));
      sub.on('pmessage', (pattern: string, channel: string, message: string) =>
        got.push(`${pattern}|${channel}:${message}`),
      );
      expect(await sub.subscribe('news', 'music')).toBe(2);
      expect(await sub.psubscribe('news.*')).toBe(3);
      expect(await pub.publish('news', 'hello')).toBe(1);
      expect(await pub.publish('news.tech', 'chips')).toBe(1);
      expect(await pub.publish('nobody', 'x')).toBe(0);
      expect(await pub.pubsub('NUMSUB', 'news', 'music')).toEqual(['news', 1, 'music', 1]);
      await until(() => got.length === 2);
      expect(got).toEqual(['news:hello', 'news.*|news.tech:chips']);
      await sub.unsubscribe('news');
      expect(await pub.publish('news', 'again')).toBe(0);
    } finally {
      sub.disconnect();
      pub.disconnect();
    }
  });

  it('node-redis: subscribe and pSubscribe on a duplicate, on RESP2 and RESP3', async () => {
    for (const RESP of [2, 3] as const) {
      const client = createClient({ url: target().url, RESP });
      await client.connect();
      const subscriber = client.duplicate();
      await subscriber.connect();
      try {
        const got: string[] = [];
        await subscriber.subscribe('channel', (message, channel) => got.push(`${channel}:${message}`));
        await subscriber.pSubscribe('chan*', (message, channel) => got.push(`p ${channel}:${message}`));
        // RESP3: the subscribed connection still runs ordinary commands.
        if (RESP === 3) expect(await subscriber.ping()).toBe('PONG');
        expect(await client.publish('channel', 'one')).toBe(2);
        await until(() => got.length === 2);
        expect(got.sort()).toEqual(['channel:one', 'p channel:one']);
        await subscriber.unsubscribe('channel');
        await subscriber.pUnsubscribe('chan*');
        expect(await client.publish('channel', 'two')).toBe(0);
      } finally {
        await subscriber.close();
        await client.close();
      }
    }
  });

  it('ioredis and node-redis hash examples', async (ctx) => {
    if (!target().hashes) ctx.skip(); // hash commands land on another branch
    const redis = ioredisTo(target());
    const client = createClient({ url: target().url });
    await client.connect();
    try {
      await redis.hset('user:1', 'name', 'ada', 'age', '36');
      expect(await redis.hget('user:1', 'name')).toBe('ada');
      expect(await redis.hgetall('user:1')).toEqual({ name: 'ada', age: '36' });
      expect(await redis.hincrby('user:1', 'age', 1)).toBe(37);
      expect(await redis.hdel('user:1', 'age')).toBe(1);
      await client.hSet('user:2', { name: 'bob', city: 'Oslo' });
      expect(await client.hGetAll('user:2')).toEqual({ name: 'bob', city: 'Oslo' });
      expect(Number(await client.hExists('user:2', 'city'))).toBe(1);
      await expect(redis.get('user:2')).rejects.toThrow(/WRONGTYPE/);
    } finally {
      redis.disconnect();
      await client.close();
    }
  });
});
