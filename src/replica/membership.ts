// Membership: who the members of the group are and where they listen, as the applied conf
// changes say (docs/cluster-ops.md, "Membership"). Raft's configuration (voters, learners) holds
// ids only; the addresses travel in each addition's conf change `context` as the member record
// JSON {id, name, peerAddr}, so every member, also one replaying its log after a restart or a
// newcomer catching up from index 1, learns the addresses of members added after it started.
//
// Source of truth: the Raft log. member.json keeps a checkpoint of this list (`members`,
// `removed`, `membershipIndex`: the index of the newest conf change the checkpoint includes), so
// that a restarting member can reach its peers before it has replayed anything; replayed changes
// at or below the checkpoint's index are already in it and are skipped, newer ones update it.
// The bootstrap entries carry no context: the first members' addresses come from --initial-cluster.
//
// Started marks (docs/cluster.md, "A member that lost its directory"): the leader records, once
// per member, that the member has started (it acknowledged entries, or leads), so that the same
// id starting again from an empty directory is refused by its peers. The mark is a conf change
// that leaves the Raft configuration as it is (addNode of a voter, addLearner of a learner: both
// no-ops in the core) with the member's record and `"started": true` as its context. A conf
// change, not a new entry kind, because members built before the mark apply it as what it looks
// like (a record they already hold), where an unknown entry kind would stop them applying.
//
//   started-context := JSON { "id": n, "name": s, "peerAddr": s, "started": true }
import type { ConfChange, NodeId } from '../raft/index.js';
import type { MemberRecord } from './identity.js';

/** MEMBER_CONTEXT_BYTES_MAX: a member record is a name and an address; anything longer is not one. */
export const MEMBER_CONTEXT_BYTES_MAX = 1024;

/** MembershipState: the list as of the conf change at `index` (what member.json records). */
export interface MembershipState {
  readonly members: readonly MemberRecord[];
  /** removed: members removed since the cluster started (their ids and names are not reused). */
  readonly removed: readonly MemberRecord[];
  readonly index: number;
  /** started: current members recorded as having started (absent: none; a store before the marks). */
  readonly started?: readonly NodeId[];
}

/** encodeMemberContext: the conf change context of an addition. */
export function encodeMemberContext(record: MemberRecord): Uint8Array {
  return Buffer.from(JSON.stringify({ id: record.id, name: record.name, peerAddr: record.peerAddr }));
}

/** encodeStartedContext: the context of a started mark for `record` (see the header). */
export function encodeStartedContext(record: MemberRecord): Uint8Array {
  return Buffer.from(
    JSON.stringify({ id: record.id, name: record.name, peerAddr: record.peerAddr, started: true }),
  );
}

/** isStartedContext: the context is a started mark (its record is decodeMemberContext's). */
export function isStartedContext(context: Uint8Array): boolean {
  if (decodeMemberContext(context) === undefined) return false;
  return (JSON.parse(Buffer.from(context).toString('utf8')) as { started?: unknown }).started === true;
}

/** decodeMemberContext reads an addition's context; undefined when it holds no member record. */
export function decodeMemberContext(context: Uint8Array): MemberRecord | undefined {
  if (context.length === 0 || context.length > MEMBER_CONTEXT_BYTES_MAX) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(context).toString('utf8'));
  } catch {
    return undefined;
  }
  const r = parsed as Partial<MemberRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    typeof r.id !== 'number' ||
    !Number.isSafeInteger(r.id) ||
    typeof r.name !== 'string' ||
    typeof r.peerAddr !== 'string'
  ) {
    return undefined;
  }
  return { id: r.id, name: r.name, peerAddr: r.peerAddr };
}

/** SNAPSHOT_DATA_VERSION: the version of a Raft snapshot's data (the member list it records). */
const SNAPSHOT_DATA_VERSION = 1;

/**
 * encodeSnapshotData: a Raft snapshot's data, the member list as of its index. Conf changes in
 * the compacted log are never applied by a member that installs the snapshot, so the records
 * (names, peer addresses) they carried travel here; and `logTs`, the commit timestamp of the
 * newest write at or below the index (Replica's `cairn check hash` test of an engine ahead of
 * its log; absent in snapshots taken before 2026-12-06, and then not known); and `started`, the
 * ids of the members recorded as started (absent before the started marks; members built before
 * them ignore it, so version 1 still describes the data).
 *
 *   data := JSON { "v": 1, "members": [record], "removed": [record], "index": n [, "logTs": n]
 *                  [, "started": [n]] }
 *   record := { "id": n, "name": s, "peerAddr": s }
 */
export function encodeSnapshotData(state: MembershipState, logTs: number): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      v: SNAPSHOT_DATA_VERSION,
      members: state.members,
      removed: state.removed,
      index: state.index,
      logTs,
      started: state.started ?? [],
    }),
  );
}

/** snapshotLogTs: the `logTs` encodeSnapshotData recorded, or undefined (older data, or not that). */
export function snapshotLogTs(data: Uint8Array): number | undefined {
  try {
    const v = (JSON.parse(Buffer.from(data).toString('utf8')) as { logTs?: unknown } | null)?.logTs;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** decodeSnapshotData reads encodeSnapshotData's output; undefined when it is not that. */
export function decodeSnapshotData(data: Uint8Array): MembershipState | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
  const v = parsed as {
    v?: unknown;
    members?: unknown;
    removed?: unknown;
    index?: unknown;
    started?: unknown;
  } | null;
  if (v === null || typeof v !== 'object' || v.v !== SNAPSHOT_DATA_VERSION) return undefined;
  if (typeof v.index !== 'number' || !Number.isSafeInteger(v.index) || v.index < 0) return undefined;
  const records = (list: unknown): MemberRecord[] | undefined => {
    if (!Array.isArray(list)) return undefined;
    const out: MemberRecord[] = [];
    for (const r of list) {
      const rec = decodeMemberContext(Buffer.from(JSON.stringify(r ?? null)));
      if (rec === undefined) return undefined;
      out.push(rec);
    }
    return out;
  };
  const members = records(v.members);
  const removed = records(v.removed);
  if (members === undefined || removed === undefined) return undefined;
  const started = v.started === undefined ? [] : v.started;
  if (!Array.isArray(started) || !started.every((id) => Number.isSafeInteger(id) && id > 0)) return undefined;
  return { members, removed, index: v.index, started: started as NodeId[] };
}

/** Membership: the current member records, updated by each applied conf change. */
export class Membership {
  private readonly current = new Map<NodeId, MemberRecord>();
  private readonly gone = new Map<NodeId, MemberRecord>();
  /** begun: current members recorded as started (started marks applied, or the checkpoint's). */
  private readonly begun = new Set<NodeId>();
  /**
   * removedAt: the index of the change that removed each id, for the removals this member applied
   * since it started (not kept in member.json or snapshots: only the refusal a removed member gets
   * names it, handshake.ts).
   */
  private readonly removedAt = new Map<NodeId, number>();
  private appliedIndex: number;

  constructor(state: MembershipState) {
    this.appliedIndex = 0;
    this.load(state);
  }

  private load(state: MembershipState): void {
    this.current.clear();
    this.gone.clear();
    this.begun.clear();
    for (const m of state.members) this.current.set(m.id, m);
    for (const m of state.removed) this.gone.set(m.id, m);
    for (const id of state.started ?? []) if (this.current.has(id)) this.begun.add(id);
    this.appliedIndex = state.index;
  }

  /**
   * apply takes the conf change applied at `index`; it returns whether the list changed.
   * Changes at or below the checkpoint's index are already included (log replay).
   */
  apply(cc: ConfChange, index: number): boolean {
    if (index <= this.appliedIndex) return false;
    this.appliedIndex = index;
    const record = decodeMemberContext(cc.context);
    const started = isStartedContext(cc.context);
    for (const change of cc.changes) {
      if (change.type === 'removeNode') {
        const was = this.current.get(change.nodeId);
        this.current.delete(change.nodeId);
        this.begun.delete(change.nodeId);
        this.gone.set(change.nodeId, was ?? { id: change.nodeId, name: '', peerAddr: '' });
        this.removedAt.set(change.nodeId, index);
      } else if (started) {
        // A mark changes no record: the record it carries is the leader's view of the member's
        // address, and each member keeps its own (a proxy or NAT in between; --initial-cluster
        // may differ per member).
        if (this.current.has(change.nodeId)) this.begun.add(change.nodeId);
      } else if (record !== undefined && record.id === change.nodeId) {
        this.current.set(record.id, record);
        this.gone.delete(record.id);
      }
    }
    // The index moved even when no record changed: the checkpoint is newer.
    return true;
  }

  /**
   * restore replaces the list with a snapshot's (a member that installs a snapshot never applies
   * the conf changes before its index); an older state than the current one is ignored.
   */
  restore(state: MembershipState): boolean {
    if (state.index < this.appliedIndex) return false;
    this.load(state);
    return true;
  }

  /**
   * markRemoved records that `id` was removed although this member never applied the change (a
   * peer refused it as removed: REMOVED_REFUSAL); it returns whether that is news.
   */
  markRemoved(id: NodeId): boolean {
    if (this.gone.has(id)) return false;
    this.gone.set(id, this.current.get(id) ?? { id, name: '', peerAddr: '' });
    this.current.delete(id);
    this.begun.delete(id);
    return true;
  }

  get index(): number {
    return this.appliedIndex;
  }

  records(): MemberRecord[] {
    return [...this.current.values()];
  }

  record(id: NodeId): MemberRecord | undefined {
    return this.current.get(id);
  }

  removed(): MemberRecord[] {
    return [...this.gone.values()];
  }

  isRemoved(id: NodeId): boolean {
    return this.gone.has(id);
  }

  /** removalIndex: the index of the change that removed `id`, when this member applied it since its start. */
  removalIndex(id: NodeId): number | undefined {
    return this.removedAt.get(id);
  }

  /** isStarted: `id` is a current member recorded as having started (a started mark). */
  isStarted(id: NodeId): boolean {
    return this.begun.has(id);
  }

  state(): MembershipState {
    return {
      members: this.records(),
      removed: this.removed(),
      index: this.appliedIndex,
      started: [...this.begun],
    };
  }
}
