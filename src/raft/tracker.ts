// ProgressTracker holds the active configuration, the leader's Progress for every member and
// the votes of the current election.

import { assert } from '../stdx/assert.js';
import type { Progress } from './progress.js';
import type { JointConfig, VoteResult } from './quorum.js';
import { jointCommitted, jointIds, jointVoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

/**
 * TrackerConfig is a membership. learners and voters are disjoint; learnersNext holds voters
 * of the outgoing half that become learners when the joint config is left (empty otherwise).
 */
export interface TrackerConfig {
  readonly voters: JointConfig;
  readonly learners: ReadonlySet<NodeId>;
  readonly learnersNext: ReadonlySet<NodeId>;
  /** autoLeave is set when the leader must propose leaving the joint config by itself. */
  readonly autoLeave: boolean;
}

export const EMPTY_TRACKER_CONFIG: TrackerConfig = {
  voters: { incoming: new Set(), outgoing: new Set() },
  learners: new Set(),
  learnersNext: new Set(),
  autoLeave: false,
};

/** ProgressMap maps every member (voters and learners) to its Progress. */
export type ProgressMap = Map<NodeId, Progress>;

/** confStateOf converts a configuration to the ConfState stored in snapshots. */
export function confStateOf(cfg: TrackerConfig): ConfState {
  const sorted = (s: ReadonlySet<NodeId>): NodeId[] => [...s].sort((a, b) => a - b);
  return {
    voters: sorted(cfg.voters.incoming),
    learners: sorted(cfg.learners),
    votersOutgoing: sorted(cfg.voters.outgoing),
    learnersNext: sorted(cfg.learnersNext),
    autoLeave: cfg.autoLeave,
  };
}

/** isJoint says whether cfg is a joint configuration (its outgoing half is not empty). */
export function isJoint(cfg: TrackerConfig): boolean {
  return cfg.voters.outgoing.size > 0;
}

/** ProgressTracker tracks the configuration, every member's progress and the current election. */
export class ProgressTracker {
  config: TrackerConfig = EMPTY_TRACKER_CONFIG;
  progress: ProgressMap = new Map();
  /** votes records the current election's responses: true for granted. Empty between elections. */
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;
  readonly maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  /** committed returns the largest index acknowledged by a quorum of voters. */
  committed(): number {
    const c = jointCommitted(this.config.voters, (id) => this.progress.get(id)?.match);
    assert(Number.isFinite(c), 'committed with no voters');
    return c;
  }

  /** isSingleton says whether this is a one-voter, non-joint configuration. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  voterIds(): NodeId[] {
    return jointIds(this.config.voters);
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.incoming.has(id) || this.config.voters.outgoing.has(id);
  }

  /** visit calls f for every member in ascending id order, so behaviour is deterministic. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    const ids = [...this.progress.keys()].sort((a, b) => a - b);
    for (const id of ids) f(id, this.progress.get(id) as Progress);
  }

  /** quorumActive says whether a quorum of voters was recently active (check-quorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return jointVoteResult(this.config.voters, votes) === 'won';
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** recordVote records id's vote; only its first vote in an election counts. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voterIds()) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }
}
