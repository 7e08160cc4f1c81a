// Replica.proposeConfChange and the onConfChange hook, on an in-memory group.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestMember, type TestMember, until } from '../../test/support/replica-member.js';
import type { ConfChange, NodeId } from '../raft/index.js';
import { ClusterDownError } from '../storage/errors.js';
import { MemoryHub } from './memory-transport.js';

interface Member extends TestMember {
  applied: { cc: ConfChange; index: number }[];
}

const open: Member[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.db.close().catch(() => {});
});

async function start(hub: MemoryHub, id: NodeId, bootstrap: NodeId[]): Promise<Member> {
  const started = await startTestMember(hub, id, bootstrap);
  const applied: Member['applied'] = [];
  started.replica.onConfChange((cc, _cs, index) => applied.push({ cc, index }));
  const m = { ...started, applied };
  open.push(m);
  return m;
}

const change = (type: 'addLearner' | 'addNode' | 'removeNode', nodeId: NodeId): ConfChange => ({
  transition: 'auto',
  changes: [{ type, nodeId }],
  context: Buffer.from(`ctx-${nodeId}`),
});

describe('Replica.proposeConfChange', () => {
  it('adds a learner that catches up by log replay, promotes it, and every member hears of each change', async () => {
    const hub = new MemoryHub();
    const members = await Promise.all([1, 2, 3].map((id) => start(hub, id, [1, 2, 3])));
    let leader: Member | undefined;
    await until(() => {
      leader = members.find((m) => m.replica.leaderReady);
      return leader !== undefined;
    });
    for (let i = 0; i < 20; i++) await leader!.db.set(`k${i}`, `${i}`);
    const newcomer = await start(hub, 4, []);
    // Only the ready leader proposes.
    const follower = members.find((m) => m !== leader)!;
    await expect(follower.replica.proposeConfChange(change('addLearner', 4))).rejects.toBeInstanceOf(
      ClusterDownError,
    );
    await leader!.replica.proposeConfChange(change('addLearner', 4));
    expect(leader!.replica.status().learners).toEqual([4]);
    await until(() => newcomer.replica.applied >= leader!.replica.applied);
    expect(Buffer.from((await newcomer.db.get('k19'))!).toString()).toBe('19');
    // The newcomer replayed the bootstrap changes and its own addition, context included.
    expect(newcomer.applied.map((a) => a.cc.changes[0]?.type)).toEqual([
      'addNode',
      'addNode',
      'addNode',
      'addLearner',
    ]);
    expect(Buffer.from(newcomer.applied[3]!.cc.context).toString()).toBe('ctx-4');
    await leader!.replica.proposeConfChange(change('addNode', 4));
    expect(leader!.replica.status().voters).toContain(4);
    await until(() => members.every((m) => m.applied.length === 5));
  });

  it('refuses a second change while the first is being applied', async () => {
    const hub = new MemoryHub();
    const members = await Promise.all([1, 2, 3].map((id) => start(hub, id, [1, 2, 3])));
    let leader: Member | undefined;
    await until(() => {
      leader = members.find((m) => m.replica.leaderReady);
      return leader !== undefined;
    });
    const first = leader!.replica.proposeConfChange(change('addLearner', 7));
    await expect(leader!.replica.proposeConfChange(change('addLearner', 8))).rejects.toThrow(
      /still being applied/,
    );
    await first;
    // A change the core finds invalid (leaving a joint configuration it is not in) becomes an
    // empty entry: the proposal fails once that entry is applied.
    await expect(
      leader!.replica.proposeConfChange({ transition: 'auto', changes: [], context: new Uint8Array(0) }),
    ).rejects.toThrow(/refused the membership change/);
  });
});
