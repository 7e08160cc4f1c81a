import { afterEach, describe, expect, it } from 'vitest';
import { type Db, open } from '../../src/db/db.js';
import { encodeCommand } from '../../src/protocol/resp/index.js';
import { RespError, type RespValue } from '../../src/protocol/resp/types.js';
import { createRespServer, type RespServer } from '../../src/server/resp/index.js';
import { Prng } from '../../src/stdx/prng.js';
import { Snapshot } from '../../src/txn/transaction.js';
import { poisonCount, poisoned } from '../support/poison.js';
import { tmpDir } from '../support/tmp-dir.js';
import { exchange as exchangeBytes } from './support.js';

/** exchange sends every command in one write and parses exactly as many replies. */
function exchange(port: number, commands: readonly (readonly string[])[]): Promise<RespValue[]> {
  return exchangeBytes(port, Buffer.concat(commands.map((c) => encodeCommand([...c]))), commands.length);
}

const KEYS = 3000;

interface Step {
  readonly args: string[];
  /** reply: the expected reply, or undefined to accept any reply that is not an error. */
  readonly reply?: RespValue;
}

/** script builds the commands for key `k` (index i) and records its final value in `model`. */
function script(i: number, k: string, model: Map<string, string>): Step[] {
  const v = `value-${i}`;
  switch (i % 11) {
    case 0:
      model.set(k, v).set(`${k}/m`, `${v}/m`);
      return [{ args: ['MSET', k, v, `${k}/m`, `${v}/m`], reply: 'OK' }];
    case 1:
      model.set(k, `${v}-x`);
      return [{ args: ['SET', k, v], reply: 'OK' }, { args: ['APPEND', k, '-x'] }];
    case 2:
      model.set(k, '12');
      return [
        { args: ['SET', k, '5'], reply: 'OK' },
        { args: ['INCRBY', k, '7'], reply: 12 },
      ];
    case 3:
      model.set(k, `${v}/2`);
      return [
        { args: ['SETNX', k, v], reply: 1 },
        { args: ['GETSET', k, `${v}/2`], reply: Buffer.from(v) },
      ];
    case 4:
      return [
        { args: ['SET', k, v], reply: 'OK' },
        { args: ['DEL', k], reply: 1 },
      ];
    case 5:
      model.set(k, v);
      return [
        { args: ['SET', k, v, 'EX', '3600'], reply: 'OK' },
        { args: ['PERSIST', k], reply: 1 },
      ];
    case 6:
      model.set(k, `${v}!`);
      return [
        { args: ['MULTI'], reply: 'OK' },
        { args: ['SET', k, v], reply: 'QUEUED' },
        { args: ['APPEND', k, '!'], reply: 'QUEUED' },
        { args: ['EXEC'] },
      ];
    case 7:
      model.set(k, `${v}/3`);
      return [
        { args: ['SET', k, v], reply: 'OK' },
        { args: ['SET', k, `${v}/3`, 'GET'], reply: Buffer.from(v) },
      ];
    case 8:
      model.set(k, v);
      return [
        { args: ['SET', k, v], reply: 'OK' },
        { args: ['EXPIRE', k, '3600'], reply: 1 },
      ];
    case 9:
      // A script: its key and argument are views of the socket chunk, its writes a batch.
      model.set(k, `${v}+`);
      return [
        {
          args: [
            'EVAL',
            "redis.call('set', KEYS[1], ARGV[1]); return redis.call('append', KEYS[1], '+')",
            '1',
            k,
            v,
          ],
          reply: v.length + 1,
        },
      ];
    default:
      model.set(k, v);
      return [{ args: ['TXN.BEGIN'] }, { args: ['SET', k, v] }, { args: ['TXN.COMMIT'] }];
  }
}

let server: RespServer | undefined;
let db: Db | undefined;

afterEach(async () => {
  await server?.close();
  await db?.close();
  server = undefined;
  db = undefined;
});

describe('RESP server over a store whose borrowed buffers are poisoned', () => {
  it.each(['ascending', 'descending', 'random'] as const)(
    'keeps every write of a large pipeline with %s keys',
    async (order) => {
      const dir = tmpDir('resp-poison');
      db = await open(dir);
      const wrap = (v: unknown): unknown => (v instanceof Snapshot ? poisoned(v, { wrap }) : v);
      const lent = poisoned(db, {
        wrap,
        property: (name, value) =>
          name === 'pipeline' && value !== null && typeof value === 'object'
            ? poisoned(value, { wrap })
            : value,
      });
      server = createRespServer({ db: lent, version: '0.0.0-test' });
      await server.listen('127.0.0.1', 0);
      const port = server.address().port;

      const ids = Array.from({ length: KEYS }, (_, i) => i);
      if (order === 'descending') ids.reverse();
      if (order === 'random') new Prng(3).shuffle(ids);
      const model = new Map<string, string>();
      const steps = ids.flatMap((i) => script(i, `seq:${String(i).padStart(10, '0')}`, model));
      const before = poisonCount;
      const replies = await exchange(
        port,
        steps.map((s) => s.args),
      );
      expect(replies).toHaveLength(steps.length);
      for (let j = 0; j < steps.length; j++) {
        const reply = replies[j];
        const step = steps[j]!;
        expect(reply instanceof RespError, `${step.args.join(' ')}: ${String(reply)}`).toBe(false);
        if (step.reply !== undefined) expect(reply, step.args.join(' ')).toEqual(step.reply);
      }
      expect(poisonCount - before).toBeGreaterThan(KEYS);

      // Read everything back: by GET in one pipeline, and by KEYS.
      const keys = [...model.keys()];
      const got = await exchange(port, [...keys.map((k) => ['GET', k]), ['KEYS', '*'], ['DBSIZE']]);
      for (let j = 0; j < keys.length; j++) expect(String(got[j]), keys[j]).toBe(model.get(keys[j]!));
      const listed = (got[keys.length] as Buffer[]).map(String).sort();
      expect(listed).toEqual(keys.sort());
      expect(got[keys.length + 1]).toBe(model.size);

      // And after a reopen, by get and by scan.
      await server.close();
      server = undefined;
      await db.close();
      db = await open(dir);
      for (const [k, v] of model) expect(await db.getString(k), k).toBe(v);
      const scanned: string[] = [];
      for await (const [k] of db.scan()) scanned.push(k.toString());
      expect(scanned).toEqual(keys.sort());
    },
  );
});
