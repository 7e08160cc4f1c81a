import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';
import { passwordOf } from './auth.js';

const PASSWORD = 'p:w d';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let db: Db;
let app: FastifyInstance;
let open_: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-auth'));
  const metrics = createMetrics(db);
  app = createHttpApp({ db, metrics, version: '9.9.9', password: PASSWORD });
  open_ = createHttpApp({ db, metrics, version: '9.9.9' });
  await Promise.all([app.ready(), open_.ready()]);
});

afterAll(async () => {
  await app.close();
  await open_.close();
  await db.close();
});

describe('passwordOf', () => {
  it('reads Bearer and Basic (the password after the first colon), whatever the scheme case', () => {
    expect(passwordOf(`Bearer ${PASSWORD}`)).toBe(PASSWORD);
    expect(passwordOf(`bearer ${PASSWORD}`)).toBe(PASSWORD);
    expect(passwordOf(basic('default', PASSWORD))).toBe(PASSWORD);
    expect(passwordOf(basic('', PASSWORD))).toBe(PASSWORD);
    for (const h of [
      undefined,
      '',
      'Bearer',
      'Digest x',
      `Basic ${Buffer.from('nocolon').toString('base64')}`,
    ])
      expect(passwordOf(h)).toBeUndefined();
  });
});

describe('--requirepass on HTTP', () => {
  it('answers 401 with a challenge without the password or with another, and serves with it', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: basic('u', 'p:w') }]) {
      const res = await app.inject({ method: 'PUT', url: '/v1/kv/k', payload: 'v', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="cairn", charset="UTF-8"');
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    }
    expect(
      (await app.inject({ method: 'GET', url: '/v1/kv/k', headers: { authorization: 'x' } })).json().error
        .message,
    ).toMatch(/requires a password/);
    // Nothing was written by the refused requests.
    expect((await open_.inject({ method: 'GET', url: '/v1/kv/k' })).statusCode).toBe(404);
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/kv/k',
      payload: 'v',
      headers: { authorization: `Bearer ${PASSWORD}` },
    });
    expect(put.statusCode).toBe(204);
    const get = await app.inject({
      method: 'GET',
      url: '/v1/kv/k',
      headers: { authorization: basic('x', PASSWORD) },
    });
    expect([get.statusCode, get.body]).toEqual([200, 'v']);
  });

  it('guards every route but /healthz and /openapi.json', async () => {
    for (const url of ['/metrics', '/v1/kv', '/v1/snapshot', '/v1/cluster', '/v1/status', '/nowhere'])
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    for (const url of ['/healthz', '/openapi.json'])
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    // The open paths are matched without their query (refused by the route's schema, not here).
    expect((await app.inject({ method: 'GET', url: '/healthz?x=1' })).statusCode).toBe(400);
  });
});
