// Raft is the consensus state machine: pure, synchronous and deterministic. It consumes
// ticks and messages and produces messages, log changes and commits; RawNode packages those
// into Ready batches. Structure and behaviour follow etcd-io/raft (raft.go); section numbers
// in comments refer to the Raft paper (Ongaro & Ousterhout 2014) or Ongaro's thesis.

import { assert } from '../stdx/assert.js';
import { Prng } from '../stdx/prng.js';
import type { ChangeContext } from './conf-change.js';
import {
  applyConfChange,
  ConfChangeError,
  decodeConfChange,
  encodeConfChange,
  restoreConfState,
} from './conf-change.js';
import { NO_LIMIT, RaftLog } from './log.js';
import type { LogStorage } from './log-storage.js';
import { Inflights, Progress } from './progress.js';
import { jointVoteResult } from './quorum.js';
import { ReadOnly } from './read-only.js';
import { confStateOf, isJoint, ProgressTracker } from './tracker.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
} from './types.js';
import { EMPTY_BYTES, entriesSize, isEmptyHardState, isEmptySnapshot, message, NONE } from './types.js';

/** CAMPAIGN_TRANSFER marks vote requests caused by a leader transfer; they bypass the leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode('CampaignTransfer');

/** Config holds the parameters of one Raft node. Every limit is explicit; see defaultConfig. */
export interface RaftConfig {
  /** id is this node's identity; never NONE. */
  readonly id: NodeId;
  /** electionTick is the number of ticks without hearing from a leader before campaigning. */
  readonly electionTick: number;
  /** heartbeatTick is the number of ticks between leader heartbeats; must be < electionTick. */
  readonly heartbeatTick: number;
  readonly storage: LogStorage;
  /** applied is the last index the application applied before a restart; 0 on first start. */
  readonly applied: number;
  /** maxSizePerMsg caps the bytes of entries in one MsgApp (at least one entry is always sent). */
  readonly maxSizePerMsg: number;
  /** maxCommittedSizePerReady caps the bytes of committedEntries in one Ready. */
  readonly maxCommittedSizePerReady: number;
  /** maxUncommittedEntriesSize caps the bytes a leader holds uncommitted; proposals beyond are dropped. */
  readonly maxUncommittedEntriesSize: number;
  /** maxInflightMsgs caps unacknowledged MsgApp per follower in replicate state. */
  readonly maxInflightMsgs: number;
  /** maxInflightBytes caps unacknowledged entry bytes per follower. */
  readonly maxInflightBytes: number;
  /** checkQuorum makes a leader step down when it has not heard from a quorum for an election timeout. */
  readonly checkQuorum: boolean;
  /** preVote runs a pre-election so a partitioned node cannot disrupt the cluster by bumping terms (§9.6). */
  readonly preVote: boolean;
  /** disableProposalForwarding makes followers drop proposals instead of forwarding them to the leader. */
  readonly disableProposalForwarding: boolean;
  /** randomSeed seeds the randomized election timeout, so runs replay exactly. */
  readonly randomSeed: number;
  /**
   * peers bootstraps a brand-new group: when the storage is empty, the node starts with a log
   * of addNode entries for these voters. Empty for restarts and for nodes joining later.
   */
  readonly peers: readonly NodeId[];
}

/** DEFAULT_* are sensible limits; tests and the simulator override what they need. */
export const DEFAULT_ELECTION_TICK = 10;
export const DEFAULT_HEARTBEAT_TICK = 1;
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
export const DEFAULT_MAX_INFLIGHT_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_UNCOMMITTED_SIZE = 64 * 1024 * 1024;
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY = 64 * 1024 * 1024;

/** defaultConfig returns a config with the DEFAULT_* limits, pre-vote and check-quorum on. */
export function defaultConfig(
  id: NodeId,
  storage: LogStorage,
  overrides: Partial<RaftConfig> = {},
): RaftConfig {
  return {
    id,
    storage,
    electionTick: DEFAULT_ELECTION_TICK,
    heartbeatTick: DEFAULT_HEARTBEAT_TICK,
    applied: 0,
    maxSizePerMsg: DEFAULT_MAX_SIZE_PER_MSG,
    maxCommittedSizePerReady: DEFAULT_MAX_COMMITTED_SIZE_PER_READY,
    maxUncommittedEntriesSize: DEFAULT_MAX_UNCOMMITTED_SIZE,
    maxInflightMsgs: DEFAULT_MAX_INFLIGHT_MSGS,
    maxInflightBytes: DEFAULT_MAX_INFLIGHT_BYTES,
    checkQuorum: true,
    preVote: true,
    disableProposalForwarding: false,
    randomSeed: id,
    peers: [],
    ...overrides,
  };
}

function validateConfig(c: RaftConfig): void {
  assert(c.id !== NONE, 'cannot use none as id');
  assert(c.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
  assert(c.electionTick > c.heartbeatTick, 'election tick must be greater than heartbeat tick');
  assert(c.maxInflightMsgs > 0, 'max inflight messages must be greater than 0');
  assert(c.maxInflightBytes >= c.maxSizePerMsg, 'max inflight bytes must be >= max message size');
  assert(c.maxSizePerMsg > 0 && c.maxCommittedSizePerReady > 0, 'size limits must be positive');
}

type CampaignType = 'preElection' | 'election' | 'transfer';

/** ProposalDroppedError reports a proposal that could not be accepted (no leader, transfer, limits). */
export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
}

/** Status is a snapshot of a node's state for tests, checkers and operators. */
export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  /** progress is empty unless the node is leader. */
  readonly progress: ReadonlyMap<NodeId, { match: number; next: number; state: string }>;
  readonly confState: ConfState;
  /** leadTransferee is NONE unless a leader transfer is in progress. */
  readonly leadTransferee: NodeId;
}

/** Raft is one node's consensus state machine; drive it through RawNode. */
export class Raft {
  readonly id: NodeId;
  /** term is the current term; it never decreases. */
  term = 0;
  /** vote is the node voted for in term; NONE if none. At most one vote per term. */
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType = 'follower';
  /** isLearner is set while this node is a learner in the active configuration. */
  isLearner = false;
  /** msgs are outgoing messages, handed to the driver through Ready. */
  msgs: Message[] = [];
  /** lead is the known leader; NONE if unknown. */
  lead: NodeId = NONE;
  /** leadTransferee is the target of a leader transfer in progress; NONE if none. */
  leadTransferee: NodeId = NONE;
  /**
   * pendingConfIndex is the index of the latest conf change proposed by this leader. A new
   * one may only be proposed once the log is applied past it (one change in flight).
   */
  pendingConfIndex = 0;
  /** uncommittedSize is the bytes of entries this leader appended but has not seen applied. */
  uncommittedSize = 0;
  readonly readOnly = new ReadOnly();
  /** pendingReadIndexMessages wait for the leader to commit an entry of its term (§6.4 step 1). */
  pendingReadIndexMessages: Message[] = [];
  /**
   * pendingTransferCampaign is set when a MsgTimeoutNow arrived while a committed conf change
   * was not yet applied; the campaign starts once it is. False otherwise.
   */
  pendingTransferCampaign = false;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** randomizedElectionTimeout is in [electionTimeout, 2*electionTimeout), reset at each term change. */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  private readonly prng: Prng;

  constructor(c: RaftConfig) {
    validateConfig(c);
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    this.trk = new ProgressTracker(c.maxInflightMsgs, c.maxInflightBytes);
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize;
    this.prng = new Prng(c.randomSeed);

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfState(confState, this.changeContext());
    this.trk.config = restored.cfg;
    this.trk.progress = restored.prs;
    this.isLearner = this.trk.progress.get(this.id)?.isLearner ?? false;
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);

    if (c.peers.length > 0) this.bootstrap(c.peers);
  }

  /**
   * bootstrap starts a brand-new group the way etcd does: a committed log of one addNode entry
   * per peer at term 1. The application applies them like any conf change (idempotently).
   */
  private bootstrap(peers: readonly NodeId[]): void {
    assert(this.raftLog.lastIndex() === 0, 'bootstrap of a non-empty log');
    assert(this.term === 0, 'bootstrap after a term was persisted');
    this.becomeFollower(1, NONE);
    const ents: Entry[] = peers.map((id, i) => ({
      term: 1,
      index: i + 1,
      type: 'confChange',
      data: encodeConfChange({
        transition: 'auto',
        changes: [{ type: 'addNode', nodeId: id }],
        context: EMPTY_BYTES,
      }),
    }));
    this.raftLog.append(ents);
    // The entries are committed by construction: every member is bootstrapped with them.
    this.raftLog.committed = ents.length;
    for (const id of peers) {
      this.applyConfChange({
        transition: 'auto',
        changes: [{ type: 'addNode', nodeId: id }],
        context: EMPTY_BYTES,
      });
    }
  }

  private changeContext(): ChangeContext {
    return {
      lastIndex: this.raftLog.lastIndex(),
      maxInflight: this.trk.maxInflight,
      maxInflightBytes: this.trk.maxInflightBytes,
    };
  }

  /** hardState is the state that must be persisted (Figure 2). */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** softState is the volatile state reported in Ready. */
  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  private loadState(hs: HardState): void {
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      `hard state commit ${hs.commit} out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /**
   * promotable says whether this node may campaign: it is a voter of the active config, its
   * application has a state machine (a leader must apply what it commits and serve reads), and it
   * does not hold its votes.
   */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return (
      pr !== undefined &&
      !pr.isLearner &&
      !this.raftLog.unstable.snapshot &&
      !this.stateMachineMissing &&
      this.voteFloor === undefined
    );
  }

  /**
   * voteFloor: the application knows this node's log may lack committed entries up to `index`
   * (whose term is `term`) that were committed with an acknowledgement of this node (Cairn: a
   * member restarted on an empty directory; docs/cluster.md, "The window before the mark"). Until
   * it is cleared the node does not campaign (its own log may be too short to lead), and it grants
   * a vote or pre-vote only to a candidate whose log is at least as up to date as the floor as well
   * as its own: a log whose last entry is (term, index) or later holds every entry committed up to
   * it (Leader Completeness and Log Matching), so such a candidate misses nothing this node once
   * acknowledged before the floor. It still appends and acknowledges what it receives.
   */
  voteFloor: { readonly index: number; readonly term: number } | undefined = undefined;

  /** aboveVoteFloor: a candidate's log (lasti, term) is at least as up to date as the vote floor. */
  private aboveVoteFloor(lasti: number, term: number): boolean {
    const f = this.voteFloor;
    return f === undefined || term > f.term || (term === f.term && lasti >= f.index);
  }

  /**
   * stateMachineMissing: the application lost its state machine and is fetching a copy of it
   * (RawNode.setStateMachineMissing). The node keeps its log and hard state and still appends,
   * acknowledges and votes (those depend on the log alone), but it neither campaigns nor is
   * handed committed entries until the application has a state machine again.
   */
  stateMachineMissing = false;

  // ---------------------------------------------------------------------------------------
  // Sending.

  private send(fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    let m = message({ ...fields, from: this.id });
    const t = m.type;
    if (t === 'MsgVote' || t === 'MsgVoteResp' || t === 'MsgPreVote' || t === 'MsgPreVoteResp') {
      // Vote messages carry the term being voted for, which may be ahead of ours (pre-vote).
      assert(m.term !== 0, `term should be set when sending ${t}`);
    } else {
      assert(m.term === 0, `term should not be set when sending ${t} (got ${m.term})`);
      // Proposals and read requests are forwarded as if local, so they carry no term.
      if (t !== 'MsgProp' && t !== 'MsgReadIndex') m = { ...m, term: this.term };
    }
    this.msgs.push(m);
  }

  /** forward re-sends a local request to the leader. */
  private forward(m: Message, to: NodeId): void {
    this.msgs.push({ ...m, to, from: m.from === NONE ? this.id : m.from, term: 0 });
  }

  /** maybeSendAppend sends entries (or a snapshot) to a follower if its flow allows it. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    if (prevTerm === undefined) {
      // The entries the follower needs are compacted: send a snapshot (§7).
      if (!pr.recentActive) return false; // Do not ship a snapshot to a follower that is probably down.
      const snap = this.raftLog.snapshot();
      assert(!isEmptySnapshot(snap), 'need non-empty snapshot');
      this.send({ type: 'MsgSnap', to, snapshot: snap });
      pr.becomeSnapshot(snap.metadata.index);
      return true;
    }
    // A throttled follower (full window) only gets empty appends: if every message in the
    // window was lost, an empty append still draws an ack or a rejection that clears it.
    const throttled = pr.state === 'replicate' && pr.inflights.full();
    const ents = throttled ? [] : this.raftLog.entries(pr.next, this.maxMsgSize);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: 'MsgApp',
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.raftLog.committed,
    });
    pr.sentEntries(ents.length, entriesSize(ents));
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array): void {
    const pr = this.trk.progress.get(to) as Progress;
    // The follower may not have all committed entries; never tell it to commit past its match.
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send({ type: 'MsgHeartbeat', to, commit, context });
  }

  private bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(context?: Uint8Array): void {
    const ctx = context ?? this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES;
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'MsgTimeoutNow', to });
    // A removed leader is done once its successor has the whole log: the successor never
    // needs this node's vote beyond what its own log already earns it.
    if (this.state === 'leader' && this.isRemoved()) this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------------------------------
  // Role changes.

  private reset(term: number): void {
    assert(term >= this.term, `term went back from ${this.term} to ${term}`);
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      const fresh = new Progress(
        lastIndex + 1,
        new Inflights(this.trk.maxInflight, this.trk.maxInflightBytes),
        pr.isLearner,
      );
      // Only what is saved counts as this node's own acknowledgement (see persisted).
      if (id === this.id) fresh.match = this.persistedLastIndex();
      this.trk.progress.set(id, fresh);
    });
    this.pendingConfIndex = 0;
    this.pendingTransferCampaign = false;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.prng.int(this.electionTimeout);
  }

  /** becomeFollower moves to term (never backwards) following lead (NONE if unknown). */
  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
  }

  /** becomeCandidate starts a new term and votes for itself. */
  becomeCandidate(): void {
    assert(this.state !== 'leader', 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
  }

  /** becomePreCandidate starts a pre-election without touching term or vote. */
  becomePreCandidate(): void {
    assert(this.state !== 'leader', 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither term nor vote: that is the point of pre-vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = 'preCandidate';
  }

  /** becomeLeader takes over the current term and appends the empty entry of §5.4.2. */
  becomeLeader(): void {
    assert(this.state !== 'follower', 'invalid transition [follower -> leader]');
    assert(this.vote === this.id, 'a leader must have voted for itself');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    assert(self !== undefined, 'leader not in its own configuration');
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively treat every unapplied entry as a possible conf change (§4.1 of the thesis:
    // one change at a time); the next change waits until these are applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term commits the entries of earlier terms (§5.4.2, §8).
    const ok = this.appendEntry([{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }]);
    assert(ok, 'empty entry was dropped');
  }

  // ---------------------------------------------------------------------------------------
  // Ticks.

  /** tick advances the election or heartbeat clock by one tick. */
  tick(): void {
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(message({ type: 'MsgHup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: 'MsgCheckQuorum', from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned; a removed
      // leader tries again (possibly with another successor) instead.
      if (this.state === 'leader' && this.leadTransferee !== NONE) {
        this.abortLeaderTransfer();
        if (this.isRemoved()) this.transferToSuccessor();
      }
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'MsgBeat', from: this.id }));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Elections.

  private hup(t: CampaignType): void {
    if (this.state === 'leader') return;
    if (!this.promotable()) return;
    // A conf change that is committed but not applied could change who may vote: wait (etcd).
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    if (lo > this.raftLog.committed) return false;
    const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, NO_LIMIT);
    return ents.some((e) => e.type === 'confChange');
  }

  /** campaign starts a (pre-)election: vote for ourselves and ask every other voter. */
  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteMsg = 'MsgPreVote';
      term = this.term + 1; // Pre-votes ask about the term we would campaign in.
    } else {
      this.becomeCandidate();
      voteMsg = 'MsgVote';
      term = this.term;
    }
    const ids = this.trk.voterIds();
    for (const id of ids) {
      if (id !== this.id) continue;
      const result = this.poll(id, true);
      if (result === 'won') {
        // Single-voter configuration: win at once.
        if (t === 'preElection') this.campaign('election');
        else this.becomeLeader();
        return;
      }
    }
    for (const id of ids) {
      if (id === this.id) continue;
      this.send({
        type: voteMsg,
        to: id,
        term,
        index: this.raftLog.lastIndex(),
        logTerm: this.raftLog.lastTerm(),
        context: t === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY_BYTES,
      });
    }
  }

  private poll(id: NodeId, granted: boolean): 'pending' | 'won' | 'lost' {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------------------------------
  // Step: the single entry point for messages.

  /** step processes one message. It throws ProposalDroppedError if a proposal cannot be accepted. */
  step(m: Message): void {
    const termBefore = this.term;
    const commitBefore = this.raftLog.committed;
    this.stepInner(m);
    // Invariants: terms never go back, committed never goes back, one vote per term.
    assert(this.term >= termBefore, 'term went back');
    assert(this.raftLog.committed >= commitBefore, 'committed went back');
    assert(this.raftLog.committed <= this.raftLog.lastIndex(), 'committed beyond last index');
    assert(this.state !== 'leader' || this.lead === this.id, 'leader does not know it leads');
  }

  private stepInner(m: Message): void {
    if (m.term === 0) {
      // Local message.
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = bytesEq(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // A node that heard from a leader within the minimum election timeout ignores vote
        // requests (§4.2.3 of the thesis): this stops a removed or partitioned node disrupting.
        if (!force && inLease) return;
      }
      if (m.type === 'MsgPreVote') {
        // Never change our term in response to a pre-vote.
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // A granted pre-vote carries the future term; we bump when we win the pre-election.
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A stale leader (for example, after a partition healed) would otherwise never learn
        // of the new term, since with check-quorum/pre-vote we ignore its messages; tell it.
        this.send({ type: 'MsgAppResp', to: m.from });
      } else if (m.type === 'MsgPreVote') {
        this.send({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(this.preVote ? 'preElection' : 'election');
        return;
      case 'MsgVote':
      case 'MsgPreVote': {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'MsgPreVote' && m.term > this.term);
        if (
          canVote &&
          this.raftLog.isUpToDate(m.index, m.logTerm) &&
          this.aboveVoteFloor(m.index, m.logTerm)
        ) {
          const respType = m.type === 'MsgVote' ? 'MsgVoteResp' : 'MsgPreVoteResp';
          // The response carries the candidate's term: for pre-votes we stay in our own term.
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === 'MsgVote') {
            assert(this.vote === NONE || this.vote === m.from, `second vote in term ${this.term}`);
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          const respType = m.type === 'MsgVote' ? 'MsgVoteResp' : 'MsgPreVoteResp';
          this.send({ type: respType, to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        switch (this.state) {
          case 'leader':
            this.stepLeader(m);
            return;
          case 'candidate':
          case 'preCandidate':
            this.stepCandidate(m);
            return;
          case 'follower':
            this.stepFollower(m);
            return;
        }
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return;
      case 'MsgCheckQuorum':
        if (!this.trk.quorumActive()) {
          // Partitioned from a quorum: step down so clients go elsewhere (§6.2 of the thesis).
          this.becomeFollower(this.term, NONE);
        }
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case 'MsgProp': {
        assert(m.entries.length > 0, 'stepped empty MsgProp');
        if (!this.trk.progress.has(this.id)) throw new ProposalDroppedError('leader was removed');
        if (this.leadTransferee !== NONE) throw new ProposalDroppedError('leader transfer in progress');
        const ents = m.entries.map((e) => this.vetConfChange(e));
        if (!this.appendEntry(ents)) throw new ProposalDroppedError('uncommitted size limit');
        this.bcastAppend();
        return;
      }
      case 'MsgReadIndex': {
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // §6.4 step 1: the leader must have committed an entry of its term to know the commit index.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndex(m);
        return;
      }
      default:
        break;
    }

    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return; // Not (or no longer) a member.
    switch (m.type) {
      case 'MsgAppResp': {
        pr.recentActive = true;
        if (m.reject) {
          // Fast log back-up: skip every entry of the conflicting term at once, using the
          // follower's (rejectHint, logTerm) and our own log (findConflictByTerm).
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) {
            this.releasePendingReadIndexMessages();
            this.bcastAppend();
          } else if (oldPaused) {
            this.sendAppend(m.from);
          }
          // Fill the window: send as many appends as flow control allows.
          while (this.maybeSendAppend(m.from, false)) {
            /* keep sending */
          }
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.sendTimeoutNow(m.from);
          }
        }
        return;
      }
      case 'MsgHeartbeatResp': {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        if (pr.match < this.raftLog.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === undefined) return;
        const votes = new Map<NodeId, boolean>();
        for (const id of acks) votes.set(id, true);
        if (jointVoteResult(this.trk.config.voters, votes) !== 'won') return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case 'MsgSnapStatus': {
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0;
        // Probe from the snapshot (or from match on failure), after the next heartbeat response.
        pr.becomeProbe();
        pr.msgAppFlowPaused = true;
        return;
      }
      case 'MsgUnreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      case 'MsgTransferLeader': {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        // The transfer must finish within an election timeout (§3.10 of the thesis).
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
      default:
        return;
    }
  }

  /** vetConfChange replaces a conf change that may not be proposed now with an empty entry. */
  private vetConfChange(e: Entry): Entry {
    if (e.type !== 'confChange') return e;
    let refused = '';
    if (this.pendingConfIndex > this.raftLog.applied) {
      refused = 'a previous conf change is not yet applied';
    } else {
      try {
        const cc = decodeConfChange(e.data);
        applyConfChange(this.trk.config, this.trk.progress, this.changeContext(), cc);
      } catch (err) {
        if (!(err instanceof ConfChangeError)) throw err;
        refused = err.message;
      }
    }
    if (refused !== '') return { term: 0, index: 0, type: 'normal', data: EMPTY_BYTES };
    this.pendingConfIndex = this.raftLog.lastIndex() + 1;
    return e;
  }

  private stepCandidate(m: Message): void {
    const myVoteResp: MessageType = this.state === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        throw new ProposalDroppedError('no leader');
      case 'MsgApp':
        this.becomeFollower(m.term, m.from); // Always m.term === this.term here.
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'MsgTimeoutNow':
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const result = this.poll(m.from, !m.reject);
    if (result === 'won') {
      if (this.state === 'preCandidate') {
        this.campaign('election');
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === 'lost') {
      // A pre-candidate that lost stays in its term; a candidate too (it already bumped).
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
        if (this.lead === NONE) throw new ProposalDroppedError('no leader');
        if (this.disableProposalForwarding) throw new ProposalDroppedError('proposal forwarding disabled');
        this.forward(m, this.lead);
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTransferLeader':
        if (this.lead === NONE) return;
        this.forward(m, this.lead);
        return;
      case 'MsgTimeoutNow':
        // Leadership transfers never use pre-vote: the old leader asked us to campaign. If a
        // committed conf change is still unapplied, campaign as soon as it is applied.
        if (this.hasUnappliedConfChanges()) this.pendingTransferCampaign = true;
        else this.hup('transfer');
        return;
      case 'MsgReadIndex':
        if (this.lead === NONE) throw new ProposalDroppedError('no leader for read index');
        this.forward(m, this.lead);
        return;
      case 'MsgReadIndexResp':
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Followers' handlers.

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed });
      return;
    }
    if (this.raftLog.matchTerm(m.index, m.logTerm)) {
      const ci = this.raftLog.findConflict(m.entries);
      if (ci !== 0 && ci <= this.raftLog.lastIndex()) this.dropStaleAcks(ci);
    }
    const mlast = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (mlast !== undefined) {
      this.send({ type: 'MsgAppResp', to: m.from, index: mlast });
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm. The leader
    // then skips every entry of a conflicting term in one round trip.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send({
      type: 'MsgAppResp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  /**
   * dropStaleAcks removes unsent acknowledgements of entries at or after index, which is about
   * to be overwritten: they would claim entries this node will no longer have once the Ready is
   * persisted. Dropping a message is always safe (the network may drop it too).
   */
  private dropStaleAcks(index: number): void {
    this.msgs = this.msgs.filter((m) => !(m.type === 'MsgAppResp' && !m.reject && m.index >= index));
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send({ type: 'MsgHeartbeatResp', to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    assert(snap !== undefined, 'MsgSnap without snapshot');
    if (this.restore(snap)) {
      this.send({ type: 'MsgAppResp', to: m.from, index: this.raftLog.lastIndex() });
    } else {
      this.send({ type: 'MsgAppResp', to: m.from, index: this.raftLog.committed });
    }
  }

  /** restore installs a snapshot from the leader; it returns false if the snapshot is not useful. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    assert(this.state === 'follower', 'restore while not a follower');
    const cs = s.metadata.confState;
    // The snapshot's configuration may not include us yet: a node added after the snapshot was
    // taken learns of its own addition from the entries that follow. Until then it is simply not
    // promotable, so accepting the snapshot is safe (etcd refuses it, which can strand the node
    // until the leader happens to take a newer snapshot).
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the snapshot's last entry: fast-forward commit instead.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.dropStaleAcks(s.metadata.index + 1);
    this.raftLog.restore(s);
    const restored = restoreConfState(cs, this.changeContext());
    this.trk.config = restored.cfg;
    this.trk.progress = restored.prs;
    const pr = restored.prs.get(this.id);
    if (pr !== undefined) pr.maybeUpdate(pr.next - 1);
    this.isLearner = pr?.isLearner ?? false;
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Leader's log handling.

  /** appendEntry assigns term and index to es and appends them; false if the size limit drops them. */
  private appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    const ents: Entry[] = es.map((e, i) => ({
      term: this.term,
      index: li + 1 + i,
      type: e.type,
      data: e.data,
    }));
    const size = entriesSize(ents.filter((e) => e.data.length > 0));
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.maxUncommittedSize)
      return false;
    this.uncommittedSize += size;
    this.raftLog.append(ents);
    // The leader counts its own entries toward commit only once they are saved (persisted,
    // below), not when appended: its appends may then leave before its own fsync (thesis
    // §10.2.1) without carrying a commit index that a crash of this disk could take back.
    return true;
  }

  /**
   * persisted: the driver saved the log up to (index, term). A leader acknowledges its own
   * entries here, as it would a follower's MsgAppResp: commit may advance, and followers hear.
   */
  persisted(index: number, term: number): void {
    if (this.state !== 'leader' || !this.raftLog.matchTerm(index, term)) return;
    const pr = this.trk.progress.get(this.id);
    if (pr === undefined || !pr.maybeUpdate(index)) return;
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  /** persistedLastIndex: the last index of the log that is saved (not in the unstable tail). */
  private persistedLastIndex(): number {
    const unstable = this.raftLog.unstable;
    return unstable.entries.length > 0 ? unstable.offset - 1 : this.raftLog.lastIndex();
  }

  /** maybeCommit advances commit to the quorum's match, only for entries of this term (§5.4.2). */
  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndex(m);
  }

  private sendReadIndex(m: Message): void {
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat(m.context);
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.send({ type: 'MsgReadIndexResp', to: req.from, index: readIndex, context: req.context });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** reduceUncommittedSize is called when entries were applied. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSize === 0) return;
    const size = entriesSize(ents.filter((e) => e.data.length > 0));
    this.uncommittedSize = Math.max(0, this.uncommittedSize - size);
  }

  // ---------------------------------------------------------------------------------------
  // Membership.

  /**
   * applyConfChange switches to the configuration after cc; the application calls it when it
   * applies a confChange entry. It returns the new ConfState to store with snapshots.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applyConfChange(this.trk.config, this.trk.progress, this.changeContext(), cc);
    this.trk.config = next.cfg;
    this.trk.progress = next.prs;
    const pr = next.prs.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if ((pr === undefined || this.isLearner) && this.state === 'leader') {
      // Removed or demoted. Stepping down at once can wedge the group: we may hold entries the
      // others lack, and those still in the old (or joint) configuration may need our vote,
      // which our longer log would refuse them. So keep leading (without counting ourselves)
      // and hand leadership to the most up-to-date voter, as the thesis suggests (§4.2.2, §3.10).
      this.transferToSuccessor();
      return confStateOf(next.cfg);
    }
    if (this.state !== 'leader' || next.cfg.voters.incoming.size === 0) return confStateOf(next.cfg);
    if (this.maybeCommit()) {
      // The quorum changed and commit advanced: tell everyone.
      this.bcastAppend();
    } else {
      // New members need their first appends.
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    return confStateOf(next.cfg);
  }

  /** isRemoved says whether this node is neither a voter nor in the configuration at all. */
  private isRemoved(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr === undefined || pr.isLearner;
  }

  /**
   * transferToSuccessor starts a leader transfer to the voter with the highest match (lowest id
   * on ties); with no other voter left it steps down.
   */
  private transferToSuccessor(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.trk.voterIds()) {
      const pr = this.trk.progress.get(id);
      if (id === this.id || pr === undefined) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best === NONE) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    this.electionElapsed = 0;
    this.leadTransferee = best;
    if (bestMatch === this.raftLog.lastIndex()) this.sendTimeoutNow(best);
    else this.sendAppend(best);
  }

  /** appliedTo records that the application applied up to index; a leader may then leave a joint config. */
  appliedTo(index: number): void {
    this.raftLog.appliedTo(index);
    if (this.pendingTransferCampaign && this.state === 'follower' && !this.hasUnappliedConfChanges()) {
      this.pendingTransferCampaign = false;
      this.hup('transfer');
    }
    if (
      this.state === 'leader' &&
      this.trk.config.autoLeave &&
      isJoint(this.trk.config) &&
      index >= this.pendingConfIndex
    ) {
      // Leave the joint configuration automatically once entering it has been applied.
      const leave: Entry = {
        term: 0,
        index: 0,
        type: 'confChange',
        data: encodeConfChange({ transition: 'auto', changes: [], context: EMPTY_BYTES }),
      };
      if (this.appendEntry([leave])) {
        this.pendingConfIndex = this.raftLog.lastIndex();
        this.bcastAppend();
      }
    }
  }

  /** status reports the node's state; progress is filled in on the leader only. */
  status(): Status {
    const progress = new Map<NodeId, { match: number; next: number; state: string }>();
    if (this.state === 'leader') {
      this.trk.visit((id, pr) => progress.set(id, { match: pr.match, next: pr.next, state: pr.state }));
    }
    return {
      id: this.id,
      hardState: this.hardState(),
      softState: this.softState(),
      applied: this.raftLog.applied,
      lastIndex: this.raftLog.lastIndex(),
      progress,
      confState: confStateOf(this.trk.config),
      leadTransferee: this.leadTransferee,
    };
  }
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
