import * as net from 'node:net';
// The server under stress and abuse: deep pipelines, oversized frames, slow readers, too many
// clients, passwords, restarts, concurrent increments, and protocol fuzzing.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/protocol/resp/index.js';
import { REJECTED_LINGER_MS } from '../../src/server/resp/server.js';
import { Prng } from '../../src/stdx/prng.js';
import { tmpDir } from '../support/tmp-dir.js';
import { RawClient, type Running, startServer } from './support.js';

/** FUZZ_MS: how long the protocol fuzzer runs (CI may raise it with CAIRN_FUZZ_MS). */
const FUZZ_MS = Number(process.env.CAIRN_FUZZ_MS ?? 3000);

let r: Running;
beforeAll(async () => {
  r = await startServer();
});
afterAll(async () => {
  await r.stop();
});

const ioClient = (port: number, extra: Record<string, unknown> = {}) =>
  new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null, ...extra });

describe('RESP server robustness', () => {
  it('answers a pipeline of 100k commands correctly and in order', async () => {
    const c = await RawClient.connect(r.port);
    const n = 100_000;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(encodeCommand(i % 2 === 0 ? ['INCR', 'p100k'] : ['GET', 'p100k']));
    c.send(Buffer.concat(parts));
    const expected: string[] = [];
    for (let i = 0; i < n; i++) {
      const v = Math.floor(i / 2) + 1;
      expected.push(i % 2 === 0 ? `:${v}\r\n` : `$${String(v).length}\r\n${v}\r\n`);
    }
    const want = expected.join('');
    const text = await c.until((t) => t.length >= want.length, 30_000);
    expect(text).toBe(want);
    c.close();
  });

  it('replies with an error and closes on an oversized bulk or too many arguments', async () => {
    for (const frame of ['*1\r\n$999999999999\r\n', '*99999999\r\n', '*1\r\n$3\r\nabcXY']) {
      const c = await RawClient.connect(r.port);
      c.send(frame);
      const text = await c.waitClosed();
      expect(text).toMatch(/^-ERR Protocol error: /);
      expect(c.closed).toBe(true);
    }
    const ok = await RawClient.connect(r.port);
    ok.send('PING\r\n');
    expect(await ok.until((t) => t.includes('\r\n'))).toBe('+PONG\r\n');
    ok.close();
  });

  it('drops a connection that speaks HTTP before its body runs (cross-protocol attack)', async () => {
    // What a web page can make a browser send to 127.0.0.1:6379: each body line would be an
    // inline command. The same with the Host: header first (some clients order headers so).
    for (const request of [
      'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 24\r\n\r\n\r\nSET pwned-by-http yes\r\n',
      'Host: 127.0.0.1\r\n\r\nSET pwned-by-http yes\r\n',
    ]) {
      const c = await RawClient.connect(r.port);
      c.send(request);
      await c.waitClosed();
      expect(c.closed).toBe(true);
    }
    expect(await r.db.get('pwned-by-http')).toBeUndefined();
    const ok = await RawClient.connect(r.port);
    ok.send('PING\r\n');
    expect(await ok.until((t) => t.includes('\r\n'))).toBe('+PONG\r\n');
    ok.close();
  });

  it('stops reading from a client that does not read its replies (memory bounded)', async () => {
    await r.db.set('big', Buffer.alloc(1024 * 1024, 1));
    const c = await RawClient.connect(r.port);
    c.socket.pause();
    const get = encodeCommand(['GET', 'big']);
    // 2000 x 1 MiB of replies would be 2 GiB if the server buffered them.
    for (let i = 0; i < 2000; i++) c.socket.write(get);
    const before = process.memoryUsage().rss;
    await new Promise((res) => setTimeout(res, 1000));
    const grown = process.memoryUsage().rss - before;
    expect(grown).toBeLessThan(300 * 1024 * 1024);
    const other = ioClient(r.port);
    expect(await other.ping()).toBe('PONG');
    other.disconnect();
    c.close();
  });

  it('refuses clients beyond maxclients', async () => {
    const s = await startServer({ maxClients: 2 });
    const a = await RawClient.connect(s.port);
    const b = await RawClient.connect(s.port);
    a.send('PING\r\n');
    await a.until((t) => t.length > 0);
    const c = await RawClient.connect(s.port);
    expect(await c.waitClosed()).toBe('-ERR max number of clients reached\r\n');
    a.close();
    b.close();
    await s.stop();
  });

  it('closes the connections it turns away, those that sent a command too, and its close does not wait for them', async () => {
    const s = await startServer({ maxClients: 1 });
    const a = await RawClient.connect(s.port);
    a.send('PING\r\n');
    await a.until((t) => t.length > 0);
    const turned: RawClient[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.connect(s.port);
      c.send('SET k v\r\n'); // unread by the server: it kept these sockets open for ever
      turned.push(c);
    }
    for (const c of turned) expect(await c.waitClosed()).toBe('-ERR max number of clients reached\r\n');
    a.close();
    // The server's close waits for its connections: before the fix it never finished.
    const started = Date.now();
    await s.stop();
    expect(Date.now() - started).toBeLessThan(REJECTED_LINGER_MS + 2_000);
  });

  it('requires AUTH when a password is set', async () => {
    const s = await startServer({ requirePass: 'sekret' });
    const c = await RawClient.connect(s.port);
    c.send(
      Buffer.concat([
        encodeCommand(['GET', 'x']),
        encodeCommand(['AUTH', 'wrong']),
        encodeCommand(['AUTH', 'sekret']),
        encodeCommand(['GET', 'x']),
      ]),
    );
    const text = await c.until((t) => t.endsWith('$-1\r\n'));
    expect(text).toBe(
      '-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n$-1\r\n',
    );
    c.close();
    const io = ioClient(s.port, { password: 'sekret' });
    expect(await io.set('a', 'b')).toBe('OK');
    io.disconnect();
    await s.stop();
  });

  it('refuses to buffer large requests before AUTH, and takes them after it (entry 7)', async () => {
    const s = await startServer({ requirePass: 'sekret' });
    // A header announcing a big argument, or many, is refused at once and the client cut off,
    // before any payload arrives (as Redis since 6.2.6).
    for (const [header, error] of [
      ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n', 'unauthenticated bulk length'],
      ['*1000\r\n', 'unauthenticated multibulk length'],
    ] as const) {
      const c = await RawClient.connect(s.port);
      c.send(header);
      expect(await c.waitClosed()).toBe(`-ERR Protocol error: ${error}\r\n`);
    }
    // Small commands before AUTH get NOAUTH; after AUTH, in the same chunk, big ones are fine.
    const c = await RawClient.connect(s.port);
    const big = 'v'.repeat(100_000);
    c.send(
      Buffer.concat([
        encodeCommand(['GET', 'x']),
        encodeCommand(['AUTH', 'sekret']),
        encodeCommand(['SET', 'big', big]),
        encodeCommand(['STRLEN', 'big']),
      ]),
    );
    expect(await c.until((t) => t.endsWith(':100000\r\n'))).toBe(
      '-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n:100000\r\n',
    );
    c.close();
    await s.stop();
  });

  it('closes idle connections at once on shutdown instead of waiting out the grace period (entry 14)', async () => {
    // A grace period far longer than the test's timeout: only connections with commands in
    // flight may use it.
    const s = await startServer({ limits: { closeGraceMs: 120_000 } });
    // An idle client that does not close its side when the server does (as redis-cli blocked on
    // its input, or a pool that only notices at its next use).
    const idle = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    idle.on('data', (d: Buffer) => {
      got += d.toString();
    });
    const ended = new Promise<void>((resolve) => idle.on('end', () => resolve()));
    idle.write(encodeCommand(['SET', 'k', 'v']));
    while (got !== '+OK\r\n') await new Promise((r) => setTimeout(r, 10));
    // close() resolves once every connection is gone, which the client did not wait for.
    await s.server.close();
    await ended;
    expect(got).toBe('+OK\r\n');
    idle.destroy();
    await s.db.close();
  });

  it('keeps acknowledged data across close and reopen', async () => {
    const dir = tmpDir('resp-restart');
    const s1 = await startServer({ dir });
    const io1 = ioClient(s1.port);
    await io1.set('durable', 'yes');
    await io1.incrby('n', 5);
    io1.disconnect();
    await s1.stop();
    const s2 = await startServer({ dir });
    const io2 = ioClient(s2.port);
    expect(await io2.get('durable')).toBe('yes');
    expect(await io2.get('n')).toBe('5');
    io2.disconnect();
    await s2.stop();
  });

  it('50 concurrent clients incrementing one counter reach the exact total', async () => {
    const clients = Array.from({ length: 50 }, () => ioClient(r.port));
    await Promise.all(
      clients.map(async (c) => {
        const p = c.pipeline();
        for (let i = 0; i < 100; i++) p.incr('lin');
        await p.exec();
        for (let i = 0; i < 20; i++) await c.incr('lin');
      }),
    );
    expect(await clients[0]!.get('lin')).toBe(String(50 * 120));
    for (const c of clients) c.disconnect();
  });

  it('survives random and mutated frames while a well-behaved client keeps working', async () => {
    const rng = new Prng(42);
    const valid = [
      encodeCommand(['SET', 'fz', 'v']),
      encodeCommand(['GET', 'fz']),
      encodeCommand(['INCR', 'fzn']),
      encodeCommand(['MSET', 'a', '1', 'b', '2']),
      Buffer.from('PING\r\n'),
      Buffer.from('SET "q x" \'y\'\r\n'),
    ];
    const good = ioClient(r.port);
    const deadline = Date.now() + FUZZ_MS;
    const startRss = process.memoryUsage().rss;
    let rounds = 0;
    let goodOps = 0;
    const fuzzers = Array.from({ length: 4 }, async () => {
      while (Date.now() < deadline) {
        const c = await RawClient.connect(r.port);
        const frame = Buffer.from(valid[rng.int(valid.length)]!);
        const mode = rng.int(3);
        let data: Buffer;
        if (mode === 0) data = Buffer.from(Array.from({ length: rng.int(200) + 1 }, () => rng.int(256)));
        else {
          data = Buffer.concat([frame, frame]);
          for (let i = 0; i < 1 + rng.int(4); i++) data[rng.int(data.length)] = rng.int(256);
        }
        c.send(data);
        await c.until((t) => t.length > 0, 200).catch(() => '');
        c.close();
        rounds++;
      }
    });
    const checker = (async () => {
      while (Date.now() < deadline) {
        const v = `v${goodOps}`;
        await good.set('good', v);
        expect(await good.get('good')).toBe(v);
        goodOps++;
      }
    })();
    await Promise.all([...fuzzers, checker]);
    expect(rounds).toBeGreaterThan(10);
    expect(goodOps).toBeGreaterThan(10);
    expect(process.memoryUsage().rss - startRss).toBeLessThan(300 * 1024 * 1024);
    expect(await good.ping()).toBe('PONG');
    good.disconnect();
  });

  it('close() lets in-flight commands finish and then closes the sockets', async () => {
    const s = await startServer();
    const c = await RawClient.connect(s.port);
    const n = 1000;
    c.send(Buffer.concat(Array.from({ length: n }, (_, i) => encodeCommand(['SET', `k${i}`, 'v']))));
    await c.until((t) => t.length > 0);
    await s.server.close();
    const text = await c.waitClosed();
    // Every command the server executed got its reply before the close.
    expect(text).toMatch(/^(\+OK\r\n)+$/);
    await s.db.close();
  });
});
