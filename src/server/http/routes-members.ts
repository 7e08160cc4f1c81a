// Cluster administration over HTTP (docs/cluster-ops.md; the `cairn member`, `endpoint` and
// `move-leader` commands use it):
//
//   GET    /v1/cluster/members                  the members (linearizable: after a ReadIndex round;
//                                               ?consistency=serializable answers from this member)
//   POST   /v1/cluster/members {name, peerAddr} adds a learner                          201
//   POST   /v1/cluster/members/:name/promote    makes a caught-up learner a voter
//   DELETE /v1/cluster/members/:name[?force=true] removes a member
//   POST   /v1/cluster/leader {name}            moves the leadership
//   GET    /v1/status                           this member: identity, Raft indexes, data size
//
// Writes run on the leader (cluster.ts proxies them there). A change the strict checks refuse
// answers 400 INVALID_ARGUMENT with the reason; an unknown member 404 NOT_FOUND; no leader 503
// CLUSTER_DOWN; an unknown outcome 504 UNCERTAIN.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { NONE } from '../../raft/index.js';
import { applyLagError } from '../../replica/apply-lag.js';
import { MembershipRefusedError } from '../../replica/errors.js';
import type { ClusterMember, MemberView } from '../../replica/member.js';
import { ClosedError } from '../../storage/errors.js';
import { consistency, proxy } from './cluster.js';
import { HttpError, invalidArgument } from './errors.js';

/** NAME_BODY, ADD_BODY, NAME_PARAMS, FORCE_QUERY: what the routes validate (and openapi-cluster.ts documents). */
export const NAME_BODY = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1 } },
} as const;

export const ADD_BODY = {
  type: 'object',
  required: ['name', 'peerAddr'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1 }, peerAddr: { type: 'string', minLength: 1 } },
} as const;

export const NAME_PARAMS = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1 } },
} as const;

export const FORCE_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'string', enum: ['true', 'false'] } },
} as const;

/** MemberJson: one member in the API's answers. */
export interface MemberJson {
  readonly name: string;
  /** id: the Raft member id in hex (as etcd prints member ids). */
  readonly id: string;
  readonly peerAddr: string;
  readonly resp: string;
  readonly http: string;
  readonly role: string;
  readonly isLeader: boolean;
  /** matchIndex: how far its log matches the leader's; null unless the answering member leads. */
  readonly matchIndex: number | null;
  /** started: recorded as having started (docs/cluster.md, "A member that lost its directory"). */
  readonly started: boolean;
}

export function memberRoutes(db: Db, member: ClusterMember | undefined, version: string): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/v1/status',
      { config: { command: 'status' }, schema: { response: { 200: STATUS_SCHEMA } } },
      () => statusOf(db, member, version),
    );

    app.get('/v1/cluster/members', { config: { command: 'member.list' } }, async (request) => {
      const m = requireCluster(member);
      if (consistency(request) === 'linearizable') await m.replica.linearizable();
      return { members: membersJson(m) };
    });

    app.post(
      '/v1/cluster/members',
      { config: { command: 'member.add' }, schema: { body: ADD_BODY } },
      async (request, reply) => {
        const m = requireCluster(member);
        const body = request.body as { name: string; peerAddr: string };
        const record = await named(() => m.addLearner(body.name, body.peerAddr));
        const all = m
          .members()
          .filter((x) => x.name !== '')
          .map((x) => `${x.name}=${x.peerAddr}`);
        return reply.code(201).send({
          member: {
            name: record.name,
            id: record.id.toString(16),
            peerAddr: record.peerAddr,
            role: 'learner',
          },
          // What the new member is started with (etcd's member add prints the same). The token
          // too: a member with another one is refused by every peer (it is no secret: it
          // travels in the clear, docs/peer-protocol.md).
          initialCluster: all.join(','),
          initialClusterState: 'existing',
          clusterToken: m.identity.clusterToken,
        });
      },
    );

    app.post(
      '/v1/cluster/members/:name/promote',
      { config: { command: 'member.promote' }, schema: { params: NAME_PARAMS } },
      async (request) => {
        const m = requireCluster(member);
        const { name } = request.params as { name: string };
        await named(() => m.promote(name));
        const promoted = m.memberByName(name);
        return { member: promoted === undefined ? null : memberJson(m, promoted) };
      },
    );

    app.delete(
      '/v1/cluster/members/:name',
      { config: { command: 'member.remove' }, schema: { params: NAME_PARAMS, querystring: FORCE_QUERY } },
      async (request, reply) => {
        const m = requireCluster(member);
        const { name } = request.params as { name: string };
        const force = (request.query as { force?: string }).force === 'true';
        const moved = await named(() => m.remove(name, force));
        if (moved !== undefined) {
          // This member led and was the one to remove: leadership moved first; the new leader
          // makes the change.
          const addr = await m.leaderAddress('http');
          if (addr === undefined) throw new HttpError('CLUSTER_DOWN', 'leadership came back here; retry');
          await proxy(request, reply, addr, m.requestTimeoutMs);
          return reply;
        }
        return { removed: name };
      },
    );

    app.post(
      '/v1/cluster/leader',
      { config: { command: 'move-leader' }, schema: { body: NAME_BODY } },
      async (request) => {
        const m = requireCluster(member);
        const { name } = request.body as { name: string };
        await named(() => m.moveLeader(name));
        return { leader: name };
      },
    );
  };
}

function requireCluster(member: ClusterMember | undefined): ClusterMember {
  if (member === undefined) throw invalidArgument('this server is not a cluster member');
  return member;
}

/** named runs a membership operation, answering 404 for an unknown member. */
async function named<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof MembershipRefusedError && err.kind === 'not-found')
      throw new HttpError('NOT_FOUND', err.message);
    throw err;
  }
}

function membersJson(member: ClusterMember): MemberJson[] {
  return member.members().map((m) => memberJson(member, m));
}

function memberJson(member: ClusterMember, m: MemberView): MemberJson {
  const st = member.replica.status();
  return {
    name: m.name,
    id: m.id.toString(16),
    peerAddr: m.peerAddr,
    resp: m.resp,
    http: m.http,
    role: m.role,
    isLeader: m.id === st.leader,
    matchIndex: st.progress.get(m.id)?.match ?? null,
    started: m.started,
  };
}

/**
 * STATUS_SCHEMA: GET /v1/status's answer (its response schema, and the OpenAPI document's): the
 * store's numbers always, a cluster member's identity and Raft state besides.
 */
export const STATUS_SCHEMA = {
  type: 'object',
  required: ['mode', 'version', 'dataSize', 'liveSize', 'keys', 'errors'],
  properties: {
    mode: { type: 'string', enum: ['single', 'cluster'] },
    version: { type: 'string', description: 'Cairn’s version' },
    dataSize: {
      type: ['integer', 'null'],
      description: 'Bytes of the store’s files (null: the store failed)',
    },
    liveSize: { type: ['integer', 'null'], description: 'Bytes of live keys and values' },
    keys: { type: ['integer', 'null'] },
    name: { type: 'string', description: 'A cluster member’s name' },
    id: { type: 'string', description: 'Its member id, in hex' },
    leader: {
      type: ['string', 'null'],
      description: 'The leader’s name (its hex id when unknown); null: no leader',
    },
    isLeader: { type: 'boolean' },
    raftState: { type: 'string', description: 'leader, follower, candidate or precandidate' },
    isLearner: { type: 'boolean' },
    term: { type: 'integer' },
    commit: { type: 'integer', description: 'Raft commit index' },
    applied: { type: 'integer', description: 'Raft applied index' },
    lastIndex: { type: 'integer', description: 'Last index in this member’s log' },
    errors: {
      type: 'array',
      items: { type: 'string' },
      description:
        'What is wrong (no leader, removed, apply far behind, the store failed); empty when healthy',
    },
  },
  additionalProperties: false,
} as const;

/** statusOf: GET /v1/status (etcdctl's endpoint status: one member's view of itself). */
function statusOf(db: Db, member: ClusterMember | undefined, version: string): object {
  const errors: string[] = [];
  let stats: { keys: number; diskBytes: number; liveBytes: number } | undefined;
  try {
    if (db.isClosed) throw new ClosedError();
    stats = db.stats();
  } catch (err) {
    errors.push(`store: ${(err as Error).message}`);
  }
  const data = {
    version,
    dataSize: stats?.diskBytes ?? null,
    liveSize: stats?.liveBytes ?? null,
    keys: stats?.keys ?? null,
  };
  if (member === undefined) return { mode: 'single', ...data, errors };
  const st = member.replica.status();
  if (st.leader === NONE) errors.push('no leader');
  if (member.removed) errors.push('this member was removed from the cluster');
  const lagging = applyLagError(st.commit - st.applied, `its commit index ${st.commit}`);
  if (lagging !== undefined) errors.push(lagging);
  return {
    mode: 'cluster',
    name: member.identity.name,
    id: member.identity.id.toString(16),
    ...data,
    leader: st.leader === NONE ? null : (member.member(st.leader)?.name ?? st.leader.toString(16)),
    isLeader: st.role === 'leader',
    raftState: st.role,
    isLearner: st.learners.includes(member.identity.id),
    term: st.term,
    commit: st.commit,
    applied: st.applied,
    lastIndex: st.lastIndex,
    errors,
  };
}
