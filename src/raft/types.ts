// The vocabulary of the Raft core: entries, messages, persistent and volatile state, snapshots,
// configurations and the Ready batch. Modelled on etcd-io/raft's raftpb, with payloads as bytes.

/** NodeId identifies a member of a Raft group. NONE (0) means "no node". */
export type NodeId = number;

/** NONE is the NodeId that means "nobody" (no leader known, no vote cast). */
export const NONE: NodeId = 0;

/** EntryType says how an entry's data is interpreted when it is applied. */
export type EntryType = 'normal' | 'confChange';

/**
 * Entry is one record of the replicated log. Data is empty for the no-op entry a new leader
 * appends to commit entries of earlier terms (Raft §5.4.2) and for empty proposals.
 */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** MessageType lists every message the core sends, receives or uses internally (local messages). */
export type MessageType =
  | 'MsgHup' // local: start an election (campaign).
  | 'MsgBeat' // local: the leader should broadcast heartbeats.
  | 'MsgProp' // local or forwarded: propose entries.
  | 'MsgApp' // leader -> follower: append entries.
  | 'MsgAppResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgPreVote'
  | 'MsgPreVoteResp'
  | 'MsgSnap' // leader -> follower: install snapshot.
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgUnreachable' // local: the transport could not reach a peer.
  | 'MsgSnapStatus' // local: the transport reports a snapshot delivery result.
  | 'MsgCheckQuorum' // local: the leader checks it heard from a quorum.
  | 'MsgTransferLeader' // local or forwarded: transfer leadership to message.from.
  | 'MsgTimeoutNow' // leader -> transferee: campaign now, skipping the election timeout.
  | 'MsgReadIndex' // local or forwarded: linearizable read request.
  | 'MsgReadIndexResp'
  // driver -> driver: a member whose state machine is missing asks for a snapshot of it at or
  // past `index` (the reply is a MsgSnap beside the Raft protocol). Never stepped into the core.
  | 'MsgSnapRequest';

/** LOCAL_MESSAGES never travel on the network; the core creates or consumes them in-process. */
export const LOCAL_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  'MsgHup',
  'MsgBeat',
  'MsgUnreachable',
  'MsgSnapStatus',
  'MsgCheckQuorum',
]);

/**
 * DRIVER_MESSAGES travel between members but are handled by the driver around the core, never
 * stepped into it (RawNode.step refuses them).
 */
export const DRIVER_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>(['MsgSnapRequest']);

/** RESPONSE_MESSAGES are answers to a request; they never move a node to a higher term on their own. */
export const RESPONSE_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  'MsgAppResp',
  'MsgVoteResp',
  'MsgPreVoteResp',
  'MsgHeartbeatResp',
  'MsgReadIndexResp',
]);

/**
 * Message is the unit of communication between nodes, and of local input to the core.
 * Fields a message type does not use are zero or empty: entries is empty except on MsgApp and
 * MsgProp; snapshot is undefined except on MsgSnap; context is empty except on reads, heartbeats
 * carrying a read and campaigns caused by a leader transfer.
 */
export interface Message {
  readonly type: MessageType;
  /** to is the recipient; NONE for local messages. */
  readonly to: NodeId;
  /** from is the sender; NONE for local proposals. */
  readonly from: NodeId;
  /** term is the sender's term; 0 for local messages and proposals. */
  readonly term: number;
  /** logTerm is the term of the entry at index (MsgApp), or of the candidate's last entry (votes). */
  readonly logTerm: number;
  /** index is the index before entries (MsgApp), the candidate's last index, or an acknowledgement. */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** commit is the sender's commit index (MsgApp, MsgHeartbeat). */
  readonly commit: number;
  readonly snapshot: Snapshot | undefined;
  /** reject is set on responses that refuse a vote or an append. */
  readonly reject: boolean;
  /** rejectHint is the follower's hint for the next index to probe after a rejected append. */
  readonly rejectHint: number;
  /** context identifies a read (MsgReadIndex) or a leader transfer campaign; empty otherwise. */
  readonly context: Uint8Array;
}

/** EMPTY_BYTES is the shared empty payload; never mutate it. */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** message builds a Message, filling every field the caller leaves out with its zero value. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

/** HardState is what a node must persist before it sends messages that depend on it (Raft Figure 2). */
export interface HardState {
  readonly term: number;
  /** vote is who this node voted for in term; NONE if it has not voted. */
  readonly vote: NodeId;
  readonly commit: number;
}

/** EMPTY_HARD_STATE is the hard state of a node that has never run. */
export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

/** hardStateEqual compares two hard states field by field. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** isEmptyHardState says whether hs is the state of a node that never ran. */
export function isEmptyHardState(hs: HardState): boolean {
  return hardStateEqual(hs, EMPTY_HARD_STATE);
}

/** StateType is the role a node plays. */
export type StateType = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** SoftState is volatile state, useful for logging and checkers; it need not be persisted. */
export interface SoftState {
  /** lead is the leader this node knows of; NONE if it knows of none. */
  readonly lead: NodeId;
  readonly raftState: StateType;
}

/**
 * ConfState is the membership of the group as stored in a snapshot. votersOutgoing is empty
 * unless the group is in a joint configuration; learnersNext lists voters of the outgoing
 * configuration that become learners when the joint configuration is left.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** autoLeave is set when the leader should leave the joint configuration on its own. */
  readonly autoLeave: boolean;
}

/** EMPTY_CONF_STATE is the membership of a node that has not joined a group. */
export const EMPTY_CONF_STATE: ConfState = {
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** SnapshotMetadata says which prefix of the log a snapshot replaces and the membership at its end. */
export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** Snapshot is the application's state at metadata.index. data is opaque to the core. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** EMPTY_SNAPSHOT stands for "no snapshot": its index is 0. */
export const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
  data: EMPTY_BYTES,
};

/** isEmptySnapshot says whether snap is missing or has index 0. */
export function isEmptySnapshot(snap: Snapshot | undefined): boolean {
  return snap === undefined || snap.metadata.index === 0;
}

/** ConfChangeType is one membership step. */
export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearner';

/** ConfChangeSingle adds a voter, adds (or demotes to) a learner, or removes a node. */
export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * ConfChangeTransition chooses how a change is carried out. 'auto' uses one-at-a-time when the
 * change touches at most one voter and joint consensus otherwise, leaving the joint
 * configuration automatically. 'jointImplicit' forces joint consensus with automatic leave;
 * 'jointExplicit' forces joint consensus and waits for an empty change to leave it.
 */
export type ConfChangeTransition = 'auto' | 'jointImplicit' | 'jointExplicit';

/** ConfChange is the payload of a confChange entry. An empty changes list leaves a joint configuration. */
export interface ConfChange {
  readonly transition: ConfChangeTransition;
  readonly changes: readonly ConfChangeSingle[];
  /** context is opaque to the core (an application might put the new node's address here). */
  readonly context: Uint8Array;
}

/** ReadState answers a ReadIndex request: reads may be served once index is applied. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

/**
 * Ready is one batch of work for the driver, to be carried out in this order:
 *  1. persist snapshot (if any), entries (append, overwriting any conflicting suffix) and
 *     hardState (if any), durably;
 *  2. send messages (they may depend on step 1: votes and append acknowledgements);
 *  3. install snapshot and apply committedEntries to the state machine;
 *  4. call advance(ready).
 * Fields with nothing to do are undefined or empty.
 */
export interface Ready {
  /** softState is undefined when it has not changed since the last Ready. */
  readonly softState: SoftState | undefined;
  /** hardState is undefined when it has not changed since the last Ready. */
  readonly hardState: HardState | undefined;
  readonly readStates: readonly ReadState[];
  /** entries are to be persisted before messages are sent. */
  readonly entries: readonly Entry[];
  /** snapshot is undefined unless a snapshot from the leader must be installed. */
  readonly snapshot: Snapshot | undefined;
  /** committedEntries are persisted and committed, and ready to apply in order. */
  readonly committedEntries: readonly Entry[];
  /** messages must only be sent after entries, hardState and snapshot are durable. */
  readonly messages: readonly Message[];
  /** mustSync is set when the write in step 1 must be fsynced (term, vote or entries changed). */
  readonly mustSync: boolean;
}

/** entrySize is the payload size used for flow control and batching limits. */
export function entrySize(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD_BYTES;
}

/** ENTRY_OVERHEAD_BYTES approximates the per-entry framing cost so empty entries still count. */
export const ENTRY_OVERHEAD_BYTES = 16;

/** entriesSize sums entrySize over entries. */
export function entriesSize(entries: readonly Entry[]): number {
  let size = 0;
  for (const e of entries) size += entrySize(e);
  return size;
}

/**
 * limitSize returns the longest prefix of entries whose total size is at most maxSize, but
 * always at least one entry so that progress is possible with oversized entries.
 */
export function limitSize(entries: readonly Entry[], maxSize: number): Entry[] {
  if (entries.length === 0) return [];
  let size = entrySize(entries[0] as Entry);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySize(entries[n] as Entry);
    if (size > maxSize) break;
  }
  return entries.slice(0, n);
}
