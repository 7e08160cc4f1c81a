// The leader's strict reconfiguration checks (etcd's --strict-reconfig-check, on by default):
// a membership change that would leave the group unable to commit, or make it wait for a member
// that is far behind, is refused with the reason before anything is proposed. Pure functions of
// a ReconfigView, so they are unit tested without a cluster (reconfig-check.test.ts).
//
// - A new member joins as a learner (it votes on nothing while it catches up, etcd #10329) and
//   is promoted once its log is within LEARNER_READY_FRACTION of the leader's (etcd's
//   isLearnerReady, readyPercentThreshold 0.9).
// - A promotion or removal must leave at least a quorum of the new voters active (heard from
//   within ACTIVE_WINDOW_MS; etcd's mayRemoveMember / IsReadyToPromoteMember). A removal may be
//   forced past this (the operator knows the member is gone for good); removing the last voter
//   never (the Raft core refuses it too).
import type { NodeId } from '../raft/index.js';
import { MAX_MEMBERS, type MemberRecord } from './identity.js';
import { hexId } from './log-ids.js';

/** LEARNER_READY_FRACTION: a learner is promoted once its match index is at least this share of the leader's last index. */
export const LEARNER_READY_FRACTION = 0.9;
/** ACTIVE_WINDOW_MS: a member heard from this recently counts as active (etcd's HealthInterval). */
export const ACTIVE_WINDOW_MS = 5_000;
/** MAX_LEARNERS: learners at once; each one loads the leader with a full log replay (etcd's DefaultMaxLearners). */
export const MAX_LEARNERS = 1;

/** ReconfigView: what the leader knows when it checks a change. */
export interface ReconfigView {
  readonly leader: NodeId;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** lastIndex: the leader's last log index. */
  readonly lastIndex: number;
  /** match: each member's match index (the leader's progress). */
  readonly match: ReadonlyMap<NodeId, number>;
  /** active: members heard from within ACTIVE_WINDOW_MS, and the leader itself. */
  readonly active: ReadonlySet<NodeId>;
  /** members: the current member records (names and peer addresses). */
  readonly members: readonly MemberRecord[];
  /** removed: members removed earlier; their ids are never reused. */
  readonly removed: readonly MemberRecord[];
}

/** quorum: the votes a group of n voters needs. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** checkAddLearner: why `record` may not join as a learner now, or undefined. */
export function checkAddLearner(view: ReconfigView, record: MemberRecord): string | undefined {
  const byName = view.members.find((m) => m.name === record.name);
  if (byName !== undefined) return `a member named '${record.name}' already exists`;
  const byAddr = view.members.find((m) => m.peerAddr === record.peerAddr);
  if (byAddr !== undefined) return `member '${byAddr.name}' already uses peer address ${record.peerAddr}`;
  if (view.members.some((m) => m.id === record.id) || inConfig(view, record.id)) {
    return `member id ${hexId(record.id)} is already in the cluster`;
  }
  if (view.removed.some((m) => m.id === record.id || m.name === record.name)) {
    return `a member named '${record.name}' was removed from this cluster; a removed member's name (and id) is never reused: choose another name`;
  }
  if (view.learners.length >= MAX_LEARNERS) {
    return `the cluster already has ${view.learners.length} learner(s) (at most ${MAX_LEARNERS}): promote or remove it first`;
  }
  if (view.voters.length + view.learners.length >= MAX_MEMBERS) {
    return `the cluster already has ${MAX_MEMBERS} members`;
  }
  return undefined;
}

/** checkAddVoter: adding a voter directly is always refused (strict reconfiguration). */
export function checkAddVoter(): string {
  return 'a new member joins as a learner and is promoted once it has caught up (member add, then member promote)';
}

/** checkPromote: why learner `id` may not become a voter now, or undefined. */
export function checkPromote(view: ReconfigView, id: NodeId): string | undefined {
  if (view.voters.includes(id)) return 'the member is already a voter';
  if (!view.learners.includes(id)) return 'the member is not a learner of this cluster';
  const match = view.match.get(id) ?? 0;
  const needed = Math.ceil(view.lastIndex * LEARNER_READY_FRACTION);
  if (match < needed) {
    return `the learner has not caught up: its log reaches index ${match}, the leader's ${view.lastIndex} (needs ${Math.round(LEARNER_READY_FRACTION * 100)}%, index ${needed})`;
  }
  const next = [...view.voters, id];
  const active = next.filter((v) => view.active.has(v)).length;
  if (active < quorum(next.length)) {
    return `only ${active} of the ${next.length} voters after the promotion are active; a quorum of ${quorum(next.length)} is needed`;
  }
  return undefined;
}

/** checkRemove: why member `id` may not be removed now, or undefined. `force` skips the quorum check. */
export function checkRemove(view: ReconfigView, id: NodeId, force: boolean): string | undefined {
  if (view.learners.includes(id)) return undefined;
  if (!view.voters.includes(id)) return 'the member is not in the cluster configuration';
  const next = view.voters.filter((v) => v !== id);
  if (next.length === 0)
    return 'cannot remove the last voter: the cluster would have no voters left to elect a leader or commit';
  if (force) return undefined;
  const active = next.filter((v) => view.active.has(v)).length;
  if (active < quorum(next.length)) {
    return `only ${active} of the ${next.length} remaining voters are active; a quorum of ${quorum(next.length)} is needed (if the inactive members are gone for good: cairn member remove --force, or ?force=true over HTTP)`;
  }
  return undefined;
}

function inConfig(view: ReconfigView, id: NodeId): boolean {
  return view.voters.includes(id) || view.learners.includes(id);
}
