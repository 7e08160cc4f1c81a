// What a member's health reporting says when it cannot serve (issue 13), on real processes:
// `/healthz` and `cairn endpoint health` answer healthy only when the member can serve a
// linearizable read now (a read confirmed by a quorum through the leader, and applied here,
// within HEALTH_READ_TIMEOUT_MS). A learner whose voters are gone still names its leader, for
// good (a learner never campaigns); it said "healthy" before.
import { describe, expect, it } from 'vitest';
import { HEALTH_READ_TIMEOUT_MS } from '../../src/server/http/routes-health.js';
import { run } from '../cli/support.js';
import { ProcCluster, sleep, until } from './proc-cluster.js';

const NAMES = ['n1', 'n2', 'n3'];

async function cairn(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await run('cairn', args, process.cwd());
  return { code: r.code, out: r.out, err: r.stderr };
}

interface HealthBody {
  status: string;
  readIndex?: number;
  applied?: number;
  error?: { code: string; message: string };
}

async function healthz(c: ProcCluster, name: string): Promise<{ status: number; body: HealthBody }> {
  const res = await fetch(`http://${c.endpoints(name)}/healthz`);
  return { status: res.status, body: (await res.json()) as HealthBody };
}

describe('cluster health', () => {
  it('a learner cut off from every voter but still naming its leader is unhealthy, and says why', async () => {
    const c = await ProcCluster.start(NAMES);
    try {
      const leader = await c.leader();
      expect(await c.call(leader, 'SET', 'k', 'v')).toBe('OK');
      const { spec, args } = await c.addSpec('n4');
      const added = await cairn(
        'member',
        'add',
        'n4',
        '--peer-url',
        `127.0.0.1:${spec.peer}`,
        '--endpoints',
        c.endpoints(leader),
      );
      expect(added.code, added.err).toBe(0);
      await c.startMember('n4', args);
      // Caught up, the learner is healthy: its read is confirmed and applied.
      await until('n4 is healthy', async () => (await healthz(c, 'n4')).status === 200);
      const ok = await healthz(c, 'n4');
      expect(ok.body.readIndex).toBeGreaterThan(0);
      expect(ok.body.applied).toBeGreaterThanOrEqual(ok.body.readIndex!);

      // The leader and one follower die: the last voter cannot be elected, and the learner,
      // which never campaigns, goes on naming the dead leader.
      const follower = NAMES.find((n) => n !== leader)!;
      await c.kill(leader);
      await c.kill(follower);
      await sleep(1_500);
      const status = (await (await fetch(`http://${c.endpoints('n4')}/v1/status`)).json()) as {
        leader: string | null;
      };
      expect(status.leader).toBe(leader);
      const started = Date.now();
      const cut = await healthz(c, 'n4');
      const took = Date.now() - started;
      expect(cut.status).toBe(503);
      expect(cut.body.error?.code).toBe('CLUSTER_DOWN');
      expect(cut.body.error?.message).toMatch(
        new RegExp(`no quorum confirmed a read through the leader within ${HEALTH_READ_TIMEOUT_MS} ms`),
      );
      // Bounded by the health read's timeout, well under a client's.
      expect(took).toBeGreaterThanOrEqual(HEALTH_READ_TIMEOUT_MS - 50);
      expect(took).toBeLessThan(HEALTH_READ_TIMEOUT_MS + 2_000);
      const health = await cairn('endpoint', 'health', '--endpoints', c.endpoints('n4'));
      expect(health.code).toBe(1);
      expect(health.err).toMatch(/is unhealthy: .*no quorum confirmed a read/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 60_000);
});
