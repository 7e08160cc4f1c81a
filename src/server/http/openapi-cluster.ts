// The cluster routes of the OpenAPI document (openapi.ts): /v1/cluster and its administration
// routes (routes-members.ts, routes-check.ts, cluster.ts), with the parameter and body schemas the
// routes validate with and the answers and error codes they give (docs/cluster-ops.md, "HTTP
// API"). A single server serves them too: the administration routes then answer 400.
import { type JsonObject, json, parameters, describedErrors as withErrors } from './openapi-parts.js';
import { INDEX_PARAMS } from './routes-check.js';
import { ADD_BODY, FORCE_QUERY, NAME_BODY, NAME_PARAMS } from './routes-members.js';

/** MEMBER_SCHEMA: one member in the answers (routes-members.ts, MemberJson). */
const MEMBER_SCHEMA = {
  type: 'object',
  required: ['name', 'id', 'peerAddr', 'resp', 'http', 'role', 'isLeader', 'matchIndex', 'started'],
  properties: {
    name: { type: 'string', description: '"" for a member whose record this member has not learned' },
    id: { type: 'string', description: 'The Raft member id, in hex' },
    peerAddr: { type: 'string' },
    resp: { type: 'string', description: 'Its RESP address, once it told it; "" when unknown' },
    http: { type: 'string', description: 'Its HTTP address, once it told it; "" when unknown' },
    role: { type: 'string', enum: ['voter', 'learner', 'unknown'] },
    isLeader: { type: 'boolean' },
    matchIndex: {
      type: ['integer', 'null'],
      description: 'How far its log matches the leader’s; null unless the answering member leads',
    },
    started: { type: 'boolean', description: 'Recorded as having started (docs/cluster.md)' },
  },
} as const;

/** NOT_A_MEMBER: the 400 every administration route gives on a single server. */
const NOT_A_MEMBER = 'a single server (this server is not a cluster member)';

/** CHANGE_ERRORS: what a membership or leadership change answers besides its own 400s. */
const CHANGE_ERRORS = {
  503: 'CLUSTER_DOWN: no leader within the request timeout, the leader changed, this member was removed, or another membership change is still being applied; nothing changed, retry',
  504: 'UNCERTAIN: the change was proposed (or sent to the leader) but its outcome is not known within the request timeout; look at GET /v1/cluster/members before retrying',
} as const;

/** BODY_ERRORS: what a route with a JSON body answers for the body itself. */
const BODY_ERRORS = {
  408: 'REQUEST_TIMEOUT: the request did not arrive whole in time; the connection is closed',
  413: 'LIMIT: the body is over the limit',
  415: 'UNSUPPORTED_MEDIA_TYPE: the body is not application/json',
} as const;

/** clusterPaths: the OpenAPI path items of the cluster routes. */
export function clusterPaths(): JsonObject {
  return {
    '/v1/cluster': {
      get: {
        operationId: 'cluster',
        summary:
          "The cluster's members and leader as this member sees them ({mode: 'single', members: []} on a single server); a follower asks the leader for the members' matchIndex and lag (within 1 s; null without an answer) unless consistency=serializable",
        responses: {
          200: {
            description: 'The cluster',
            content: json({
              type: 'object',
              required: ['mode', 'members'],
              properties: {
                mode: { type: 'string', enum: ['cluster', 'single'] },
                self: { type: 'string' },
                clusterToken: { type: 'string' },
                leader: { type: ['string', 'null'] },
                term: { type: 'integer' },
                commitIndex: { type: 'integer' },
                appliedIndex: { type: 'integer' },
                lastIndex: { type: 'integer' },
                members: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      ...MEMBER_SCHEMA.properties,
                      lag: {
                        type: ['integer', 'null'],
                        description:
                          'Entries behind the leader’s last index, from the leader; null when no leader answered (or consistency=serializable on a follower)',
                      },
                      roundTripMs: {
                        type: ['number', 'null'],
                        description:
                          'This member’s last probe round trip to the member, in ms (docs/peer-protocol.md, "Probes"); null for itself or before the first',
                      },
                    },
                  },
                },
              },
            }),
          },
        },
      },
    },
    '/v1/cluster/members': {
      get: {
        operationId: 'listMembers',
        summary: 'The members of the Raft configuration (linearizable: after a ReadIndex round)',
        parameters: [
          {
            name: 'consistency',
            in: 'query',
            required: false,
            description: 'serializable: answered from this member’s state, without the ReadIndex round',
            schema: { type: 'string', enum: ['linearizable', 'serializable'] },
          },
        ],
        responses: {
          200: {
            description: 'The members',
            content: json({
              type: 'object',
              required: ['members'],
              properties: { members: { type: 'array', items: MEMBER_SCHEMA } },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: ${NOT_A_MEMBER}, or a consistency other than linearizable or serializable`,
            503: 'CLUSTER_DOWN: the read could not be confirmed by a majority within the request timeout',
          }),
        },
      },
      post: {
        operationId: 'addMember',
        summary: 'Add a member as a learner (run on the leader; proxied there)',
        requestBody: { required: true, content: json(ADD_BODY) },
        responses: {
          201: {
            description:
              'Added (applied on the leader); start the new member with these flags and --initial-cluster-state existing',
            content: json({
              type: 'object',
              required: ['member', 'initialCluster', 'initialClusterState', 'clusterToken'],
              properties: {
                member: {
                  type: 'object',
                  required: ['name', 'id', 'peerAddr', 'role'],
                  properties: {
                    name: { type: 'string' },
                    id: { type: 'string' },
                    peerAddr: { type: 'string' },
                    role: { type: 'string', const: 'learner' },
                  },
                },
                initialCluster: { type: 'string', description: 'NAME=HOST:PORT,... of every member' },
                initialClusterState: { type: 'string', const: 'existing' },
                clusterToken: { type: 'string' },
              },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: a bad body, name or peer address; a change the strict checks refuse (the name, address or id in use, the name of a removed member, a learner already there, 15 members); ${NOT_A_MEMBER}`,
            ...BODY_ERRORS,
            ...CHANGE_ERRORS,
          }),
        },
      },
    },
    '/v1/cluster/members/{name}': {
      parameters: parameters(NAME_PARAMS, 'path'),
      delete: {
        operationId: 'removeMember',
        summary:
          'Remove a member (run on the leader; removing the leader moves the leadership first). The removed member stops (docs/cluster-ops.md)',
        parameters: [
          {
            ...parameters(FORCE_QUERY, 'query')[0],
            description: 'true: skip the check that a quorum of the remaining voters is active',
          },
        ],
        responses: {
          200: {
            description: 'Removed (applied on the leader)',
            content: json({
              type: 'object',
              required: ['removed'],
              properties: { removed: { type: 'string' } },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: refused: not in the configuration, fewer than a quorum of the remaining voters active (force skips this), the last voter, or no other active voter to take over from the leader; a force other than true or false; ${NOT_A_MEMBER}`,
            404: 'NOT_FOUND: no member of that name',
            ...CHANGE_ERRORS,
          }),
        },
      },
    },
    '/v1/cluster/members/{name}/promote': {
      parameters: parameters(NAME_PARAMS, 'path'),
      post: {
        operationId: 'promoteMember',
        summary: 'Make a caught-up learner a voter (run on the leader; proxied there)',
        responses: {
          200: {
            description: 'Promoted (applied on the leader)',
            content: json({
              type: 'object',
              required: ['member'],
              properties: { member: { oneOf: [MEMBER_SCHEMA, { type: 'null' }] } },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: refused: already a voter or not a learner, its log below 90 % of the leader’s (retry later), or too few active voters after it; ${NOT_A_MEMBER}`,
            404: 'NOT_FOUND: no member of that name',
            ...CHANGE_ERRORS,
          }),
        },
      },
    },
    '/v1/cluster/leader': {
      post: {
        operationId: 'moveLeader',
        summary: 'Hand the leadership to a voter; answers once it leads (run on the leader; proxied there)',
        requestBody: { required: true, content: json(NAME_BODY) },
        responses: {
          200: {
            description: 'It leads',
            content: json({
              type: 'object',
              required: ['leader'],
              properties: { leader: { type: 'string' } },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: a bad body; not a voter, or not heard from recently; ${NOT_A_MEMBER}`,
            404: 'NOT_FOUND: no member of that name',
            ...BODY_ERRORS,
            503: CHANGE_ERRORS[503],
            504: 'UNCERTAIN: the leadership did not move within the request timeout (or the leader did not answer); look at the cluster and retry',
          }),
        },
      },
    },
    '/v1/cluster/check': {
      post: {
        operationId: 'checkHash',
        summary:
          'The leader appends a check entry; every member digests its state there (cairn check hash; proxied to the leader)',
        responses: {
          200: {
            description: 'The check entry, applied on the leader',
            content: json({
              type: 'object',
              required: ['index'],
              properties: { index: { type: 'integer' } },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: ${NOT_A_MEMBER}`,
            503: 'CLUSTER_DOWN: no leader, or the leader refused the entry; nothing was appended, retry',
            504: 'UNCERTAIN: the entry was proposed but not applied within the request timeout',
          }),
        },
      },
    },
    '/v1/cluster/check/{index}': {
      parameters: parameters(INDEX_PARAMS, 'path'),
      get: {
        operationId: 'checkDigest',
        summary:
          'This member’s digest of its state at a check entry, once it applied it (waits up to the request timeout; never proxied)',
        responses: {
          200: {
            description: 'The digest',
            content: json({
              type: 'object',
              required: ['name', 'index', 'digest', 'keys'],
              properties: {
                name: { type: 'string' },
                index: { type: 'integer' },
                digest: { type: 'string' },
                keys: { type: 'integer' },
              },
            }),
          },
          ...withErrors({
            400: `INVALID_ARGUMENT: a bad index; no digest at that entry here (it applied past it without digesting it: a snapshot install or a restart; run the check again); ${NOT_A_MEMBER}`,
            504: 'UNCERTAIN: the entry was not applied here within the request timeout',
          }),
        },
      },
    },
  };
}
