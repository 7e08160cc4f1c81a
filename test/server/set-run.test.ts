// Runs of plain SETs (src/server/resp/set-run.ts): pipelined `SET key value` commands of one read
// are written as one commit, and every SET still answers, counts and notifies as itself, in order.
// Each test sends its whole pipeline in one socket write, which a loopback connection delivers
// in one read (well under the socket's buffer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_BYTES_MAX } from '../../src/storage/limits.js';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

const cmd = (...args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    Buffer.from(`*${args.length}\r\n`),
    ...args.flatMap((a) => {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
      return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')];
    }),
  ]);

const oks = (text: string): number => text.split('+OK\r\n').length - 1;

/** revision: TXN.REVISION's [value, mod, create, version] of `key`. */
type Revision = [string, number, number, number];

let s: Running;

beforeAll(async () => {
  s = await startServer();
});

afterAll(async () => {
  await s.stop();
});

async function revisions(keys: readonly string[]): Promise<Revision[]> {
  const io = await connectIoredis(s.port);
  try {
    return (await Promise.all(keys.map((k) => io.call('txn.revision', k)))) as Revision[];
  } finally {
    io.disconnect();
  }
}

describe('a run of plain SETs', () => {
  it('answers each SET in order and commits the run at one timestamp', async () => {
    const c = await RawClient.connect(s.port);
    const keys = Array.from({ length: 20 }, (_, i) => `run:a:${i}`);
    c.send(Buffer.concat(keys.map((k, i) => cmd('SET', k, `v${i}`))));
    expect(await c.until((t) => oks(t) === 20)).toBe('+OK\r\n'.repeat(20));
    const revs = await revisions(keys);
    expect(revs.map((r) => r[0])).toEqual(keys.map((_, i) => `v${i}`));
    expect(new Set(revs.map((r) => r[1])).size).toBe(1);
    // Each key is new: its own creation, version 1.
    expect(revs.map((r) => r[3])).toEqual(keys.map(() => 1));
    c.close();
  });

  it('ends a run at a second SET of one key, so that each write of a key counts in its revision', async () => {
    const c = await RawClient.connect(s.port);
    c.send(
      Buffer.concat([
        cmd('SET', 'run:d', '1'),
        cmd('SET', 'run:e', '1'),
        cmd('SET', 'run:d', '2'),
        cmd('SET', 'run:f', '1'),
      ]),
    );
    expect(await c.until((t) => oks(t) === 4)).toBe('+OK\r\n'.repeat(4));
    const [d, e, f] = await revisions(['run:d', 'run:e', 'run:f']);
    expect(d?.[0]).toBe('2');
    expect(d?.[3]).toBe(2); // two writes
    expect(d?.[1]).toBe(f?.[1]); // the second run
    expect(e?.[1]).not.toBe(f?.[1]);
    c.close();
  });

  it('keeps the order of reads between SETs, which read the writes before them', async () => {
    const c = await RawClient.connect(s.port);
    c.send(
      Buffer.concat([
        cmd('SET', 'run:g', 'one'),
        cmd('GET', 'run:g'),
        cmd('SET', 'run:g', 'two'),
        cmd('SET', 'run:h', 'x'),
        cmd('GET', 'run:g'),
        cmd('SET', 'run:h', 'y'),
      ]),
    );
    const expected = '+OK\r\n$3\r\none\r\n+OK\r\n+OK\r\n$3\r\ntwo\r\n+OK\r\n';
    expect(await c.until((t) => t.length >= expected.length)).toBe(expected);
    c.close();
  });

  it('runs a SET that could be refused on its own: its error is its own, the SETs around it succeed', async () => {
    const c = await RawClient.connect(s.port);
    const big = Buffer.alloc(100_000, 0x61); // over a run's value bound, under the store's
    const tooLongKey = Buffer.alloc(KEY_BYTES_MAX + 1, 0x6b);
    c.send(
      Buffer.concat([
        cmd('SET', 'run:i1', 'a'),
        cmd('SET', 'run:big', big),
        cmd('SET', 'run:i2', 'b'),
        cmd('SET', tooLongKey, 'c'),
        cmd('SET', 'run:i3', 'd'),
        cmd('SET', 'run:i4', 'e'),
      ]),
    );
    const text = await c.until((t) => oks(t) === 5 && t.includes('-'));
    expect(text).toMatch(/^\+OK\r\n\+OK\r\n\+OK\r\n-[^\r\n]*key is 65537 bytes[^\r\n]*\r\n\+OK\r\n\+OK\r\n$/);
    const io = await connectIoredis(s.port);
    expect(await io.mget('run:i1', 'run:i2', 'run:i3', 'run:i4')).toEqual(['a', 'b', 'd', 'e']);
    expect((await io.getBuffer('run:big'))?.equals(big)).toBe(true);
    io.disconnect();
    c.close();
  });

  it('counts every SET of a run in the command statistics and publishes its event, in order', async () => {
    const admin = await connectIoredis(s.port);
    const sub = await connectIoredis(s.port);
    const got: string[] = [];
    try {
      await admin.config('SET', 'notify-keyspace-events', 'KEA');
      sub.on('pmessage', (_p: string, channel: string, message: string) => got.push(`${channel} ${message}`));
      await sub.psubscribe('__keyevent@0__:set');
      const calls = async (): Promise<number> =>
        Number(/cmdstat_set:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
      const before = await calls();
      const c = await RawClient.connect(s.port);
      const keys = ['run:n1', 'run:n2', 'run:n3', 'run:n4', 'run:n5'];
      c.send(Buffer.concat(keys.map((k) => cmd('set', k, 'v'))));
      await c.until((t) => oks(t) === keys.length);
      c.close();
      const deadline = Date.now() + 5000;
      while (got.length < keys.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got).toEqual(keys.map((k) => `__keyevent@0__:set ${k}`));
      expect((await calls()) - before).toBe(keys.length);
    } finally {
      await admin.config('SET', 'notify-keyspace-events', '');
      admin.disconnect();
      sub.disconnect();
    }
  });

  it('answers the SETs read before a protocol error, then the error', async () => {
    const c = await RawClient.connect(s.port);
    c.send(
      Buffer.concat([cmd('SET', 'run:p1', 'a'), cmd('SET', 'run:p2', 'b'), Buffer.from('*1\r\n$x\r\n')]),
    );
    expect(await c.waitClosed()).toMatch(/^\+OK\r\n\+OK\r\n-ERR Protocol error: [^\r\n]*\r\n$/);
    const io = await connectIoredis(s.port);
    expect(await io.mget('run:p1', 'run:p2')).toEqual(['a', 'b']);
    io.disconnect();
  });

  it('leaves SETs inside MULTI queued, one by one', async () => {
    const c = await RawClient.connect(s.port);
    c.send(Buffer.concat([cmd('MULTI'), cmd('SET', 'run:m1', '1'), cmd('SET', 'run:m2', '2'), cmd('EXEC')]));
    const expected = '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n';
    expect(await c.until((t) => t.length >= expected.length)).toBe(expected);
    c.close();
  });
});
