// RawNode is the driver-facing API of the core: feed it ticks, messages and proposals; take a
// Ready; persist, send, apply; advance. It is not thread-safe and has no I/O of its own.

import { assert } from '../stdx/assert.js';
import { encodeConfChange } from './conf-change.js';
import type { LogStorage } from './log-storage.js';
import type { RaftConfig, Status } from './raft.js';
import { Raft } from './raft.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  Ready,
  SoftState,
} from './types.js';
import {
  DRIVER_MESSAGES,
  hardStateEqual,
  isEmptySnapshot,
  LOCAL_MESSAGES,
  message,
  RESPONSE_MESSAGES,
} from './types.js';

/** RawNode wraps Raft with the Ready/advance protocol; see docs/raft.md for the contract. */
export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** inReady is set between ready() and advance(): the driver must finish one Ready at a time. */
  private inReady = false;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    // A bootstrapped node must persist its initial term, so start from the storage's view.
    this.prevHardState = config.storage.initialState().hardState;
  }

  /**
   * setStateMachineMissing(true): the application lost its state machine (Cairn: a damaged
   * engine set aside after the log was compacted) and fetches a snapshot of it from another
   * member. Until it calls setStateMachineMissing(false), with a state machine that holds at least
   * every entry up to the log's applied index, committed entries stay in the log instead of
   * being handed out, and the node does not campaign (no election, pre-vote or leadership
   * transfer): a leader with nothing applied could not serve. It still appends, acknowledges and
   * votes, which depend on its log alone, so it keeps counting toward quorums.
   */
  setStateMachineMissing(missing: boolean): void {
    this.raft.stateMachineMissing = missing;
    this.raft.raftLog.applyHeld = missing;
  }

  /**
   * setVoteFloor: this node's log may lack entries up to (term, index) committed with its
   * acknowledgement; until setVoteFloor(undefined) it does not campaign and votes only for
   * candidates whose log reaches the floor (Raft.voteFloor).
   */
  setVoteFloor(floor: { readonly index: number; readonly term: number } | undefined): void {
    this.raft.voteFloor = floor;
  }

  /** tick advances the logical clock by one tick (the driver decides how long a tick is). */
  tick(): void {
    this.raft.tick();
  }

  /** campaign makes this node start an election now (with pre-vote if configured). */
  campaign(): void {
    this.raft.step(message({ type: 'MsgHup' }));
  }

  /**
   * propose appends data to the log (or forwards it to the leader). It throws
   * ProposalDroppedError. The log keeps the entry until it is compacted away, so it keeps a copy
   * of `data`: the caller's buffer is borrowed (docs/ARCHITECTURE.md, "Who owns a buffer").
   */
  propose(data: Uint8Array): void {
    this.raft.step(
      message({
        type: 'MsgProp',
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: 'normal', data: copyOf(data) }],
      }),
    );
  }

  /** proposeMany appends several entries in one proposal (one append message per follower); copies as propose. */
  proposeMany(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    const entries: Entry[] = data.map((d) => ({ term: 0, index: 0, type: 'normal', data: copyOf(d) }));
    this.raft.step(message({ type: 'MsgProp', from: this.raft.id, entries }));
  }

  /** proposeConfChange proposes a membership change; it takes effect when applied (applyConfChange). */
  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(
      message({
        type: 'MsgProp',
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: 'confChange', data }],
      }),
    );
  }

  /** applyConfChange must be called by the application for every confChange entry it applies. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * step feeds a message received from a peer. Local message types are refused. The message, its
   * entries' data and its snapshot are kept by reference (the log holds them until compacted):
   * the caller hands over buffers it owns, so a transport that decodes into views of a reused
   * receive buffer must copy first (msgpackr, for one, decodes binary as views of its input
   * unless told to copy).
   */
  step(m: Message): void {
    assert(!LOCAL_MESSAGES.has(m.type), `cannot step local message ${m.type}`);
    assert(!DRIVER_MESSAGES.has(m.type), `${m.type} is for the driver, not the core`);
    // Responses from nodes we do not know (for example, removed ones) are ignored.
    if (RESPONSE_MESSAGES.has(m.type) && !this.raft.trk.progress.has(m.from)) return;
    this.raft.step(m);
  }

  /** readIndex requests a linearizable read; the answer arrives as a ReadState with ctx. */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(message({ type: 'MsgReadIndex', context: ctx }));
  }

  /** transferLeader asks the leader to hand leadership to transferee. */
  transferLeader(transferee: NodeId): void {
    this.raft.step(message({ type: 'MsgTransferLeader', from: transferee }));
  }

  /** reportUnreachable tells the leader that a message to id could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: 'MsgUnreachable', from: id }));
  }

  /** reportSnapshot tells the leader whether the snapshot sent to id was installed. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: 'MsgSnapStatus', from: id, reject: !ok }));
  }

  /** hasReady says whether ready() would return anything to do. */
  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) return true;
    const u = r.raftLog.unstable;
    if (u.snapshotToHand() !== undefined) return true;
    if (
      r.msgs.length > 0 ||
      u.offsetInProgress < u.offset + u.entries.length ||
      r.raftLog.hasNextCommittedEnts()
    )
      return true;
    return r.readStates.length > 0;
  }

  /** ready returns the pending work; the driver must handle it and call advance before the next. */
  ready(): Ready {
    assert(!this.inReady, 'ready() called twice without advance()');
    const rd = this.readyNow();
    this.inReady = true;
    return rd;
  }

  /**
   * readyPipelined returns the pending work and accepts it at once, so that the driver may take
   * the next Ready before this one's save is durable (etcd raft's asynchronous storage writes;
   * docs/cluster.md, "The driver"). The driver must, for each such Ready:
   * - hand its entries, hard state and snapshot to the log now, Readys in order, and call
   *   `appended(rd)` once that save is durable, in the same order;
   * - send its messages other than a leader's appends and heartbeats only once every save handed
   *   out so far is durable (votes and acknowledgements claim what is on disk);
   * - apply its committed entries (they count as applied from here on; a committed entry is on a
   *   quorum's disks, so applying it does not wait for this member's save).
   * Entries handed out stay in the unstable log (the core still reads them from there) until
   * `appended` says they are saved; only then does a leader count them toward commit.
   */
  readyPipelined(): Ready {
    assert(!this.inReady, 'readyPipelined() while a ready() awaits advance()');
    const rd = this.readyNow();
    const r = this.raft;
    r.raftLog.unstable.acceptInProgress();
    this.markApplied(rd);
    return rd;
  }

  /** markApplied: the Ready's committed entries (or its snapshot) count as applied. */
  private markApplied(rd: Ready): void {
    const r = this.raft;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      r.appliedTo(lastCommitted.index);
      r.reduceUncommittedSize(rd.committedEntries);
    } else if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
      r.appliedTo(rd.snapshot.metadata.index);
    }
  }

  /** appended: the save of a pipelined Ready is durable (called in the order of the Readys). */
  appended(rd: Ready): void {
    const r = this.raft;
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      r.raftLog.stableTo(lastEntry.index, lastEntry.term);
      r.persisted(lastEntry.index, lastEntry.term);
    }
    if (rd.snapshot !== undefined) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
  }

  private readyNow(): Ready {
    const r = this.raft;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.raftLog.unstable.entriesToHand();
    const snapshot = r.raftLog.unstable.snapshotToHand();
    const rd: Ready = {
      softState: softChanged ? ss : undefined,
      hardState: hardChanged ? hs : undefined,
      readStates: r.readStates,
      entries,
      snapshot,
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: withoutStaleLeaderMessages(r.msgs, hs.term),
      mustSync:
        entries.length > 0 ||
        (hardChanged && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote)),
    };
    // The Ready takes ownership of messages and read states.
    r.msgs = [];
    r.readStates = [];
    if (softChanged) this.prevSoftState = ss;
    if (hardChanged) this.prevHardState = hs;
    return rd;
  }

  /** advance acknowledges that rd was persisted, sent and applied. */
  advance(rd: Ready): void {
    assert(this.inReady, 'advance() without ready()');
    this.inReady = false;
    const r = this.raft;
    this.markApplied(rd);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      r.raftLog.stableTo(lastEntry.index, lastEntry.term);
      r.persisted(lastEntry.index, lastEntry.term);
    }
    if (rd.snapshot !== undefined) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
  }

  /** status reports the node's state (progress only on the leader). */
  status(): Status {
    return this.raft.status();
  }
}

/** LEADER_MESSAGES: what only a leader sends. */
export const LEADER_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  'MsgApp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgTimeoutNow',
]);

/**
 * isStaleLeaderMessage: `m` is a leader's message from a term before `term` (the node's term
 * as the Ready that would carry `m` is taken). A leader that steps down between two Readys (a
 * newer term arrived) may have produced appends for entries the next Ready then overwrites
 * with the new leader's: they were never persisted and never will be. Peers refuse them (an
 * old term), and dropping a message is always safe (found by the cluster driver's SIGSTOP test
 * and by the Raft simulator, seed 7005876, where the harness's persisted-before-send check
 * failed on one).
 */
function isStaleLeaderMessage(m: Message, term: number): boolean {
  return LEADER_MESSAGES.has(m.type) && m.term < term;
}

/**
 * withoutStaleLeaderMessages: what a Ready hands out of `msgs`, the node now at `term`: the
 * deposed leader's messages dropped here, once for every driver (the cluster driver filtered
 * them itself before; the core's simulator did not), as `dropStaleAcks` drops acknowledgements
 * of overwritten entries. The same array when there are none (the usual case).
 */
function withoutStaleLeaderMessages(msgs: Message[], term: number): Message[] {
  return msgs.some((m) => isStaleLeaderMessage(m, term))
    ? msgs.filter((m) => !isStaleLeaderMessage(m, term))
    : msgs;
}

/**
 * checkPersistedBeforeSend asserts that a message about to be sent only claims what storage
 * has made durable: the sender's term, its vote (for a granted vote) and the entries it
 * acknowledges. Drivers call it after persisting a Ready and before sending its messages.
 */
export function checkPersistedBeforeSend(m: Message, storage: LogStorage): void {
  const { hardState } = storage.initialState();
  if (m.type === 'MsgVoteResp' && !m.reject) {
    // The node may have moved to a later term in the same Ready; then it can never vote in
    // m.term again, which is what persisting the vote protects.
    assert(hardState.term >= m.term, `vote for term ${m.term} sent before the term was persisted`);
    if (hardState.term === m.term) {
      assert(hardState.vote === m.to, `vote for ${m.to} sent before the vote was persisted`);
    }
    return;
  }
  if (m.type === 'MsgPreVote' || m.type === 'MsgPreVoteResp') return; // Pre-votes carry a future term.
  if (m.type === 'MsgProp' || m.type === 'MsgReadIndex' || m.type === 'MsgTransferLeader') return;
  assert(m.term <= hardState.term, `${m.type} at term ${m.term} sent before the term was persisted`);
  if (m.type === 'MsgAppResp' && !m.reject) {
    const snapIndex = storage.snapshot().metadata.index;
    assert(
      m.index <= storage.lastIndex() || m.index <= snapIndex,
      `MsgAppResp acknowledges ${m.index} beyond the persisted last index ${storage.lastIndex()}`,
    );
  }
  if (m.type === 'MsgApp' && m.entries.length > 0) {
    const last = m.entries[m.entries.length - 1] as Entry;
    assert(last.index <= storage.lastIndex(), `MsgApp sends ${last.index} beyond our persisted log`);
  }
}

/** copyOf: a Uint8Array of its own with the bytes of `data` (the core stays free of Buffer). */
function copyOf(data: Uint8Array): Uint8Array {
  return new Uint8Array(data);
}
