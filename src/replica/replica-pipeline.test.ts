// The driver's pipelined saves (docs/cluster.md, "The driver"): a Ready is handed out without
// waiting for the previous one's save. These tests hold a member's log saves back (GatedLog) and
// check the invariants: a leader replicates and applies while its own fsync is in flight; a
// follower's acknowledgements and votes wait until everything it saved so far is durable.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestMember, type TestMember, until } from '../../test/support/replica-member.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../raft/index.js';
import { MemoryLog } from './memory-log.js';
import { MemoryHub } from './memory-transport.js';

/**
 * GatedLog: a MemoryLog whose saves, while gated, stay pending until released. `durableLast` is
 * the last index of the log that released saves made durable.
 */
class GatedLog extends MemoryLog {
  gated = false;
  durableLast = 0;
  private held: { last: number; resolve: () => void }[] = [];

  override save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
  ): Promise<void> {
    void super.save(hardState, entries, snapshot);
    const last = this.lastIndex();
    if (!this.gated) {
      this.durableLast = last;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.held.push({ last, resolve }));
  }

  /** pending: saves held back. */
  get pending(): number {
    return this.held.length;
  }

  release(): void {
    this.gated = false;
    for (const h of this.held.splice(0)) {
      this.durableLast = h.last;
      h.resolve();
    }
  }
}

const open: TestMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.db.close().catch(() => {});
});

async function group(logs: readonly GatedLog[]): Promise<{ hub: MemoryHub; members: TestMember[] }> {
  const hub = new MemoryHub();
  const ids: NodeId[] = logs.map((_, i) => i + 1);
  const members: TestMember[] = [];
  for (const id of ids) {
    const m = await startTestMember(hub, id, ids, { log: logs[id - 1] });
    members.push(m);
    open.push(m);
  }
  return { hub, members };
}

async function leaderOf(members: readonly TestMember[]): Promise<TestMember> {
  let leader: TestMember | undefined;
  await until(() => {
    leader = members.find((m) => m.replica.leaderReady);
    return leader !== undefined;
  });
  return leader as TestMember;
}

describe('pipelined log saves', () => {
  it('a leader replicates, commits on the followers and applies while its own save is in flight', async () => {
    const logs = [new GatedLog(), new GatedLog(), new GatedLog()];
    const { members } = await group(logs);
    const leader = await leaderOf(members);
    const log = logs[leader.id - 1] as GatedLog;
    log.gated = true;
    const before = leader.replica.applied;
    // Two writes one after the other: the second Ready is taken while the first save is held.
    await leader.db.set('a', '1');
    await leader.db.set('b', '2');
    expect(log.pending).toBeGreaterThanOrEqual(2);
    expect(leader.replica.savesPending).toBeGreaterThanOrEqual(2);
    expect(log.durableLast).toBeLessThanOrEqual(before);
    expect(leader.replica.applied).toBeGreaterThan(before);
    expect(Buffer.from((await leader.db.get('b')) as Uint8Array).toString()).toBe('2');
    // The leader does not count its own unsaved entries: its match stays at what is durable.
    const self = leader.replica.status().progress.get(leader.id);
    expect(self?.match).toBeLessThanOrEqual(before);
    log.release();
    await until(() => leader.replica.status().progress.get(leader.id)?.match === leader.replica.applied);
    expect(leader.replica.savesPending).toBe(0);
  });

  it('a follower acknowledges no entry and sends no vote before its saves are durable; heartbeat responses go on', async () => {
    const logs = [new GatedLog(), new GatedLog(), new GatedLog()];
    const { hub, members } = await group(logs);
    const leader = await leaderOf(members);
    const follower = members.find((m) => m !== leader) as TestMember;
    const log = logs[follower.id - 1] as GatedLog;
    const sent: Message[] = [];
    let violation = '';
    hub.drop = (m) => {
      if (m.from !== follower.id) return false;
      sent.push(m);
      if (m.type === 'MsgAppResp' && !m.reject && m.index > log.durableLast) {
        violation = `acknowledged ${m.index} with ${log.durableLast} durable`;
      }
      const claimsDisk = m.type === 'MsgAppResp' || m.type === 'MsgVoteResp' || m.type === 'MsgPreVoteResp';
      if (log.pending > 0 && claimsDisk) violation = `${m.type} sent with ${log.pending} saves held`;
      return false;
    };
    log.gated = true;
    // The quorum is the leader and the other follower: writes go on while this one's disk stalls.
    await leader.db.set('x', '1');
    await leader.db.set('y', '2');
    await until(() => log.pending > 0);
    const held = sent.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(violation).toBe('');
    // Heartbeats reached it meanwhile; their responses claim nothing on disk and go at once
    // (a ReadIndex round does not wait for a follower's fsync).
    expect(sent.slice(held).some((m) => m.type === 'MsgHeartbeatResp')).toBe(true);
    const match = leader.replica.status().progress.get(follower.id)?.match ?? 0;
    expect(match).toBeLessThan(leader.replica.status().lastIndex);
    log.release();
    await until(
      () => leader.replica.status().progress.get(follower.id)?.match === leader.replica.status().lastIndex,
    );
    expect(violation).toBe('');
    await until(() => follower.replica.applied === leader.replica.applied);
    expect(
      Buffer.from((await follower.engine.getStored(Buffer.from('y')))?.value as Uint8Array).toString(),
    ).toBe('2');
  });
});
