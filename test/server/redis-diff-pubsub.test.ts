// Differential test of pub/sub: the same sessions, on raw sockets, against our server and a real
// redis-server (started here on a free loopback port, without persistence); every byte each
// connection receives is compared: confirmations, messages, errors of the RESP2 subscribed mode,
// RESP3 pushes, PUBSUB replies and keyspace notifications (an `expired` event included).
// Sessions stay away from what legitimately differs: HELLO's version and id, and the order in
// which an argument-less UNSUBSCRIBE goes through several channels (Redis: its hash table's).
// Skipped, with a message, when redis-server is not installed (Debian: apt-get install redis-server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedisServer, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { RawClient, type Running, startServer } from './support.js';

const hasRedis = hasRedisServer('redis-diff-pubsub.test.ts');

/** QUIET_MS: a connection that received nothing for this long has received everything (for now). */
const QUIET_MS = 20;
/** EXPIRY_WAIT_MS: long enough for both servers' active expiry to delete a key with a 30 ms TTL. */
const EXPIRY_WAIT_MS = 1_500;

/** Step: a command on connection `on`, or a pause. */
type Step = { readonly on: 'a' | 'b'; readonly cmd: readonly string[] } | { readonly sleepMs: number };

const a = (...cmd: string[]): Step => ({ on: 'a', cmd });
const b = (...cmd: string[]): Step => ({ on: 'b', cmd });

const SESSIONS: Readonly<Record<string, readonly Step[]>> = {
  'RESP2 subscribe, publish, subscribed mode': [
    a('SUBSCRIBE', 'ch1', 'ch1'),
    a('PSUBSCRIBE', 'ch*', 'x?[a-c]'),
    b('PUBLISH', 'ch1', 'hello'),
    b('PUBLISH', 'xyb', 'pattern only'),
    b('PUBLISH', 'nobody', 'm'),
    b('PUBSUB', 'NUMSUB', 'ch1', 'ch2'),
    b('PUBSUB', 'NUMPAT'),
    b('PUBSUB', 'CHANNELS'),
    b('PUBSUB', 'CHANNELS', 'c*'),
    b('PUBSUB', 'CHANNELS', 'z*'),
    a('GET', 'k'),
    a('SET', 'k', 'v'),
    a('CONFIG', 'GET', 'maxclients'),
    a('MULTI'),
    a('PING'),
    a('PING', 'payload'),
    a('UNSUBSCRIBE', 'ch1', 'never'),
    a('PUNSUBSCRIBE', 'ch*'),
    a('PUNSUBSCRIBE'),
    a('PING'),
    a('UNSUBSCRIBE'),
    a('PUNSUBSCRIBE'),
    a('SUNSUBSCRIBE'),
    b('PUBLISH', 'ch1', 'gone'),
  ],
  'the empty channel: no pattern but the empty one matches it': [
    a('PSUBSCRIBE', '*'),
    a('SUBSCRIBE', ''),
    b('PUBLISH', '', 'm'),
    b('PUBSUB', 'CHANNELS', '*'),
    b('PUBSUB', 'CHANNELS', '**'),
    b('PUBSUB', 'CHANNELS'),
    a('UNSUBSCRIBE'),
    b('PUBLISH', '', 'm'),
    a('PUNSUBSCRIBE'),
  ],
  'SSUBSCRIBE inside MULTI/EXEC is refused (Redis 7.0: a deny-blocking client)': [
    a('MULTI'),
    a('SSUBSCRIBE', 'sc'),
    a('EXEC'),
    a('MULTI'),
    a('SUBSCRIBE', 'c'),
    a('SSUBSCRIBE', 'sc'),
    a('EXEC'),
    b('PUBSUB', 'SHARDCHANNELS'),
    b('PUBLISH', 'c', 'm'),
    a('UNSUBSCRIBE'),
  ],
  'errors and PUBSUB': [
    a('SUBSCRIBE'),
    a('PSUBSCRIBE'),
    a('PUBLISH', 'only-channel'),
    a('PUBLISH', 'c', 'm', 'extra'),
    a('PUBSUB'),
    a('PUBSUB', 'NOPE'),
    a('PUBSUB', 'CHANNELS', 'a', 'b'),
    a('PUBSUB', 'NUMPAT', 'x'),
    a('PUBSUB', 'NUMSUB'),
    a('PUBSUB', 'HELP'),
    a('SPUBLISH', 's', 'm'),
  ],
  'shard channels and RESET': [
    a('SSUBSCRIBE', 's1'),
    a('SUBSCRIBE', 's1'),
    b('SPUBLISH', 's1', 'shard'),
    b('PUBLISH', 's1', 'plain'),
    b('PUBSUB', 'SHARDNUMSUB', 's1', 's2'),
    b('PUBSUB', 'SHARDCHANNELS'),
    a('SUNSUBSCRIBE', 's1'),
    a('SUBSCRIBE', 'again'),
    a('RESET'),
    a('GET', 'missing'),
    b('PUBLISH', 'again', 'nobody'),
  ],
  'RESP3 pushes': [
    a('HELLO', '3'),
    a('SUBSCRIBE', 'r3'),
    a('PSUBSCRIBE', 'r*'),
    b('PUBLISH', 'r3', 'pushed'),
    a('PUBLISH', 'r3', 'to myself'),
    a('GET', 'missing'),
    a('PING'),
    a('UNSUBSCRIBE', 'r3'),
    a('PUNSUBSCRIBE'),
    a('UNSUBSCRIBE'),
  ],
  'keyspace notifications': [
    b('CONFIG', 'SET', 'notify-keyspace-events', 'KEA'),
    b('CONFIG', 'GET', 'notify-keyspace-events'),
    a('PSUBSCRIBE', '__key*__:*'),
    b('SET', 'n:a', '1'),
    b('SET', 'n:a', '2', 'EX', '100'),
    b('SET', 'n:a', '3', 'KEEPTTL'),
    b('SET', 'n:a', '3', 'NX'),
    b('INCR', 'n:a'),
    b('DECRBY', 'n:a', '2'),
    b('APPEND', 'n:a', 'x'),
    b('PERSIST', 'n:a'),
    b('EXPIRE', 'n:a', '100'),
    b('GETEX', 'n:a', 'PERSIST'),
    b('GETDEL', 'n:a'),
    b('MSET', 'n:b', '1', 'n:c', '2'),
    b('DEL', 'n:b', 'n:c', 'n:missing'),
    b('SETEX', 'n:d', '10', 'v'),
    b('EXPIRE', 'n:d', '-1'),
    b('MULTI'),
    b('SET', 'n:e', '1'),
    b('INCRBY', 'n:e', '5'),
    b('EXEC'),
    b('SET', 'n:f', 'v', 'PX', '30'),
    { sleepMs: EXPIRY_WAIT_MS },
    b('CONFIG', 'SET', 'notify-keyspace-events', 'Eg'),
    b('SET', 'n:g', '1'),
    b('DEL', 'n:g'),
    b('CONFIG', 'SET', 'notify-keyspace-events', 'Q'),
    b('CONFIG', 'SET', 'notify-keyspace-events', ''),
    b('SET', 'n:h', '1'),
  ],
};

const encode = (cmd: readonly string[]): string =>
  `*${cmd.length}\r\n${cmd.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;

/** quiet waits until `c` has received nothing new for QUIET_MS. */
async function quiet(c: RawClient): Promise<void> {
  let last = -1;
  while (c.received.length !== last) {
    last = c.received.length;
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  }
}

/** HELLO_REPLY_END: the end of HELLO's reply (its version and id differ between the servers). */
const HELLO_REPLY_END = 'modules\r\n*0\r\n';

/** run plays a session against the server on `port`; returns what each connection received. */
async function run(port: number, steps: readonly Step[]): Promise<Record<'a' | 'b', string>> {
  const conns = { a: await RawClient.connect(port), b: await RawClient.connect(port) };
  try {
    for (const step of steps) {
      if ('sleepMs' in step) {
        await new Promise((resolve) => setTimeout(resolve, step.sleepMs));
        continue;
      }
      conns[step.on].send(encode(step.cmd));
      await quiet(conns.a);
      await quiet(conns.b);
    }
    const out = (c: RawClient): string => {
      const text = c.received.toString('latin1');
      const hello = text.indexOf(HELLO_REPLY_END);
      return hello === -1 ? text : `<hello>${text.slice(hello + HELLO_REPLY_END.length)}`;
    };
    return { a: out(conns.a), b: out(conns.b) };
  } finally {
    conns.a.close();
    conns.b.close();
  }
}

describe.skipIf(!hasRedis)('pub/sub against a real redis-server', () => {
  let r: Running;
  let redis: RedisServer | undefined;
  let redisPort: number;

  beforeAll(async () => {
    r = await startServer();
    redis = await startRedisServer();
    redisPort = redis.port;
  });

  afterAll(async () => {
    redis?.stop();
    await r?.stop();
  });

  for (const [name, steps] of Object.entries(SESSIONS)) {
    it(`${name}: the same bytes on every connection`, async () => {
      const ours = await run(r.port, steps);
      const theirs = await run(redisPort, steps);
      expect(ours.a).toBe(theirs.a);
      expect(ours.b).toBe(theirs.b);
      // The comparison is about something: the subscriber heard messages.
      expect(ours.a).toMatch(name.startsWith('errors') ? /^-ERR/ : /message/);
      if (name === 'keyspace notifications') expect(ours.a).toContain('$7\r\nexpired\r\n');
    });
  }
});
