import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { encodeHash } from '../../storage/hash-codec.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import { ValueType } from '../../storage/value-type.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from './limits.js';
import type { ListItem, ListPage } from './routes-list.js';

let db: Db;
let app: FastifyInstance;

const KEYS = 250;
const keyOf = (i: number): string => `item:${String(i).padStart(4, '0')}`;

beforeAll(async () => {
  db = await open(tmpDir('http-list'));
  app = createHttpApp({ db, metrics: createMetrics(db, { defaultMetrics: false }), version: 'test' });
  await app.ready();
  await db.batch([
    ...Array.from({ length: KEYS }, (_, i) => ({ type: 'set' as const, key: keyOf(i), value: `v${i}` })),
    { type: 'set', key: 'other:a', value: 'A' },
    { type: 'set', key: 'other:b', value: 'B' },
  ]);
});

afterAll(async () => {
  await app.close();
  await db.close();
});

async function page(query: string): Promise<ListPage> {
  const res = await app.inject({ method: 'GET', url: `/v1/kv?${query}` });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<ListPage>();
}

/** walk follows `next` cursors to the end, returning every page's keys. */
async function walk(query: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const p = await page(cursor === undefined ? query : `${query}&cursor=${cursor}`);
    pages.push(p.items.map((item) => item.key));
    cursor = p.next;
  } while (cursor !== undefined);
  return pages;
}

describe('GET /v1/kv', () => {
  it('walks a 250-key prefix in pages of 100 with cursors', async () => {
    const pages = await walk('prefix=item:');
    expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
    expect(pages.flat()).toEqual(Array.from({ length: KEYS }, (_, i) => keyOf(i)));
  });

  it('walks in reverse with a custom limit', async () => {
    const pages = await walk('prefix=item:&reverse&limit=60');
    expect(pages.map((p) => p.length)).toEqual([60, 60, 60, 60, 10]);
    expect(pages.flat()).toEqual(Array.from({ length: KEYS }, (_, i) => keyOf(KEYS - 1 - i)));
  });

  it('has no next on an exactly full last page', async () => {
    const p = await page('prefix=item:&start=item:0150&limit=100');
    expect(p.items.length).toBe(100);
    expect(p.next).toBeUndefined();
  });

  it('returns values, and keys only with values=false', async () => {
    const p = await page('prefix=other:');
    expect(p).toEqual({
      items: [
        { key: 'other:a', value: 'A' },
        { key: 'other:b', value: 'B' },
      ],
    });
    expect((await page('prefix=other:&values=false')).items).toEqual([
      { key: 'other:a' },
      { key: 'other:b' },
    ]);
  });

  it('applies start (inclusive) and end (exclusive), alone and with a prefix and reverse', async () => {
    const keys = async (q: string) => (await page(q)).items.map((item) => item.key);
    expect(await keys('start=item:0010&end=item:0013')).toEqual([keyOf(10), keyOf(11), keyOf(12)]);
    expect(await keys('start=item:0010&end=item:0013&reverse=true')).toEqual([
      keyOf(12),
      keyOf(11),
      keyOf(10),
    ]);
    expect(await keys('prefix=item:&start=item:0248')).toEqual([keyOf(248), keyOf(249)]);
    expect(await keys('start=item:0249')).toEqual([keyOf(249), 'other:a', 'other:b']);
    expect(await keys('end=item:0002')).toEqual([keyOf(0), keyOf(1)]);
    // Empty bounds are no bounds.
    expect((await keys('start=&end=&prefix=&limit=1000')).length).toBe(KEYS + 2);
    // A cursor inside a range continues within it.
    const first = await page('start=item:0100&end=item:0110&limit=4');
    expect(first.next).toBeDefined();
    const second = await page(`start=item:0100&end=item:0110&limit=4&cursor=${first.next}`);
    const third = await page(`start=item:0100&end=item:0110&limit=4&cursor=${second.next}`);
    expect(third.next).toBeUndefined();
    expect([...first.items, ...second.items, ...third.items].map((item) => item.key)).toEqual(
      Array.from({ length: 10 }, (_, i) => keyOf(100 + i)),
    );
  });

  it('renders non-UTF-8 keys and values as base64 with encoding markers, or all base64 with ?base64', async () => {
    const key = Buffer.from([0x62, 0x69, 0x6e, 0xff]); // "bin" + 0xff
    const value = Buffer.from([0xc3, 0x28]);
    await db.set(key, value);
    await db.set('bin\u00e9', 'caf\u00e9');
    const text = await page('prefix=bin');
    expect(text.items).toEqual<ListItem[]>([
      { key: 'bin\u00e9', value: 'caf\u00e9' },
      {
        key: key.toString('base64'),
        keyEncoding: 'base64',
        value: value.toString('base64'),
        valueEncoding: 'base64',
      },
    ]);
    const b64 = await page(`prefix=${encodeURIComponent(Buffer.from('bin').toString('base64'))}&base64`);
    expect(b64.items).toEqual([
      {
        key: Buffer.from('bin\u00e9').toString('base64'),
        value: Buffer.from('caf\u00e9').toString('base64'),
      },
      { key: key.toString('base64'), value: value.toString('base64') },
    ]);
    // A binary start bound in base64 mode.
    const from = await page(
      `start=${key.toString('base64url')}&end=${Buffer.from('bio').toString('base64url')}&base64=1`,
    );
    expect(from.items.map((item) => item.key)).toEqual([key.toString('base64')]);
  });

  it('validates limit, flags, bounds and cursors with 400 INVALID_ARGUMENT', async () => {
    const bad = [
      'limit=0',
      `limit=${LIST_LIMIT_MAX + 1}`,
      'limit=ten',
      'reverse=yes',
      'base64&prefix=*',
      'cursor=***',
      'cursor=AA', // too short to be a cursor
    ];
    for (const q of bad) {
      const res = await app.inject({ method: 'GET', url: `/v1/kv?${q}` });
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    // A forward cursor replayed in reverse is refused rather than misread.
    const { next } = await page('prefix=item:&limit=5');
    const res = await app.inject({
      method: 'GET',
      url: `/v1/kv?prefix=item:&limit=5&reverse&cursor=${next}`,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/other order/);
    expect((await page('')).items.length).toBe(LIST_LIMIT_DEFAULT);
  });

  it('pages past keys holding a hash: every page is full and has `next` while strings follow', async () => {
    // h:0 h:1 hashes, then strings h:2..h:5 with a hash at h:4. A page used to spend its
    // `limit + 1` look-ahead on the hashes and end the walk without `next`.
    const hash = encodeHash(new Map([['f', Buffer.from('v')]]));
    for (const k of ['h:0', 'h:1', 'h:4'])
      await db.pipeline.put(Buffer.from(k), hash, undefined, ValueType.HASH);
    for (const k of ['h:2', 'h:3', 'h:5']) await db.set(k, k);
    expect(await walk('prefix=h:&limit=1')).toEqual([['h:2'], ['h:3'], ['h:5']]);
    expect(await walk('prefix=h:&limit=2')).toEqual([['h:2', 'h:3'], ['h:5']]);
    expect(await walk('prefix=h:&limit=2&reverse')).toEqual([['h:5', 'h:3'], ['h:2']]);
  });

  it('pages on after a key at the length limit (its cursor resumed at a bound over the limit: 413)', async () => {
    const first = `z${'m'.repeat(KEY_BYTES_MAX - 1)}`;
    const second = `z${'m'.repeat(KEY_BYTES_MAX - 2)}n`;
    const last = `z${'\xff'.repeat(10)}`; // UTF-8 c3 bf: sorts after both
    for (const k of [first, second, last]) await db.set(k, 'v');
    const pages = await walk('prefix=z&limit=1&values=false');
    expect(pages).toEqual([[first], [second], [last]]);
  });

  it('bounds what a keys-only page reads: values count against the page cap with values=false', async () => {
    const value = Buffer.alloc(3 * 1024 * 1024, 1);
    for (let i = 0; i < 8; i++) await db.set(`kv:${i}`, value);
    const pages = await walk('prefix=kv:&values=false');
    // 3 MiB each: a page stops once 8 MiB are read (at its third key), as it does with values.
    expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
    expect(pages.flat()).toEqual(Array.from({ length: 8 }, (_, i) => `kv:${i}`));
    expect((await walk('prefix=kv:')).map((p) => p.length)).toEqual([3, 3, 2]);
  });
});
