// Where a member sends a client's command: to itself when it is the ready leader, else to the
// leader's client address, once it knows one. Shared by ClusterMember and the replica
// simulator's members (sim/replica-member.ts), so the simulator's forwarding waits for a leader
// exactly as a member does.
import type { Clock } from '../io/clock.js';
import { NONE, type NodeId } from '../raft/index.js';
import { ClusterDownError } from '../storage/errors.js';
import type { Replica } from './replica.js';

/** LEADER_POLL_MS: how often a request waiting for a leader looks again (besides change events). */
export const LEADER_POLL_MS = 50;

/** LeaderSource: what finding the leader reads of a member. */
export interface LeaderSource {
  readonly replica: Replica;
  readonly clock: Clock;
  readonly requestTimeoutMs: number;
  readonly selfId: NodeId;
  /** removed: the member was removed from the cluster (no leader will come for it). */
  removed(): boolean;
  /** addressOf: a member's client address of `kind`, "" or undefined while unknown. */
  addressOf(id: NodeId, kind: 'resp' | 'http'): string | undefined;
}

/**
 * leaderAddress waits until the member is the ready leader (undefined: run here) or knows the
 * leader's client address of `kind` (forward there); ClusterDownError once the request timeout
 * passes without either, or at once for a removed member.
 */
export async function leaderAddress(src: LeaderSource, kind: 'resp' | 'http'): Promise<string | undefined> {
  const { replica, clock } = src;
  const deadline = clock.monotonicMs() + src.requestTimeoutMs;
  for (;;) {
    // Its peers refuse it: no leader will come, say so now rather than at the timeout.
    if (src.removed()) throw new ClusterDownError('this member was removed from the cluster');
    if (replica.leaderReady) return undefined;
    const lead = replica.leader;
    if (lead !== NONE && lead !== src.selfId) {
      const addr = src.addressOf(lead, kind);
      if (addr !== undefined && addr !== '') return addr;
    }
    const left = deadline - clock.monotonicMs();
    if (left <= 0) {
      throw new ClusterDownError(
        lead === NONE
          ? `no leader elected within ${src.requestTimeoutMs} ms (is a majority of members up and connected?)`
          : lead === src.selfId
            ? 'this member was elected but has not caught up yet'
            : `the leader's ${kind} address is not known yet`,
      );
    }
    await changeOrTimeout(replica, clock, left);
  }
}

/** changeOrTimeout waits for the replica's next change event, at most `ms` (and at most `pollMs`). */
export function changeOrTimeout(
  replica: Pick<Replica, 'onChange'>,
  clock: Clock,
  ms: number,
  pollMs = LEADER_POLL_MS,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = clock.after(Math.min(ms, pollMs), () => {
      off();
      resolve();
    });
    const off = replica.onChange(() => {
      timer.cancel();
      off();
      resolve();
    });
  });
}
