// GET /openapi.json: an OpenAPI 3.1 document of the API, assembled from the same JSON schemas
// the routes validate with (schemas.ts), so it describes what the server actually enforces.

import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { clusterPaths } from './openapi-cluster.js';
import { errors, type JsonObject, json, parameters } from './openapi-parts.js';
import { STATUS_SCHEMA } from './routes-members.js';
import {
  BATCH_BODY_SCHEMA,
  BATCH_RESPONSE_SCHEMA,
  ERROR_SCHEMA,
  HEALTH_RESPONSE_SCHEMA,
  KEY_PARAMS_SCHEMA,
  KV_JSON_SCHEMA,
  KV_PUT_JSON_SCHEMA,
  KV_PUT_QUERY_SCHEMA,
  KV_QUERY_SCHEMA,
  LIST_QUERY_SCHEMA,
  LIST_RESPONSE_SCHEMA,
  TXN_BODY_SCHEMA,
  TXN_RESPONSE_SCHEMA,
} from './schemas.js';

/** openApiDocument returns the OpenAPI 3.1 document for a server of this version. */
export function openApiDocument(version: string): JsonObject {
  const keyParams = [...parameters(KEY_PARAMS_SCHEMA, 'path'), ...parameters(KV_QUERY_SCHEMA, 'query')];
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cairn HTTP API',
      version,
      description: 'Keys and values are bytes. See docs/http.md for encodings, limits and errors.',
    },
    paths: {
      '/v1/kv/{key}': {
        parameters: keyParams,
        get: {
          operationId: 'getKey',
          summary: 'Read one key',

          responses: {
            200: {
              description:
                'The value: raw bytes (with a Cairn-Expires-At header, ms since the epoch, when the key expires), or JSON {key, value, expiresAt?} in base64 with ?base64',
              headers: {
                'Cairn-Expires-At': {
                  description: 'When the key expires, in ms since the Unix epoch; absent when it never does.',
                  schema: { type: 'integer' },
                },
              },
              content: {
                'application/octet-stream': {
                  schema: { type: 'string', contentMediaType: 'application/octet-stream' },
                },
                ...json(KV_JSON_SCHEMA),
              },
            },
            ...errors(400, 404, 408, 409, 413, 500, 503),
          },
        },
        put: {
          operationId: 'putKey',
          summary: 'Write one key',
          parameters: parameters(KV_PUT_QUERY_SCHEMA, 'query').filter((p) => p.name === 'ttlMs'),

          requestBody: {
            description: 'The value as raw bytes (any content type), or JSON {value} in base64 with ?base64',
            content: {
              '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
              ...json(KV_PUT_JSON_SCHEMA),
            },
          },
          responses: { 204: { description: 'Stored durably' }, ...errors(400, 408, 413, 500, 503) },
        },
        delete: {
          operationId: 'deleteKey',
          summary: 'Delete one key',

          responses: { 204: { description: 'Deleted durably' }, ...errors(400, 404, 408, 413, 500, 503) },
        },
      },
      '/v1/kv': {
        get: {
          operationId: 'listKeys',
          summary: 'List keys and values in key order, one page at a time',

          parameters: parameters(LIST_QUERY_SCHEMA, 'query'),
          responses: {
            200: {
              description: 'A page (keys holding a hash, written over RESP, are skipped)',
              content: json(LIST_RESPONSE_SCHEMA),
            },
            ...errors(400, 408, 500, 503),
          },
        },
      },
      '/v1/batch': {
        post: {
          operationId: 'batch',
          summary: 'Apply sets and deletes atomically',

          requestBody: { required: true, content: json(BATCH_BODY_SCHEMA) },
          responses: {
            200: { description: 'Every operation applied, durably', content: json(BATCH_RESPONSE_SCHEMA) },
            ...errors(400, 408, 413, 415, 500, 503),
          },
        },
      },
      '/v1/txn': {
        post: {
          operationId: 'txn',
          summary: 'Run a compare-and-swap or a one-shot transaction atomically',

          requestBody: { required: true, content: json(TXN_BODY_SCHEMA) },
          responses: {
            200: { description: 'Committed, durably', content: json(TXN_RESPONSE_SCHEMA) },
            ...errors(400, 408, 409, 413, 415, 500, 503),
          },
        },
      },
      '/v1/snapshot': {
        get: {
          operationId: 'snapshot',
          summary: 'Stream a consistent snapshot of the store (docs/backup.md)',
          responses: {
            200: {
              description: 'A snapshot archive',
              headers: {
                'x-cairn-snapshot-keys': { description: 'Keys in the archive.', schema: { type: 'integer' } },
                'x-cairn-snapshot-last-ts': {
                  description: 'The commit timestamp the archive is consistent at.',
                  schema: { type: 'integer' },
                },
              },
              content: {
                'application/vnd.cairn.snapshot': {
                  schema: { type: 'string', contentMediaType: 'application/vnd.cairn.snapshot' },
                },
              },
            },
            ...errors(400, 500, 503),
          },
        },
      },
      '/v1/status': {
        get: {
          operationId: 'status',
          summary: 'This server; on a cluster member its Raft state (docs/cluster-ops.md)',
          responses: { 200: { description: 'The status', content: json(STATUS_SCHEMA) } },
        },
      },
      ...clusterPaths(),
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Liveness and readiness',

          responses: {
            200: { description: 'Serving', content: json(HEALTH_RESPONSE_SCHEMA) },
            503: { description: 'Closed or failed', content: json(HEALTH_RESPONSE_SCHEMA) },
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics',

          responses: {
            200: {
              description: 'Prometheus text exposition format 0.0.4',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',

          responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
        },
      },
    },
    components: { schemas: { Error: ERROR_SCHEMA } },
  };
}

export function openApiRoutes(version: string): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // Built once: the document depends only on the version.
    const document = JSON.stringify(openApiDocument(version));
    app.get('/openapi.json', { config: { command: 'openapi' } }, async (_request, reply) =>
      reply.type('application/json; charset=utf-8').send(document),
    );
  };
}
