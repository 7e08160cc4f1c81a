// Transactions over RESP against a real server: MULTI/EXEC/DISCARD/WATCH with Redis's semantics
// and texts (ioredis and raw RESP), the interactive TXN.* commands and TXN.CAS.
import type { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ServerCounters } from '../../src/server/counters.js';
import { EXEC_ATTEMPTS_MAX } from '../../src/server/resp/limits.js';
import type { RespMetrics } from '../../src/server/resp/types.js';
import { TxnConflictError } from '../../src/txn/errors.js';
import { Transaction } from '../../src/txn/transaction.js';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

let r: Running;
const clients: Redis[] = [];
const raws: RawClient[] = [];

async function client(): Promise<Redis> {
  const c = await connectIoredis(r.port);
  clients.push(c);
  return c;
}

async function raw(): Promise<RawClient> {
  const c = await RawClient.connect(r.port);
  raws.push(c);
  return c;
}

/** exchange sends raw commands and waits until `replies` replies (counted by `\r\n`-lines) came. */
async function exchange(c: RawClient, text: string, expected: string): Promise<void> {
  const before = c.received.length;
  c.send(text);
  const got = await c.until((t) => t.length - before >= expected.length);
  expect(got.slice(before)).toBe(expected);
}

beforeAll(async () => {
  r = await startServer();
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.disconnect();
  for (const c of raws.splice(0)) c.close();
  await r.db.pipeline.settled();
});

afterAll(async () => {
  await r.stop();
});

describe('MULTI / EXEC / DISCARD', () => {
  it('queues commands and runs them atomically in EXEC', async () => {
    const io = await client();
    await io.set('m:a', '10');
    const result = await io.multi().incr('m:a').set('m:b', 'x').get('m:b').mget('m:a', 'm:b').exec();
    expect(result).toEqual([
      [null, 11],
      [null, 'OK'],
      [null, 'x'],
      [null, ['11', 'x']],
    ]);
    expect(await io.get('m:a')).toBe('11');
    expect(await io.get('m:b')).toBe('x');
  });

  it('replies QUEUED, and the texts of Redis for misuse', async () => {
    const c = await raw();
    await exchange(c, 'EXEC\r\n', '-ERR EXEC without MULTI\r\n');
    await exchange(c, 'DISCARD\r\n', '-ERR DISCARD without MULTI\r\n');
    await exchange(c, 'MULTI\r\n', '+OK\r\n');
    await exchange(c, 'MULTI\r\n', '-ERR MULTI calls can not be nested\r\n');
    await exchange(c, 'WATCH k\r\n', '-ERR WATCH inside MULTI is not allowed\r\n');
    await exchange(c, 'SET m:q 1\r\n', '+QUEUED\r\n');
    await exchange(c, 'PING\r\n', '+QUEUED\r\n');
    // Neither error above aborts the transaction (as Redis).
    await exchange(c, 'EXEC\r\n', '*2\r\n+OK\r\n+PONG\r\n');
    await exchange(c, 'GET m:q\r\n', '$1\r\n1\r\n');
  });

  it('an unknown command or a wrong arity while queuing aborts EXEC with EXECABORT', async () => {
    const c = await raw();
    await exchange(c, 'MULTI\r\n', '+OK\r\n');
    await exchange(c, 'SET m:never 1\r\n', '+QUEUED\r\n');
    await exchange(c, 'GET\r\n', "-ERR wrong number of arguments for 'get' command\r\n");
    await exchange(c, 'EXEC\r\n', '-EXECABORT Transaction discarded because of previous errors.\r\n');
    await exchange(c, 'MULTI\r\n', '+OK\r\n');
    await exchange(c, 'NOPE x\r\n', "-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n");
    await exchange(c, 'EXEC\r\n', '-EXECABORT Transaction discarded because of previous errors.\r\n');
    await exchange(c, 'MULTI\r\n', '+OK\r\n');
    await exchange(c, 'TXN.BEGIN\r\n', '-ERR Command not allowed inside a transaction\r\n');
    await exchange(c, 'EXEC\r\n', '-EXECABORT Transaction discarded because of previous errors.\r\n');
    await exchange(c, 'EXISTS m:never\r\n', ':0\r\n');
    // SHUTDOWN is refused while queuing, as in Redis 7: EXEC must not stop the server with a
    // queue half run and no reply (entry 10 of defects-2026-12.md).
    await exchange(c, 'MULTI\r\n', '+OK\r\n');
    await exchange(c, 'SET m:never 1\r\n', '+QUEUED\r\n');
    await exchange(c, 'SHUTDOWN\r\n', '-ERR Command not allowed inside a transaction\r\n');
    await exchange(c, 'EXEC\r\n', '-EXECABORT Transaction discarded because of previous errors.\r\n');
    await exchange(c, 'EXISTS m:never\r\n', ':0\r\n');
  });

  it('EXEC refused for its arity ends the transaction and forgets the watch, as Redis', async () => {
    const c = await raw();
    const other = await client();
    const abort =
      "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n";
    await exchange(c, 'WATCH x:w\r\nMULTI\r\nSET x:never 1\r\n', '+OK\r\n+OK\r\n+QUEUED\r\n');
    await exchange(c, 'EXEC now\r\n', abort);
    // Not queuing any more: the commands run, and EXEC has no MULTI.
    await exchange(c, 'EXISTS x:never\r\nEXEC\r\n', ':0\r\n-ERR EXEC without MULTI\r\n');
    // The watch went with the transaction: another client's write no longer aborts the next one.
    await other.set('x:w', 'changed');
    await exchange(c, 'MULTI\r\nGET x:w\r\nEXEC\r\n', '+OK\r\n+QUEUED\r\n*1\r\n$7\r\nchanged\r\n');
    // Outside MULTI too (Redis's execCommandAbort).
    await exchange(c, 'EXEC now\r\n', abort);
  });

  it('a runtime error inside EXEC is one element; the other commands still run', async () => {
    const io = await client();
    await io.set('m:s', 'text');
    const result = await io.multi().set('m:c', '1').incr('m:s').incr('m:c').exec();
    expect(result).not.toBeNull();
    expect(result![0]).toEqual([null, 'OK']);
    expect(String(result![1]![0])).toContain('ERR value is not an integer or out of range');
    expect(result![2]).toEqual([null, 2]);
    expect(await io.get('m:c')).toBe('2');
  });

  it('DISCARD drops the queue', async () => {
    const c = await raw();
    await exchange(c, 'MULTI\r\nSET m:d 1\r\nDISCARD\r\n', '+OK\r\n+QUEUED\r\n+OK\r\n');
    await exchange(c, 'EXISTS m:d\r\n', ':0\r\n');
    await exchange(c, 'EXEC\r\n', '-ERR EXEC without MULTI\r\n');
  });

  it('EXEC of nothing is an empty array; RESP3 null for an aborted watch', async () => {
    const c = await raw();
    await exchange(c, 'MULTI\r\nEXEC\r\n', '+OK\r\n*0\r\n');
    const other = await client();
    c.send('HELLO 3\r\n');
    await c.until((t) => t.includes('proto'));
    await exchange(c, 'WATCH m:w3\r\n', '+OK\r\n');
    await other.set('m:w3', 'changed');
    await exchange(c, 'MULTI\r\nSET m:w3 mine\r\nEXEC\r\n', '+OK\r\n+QUEUED\r\n_\r\n');
    expect(await other.get('m:w3')).toBe('changed');
  });

  it('other clients never see part of an EXEC', async () => {
    const writer = await client();
    const reader = await client();
    await writer.mset('m:x', '0', 'm:y', '0');
    let stop = false;
    const torn: string[][] = [];
    const read = (async () => {
      while (!stop) {
        const [x, y] = (await reader.mget('m:x', 'm:y')) as string[];
        if (x !== y) torn.push([x!, y!]);
      }
    })();
    for (let i = 1; i <= 200; i++) {
      await writer.multi().set('m:x', String(i)).set('m:y', String(i)).exec();
    }
    stop = true;
    await read;
    expect(torn).toEqual([]);
  });
});

describe('expiry inside transactions', () => {
  it('SET EX, SETEX and EXPIRE commit their TTLs with the transaction', async () => {
    const io = await client();
    const result = await io
      .multi()
      .set('e:a', '1', 'EX', 100)
      .setex('e:b', 200, '2')
      .set('e:c', '3')
      .expire('e:c', 300)
      .ttl('e:a')
      .exec();
    expect(result).toEqual([
      [null, 'OK'],
      [null, 'OK'],
      [null, 'OK'],
      [null, 1],
      [null, 100],
    ]);
    expect(await io.ttl('e:a')).toBe(100);
    expect(await io.ttl('e:b')).toBe(200);
    expect(await io.ttl('e:c')).toBe(300);
    await io.call('TXN.BEGIN');
    expect(await io.set('e:d', 'x', 'PX', 50_000)).toBe('OK');
    const inside = await io.pttl('e:d');
    expect(inside).toBeGreaterThan(40_000);
    expect(inside).toBeLessThanOrEqual(50_000);
    expect(await io.pttl('e:d-outside')).toBe(-2);
    await io.call('TXN.COMMIT');
    const pttl = await io.pttl('e:d');
    expect(pttl).toBeGreaterThan(40_000);
    expect(pttl).toBeLessThanOrEqual(50_000);
  });
});

describe('EXEC conflicts', () => {
  /** conflictOnce makes the next `n` commits fail validation without writing anything. */
  function conflicting(n: number) {
    const commit = Transaction.prototype.commit;
    let left = n;
    return vi.spyOn(Transaction.prototype, 'commit').mockImplementation(function (this: Transaction) {
      if (left-- > 0) {
        this.rollback();
        return Promise.reject(new TxnConflictError('injected conflict'));
      }
      return commit.call(this);
    });
  }

  it('re-runs the queued commands on a fresh snapshot; the client sees one EXEC', async () => {
    const io = await client();
    await io.set('x:n', '5');
    const spy = conflicting(2);
    expect(await io.multi().incr('x:n').get('x:n').exec()).toEqual([
      [null, 6],
      [null, '6'],
    ]);
    expect(spy).toHaveBeenCalledTimes(3);
    expect(await io.get('x:n')).toBe('6');
  });

  it('gives up with a CONFLICT error after EXEC_ATTEMPTS_MAX runs, writing nothing', async () => {
    const io = await client();
    const spy = conflicting(Number.POSITIVE_INFINITY);
    await expect(io.multi().set('x:never', '1').exec()).rejects.toThrow(/CONFLICT/);
    expect(spy).toHaveBeenCalledTimes(EXEC_ATTEMPTS_MAX);
    spy.mockRestore();
    expect(await io.exists('x:never')).toBe(0);
  });
});

describe('EXEC metrics', () => {
  it('counts the queued commands once, when their EXEC commits', async () => {
    const observed: string[] = [];
    const metrics = {
      observe: (command: string) => observed.push(command),
      clientConnected: () => {},
      clientDisconnected: () => {},
      connectionRejected: () => {},
      // INFO (ioredis's ready check) prints the metrics' numbers: empty ones do.
      snapshot: () => new ServerCounters().snapshot(),
    } as unknown as RespMetrics;
    const own = await startServer({ metrics });
    const io = await connectIoredis(own.port);
    try {
      await io.multi().incr('em:a').get('em:a').exec();
      expect(observed.filter((c) => c !== 'client' && c !== 'info')).toEqual([
        'multi',
        'incr',
        'get',
        'exec',
      ]);
      observed.length = 0;
      await io.watch('em:a');
      await io.set('em:a', '9');
      expect(await io.multi().set('em:a', 'x').exec()).toBeNull();
      // Not executed: SET counts once (the plain one), not for the discarded EXEC.
      expect(observed.filter((c) => c === 'set')).toEqual(['set']);
    } finally {
      io.disconnect();
      await own.stop();
    }
  });
});

describe('WATCH', () => {
  it('a change by another client after WATCH makes EXEC reply nil', async () => {
    const io = await client();
    const other = await client();
    await io.set('w:k', '1');
    expect(await io.watch('w:k')).toBe('OK');
    await other.set('w:k', '2');
    const result = await io.multi().set('w:k', '3').exec();
    expect(result).toBeNull();
    expect(await io.get('w:k')).toBe('2');
    // EXEC unwatched everything: the next transaction runs.
    expect(await io.multi().set('w:k', '4').exec()).toEqual([[null, 'OK']]);
    expect(await io.get('w:k')).toBe('4');
  });

  it('a change by the same client also aborts; no change executes', async () => {
    const io = await client();
    await io.watch('w:own');
    await io.set('w:own', 'me');
    expect(await io.multi().get('w:own').exec()).toBeNull();
    await io.watch('w:own', 'w:other');
    expect(await io.multi().get('w:own').set('w:other', 'y').exec()).toEqual([
      [null, 'me'],
      [null, 'OK'],
    ]);
  });

  it('a change to an unwatched key does not abort; UNWATCH and DISCARD forget the watch', async () => {
    const io = await client();
    const other = await client();
    await io.watch('w:a');
    await other.set('w:b', 'x');
    expect(await io.multi().set('w:a', '1').exec()).toEqual([[null, 'OK']]);
    await io.watch('w:a');
    await io.unwatch();
    await other.set('w:a', 'changed');
    expect(await io.multi().set('w:a', '2').exec()).toEqual([[null, 'OK']]);
    // ioredis's multi().discard() never reaches the server: DISCARD goes over a raw socket.
    const c = await raw();
    await exchange(c, 'WATCH w:a\r\nMULTI\r\nSET w:a no\r\nDISCARD\r\n', '+OK\r\n+OK\r\n+QUEUED\r\n+OK\r\n');
    await other.set('w:a', 'again');
    await exchange(c, 'MULTI\r\nGET w:a\r\nEXEC\r\n', '+OK\r\n+QUEUED\r\n*1\r\n$5\r\nagain\r\n');
  });

  it('a queued UNWATCH does not cancel the check (Redis checks before running the queue)', async () => {
    const c = await raw();
    const other = await client();
    await exchange(c, 'WATCH w:q\r\n', '+OK\r\n');
    await other.set('w:q', 'changed');
    await exchange(c, 'MULTI\r\nUNWATCH\r\nSET w:q mine\r\nEXEC\r\n', '+OK\r\n+QUEUED\r\n+QUEUED\r\n*-1\r\n');
    expect(await other.get('w:q')).toBe('changed');
  });

  it('disconnecting releases the watch registration', async () => {
    const before = r.db.txnStats().readers;
    const io = await client();
    await io.watch('w:gone');
    expect(r.db.txnStats().readers).toBe(before + 1);
    io.disconnect();
    await expect.poll(() => r.db.txnStats().readers).toBe(before);
  });
});

describe('TXN.BEGIN / TXN.COMMIT / TXN.ROLLBACK', () => {
  it('commands run inside the transaction: own writes visible, others see nothing until commit', async () => {
    const io = await client();
    const other = await client();
    await io.set('t:a', '1');
    expect(await io.call('txn.begin')).toBe('OK');
    expect(await io.get('t:a')).toBe('1');
    expect(await io.incr('t:a')).toBe(2);
    expect(await io.set('t:b', 'new')).toBe('OK');
    expect(await io.mget('t:a', 't:b')).toEqual(['2', 'new']);
    expect(await io.exists('t:a', 't:b', 't:none')).toBe(2);
    expect(await io.keys('t:*')).toEqual(['t:a', 't:b']);
    expect(await other.get('t:a')).toBe('1');
    expect(await other.get('t:b')).toBeNull();
    const status = (await io.call('txn.status')) as unknown[];
    expect(status).toEqual(['isolation', 'serializable', 'snapshot', expect.any(Number), 'writes', 2]);
    const ts = await io.call('txn.commit');
    expect(typeof ts).toBe('number');
    expect(ts as number).toBeGreaterThan(status[3] as number);
    expect(await other.mget('t:a', 't:b')).toEqual(['2', 'new']);
    expect(await io.call('txn.status')).toBeNull();
  });

  it('rollback discards; misuse errors are clear', async () => {
    const io = await client();
    await expect(io.call('txn.commit')).rejects.toThrow('ERR TXN.COMMIT without TXN.BEGIN');
    await expect(io.call('txn.rollback')).rejects.toThrow('ERR TXN.ROLLBACK without TXN.BEGIN');
    await expect(io.call('txn.begin', 'isolation', 'chaos')).rejects.toThrow('unknown isolation level');
    await expect(io.call('txn.begin', 'nope')).rejects.toThrow('ERR syntax error');
    expect(await io.call('txn.begin', 'ISOLATION', 'SNAPSHOT')).toBe('OK');
    await expect(io.call('txn.begin')).rejects.toThrow('already open');
    await expect(io.call('multi')).rejects.toThrow('not allowed while a TXN.BEGIN');
    await io.set('t:rolled', 'x');
    expect(await io.call('txn.rollback')).toBe('OK');
    expect(await io.get('t:rolled')).toBeNull();
  });

  it('a concurrent commit makes the second committer fail with CONFLICT (no lost update)', async () => {
    const a = await client();
    const b = await client();
    await a.set('t:counter', '0');
    await a.call('txn.begin');
    await b.call('txn.begin');
    expect(await a.incr('t:counter')).toBe(1);
    expect(await b.incr('t:counter')).toBe(1);
    expect(typeof (await a.call('txn.commit'))).toBe('number');
    await expect(b.call('txn.commit')).rejects.toThrow(/^CONFLICT /);
    // The transaction is gone after the conflict.
    expect(await b.call('txn.status')).toBeNull();
    expect(await b.get('t:counter')).toBe('1');
  });

  it('snapshot isolation: reads are stable while others commit', async () => {
    const io = await client();
    const other = await client();
    await io.set('t:snap', 'before');
    await io.call('txn.begin', 'isolation', 'snapshot');
    expect(await io.get('t:snap')).toBe('before');
    await other.set('t:snap', 'after');
    expect(await io.get('t:snap')).toBe('before');
    // Read-only: commits without conflict.
    expect(typeof (await io.call('txn.commit'))).toBe('number');
    expect(await io.get('t:snap')).toBe('after');
  });

  it('disconnect rolls back', async () => {
    const before = r.db.txnStats().readers;
    const io = await client();
    await io.call('txn.begin');
    await io.set('t:dropped', 'x');
    io.disconnect();
    await expect.poll(() => r.db.txnStats().readers).toBe(before);
    const other = await client();
    expect(await other.get('t:dropped')).toBeNull();
  });
});

describe('keyspace commands inside a transaction', () => {
  it('KEYS, SCAN, DBSIZE and FLUSHDB see the snapshot plus own writes; others see nothing', async () => {
    const io = await client();
    const other = await client();
    await io.flushdb();
    await io.mset('ks:a', '1', 'ks:b', '2');
    await io.call('txn.begin');
    await io.set('ks:c', '3');
    await io.del('ks:a');
    expect(await io.dbsize()).toBe(2);
    expect((await io.keys('ks:*')).sort()).toEqual(['ks:b', 'ks:c']);
    const [cursor, found] = await io.scan('0', 'MATCH', 'ks:*', 'COUNT', '100');
    expect(cursor).toBe('0');
    expect(found.sort()).toEqual(['ks:b', 'ks:c']);
    expect(await io.flushdb()).toBe('OK');
    expect(await io.dbsize()).toBe(0);
    expect(await other.dbsize()).toBe(2);
    expect(await io.call('txn.rollback')).toBe('OK');
    expect((await io.keys('ks:*')).sort()).toEqual(['ks:a', 'ks:b']);
  });

  it('FLUSHDB inside EXEC is atomic', async () => {
    const io = await client();
    await io.mset('kf:a', '1', 'kf:b', '2');
    expect(await io.multi().flushdb().set('kf:after', 'x').dbsize().exec()).toEqual([
      [null, 'OK'],
      [null, 'OK'],
      [null, 1],
    ]);
    expect(await io.keys('kf:*')).toEqual(['kf:after']);
  });
});

describe('RESP3 via node-redis', () => {
  it('MULTI/EXEC and WATCH', async () => {
    const c = createClient({ socket: { port: r.port, host: '127.0.0.1' }, RESP: 3 });
    await c.connect();
    const other = await client();
    try {
      expect(await c.multi().set('n:a', '1').incr('n:a').get('n:a').exec()).toEqual(['OK', 2, '2']);
      await c.watch('n:a');
      await other.set('n:a', 'theirs');
      await expect(c.multi().set('n:a', 'mine').exec()).rejects.toThrow();
      expect(await c.get('n:a')).toBe('theirs');
      await c.watch('n:a');
      expect(await c.multi().set('n:a', 'mine').exec()).toEqual(['OK']);
      expect(await c.get('n:a')).toBe('mine');
    } finally {
      await c.quit();
    }
  });
});

describe('TXN.CAS', () => {
  it('runs THEN when every comparison holds, ELSE otherwise', async () => {
    const io = await client();
    await io.set('c:k', 'v1');
    const ok = await io.call(
      'txn.cas',
      '2',
      'c:k',
      'value',
      '=',
      'v1',
      'c:new',
      'exists',
      '0',
      'then',
      '3',
      'set',
      'c:k',
      'v2',
      'get',
      'c:k',
      'set',
      'c:new',
      'n',
      'else',
      '1',
      'get',
      'c:k',
    );
    expect(ok).toEqual([1, ['OK', 'v2', 'OK']]);
    const failed = await io.call(
      'txn.cas',
      '1',
      'c:k',
      'value',
      '=',
      'v1',
      'then',
      '1',
      'del',
      'c:k',
      'else',
      '2',
      'get',
      'c:k',
      'get',
      'c:missing',
    );
    expect(failed).toEqual([0, ['v2', null]]);
    expect(await io.get('c:k')).toBe('v2');
    expect(await io.call('txn.cas', '1', 'c:k', 'exists', '1', 'then', '1', 'del', 'c:k')).toEqual([
      1,
      ['OK'],
    ]);
    expect(await io.exists('c:k')).toBe(0);
  });

  it('rejects a malformed request', async () => {
    const io = await client();
    await expect(io.call('txn.cas', '1', 'k', 'value', '=', 'v', 'then')).rejects.toThrow('ERR syntax error');
    await expect(io.call('txn.cas', '1', 'k', 'value', '~', 'v', 'then', '0')).rejects.toThrow(
      'comparison must be one of',
    );
    await expect(io.call('txn.cas', '0', 'then', '1', 'put', 'k', 'v')).rejects.toThrow('SET, DEL or GET');
    await expect(io.call('txn.cas', '0', 'then', '0', 'extra')).rejects.toThrow('ERR syntax error');
    await expect(io.call('txn.cas', 'x', 'then', '0')).rejects.toThrow('not an integer');
  });

  it('compares revisions: TXN.REVISION reads them with the value, VERSION/CREATE/MOD compare them', async () => {
    const io = await client();
    expect(await io.call('txn.revision', 'r:k')).toBeNull();
    await io.set('r:k', 'v1');
    const [value, mod, create, version] = (await io.call('txn.revision', 'r:k')) as [
      string,
      number,
      number,
      number,
    ];
    expect([value, create, version]).toEqual(['v1', mod, 1]);
    // An optimistic update that holds, then the same one again, which no longer does.
    const update = () =>
      io.call(
        'txn.cas',
        '1',
        'r:k',
        'mod',
        '=',
        String(mod),
        'then',
        '1',
        'set',
        'r:k',
        'v2',
        'else',
        '1',
        'get',
        'r:k',
      );
    expect(await update()).toEqual([1, ['OK']]);
    expect(await update()).toEqual([0, ['v2']]);
    const after = (await io.call('txn.revision', 'r:k')) as [string, number, number, number];
    expect(after[0]).toBe('v2');
    expect(after[1]).toBeGreaterThan(mod);
    expect(after.slice(2)).toEqual([create, 2]);
    const holds = async (target: string, op: string, operand: number | string) =>
      ((await io.call('txn.cas', '1', 'r:k', target, op, String(operand), 'then', '0')) as [number])[0];
    expect(await holds('version', '=', 2)).toBe(1);
    expect(await holds('version', '<', 2)).toBe(0);
    expect(await holds('create', '=', create)).toBe(1);
    expect(await holds('mod', '>', mod)).toBe(1);
    // etcd's lock recipe: create = 0 holds only for a key that does not exist.
    expect(await holds('create', '=', 0)).toBe(0);
    expect(((await io.call('txn.cas', '1', 'r:none', 'create', '=', '0', 'then', '0')) as [number])[0]).toBe(
      1,
    );
    await expect(io.call('txn.cas', '1', 'r:k', 'version', '=', '-1', 'then', '0')).rejects.toThrow(
      'non-negative integer',
    );
    await expect(io.call('txn.cas', '1', 'r:k', 'version', '=', 'x', 'then', '0')).rejects.toThrow(
      'not an integer',
    );
    await expect(io.call('txn.cas', '1', 'r:k', 'size', '=', '1', 'then', '0')).rejects.toThrow(
      'VALUE, EXISTS, VERSION, CREATE or MOD',
    );
    // Inside an interactive transaction the snapshot keeps no revisions: refused, not guessed.
    await io.call('txn.begin');
    await expect(io.call('txn.revision', 'r:k')).rejects.toThrow('inside a TXN.BEGIN');
    await io.call('txn.rollback');
  });

  it('appears in COMMAND INFO', async () => {
    const io = await client();
    const info = (await io.call('command', 'info', 'txn.cas', 'multi', 'txn.begin')) as unknown[][];
    expect(info.map((i) => i[0])).toEqual(['txn.cas', 'multi', 'txn.begin']);
    expect(info[0]![2]).toContain('movablekeys');
    expect(info[1]![2]).toEqual(['noscript', 'loading', 'stale', 'fast', 'allow_busy']);
    expect(info[2]![2]).toContain('no_multi');
  });
});

describe('idle transactions and watches', () => {
  it('rolls back an idle TXN.BEGIN and refuses its commands until TXN.ROLLBACK; drops an idle WATCH', async () => {
    const idle = await startServer({ limits: { txnIdleMs: 100 } });
    const c = await connectIoredis(idle.port);
    /** reaped waits until the idle reaper has ended every transaction and watch. */
    const reaped = () =>
      vi.waitFor(() => expect(idle.db.txnStats().readers).toBe(0), { timeout: 10_000, interval: 20 });
    try {
      await c.call('txn.begin');
      await c.set('idle:k', 'buffered');
      await c.watch('idle:w');
      const readers = idle.db.txnStats().readers;
      expect(readers).toBe(2);
      // The idle reaper runs on a timer: wait for it (a loaded machine can delay it), at least
      // past the idle limit.
      await new Promise((r) => setTimeout(r, 150));
      await reaped();
      // Nothing meant for the transaction runs outside it.
      await expect(c.get('idle:k')).rejects.toThrow('rolled back after 100 ms idle');
      await expect(c.set('idle:k', 'outside')).rejects.toThrow('rolled back after 100 ms idle');
      await expect(c.call('txn.commit')).rejects.toThrow('rolled back after 100 ms idle');
      expect(await c.get('idle:k')).toBeNull();
      // The watch was dropped: EXEC replies nil, as when a watched key changed.
      await c.watch('idle:w2');
      await new Promise((r) => setTimeout(r, 300));
      expect(await c.multi().set('idle:w2', 'x').exec()).toBeNull();
      expect(await c.get('idle:w2')).toBeNull();
      // TXN.ROLLBACK also ends the rolled-back state.
      await c.call('txn.begin');
      expect(idle.db.txnStats().readers).toBe(1);
      await reaped();
      expect(await c.call('txn.rollback')).toBe('OK');
      expect(await c.set('idle:k', 'after')).toBe('OK');
    } finally {
      c.disconnect();
      await idle.stop();
    }
  });
});
