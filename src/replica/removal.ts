// A member removed from the cluster stops, as etcd's does ("the member has been permanently
// removed from the cluster"): it learns of its removal by applying the configuration change that
// removes it, or from a peer that refuses its connection as removed (handshake.ts,
// REMOVED_REFUSAL). It records the removal in member.json first, so that a restart is refused
// (MemberRemovedError, exit 3), and a removed leader first hands the leadership over, as Raft
// asks of it (raft.ts, transferToSuccessor). Then `ClusterMember.removal` resolves, and whoever
// runs the member stops it: `cairn serve` closes its listeners and exits with code 3
// (src/cli/run-server.ts); the replica simulator takes the member out for good. Nothing here
// exits a process: embedded users decide.
import type { Clock } from '../io/clock.js';
import { changeOrTimeout } from './leader-address.js';
import { ELECTION_TICKS, TICK_MS } from './replica.js';

/**
 * REMOVED_HANDOFF_MS: how long a leader that applied its own removal may keep leading while it
 * hands the leadership to the most up-to-date voter (the core sends MsgTimeoutNow once that voter
 * holds the whole log, and retries each election timeout). Two election timeouts: past them the
 * others elect a leader on their own anyway (their election timers run once heartbeats stop).
 */
export const REMOVED_HANDOFF_MS = 2 * ELECTION_TICKS * TICK_MS;

/**
 * REMOVED_LINGER_MS: how long a removed member stays up after its handoff (and after its record
 * is durable) before it reports itself stopped: the messages of its last Ready (the MsgTimeoutNow
 * to its successor, the commit index that lets the others apply its removal) leave after the
 * Ready's log save, and must not be cut by the close. Two ticks (etcd waits one second).
 */
export const REMOVED_LINGER_MS = 2 * TICK_MS;

/**
 * REMOVED_LEADER_GRACE_MS: how long a member that applied the removal of its leader keeps that
 * leader's connections. The removed leader applies its removal after the commit that lets the
 * others apply it, so its MsgTimeoutNow to its successor comes a turn behind; dropped with the
 * connection, the successor would wait out an election timeout instead (measured: about 1.2 s
 * instead of about 0.2). A removed node is not promotable, so nothing it sends meanwhile can
 * disrupt the group (its vote requests are never sent), and Raft's safety never rested on whom
 * the transport lets through.
 */
export const REMOVED_LEADER_GRACE_MS = 2 * TICK_MS;

/** MemberRemoval: how a member learned that it was removed from the cluster. */
export interface MemberRemoval {
  /** name: this member. */
  readonly name: string;
  /** how: 'applied' its own removal (a committed conf change), or was 'told' by a peer's refusal. */
  readonly how: 'applied' | 'told';
  /**
   * by: who removed it, as this member knows: for 'applied', the leader this member followed when
   * it applied the change (the one that committed it), or "" when it knew none (a log replay at
   * start); for 'told', the peer that refused it.
   */
  readonly by: string;
  /** index: the log index of the removing conf change ('applied'); undefined when told. */
  readonly index: number | undefined;
  /** reason: the peer's refusal ('told'): it names the index when the peer applied the removal itself. */
  readonly reason: string | undefined;
  /**
   * recorded: member.json records the removal (durably). False when the write failed: the next
   * start then learns it again, from its log's replay or from its peers, and stops again.
   */
  readonly recorded: boolean;
  /** handedOver: false when it led and the handoff did not finish within REMOVED_HANDOFF_MS. */
  readonly handedOver: boolean;
}

/** describeRemoval: one line saying which member was removed, by whom, at which index. */
export function describeRemoval(r: Pick<MemberRemoval, 'name' | 'how' | 'by' | 'index' | 'reason'>): string {
  if (r.how === 'applied') {
    const by = r.by === '' ? 'the leader' : `leader '${r.by}'`;
    return `member '${r.name}' was removed from the cluster by the configuration change at index ${r.index ?? '?'} (committed by ${by})`;
  }
  return `member '${r.name}' was removed from the cluster (peer '${r.by}' refused it: ${r.reason ?? 'removed'})`;
}

/** Leadership: what waitForHandoff looks at (a Replica). */
export interface Leadership {
  /** leading: this member still acts as the leader (its core has not stepped down). */
  readonly leading: boolean;
  /** savesPending: log saves handed out and not yet durable (their messages wait for them). */
  readonly savesPending: number;
  onChange(listener: () => void): () => void;
}

/** HANDOFF_POLL_MS: how often waitForHandoff looks again, besides the replica's change events. */
const HANDOFF_POLL_MS = 20;

/**
 * waitForHandoff resolves once this member no longer leads and its pending saves (whose messages
 * wait for them) are durable, and then REMOVED_LINGER_MS more: true; false when `limitMs` passed
 * first (the others elect a leader without the handoff, after an election timeout).
 */
export async function waitForHandoff(
  replica: Leadership,
  clock: Clock,
  limitMs: number = REMOVED_HANDOFF_MS,
): Promise<boolean> {
  const deadline = clock.monotonicMs() + limitMs;
  let handedOver = true;
  while (replica.leading || replica.savesPending > 0) {
    const left = deadline - clock.monotonicMs();
    if (left <= 0) {
      handedOver = false;
      break;
    }
    await changeOrTimeout(replica, clock, left, HANDOFF_POLL_MS);
  }
  await new Promise<void>((resolve) => clock.after(REMOVED_LINGER_MS, resolve));
  return handedOver;
}
