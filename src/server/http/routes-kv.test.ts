import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';

let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-kv'));
  app = createHttpApp({ db, metrics: createMetrics(db, { defaultMetrics: false }), version: 'test' });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await db.close();
});

const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');

describe('GET/PUT/DELETE /v1/kv/:key (raw)', () => {
  it('round-trips raw bytes whatever the content type says', async () => {
    const value = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    // Malformed types too: fastify's own parser refused them with 415 (found from outside).
    const malformed = [';;;', '/', 'text/plain;charset="x', 'a/b; c', ''];
    for (const type of [
      'application/octet-stream',
      'application/json',
      'text/plain',
      'image/png',
      ...malformed,
    ]) {
      const put = await app.inject({
        method: 'PUT',
        url: '/v1/kv/raw',
        payload: value,
        headers: { 'content-type': type },
      });
      expect(put.statusCode).toBe(204);
      expect(put.body).toBe('');
      const get = await app.inject({ method: 'GET', url: '/v1/kv/raw' });
      expect(get.statusCode).toBe(200);
      expect(get.headers['content-type']).toBe('application/octet-stream');
      expect(get.rawPayload.equals(value)).toBe(true);
    }
    // JSON-looking bytes are stored as bytes, not parsed.
    await app.inject({
      method: 'PUT',
      url: '/v1/kv/raw',
      payload: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    expect((await db.get('raw'))?.toString()).toBe('{"a":');
  });

  it('stores an empty body as the empty value', async () => {
    expect((await app.inject({ method: 'PUT', url: '/v1/kv/empty' })).statusCode).toBe(204);
    const get = await app.inject({ method: 'GET', url: '/v1/kv/empty' });
    expect(get.statusCode).toBe(200);
    expect(get.rawPayload.length).toBe(0);
  });

  it('addresses keys as percent-encoded UTF-8 path segments, slashes included', async () => {
    for (const key of ['a/b', 'ü €', 'x?y#z', '%41', 'a+b', '\u0000nul']) {
      const url = `/v1/kv/${encodeURIComponent(key)}`;
      expect((await app.inject({ method: 'PUT', url, payload: key })).statusCode).toBe(204);
      expect((await db.getString(key)) ?? null).toBe(key);
      expect((await app.inject({ method: 'GET', url })).body).toBe(key);
    }
  });

  it('answers 404 KEY_NOT_FOUND for a missing key; HEAD tells existence', async () => {
    const get = await app.inject({ method: 'GET', url: '/v1/kv/missing' });
    expect(get.statusCode).toBe(404);
    expect(get.json()).toEqual({ error: { code: 'KEY_NOT_FOUND', message: 'Key not found' } });
    expect((await app.inject({ method: 'HEAD', url: '/v1/kv/missing' })).statusCode).toBe(404);
    await db.set('present', 'v');
    expect((await app.inject({ method: 'HEAD', url: '/v1/kv/present' })).statusCode).toBe(200);
  });

  it('DELETE answers 204 when the key existed and 404 when not', async () => {
    await db.set('doomed', 'v');
    expect((await app.inject({ method: 'DELETE', url: '/v1/kv/doomed' })).statusCode).toBe(204);
    expect(await db.has('doomed')).toBe(false);
    const again = await app.inject({ method: 'DELETE', url: '/v1/kv/doomed' });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('KEY_NOT_FOUND');
  });

  it('refuses percent-encoding that is not UTF-8 with 400 INVALID_ARGUMENT', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/kv/%FF' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('INVALID_ARGUMENT');
  });

  it('accepts a maximal key and refuses a longer one with 413 LIMIT', async () => {
    const key = 'k'.repeat(KEY_BYTES_MAX);
    expect((await app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'big' })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: `/v1/kv/${key}` })).body).toBe('big');
    const over = await app.inject({ method: 'PUT', url: `/v1/kv/${key}k`, payload: 'big' });
    expect(over.statusCode).toBe(413);
    expect(over.json().error.code).toBe('LIMIT');
  });
});

describe('/v1/kv/:key?base64', () => {
  const key = Buffer.from([0xff, 0x00, 0x2f, 0xfb, 0xef]); // not UTF-8; base64url has '-' and '_'
  const value = Buffer.from([0x80, 0x81, 0x00, 0x7f]);

  it('round-trips binary keys and values as JSON base64', async () => {
    const put = await app.inject({
      method: 'PUT',
      url: `/v1/kv/${b64url(key)}?base64`,
      payload: { value: value.toString('base64') },
    });
    expect(put.statusCode).toBe(204);
    expect((await db.get(key))?.equals(value)).toBe(true);

    const get = await app.inject({ method: 'GET', url: `/v1/kv/${b64url(key)}?base64` });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toMatch(/^application\/json/);
    expect(get.json()).toEqual({ key: key.toString('base64'), value: value.toString('base64') });

    // The raw form of the same key: the value comes back as bytes.
    const raw = await app.inject({ method: 'GET', url: `/v1/kv/${b64url(key)}?base64=false` });
    expect(raw.statusCode).toBe(404); // the path is then the literal text, another key

    // Standard base64 (percent-encoded '/' and '+') addresses the same key.
    const std = encodeURIComponent(key.toString('base64'));
    expect((await app.inject({ method: 'GET', url: `/v1/kv/${std}?base64=1` })).json().value).toBe(
      value.toString('base64'),
    );
    expect(
      (await app.inject({ method: 'DELETE', url: `/v1/kv/${b64url(key)}?base64=true` })).statusCode,
    ).toBe(204);
    expect(await db.has(key)).toBe(false);
  });

  it('reaches a raw key through base64 and the other way round', async () => {
    await app.inject({ method: 'PUT', url: '/v1/kv/hello', payload: 'world' });
    const get = await app.inject({ method: 'GET', url: `/v1/kv/${b64url('hello')}?base64` });
    expect(get.json()).toEqual({
      key: Buffer.from('hello').toString('base64'),
      value: Buffer.from('world').toString('base64'),
    });
  });

  it('refuses bad base64 and bad JSON bodies with 400 INVALID_ARGUMENT', async () => {
    const cases = [
      app.inject({ method: 'GET', url: '/v1/kv/not*base64?base64' }),
      app.inject({ method: 'GET', url: '/v1/kv/a?base64' }), // one char: never valid base64
      app.inject({ method: 'PUT', url: '/v1/kv/aGk?base64', payload: 'not json' }),
      app.inject({ method: 'PUT', url: '/v1/kv/aGk?base64', payload: { value: 12 } }),
      app.inject({ method: 'PUT', url: '/v1/kv/aGk?base64', payload: { value: '!!' } }),
      app.inject({ method: 'PUT', url: '/v1/kv/aGk?base64' }),
      app.inject({ method: 'GET', url: '/v1/kv/aGk?base64=maybe' }),
    ];
    for (const res of await Promise.all(cases)) {
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    expect(await db.has('hi')).toBe(false);
  });
});

describe('PUT /v1/kv/:key?ttlMs and expiry on GET', () => {
  it('stores an expiry, shows it on GET (header, or expiresAt with ?base64), clears it on a plain PUT', async () => {
    const before = Date.now();
    const put = await app.inject({ method: 'PUT', url: '/v1/kv/ttl-key?ttlMs=60000', payload: 'v' });
    expect(put.statusCode).toBe(204);
    const get = await app.inject({ method: 'GET', url: '/v1/kv/ttl-key' });
    expect(get.statusCode).toBe(200);
    expect(get.body).toBe('v');
    const expiresAt = Number(get.headers['cairn-expires-at']);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    const json = await app.inject({ method: 'GET', url: `/v1/kv/${b64url('ttl-key')}?base64` });
    expect(json.json()).toEqual({ key: Buffer.from('ttl-key').toString('base64'), value: 'dg==', expiresAt });
    await app.inject({ method: 'PUT', url: '/v1/kv/ttl-key', payload: 'w' });
    const plain = await app.inject({ method: 'GET', url: '/v1/kv/ttl-key' });
    expect(plain.headers['cairn-expires-at']).toBeUndefined();
    expect(
      (await app.inject({ method: 'GET', url: `/v1/kv/${b64url('ttl-key')}?base64` })).json(),
    ).not.toHaveProperty('expiresAt');
  });

  it('expires the key (polled with a deadline)', async () => {
    await app.inject({ method: 'PUT', url: '/v1/kv/short?ttlMs=20', payload: 'v' });
    const deadline = Date.now() + 5000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await app.inject({ method: 'GET', url: '/v1/kv/short' })).statusCode;
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(status).toBe(404);
  });

  it('rejects a ttlMs that is not a positive integer with 400 INVALID_ARGUMENT', async () => {
    for (const bad of ['0', '-1', '1.5', 'abc', '', '99999999999999999']) {
      const res = await app.inject({ method: 'PUT', url: `/v1/kv/bad-ttl?ttlMs=${bad}`, payload: 'v' });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    expect(await db.has('bad-ttl')).toBe(false);
  });
});
