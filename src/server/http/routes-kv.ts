// GET/HEAD/PUT/DELETE /v1/kv/:key: one key, raw bytes in and out (or JSON with ?base64).
// These routes live in their own plugin scope whose only body parser reads every content type
// as raw bytes: a value is whatever the client sent, even when it says application/json.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { decodeBase64, encodeBase64, parseFlag } from './encoding.js';
import { HttpError, invalidArgument } from './errors.js';
import { KEY_PARAMS_SCHEMA, KV_PUT_QUERY_SCHEMA, KV_QUERY_SCHEMA } from './schemas.js';

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

/** valueOfJson reads a `PUT ?base64` body: JSON `{ "value": "<base64>" }`. */
function valueOfJson(body: Buffer | undefined): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    throw invalidArgument('with ?base64 the body must be JSON {"value": "<base64>"}');
  }
  const value = (parsed as { value?: unknown } | null)?.value;
  if (typeof value !== 'string')
    throw invalidArgument('with ?base64 the body must be JSON {"value": "<base64>"}');
  return decodeBase64(value, 'value');
}

export function kvRoutes(db: Db): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.removeAllContentTypeParsers();
    // The body is a Buffer of its own: fastify concatenates the request's chunks into a new one.
    // The store copies what it keeps anyway (the write pipeline), so nothing here depends on that.
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
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
