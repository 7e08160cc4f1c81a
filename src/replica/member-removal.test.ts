// ClusterMember.removal on three real members (TCP on loopback, real directories): a removed
// member records its removal durably before it reports it, a removed leader hands the leadership
// over first (the Raft core's path, without the operator's handover), and the library never
// exits a process: stopping is the owner's call (src/cli/run-server.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/ports.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { systemClock } from '../io/clock.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { NONE } from '../raft/index.js';
import { RemovedMemberStoppedError } from './errors.js';
import { readIdentity } from './identity.js';
import { ClusterMember } from './member.js';
import { ELECTION_TICKS, TICK_MS } from './replica.js';

const NAMES = ['n1', 'n2', 'n3'];
/** LEADER_WAIT_MS: how long a test waits for a ready leader (a few election timeouts). */
const LEADER_WAIT_MS = 10_000;
/**
 * ELECTION_BOUND_MS: after a leader applied its own removal, the others have a ready leader
 * within this: one election timeout, the least an election without the handover takes (their
 * timers wait at least that long after the last heartbeat). With the handover it takes about
 * 0.2 s (REMOVED_LEADER_GRACE_MS keeps its MsgTimeoutNow from being cut off); without, 1.2 s.
 */
const ELECTION_BOUND_MS = ELECTION_TICKS * TICK_MS;
const POLL_MS = 20;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const open: ClusterMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.engine.close().catch(() => {});
});

/** FAILING_WRITES: enough injected failures that every member.json rewrite of a test fails. */
const FAILING_WRITES = 1_000;

async function startCluster(): Promise<{
  members: ClusterMember[];
  dirs: string[];
  fss: FaultyFileSystem[];
}> {
  const peers = await Promise.all(NAMES.map(() => freePort()));
  const initialCluster = NAMES.map((n, i) => `${n}=127.0.0.1:${peers[i]}`).join(',');
  const dirs = NAMES.map((n) => tmpDir(`removal-${n}`));
  const fss = NAMES.map(() => new FaultyFileSystem(nodeFileSystem));
  const members = await Promise.all(
    NAMES.map((name, i) =>
      ClusterMember.open({
        dir: dirs[i] as string,
        flags: {
          name,
          listenPeer: `127.0.0.1:${peers[i]}`,
          initialCluster,
          initialClusterState: 'new',
          clusterToken: 'removal-test',
        },
        cask: {},
        clock: systemClock,
        logger: quiet,
        fs: fss[i],
        onFatal: (err) => {
          throw err;
        },
      }),
    ),
  );
  open.push(...members);
  await Promise.all(members.map((m) => m.connect({ resp: '', http: '' })));
  return { members, dirs, fss };
}

async function until(what: string, check: () => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return Date.now() - start;
}

async function readyLeader(members: readonly ClusterMember[]): Promise<ClusterMember> {
  let leader: ClusterMember | undefined;
  await until(
    'a ready leader',
    () => {
      leader = members.find((m) => m.replica.leaderReady);
      return leader !== undefined;
    },
    LEADER_WAIT_MS,
  );
  return leader as ClusterMember;
}

/** put commits one write through `leader` (it resolves once a quorum has it and it is applied). */
async function put(leader: ClusterMember): Promise<void> {
  const ts = leader.engine.lastTs() + 1;
  await leader.engine.write(ts, [
    { type: 'put', key: Buffer.from('k'), value: Buffer.from('v'), create: ts, version: 1 },
  ]);
}

async function recordsRemoval(dir: string, name: string): Promise<boolean> {
  const identity = await readIdentity(nodeFileSystem, dir);
  return (identity?.removed ?? []).some((m) => m.name === name);
}

describe('ClusterMember.removal', () => {
  it('a removed follower reports its removal once member.json records it; the others go on', async () => {
    const { members, dirs } = await startCluster();
    const leader = await readyLeader(members);
    const i = members.findIndex((m) => m !== leader);
    const doomed = members[i] as ClusterMember;
    let reported = false;
    void doomed.removal.then(() => {
      reported = true;
    });
    expect(await leader.remove(doomed.identity.name, false)).toBeUndefined();
    const removal = await doomed.removal;
    expect(reported).toBe(true);
    expect(removal).toMatchObject({ name: doomed.identity.name, recorded: true, handedOver: true });
    if (removal.how === 'applied') {
      expect(removal.by).toBe(leader.identity.name);
      expect(removal.index).toBeGreaterThan(0);
    } else {
      expect(removal.reason).toMatch(/removed from the cluster:.*at index \d+/);
    }
    // Durable when reported: its next start is refused.
    expect(await recordsRemoval(dirs[i] as string, doomed.identity.name)).toBe(true);
    expect(doomed.removed).toBe(true);
    // Still an object in this process (nothing exited); it serves nothing.
    await expect(doomed.leaderAddress('resp')).rejects.toThrow(/removed from the cluster/);
    // The leader and the third member commit without it.
    await put(leader);
  }, 30_000);

  it('a leader that applies its own removal hands over before it reports, and the others elect promptly', async () => {
    const { members, dirs } = await startCluster();
    const leader = await readyLeader(members);
    const i = members.indexOf(leader);
    const rest = members.filter((m) => m !== leader);
    // The ready leader proposes the members' started marks, membership changes of its own, one
    // at a time; a change proposed beside one is refused ("another membership change is still
    // being applied"). ClusterMember.remove waits for a mark in flight; proposed directly, the
    // test waits until every member is marked, after which the leader proposes none.
    await until(
      'every member marked started',
      () => leader.members().every((m) => m.started),
      LEADER_WAIT_MS,
    );
    // Proposed directly, without the operator's handover (ClusterMember.remove moves the
    // leadership first): the leader commits and applies its own removal, as it may when the
    // leadership comes back to it between the handover and the change.
    const t0 = Date.now();
    await leader.replica.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'removeNode', nodeId: leader.identity.id }],
      context: new Uint8Array(0),
    });
    const removal = await leader.removal;
    const reportedMs = Date.now() - t0;
    expect(removal).toMatchObject({
      name: leader.identity.name,
      how: 'applied',
      by: leader.identity.name,
      recorded: true,
      handedOver: true,
    });
    // It no longer leads when it reports: it stepped down after its MsgTimeoutNow.
    expect(leader.replica.leading).toBe(false);
    expect(await recordsRemoval(dirs[i] as string, leader.identity.name)).toBe(true);
    const next = await readyLeader(rest);
    const electedMs = Date.now() - t0;
    expect(electedMs).toBeLessThan(ELECTION_BOUND_MS);
    expect(next.replica.leader).not.toBe(NONE);
    console.log(
      `direct leader removal: reported after ${reportedMs} ms, ${next.identity.name} ready after ${electedMs} ms`,
    );
    // The two remaining members commit.
    await put(next);
  }, 30_000);

  it('a member whose member.json cannot record the removal still stops, and says so', async () => {
    const { members, dirs, fss } = await startCluster();
    const leader = await readyLeader(members);
    const i = members.findIndex((m) => m !== leader);
    const doomed = members[i] as ClusterMember;
    (fss[i] as FaultyFileSystem).inject({
      op: 'rename',
      code: 'EIO',
      path: /member\.json/,
      times: FAILING_WRITES,
    });
    await leader.remove(doomed.identity.name, false);
    const removal = await doomed.removal;
    expect(removal.recorded).toBe(false);
    expect(await recordsRemoval(dirs[i] as string, doomed.identity.name)).toBe(false);
    // What cairn serve then says: its next start learns the removal again and stops again.
    const said = new RemovedMemberStoppedError('removed', dirs[i] as string, removal.recorded).message;
    expect(said).toMatch(
      /could not record the removal: a restart learns it again from the cluster and stops again/,
    );
  }, 30_000);
});
