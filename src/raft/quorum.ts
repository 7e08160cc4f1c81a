// Quorum arithmetic for a simple majority and for joint consensus (Raft §6 / thesis §4.3):
// a joint configuration needs a majority of the incoming AND of the outgoing voters.

import type { NodeId } from './types.js';

/** VoteResult is the state of an election: undecided, won or lost. */
export type VoteResult = 'pending' | 'won' | 'lost';

/** MajorityConfig is a set of voters; the empty set is a valid config that wins every vote. */
export type MajorityConfig = ReadonlySet<NodeId>;

/**
 * majorityCommitted returns the largest index acknowledged by a majority of voters, given
 * each voter's acknowledged index (missing voters count as 0). It returns +Infinity for an
 * empty configuration so that a joint config with an empty half depends on the other half.
 */
export function majorityCommitted(voters: MajorityConfig, acked: (id: NodeId) => number | undefined): number {
  const n = voters.size;
  if (n === 0) return Number.POSITIVE_INFINITY;
  const idx: number[] = [];
  for (const id of voters) idx.push(acked(id) ?? 0);
  idx.sort((a, b) => b - a);
  // The (n/2+1)-th largest value is acknowledged by a majority.
  return idx[Math.floor(n / 2)] as number;
}

/** majorityVoteResult tallies votes (true granted, false rejected, missing pending). */
export function majorityVoteResult(voters: MajorityConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let yes = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (yes >= q) return 'won';
  if (yes + missing >= q) return 'pending';
  return 'lost';
}

/** JointConfig is [incoming, outgoing]; outgoing is empty unless a joint change is in progress. */
export interface JointConfig {
  readonly incoming: MajorityConfig;
  readonly outgoing: MajorityConfig;
}

export function jointCommitted(cfg: JointConfig, acked: (id: NodeId) => number | undefined): number {
  const a = majorityCommitted(cfg.incoming, acked);
  const b = majorityCommitted(cfg.outgoing, acked);
  return Math.min(a, b);
}

export function jointVoteResult(cfg: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const r1 = majorityVoteResult(cfg.incoming, votes);
  const r2 = majorityVoteResult(cfg.outgoing, votes);
  if (r1 === r2) return r1;
  if (r1 === 'lost' || r2 === 'lost') return 'lost';
  return 'pending';
}

/** jointIds returns every voter of either half, sorted. */
export function jointIds(cfg: JointConfig): NodeId[] {
  const ids = new Set<NodeId>([...cfg.incoming, ...cfg.outgoing]);
  return [...ids].sort((a, b) => a - b);
}
