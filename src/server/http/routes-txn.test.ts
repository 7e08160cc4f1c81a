import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, DEFAULT_TXN_ATTEMPTS, open } from '../../db/db.js';
import { encodeHash } from '../../storage/hash-codec.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import { ValueType } from '../../storage/value-type.js';
import { TxnConflictError } from '../../txn/errors.js';
import { Transaction } from '../../txn/transaction.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';
import { LIST_LIMIT_MAX, LIST_PAGE_BYTES_MAX, TXN_ANSWER_BYTES_MAX } from './limits.js';

let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-txn'));
  app = createHttpApp({ db, metrics: createMetrics(db, { defaultMetrics: false }), version: 'test' });
  await app.ready();
});

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  await app.close();
  await db.close();
});

const post = (payload: unknown) => app.inject({ method: 'POST', url: '/v1/txn', payload: payload as object });

describe('POST /v1/txn: compare-and-swap', () => {
  it('runs success when every comparison holds', async () => {
    await db.set('cas:k', 'v1');
    const res = await post({
      compare: [
        { key: 'cas:k', target: 'value', op: '=', value: 'v1' },
        { key: 'cas:new', target: 'exists', exists: false },
      ],
      success: [
        { op: 'set', key: 'cas:k', value: 'v2' },
        { op: 'get', key: 'cas:k' },
        { op: 'set', key: 'cas:new', value: 'n' },
      ],
      failure: [{ op: 'get', key: 'cas:k' }],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const ts = body.ts as number;
    const created = (await db.revision('cas:k'))!.create;
    expect(body).toEqual({
      succeeded: true,
      ts,
      results: [
        { op: 'set' },
        { op: 'get', found: true, value: 'v2', revision: { mod: ts, create: created, version: 2 } },
        { op: 'set' },
      ],
    });
    expect(await db.getString('cas:k')).toBe('v2');
    expect(await db.getString('cas:new')).toBe('n');
    expect(await db.revision('cas:new')).toEqual({ mod: ts, create: ts, version: 1 });
  });

  it('runs failure otherwise, and writes nothing of success', async () => {
    const res = await post({
      compare: [{ key: 'cas:k', target: 'value', op: '=', value: 'v1' }],
      success: [{ op: 'delete', key: 'cas:k' }],
      failure: [
        { op: 'get', key: 'cas:k' },
        { op: 'get', key: 'cas:missing' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      succeeded: false,
      results: [
        { op: 'get', found: true, value: 'v2', revision: await db.revision('cas:k') },
        { op: 'get', found: false },
      ],
    });
    expect(await db.getString('cas:k')).toBe('v2');
  });

  it('compares version, create and mod', async () => {
    await db.set('rev:k', 'a');
    const rev = (await db.revision('rev:k'))!;
    const holds = async (target: string, op: string, number: number) => {
      const res = await post({ compare: [{ key: 'rev:k', target, op, number }] });
      expect(res.statusCode).toBe(200);
      return res.json().succeeded as boolean;
    };
    expect(await holds('version', '=', 1)).toBe(true);
    expect(await holds('create', '=', rev.create)).toBe(true);
    expect(await holds('mod', '<', rev.mod)).toBe(false);
    const update = await post({
      compare: [{ key: 'rev:k', target: 'mod', op: '=', number: rev.mod }],
      success: [{ op: 'set', key: 'rev:k', value: 'b' }],
    });
    expect(update.json()).toEqual({ succeeded: true, ts: update.json().ts, results: [{ op: 'set' }] });
    expect(update.json().ts).toBeGreaterThan(rev.mod);
    expect(await holds('mod', '=', rev.mod)).toBe(false);
    expect(await holds('version', '=', 2)).toBe(true);
  });

  it('takes and gives base64 with base64: true', async () => {
    const key = Buffer.from([0xff, 0x00, 0x01]);
    const value = Buffer.from([0x80, 0x81]);
    const b64 = (b: Buffer) => b.toString('base64');
    const res = await post({
      base64: true,
      compare: [{ key: b64(key), target: 'exists', exists: false }],
      success: [
        { op: 'set', key: b64(key), value: b64(value) },
        { op: 'get', key: b64(key) },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().results[1]).toEqual({
      op: 'get',
      found: true,
      value: b64(value),
      revision: await db.revision(key),
    });
    expect(await db.get(key)).toEqual(value);
  });
});

describe('POST /v1/txn: one-shot transactions', () => {
  it('runs ops in order; reads see the earlier writes of the same request', async () => {
    await db.set('os:b', 'old');
    const res = await post({
      ops: [
        { op: 'get', key: 'os:a' },
        { op: 'set', key: 'os:a', value: '1' },
        { op: 'get', key: 'os:a' },
        { op: 'delete', key: 'os:b' },
        { op: 'get', key: 'os:b' },
        { op: 'set', key: 'os:c', value: '3' },
        { op: 'scan', prefix: 'os:' },
        { op: 'scan', prefix: 'os:', reverse: true, limit: 1 },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(typeof body.ts).toBe('number');
    expect(body.results).toEqual([
      { op: 'get', found: false },
      { op: 'set' },
      { op: 'get', found: true, value: '1' },
      { op: 'delete' },
      { op: 'get', found: false },
      { op: 'set' },
      {
        op: 'scan',
        items: [
          { key: 'os:a', value: '1' },
          { key: 'os:c', value: '3' },
        ],
      },
      { op: 'scan', items: [{ key: 'os:c', value: '3' }] },
    ]);
    expect(await db.getString('os:a')).toBe('1');
    expect(await db.getString('os:b')).toBeUndefined();
    expect(body.ts).toBe(db.txnStats().lastTs);
  });

  it('renders values that are not UTF-8 as base64 in text mode', async () => {
    await db.set('os:bin', Buffer.from([0xff, 0xfe]));
    const res = await post({ isolation: 'snapshot', ops: [{ op: 'get', key: 'os:bin' }] });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toEqual([{ op: 'get', found: true, value: '//4=', valueEncoding: 'base64' }]);
  });

  it('a scan stops at the page byte cap and says so', async () => {
    const big = Buffer.alloc(1024 * 1024, 0x61);
    const count = Math.ceil(LIST_PAGE_BYTES_MAX / big.length) + 1;
    for (let i = 0; i < count; i++) await db.set(`big:${String(i).padStart(2, '0')}`, big);
    const res = await post({ ops: [{ op: 'scan', prefix: 'big:', limit: count }] });
    expect(res.statusCode).toBe(200);
    const [scan] = res.json().results;
    expect(scan.truncated).toBe(true);
    expect(scan.items.length).toBeGreaterThan(0);
    expect(scan.items.length).toBeLessThan(count);
    const small = await post({ ops: [{ op: 'scan', prefix: 'big:', limit: 2 }] });
    expect(small.json().results[0].truncated).toBeUndefined();
  });

  it('a scan skips keys holding a hash, and its limit counts the strings it answers', async () => {
    // Found from outside: a scan answered a hash's internal encoding as its value.
    const hash = encodeHash(new Map([['f', Buffer.from('v')]]));
    for (const k of ['hs:1', 'hs:2', 'hs:4'])
      await db.pipeline.put(Buffer.from(k), hash, undefined, ValueType.HASH);
    for (const k of ['hs:3', 'hs:5']) await db.set(k, k);
    const scan = async (op: object) => {
      const res = await post({ ops: [{ op: 'scan', prefix: 'hs:', ...op }] });
      expect(res.statusCode, res.body).toBe(200);
      return (res.json().results[0].items as { key: string }[]).map((i) => i.key);
    };
    expect(await scan({})).toEqual(['hs:3', 'hs:5']);
    expect(await scan({ limit: 1 })).toEqual(['hs:3']);
    expect(await scan({ limit: 2 })).toEqual(['hs:3', 'hs:5']);
    expect(await scan({ limit: 1, reverse: true })).toEqual(['hs:5']);
    // The transaction's own writes are strings, and a string written over a hash is one.
    const res = await post({
      ops: [
        { op: 'set', key: 'hs:1', value: 'now a string' },
        { op: 'scan', prefix: 'hs:', limit: 2 },
      ],
    });
    expect(res.json().results[1].items).toEqual([
      { key: 'hs:1', value: 'now a string' },
      { key: 'hs:3', value: 'hs:3' },
    ]);
  });

  it('refuses with 413 a request whose gets and scans together read past TXN_ANSWER_BYTES_MAX, writing nothing', async () => {
    // Found from outside: every scan had its page cap but the request none, so 10 000 scans (or
    // gets of one large value) held gigabytes and killed the server.
    const value = Buffer.alloc(8 * 1024 * 1024, 0x61);
    const perAnswer = Math.floor(TXN_ANSWER_BYTES_MAX / value.length);
    await db.set('ans:big', value);
    const gets = (n: number) => Array.from({ length: n }, () => ({ op: 'get', key: 'ans:big' }));
    const oneShot = await post({ ops: [{ op: 'set', key: 'ans:w', value: 'x' }, ...gets(perAnswer + 1)] });
    expect(oneShot.statusCode).toBe(413);
    expect(oneShot.json().error.message).toMatch(/TXN_ANSWER_BYTES_MAX/);
    const scans = Array.from({ length: perAnswer + 1 }, () => ({ op: 'scan', prefix: 'ans:' }));
    expect((await post({ ops: [{ op: 'set', key: 'ans:w', value: 'x' }, ...scans] })).statusCode).toBe(413);
    const cas = await post({
      compare: [],
      success: [{ op: 'set', key: 'ans:w', value: 'x' }, ...gets(perAnswer + 1)],
    });
    expect(cas.statusCode).toBe(413);
    expect(cas.json().error.code).toBe('LIMIT');
    expect(await db.get('ans:w')).toBeUndefined();
    // Within the budget both forms answer.
    const within = await post({ ops: [{ op: 'set', key: 'ans:w', value: 'x' }, ...gets(perAnswer - 1)] });
    expect(within.statusCode).toBe(200);
    expect(within.json().results).toHaveLength(perAnswer);
    expect((await post({ compare: [], success: gets(perAnswer) })).statusCode).toBe(200);
    await db.delete('ans:big');
  });

  it('is atomic: an operation over a limit writes nothing', async () => {
    const res = await post({
      ops: [
        { op: 'set', key: 'os:first', value: 'x' },
        { op: 'set', key: 'k'.repeat(KEY_BYTES_MAX + 1), value: 'x' },
      ],
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('LIMIT');
    expect(await db.getString('os:first')).toBeUndefined();
  });

  it('retries a conflict on a fresh snapshot', async () => {
    const commit = Transaction.prototype.commit;
    const spy = vi
      .spyOn(Transaction.prototype, 'commit')
      .mockImplementationOnce(async function (this: Transaction) {
        this.rollback();
        throw new TxnConflictError('injected');
      })
      .mockImplementation(function (this: Transaction) {
        return commit.call(this);
      });
    const res = await post({ ops: [{ op: 'set', key: 'os:retry', value: 'ok' }] });
    expect(res.statusCode).toBe(200);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(await db.getString('os:retry')).toBe('ok');
  });

  it('answers 409 TXN_CONFLICT once the attempts are exhausted', async () => {
    const spy = vi.spyOn(Transaction.prototype, 'commit').mockImplementation(async function (
      this: Transaction,
    ) {
      this.rollback();
      throw new TxnConflictError('injected');
    });
    const readersBefore = db.txnStats().readers;
    const res = await post({ ops: [{ op: 'set', key: 'os:never', value: 'x' }] });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('TXN_CONFLICT');
    expect(spy).toHaveBeenCalledTimes(DEFAULT_TXN_ATTEMPTS);
    expect(await db.getString('os:never')).toBeUndefined();
    expect(db.txnStats().readers).toBe(readersBefore);
  });
});

describe('POST /v1/txn: bad requests', () => {
  const bad: [string, unknown][] = [
    ['neither form', { base64: false }],
    ['both forms', { compare: [], ops: [] }],
    ['isolation with compare', { compare: [], isolation: 'snapshot' }],
    ['success with ops', { ops: [], success: [] }],
    ['unknown isolation', { ops: [], isolation: 'chaos' }],
    ['set without a value', { ops: [{ op: 'set', key: 'k' }] }],
    ['get without a key', { ops: [{ op: 'get' }] }],
    ['unknown op', { ops: [{ op: 'incr', key: 'k' }] }],
    ['unknown field', { ops: [{ op: 'get', key: 'k', extra: 1 }] }],
    ['scan limit over the maximum', { ops: [{ op: 'scan', limit: LIST_LIMIT_MAX + 1 }] }],
    ['value comparison without op', { compare: [{ key: 'k', target: 'value', value: 'v' }] }],
    ['exists comparison without exists', { compare: [{ key: 'k', target: 'exists' }] }],
    ['unknown comparison', { compare: [{ key: 'k', target: 'value', op: '~', value: 'v' }] }],
    ['version comparison without number', { compare: [{ key: 'k', target: 'version', op: '=' }] }],
    ['negative mod', { compare: [{ key: 'k', target: 'mod', op: '=', number: -1 }] }],
    ['fractional create', { compare: [{ key: 'k', target: 'create', op: '>', number: 1.5 }] }],
    ['unknown target', { compare: [{ key: 'k', target: 'size', op: '=', number: 1 }] }],
    ['bad base64', { base64: true, ops: [{ op: 'get', key: '***' }] }],
  ];
  it.each(bad)('%s: 400 INVALID_ARGUMENT', async (_name, payload) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('INVALID_ARGUMENT');
  });

  it('a body that is not JSON: 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/txn',
      headers: { 'content-type': 'text/plain' },
      payload: 'ops',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
