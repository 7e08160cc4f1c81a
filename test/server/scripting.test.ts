// Lua scripting over RESP (docs/lua.md): atomicity of a script's read-modify-write under
// concurrent clients, its writes as one batch, the time limit, EVAL_RO, EVALSHA/SCRIPT, scripts
// inside transactions, binary values, and ioredis's defineCommand/eval. Redis's conversions and
// error texts are compared with a real redis-server in redis-diff-lua.test.ts.
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { connectIoredis, type Running, startServer } from './support.js';

/** CLIENTS x SCRIPTS_PER_CLIENT read-modify-write scripts race on one key. */
const CLIENTS = 20;
const SCRIPTS_PER_CLIENT = 50;
/** A short time limit, so the runaway-script tests run quickly. */
const SCRIPT_TIME_MS = 200;

const GET_SET_INCREMENT = `
local v = tonumber(redis.call('get', KEYS[1]) or '0')
redis.call('set', KEYS[1], v + 1)
return v + 1`;

let r: Running | undefined;
let clients: Redis[] = [];

afterEach(async () => {
  for (const c of clients) c.disconnect();
  clients = [];
  await r?.stop();
  r = undefined;
});

async function start(scriptTimeMs?: number): Promise<Redis> {
  r = await startServer(scriptTimeMs === undefined ? {} : { limits: { scriptTimeMs } });
  const c = await connectIoredis(r.port);
  clients.push(c);
  return c;
}

describe('Lua scripts over RESP', () => {
  it('runs a GET-then-SET script atomically: 20 clients never lose an update', async () => {
    await start();
    for (let i = 0; i < CLIENTS; i++) clients.push(await connectIoredis(r!.port));
    const seen = await Promise.all(
      clients.slice(1).map(async (c) => {
        const out: number[] = [];
        for (let j = 0; j < SCRIPTS_PER_CLIENT; j++)
          out.push((await c.eval(GET_SET_INCREMENT, 1, 'hot')) as number);
        return out;
      }),
    );
    const all = seen.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: CLIENTS * SCRIPTS_PER_CLIENT }, (_, i) => i + 1));
    expect(await clients[0]!.get('hot')).toBe(String(CLIENTS * SCRIPTS_PER_CLIENT));
    expect(await r!.db.getString('hot')).toBe(String(CLIENTS * SCRIPTS_PER_CLIENT));
  });

  it("makes a script's writes visible together: readers never see half of them", async () => {
    const c = await start();
    const writer = await connectIoredis(r!.port);
    const reader = await connectIoredis(r!.port);
    clients.push(writer, reader);
    const script = "redis.call('set', KEYS[1], ARGV[1]); redis.call('set', KEYS[2], ARGV[1]); return 1";
    let stop = false;
    const torn: string[] = [];
    const reading = (async () => {
      while (!stop) {
        const [a, b] = await reader.mget('pair:a', 'pair:b');
        if (a !== b) torn.push(`${a} ${b}`);
      }
    })();
    for (let i = 0; i < 300; i++) await writer.eval(script, 2, 'pair:a', 'pair:b', String(i));
    stop = true;
    await reading;
    expect(torn).toEqual([]);
    expect(await c.mget('pair:a', 'pair:b')).toEqual(['299', '299']);
  });

  it('reads its own writes inside the script, and keeps TTLs as the commands do', async () => {
    const c = await start();
    await c.set('t', '5', 'EX', 100);
    const reply = await c.eval(
      "redis.call('incr', KEYS[1]); return {redis.call('get', KEYS[1]), redis.call('ttl', KEYS[1]), redis.call('exists', 'nope')}",
      1,
      't',
    );
    expect(reply).toEqual(['6', 100, 0]);
    expect(await c.ttl('t')).toBeGreaterThan(98);
  });

  it('stops a runaway script at the time limit, writes nothing of it, and keeps serving', async () => {
    const c = await start(SCRIPT_TIME_MS);
    const started = Date.now();
    await expect(c.eval("redis.call('set', 'runaway', '1') while true do end", 0)).rejects.toThrow(
      /Script killed: it ran longer than the time limit of 200 ms/,
    );
    expect(Date.now() - started).toBeLessThan(SCRIPT_TIME_MS * 10);
    expect(await c.get('runaway')).toBeNull();
    // pcall cannot swallow the limit's error.
    await expect(c.eval('while true do pcall(function() while true do end end) end', 0)).rejects.toThrow(
      /time limit/,
    );
    expect(await c.ping()).toBe('PONG');
    expect(await c.eval('return 7', 0)).toBe(7);
  });

  it('bounds string.rep, a one-instruction allocation the hook cannot see', async () => {
    const c = await start();
    await expect(c.eval("return string.rep('x', 2^40)", 0)).rejects.toThrow(/resulting string too large/);
  });

  it('gives scripts the version the server answers as, as Redis 7 does', async () => {
    const c = await start();
    const info = await c.info('server');
    const version = /redis_version:([0-9.]+)/.exec(info)?.[1];
    expect(version).toBeDefined();
    expect(await c.eval('return redis.REDIS_VERSION', 0)).toBe(version);
    const [major, minor, patch] = version!.split('.').map(Number);
    expect(await c.eval('return redis.REDIS_VERSION_NUM', 0)).toBe(major! * 65536 + minor! * 256 + patch!);
  });

  it('keeps the writes made before an error, as Redis does', async () => {
    const c = await start();
    await c.set('s', 'abc');
    await expect(
      c.eval("redis.call('set', 'before', '1'); redis.call('incr', 's'); redis.call('set', 'after', '1')", 0),
    ).rejects.toThrow(
      /ERR value is not an integer or out of range script: [0-9a-f]{40}, on @user_script:1\./,
    );
    expect(await c.get('before')).toBe('1');
    expect(await c.get('after')).toBeNull();
  });

  it('refuses writes in EVAL_RO and EVALSHA_RO', async () => {
    const c = await start();
    await expect(c.call('EVAL_RO', "return redis.call('set', 'k', 'v')", '0')).rejects.toThrow(
      /^ERR Write commands are not allowed from read-only scripts\. script: /,
    );
    await c.set('k', 'v');
    expect(await c.call('EVAL_RO', "return redis.call('get', KEYS[1])", '1', 'k')).toBe('v');
    const sha = (await c.script('LOAD', "return redis.call('del', 'k')")) as string;
    await expect(c.call('EVALSHA_RO', sha, '0')).rejects.toThrow(/read-only scripts/);
    expect(await c.get('k')).toBe('v');
  });

  it('caches scripts by SHA1: SCRIPT LOAD, EXISTS, FLUSH and NOSCRIPT', async () => {
    const c = await start();
    const sha = (await c.script('LOAD', 'return ARGV[1]')) as string;
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await c.evalsha(sha, 0, 'hi')).toBe('hi');
    expect(await c.script('EXISTS', sha, '0'.repeat(40))).toEqual([1, 0]);
    expect(await c.script('FLUSH')).toBe('OK');
    await expect(c.evalsha(sha, 0, 'hi')).rejects.toThrow('NOSCRIPT No matching script. Please use EVAL.');
    await expect(c.script('KILL')).rejects.toThrow('NOTBUSY No scripts in execution right now.');
    await expect(c.eval('return (', 0)).rejects.toThrow(
      /^ERR Error compiling script \(new function\): user_script:1:/,
    );
  });

  it('passes binary keys, arguments and values through unchanged', async () => {
    const c = await start();
    const key = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    const value = Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef, 0xff]);
    await c.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, key, value);
    expect(await c.getBuffer(key)).toEqual(value);
    const back = (await c.callBuffer(
      'EVAL',
      "return {redis.call('get', KEYS[1]), ARGV[1]}",
      '1',
      key,
      value,
    )) as Buffer[];
    expect(back).toEqual([value, value]);
  });

  it('runs a script inside MULTI/EXEC and inside TXN.BEGIN against the transaction', async () => {
    const c = await start();
    await c.set('x', '1');
    const replies = await c
      .multi()
      .incr('x')
      .eval("return redis.call('incrby', KEYS[1], 10)", 1, 'x')
      .get('x')
      .exec();
    expect(replies).toEqual([
      [null, 2],
      [null, 12],
      [null, '12'],
    ]);
    await c.call('TXN.BEGIN');
    expect(await c.eval("redis.call('set', 'y', 'in-txn'); return redis.call('get', 'x')", 0)).toBe('12');
    expect(await c.get('y')).toBe('in-txn');
    const other = await connectIoredis(r!.port);
    clients.push(other);
    expect(await other.get('y')).toBeNull();
    await c.call('TXN.COMMIT');
    expect(await other.get('y')).toBe('in-txn');
  });

  it('refuses commands a script cannot run, with Redis errors where Redis has them', async () => {
    const c = await start();
    await expect(c.eval("return redis.call('watch', 'k')", 0)).rejects.toThrow(
      /^ERR This Redis command is not allowed from script script: /,
    );
    await expect(c.eval("return redis.call('keys', '*')", 0)).rejects.toThrow(
      /^ERR This command is not supported inside scripts by Cairn script: /,
    );
  });

  it("computes in doubles as Redis's Lua 5.1 does: no 32-bit wrap, numbers print as %.14g", async () => {
    const c = await start();
    expect(await c.eval('local a = 100000; return a * a', 0)).toBe(10000000000);
    expect(await c.eval('return 65536 * 65536', 0)).toBe(4294967296);
    expect(await c.eval('return 2147483647 + 1', 0)).toBe(2147483648);
    expect(await c.eval("return redis.call('incrby', KEYS[1], 2000000000) * 2", 1, 'big')).toBe(4000000000);
    expect(await c.eval("redis.call('set', KEYS[1], 65536 * 65536); return 1", 1, 'big')).toBe(1);
    expect(await c.get('big')).toBe('4294967296');
    expect(await c.eval("return tostring(10 / 2) .. ' ' .. tostring(2^53) .. ' ' .. tostring(1/0)", 0)).toBe(
      '5 9.007199254741e+15 inf',
    );
  });

  it('answers a self-referencing table with reached lua stack limit, deep in the reply', async () => {
    const c = await start();
    let reply: unknown = await c.eval('local t = {}; t[1] = t; return t', 0);
    let depth = 0;
    while (Array.isArray(reply)) {
      expect(reply).toHaveLength(1);
      reply = reply[0];
      depth++;
    }
    expect(depth).toBe(1000);
    expect(reply).toBeInstanceOf(Error);
    expect((reply as Error).message).toBe('ERR reached lua stack limit');
    expect(await c.eval('local t = {1}; for i = 1, 50 do t = {t} end; return #t', 0)).toBe(1);
  });

  it("works with ioredis's defineCommand and eval", async () => {
    const c = await start();
    c.defineCommand('incrTo', {
      numberOfKeys: 1,
      lua: `local v = redis.call('incrby', KEYS[1], ARGV[1]) if v > tonumber(ARGV[2]) then return redis.error_reply('LIMIT reached') end return v`,
    });
    const withCommand = c as Redis & { incrTo(key: string, by: number, max: number): Promise<number> };
    expect(await withCommand.incrTo('limited', 3, 10)).toBe(3);
    expect(await withCommand.incrTo('limited', 3, 10)).toBe(6);
    expect(await withCommand.incrTo('limited', 3, 10)).toBe(9);
    await expect(withCommand.incrTo('limited', 3, 10)).rejects.toThrow('LIMIT reached');
    // The first call went out as EVALSHA, failed with NOSCRIPT, and ioredis fell back to EVAL.
    expect(
      await c.script(
        'EXISTS',
        (c as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet.incrTo!.sha,
      ),
    ).toEqual([1]);
    expect(await c.eval('return {KEYS[1], ARGV[1]}', 1, 'k', 'a')).toEqual(['k', 'a']);
  });
});
