// Every command of the command table, run once over RESP, is counted under its own name in
// /metrics (HTTP) and in INFO commandstats: the table is the only list of RESP commands, so a
// command added to it cannot be counted as command="unknown" (as GETEX, EXPIRETIME and
// TXN.REVISION once were, when the metrics kept a list of their own).
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CairnClient } from '../../src/client/client.js';
import { type Db, open } from '../../src/db/db.js';
import { createHttpApp } from '../../src/server/http/index.js';
import { createMetrics, UNKNOWN_COMMAND } from '../../src/server/metrics.js';
import { allCommands } from '../../src/server/resp/commands/index.js';
import { createRespServer, type RespServer } from '../../src/server/resp/index.js';
import { tmpDir } from '../support/tmp-dir.js';
import { startServer } from './support.js';

const PASSWORD = 'command-metrics';
/** FAR_FUTURE_S: an expiry (Unix seconds) no test run reaches. */
const FAR_FUTURE_S = 4_000_000_000;

/**
 * RUNS: a valid invocation of every command (lower-case name -> the calls that use it), in the
 * order they run on one connection. QUIT and SHUTDOWN close the connection: CLOSERS run them on
 * connections of their own.
 */
const RUNS: Record<string, readonly (readonly string[])[]> = {
  auth: [['AUTH', PASSWORD]],
  hello: [['HELLO', '2']],
  ping: [['PING']],
  echo: [['ECHO', 'hi']],
  select: [['SELECT', '0']],
  client: [
    ['CLIENT', 'SETNAME', 'cm'],
    ['CLIENT', 'ID'],
  ],
  info: [['INFO']],
  config: [['CONFIG', 'GET', 'maxclients']],
  command: [
    ['COMMAND', 'COUNT'],
    ['COMMAND', 'INFO', 'get'],
    ['COMMAND', 'DOCS', 'get'],
    ['COMMAND', 'LIST'],
  ],
  set: [['SET', 's', 'v']],
  get: [['GET', 's']],
  setex: [['SETEX', 'sx', '100', 'v']],
  psetex: [['PSETEX', 'psx', '100000', 'v']],
  getex: [['GETEX', 'sx', 'EX', '200']],
  getdel: [['GETDEL', 'psx']],
  getset: [['GETSET', 's', 'w']],
  setnx: [['SETNX', 'nx', 'v']],
  mget: [['MGET', 's', 'nx']],
  mset: [['MSET', 'm1', 'a', 'm2', 'b']],
  msetnx: [['MSETNX', 'm3', 'c']],
  append: [['APPEND', 's', 'x']],
  strlen: [['STRLEN', 's']],
  getrange: [['GETRANGE', 's', '0', '1']],
  substr: [['SUBSTR', 's', '0', '1']],
  setrange: [['SETRANGE', 'sr', '2', 'ab']],
  setbit: [['SETBIT', 'bits', '9', '1']],
  getbit: [['GETBIT', 'bits', '9']],
  bitcount: [['BITCOUNT', 'bits']],
  bitpos: [['BITPOS', 'bits', '1']],
  bitop: [['BITOP', 'NOT', 'bits2', 'bits']],
  incr: [['INCR', 'n']],
  decr: [['DECR', 'n']],
  incrby: [['INCRBY', 'n', '5']],
  decrby: [['DECRBY', 'n', '2']],
  incrbyfloat: [['INCRBYFLOAT', 'fl', '1.5']],
  hset: [['HSET', 'h', 'a', '1', 'b', '2']],
  hmset: [['HMSET', 'h', 'c', '3']],
  hsetnx: [['HSETNX', 'h', 'd', '4']],
  hget: [['HGET', 'h', 'a']],
  hmget: [['HMGET', 'h', 'a', 'b']],
  hgetall: [['HGETALL', 'h']],
  hkeys: [['HKEYS', 'h']],
  hvals: [['HVALS', 'h']],
  hlen: [['HLEN', 'h']],
  hexists: [['HEXISTS', 'h', 'a']],
  hstrlen: [['HSTRLEN', 'h', 'a']],
  hincrby: [['HINCRBY', 'h', 'a', '2']],
  hincrbyfloat: [['HINCRBYFLOAT', 'h', 'b', '0.5']],
  hrandfield: [['HRANDFIELD', 'h']],
  hscan: [['HSCAN', 'h', '0']],
  hdel: [['HDEL', 'h', 'd']],
  exists: [['EXISTS', 's', 'n']],
  touch: [['TOUCH', 's', 'n']],
  rename: [['RENAME', 'm1', 'rn1']],
  renamenx: [['RENAMENX', 'rn1', 'rn2']],
  copy: [['COPY', 'rn2', 'cp1']],
  type: [['TYPE', 's']],
  dbsize: [['DBSIZE']],
  keys: [['KEYS', '*']],
  scan: [['SCAN', '0']],
  expire: [['EXPIRE', 's', '100']],
  pexpire: [['PEXPIRE', 's', '100000']],
  expireat: [['EXPIREAT', 'm1', String(FAR_FUTURE_S)]],
  pexpireat: [['PEXPIREAT', 'm2', String(FAR_FUTURE_S * 1000)]],
  ttl: [['TTL', 's']],
  pttl: [['PTTL', 's']],
  expiretime: [['EXPIRETIME', 'm1']],
  pexpiretime: [['PEXPIRETIME', 'm2']],
  persist: [['PERSIST', 's']],
  watch: [['WATCH', 'w']],
  unwatch: [['UNWATCH']],
  // EXEC counts its queued commands (here SET) as it runs them; MULTI and DISCARD count themselves.
  multi: [['MULTI'], ['SET', 'w', '1'], ['EXEC'], ['MULTI']],
  discard: [['DISCARD']],
  exec: [['MULTI'], ['EXEC']],
  'txn.begin': [['TXN.BEGIN'], ['TXN.STATUS']],
  'txn.status': [['TXN.STATUS']],
  'txn.commit': [['TXN.COMMIT']],
  'txn.rollback': [['TXN.BEGIN'], ['TXN.ROLLBACK']],
  'txn.cas': [['TXN.CAS', '1', 'lock', 'EXISTS', '0', 'THEN', '1', 'SET', 'lock', 'me']],
  'txn.revision': [['TXN.REVISION', 'lock']],
  readonly: [['READONLY']],
  readwrite: [['READWRITE']],
  role: [['ROLE']],
  'cairn.forwarded': [['CAIRN.FORWARDED']],
  script: [['SCRIPT', 'LOAD', 'return 1']],
  eval: [['EVAL', 'return 1', '0']],
  evalsha: [['EVALSHA', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '0']],
  eval_ro: [['EVAL_RO', 'return 1', '0']],
  evalsha_ro: [['EVALSHA_RO', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '0']],
  del: [['DEL', 'm3']],
  unlink: [['UNLINK', 'nx']],
  flushdb: [['FLUSHDB']],
  flushall: [['FLUSHALL']],
  time: [['TIME']],
  memory: [['MEMORY', 'USAGE', 's']],
  publish: [['PUBLISH', 'ch', 'm']],
  spublish: [['SPUBLISH', 'ch', 'm']],
  'cairn.publish': [['CAIRN.PUBLISH', 'ch', 'm']],
  pubsub: [['PUBSUB', 'NUMPAT']],
  subscribe: [['SUBSCRIBE', 'ch']],
  unsubscribe: [['UNSUBSCRIBE', 'ch']],
  psubscribe: [['PSUBSCRIBE', 'c*']],
  punsubscribe: [['PUNSUBSCRIBE', 'c*']],
  ssubscribe: [['SSUBSCRIBE', 'ch']],
  sunsubscribe: [['SUNSUBSCRIBE', 'ch']],
  // Last: RESET also logs the connection out (the server has a password).
  reset: [['RESET']],
};
/**
 * FAILING: commands that fail on a single server whatever their arguments (CLUSTER, as on a Redis
 * server without cluster support); each call must count as a failed call under the command's name.
 */
const FAILING: Record<string, string[][]> = {
  cluster: [['CLUSTER', 'INFO']],
};

const CLOSERS: Record<string, readonly string[]> = { quit: ['QUIT'], shutdown: ['SHUTDOWN'] };

let dir: string;
let db: Db;
let resp: RespServer;
let http: FastifyInstance;
let shutdowns = 0;

beforeAll(async () => {
  dir = tmpDir('command-metrics');
  db = await open(dir);
  const metrics = createMetrics(db, { defaultMetrics: false });
  resp = createRespServer({
    db,
    metrics,
    version: '0.0.0-test',
    requirePass: PASSWORD,
    // SHUTDOWN asks the owner to stop; this test only counts it.
    onShutdown: () => {
      shutdowns++;
    },
  });
  await resp.listen('127.0.0.1', 0);
  http = createHttpApp({ db, metrics, version: '0.0.0-test' });
  await http.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await http.close();
  await resp.close();
  await db.close();
});

async function connect(): Promise<CairnClient> {
  const client = await CairnClient.connect('127.0.0.1', resp.address().port);
  await client.call('AUTH', PASSWORD);
  return client;
}

/** sample: the value of one Prometheus sample line (`name{labels} value`). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('command metrics', () => {
  it('counts every command of the table under its own name in /metrics and INFO commandstats', async () => {
    const names = allCommands().map((c) => c.name);
    // Every command has an invocation here, and nothing else does: a new command needs one.
    expect([...Object.keys(RUNS), ...Object.keys(CLOSERS), ...Object.keys(FAILING)].sort()).toEqual(
      [...names].sort(),
    );

    const client = await connect();
    try {
      // COMMAND lists the same table.
      expect(await client.call('COMMAND', 'COUNT')).toBe(names.length);
      const listed = (await client.call('COMMAND', 'LIST')) as Buffer[];
      expect(listed.map((b) => b.toString()).sort()).toEqual([...names].sort());
      for (const calls of Object.values(RUNS)) {
        for (const args of calls) await client.call(...args);
      }
      for (const calls of Object.values(FAILING)) {
        for (const args of calls) await expect(client.call(...args)).rejects.toThrow();
      }
    } finally {
      await client.close();
    }
    for (const args of Object.values(CLOSERS)) {
      const closing = await connect();
      // QUIT replies OK and closes; SHUTDOWN closes without a reply.
      await closing.call(...args).catch((err: unknown) => {
        expect(String(err)).toMatch(/connection closed/);
      });
      await closing.close().catch(() => {});
    }
    expect(shutdowns).toBe(1);

    const address = http.server.address() as AddressInfo;
    const scrape = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
    const reader = await connect();
    const info = String(await reader.call('INFO', 'commandstats'));
    await reader.close();

    const missing: string[] = [];
    for (const name of names) {
      const result = name in FAILING ? 'error' : 'ok';
      const ok = sample(scrape, `cairn_commands_total{command="${name}",protocol="resp",result="${result}"}`);
      if (ok === undefined || ok < 1) missing.push(`/metrics ${name}`);
      if (!new RegExp(`^cmdstat_${name.replace('.', '\\.')}:calls=[1-9]`, 'm').test(info))
        missing.push(`INFO ${name}`);
    }
    expect(missing).toEqual([]);
    // No command was unknown, so nothing may be counted as one.
    expect(scrape).not.toContain(`command="${UNKNOWN_COMMAND}",protocol="resp"`);
    expect(info).not.toContain(`cmdstat_${UNKNOWN_COMMAND}:`);
  });

  it('counts into counters of its own when the RESP server is given no Metrics', async () => {
    const own = await startServer();
    const client = await CairnClient.connect('127.0.0.1', own.port);
    try {
      await client.call('SET', 'k', 'v');
      await client.call('GETEX', 'k', 'EX', '100');
      await client.call('NOSUCHCOMMAND').catch(() => {});
      const info = String(await client.call('INFO', 'commandstats', 'stats'));
      expect(info).toMatch(/^cmdstat_set:calls=1,/m);
      expect(info).toMatch(/^cmdstat_getex:calls=1,/m);
      expect(info).toMatch(new RegExp(`^cmdstat_${UNKNOWN_COMMAND}:calls=1,.*failed_calls=1`, 'm'));
      expect(info).toMatch(/^total_connections_received:1\r$/m);
      expect(info).toMatch(/^total_commands_processed:3\r$/m);
    } finally {
      await client.close();
      await own.stop();
    }
  });
});
