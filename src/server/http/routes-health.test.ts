// GET /healthz on a cluster member (issue 13): knowing a leader is not enough; the member must
// confirm a linearizable read (Replica.confirmRead) within HEALTH_READ_TIMEOUT_MS, and the 503
// says which step failed. The single server's answer is in app.test.ts.
import fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { NONE } from '../../raft/index.js';
import { ReadUnconfirmedError } from '../../replica/errors.js';
import type { ClusterMember } from '../../replica/member.js';
import type { ReadConfirmation } from '../../replica/replica.js';
import { HEALTH_READ_TIMEOUT_MS, healthRoutes } from './routes-health.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('http-health'));
  await db.set('h', '1');
});

afterAll(async () => {
  await db.close();
});

/** StubReplica: what /healthz asks a member's replica. */
interface StubReplica {
  leader: number;
  repairing: boolean;
  asked: number[];
  confirmRead(timeoutMs: number): Promise<ReadConfirmation>;
}

async function appFor(
  confirm: () => Promise<ReadConfirmation>,
  leader = 7,
): Promise<{ app: FastifyInstance; replica: StubReplica }> {
  const replica: StubReplica = {
    leader,
    repairing: false,
    asked: [],
    confirmRead(timeoutMs) {
      this.asked.push(timeoutMs);
      return confirm();
    },
  };
  const member = { removed: false, replica } as unknown as ClusterMember;
  const app = fastify();
  await app.register(healthRoutes(db, member));
  await app.ready();
  return { app, replica };
}

describe('GET /healthz on a cluster member', () => {
  it('is 200 with the read index and applied index once a read is confirmed', async () => {
    const { app, replica } = await appFor(async () => ({ readIndex: 41, applied: 42 }));
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', engine: 'cask', keys: 1, readIndex: 41, applied: 42 });
    expect(replica.asked).toEqual([HEALTH_READ_TIMEOUT_MS]);
    await app.close();
  });

  it('is 503 when a member that knows a leader cannot get its read confirmed by a quorum', async () => {
    const why = `no quorum confirmed a read through the leader within ${HEALTH_READ_TIMEOUT_MS} ms (...)`;
    const { app } = await appFor(() =>
      Promise.reject(new ReadUnconfirmedError('quorum', why, undefined, 40)),
    );
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'unavailable',
      error: { code: 'CLUSTER_DOWN', message: why },
      applied: 40,
    });
    await app.close();
  });

  it('is 503 when its apply is behind the confirmed read index, with both indexes', async () => {
    const why = 'a quorum confirmed read index 90, but ... behind by 50 entries';
    const { app } = await appFor(() => Promise.reject(new ReadUnconfirmedError('apply', why, 90, 40)));
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'unavailable',
      error: { code: 'CLUSTER_DOWN', message: why },
      readIndex: 90,
      applied: 40,
    });
    await app.close();
  });

  it('is 503 without a leader, without asking for a read', async () => {
    const { app, replica } = await appFor(async () => ({ readIndex: 1, applied: 1 }), NONE);
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      error: { code: 'CLUSTER_DOWN', message: 'this member has no leader' },
    });
    expect(replica.asked).toEqual([]);
    await app.close();
  });
});
