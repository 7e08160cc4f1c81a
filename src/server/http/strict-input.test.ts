// The HTTP API takes what it documents and nothing else (defects-2026-12.md entries 11, 15 and
// 17): JSON types are not coerced, operations refuse fields that do not belong to them, and every
// error, Node's HTTP parser's included, is `{"error":{"code","message"}}` with a message that
// says what was wrong in the caller's terms.
import * as net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { EXPIRES_AT_MAX } from '../../storage/limits.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp, validQueryEncoding } from './app.js';
import { HEADER_BYTES_MAX, LIST_LIMIT_MAX } from './limits.js';

let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-strict'));
  app = createHttpApp({ db, metrics: createMetrics(db), version: '0.0.0' });
  await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await db.close();
});

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, json: res.json() };
}

function messageOf(json: Record<string, unknown>): string {
  return String((json.error as { message: unknown }).message);
}

describe('JSON bodies are not coerced (entry 11)', () => {
  const refusedBatches: [string, unknown][] = [
    ['a null value', { ops: [{ op: 'set', key: 'nv', value: null }] }],
    ['a numeric key and a boolean value', { ops: [{ op: 'set', key: 123, value: true }] }],
    ['a key in an array', { ops: [{ op: 'set', key: ['x'], value: 'arr' }] }],
    ['base64 as a string', { ops: [{ op: 'set', key: 'YQ', value: 'MQ' }], base64: 'false' }],
    ['ttlMs as a string', { ops: [{ op: 'set', key: 'k', value: 'v', ttlMs: '100' }] }],
    ['a value on a delete', { ops: [{ op: 'delete', key: 'k', value: 'v' }] }],
    ['a ttlMs on a delete', { ops: [{ op: 'delete', key: 'k', ttlMs: 5 }] }],
  ];
  for (const [what, body] of refusedBatches) {
    it(`POST /v1/batch refuses ${what} with 400 and stores nothing`, async () => {
      const before = db.stats().keys;
      const { status, json } = await post('/v1/batch', body);
      expect(status).toBe(400);
      expect((json.error as { code: unknown }).code).toBe('INVALID_ARGUMENT');
      expect(db.stats().keys).toBe(before);
      expect(await db.get('nv')).toBeUndefined();
      expect(await db.get('123')).toBeUndefined();
    });
  }

  it('POST /v1/txn refuses a value on get and delete, and scan fields elsewhere', async () => {
    for (const op of [
      { op: 'get', key: 'k', value: 'v' },
      { op: 'delete', key: 'k', value: 'v' },
      { op: 'get', key: 'k', limit: 3 },
      { op: 'scan', key: 'k' },
    ]) {
      expect((await post('/v1/txn', { ops: [op] })).status, JSON.stringify(op)).toBe(400);
    }
    const cas = await post('/v1/txn', { compare: [], success: [{ op: 'get', key: 'k', value: 'v' }] });
    expect(cas.status).toBe(400);
  });

  it('GET /v1/kv takes limit as digits and says its range', async () => {
    await db.set('l1', '1');
    await db.set('l2', '2');
    const ok = await app.inject({ method: 'GET', url: '/v1/kv?prefix=l&limit=1' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().items).toHaveLength(1);
    for (const limit of ['0', 'x', '1.5', '-1']) {
      expect((await app.inject({ method: 'GET', url: `/v1/kv?limit=${limit}` })).statusCode, limit).toBe(400);
    }
    const big = await app.inject({ method: 'GET', url: `/v1/kv?limit=${LIST_LIMIT_MAX + 1}` });
    expect(big.statusCode).toBe(400);
    expect(messageOf(big.json())).toBe(`limit must be at most ${LIST_LIMIT_MAX}, got ${LIST_LIMIT_MAX + 1}`);
  });
});

describe('clear errors (entry 15)', () => {
  it('says that a transaction body mixes the two forms, or has neither', async () => {
    const both = await post('/v1/txn', { compare: [], ops: [] });
    expect(both.status).toBe(400);
    expect(messageOf(both.json)).toMatch(/either a compare-and-swap .* or a one-shot transaction .*not both/);
    const neither = await post('/v1/txn', { base64: false });
    expect(messageOf(neither.json)).toMatch(/needs `compare` .* or `ops`/);
  });

  it('speaks of ttlMs when a ttlMs is too large, not of an expiresAt the caller never sent', async () => {
    const res = await app.inject({ method: 'PUT', url: '/v1/kv/t?ttlMs=9007199254740990', payload: 'v' });
    expect(res.statusCode).toBe(400);
    expect(messageOf(res.json())).toMatch(/^ttlMs 9007199254740990 is too large: .* at most \d+ now$/);
    await expect(db.set('t', 'v', { ttlMs: Number.MAX_SAFE_INTEGER })).rejects.toThrow(/ttlMs .* too large/);
    await expect(db.set('t', 'v', { expiresAt: '5' as unknown as number })).rejects.toThrow(/got "5"$/);
    expect(EXPIRES_AT_MAX).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('names an unknown op, and a field its op does not take, instead of "must NOT be valid"', async () => {
    const wrongOp = await post('/v1/txn', {
      compare: [{ key: 'a', target: 'exists', exists: false }],
      success: [{ op: 'put', key: 'b', value: 'x' }],
    });
    expect(wrongOp.status).toBe(400);
    expect(messageOf(wrongOp.json)).toBe('body/success/0/op must be one of "get", "set", "delete"');
    const valueOnGet = await post('/v1/txn', { ops: [{ op: 'get', key: 'k', value: 'v' }] });
    expect(messageOf(valueOnGet.json)).toBe('body/ops/0/value is not allowed with this op');
    const keyOnScan = await post('/v1/txn', { ops: [{ op: 'scan', key: 'k' }] });
    expect(messageOf(keyOnScan.json)).toBe('body/ops/0/key is not allowed with this op');
    const limitOnGet = await post('/v1/txn', { ops: [{ op: 'get', key: 'k', limit: 5 }] });
    expect(messageOf(limitOnGet.json)).toBe('body/ops/0/limit is not allowed with this op');
    const ttlOnDelete = await post('/v1/batch', { ops: [{ op: 'delete', key: 'k', ttlMs: 5 }] });
    expect(messageOf(ttlOnDelete.json)).toBe('body/ops/0/ttlMs is not allowed with this op');
    const badBatchOp = await post('/v1/batch', { ops: [{ op: 'del', key: 'k', value: 'v' }] });
    expect(messageOf(badBatchOp.json)).toBe('body/ops/0/op must be one of "set", "delete"');
  });

  it('refuses a __proto__ key as an unknown field, and says where JSON is broken', async () => {
    const proto = await post('/v1/batch', '{"ops":[],"__proto__":{"x":1}}');
    expect(proto.status).toBe(400);
    expect(messageOf(proto.json)).toMatch(/additional properties/);
    const broken = await post('/v1/batch', '{"ops":[}');
    expect(broken.status).toBe(400);
    expect(messageOf(broken.json)).toMatch(/^the body is not valid JSON: /);
  });

  it("answers Node's HTTP parser errors in the API's error shape", async () => {
    const { port } = app.server.address() as net.AddressInfo;
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(request));
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
        });
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
    const bad = await raw('POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^malformed HTTP request/) },
    });
    const huge = await raw(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(HEADER_BYTES_MAX + 10)}\r\n\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1.1 431 Request Header Fields Too Large\r\n/);
    expect(JSON.parse(huge.slice(huge.indexOf('\r\n\r\n') + 4)).error.code).toBe('LIMIT');
  });

  it('refuses a cursor it did not issue, or issued for another listing, and ambiguous base64 (entry 17)', async () => {
    for (let i = 0; i < 5; i++) await db.set(`cur:${i}`, String(i));
    const first = await app.inject({ method: 'GET', url: '/v1/kv?prefix=cur:&limit=2' });
    const next = first.json().next as string;
    const page2 = await app.inject({ method: 'GET', url: `/v1/kv?prefix=cur:&limit=2&cursor=${next}` });
    expect(page2.json().items.map((i: { key: string }) => i.key)).toEqual(['cur:2', 'cur:3']);
    const other = await app.inject({ method: 'GET', url: `/v1/kv?prefix=cu&limit=2&cursor=${next}` });
    expect(other.statusCode).toBe(400);
    expect(messageOf(other.json())).toMatch(/not issued for this listing/);
    // A well-formed token of the old kind, naming key "zz".
    const forged = await app.inject({ method: 'GET', url: '/v1/kv?cursor=AQB6eg' });
    expect(forged.statusCode).toBe(400);
    // Two spellings of one key: only the canonical one is taken.
    expect((await app.inject({ method: 'GET', url: '/v1/kv/Y2Fmww?base64' })).statusCode).toBe(404);
    const loose = await app.inject({ method: 'GET', url: '/v1/kv/Y2Fmw6?base64' });
    expect(loose.statusCode).toBe(400);
    expect(messageOf(loose.json())).toMatch(/bits set past its last byte/);
  });
});

describe('query strings are valid percent-encoded UTF-8', () => {
  it('refuses a bad escape in the query as a path is refused, instead of taking it literally', async () => {
    await db.set('%ffabc', 'literal');
    for (const url of ['/v1/kv?prefix=%ff', '/v1/kv?start=%zz', '/v1/kv?prefix=a%', '/v1/kv?prefix=%C3']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json())).toMatch(/not valid percent-encoded UTF-8/);
    }
    // Well-formed escapes, and '+' for a space, are fine.
    const ok = await app.inject({ method: 'GET', url: '/v1/kv?prefix=%25ff&values=false' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ items: [{ key: '%ffabc' }] });
    expect(validQueryEncoding('a=%C3%A9+b&c')).toBe(true);
    expect(validQueryEncoding('a=%E9')).toBe(false);
  });
});

describe('unknown query parameters and PUT ?base64 body fields are refused', () => {
  it('names a misspelt query parameter instead of ignoring it', async () => {
    const cases: [string, string, string][] = [
      ['PUT', '/v1/kv/sess?ttl=1000', 'ttl'],
      ['PUT', '/v1/kv/aGk?b64', 'b64'],
      ['GET', '/v1/kv/sess?b64', 'b64'],
      ['DELETE', '/v1/kv/sess?ttlMs=5', 'ttlMs'],
      ['GET', '/v1/kv?prefx=zzz&limit=2', 'prefx'],
    ];
    for (const [method, url, name] of cases) {
      const res = await app.inject({
        method: method as 'GET',
        url,
        payload: method === 'PUT' ? 'v' : undefined,
      });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toContain(`unknown query parameter "${name}"`);
    }
    expect(await db.get('sess')).toBeUndefined();
    expect(await db.get('aGk')).toBeUndefined();
  });

  it('refuses a query parameter on the routes that take none: POST /v1/batch?base64 does not run as text', async () => {
    // Found from outside: `?base64` on the batch URL (as on the kv routes) was ignored, and the
    // base64 text was stored as the keys and values.
    const batch = await post('/v1/batch?base64', { ops: [{ op: 'set', key: 'AA', value: 'AP8' }] });
    expect(batch.status).toBe(400);
    expect(messageOf(batch.json)).toContain('unknown query parameter "base64"');
    expect(await db.get('AA')).toBeUndefined();
    const txn = await post('/v1/txn?base64', { ops: [{ op: 'set', key: 'AA', value: 'AP8' }] });
    expect(txn.status).toBe(400);
    expect(await db.get('AA')).toBeUndefined();
    for (const url of [
      '/healthz?verbose',
      '/metrics?name=x',
      '/openapi.json?v=3',
      '/v1/snapshot?x',
      '/v1/status?x',
      '/v1/cluster?x',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toContain('unknown query parameter');
    }
    // Without one, and with ?consistency= (cluster.ts takes it off first), they answer.
    for (const url of ['/healthz', '/metrics', '/openapi.json', '/v1/status?consistency=serializable']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
    expect((await post('/v1/batch?consistency=linearizable', { ops: [] })).status).toBe(200);
  });

  it('refuses a listing parameter on the one-key route (GET /v1/kv/?prefix=a) rather than read the empty key', async () => {
    await db.set('', 'the empty key');
    for (const url of ['/v1/kv/?prefix=a', '/v1/kv/?limit=2', '/v1/kv/?cursor=x']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toMatch(/is a listing parameter: list with GET \/v1\/kv/);
    }
    // The empty key itself stays reachable, and ?consistency= is still taken (cluster.ts).
    const empty = await app.inject({ method: 'GET', url: '/v1/kv/?consistency=serializable' });
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toBe('the empty key');
    await db.delete('');
  });

  it('refuses fields of a PUT ?base64 body other than value', async () => {
    const put = (payload: string) =>
      app.inject({
        method: 'PUT',
        url: '/v1/kv/eHg?base64',
        headers: { 'content-type': 'application/json' },
        payload,
      });
    const withTtl = await put('{"value":"aGk=","ttlMs":5000}');
    expect(withTtl.statusCode).toBe(400);
    expect(messageOf(withTtl.json())).toMatch(/unknown field "ttlMs"/);
    expect((await put('["aGk="]')).statusCode).toBe(400);
    expect(await db.get('xx')).toBeUndefined();
    expect((await put('{"value":"aGk="}')).statusCode).toBe(204);
    expect(await db.get('xx')).toEqual(Buffer.from('hi'));
  });
});

describe('?consistency= does not turn the query checks off', () => {
  it('refuses a bad escape in a query that also carries consistency', async () => {
    for (const url of [
      '/v1/kv?prefix=%zz&consistency=linearizable',
      '/v1/kv?prefix=%ff&consistency=serializable',
      '/v1/kv/k?consistency=linearizable&base64=%C3',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toMatch(/not valid percent-encoded UTF-8/);
    }
    expect(
      (await app.inject({ method: 'GET', url: '/v1/kv?prefix=%25zz&consistency=linearizable' })).statusCode,
    ).toBe(200);
  });
});

describe('lone surrogates in JSON strings', () => {
  it('POST /v1/txn refuses them, as /v1/batch does, instead of storing U+FFFD', async () => {
    const bodies = [
      '{"ops":[{"op":"set","key":"sur\\ud800","value":"A"}]}',
      '{"ops":[{"op":"set","key":"sur","value":"A\\udc00"}]}',
      '{"ops":[{"op":"scan","prefix":"sur\\udfff"}]}',
      '{"compare":[],"success":[{"op":"set","key":"sur\\udfff","value":"B"}]}',
      '{"compare":[{"key":"sur","target":"value","op":"=","value":"\\ud800"}],"success":[]}',
    ];
    for (const body of bodies) {
      const res = await post('/v1/txn', body);
      expect(res.status, body).toBe(400);
      expect((res.json.error as { code: unknown }).code, body).toBe('INVALID_ARGUMENT');
      expect(messageOf(res.json), body).toMatch(/lone surrogate/);
    }
    const batch = await post('/v1/batch', bodies[0] as string);
    expect(batch.status).toBe(400);
    expect(messageOf(batch.json)).toMatch(/lone surrogate/);
    const listing = await app.inject({ method: 'GET', url: '/v1/kv?prefix=sur' });
    expect(listing.json()).toEqual({ items: [] });
  });
});

describe('digit parameters', () => {
  it('says in words what ttlMs and limit must be, not the regular expression', async () => {
    for (const url of ['/v1/kv/t?ttlMs=-5', '/v1/kv/t?ttlMs=1.5', '/v1/kv/t?ttlMs=abc', '/v1/kv/t?ttlMs=0']) {
      const res = await app.inject({ method: 'PUT', url, payload: 'v' });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toBe(
        'querystring/ttlMs must be a positive integer (decimal digits, no sign, no leading zero)',
      );
    }
    const limit = await app.inject({ method: 'GET', url: '/v1/kv?limit=x' });
    expect(messageOf(limit.json())).toMatch(/^querystring\/limit must be a positive integer/);
  });

  it('says that a parameter is repeated, not that it "must be string"', async () => {
    for (const [method, url, name] of [
      ['GET', '/v1/kv?prefix=a&prefix=b', 'prefix'],
      ['PUT', '/v1/kv/t?ttlMs=1&ttlMs=2', 'ttlMs'],
      ['GET', '/v1/kv/t?base64&base64', 'base64'],
    ] as const) {
      const res = await app.inject({ method, url, payload: method === 'PUT' ? 'v' : undefined });
      expect(res.statusCode, url).toBe(400);
      expect(messageOf(res.json()), url).toBe(`query parameter "${name}" is given more than once`);
    }
  });
});

describe('compare-and-swap comparisons', () => {
  it('refuse a field their target does not take', async () => {
    const cases: [unknown, string][] = [
      [{ key: 'a', target: 'exists', exists: true, op: '=' }, 'body/compare/0/op'],
      [{ key: 'a', target: 'value', op: '=', value: 'x', number: 3 }, 'body/compare/0/number'],
      [{ key: 'a', target: 'mod', op: '=', number: 3, value: 'x' }, 'body/compare/0/value'],
      [{ key: 'a', target: 'version', op: '>', number: 0, exists: false }, 'body/compare/0/exists'],
    ];
    for (const [comparison, field] of cases) {
      const res = await post('/v1/txn', { compare: [comparison], success: [] });
      expect(res.status, JSON.stringify(comparison)).toBe(400);
      // "this target": a comparison has no op of that kind (it said "this op", found from outside).
      expect(messageOf(res.json)).toBe(`${field} is not allowed with this target`);
    }
    const ok = await post('/v1/txn', {
      compare: [{ key: 'a', target: 'exists', exists: false }],
      success: [],
    });
    expect(ok.status).toBe(200);
  });
});
