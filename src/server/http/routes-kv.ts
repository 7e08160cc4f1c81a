// GET/HEAD/PUT/DELETE /v1/kv/:key: one key, raw bytes in and out (or JSON with ?base64).
// These routes live in their own plugin scope whose only body parser reads every content type
// as raw bytes: a value is whatever the client sent, even when it says application/json.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { decodeBase64, encodeBase64, parseFlag } from './encoding.js';
import { HttpError, invalidArgument } from './errors.js';
import { KEY_PARAMS_SCHEMA, KV_PUT_QUERY_SCHEMA, KV_QUERY_SCHEMA, LIST_QUERY_SCHEMA } from './schemas.js';

interface KvRoute {
  Params: { key: string };
  Querystring: { base64?: string };
}

/** EXPIRES_AT_HEADER: carries a key's expiry (ms since the epoch) on a raw GET. */
const EXPIRES_AT_HEADER = 'cairn-expires-at';

/** ttlMsOf reads PUT's ?ttlMs (the schema admits only positive digit strings). */
function ttlMsOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ttlMs = Number(text);
  if (!Number.isSafeInteger(ttlMs)) throw invalidArgument('ttlMs must be a positive integer below 2^53');
  return ttlMs;
}

/** keyOf returns the key a path names: its UTF-8 bytes, or the decoded base64url with ?base64. */
function keyOf(param: string, base64: boolean): Buffer {
  return base64 ? decodeBase64(param, 'key') : Buffer.from(param, 'utf8');
}

function keyNotFound(): HttpError {
  return new HttpError('KEY_NOT_FOUND', 'Key not found');
}

/** valueOfJson reads a `PUT ?base64` body: JSON `{ "value": "<base64>" }`, and nothing else. */
function valueOfJson(body: Buffer | undefined): Buffer {
  const shape = 'with ?base64 the body must be JSON {"value": "<base64>"}';
  let parsed: unknown;
  try {
    parsed = JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    throw invalidArgument(shape);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument(shape);
  // Closed like every other JSON body: `"ttlMs"` here would otherwise be dropped (it is a query
  // parameter), storing a key that never expires.
  const unknown = Object.keys(parsed).filter((field) => field !== 'value');
  if (unknown.length > 0)
    throw invalidArgument(`${shape}; unknown field ${unknown.map((f) => JSON.stringify(f)).join(', ')}`);
  const value = (parsed as { value?: unknown }).value;
  if (typeof value !== 'string') throw invalidArgument(shape);
  return decodeBase64(value, 'value');
}

/** LISTING_PARAMS: the query parameters of GET /v1/kv that the one-key routes do not take. */
const LISTING_PARAMS = Object.keys(LIST_QUERY_SCHEMA.properties).filter(
  (name) => !(name in KV_PUT_QUERY_SCHEMA.properties),
);

/** OCTET_STREAM: the type the one-key routes read every body as. */
const OCTET_STREAM = 'application/octet-stream';

export function kvRoutes(db: Db): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.removeAllContentTypeParsers();
    // The body is a Buffer of its own: fastify concatenates the request's chunks into a new one.
    // The store copies what it keeps anyway (the write pipeline), so nothing here depends on that.
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });
    // The body is the value whatever its Content-Type (docs/http.md), a malformed one included:
    // fastify refuses a type it cannot parse (`;;;`, `/`) with 415 before any parser runs, so
    // these routes, which never read the type, present every body as bytes.
    app.addHook('onRequest', async (request) => {
      if (request.headers['content-type'] !== undefined) request.headers['content-type'] = OCTET_STREAM;
    });

    // `GET /v1/kv/?prefix=a` (a stray slash) names the empty key: said plainly, rather than as an
    // unknown parameter, since the caller meant a listing. Before the query schema's own check.
    app.addHook('preValidation', async (request) => {
      const query = request.query as Record<string, unknown>;
      const listing = LISTING_PARAMS.find((name) => name in query);
      if (listing !== undefined)
        throw invalidArgument(
          `${listing} is a listing parameter: list with GET /v1/kv (no trailing slash); /v1/kv/{key} names one key`,
        );
    });

    app.get<KvRoute>(
      '/v1/kv/:key',
      {
        config: { command: 'kv.get' },
        schema: {
          params: KEY_PARAMS_SCHEMA,
          querystring: KV_QUERY_SCHEMA,
        },
      },
      async (request, reply) => {
        const base64 = parseFlag(request.query.base64, 'base64');
        const key = keyOf(request.params.key, base64);
        // Value and expiry in one consistent read.
        const stored = await db.getWithExpiry(key);
        if (stored === undefined) throw keyNotFound();
        const { value, expiresAt } = stored;
        if (base64)
          return reply.type('application/json; charset=utf-8').send({
            key: encodeBase64(key),
            value: encodeBase64(value),
            ...(expiresAt === undefined ? {} : { expiresAt }),
          });
        if (expiresAt !== undefined) reply.header(EXPIRES_AT_HEADER, String(expiresAt));
        return reply
          .type('application/octet-stream')
          .send(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      },
    );

    app.put<KvRoute & { Querystring: { ttlMs?: string }; Body: Buffer | undefined }>(
      '/v1/kv/:key',
      {
        config: { command: 'kv.put' },
        schema: { params: KEY_PARAMS_SCHEMA, querystring: KV_PUT_QUERY_SCHEMA },
      },
      async (request, reply) => {
        const base64 = parseFlag(request.query.base64, 'base64');
        const key = keyOf(request.params.key, base64);
        // No body at all is the empty value (like `SET k ""`).
        const value = base64 ? valueOfJson(request.body) : (request.body ?? Buffer.alloc(0));
        const ttlMs = ttlMsOf(request.query.ttlMs);
        await db.set(key, value, ttlMs === undefined ? undefined : { ttlMs });
        return reply.code(204).send();
      },
    );

    app.delete<KvRoute>(
      '/v1/kv/:key',
      {
        config: { command: 'kv.delete' },
        schema: { params: KEY_PARAMS_SCHEMA, querystring: KV_QUERY_SCHEMA },
      },
      async (request, reply) => {
        const base64 = parseFlag(request.query.base64, 'base64');
        const existed = await db.delete(keyOf(request.params.key, base64));
        if (!existed) throw keyNotFound();
        return reply.code(204).send();
      },
    );
  };
}
