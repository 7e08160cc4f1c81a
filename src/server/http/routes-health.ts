// GET /healthz: whether this server can serve the store. 200 while the store is open, db.stats()
// answers and its write path has not failed (db.writeFailure, whichever protocol's write met
// it); 503 once it is closed or its write path has failed (it then
// stays failed until the store is reopened, so a load balancer should stop sending writes).
// On a cluster member also 503 while it knows no leader, while it repairs a damaged engine from
// the leader (it serves no read until then), once it was removed from the cluster, and whenever
// it cannot serve a linearizable read now: as etcd's health check reads through Raft, /healthz
// confirms a read (Replica.confirmRead: a ReadIndex round confirmed by a quorum through the
// leader, then this member's apply reaching that index) within HEALTH_READ_TIMEOUT_MS. Knowing
// a leader is not enough: a member cut off from it remembers it until its election timeout (a
// learner, which never campaigns, forever), and a member whose apply is stuck or far behind
// knows it too. The round costs heartbeats only (no log write) and is shared with the reads of
// the same turn, so a load balancer may poll it.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { NONE } from '../../raft/index.js';
import { ReadUnconfirmedError } from '../../replica/errors.js';
import type { ClusterMember } from '../../replica/member.js';
import { ClosedError } from '../../storage/errors.js';
import { mapError } from './errors.js';
import { HEALTH_RESPONSE_SCHEMA } from './schemas.js';

/**
 * HEALTH_READ_TIMEOUT_MS: how long a member's /healthz waits for its read to be confirmed and
 * applied. A healthy round takes a heartbeat's round trip (milliseconds); a second is ten
 * heartbeat intervals, below the election timeout, and well under the `cairn endpoint health`
 * and load balancer timeouts (5 s by default), so an unhealthy member answers 503 itself
 * rather than leaving its caller to time out.
 */
export const HEALTH_READ_TIMEOUT_MS = 1_000;

export function healthRoutes(db: Db, member?: ClusterMember): FastifyPluginAsync {
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
        // The store's own record of a failed write path, whichever protocol's write met it.
        const failed = db.writeFailure;
        if (failed !== undefined)
          return reply.code(503).send({ status: 'unavailable', error: mapError(failed).body.error });
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
          if (member === undefined) return { status: 'ok', engine: stats.engine, keys: stats.keys };
          const read = await member.replica.confirmRead(HEALTH_READ_TIMEOUT_MS);
          return { status: 'ok', engine: stats.engine, keys: stats.keys, ...read };
        } catch (err) {
          const body = { status: 'unavailable', error: mapError(err).body.error };
          if (!(err instanceof ReadUnconfirmedError)) return reply.code(503).send(body);
          return reply.code(503).send({
            ...body,
            ...(err.readIndex === undefined ? {} : { readIndex: err.readIndex }),
            applied: err.applied,
          });
        }
      },
    );
  };
}
