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

  it('CLIENT LIST takes TYPE and ID as Redis does (it ignored them: found from outside)', async () => {
    // Only replies that name no client compare across servers (ids and addresses differ).
    expect(
      await diff([
        ['client', 'list', 'type', 'master'],
        ['client', 'list', 'type', 'REPLICA'],
        ['client', 'list', 'type', 'slave'],
        ['client', 'list', 'type', 'pubsub'],
        ['client', 'list', 'type', 'foo'],
        ['client', 'list', 'type', 'normal', 'x'],
        ['client', 'list', 'type'],
        ['client', 'list', 'id'],
        ['client', 'list', 'id', 'abc'],
        ['client', 'list', 'id', '999999', '-3'],
        ['client', 'list', 'id', '999999', 'x'],
        ['client', 'list', 'x'],
      ]),
    ).toEqual([]);
    // Filters that list clients: this connection by its id (twice), by type, and a subscriber.
    const own = (await pair.ours.client('ID')) as number;
    const byId = (await pair.ours.call('client', 'list', 'id', String(own), '999999', String(own))) as string;
    expect(
      byId
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]),
    ).toEqual([`id=${own}`, `id=${own}`]);
    const sub = new Redis({ port: pair.ours.options.port!, host: '127.0.0.1' });
    try {
      await sub.subscribe('news');
      const subId = (await pair.ours.call('client', 'list', 'type', 'pubsub')) as string;
      expect(subId.split('\n').filter(Boolean)).toHaveLength(1);
      expect(subId).toContain('sub=1');
      const normal = (await pair.ours.call('client', 'list', 'type', 'normal')) as string;
      expect(normal).toContain(`id=${own} `);
      expect(normal).not.toContain('sub=1');
    } finally {
      sub.disconnect();
    }
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

  it('ROLE: the role as a bulk string, the offset and replicas as Redis (it sent +master)', async () => {
    expect(await diff([['role'], ['role', 'x']])).toEqual([]);
  });

  it('INFO: the sections asked for, each once, in the order of Redis, CPU and Modules included', async () => {
    // Section titles only (the fields differ); Redis's Errorstats and Latencystats have no
    // counterpart in Cairn (docs/resp-commands.md).
    const titles = async (c: Redis, args: string[]) =>
      ((await c.call('info', ...args)) as string)
        .split('\r\n')
        .filter((l) => l.startsWith('# ') && l !== '# Errorstats' && l !== '# Latencystats');
    for (const args of [
      [],
      ['default'],
      ['server', 'server'],
      ['clients', 'server'],
      ['SERVER', 'server'],
      ['foo'],
      ['server', 'foo'],
      ['cpu'],
      ['modules'],
      ['keyspace', 'cpu', 'commandstats'],
      ['all'],
      ['everything'],
      ['default', 'commandstats'],
      ['all', 'default'],
    ]) {
      expect(await titles(pair.ours, args), args.join(' ')).toEqual(await titles(pair.theirs, args));
    }
    // CPU's fields, less the main thread's (Node cannot tell it from the process's).
    const fields = async (c: Redis) =>
      ((await c.call('info', 'cpu')) as string)
        .split('\r\n')
        .filter((l) => l.includes(':') && !l.includes('_main_thread'))
        .map((l) => l.split(':')[0]);
    expect(await fields(pair.ours)).toEqual(await fields(pair.theirs));
  });

  it('CONFIG GET: the parameters clients check, alone and by pattern', async () => {
    expect(
      await diff([
        ['config', 'get', 'maxmemory-policy'],
        ['config', 'get', 'cluster-enabled'],
        ['config', 'get', 'maxmemory'],
        ['config', 'get', 'MaxMemory-Policy'],
        ['config', 'get', 'maxmemory-policy', 'MAXMEMORY-POLICY'],
        ['config', 'get', 'MAXMEMORY-POLICY', 'maxmemory-pol*'],
        ['config', 'get', 'nosuch'],
        ['config', 'get', 'nosuch*'],
      ]),
    ).toEqual([]);
    // Several parameters: Redis answers in its hash table's order, so the pairs compare sorted.
    const pairs = async (c: Redis, ...args: string[]) => {
      const flat = (await c.call('config', 'get', ...args)) as string[];
      return flat.flatMap((v, i) => (i % 2 === 0 ? [`${v}=${flat[i + 1]}`] : [])).sort();
    };
    for (const args of [
      ['timeout', 'MAXMEMORY-POLICY', 'save'],
      ['save', 'sav?', 'Timeout', 'TIMEOUT'],
      ['requirepass', 'maxclients', 'notify-keyspace-events', 'REQUIREPASS'],
    ]) {
      expect(await pairs(pair.ours, ...args), args.join(' ')).toEqual(await pairs(pair.theirs, ...args));
    }
  });

  it('CLIENT NO-EVICT: ON and OFF, its errors, and the e flag of CLIENT INFO', async () => {
    expect(
      await diff([
        ['client', 'no-evict', 'on'],
        ['client', 'no-evict', 'OFF'],
        ['client', 'no-evict', 'maybe'],
        ['client', 'no-evict'],
        ['client', 'no-evict', 'on', 'x'],
      ]),
    ).toEqual([]);
    const flags = async (c: Redis) => {
      const out: string[] = [];
      for (const args of [['no-evict', 'on'], ['info'], ['no-evict', 'off'], ['info']]) {
        const reply = String(await c.call('client', ...args));
        out.push(/ flags=(\S*) /.exec(reply)?.[1] ?? reply);
      }
      return out;
    };
    expect(await flags(pair.ours)).toEqual(await flags(pair.theirs));
  });

  it('CLIENT INFO and CLIENT LIST lines have the fields of Redis, in its order', async () => {
    // Field names only (the values differ); lib-name and lib-ver are Redis 7.2's (CLIENT SETINFO).
    const names = async (c: Redis, ...args: string[]) =>
      String(await c.call('client', ...args))
        .trim()
        .split(' ')
        .map((f) => f.split('=')[0])
        .filter((f) => f !== 'lib-name' && f !== 'lib-ver');
    expect(await names(pair.ours, 'info')).toEqual(await names(pair.theirs, 'info'));
    const own = async (c: Redis) => names(c, 'list', 'id', String(await c.client('ID')));
    expect(await own(pair.ours)).toEqual(await own(pair.theirs));
  });

  it('COMMAND GETKEYS and COMMAND HELP (unknown subcommands before)', async () => {
    expect(
      await diff([
        ['command', 'getkeys', 'get', 'a'],
        ['command', 'getkeys', 'GET', 'a'],
        ['command', 'getkeys', 'get'],
        ['command', 'getkeys', 'get', 'a', 'b'],
        ['command', 'getkeys', 'mset', 'a', '1', 'b', '2'],
        ['command', 'getkeys', 'mset', 'a', '1', 'b'],
        ['command', 'getkeys', 'del', 'a', 'b', 'a'],
        ['command', 'getkeys', 'exists', 'a', 'a'],
        ['command', 'getkeys', 'rename', 'a', 'b'],
        ['command', 'getkeys', 'copy', 'a', 'b', 'db', '0'],
        ['command', 'getkeys', 'hset', 'h', 'f', 'v'],
        ['command', 'getkeys', 'set', 'k', 'v', 'ex', '10'],
        ['command', 'getkeys', 'watch', 'a', 'b'],
        ['command', 'getkeys', 'bitop', 'and', 'd', 'a', 'b'],
        ['command', 'getkeys', 'eval', 'return 1', '0'],
        ['command', 'getkeys', 'eval', 'return 1', '2', 'a', 'b', 'c'],
        ['command', 'getkeys', 'eval', 'return 1', '3', 'a', 'b'],
        ['command', 'getkeys', 'eval', 'return 1', 'x'],
        ['command', 'getkeys', 'eval', 'return 1', '-1'],
        ['command', 'getkeys', 'evalsha_ro', 'abc', '1', 'k'],
        ['command', 'getkeys', 'memory', 'usage', 'k'],
        ['command', 'getkeys', 'MEMORY', 'USAGE', 'k', 'samples', '5'],
        ['command', 'getkeys', 'memory', 'foo', 'k'],
        ['command', 'getkeys', 'memory', 'help'],
        ['command', 'getkeys', 'ping', 'x'],
        ['command', 'getkeys', 'publish', 'c', 'm'],
        ['command', 'getkeys', 'spublish', 'c', 'm'],
        ['command', 'getkeys', 'keys', '*'],
        ['command', 'getkeys', 'scan', '0'],
        ['command', 'getkeys', 'nosuch', 'x'],
        ['command', 'getkeys', 'ping'],
        ['command', 'getkeys'],
        ['command', 'help', 'x'],
      ]),
    ).toEqual([]);
    // Redis's help, less GETKEYSANDFLAGS (Cairn keeps no key specs, so no key flags).
    const theirs = (await pair.theirs.call('command', 'help')) as string[];
    const at = theirs.indexOf('GETKEYSANDFLAGS <full-command>');
    expect(at).toBeGreaterThan(0);
    expect(await pair.ours.call('command', 'help')).toEqual(
      theirs.filter((_, i) => i !== at && i !== at + 1),
    );
  });

  it('COMMAND INFO: the ACL categories of Redis; COMMAND LIST FILTERBY ACLCAT finds commands by them', async () => {
    const names = ((await pair.ours.call('command', 'list')) as string[]).sort();
    const categories = async (c: Redis) =>
      ((await c.call('command', 'info', ...names)) as (unknown[] | null)[]).map((info) =>
        info === null ? null : (info[6] as string[]),
      );
    const [ours, theirs] = [await categories(pair.ours), await categories(pair.theirs)];
    const differ = names.filter(
      (_, i) => theirs[i] !== null && JSON.stringify(ours[i]) !== JSON.stringify(theirs[i]),
    );
    expect(differ).toEqual([]);
    // Redis lists commands Cairn does not have: compared on Cairn's commands that Redis knows.
    const known = new Set(names.filter((_, i) => theirs[i] !== null));
    for (const category of [
      'keyspace',
      'read',
      'write',
      'string',
      'fast',
      'slow',
      'dangerous',
      'transaction',
    ]) {
      const list = async (c: Redis) =>
        ((await c.call('command', 'list', 'filterby', 'aclcat', category)) as string[])
          .filter((n) => known.has(n))
          .sort();
      expect(await list(pair.ours), category).toEqual(await list(pair.theirs));
    }
  });

  it('COMMAND INFO: the arity, flags and key positions of Redis', async () => {
    // Aside: containers (CLIENT, CONFIG, ...: Redis gives them no flags, Cairn has no subcommand
    // entries to put them on) and the shard channel commands (Redis gives their channel a key
    // position with a not_key key spec).
    const aside = new Set([
      'client',
      'cluster',
      'config',
      'memory',
      'script',
      'spublish',
      'ssubscribe',
      'sunsubscribe',
    ]);
    const names = ((await pair.ours.call('command', 'list')) as string[]).filter((n) => !aside.has(n)).sort();
    const shape = async (c: Redis) =>
      ((await c.call('command', 'info', ...names)) as (unknown[] | null)[]).map((info) =>
        info === null
          ? null
          : JSON.stringify([info[1], [...(info[2] as string[])].sort(), info[3], info[4], info[5]]),
      );
    const [ours, theirs] = [await shape(pair.ours), await shape(pair.theirs)];
    expect(
      names.flatMap((n, i) =>
        theirs[i] === null || ours[i] === theirs[i] ? [] : [`${n}: ${ours[i]} ${theirs[i]}`],
      ),
    ).toEqual([]);
  });

  it('CLIENT KILL: its two forms, errors, and the connections it closes', async () => {
    expect(
      await diff([
        ['client', 'kill'],
        ['client', 'kill', '1.2.3.4:5'],
        ['client', 'kill', 'a', 'b'],
        ['client', 'kill', 'id', '0'],
        ['client', 'kill', 'id', 'x'],
        ['client', 'kill', 'id', '999999'],
        ['client', 'kill', 'id', '999999', 'type'],
        ['client', 'kill', 'type', 'foo'],
        ['client', 'kill', 'TYPE', 'master'],
        ['client', 'kill', 'type', 'replica', 'skipme', 'no'],
        ['client', 'kill', 'user', 'nobody'],
        ['client', 'kill', 'user', 'default', 'id', '999999'],
        ['client', 'kill', 'skipme', 'maybe'],
        ['ping'],
      ]),
    ).toEqual([]);
    const run = async (server: Redis) => {
      const port = server.options.port!;
      const victim = new Redis({
        port,
        host: '127.0.0.1',
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      const killer = new Redis({
        port,
        host: '127.0.0.1',
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      const closed = (c: Redis) => new Promise<string>((resolve) => c.once('end', () => resolve('closed')));
      try {
        const out: unknown[] = [];
        const id = String(await victim.client('ID'));
        const victimClosed = closed(victim);
        out.push(await killer.call('client', 'kill', 'id', id, 'type', 'normal'));
        out.push(await victimClosed);
        out.push(await killer.call('client', 'kill', 'id', id));
        // The old form may name the caller: it gets OK, then the connection closes.
        const addr = / addr=(\S+) /.exec(String(await killer.call('client', 'info')))![1]!;
        const killerClosed = closed(killer);
        out.push(await killer.call('client', 'kill', addr));
        out.push(await killerClosed);
        return out;
      } finally {
        victim.disconnect();
        killer.disconnect();
      }
    };
    expect(await run(pair.ours)).toEqual(await run(pair.theirs));
  });

  it('INFO stats counts channels, patterns and shard channels with subscribers, as Redis', async () => {
    const counts = async (server: Redis) => {
      const fields = async () =>
        ((await server.info('stats')) as string)
          .split('\r\n')
          .filter((l) => /^pubsub(shard)?_(channels|patterns):/.test(l));
      const sub = new Redis({ port: server.options.port!, host: '127.0.0.1' });
      const other = new Redis({ port: server.options.port!, host: '127.0.0.1' });
      try {
        await sub.subscribe('a', 'b');
        await other.subscribe('b');
        await sub.psubscribe('p*');
        await other.psubscribe('p*', 'q*');
        await sub.ssubscribe('s');
        const during = await fields();
        await sub.unsubscribe('a', 'b');
        await other.punsubscribe('p*', 'q*');
        return [during, await fields()];
      } finally {
        sub.disconnect();
        other.disconnect();
      }
    };
    const ours = await counts(pair.ours);
    expect(ours[0]).toEqual(['pubsub_channels:2', 'pubsub_patterns:2', 'pubsubshard_channels:1']);
    expect(ours).toEqual(await counts(pair.theirs));
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
