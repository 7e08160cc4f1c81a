// The add-member scenario of the replica simulator (docs/replica-sim.md, "Added members"): once
// in the chaos phase the ready leader adds a new member as a learner, the new member starts on an
// empty disk with no configuration (`cairn serve --initial-cluster-state existing`), catches up
// (by snapshot when the leader's log was compacted past its start), and is promoted to voter once
// caught up, under the same faults as the rest. The leader decides as `cairn member add` and
// `cairn member promote` do, with the same checks (reconfig-check.ts: checkAddLearner,
// checkPromote) and the same change (a learner first, its record in the change's context); each
// is proposed again at the next chaos step until it is applied (an UncertainError, a leader
// change).
//
// From its addition on, the new member is one of the run's members: clients use it, faults hit
// it, and the end checks (convergence, identical engines, the bank) include it.
import type { NodeId } from '../src/raft/index.js';
import type { MemberRecord } from '../src/replica/identity.js';
import { encodeMemberContext } from '../src/replica/membership.js';
import { checkAddLearner, checkPromote, type ReconfigView } from '../src/replica/reconfig-check.js';
import type { Prng } from '../src/stdx/prng.js';
import type { SimMember } from './replica-member.js';
import type { ReplicaNet } from './replica-net.js';
import type { SimScheduler } from './replica-scheduler.js';

export interface AdditionStats {
  /** member: the new member's id. */
  member: number;
  /** addedAt, promotedAt: simulated times its learner change and its promotion were applied on a leader. */
  addedAt: number | undefined;
  promotedAt: number | undefined;
  /** refusals: proposals the checks refused (not caught up, too few active voters). */
  refusals: number;
  /** snapshots: snapshots the new member installed (it catches up by one when the log was compacted). */
  snapshots: number;
}

export class SimAddition {
  readonly stats: AdditionStats;
  private readonly record: MemberRecord;
  private readonly at: number;
  private inFlight = false;
  private lastRefusal = '';

  constructor(
    private readonly sched: SimScheduler,
    /** prng: the scenario's own stream (when it adds). */
    prng: Prng,
    /** members: the run's members; the new member joins them once added. */
    private readonly members: SimMember[],
    private readonly joiner: SimMember,
    private readonly leader: () => SimMember | undefined,
    private readonly net: ReplicaNet,
    private readonly trace: (line: string) => void,
    chaosMs: number,
  ) {
    this.stats = { member: joiner.id, addedAt: undefined, promotedAt: undefined, refusals: 0, snapshots: 0 };
    this.record = { id: joiner.id, name: `n${joiner.id}`, peerAddr: `sim:${joiner.id}` };
    this.at = sched.now + prng.range(Math.floor(chaosMs / 4), Math.floor(chaosMs / 2));
  }

  /** final: the stats at the end of the run. */
  final(): AdditionStats {
    return { ...this.stats, snapshots: this.joiner.snapshotsInstalled };
  }

  /** step: called at every chaos step and while healing: adds, then promotes, when it can. */
  step(): void {
    if (this.sched.now < this.at || this.inFlight) return;
    const leader = this.leader();
    const run = leader?.running;
    if (leader === undefined || run === undefined) return;
    const st = run.replica.status();
    const id = this.joiner.id;
    if (this.stats.addedAt === undefined) {
      if (st.learners.includes(id) || st.voters.includes(id)) {
        this.added();
        return;
      }
      this.propose(leader, 'addLearner', checkAddLearner(this.view(leader), this.record));
      return;
    }
    if (this.stats.promotedAt !== undefined) return;
    if (st.voters.includes(id)) {
      this.stats.promotedAt = this.sched.now;
      this.trace(`n${id} is a voter (on n${leader.id})`);
      return;
    }
    this.propose(leader, 'addNode', checkPromote(this.view(leader), id));
  }

  private added(): void {
    this.stats.addedAt = this.sched.now;
    this.trace(`n${this.joiner.id} added as a learner: it starts on an empty disk`);
    this.members.push(this.joiner);
    this.joiner.start();
  }

  private propose(leader: SimMember, type: 'addLearner' | 'addNode', refusal: string | undefined): void {
    const run = leader.running;
    if (run === undefined) return;
    if (refusal !== undefined) {
      this.stats.refusals++;
      if (refusal !== this.lastRefusal) this.trace(`${type} n${this.joiner.id} refused: ${refusal}`);
      this.lastRefusal = refusal;
      return;
    }
    this.inFlight = true;
    this.trace(`n${leader.id} proposes ${type} n${this.joiner.id}`);
    run.replica
      .proposeConfChange({
        transition: 'auto',
        changes: [{ type, nodeId: this.joiner.id }],
        context: encodeMemberContext(this.record),
      })
      .then(
        () => {
          this.trace(`${type} n${this.joiner.id} applied on n${leader.id}`);
          if (type === 'addLearner' && this.stats.addedAt === undefined) this.added();
          if (type === 'addNode' && this.stats.promotedAt === undefined)
            this.stats.promotedAt = this.sched.now;
        },
        (err: unknown) => this.trace(`${type} n${this.joiner.id} not applied: ${(err as Error).message}`),
      )
      .finally(() => {
        this.inFlight = false;
      });
  }

  /**
   * view: the leader's view for the checks, as ClusterMember.reconfigView builds it; a member is
   * active when it is up and the leader reaches it both ways (the transport's "heard from").
   */
  private view(leader: SimMember): ReconfigView {
    const run = leader.running;
    if (run === undefined) throw new Error('view of a leader that is down');
    const st = run.replica.status();
    const match = new Map<NodeId, number>();
    for (const [id, pr] of st.progress) match.set(id, pr.match);
    const active = new Set<NodeId>([leader.id]);
    for (const m of [...this.members, this.joiner])
      if (m.up && this.net.reachable(leader.id, m.id) && this.net.reachable(m.id, leader.id))
        active.add(m.id);
    return {
      leader: leader.id,
      voters: st.voters,
      learners: st.learners,
      lastIndex: st.lastIndex,
      match,
      active,
      members: run.membership.records(),
      removed: run.membership.removed(),
    };
  }
}
