// POST /v1/batch: several sets (each with an optional ttlMs) and deletes applied atomically
// (all or none) by Db.batch.
// JSON only: the plugin scope drops fastify's text/plain parser so other bodies get 415.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db, DbBatchOp } from '../../db/db.js';
import { decodeBase64 } from './encoding.js';
import { BATCH_BODY_SCHEMA, BATCH_RESPONSE_SCHEMA } from './schemas.js';

interface BatchBody {
  ops: { op: 'set' | 'delete'; key: string; value?: string; ttlMs?: number }[];
  base64?: boolean;
}

export function batchRoutes(db: Db): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.removeContentTypeParser('text/plain');

    app.post<{ Body: BatchBody }>(
      '/v1/batch',
      {
        config: { command: 'batch' },
        schema: {
          body: BATCH_BODY_SCHEMA,
          response: { 200: BATCH_RESPONSE_SCHEMA },
        },
      },
      async (request) => {
        const { ops, base64 = false } = request.body;
        const bytes = (text: string, i: number, what: string): Buffer | string =>
          base64 ? decodeBase64(text, `ops[${i}].${what}`) : text;
        // Decode everything first: a bad operation anywhere rejects the batch before it starts.
        const converted = ops.map((op, i): DbBatchOp => {
          const key = bytes(op.key, i, 'key');
          // The schema guarantees a set has a value.
          return op.op === 'set'
            ? { type: 'set', key, value: bytes(op.value ?? '', i, 'value'), ttlMs: op.ttlMs }
            : { type: 'delete', key };
        });
        await db.batch(converted);
        return { applied: converted.length };
      },
    );
  };
}
