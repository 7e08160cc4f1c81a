// ClusterFront: what the RESP server needs of the cluster member it fronts (routing, forwarding,
// ROLE, INFO replication, CLUSTER SLOTS/SHARDS, the PUBLISH fan-out). ClusterMember is one; the
// replica simulator's members are another (sim/replica-member.ts), so that a seed runs the real
// connections and their forwarding to the leader (docs/replica-sim.md, "RESP and forwarding").
import type { NodeId } from '../../raft/index.js';
import type { MemberView } from '../../replica/member.js';
import type { Replica } from '../../replica/replica.js';

export interface ClusterFront {
  readonly identity: { readonly id: NodeId; readonly name: string; readonly clusterId: string };
  readonly replica: Replica;
  /** removed: the member was removed from the cluster; it serves no data. */
  readonly removed: boolean;
  /** requestTimeoutMs: how long a request may wait for a leader and its outcome. */
  readonly requestTimeoutMs: number;
  /**
   * leaderAddress waits until this member is the ready leader (undefined: run here) or knows
   * the leader's client address of `kind`; ClusterDownError at the request timeout.
   */
  leaderAddress(kind: 'resp' | 'http'): Promise<string | undefined>;
  /** selfAddress: this member's own client address of `kind`. */
  selfAddress(kind: 'resp' | 'http'): string;
  /** members: the members of the configuration with their records. */
  members(): MemberView[];
  /** member: one member's record, by id. */
  member(id: NodeId): MemberView | undefined;
}
