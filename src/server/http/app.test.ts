import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import {
  type CairnError,
  ClosedError,
  CorruptionError,
  IoError,
  LimitError,
  StoreFailedError,
} from '../../storage/errors.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { createHttpApp } from './app.js';
import { BODY_BYTES_MAX_DEFAULT, KEY_PATH_CHARS_MAX } from './limits.js';

let db: Db;
let metrics: Metrics;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-app'));
  metrics = createMetrics(db);
  app = createHttpApp({ db, metrics, version: '9.9.9' });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await db.close();
});

/** STUB_STATS: db.stats() of the stub stores below. */
const STUB_STATS = {
  engine: 'stub',
  keys: 0,
  diskBytes: 0,
  liveBytes: 0,
  writes: 0,
  fsyncs: 0,
  compactions: 0,
};

/** appOver: the HTTP app over a stub store. */
function appOver(stub: Db): FastifyInstance {
  return createHttpApp({ db: stub, metrics: createMetrics(stub, { defaultMetrics: false }), version: 't' });
}

/** sample returns the value of one Prometheus sample line (`name{labels} value`). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /healthz', () => {
  it('reports ok with the engine and key count', async () => {
    await db.set('h', '1');
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', engine: 'cask', keys: db.stats().keys });
  });
});

describe('GET /metrics', () => {
  it('counts requests by route and result and mirrors db.stats()', async () => {
    await app.inject({ method: 'PUT', url: '/v1/kv/m', payload: 'v' });
    for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/v1/kv/m' });
    await app.inject({ method: 'GET', url: '/v1/kv/absent' }); // a miss is a successful command
    await app.inject({ method: 'GET', url: '/v1/kv/a?base64' }); // bad base64: an error
    await app.inject({ method: 'GET', url: '/nowhere' });
    await db.compact();

    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(metrics.contentType);
    const text = res.body;
    expect(sample(text, 'cairn_commands_total{command="kv.get",protocol="http",result="ok"}')).toBe(4);
    expect(sample(text, 'cairn_commands_total{command="kv.get",protocol="http",result="error"}')).toBe(1);
    expect(sample(text, 'cairn_commands_total{command="kv.put",protocol="http",result="ok"}')).toBe(1);
    expect(sample(text, 'cairn_commands_total{command="unknown",protocol="http",result="error"}')).toBe(1);
    expect(sample(text, 'cairn_command_duration_seconds_count{command="kv.get",protocol="http"}')).toBe(5);

    const stats = db.stats();
    expect(sample(text, 'cairn_keys')).toBe(stats.keys);
    expect(sample(text, 'cairn_disk_bytes')).toBe(stats.diskBytes);
    expect(sample(text, 'cairn_live_bytes')).toBe(stats.liveBytes);
    expect(sample(text, 'cairn_writes_total')).toBe(stats.writes);
    expect(sample(text, 'cairn_fsyncs_total')).toBe(stats.fsyncs);
    expect(sample(text, 'cairn_compactions_total')).toBe(stats.compactions);
    expect(stats.compactions).toBeGreaterThan(0);
    // prom-client's process metrics, under our prefix.
    expect(text).toMatch(/^cairn_process_cpu_user_seconds_total /m);

    // INFO (snapshot) and /metrics agree.
    const snap = metrics.snapshot();
    const get = snap.commands.find((c) => c.command === 'kv.get' && c.protocol === 'http');
    expect(get).toMatchObject({ calls: 5, failed: 1 });
    expect(snap.keys).toBe(stats.keys);
  });
});

describe('requests the router refuses', () => {
  it('count under command="unknown" with result error, like requests that match no route', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    const own = createHttpApp({ db, metrics: m, version: 't' });
    try {
      for (let i = 0; i < 3; i++)
        expect((await own.inject({ method: 'GET', url: '/v1/kv/%ff' })).statusCode).toBe(400);
      const long = await own.inject({ method: 'GET', url: `/v1/kv/${'a'.repeat(KEY_PATH_CHARS_MAX + 1)}` });
      expect(long.statusCode).toBe(413);
      await own.inject({ method: 'GET', url: '/nowhere' });
      await expect
        .poll(async () =>
          sample(await m.render(), 'cairn_commands_total{command="unknown",protocol="http",result="error"}'),
        )
        .toBe(5);
    } finally {
      await own.close();
    }
  });
});

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document describing every route', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('9.9.9');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/openapi.json',
        '/v1/batch',
        '/v1/kv',
        '/v1/kv/{key}',
        '/v1/txn',
        '/v1/snapshot',
        '/v1/status',
        '/v1/cluster',
        '/v1/cluster/members',
        '/v1/cluster/members/{name}',
        '/v1/cluster/members/{name}/promote',
        '/v1/cluster/leader',
        '/v1/cluster/check',
        '/v1/cluster/check/{index}',
      ].sort(),
    );
    expect(Object.keys(doc.paths['/v1/kv/{key}'])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    const listParams = doc.paths['/v1/kv'].get.parameters.map((p: { name: string }) => p.name);
    expect(listParams).toEqual(
      expect.arrayContaining(['prefix', 'start', 'end', 'limit', 'reverse', 'cursor', 'base64', 'values']),
    );
    // Every status the routes answer is documented: WRONG_TYPE (409) on a read, LIMIT (413) for a
    // key path over the limit, REQUEST_TIMEOUT (408) for a request that does not arrive.
    expect(Object.keys(doc.paths['/v1/kv/{key}'].get.responses)).toEqual(
      expect.arrayContaining(['200', '400', '404', '408', '409', '413']),
    );
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(
      expect.arrayContaining(['WRONG_TYPE', 'REQUEST_TIMEOUT']),
    );
    // Every $ref resolves.
    for (const [, ref] of JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)) {
      expect(doc.components.schemas[ref as string]).toBeDefined();
    }
  });

  it('documents every route the app serves, with its methods, and nothing it does not serve', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => HTTP_METHODS.has(k))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(servedRoutes(app).sort());
    // The cluster routes' parameters are the ones the routes validate.
    const remove = doc.paths['/v1/cluster/members/{name}']?.delete as { parameters: { name: string }[] };
    expect(remove.parameters.map((p) => p.name)).toEqual(['force']);
    const check = doc.paths['/v1/cluster/check/{index}'] as { parameters: { schema: { pattern: string } }[] };
    expect(check.parameters[0]?.schema.pattern).toBe('^[1-9][0-9]{0,15}$');
    // Each answers the errors it gives: an unknown member is 404, an unknown outcome 504.
    const promote = doc.paths['/v1/cluster/members/{name}/promote']?.post as { responses: object };
    expect(Object.keys(promote.responses)).toEqual(
      expect.arrayContaining(['200', '400', '404', '503', '504']),
    );
  });

  it('answers the cluster routes on a single server as documented: 400 INVALID_ARGUMENT', async () => {
    for (const [method, url, payload] of [
      ['GET', '/v1/cluster/members', undefined],
      ['POST', '/v1/cluster/members', { name: 'n4', peerAddr: '127.0.0.1:7004' }],
      ['POST', '/v1/cluster/members/n2/promote', undefined],
      ['DELETE', '/v1/cluster/members/n2', undefined],
      ['POST', '/v1/cluster/leader', { name: 'n2' }],
      ['POST', '/v1/cluster/check', undefined],
      ['GET', '/v1/cluster/check/7', undefined],
    ] as const) {
      const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    }
    const cluster = await app.inject({ method: 'GET', url: '/v1/cluster' });
    expect(cluster.json()).toEqual({ mode: 'single', members: [] });
  });
});

/** HTTP_METHODS: the keys of an OpenAPI path item that are operations. */
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']);

/**
 * servedRoutes: "METHOD /path" for every route the app serves (from fastify's route tree; HEAD,
 * which fastify adds to every GET, left out), with `:param` written as OpenAPI's `{param}`.
 */
function servedRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (m === null) continue;
    const depth = (m[1] ?? '').length / TREE_INDENT;
    stack.length = depth;
    stack.push(m[2] ?? '');
    const path = stack.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (m[3] ?? '').split(', '))
      if (method !== '' && method !== 'HEAD') out.push(`${method} ${path}`);
  }
  return out;
}

/** TREE_INDENT: characters per level in fastify's printRoutes tree ("│   "). */
const TREE_INDENT = 4;

describe('errors', () => {
  it('answers unknown routes and methods with 404 NOT_FOUND', async () => {
    for (const [method, url] of [
      ['GET', '/nowhere'],
      ['PATCH', '/v1/kv/x'],
      ['GET', '/v1/kv/a/b'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
  });

  it('answers a key path over the router limit with 413 LIMIT, and quotes long URLs shortened', async () => {
    const long = await app.inject({ method: 'GET', url: `/v1/kv/${'a'.repeat(KEY_PATH_CHARS_MAX + 1)}` });
    expect(long.statusCode).toBe(413);
    expect(long.json().error.code).toBe('LIMIT');
    expect(long.json().error.message).toMatch(/KEY_PATH_CHARS_MAX/);
    expect(long.body.length).toBeLessThan(1000);
    // The same answer as a long key that fits the router.
    const key = await app.inject({
      method: 'PUT',
      url: `/v1/kv/${'a'.repeat(KEY_BYTES_MAX + 1)}`,
      payload: 'v',
    });
    expect(key.statusCode).toBe(413);
    expect(key.json().error.code).toBe('LIMIT');
    const badEscape = await app.inject({ method: 'GET', url: `/v1/kv/%ff${'a'.repeat(50_000)}` });
    expect(badEscape.statusCode).toBe(400);
    expect(badEscape.json().error.code).toBe('INVALID_ARGUMENT');
    expect(badEscape.body.length).toBeLessThan(1000);
    const noRoute = await app.inject({ method: 'GET', url: `/v2/${'b'.repeat(50_000)}` });
    expect(noRoute.statusCode).toBe(404);
    expect(noRoute.body.length).toBeLessThan(1000);
  });

  it('refuses bodies over the limit with 413 LIMIT', async () => {
    const small = createHttpApp({
      db,
      metrics: createMetrics(db, { defaultMetrics: false }),
      version: 't',
      bodyLimitBytes: 1024,
    });
    try {
      const put = await small.inject({ method: 'PUT', url: '/v1/kv/big', payload: Buffer.alloc(1025) });
      expect(put.statusCode).toBe(413);
      expect(put.json().error.code).toBe('LIMIT');
      const batch = await small.inject({
        method: 'POST',
        url: '/v1/batch',
        payload: { ops: [{ op: 'set', key: 'big', value: 'x'.repeat(2000) }] },
      });
      expect(batch.statusCode).toBe(413);
      expect(batch.json().error.code).toBe('LIMIT');
      expect(
        (await small.inject({ method: 'PUT', url: '/v1/kv/big', payload: Buffer.alloc(1024) })).statusCode,
      ).toBe(204);
    } finally {
      await small.close();
    }
    expect(BODY_BYTES_MAX_DEFAULT).toBeGreaterThan((64 * 1024 * 1024 * 4) / 3);
  });

  it('maps store errors to statuses with stable codes, and /healthz turns 503 on STORE_FAILED', async () => {
    let failure: CairnError = new LimitError('x');
    let statsFailure: CairnError | undefined;
    // As a store does: once a write path failed (StoreFailedError), it says so until reopened.
    let writeFailure: CairnError | undefined;
    const fail = (): never => {
      if (failure instanceof StoreFailedError) writeFailure = failure;
      throw failure;
    };
    const stub = {
      get: async () => fail(),
      getWithExpiry: async () => fail(),
      get writeFailure() {
        return writeFailure;
      },
      stats: () => {
        if (statsFailure !== undefined) throw statsFailure;
        return STUB_STATS;
      },
    } as unknown as Db;
    const stubApp = appOver(stub);
    try {
      const cases: [CairnError, number][] = [
        [new LimitError('too big'), 413],
        [new ClosedError(), 503],
        [new CorruptionError('bad crc'), 500],
        [new IoError('EIO', new Error('EIO')), 500],
        [new StoreFailedError(new Error('ENOSPC')), 503],
      ];
      for (const [err, status] of cases) {
        failure = err;
        const res = await stubApp.inject({ method: 'GET', url: '/v1/kv/x' });
        expect(res.statusCode, err.code).toBe(status);
        expect(res.json()).toEqual({ error: { code: err.code, message: err.message } });
      }
      failure = new Error('secret internals') as CairnError;
      const internal = await stubApp.inject({ method: 'GET', url: '/v1/kv/x' });
      expect(internal.statusCode).toBe(500);
      expect(internal.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });

      const health = await stubApp.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'unavailable', error: { code: 'STORE_FAILED' } });
    } finally {
      await stubApp.close();
    }
  });

  it('/healthz turns 503 on a store failure no HTTP request has met (a RESP write, the expiry cycle)', async () => {
    let writeFailure: Error | undefined;
    const stub = {
      isClosed: false,
      get writeFailure() {
        return writeFailure;
      },
      stats: () => STUB_STATS,
    } as unknown as Db;
    const stubApp = appOver(stub);
    try {
      expect((await stubApp.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      writeFailure = new StoreFailedError(new Error('EIO'));
      const health = await stubApp.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'unavailable', error: { code: 'STORE_FAILED' } });
    } finally {
      await stubApp.close();
    }
  });

  it('answers 503 CLOSED once the store is closed', async () => {
    const dir = tmpDir('http-closed');
    const closing = await open(dir);
    const m = createMetrics(closing, { defaultMetrics: false });
    const closedApp = createHttpApp({ db: closing, metrics: m, version: 't' });
    try {
      await closing.set('k', 'v');
      await closing.close();
      const get = await closedApp.inject({ method: 'GET', url: '/v1/kv/k' });
      expect(get.statusCode).toBe(503);
      expect(get.json().error.code).toBe('CLOSED');
      const health = await closedApp.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'unavailable', error: { code: 'CLOSED' } });
      // /metrics keeps serving the last numbers it saw.
      const scrape = await closedApp.inject({ method: 'GET', url: '/metrics' });
      expect(scrape.statusCode).toBe(200);
    } finally {
      await closedApp.close();
    }
  });
});

describe('over a real socket', () => {
  it('counts HTTP connections and accepts a maximal key in the path', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    const live = createHttpApp({ db, metrics: m, version: 't' });
    try {
      const address = await live.listen({ host: '127.0.0.1', port: 0 });
      // 64 KiB of 'é' percent-encoded is ~192 KiB of URL: above Node's default header limit.
      const key = '\u00e9'.repeat(KEY_BYTES_MAX / 2);
      const url = `${address}/v1/kv/${encodeURIComponent(key)}`;
      expect((await fetch(url, { method: 'PUT', body: 'long' })).status).toBe(204);
      const get = await fetch(url);
      expect(await get.text()).toBe('long');
      expect(m.snapshot().totalConnections.http).toBeGreaterThanOrEqual(1);
      expect(m.snapshot().connectedClients.http).toBeGreaterThanOrEqual(1);
    } finally {
      await live.close();
    }
    await expect.poll(() => m.snapshot().connectedClients.http).toBe(0);
  });
});
