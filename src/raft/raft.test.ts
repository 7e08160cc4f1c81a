// Scenario tests named after the sections of the Raft paper (Ongaro & Ousterhout, "In Search
// of an Understandable Consensus Algorithm", 2014) and Ongaro's thesis (2014) they exercise.

import { describe, expect, it } from 'vitest';
import { AssertionError } from '../stdx/assert.js';
import { MemoryStorage } from './log-storage.js';
import type { RaftConfig } from './raft.js';
import { defaultConfig, ProposalDroppedError, Raft } from './raft.js';
import { checkPersistedBeforeSend, RawNode } from './raw-node.js';
import { TestCluster } from './test-cluster.js';
import type { Entry, Message, NodeId } from './types.js';
import { message } from './types.js';

const enc = new TextEncoder();
const ELECTION = 10;

function cluster(n: number, overrides: Partial<RaftConfig> = {}): TestCluster {
  const c = new TestCluster({ electionTick: ELECTION, heartbeatTick: 1, ...overrides });
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (const id of ids) c.add(id, ids);
  c.stabilize(undefined, false);
  return c;
}

function elect(c: TestCluster, id: NodeId): void {
  c.node(id).rn.campaign();
  c.stabilize(undefined, false);
  expect(c.node(id).rn.raft.state).toBe('leader');
}

function tickElection(c: TestCluster, id: NodeId): void {
  // Twice the election timeout always exceeds the randomized timeout in [et, 2*et).
  for (let i = 0; i < 2 * ELECTION; i++) c.node(id).rn.tick();
}

/** tickAll advances every listed node's clock together, delivering messages between ticks. */
function tickAll(c: TestCluster, ids: NodeId[], ticks: number): void {
  for (let i = 0; i < ticks; i++) {
    for (const id of ids) c.node(id).rn.tick();
    c.stabilize(undefined, false);
  }
}

function ent(term: number, index: number, data = ''): Entry {
  return { term, index, type: 'normal', data: enc.encode(data) };
}

/** storageWith builds a storage whose snapshot at index 1 (term 1) holds voters, then ents. */
/** saveUnstable does a driver's save of a Raft's unstable entries (as RawNode.advance would follow). */
function saveUnstable(r: Raft, storage: MemoryStorage): void {
  const ents = r.raftLog.unstableEntries().slice();
  const last = ents[ents.length - 1];
  if (last === undefined) return;
  storage.append(ents);
  r.raftLog.stableTo(last.index, last.term);
  r.persisted(last.index, last.term);
}

function storageWith(voters: NodeId[], ents: Entry[], term: number): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({
    metadata: {
      index: 1,
      term: 1,
      confState: { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data: new Uint8Array(0),
  });
  s.append(ents);
  s.setHardState({ term, vote: 0, commit: 1 });
  return s;
}

function data(c: TestCluster, id: NodeId): string[] {
  return c.node(id).applied.map((e) => new TextDecoder().decode(e.data));
}

describe('§5.1 Raft basics: terms', () => {
  it('a node starts as a follower and adopts a higher term it sees', () => {
    const c = cluster(3);
    const r = c.node(2).rn.raft;
    expect(r.state).toBe('follower');
    r.step(message({ type: 'MsgHeartbeat', from: 3, to: 2, term: 7 }));
    expect(r.term).toBe(7);
    expect(r.lead).toBe(3);
  });

  it('a leader that sees a higher term steps down', () => {
    const c = cluster(3);
    elect(c, 1);
    const r = c.node(1).rn.raft;
    r.step(message({ type: 'MsgAppResp', from: 2, to: 1, term: r.term + 1 }));
    expect(r.state).toBe('follower');
    expect(r.term).toBe(3);
  });

  it('messages from a stale term are ignored (and answered so the sender learns the term)', () => {
    const c = cluster(3);
    elect(c, 1);
    const r = c.node(2).rn.raft;
    const commit = r.raftLog.committed;
    r.step(message({ type: 'MsgApp', from: 3, to: 2, term: 1, index: 10, logTerm: 1, commit: 10 }));
    expect(r.raftLog.committed).toBe(commit);
    expect(r.msgs.at(-1)?.type).toBe('MsgAppResp');
    expect(r.msgs.at(-1)?.term).toBe(r.term);
  });
});

describe('§5.2 Leader election', () => {
  it('a follower that hears nothing for an election timeout campaigns and wins', () => {
    const c = cluster(3);
    tickElection(c, 1);
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(1);
    expect(c.node(2).rn.raft.lead).toBe(1);
  });

  it('randomized election timeouts lie in [electionTimeout, 2*electionTimeout) and differ between nodes', () => {
    const c = cluster(5);
    const seen = new Set<number>();
    for (const id of [1, 2, 3, 4, 5]) {
      const t = c.node(id).rn.raft.randomizedElectionTimeout;
      expect(t).toBeGreaterThanOrEqual(ELECTION);
      expect(t).toBeLessThan(2 * ELECTION);
      seen.add(t);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('a node grants at most one vote per term', () => {
    const c = cluster(3, { preVote: false, checkQuorum: false });
    const r = c.node(3).rn.raft;
    r.step(message({ type: 'MsgVote', from: 1, to: 3, term: 2, index: 3, logTerm: 1 }));
    r.step(message({ type: 'MsgVote', from: 2, to: 3, term: 2, index: 3, logTerm: 1 }));
    const resps = r.msgs.filter((m) => m.type === 'MsgVoteResp');
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(r.vote).toBe(1);
  });

  it('a candidate that hears from a leader of its term becomes a follower', () => {
    const c = cluster(3, { preVote: false });
    const r = c.node(2).rn.raft;
    r.becomeCandidate();
    r.step(message({ type: 'MsgApp', from: 1, to: 2, term: r.term, index: 3, logTerm: 1 }));
    expect(r.state).toBe('follower');
    expect(r.lead).toBe(1);
  });

  it('a split vote elects nobody, and a later election does', () => {
    const c = cluster(4, { preVote: false, checkQuorum: false });
    c.node(1).rn.campaign();
    c.node(2).rn.campaign();
    // Node 3 votes for 1 and node 4 for 2: 2 votes each out of 4, no majority.
    c.cut.add('2->3').add('1->4');
    c.stabilize(undefined, false);
    expect(c.leader()).toBeUndefined();
    c.heal();
    elect(c, 1);
  });

  it('the cluster elects exactly one leader per term', () => {
    const c = cluster(5);
    for (let round = 0; round < 5; round++) {
      const id = (round % 5) + 1;
      c.node(id).rn.campaign();
      c.stabilize(undefined, false);
      const leaders = [...c.nodes.values()].filter((n) => n.rn.raft.state === 'leader');
      expect(leaders.length).toBeLessThanOrEqual(1);
    }
  });
});

describe('§5.3 Log replication', () => {
  it('the leader replicates an entry and commits it once a majority stores it', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('x'));
    c.stabilize(undefined, false);
    for (const id of [1, 2, 3]) expect(data(c, id)).toEqual(['x']);
  });

  it('a minority cannot commit', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(2);
    c.isolate(3);
    c.node(1).rn.propose(enc.encode('y'));
    c.stabilize(undefined, false);
    expect(data(c, 1)).toEqual([]);
    c.heal();
    c.node(1).rn.tick(); // Heartbeat: followers reply, the leader sends the missing entry.
    c.stabilize(undefined, false);
    for (const id of [1, 2, 3]) expect(data(c, id)).toEqual(['y']);
  });

  it('a follower rejects an append whose previous entry does not match (consistency check)', () => {
    const c = cluster(3);
    elect(c, 1);
    const r = c.node(2).rn.raft;
    r.step(
      message({
        type: 'MsgApp',
        from: 1,
        to: 2,
        term: r.term,
        index: 50,
        logTerm: r.term,
        entries: [ent(r.term, 51)],
      }),
    );
    const resp = r.msgs.at(-1) as Message;
    expect(resp.reject).toBe(true);
    expect(resp.rejectHint).toBe(r.raftLog.lastIndex());
  });

  it('the leader overwrites conflicting uncommitted follower entries', () => {
    // Without check-quorum, followers do not hold a leader lease, so we can elect at once.
    const c = cluster(3, { checkQuorum: false });
    elect(c, 1);
    c.isolate(1);
    // The old leader appends entries nobody else sees.
    for (let i = 0; i < 5; i++) c.node(1).rn.propose(enc.encode(`lost${i}`));
    c.stabilize(undefined, false);
    c.heal();
    c.isolate(1);
    elect(c, 2);
    c.node(2).rn.propose(enc.encode('kept'));
    c.stabilize(undefined, false);
    c.heal();
    c.node(2).rn.tick();
    c.stabilize(undefined, false);
    for (const id of [1, 2, 3]) expect(data(c, id)).toEqual(['kept']);
  });

  it('fast back-up: the leader skips a whole conflicting term in one round trip', () => {
    const c = cluster(3, { checkQuorum: false });
    elect(c, 1);
    c.isolate(1);
    for (let i = 0; i < 50; i++) c.node(1).rn.propose(enc.encode(`stale${i}`));
    c.stabilize(undefined, false);
    c.heal();
    c.isolate(1);
    elect(c, 2);
    c.heal();
    c.out.length = 0;
    c.node(2).rn.tick();
    c.stabilize();
    // One rejection is enough to find the match point despite 50 conflicting entries.
    const rejections = c.out.filter((l) => l.includes('1->2 MsgAppResp') && l.includes('Rejected'));
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(c.node(1).rn.raft.raftLog.lastIndex()).toBe(c.node(2).rn.raft.raftLog.lastIndex());
  });

  it('an acknowledgement of entries overwritten in the same Ready is never sent', () => {
    const storage = new MemoryStorage();
    const rn = new RawNode(defaultConfig(2, storage, { peers: [1, 2, 3] }));
    const boot = rn.ready(); // The bootstrap Ready: persist it.
    storage.append(boot.entries);
    storage.setHardState(boot.hardState ?? storage.initialState().hardState);
    rn.advance(boot);
    rn.step(
      message({
        type: 'MsgApp',
        from: 1,
        to: 2,
        term: 2,
        index: 3,
        logTerm: 1,
        entries: [ent(2, 4), ent(2, 5)],
      }),
    );
    rn.step(message({ type: 'MsgApp', from: 3, to: 2, term: 3, index: 3, logTerm: 1, entries: [ent(3, 4)] }));
    const rd = rn.ready();
    const acks = rd.messages.filter((m) => m.type === 'MsgAppResp').map((m) => [m.to, m.index]);
    expect(acks).toEqual([[3, 4]]);
  });

  it('flow control: at most maxInflightMsgs appends are outstanding per follower', () => {
    const c = cluster(3, { maxInflightMsgs: 2 });
    elect(c, 1);
    c.isolate(2);
    c.isolate(3);
    c.heal();
    const r = c.node(1).rn.raft;
    for (let i = 0; i < 10; i++) c.node(1).rn.propose(enc.encode(`f${i}`));
    const apps = r.msgs.filter((m) => m.type === 'MsgApp' && m.to === 2 && m.entries.length > 0);
    expect(apps.length).toBe(2);
    c.stabilize(undefined, false);
    expect(data(c, 2)).toHaveLength(10);
  });
});

describe('§5.4 Safety', () => {
  it('§5.4.1 election restriction: a voter rejects a candidate whose log is less up to date', () => {
    const c = cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('z'));
    c.stabilize(undefined, false);
    const r = c.node(2).rn.raft;
    r.step(message({ type: 'MsgVote', from: 3, to: 2, term: r.term + 1, index: 2, logTerm: 1 }));
    expect(r.msgs.at(-1)?.reject).toBe(true);
  });

  it('a leader counts its own entries toward commit only once they are saved', () => {
    const storage = storageWith([1, 2, 3], [ent(1, 1)], 1);
    const r = new Raft(
      defaultConfig(1, storage, { electionTick: ELECTION, heartbeatTick: 1, preVote: false }),
    );
    r.becomeCandidate();
    r.becomeLeader(); // Appends its empty entry at index 2, unsaved.
    r.step(message({ type: 'MsgAppResp', from: 2, to: 1, term: r.term, index: 2 }));
    // A follower has it on disk, the leader not yet: one disk is not a quorum of three.
    expect(r.raftLog.committed).toBe(1);
    saveUnstable(r, storage);
    expect(r.raftLog.committed).toBe(2);
  });

  it('§5.4.2 Figure 8: a leader does not commit entries of earlier terms by counting replicas', () => {
    const storage = storageWith([1, 2, 3], [ent(1, 2), ent(2, 3)], 2);
    const r = new Raft(
      defaultConfig(1, storage, { electionTick: ELECTION, heartbeatTick: 1, preVote: false }),
    );
    r.becomeCandidate();
    r.becomeLeader(); // Appends its empty entry at index 4, term 3.
    expect(r.raftLog.lastIndex()).toBe(4);
    // The driver saves it (the Ready contract); only then does the leader count itself.
    saveUnstable(r, storage);
    r.step(message({ type: 'MsgAppResp', from: 2, to: 1, term: r.term, index: 3 }));
    expect(r.raftLog.committed).toBe(1); // Index 3 is on a majority but from term 2: not committed.
    r.step(message({ type: 'MsgAppResp', from: 2, to: 1, term: r.term, index: 4 }));
    expect(r.raftLog.committed).toBe(4); // Committing 4 commits 3 indirectly.
  });

  it('§5.4.3 leader completeness: a new leader holds every committed entry', () => {
    const c = cluster(5);
    elect(c, 1);
    for (let i = 0; i < 3; i++) c.node(1).rn.propose(enc.encode(`c${i}`));
    c.stabilize(undefined, false);
    c.isolate(1);
    tickAll(c, [2, 3, 4, 5], 2 * ELECTION);
    // Node 1 is cut off and did not tick, so it still believes it leads the old term.
    const l = [2, 3, 4, 5].find((id) => c.node(id).rn.raft.state === 'leader');
    expect(l).toBeDefined();
    expect(c.node(l as NodeId).rn.raft.term).toBeGreaterThan(c.node(1).rn.raft.term);
    expect(data(c, l as NodeId)).toEqual(['c0', 'c1', 'c2']);
  });
});

describe('§5.6 and persistence: the Ready contract', () => {
  it('a granted vote may only be sent once the vote is persisted', () => {
    const storage = new MemoryStorage();
    const rn = new RawNode(defaultConfig(2, storage, { peers: [1, 2, 3], preVote: false }));
    rn.step(message({ type: 'MsgVote', from: 1, to: 2, term: 5, index: 3, logTerm: 1 }));
    const rd = rn.ready();
    const vote = rd.messages.find((m) => m.type === 'MsgVoteResp') as Message;
    expect(vote.reject).toBe(false);
    expect(() => checkPersistedBeforeSend(vote, storage)).toThrow(AssertionError);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState ?? storage.initialState().hardState);
    expect(() => checkPersistedBeforeSend(vote, storage)).not.toThrow();
    rn.advance(rd);
  });

  it('an append acknowledgement may only be sent once the entries are persisted', () => {
    const storage = new MemoryStorage();
    const rn = new RawNode(defaultConfig(2, storage, { peers: [1, 2, 3] }));
    rn.step(
      message({
        type: 'MsgApp',
        from: 1,
        to: 2,
        term: 2,
        index: 3,
        logTerm: 1,
        entries: [ent(2, 4), ent(2, 5)],
      }),
    );
    const rd = rn.ready();
    const ack = rd.messages.find((m) => m.type === 'MsgAppResp') as Message;
    expect(ack.index).toBe(5);
    storage.setHardState(rd.hardState ?? storage.initialState().hardState);
    expect(() => checkPersistedBeforeSend(ack, storage)).toThrow(AssertionError);
    storage.append(rd.entries);
    expect(() => checkPersistedBeforeSend(ack, storage)).not.toThrow();
  });

  it('a node restarted from storage keeps its term, vote and log', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('p'));
    c.stabilize(undefined, false);
    const n2 = c.node(2);
    const before = n2.rn.status();
    n2.rn = new RawNode(defaultConfig(2, n2.storage, { electionTick: ELECTION, heartbeatTick: 1 }));
    const after = n2.rn.status();
    expect(after.hardState).toEqual(before.hardState);
    expect(after.lastIndex).toBe(before.lastIndex);
  });
});

describe('§6 Cluster membership changes (thesis §4)', () => {
  it('adds a voter one at a time (§4.1), and the new voter catches up', () => {
    const c = cluster(3);
    elect(c, 1);
    c.add(4, []);
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: 4 }],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    c.node(1).rn.propose(enc.encode('after'));
    c.stabilize(undefined, false);
    expect(c.node(1).rn.status().confState.voters).toEqual([1, 2, 3, 4]);
    expect(data(c, 4)).toEqual(['after']);
    expect(c.node(4).rn.status().confState.voters).toEqual([1, 2, 3, 4]);
  });

  it('refuses a second conf change while one is pending', () => {
    const c = cluster(3);
    elect(c, 1);
    const rn = c.node(1).rn;
    rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: 4 }],
      context: new Uint8Array(),
    });
    rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: 5 }],
      context: new Uint8Array(),
    });
    const ents = rn.raft.raftLog.unstableEntries();
    expect(ents.filter((e) => e.type === 'confChange')).toHaveLength(1);
  });

  it('joint consensus: replaces two voters at once through a joint configuration and leaves it automatically', () => {
    const c = cluster(3);
    elect(c, 1);
    c.add(4, []);
    c.add(5, []);
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [
        { type: 'addNode', nodeId: 4 },
        { type: 'addNode', nodeId: 5 },
        { type: 'removeNode', nodeId: 3 },
      ],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    const cs = c.node(1).rn.status().confState;
    expect(cs.voters).toEqual([1, 2, 4, 5]);
    expect(cs.votersOutgoing).toEqual([]);
    // The new configuration commits without node 3.
    c.isolate(3);
    c.node(1).rn.propose(enc.encode('joint'));
    c.stabilize(undefined, false);
    expect(data(c, 5)).toEqual(['joint']);
  });

  it('in a joint configuration, commit needs majorities of both halves', () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({
      metadata: {
        index: 1,
        term: 1,
        confState: {
          voters: [1, 4, 5],
          learners: [],
          votersOutgoing: [1, 2, 3],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: new Uint8Array(0),
    });
    const r = new Raft(defaultConfig(1, storage, { preVote: false }));
    r.step(message({ type: 'MsgHup' }));
    r.step(message({ type: 'MsgVoteResp', from: 2, to: 1, term: r.term }));
    expect(r.state).toBe('candidate'); // Majority of the old half only.
    r.step(message({ type: 'MsgVoteResp', from: 4, to: 1, term: r.term }));
    expect(r.state).toBe('leader');
    // The driver saves the leader's empty entry (index 2); only then does the leader count itself.
    saveUnstable(r, storage);
    r.step(message({ type: 'MsgAppResp', from: 2, to: 1, term: r.term, index: 2 }));
    expect(r.raftLog.committed).toBe(1);
    r.step(message({ type: 'MsgAppResp', from: 5, to: 1, term: r.term, index: 2 }));
    expect(r.raftLog.committed).toBe(2);
  });

  it('a removed leader hands leadership to the most up-to-date remaining voter (thesis §4.2.2)', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'removeNode', nodeId: 1 }],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    expect(c.node(1).rn.raft.state).toBe('follower');
    const l = c.leader() as NodeId;
    expect([2, 3]).toContain(l);
    expect(c.node(l).rn.status().confState.voters).toEqual([2, 3]);
    c.node(l).rn.propose(enc.encode('without-1'));
    c.stabilize(undefined, false);
    expect(data(c, l === 2 ? 3 : 2)).toEqual(['without-1']);
  });

  it('a removed leader does not wedge a two-voter group whose survivor needs its vote', () => {
    const c = cluster(2);
    elect(c, 1);
    // Entries only the leader has: the survivor could never win the old leader's vote.
    c.isolate(2);
    c.node(1).rn.propose(enc.encode('only-on-1'));
    c.stabilize(undefined, false);
    c.heal();
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'removeNode', nodeId: 1 }],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    tickAll(c, [1, 2], 4 * ELECTION);
    expect(c.leader()).toBe(2);
    expect(c.node(2).rn.status().confState.voters).toEqual([2]);
  });

  it('learners receive the log but never vote or campaign; promotion makes them voters', () => {
    const c = cluster(3);
    elect(c, 1);
    c.add(4, []);
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addLearner', nodeId: 4 }],
      context: new Uint8Array(),
    });
    c.node(1).rn.propose(enc.encode('l'));
    c.stabilize(undefined, false);
    expect(data(c, 4)).toEqual(['l']);
    expect(c.node(4).rn.raft.isLearner).toBe(true);
    tickElection(c, 4);
    expect(c.node(4).rn.raft.state).toBe('follower');
    c.node(1).rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: 4 }],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    expect(c.node(4).rn.raft.isLearner).toBe(false);
    expect(c.node(1).rn.status().confState.voters).toEqual([1, 2, 3, 4]);
  });
});

describe('§7 Log compaction: snapshots', () => {
  it('the leader sends a snapshot to a follower whose next entries are compacted', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.node(1).rn.propose(enc.encode(`s${i}`));
    c.stabilize(undefined, false);
    const leader = c.node(1);
    const applied = leader.rn.raft.raftLog.applied;
    leader.storage.createSnapshot(applied, leader.rn.status().confState, enc.encode('state'));
    leader.storage.compact(applied);
    c.heal();
    c.out.length = 0;
    leader.rn.tick();
    c.stabilize();
    expect(c.out.some((l) => l.includes('MsgSnap'))).toBe(true);
    expect(c.node(3).storage.snapshot().metadata.index).toBe(applied);
    expect(c.node(3).rn.raft.raftLog.committed).toBe(applied);
    leader.rn.propose(enc.encode('after-snap'));
    c.stabilize(undefined, false);
    expect(data(c, 3)).toEqual(['after-snap']);
  });
});

describe('§7 and §6 together: snapshots and membership', () => {
  it('a node added after the latest snapshot installs it and learns of its own addition from later entries', () => {
    const c = cluster(3);
    elect(c, 1);
    for (let i = 0; i < 3; i++) c.node(1).rn.propose(enc.encode(`pre${i}`));
    c.stabilize(undefined, false);
    const leader = c.node(1);
    const snapIndex = leader.rn.raft.raftLog.applied;
    leader.storage.createSnapshot(snapIndex, leader.rn.status().confState, enc.encode('state'));
    c.add(4, []);
    c.isolate(4);
    leader.rn.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: 4 }],
      context: new Uint8Array(),
    });
    c.stabilize(undefined, false);
    // Compact up to the snapshot: node 4 needs the snapshot, which predates (and excludes) it.
    leader.storage.compact(snapIndex);
    c.heal();
    leader.rn.tick();
    c.stabilize(undefined, false);
    expect(c.node(4).storage.snapshot().metadata.confState.voters).toEqual([1, 2, 3]);
    expect(c.node(4).rn.status().confState.voters).toEqual([1, 2, 3, 4]);
    leader.rn.propose(enc.encode('post'));
    c.stabilize(undefined, false);
    expect(data(c, 4)).toEqual(['post']);
  });
});

describe('thesis §6.2 and §9.6: check-quorum and pre-vote', () => {
  it('check-quorum: a leader partitioned from the majority steps down', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(1);
    for (let i = 0; i < 2 * ELECTION; i++) c.node(1).rn.tick();
    expect(c.node(1).rn.raft.state).toBe('follower');
  });

  it('pre-vote: a partitioned node does not inflate its term, and rejoining does not disrupt the leader', () => {
    const c = cluster(3);
    elect(c, 1);
    const term = c.node(1).rn.raft.term;
    c.isolate(3);
    for (let k = 0; k < 5; k++) {
      tickElection(c, 3);
      c.stabilize(undefined, false);
    }
    expect(c.node(3).rn.raft.term).toBe(term);
    c.heal();
    c.node(1).rn.tick();
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(1);
    expect(c.node(1).rn.raft.term).toBe(term);
  });

  it('without pre-vote, a rejoining partitioned node forces a new term', () => {
    const c = cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    const term = c.node(1).rn.raft.term;
    c.isolate(3);
    tickElection(c, 3);
    c.stabilize(undefined, false);
    expect(c.node(3).rn.raft.term).toBe(term + 1);
  });
});

describe('thesis §6.4 ReadIndex: linearizable reads without a log write', () => {
  it('the leader answers a read after a heartbeat round confirms it still leads', () => {
    const c = cluster(3);
    elect(c, 1);
    const before = c.node(1).rn.raft.raftLog.lastIndex();
    c.node(1).rn.readIndex(enc.encode('r1'));
    c.stabilize();
    const lines = c.out.filter((l) => l.includes('ReadState'));
    expect(lines).toEqual([`  ReadState Index:${before} Ctx:"r1"`]);
    expect(c.node(1).rn.raft.raftLog.lastIndex()).toBe(before); // No log write.
  });

  it('a follower forwards the read to the leader and gets the read index back', () => {
    const c = cluster(3);
    elect(c, 1);
    c.out.length = 0;
    c.node(2).rn.readIndex(enc.encode('r2'));
    c.stabilize();
    expect(c.out.some((l) => l.includes('MsgReadIndexResp'))).toBe(true);
    expect(c.out.some((l) => l.includes('ReadState') && l.includes('"r2"'))).toBe(true);
  });

  it('a leader partitioned from the quorum never answers', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(1);
    c.out.length = 0;
    c.node(1).rn.readIndex(enc.encode('r3'));
    c.stabilize();
    expect(c.out.some((l) => l.includes('ReadState'))).toBe(false);
  });

  it('a follower with no leader refuses the read', () => {
    const c = cluster(3);
    expect(() => c.node(2).rn.readIndex(enc.encode('r4'))).toThrow(ProposalDroppedError);
  });
});

describe('thesis §3.10 leadership transfer', () => {
  it('transfers leadership to an up-to-date follower', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.transferLeader(3);
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(3);
  });

  it('catches the transferee up first, and refuses proposals meanwhile', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(3);
    c.node(1).rn.propose(enc.encode('t'));
    c.stabilize(undefined, false);
    c.heal();
    c.node(1).rn.transferLeader(3);
    expect(() => c.node(1).rn.propose(enc.encode('refused'))).toThrow(ProposalDroppedError);
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(3);
    expect(data(c, 3)).toEqual(['t']);
  });

  it('abandons a transfer to an unreachable node after an election timeout', () => {
    const c = cluster(3);
    elect(c, 1);
    c.isolate(3);
    c.node(1).rn.transferLeader(3);
    expect(c.node(1).rn.raft.leadTransferee).toBe(3);
    for (let i = 0; i < ELECTION; i++) c.node(1).rn.tick();
    c.stabilize(undefined, false);
    expect(c.node(1).rn.raft.leadTransferee).toBe(0);
  });
});

describe('a node whose state machine is missing (RawNode.setStateMachineMissing)', () => {
  it('keeps appending, acknowledging and voting, but is handed no committed entry and never campaigns', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('before'));
    c.stabilize(undefined, false);
    const missing = c.node(3);
    missing.rn.setStateMachineMissing(true);
    c.node(1).rn.propose(enc.encode('held'));
    c.stabilize(undefined, false);
    // Appended and committed on node 3, but not handed out.
    expect(missing.rn.raft.raftLog.committed).toBe(c.node(1).rn.raft.raftLog.committed);
    expect(missing.rn.hasReady()).toBe(false);
    expect(data(c, 3)).toEqual(['before']);

    // No campaign: neither on its own (election timeouts), nor asked, nor by a transfer.
    missing.rn.campaign();
    tickElection(c, 3);
    c.stabilize(undefined, false);
    expect(missing.rn.raft.state).toBe('follower');
    c.node(1).rn.transferLeader(3);
    c.stabilize(undefined, false);
    for (let i = 0; i < ELECTION; i++) c.node(1).rn.tick();
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(1);

    // It still votes: with the leader gone, node 2 is elected by node 3's vote.
    c.isolate(1);
    tickAll(c, [2, 3], 4 * ELECTION);
    expect(c.node(2).rn.raft.state).toBe('leader');
    expect(missing.rn.raft.state).toBe('follower');

    // Once the state machine is back, the held entries are handed out in order.
    missing.rn.setStateMachineMissing(false);
    c.stabilize(undefined, false);
    expect(data(c, 3)).toEqual(['before', 'held']);
  });
});

describe('a node with a vote floor (RawNode.setVoteFloor)', () => {
  it('acknowledges, does not campaign, and votes only for a candidate whose log reaches the floor', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('x'));
    c.stabilize(undefined, false);
    const leaderLog = c.node(1).rn.raft.raftLog;
    const floor = { index: leaderLog.lastIndex(), term: leaderLog.lastTerm() };
    // Node 3 holds its votes up to the leader's last entry; node 2 is cut off and misses it.
    const held = c.node(3);
    held.rn.setVoteFloor(floor);
    c.isolate(2);
    c.node(1).rn.propose(enc.encode('y'));
    c.stabilize(undefined, false);
    // It acknowledged: 'y' is committed by nodes 1 and 3 and applied there.
    expect(data(c, 3)).toEqual(['x', 'y']);
    expect(data(c, 2)).toEqual(['x']);

    // No campaign: neither on its own, nor asked, nor by a transfer.
    held.rn.campaign();
    tickElection(c, 3);
    c.stabilize(undefined, false);
    expect(held.rn.raft.state).toBe('follower');
    c.node(1).rn.transferLeader(3);
    c.stabilize(undefined, false);
    for (let i = 0; i < ELECTION; i++) c.node(1).rn.tick();
    c.stabilize(undefined, false);
    expect(c.leader()).toBe(1);

    // Node 2 is behind the floor: without node 1, node 3 does not elect it.
    c.heal();
    c.isolate(1);
    tickAll(c, [2, 3], 4 * ELECTION);
    expect(c.node(2).rn.raft.state).not.toBe('leader');
    expect(held.rn.raft.state).not.toBe('leader');
  });

  it('votes for a candidate whose log reaches the floor (a leader can be elected without it)', () => {
    const c = cluster(3);
    elect(c, 1);
    c.node(1).rn.propose(enc.encode('x'));
    c.stabilize(undefined, false);
    const leaderLog = c.node(1).rn.raft.raftLog;
    const held = c.node(3);
    held.rn.setVoteFloor({ index: leaderLog.lastIndex(), term: leaderLog.lastTerm() });
    c.isolate(1);
    tickAll(c, [2, 3], 4 * ELECTION);
    expect(c.node(2).rn.raft.state).toBe('leader');
    expect(data(c, 2)).toEqual(['x']);
  });
});
