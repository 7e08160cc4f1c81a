// `cairn check hash` over HTTP (docs/cluster-ops.md): compare the members' state at one index.
//
//   POST /v1/cluster/check           the leader appends a check entry; 200 {index} once it is
//                                    applied there (proxied to the leader like membership changes)
//   GET  /v1/cluster/check/:index    this member's digest at that entry: 200 {index, digest, keys},
//                                    after waiting up to the request timeout for it to be applied;
//                                    never proxied (each member answers for itself)
//
// A member that applied past the index without digesting it (it installed a snapshot, or it was
// restarted) answers 400 INVALID_ARGUMENT; one that does not get there in time 504 UNCERTAIN.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ClusterMember } from '../../replica/member.js';
import { HttpError } from './errors.js';

/** INDEX_PARAMS: a log index in the path (digits; the API does not coerce types). */
export const INDEX_PARAMS = {
  type: 'object',
  required: ['index'],
  properties: { index: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } },
} as const;

export function checkRoutes(member: ClusterMember | undefined): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post('/v1/cluster/check', { config: { command: 'check.hash' } }, async () => {
      const m = requireMember(member);
      return { index: await m.replica.proposeCheck() };
    });
    app.get<{ Params: { index: string } }>(
      '/v1/cluster/check/:index',
      { config: { command: 'check.hash' }, schema: { params: INDEX_PARAMS } },
      async (request) => {
        const m = requireMember(member);
        const d = await m.replica.stateDigest(Number(request.params.index), m.requestTimeoutMs);
        return { name: m.identity.name, index: d.index, digest: d.digest, keys: d.keys };
      },
    );
  };
}

function requireMember(member: ClusterMember | undefined): ClusterMember {
  if (member === undefined) throw new HttpError('INVALID_ARGUMENT', 'this server is not a cluster member');
  return member;
}
