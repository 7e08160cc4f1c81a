// Started marks (docs/cluster.md, "A member that lost its directory"): the leader's choice of the
// next member to record as started, and a member's answer to another's start check. Shared by
// ClusterMember and the replica simulator (sim/replica-member.ts), so that the simulator runs the
// rules the servers run.
import type { Clock } from '../io/clock.js';
import type { ConfChange, NodeId } from '../raft/index.js';
import type { MemberRecord } from './identity.js';
import { encodeStartedContext } from './membership.js';
import type { Replica, ReplicaStatus } from './replica.js';
import { START_CHECK_CONFIRM_MS, type StartAnswer } from './start-check.js';

/**
 * STARTED_MARK_INTERVAL_MS: how often the leader looks for members to record as started. The
 * window between a member's first acknowledgement and its mark is what the start check cannot
 * see (docs/cluster.md); a quarter second keeps it short without a look every turn.
 */
export const STARTED_MARK_INTERVAL_MS = 250;

/** MarkView: what the choice of a mark reads from the member list. */
export interface MarkView {
  isStarted(id: NodeId): boolean;
  record(id: NodeId): MemberRecord | undefined;
}

/**
 * nextStartedMark: on the ready leader `self`, the started mark to propose next, or undefined:
 * one member not yet recorded as started that has shown durable state: the leader itself, or a
 * member that acknowledged entries (match > 0). The change re-adds the member in its current role
 * (`addNode` of a voter, `addLearner` of a learner: no-ops in the core) with the started context.
 */
export function nextStartedMark(
  st: Pick<ReplicaStatus, 'voters' | 'learners' | 'progress'>,
  self: NodeId,
  view: MarkView,
): { readonly record: MemberRecord; readonly change: ConfChange } | undefined {
  const id = [...st.voters, ...st.learners].find(
    (m) =>
      !view.isStarted(m) &&
      view.record(m) !== undefined &&
      (m === self || (st.progress.get(m)?.match ?? 0) > 0),
  );
  if (id === undefined) return undefined;
  const record = view.record(id) as MemberRecord;
  return {
    record,
    change: {
      transition: 'auto',
      changes: [{ type: st.voters.includes(id) ? 'addNode' : 'addLearner', nodeId: id }],
      context: encodeStartedContext(record),
    },
  };
}

/** AnswerSource: what a member's answer to a start check reads. */
export interface AnswerSource {
  isStarted(id: NodeId): boolean;
  /** checking: this member is itself waiting for its own start check. */
  readonly checking: boolean;
  /** replica: the member's Replica (read after the ReadIndex round, not before). */
  readonly replica: Pick<Replica, 'fresh' | 'applied' | 'appliedTerm' | 'linearizable'>;
  readonly clock: Clock;
}

/**
 * answerStartCheck: a member's answer to peer `id`'s start check (start-check.ts). A started mark
 * it applied is the answer at once (committed, never taken back). A member that knows nothing
 * (checking, or fresh: no leader's entry in its log) says so. Otherwise it confirms its state with
 * the leader first (a ReadIndex round, then applied through the read index: every mark committed
 * before the question), and answers unconfirmed when it cannot within START_CHECK_CONFIRM_MS (no
 * leader, no quorum): an answer from its own state could be behind.
 */
export async function answerStartCheck(src: AnswerSource, id: NodeId): Promise<StartAnswer> {
  const { replica } = src;
  const said = (answer: StartAnswer['answer']): StartAnswer => ({ answer, index: replica.applied, term: 0 });
  if (src.isStarted(id)) return said('started');
  if (src.checking || replica.fresh) return said('fresh');
  const confirmed = await withinMs(src.clock, replica.linearizable(), START_CHECK_CONFIRM_MS);
  if (!confirmed) return said('unconfirmed');
  if (src.isStarted(id)) return said('started');
  // With the entry the asker holds its votes up to (StartDecision's floor).
  const term = replica.appliedTerm;
  if (term === undefined) return said('unconfirmed');
  return { answer: 'not-started', index: replica.applied, term };
}

/**
 * withinMs: whether `p` resolves within `ms` (false when it rejects or takes longer; a late
 * settlement is ignored).
 */
function withinMs(clock: Clock, p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = clock.after(ms, () => resolve(false));
    p.then(
      () => {
        timer.cancel();
        resolve(true);
      },
      () => {
        timer.cancel();
        resolve(false);
      },
    );
  });
}
