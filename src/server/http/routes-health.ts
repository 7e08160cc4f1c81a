// GET /healthz: whether this server can serve the store. 200 while the store is open, db.stats()
// answers and no request has seen the store fail; 503 once it is closed or its write path has failed (it then
// stays failed until the store is reopened, so a load balancer should stop sending writes).
// On a cluster member also 503 while it knows no leader (it cannot serve a linearizable request),
// while it repairs a damaged engine from the leader (it serves no read until then) and once it
// was removed from the cluster.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { NONE } from '../../raft/index.js';
import type { ClusterMember } from '../../replica/member.js';
import { ClosedError } from '../../storage/errors.js';
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

export function healthRoutes(db: Db, health: StoreHealth, member?: ClusterMember): FastifyPluginAsync {
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
        const clusterProblem =
          member === undefined
            ? undefined
            : member.removed
              ? 'this member was removed from the cluster'
              : member.replica.leader === NONE
                ? 'this member has no leader'
                : member.replica.repairing
                  ? 'this member is repairing its engine from the leader'
                  : undefined;
        if (clusterProblem !== undefined) {
          return reply
            .code(503)
            .send({ status: 'unavailable', error: { code: 'CLUSTER_DOWN', message: clusterProblem } });
        }
        try {
          // stats() answers after close too (the last numbers): a closed store is asked first.
          if (db.isClosed) throw new ClosedError();
          const stats = db.stats();
          return { status: 'ok', engine: stats.engine, keys: stats.keys };
        } catch (err) {
          return reply.code(503).send({ status: 'unavailable', error: mapError(err).body.error });
        }
      },
    );
  };
}
