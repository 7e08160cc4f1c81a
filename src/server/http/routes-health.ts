// GET /healthz: whether this server can serve the store. 200 while db.stats() answers and no
// request has seen the store fail; 503 once it is closed or its write path has failed (it then
// stays failed until the store is reopened, so a load balancer should stop sending writes).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { type ErrorBody, mapError } from './errors.js';
import { HEALTH_RESPONSE_SCHEMA } from './schemas.js';

/** StoreHealth remembers a store failure seen by any request (Db has no failed-state accessor). */
export class StoreHealth {
  failure: ErrorBody['error'] | undefined;

  /** note records a request's error if it means the store stopped serving writes. */
  note(error: ErrorBody['error']): void {
    if (error.code === 'STORE_FAILED') this.failure ??= error;
  }
}

export function healthRoutes(db: Db, health: StoreHealth): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/healthz',
      {
        config: { command: 'healthz' },
        schema: {
          response: { 200: HEALTH_RESPONSE_SCHEMA, 503: HEALTH_RESPONSE_SCHEMA },
        },
      },
      async (_request, reply) => {
        if (health.failure !== undefined) {
          return reply.code(503).send({ status: 'unavailable', error: health.failure });
        }
        try {
          const stats = db.stats();
          return { status: 'ok', engine: stats.engine, keys: stats.keys };
        } catch (err) {
          return reply.code(503).send({ status: 'unavailable', error: mapError(err).body.error });
        }
      },
    );
  };
}
