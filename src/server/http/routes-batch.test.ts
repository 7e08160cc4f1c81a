import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../../storage/limits.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';

let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-batch'));
  app = createHttpApp({ db, metrics: createMetrics(db, { defaultMetrics: false }), version: 'test' });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await db.close();
});

const post = (payload: unknown) =>
  app.inject({ method: 'POST', url: '/v1/batch', payload: payload as object });

describe('POST /v1/batch', () => {
  it('applies sets and deletes in order', async () => {
    await db.set('gone', 'x');
    const res = await post({
      ops: [
        { op: 'set', key: 'a', value: '1' },
        { op: 'set', key: 'b', value: '2' },
        { op: 'delete', key: 'gone' },
        { op: 'set', key: 'a', value: '3' },
        { op: 'delete', key: 'never-existed' },
      ],
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ applied: 5 });
    expect(await db.getString('a')).toBe('3');
    expect(await db.getString('b')).toBe('2');
    expect(await db.has('gone')).toBe(false);
  });

  it('takes base64 keys and values with base64: true', async () => {
    const key = Buffer.from([0xff, 0x01]);
    const value = Buffer.from([0x00, 0xfe]);
    const res = await post({
      base64: true,
      ops: [{ op: 'set', key: key.toString('base64'), value: value.toString('base64url') }],
    });
    expect(res.json()).toEqual({ applied: 1 });
    expect((await db.get(key))?.equals(value)).toBe(true);
  });

  it('sets an expiry with ttlMs, and refuses a bad one with 400 applying nothing', async () => {
    const before = Date.now();
    const res = await post({
      ops: [
        { op: 'set', key: 'ttl-a', value: '1', ttlMs: 60_000 },
        { op: 'set', key: 'ttl-b', value: '2' },
      ],
    });
    expect(res.statusCode).toBe(200);
    const at = await db.expiry('ttl-a');
    expect(at).toBeGreaterThanOrEqual(before + 60_000);
    expect(at).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await db.expiry('ttl-b')).toBeNull();
    for (const ttlMs of [0, -1, 1.5, 2 ** 53, 'soon']) {
      const bad = await post({ ops: [{ op: 'set', key: 'ttl-bad', value: '1', ttlMs }] });
      expect(bad.statusCode, String(ttlMs)).toBe(400);
      expect(bad.json().error.code).toBe('INVALID_ARGUMENT');
    }
    expect(await db.has('ttl-bad')).toBe(false);
    // Leave the store as the other tests expect it.
    await db.batch([
      { type: 'delete', key: 'ttl-a' },
      { type: 'delete', key: 'ttl-b' },
    ]);
  });

  it('accepts an empty batch', async () => {
    expect((await post({ ops: [] })).json()).toEqual({ applied: 0 });
  });

  it('is atomic: an over-limit value or key anywhere changes nothing (413 LIMIT)', async () => {
    const before = db.stats().writes;
    const overValue = await post({
      ops: [
        { op: 'set', key: 'atomic-1', value: 'ok' },
        { op: 'delete', key: 'a' },
        { op: 'set', key: 'atomic-2', value: 'x'.repeat(VALUE_BYTES_MAX + 1) },
      ],
    });
    expect(overValue.statusCode).toBe(413);
    expect(overValue.json().error.code).toBe('LIMIT');
    const overKey = await post({
      ops: [
        { op: 'set', key: 'atomic-1', value: 'ok' },
        { op: 'set', key: 'k'.repeat(KEY_BYTES_MAX + 1), value: 'v' },
      ],
    });
    expect(overKey.statusCode).toBe(413);
    expect(await db.has('atomic-1')).toBe(false);
    expect(await db.has('atomic-2')).toBe(false);
    expect(await db.getString('a')).toBe('3');
    expect(db.stats().writes).toBe(before);
  });

  it('refuses malformed batches with 400 INVALID_ARGUMENT and applies nothing', async () => {
    const bad: unknown[] = [
      {},
      { ops: 'nope' },
      { ops: [{ op: 'set', key: 'm1' }] }, // a set without a value
      { ops: [{ op: 'incr', key: 'm1' }] },
      { ops: [{ op: 'set', key: 'm1', value: 'v' }, { op: 'delete' }] },
      { ops: [{ op: 'set', key: 'm1', value: 'v', extra: true }] },
      {
        base64: true,
        ops: [
          { op: 'set', key: 'bTE=', value: 'v' },
          { op: 'set', key: '!!', value: 'AA' },
        ],
      },
      { base64: true, ops: [{ op: 'set', key: 'bTE=', value: '@' }] },
    ];
    for (const payload of bad) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    expect(await db.has('m1')).toBe(false);
  });

  it('refuses bad JSON (400), an empty JSON body (400) and non-JSON bodies (415)', async () => {
    const json = { 'content-type': 'application/json' };
    const badJson = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      payload: '{"ops": [',
      headers: json,
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe('INVALID_ARGUMENT');
    const empty = await app.inject({ method: 'POST', url: '/v1/batch', payload: '', headers: json });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.code).toBe('INVALID_ARGUMENT');
    const text = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      payload: '{"ops": []}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
