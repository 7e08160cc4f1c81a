// The cluster administration routes on a single server (no cluster): status answers, changes are
// refused clearly, bodies are checked strictly. Cluster behaviour: test/cluster/membership.test.ts.
import fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { APPLY_LAG_ENTRIES_MAX } from '../../replica/apply-lag.js';
import type { ClusterMember } from '../../replica/member.js';
import { createMetrics } from '../metrics.js';
import { createHttpApp } from './app.js';
import { memberRoutes, STATUS_SCHEMA } from './routes-members.js';

/** fitsStatusSchema: every field documented (STATUS_SCHEMA, the OpenAPI document's), the required ones present. */
function expectStatusSchema(body: Record<string, unknown>): void {
  for (const field of Object.keys(body)) expect(Object.keys(STATUS_SCHEMA.properties)).toContain(field);
  for (const field of STATUS_SCHEMA.required) expect(body).toHaveProperty(field);
}

let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  db = await open(tmpDir('http-members'));
  app = createHttpApp({ db, metrics: createMetrics(db), version: '9.9.9' });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await db.close();
});

describe('GET /v1/status on a single server', () => {
  it('describes the store', async () => {
    await db.set('a', '1');
    const res = await app.inject({ method: 'GET', url: '/v1/status' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ mode: 'single', version: '9.9.9', keys: 1, errors: [] });
    expectStatusSchema(res.json());
  });
});

describe('GET /v1/status on a cluster member', () => {
  /** statusWith answers /v1/status of a member (a stub) at these indexes. */
  async function statusWith(commit: number, applied: number): Promise<{ errors: string[] }> {
    const replica = {
      status: () => ({
        leader: 2,
        role: 'follower',
        learners: [],
        term: 3,
        commit,
        applied,
        lastIndex: commit,
      }),
    };
    const member = {
      replica,
      removed: false,
      identity: { name: 'n1', id: 1 },
      member: () => ({ name: 'n2' }),
    } as unknown as ClusterMember;
    const stub = fastify();
    await stub.register(memberRoutes(db, member, '9.9.9'));
    const res = await stub.inject({ method: 'GET', url: '/v1/status' });
    await stub.close();
    expect(res.statusCode).toBe(200);
    // Every field of a member's status is kept by the response schema and documented by it.
    expect(res.json()).toMatchObject({
      mode: 'cluster',
      name: 'n1',
      id: '1',
      leader: 'n2',
      raftState: 'follower',
      term: 3,
    });
    expectStatusSchema(res.json());
    return res.json() as { errors: string[] };
  }

  it('reports a member whose applied index is far behind its commit index', async () => {
    expect((await statusWith(100, 90)).errors).toEqual([]);
    const far = await statusWith(APPLY_LAG_ENTRIES_MAX + 101, 100);
    expect(far.errors).toEqual([
      `applied index is ${APPLY_LAG_ENTRIES_MAX + 1} entries behind its commit index ${APPLY_LAG_ENTRIES_MAX + 101} (more than ${APPLY_LAG_ENTRIES_MAX}): catching up, or its apply is stuck`,
    ]);
  });
});

describe('cluster administration on a single server', () => {
  it('lists no members and refuses changes with a clear error', async () => {
    const list = await app.inject({ method: 'GET', url: '/v1/cluster/members' });
    expect(list.statusCode).toBe(400);
    expect(list.json()).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: 'this server is not a cluster member' },
    });
    for (const [method, url, payload] of [
      ['POST', '/v1/cluster/members', { name: 'n4', peerAddr: '127.0.0.1:7004' }],
      ['POST', '/v1/cluster/members/n4/promote', undefined],
      ['DELETE', '/v1/cluster/members/n4', undefined],
      ['POST', '/v1/cluster/leader', { name: 'n2' }],
    ] as const) {
      const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(res.json().error.message).toBe('this server is not a cluster member');
    }
  });

  it('checks bodies and parameters strictly', async () => {
    const extra = await app.inject({
      method: 'POST',
      url: '/v1/cluster/members',
      payload: { name: 'n4', peerAddr: '127.0.0.1:7004', learner: false },
    });
    expect(extra.statusCode).toBe(400);
    const missing = await app.inject({ method: 'POST', url: '/v1/cluster/members', payload: { name: 'n4' } });
    expect(missing.statusCode).toBe(400);
    const force = await app.inject({ method: 'DELETE', url: '/v1/cluster/members/n4?force=yes' });
    expect(force.statusCode).toBe(400);
    expect(force.json().error.code).toBe('INVALID_ARGUMENT');
  });
});
