// Pub/sub over RESP against a server on loopback: raw reply bytes in RESP2 and RESP3, the RESP2
// subscribed mode, the pub/sub output-buffer limit, keyspace notifications (an `expired` event
// from the expiry cycle included), and the pub/sub APIs of ioredis and node-redis.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/io/clock.js';
import type { MemberView } from '../../src/replica/member.js';
import type { ClusterFront } from '../../src/server/resp/cluster-front.js';
import { ClusterPublisher, FANIN_ORIGINS_MAX, FanIn } from '../../src/server/resp/cluster-publish.js';
import { tcpDial } from '../../src/server/resp/socket.js';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

/** PAYLOAD_BYTES, PUBLISHES_MAX: the slow-subscriber test's message size and its upper bound of messages. */
const PAYLOAD_BYTES = 64 * 1024;
const PUBLISHES_MAX = 500;
/** HARD_LIMIT_BYTES: the test server's pub/sub hard limit (lowered from 32 MiB to keep the test quick). */
const HARD_LIMIT_BYTES = 1024 * 1024;

let r: Running;

beforeAll(async () => {
  r = await startServer({
    limits: { pubsubOutputHardBytes: HARD_LIMIT_BYTES, pubsubOutputSoftBytes: HARD_LIMIT_BYTES },
  });
});

afterAll(async () => {
  await r.stop();
});

const cmd = (...args: string[]): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** exchange sends `request` on `c` and waits until everything received so far ends with `expected`. */
async function expectReply(c: RawClient, request: string, expected: string): Promise<void> {
  const before = c.received.length;
  c.send(request);
  const text = await c.until((t) => t.length >= before + expected.length);
  expect(text.slice(before)).toBe(expected);
}

describe('RESP2 subscribed mode', () => {
  it('confirms (un)subscriptions with counts, delivers message and pmessage, and counts receivers', async () => {
    const sub = await RawClient.connect(r.port);
    const pub = await RawClient.connect(r.port);
    try {
      await expectReply(
        sub,
        cmd('SUBSCRIBE', 'news', 'news'),
        '*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n',
      );
      await expectReply(sub, cmd('PSUBSCRIBE', 'n*'), '*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n');
      await expectReply(pub, cmd('PUBLISH', 'news', 'hello'), ':2\r\n');
      await sub.until((t) => t.includes('pmessage'));
      expect(sub.received.toString('latin1')).toContain(
        '*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n',
      );
      await expectReply(
        pub,
        cmd('PUBSUB', 'NUMSUB', 'news', 'other'),
        '*4\r\n$4\r\nnews\r\n:1\r\n$5\r\nother\r\n:0\r\n',
      );
      await expectReply(pub, cmd('PUBSUB', 'NUMPAT'), ':1\r\n');
      await expectReply(pub, cmd('PUBSUB', 'CHANNELS', 'n*'), '*1\r\n$4\r\nnews\r\n');
      await expectReply(
        sub,
        cmd('GET', 'x'),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
      );
      await expectReply(
        sub,
        cmd('CONFIG', 'GET', 'x'),
        "-ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
      );
      await expectReply(sub, cmd('PING'), '*2\r\n$4\r\npong\r\n$0\r\n\r\n');
      await expectReply(sub, cmd('PING', 'hi'), '*2\r\n$4\r\npong\r\n$2\r\nhi\r\n');
      await expectReply(sub, cmd('UNSUBSCRIBE'), '*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n');
      await expectReply(sub, cmd('PUNSUBSCRIBE', 'n*'), '*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n');
      // Out of subscribed mode: every command again, and nil names when nothing is subscribed.
      await expectReply(sub, cmd('PING'), '+PONG\r\n');
      await expectReply(sub, cmd('UNSUBSCRIBE'), '*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n');
      await expectReply(sub, cmd('PUNSUBSCRIBE'), '*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n');
      await expectReply(pub, cmd('PUBLISH', 'news', 'again'), ':0\r\n');
    } finally {
      sub.close();
      pub.close();
    }
  });

  it('RESET leaves subscribed mode; QUIT is allowed; SSUBSCRIBE/SPUBLISH use their own namespace', async () => {
    const c = await RawClient.connect(r.port);
    try {
      await expectReply(c, cmd('SSUBSCRIBE', 's'), '*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n');
      await expectReply(c, cmd('SUBSCRIBE', 's'), '*3\r\n$9\r\nsubscribe\r\n$1\r\ns\r\n:1\r\n');
      const pub = await RawClient.connect(r.port);
      await expectReply(pub, cmd('SPUBLISH', 's', 'm'), ':1\r\n');
      await c.until((t) => t.includes('smessage'));
      expect(c.received.toString('latin1')).toContain('*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n');
      pub.close();
      await expectReply(c, cmd('RESET'), '+RESET\r\n');
      await expectReply(c, cmd('GET', 'x'), '$-1\r\n');
      await expectReply(c, cmd('SUBSCRIBE', 'q'), '*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n');
      await expectReply(c, cmd('QUIT'), '+OK\r\n');
      await c.waitClosed();
    } finally {
      c.close();
    }
  });
});

describe("a cluster's PUBLISH fan-out (CAIRN.PUBLISH)", () => {
  it('FanIn accepts only what is newer than the last accepted of the same origin, and forgets the oldest origin', () => {
    const f = new FanIn();
    expect([f.accept('a@1', 1), f.accept('a@1', 3), f.accept('a@1', 2), f.accept('a@1', 3)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    // Another origin (another member, or a restart of the same one) has its own numbers.
    expect([f.accept('a@2', 1), f.accept('b@1', 2), f.accept('a@1', 4)]).toEqual([true, true, true]);
    // Hearing from a@1 again made it the most recent: filling the table forgets a@2 first.
    for (let i = 0; i < FANIN_ORIGINS_MAX - 2; i++) expect(f.accept(`c${i}@1`, 1)).toBe(true);
    expect(f.accept('a@2', 1)).toBe(true); // forgotten: accepted again
    expect(f.accept('a@1', 4)).toBe(false); // remembered
  });

  it("delivers a publisher's messages in order and drops one that arrives after a newer one (a given-up link)", async () => {
    const sub = await RawClient.connect(r.port);
    const raw = await RawClient.connect(r.port);
    // A member (id 1) whose only other member (id 2) is the test server.
    const view = (id: number, resp: string): MemberView => ({
      id,
      name: `m${id}`,
      peerAddr: '',
      resp,
      http: '',
      role: 'voter',
      started: true,
    });
    const members = [view(1, '127.0.0.1:1'), view(2, `127.0.0.1:${r.port}`)];
    const front = { identity: { id: 1, name: 'm1', clusterId: 'c' }, members: () => members };
    const publisher = new ClusterPublisher(front as unknown as ClusterFront, undefined, systemClock, tcpDial);
    try {
      await expectReply(sub, cmd('SUBSCRIBE', 'fan'), '*3\r\n$9\r\nsubscribe\r\n$3\r\nfan\r\n:1\r\n');
      // The local count (5 here) plus the test server's one subscriber.
      for (const m of ['one', 'two', 'three'])
        expect(await publisher.publish(Buffer.from('fan'), Buffer.from(m), 5)).toBe(6);
      // What a link given up after a timeout may still bring: an earlier message, after these.
      await expectReply(raw, cmd('CAIRN.PUBLISH', 'fan', 'late', publisher.origin, '2'), ':0\r\n');
      await expectReply(raw, cmd('CAIRN.PUBLISH', 'fan', 'late', publisher.origin, '3'), ':0\r\n');
      expect(await publisher.publish(Buffer.from('fan'), Buffer.from('four'), 0)).toBe(1);
      // Without an origin (a member of an older version): delivered as before.
      await expectReply(raw, cmd('CAIRN.PUBLISH', 'fan', 'plain'), ':1\r\n');
      await expectReply(
        raw,
        cmd('CAIRN.PUBLISH', 'fan', 'x', publisher.origin, 'seven'),
        '-ERR value is not an integer or out of range\r\n',
      );
      await expectReply(
        raw,
        cmd('CAIRN.PUBLISH', 'fan', 'x', publisher.origin),
        "-ERR wrong number of arguments for 'cairn.publish' command\r\n",
      );
      await sub.until((t) => t.includes('plain'));
      const got = [...sub.received.toString('latin1').matchAll(/\$3\r\nfan\r\n\$\d+\r\n(\w+)\r\n/g)].map(
        (m) => m[1],
      );
      expect(got).toEqual(['one', 'two', 'three', 'four', 'plain']);
    } finally {
      publisher.close();
      sub.close();
      raw.close();
    }
  });
});

describe('RESP3', () => {
  it('sends confirmations and messages as pushes and allows every command while subscribed', async () => {
    const c = await RawClient.connect(r.port);
    try {
      c.send(cmd('HELLO', '3'));
      await c.until((t) => t.includes('modules'));
      const start = c.received.length;
      c.send(
        cmd('SUBSCRIBE', 'a') +
          cmd('PUBLISH', 'a', 'hi') +
          cmd('PING') +
          cmd('GET', 'nothing') +
          cmd('UNSUBSCRIBE') +
          cmd('UNSUBSCRIBE'),
      );
      const expected =
        '>3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n' +
        '>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n:1\r\n' +
        '+PONG\r\n_\r\n' +
        '>3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n' +
        '>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n';
      const text = await c.until((t) => t.length >= start + expected.length);
      expect(text.slice(start)).toBe(expected);
    } finally {
      c.close();
    }
  });
});

describe('slow subscribers', () => {
  it('a subscriber that never reads is disconnected at the hard limit instead of growing memory', async () => {
    const sub = await RawClient.connect(r.port);
    const pub = await connectIoredis(r.port);
    try {
      await expectReply(
        sub,
        cmd('SUBSCRIBE', 'firehose'),
        '*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n',
      );
      sub.socket.pause(); // never reads again: the kernel buffers fill, then the server's
      const clientsBefore = r.server.clientCount;
      const payload = 'x'.repeat(PAYLOAD_BYTES);
      let sent = 0;
      let receivers = 1;
      while (receivers === 1 && sent < PUBLISHES_MAX) {
        receivers = await pub.publish('firehose', payload);
        sent++;
      }
      expect(receivers).toBe(0);
      // Cut before much more than the kernel's buffers plus the limit was accepted.
      expect(sent).toBeLessThan(PUBLISHES_MAX);
      expect(r.server.clientCount).toBe(clientsBefore - 1);
      expect(await pub.call('PUBSUB', 'NUMSUB', 'firehose')).toEqual(['firehose', 0]);
      sub.socket.resume();
      await sub.waitClosed();
    } finally {
      sub.close();
      pub.disconnect();
    }
  });
});

describe('keyspace notifications', () => {
  it('publishes keyspace and keyevent messages for writes, in order, and `expired` from the expiry cycle', async () => {
    const admin = await connectIoredis(r.port);
    const sub = await connectIoredis(r.port);
    const got: string[] = [];
    try {
      expect(await admin.config('SET', 'notify-keyspace-events', 'KEA')).toBe('OK');
      expect(await admin.config('GET', 'notify-keyspace-events')).toEqual(['notify-keyspace-events', 'AKE']);
      sub.on('pmessage', (_p: string, channel: string, message: string) => got.push(`${channel} ${message}`));
      await sub.psubscribe('__keyevent@0__:*', '__keyspace@0__:ks:*');
      await admin.set('ks:a', '1');
      await admin.incr('ks:a');
      await admin.append('ks:a', 'x');
      await admin.expire('ks:a', 100);
      await admin.del('ks:a', 'ks:missing');
      await admin.set('ks:b', '1', 'NX');
      await admin.set('ks:b', '2', 'NX'); // not written: no event
      await admin.multi().set('ks:c', '1').incrby('ks:c', 5).exec();
      // A script's events follow its batch (published once it is durable, as Redis sends them).
      await admin.eval("redis.call('set', KEYS[1], '1'); return redis.call('incr', KEYS[1])", 1, 'ks:s');
      await admin.set('ks:gone', 'v', 'PX', 30);
      const deadline = Date.now() + 5000;
      while (!got.includes('__keyevent@0__:expired ks:gone') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(got).toEqual([
        '__keyspace@0__:ks:a set',
        '__keyevent@0__:set ks:a',
        '__keyspace@0__:ks:a incrby',
        '__keyevent@0__:incrby ks:a',
        '__keyspace@0__:ks:a append',
        '__keyevent@0__:append ks:a',
        '__keyspace@0__:ks:a expire',
        '__keyevent@0__:expire ks:a',
        '__keyspace@0__:ks:a del',
        '__keyevent@0__:del ks:a',
        '__keyspace@0__:ks:b set',
        '__keyevent@0__:set ks:b',
        '__keyspace@0__:ks:c set',
        '__keyevent@0__:set ks:c',
        '__keyspace@0__:ks:c incrby',
        '__keyevent@0__:incrby ks:c',
        '__keyspace@0__:ks:s set',
        '__keyevent@0__:set ks:s',
        '__keyspace@0__:ks:s incrby',
        '__keyevent@0__:incrby ks:s',
        '__keyspace@0__:ks:gone set',
        '__keyevent@0__:set ks:gone',
        '__keyspace@0__:ks:gone expire',
        '__keyevent@0__:expire ks:gone',
        '__keyspace@0__:ks:gone expired',
        '__keyevent@0__:expired ks:gone',
      ]);
      // Only the classes asked for: `x` alone sends no `set`.
      got.length = 0;
      await admin.config('SET', 'notify-keyspace-events', 'Ex');
      await admin.set('ks:d', '1');
      await admin.set('ks:e', '1', 'PX', 20);
      const deadline2 = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline2)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(got).toEqual(['__keyevent@0__:expired ks:e']);
      await expect(admin.config('SET', 'notify-keyspace-events', 'Q')).rejects.toThrow(
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
      );
    } finally {
      await admin.config('SET', 'notify-keyspace-events', '');
      admin.disconnect();
      sub.disconnect();
    }
  });
});

describe('client libraries', () => {
  it('ioredis: subscribe, psubscribe and message events', async () => {
    const sub = new Redis({ port: r.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const pub = await connectIoredis(r.port);
    try {
      const messages: string[] = [];
      sub.on('message', (channel: string, message: string) => messages.push(`message ${channel} ${message}`));
      sub.on('pmessage', (pattern: string, channel: string, message: string) =>
        messages.push(`pmessage ${pattern} ${channel} ${message}`),
      );
      expect(await sub.subscribe('io:a', 'io:b')).toBe(2);
      expect(await sub.psubscribe('io:*')).toBe(3);
      expect(await pub.publish('io:a', 'one')).toBe(2);
      expect(await pub.publish('io:c', 'two')).toBe(1);
      const deadline = Date.now() + 5000;
      while (messages.length < 3 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(messages).toEqual(['message io:a one', 'pmessage io:* io:a one', 'pmessage io:* io:c two']);
      // By name: ioredis's argument-less unsubscribe() waits for more replies than Redis 7.0 sends too.
      expect(await sub.unsubscribe('io:a', 'io:b')).toBe(1);
      expect(await sub.punsubscribe('io:*')).toBe(0);
      expect(await pub.publish('io:a', 'three')).toBe(0);
    } finally {
      sub.disconnect();
      pub.disconnect();
    }
  });

  it.each([2, 3] as const)(
    'node-redis (RESP%i): subscribe, pSubscribe, listeners get messages',
    async (RESP) => {
      const sub = createClient({ socket: { port: r.port, host: '127.0.0.1' }, RESP });
      const pub = createClient({ socket: { port: r.port, host: '127.0.0.1' } });
      await sub.connect();
      await pub.connect();
      try {
        const messages: string[] = [];
        await sub.subscribe('nr:a', (message, channel) => messages.push(`${channel} ${message}`));
        await sub.pSubscribe('nr:*', (message, channel) => messages.push(`p ${channel} ${message}`));
        expect(await pub.publish('nr:a', 'hello')).toBe(2);
        const deadline = Date.now() + 5000;
        while (messages.length < 2 && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(messages.sort()).toEqual(['nr:a hello', 'p nr:a hello']);
        expect(await pub.pubSubNumSub('nr:a')).toEqual({ 'nr:a': 1 });
        await sub.unsubscribe('nr:a');
        await sub.pUnsubscribe('nr:*');
        expect(await pub.publish('nr:a', 'bye')).toBe(0);
      } finally {
        sub.destroy();
        pub.destroy();
      }
    },
  );
});
