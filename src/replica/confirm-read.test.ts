// Replica.confirmRead, the cluster's /healthz: a member is healthy only when a read is confirmed
// by a quorum through the leader and its own apply reaches the read index, within the timeout.
// Knowing a leader is not enough (issue 13: a member cut off from its leader, or whose apply is
// behind, said "healthy").
import { afterEach, describe, expect, it } from 'vitest';
import {
  startTestMember,
  type TestMember,
  type TickPausingClock,
  tickPausingClock,
  until,
} from '../../test/support/replica-member.js';
import { NONE } from '../raft/index.js';
import { ReadUnconfirmedError } from './errors.js';
import { MemoryHub } from './memory-transport.js';

/** CONFIRM_MS: the health read's timeout in these tests (production: HEALTH_READ_TIMEOUT_MS). */
const CONFIRM_MS = 200;

const open: TestMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.db.close().catch(() => {});
});

async function group(): Promise<{ hub: MemoryHub; members: TestMember[]; clocks: TickPausingClock[] }> {
  const hub = new MemoryHub();
  const ids = [1, 2, 3];
  const clocks = ids.map(() => tickPausingClock());
  const members: TestMember[] = [];
  for (const id of ids) {
    const m = await startTestMember(hub, id, ids, { clock: clocks[id - 1]! });
    members.push(m);
    open.push(m);
  }
  return { hub, members, clocks };
}

async function leaderOf(members: readonly TestMember[]): Promise<TestMember> {
  let leader: TestMember | undefined;
  await until(() => {
    leader = members.find((m) => m.replica.leaderReady);
    return leader !== undefined;
  });
  return leader!;
}

async function unconfirmed(m: TestMember): Promise<ReadUnconfirmedError> {
  const err = await m.replica.confirmRead(CONFIRM_MS).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ReadUnconfirmedError);
  return err as ReadUnconfirmedError;
}

describe('Replica.confirmRead', () => {
  it('confirms a read on the leader and on followers once they applied the read index', async () => {
    const { members } = await group();
    const leader = await leaderOf(members);
    await leader.db.set('k', 'v');
    for (const m of members) {
      const read = await m.replica.confirmRead(CONFIRM_MS);
      expect(read.readIndex).toBeGreaterThan(0);
      expect(read.applied).toBeGreaterThanOrEqual(read.readIndex);
    }
  });

  it('refuses on a follower cut off from the leader that still remembers it (no quorum confirmation)', async () => {
    const { hub, members, clocks } = await group();
    const leader = await leaderOf(members);
    const cut = members.find((m) => m !== leader)!;
    // Its ticks stopped, it never times out its election: it goes on naming the leader, as a
    // learner (which never campaigns) or a member held back by pre-vote does.
    clocks[cut.id - 1]!.ticksPaused = true;
    hub.isolate(cut.id);
    expect(cut.replica.leader).toBe(leader.id);
    const err = await unconfirmed(cut);
    expect(err.step).toBe('quorum');
    expect(err.readIndex).toBeUndefined();
    expect(err.message).toMatch(/no quorum confirmed a read through the leader within 200 ms/);
    expect(cut.replica.leader).not.toBe(NONE);
    clocks[cut.id - 1]!.ticksPaused = false;
    hub.heal();
    await until(() => cut.replica.applied >= leader.replica.applied);
    await cut.replica.confirmRead(CONFIRM_MS);
  });

  it('refuses on a follower whose apply is behind the read index, saying by how much', async () => {
    const { hub, members } = await group();
    const leader = await leaderOf(members);
    const behind = members.find((m) => m !== leader)!;
    // Heartbeats (and so the ReadIndex round) reach it; the entries do not.
    hub.drop = (m) => m.type === 'MsgApp' && m.to === behind.id;
    for (let i = 0; i < 5; i++) await leader.db.set(`k${i}`, `${i}`);
    const err = await unconfirmed(behind);
    expect(err.step).toBe('apply');
    expect(err.readIndex).toBe(leader.replica.status().commit);
    expect(err.applied).toBe(behind.replica.applied);
    expect(err.readIndex! - err.applied).toBeGreaterThanOrEqual(5);
    expect(err.message).toMatch(
      new RegExp(
        `confirmed read index ${err.readIndex}.*applied only up to ${err.applied}.*behind by ${err.readIndex! - err.applied} entries`,
      ),
    );
    hub.drop = undefined;
    const read = await behind.replica.confirmRead(2_000);
    expect(read.applied).toBeGreaterThanOrEqual(read.readIndex);
  });
});
