// CLIENT TRACKING over real sockets (docs/tracking.md): node-redis's clientSideCache (RESP3
// pushes) sees every kind of write invalidate what it cached; ioredis (RESP2) hears of them on
// __redis__:invalidate through REDIRECT; and, with a redis-server installed, the exact bytes of
// the push messages, the tracking errors and TRACKINGINFO are compared with Redis's.
import type { Redis } from 'ioredis';
import { BasicClientSideCache, createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedisServer, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

/** until polls `check` until it holds (tracking messages arrive asynchronously). */
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('CLIENT TRACKING against cairn', () => {
  let r: Running;
  let writer: Redis;
  beforeAll(async () => {
    r = await startServer();
    writer = await connectIoredis(r.port);
  });
  afterAll(async () => {
    writer?.disconnect();
    await r?.stop();
  });

  it("node-redis's clientSideCache caches reads and drops them on every kind of write", async () => {
    const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0 });
    const client = createClient({
      socket: { port: r.port, host: '127.0.0.1' },
      RESP: 3,
      clientSideCache: cache,
    });
    await client.connect();
    try {
      await writer.set('csc', 'v1');
      expect(await client.get('csc')).toBe('v1');
      expect(await client.get('csc')).toBe('v1');
      expect(cache.stats().hitCount).toBe(1);
      // A plain write, MULTI/EXEC, a Lua script, TXN.BEGIN/COMMIT, an expiry, a FLUSHALL: each
      // must reach the cache, which would otherwise answer the old value forever.
      const writes: [string, () => Promise<unknown>, string | null][] = [
        ['SET', () => writer.set('csc', 'v2'), 'v2'],
        ['MULTI/EXEC', () => writer.multi().set('csc', 'v3').exec(), 'v3'],
        ['EVAL', () => writer.eval("return redis.call('set', KEYS[1], 'v4')", 1, 'csc'), 'v4'],
        [
          'TXN.COMMIT',
          async () => {
            const t = await connectIoredis(r.port);
            await t.call('TXN.BEGIN');
            await t.set('csc', 'v5');
            await t.call('TXN.COMMIT');
            t.disconnect();
          },
          'v5',
        ],
        ['expiry', () => writer.set('csc', 'v6', 'PX', 50), null],
        ['FLUSHALL', () => writer.set('csc', 'v7').then(() => writer.flushall()), null],
      ];
      for (const [name, write, after] of writes) {
        await client.get('csc'); // cached again
        await write();
        await until(async () => (await client.get('csc')) === after).catch(() => {
          throw new Error(`${name}: the cache kept a stale value`);
        });
      }
    } finally {
      await client.close();
    }
  });

  it('ioredis on RESP2 hears invalidations on __redis__:invalidate through REDIRECT', async () => {
    const sub = await connectIoredis(r.port);
    const data = await connectIoredis(r.port);
    try {
      const heard: unknown[] = [];
      sub.on('messageBuffer', (_channel: Buffer, message: unknown) => heard.push(message));
      const subId = (await sub.client('ID')) as number;
      await sub.subscribe('__redis__:invalidate');
      expect(await data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(subId))).toBe('OK');
      expect(await data.call('CLIENT', 'GETREDIR')).toBe(subId);
      await writer.set('rk', '1');
      expect(await data.get('rk')).toBe('1');
      await writer.set('rk', '2');
      await until(() => heard.length === 1);
      expect((heard[0] as Buffer[]).map(String)).toEqual(['rk']);
      // Forgotten after one invalidation: a second write says nothing until the key is read again.
      await writer.set('rk', '3');
      await data.get('rk');
      await writer.del('rk');
      await until(() => heard.length === 2);
      expect(heard).toHaveLength(2);
      // The redirect target gone: RESP2 clients are not told (RESP3 ones get tracking-redir-broken).
      sub.disconnect();
      await until(async () => !((await data.call('CLIENT', 'LIST')) as string).includes(`id=${subId} `));
      await data.get('rk2');
      await writer.set('rk2', 'x');
      await until(async () =>
        ((await data.call('CLIENT', 'TRACKINGINFO')) as unknown[]).flat().includes('broken_redirect'),
      );
    } finally {
      sub.disconnect();
      data.disconnect();
    }
  });

  it('bounds the table: past trackingTableMaxKeys the oldest key is invalidated early', async () => {
    const small = await startServer({ limits: { trackingTableMaxKeys: 2 } });
    const raw = await RawClient.connect(small.port);
    try {
      raw.send('HELLO 3\r\nCLIENT TRACKING ON\r\nGET a\r\nGET b\r\nGET c\r\nPING done\r\n');
      const text = await raw.until((t) => t.includes('done'));
      expect(text).toContain('>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n');
      expect(text).not.toContain('$1\r\nb\r\n*');
      // INFO reports the table (Redis's tracking_* fields).
      const info = await connectIoredis(small.port);
      const text2 = (await info.info()) as string;
      info.disconnect();
      expect(text2).toContain('tracking_clients:1');
      expect(text2).toContain('tracking_total_keys:2');
      expect(text2).toContain('tracking_total_prefixes:0');
    } finally {
      raw.close();
      await small.stop();
    }
  });
});

const hasRedis = hasRedisServer('tracking.test.ts');

/** Transcript: the bytes one raw client received after its setup, with ids masked. */
async function scenario(port: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const connect = () => RawClient.connect(port);
  let marker = 0;
  /** step sends commands and waits until everything before a PING marker has arrived. */
  const step = async (c: RawClient, commands: string): Promise<void> => {
    const m = `m${++marker}`;
    c.send(`${commands}PING ${m}\r\n`);
    await c.until((t) => t.includes(m));
  };
  const writer = await connect();
  const wait = (c: RawClient) => step(c, '');
  try {
    // Default mode, RESP3: one push per key, forgotten after it; own writes after the reply.
    const a = await connect();
    await step(a, 'HELLO 3\r\n');
    const base = a.received.length;
    await step(a, 'CLIENT TRACKING ON\r\nGET k\r\nMGET j l\r\nCLIENT TRACKINGINFO\r\nCLIENT GETREDIR\r\n');
    await step(writer, 'SET k 1\r\nMSET j 1 l 2\r\nSET k 2\r\n');
    await wait(a);
    await step(a, 'GET k\r\nSET k 3\r\nGET j\r\nMULTI\r\nGET j\r\nSET j 9\r\nEXEC\r\n');
    await step(a, 'GET k\r\n');
    await step(writer, 'FLUSHALL\r\n');
    await wait(a);
    out.default = a.received.subarray(base).toString('latin1');
    a.close();

    // NOLOOP, OPTIN with CLIENT CACHING yes.
    const b = await connect();
    await step(b, 'HELLO 3\r\n');
    const baseB = b.received.length;
    await step(b, 'CLIENT TRACKING ON NOLOOP\r\nGET n\r\nSET n 1\r\nCLIENT TRACKING OFF\r\n');
    await step(
      b,
      'CLIENT TRACKING ON OPTIN\r\nGET o1\r\nCLIENT CACHING yes\r\nGET o2\r\nCLIENT TRACKINGINFO\r\n',
    );
    await step(writer, 'SET o1 x\r\nSET o2 x\r\n');
    await wait(b);
    out.optin = b.received.subarray(baseB).toString('latin1');
    b.close();

    // BCAST with prefixes: one message per prefix with every written key under it.
    const c = await connect();
    await step(c, 'HELLO 3\r\n');
    const baseC = c.received.length;
    await step(c, 'CLIENT TRACKING ON BCAST PREFIX user: PREFIX cfg\r\nCLIENT TRACKINGINFO\r\n');
    await step(writer, 'SET user:1 a\r\nSET other b\r\nMSET user:2 a user:3 b cfg.x c\r\nDEL user:1\r\n');
    await wait(c);
    out.bcast = c.received.subarray(baseC).toString('latin1');
    c.close();

    // RESP2 with REDIRECT: invalidations as pub/sub messages on the target.
    const target = await connect();
    await step(target, 'CLIENT ID\r\n');
    const id = /:(\d+)\r\n/.exec(target.received.toString('latin1'))![1]!;
    await step(target, 'SUBSCRIBE __redis__:invalidate\r\n');
    const baseT = target.received.length;
    const d = await connect();
    await step(d, `CLIENT TRACKING ON REDIRECT ${id}\r\nGET r\r\nCLIENT TRACKINGINFO\r\nCLIENT GETREDIR\r\n`);
    await step(writer, 'SET r 1\r\nFLUSHALL\r\n');
    await wait(d);
    await wait(target);
    out.redirect = d.received.toString('latin1').replaceAll(`:${id}\r\n`, ':ID\r\n');
    out.redirectTarget = target.received.subarray(baseT).toString('latin1');
    d.close();
    target.close();

    // The errors, in Redis's order of checks.
    const e = await connect();
    await step(
      e,
      [
        'CLIENT TRACKING ON PREFIX a',
        'CLIENT TRACKING ON OPTIN OPTOUT',
        'CLIENT TRACKING ON BCAST OPTIN',
        'CLIENT TRACKING ON BCAST PREFIX a PREFIX ab',
        'CLIENT TRACKING ON REDIRECT 999999',
        'CLIENT TRACKING ON REDIRECT x',
        'CLIENT TRACKING ON BOGUS',
        'CLIENT CACHING yes',
        'CLIENT TRACKING ON OPTIN',
        'CLIENT CACHING no',
        'CLIENT CACHING maybe',
        'CLIENT TRACKING ON OPTOUT',
        'CLIENT TRACKING ON BCAST',
        'CLIENT TRACKING OFF',
        'CLIENT TRACKING ON BCAST PREFIX a',
        'CLIENT TRACKING ON BCAST PREFIX abc',
        'CLIENT TRACKINGINFO',
        '',
      ].join('\r\n'),
    );
    out.errors = e.received.toString('latin1');
    e.close();
  } finally {
    writer.close();
  }
  return out;
}

describe.skipIf(!hasRedis)('CLIENT TRACKING against a real redis-server', () => {
  let ours: Running | undefined;
  let theirs: RedisServer | undefined;
  beforeAll(async () => {
    ours = await startServer();
    theirs = await startRedisServer();
  });
  afterAll(async () => {
    theirs?.stop();
    await ours?.stop();
  });

  it('sends the same push messages, errors and TRACKINGINFO, byte for byte', async () => {
    const a = await scenario(ours!.port);
    const b = await scenario(theirs!.port);
    for (const name of Object.keys(b)) expect({ name, text: a[name] }).toEqual({ name, text: b[name] });
  });
});
