// runSeed runs one randomized simulation: a cluster with fault rates drawn from the seed, a
// chaos phase (client load, crashes, restarts, symmetric and asymmetric partitions, flaky
// links), then a heal phase that must elect a leader and commit within LIVENESS_BOUND_MS.
// Checkers run throughout. The same seed always replays the same run, event for event.

import type { ConfChangeSingle, NodeId } from '../src/raft/index.js';
import { Prng } from '../src/stdx/prng.js';
import { Cluster, defaultClusterOptions } from './cluster.js';
import type { NetworkOptions } from './network.js';
import { RELIABLE } from './network.js';

/** CHAOS_MS_DEFAULT is the simulated length of the fault phase of one seed. */
export const CHAOS_MS_DEFAULT = 4000;
/**
 * LIVENESS_BOUND_MS: once everything is healed, a leader must be elected and a new entry
 * applied on every node within this time (about 16 maximal randomized election timeouts).
 */
export const LIVENESS_BOUND_MS = 10_000;
/** LIVENESS_POLL_MS is how often the heal phase checks for a leader and re-proposes its probe. */
export const LIVENESS_POLL_MS = 50;
/** CLIENT_BURST_MAX bounds the commands one client burst proposes. */
export const CLIENT_BURST_MAX = 8;
/** MEMBERSHIP_RATE is the fraction of seeds that also change membership during the chaos. */
export const MEMBERSHIP_RATE = 0.4;
/** SPARE_NODES is how many extra nodes membership seeds have, to add and remove. */
export const SPARE_NODES = 2;

export interface RunOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly chaosMs: number;
  /** trace, when set, prints the run's events (for replaying a failing seed). */
  readonly trace?: (line: string) => void;
}

export interface RunResult {
  readonly seed: number;
  readonly ok: boolean;
  /** error is empty when ok. */
  readonly error: string;
  readonly simMs: number;
  readonly committed: number;
  readonly leaders: number;
  readonly messages: number;
  /** reads counts linearizable reads answered and checked. */
  readonly reads: number;
  /** healToLeaderMs is the time from heal until the probe committed everywhere; -1 on failure. */
  readonly healMs: number;
}

const encoder = new TextEncoder();

function randomNetwork(p: Prng): NetworkOptions {
  const delayMsMax = p.range(1, 30);
  return {
    dropRate: p.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: p.pick([0, 0.01, 0.05, 0.1]),
    delayMsMin: 1,
    delayMsMax,
    longDelayRate: p.pick([0, 0, 0.02, 0.1]),
    longDelayMsMax: delayMsMax + p.range(0, 500),
    longDelayResponsesOnly: false,
  };
}

export function runSeed(opts: RunOptions): RunResult {
  const p = new Prng(opts.seed);
  const membership = p.chance(MEMBERSHIP_RATE);
  const total = opts.nodes + (membership ? SPARE_NODES : 0);
  const ids: NodeId[] = Array.from({ length: total }, (_, i) => i + 1);
  const c = new Cluster(
    defaultClusterOptions({
      seed: p.u32(),
      nodeIds: ids,
      initialVoters: ids.slice(0, opts.nodes),
      network: randomNetwork(p),
      diskLatencyMsMax: p.range(0, 3),
      snapshotEvery: p.pick([0, 5, 25, 100]),
      snapshotKeep: p.pick([0, 3]),
      maxSizePerMsg: p.pick([64, 1024, 64 * 1024]),
      maxInflightMsgs: p.pick([1, 4, 64]),
      preVote: p.chance(0.75),
      checkQuorum: p.chance(0.75),
    }),
  );
  if (opts.trace !== undefined) c.trace = opts.trace;
  let counter = 0;
  let healMs = -1;
  let error = '';
  try {
    // Chaos.
    while (c.now < opts.chaosMs) {
      const roll = p.float();
      const up = ids.filter((id) => c.node(id).up);
      const down = ids.filter((id) => !c.node(id).up);
      if (roll < 0.1) {
        for (const id of up) c.readIndex(id);
      } else if (roll < 0.35) {
        const burst = p.range(1, CLIENT_BURST_MAX);
        for (let i = 0; i < burst && up.length > 0; i++)
          c.propose(p.pick(up), encoder.encode(`v${counter++}`));
      } else if (roll < 0.43 && up.length > 0) {
        c.crash(p.pick(up));
      } else if (roll < 0.55 && down.length > 0) {
        c.start(p.pick(down));
      } else if (roll < 0.6) {
        const shuffled = p.shuffle(ids.slice());
        const k = p.range(1, ids.length - 1);
        c.net.partition([shuffled.slice(0, k), shuffled.slice(k)]);
        c.trace?.(`${c.now}ms partition ${shuffled.slice(0, k).join(',')} | ${shuffled.slice(k).join(',')}`);
      } else if (roll < 0.65) {
        // Asymmetric: a directed link fails while the reverse direction keeps working.
        const a = p.pick(ids);
        const b = p.pick(ids.filter((x) => x !== a));
        c.net.cutLink(a, b);
        c.trace?.(`${c.now}ms cut ${a}->${b}`);
      } else if (roll < 0.72) {
        c.net.heal();
        c.trace?.(`${c.now}ms heal network`);
      } else if (roll < 0.74) {
        c.net.options = randomNetwork(p);
      } else if (roll < 0.8 && membership) {
        changeMembership(c, p, ids);
      }
      c.runFor(p.range(5, 200));
    }
    // Heal everything, then demand a leader and progress within the bound.
    for (const id of ids) if (!c.node(id).up) c.start(id);
    c.net.heal();
    c.net.options = RELIABLE;
    c.trace?.(`${c.now}ms healed`);
    const healedAt = c.now;
    const probe = `probe-${opts.seed}`;
    let probeIndex = -1;
    while (c.now - healedAt <= LIVENESS_BOUND_MS) {
      const l = c.leader();
      if (probeIndex < 0 && l !== undefined) {
        probeIndex = findProbe(c, probe);
        if (probeIndex < 0 && l.proposals.length === 0) c.propose(l.id, encoder.encode(probe));
      }
      if (probeIndex < 0) probeIndex = findProbe(c, probe);
      // Every member of the leader's configuration must apply the probe; others may not hear of it.
      const members = l === undefined ? ids : membersOf(c, l.id);
      if (probeIndex > 0 && members.every((id) => c.node(id).appliedIndex >= probeIndex)) {
        healMs = c.now - healedAt;
        break;
      }
      c.runFor(LIVENESS_POLL_MS);
    }
    if (healMs < 0) {
      const states = ids.map((id) => {
        const r = c.node(id).rn?.raft;
        if (r === undefined) return `${id}:down`;
        const cs = r.status().confState;
        const cfg = `${cs.voters.join(',')}${cs.votersOutgoing.length > 0 ? `&&${cs.votersOutgoing.join(',')}` : ''}`;
        return (
          `${id}:${r.state}/t${r.term}/v${r.vote}/last${r.raftLog.lastTerm()}@${r.raftLog.lastIndex()}` +
          `/c${r.raftLog.committed}/a${c.node(id).appliedIndex}/cfg(${cfg})`
        );
      });
      error = `liveness: no leader and progress within ${LIVENESS_BOUND_MS}ms of healing (${states.join(' ')})`;
    }
  } catch (err) {
    // Safety violations and failed assertions (in the core or the simulator) fail the seed.
    if (!(err instanceof Error)) throw err;
    error = `${err.name}: ${err.message}`;
  }
  return {
    seed: opts.seed,
    ok: error === '',
    error,
    simMs: c.now,
    committed: c.checkers.normalApplied,
    leaders: c.checkers.leaders.size,
    messages: c.net.sent,
    reads: c.readsServed,
    healMs,
  };
}

function membersOf(c: Cluster, leader: NodeId): NodeId[] {
  const cs = c.node(leader).rn?.status().confState;
  if (cs === undefined) return [];
  return [...new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners])];
}

/** changeMembership asks the leader for a random change: add, promote, demote, remove, or a joint swap. */
function changeMembership(c: Cluster, p: Prng, ids: readonly NodeId[]): void {
  const l = c.leader();
  const cs = l?.rn?.status().confState;
  if (l === undefined || cs === undefined) return;
  const voters = cs.voters;
  const nonVoters = ids.filter((id) => !voters.includes(id));
  // The leader itself may be removed: the core then hands leadership to a remaining voter.
  const removable = voters.filter((id) => id !== l.id || p.chance(0.5));
  const changes: ConfChangeSingle[] = [];
  const roll = p.float();
  if (roll < 0.3 && nonVoters.length > 0) {
    changes.push({ type: 'addNode', nodeId: p.pick(nonVoters) });
  } else if (roll < 0.5 && nonVoters.length > 0) {
    changes.push({ type: 'addLearner', nodeId: p.pick(nonVoters) });
  } else if (roll < 0.75 && voters.length > 2) {
    changes.push({ type: p.chance(0.5) ? 'removeNode' : 'addLearner', nodeId: p.pick(removable) });
  } else if (roll < 0.8 && removable.length > 0) {
    c.transferLeader(l.id, p.pick(removable));
  } else if (nonVoters.length > 0 && removable.length > 0) {
    // Swap a voter for a non-voter in one step: this needs a joint configuration.
    changes.push(
      { type: 'addNode', nodeId: p.pick(nonVoters) },
      { type: 'removeNode', nodeId: p.pick(removable) },
    );
  }
  if (changes.length === 0) return;
  const transition = p.pick(['auto', 'auto', 'jointImplicit'] as const);
  c.trace?.(`${c.now}ms propose conf change ${JSON.stringify(changes)} ${transition}`);
  c.proposeConfChange(l.id, { transition, changes, context: new Uint8Array(0) });
}

function findProbe(c: Cluster, probe: string): number {
  const key = `N:${probe}`;
  const committed = c.checkers.committed;
  for (let i = committed.length - 1; i > 0; i--) if (committed[i]?.key === key) return i;
  return -1;
}
