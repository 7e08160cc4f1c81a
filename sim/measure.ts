// Measurements for docs/raft.md: seeds per second, entries committed per second of wall time
// in the simulator, and ticks to elect a new leader after the leader crashes.

import type { NodeId } from '../src/raft/index.js';
import { assert } from '../src/stdx/assert.js';
import { Cluster, defaultClusterOptions, TICK_MS } from './cluster.js';
import { CHAOS_MS_DEFAULT, runSeed } from './random-run.js';

/** STEADY_BATCH is how many commands the load generator offers the leader per millisecond. */
export const STEADY_BATCH = 16;
/** ELECTION_WAIT_MS_MAX bounds one re-election measurement; exceeding it is a liveness failure. */
export const ELECTION_WAIT_MS_MAX = 30_000;

const encoder = new TextEncoder();

export interface SeedRate {
  readonly nodes: number;
  readonly seeds: number;
  readonly failures: number;
  readonly seedsPerSecond: number;
}

export function measureSeeds(nodes: number, seeds: number, chaosMs = CHAOS_MS_DEFAULT): SeedRate {
  const t0 = performance.now();
  let failures = 0;
  for (let s = 1; s <= seeds; s++) if (!runSeed({ seed: s, nodes, chaosMs }).ok) failures++;
  const secs = (performance.now() - t0) / 1000;
  return { nodes, seeds, failures, seedsPerSecond: seeds / secs };
}

export interface Throughput {
  readonly nodes: number;
  readonly simMs: number;
  readonly committed: number;
  readonly wallSeconds: number;
  readonly entriesPerWallSecond: number;
  readonly entriesPerSimSecond: number;
}

/** measureThroughput offers a steady load to the leader of a healthy cluster. */
export function measureThroughput(nodes: number, simMs: number): Throughput {
  const ids: NodeId[] = Array.from({ length: nodes }, (_, i) => i + 1);
  const c = new Cluster(
    defaultClusterOptions({
      seed: 42,
      nodeIds: ids,
      initialVoters: ids,
      snapshotEvery: 10_000,
      snapshotKeep: 100,
    }),
  );
  c.runFor(2000); // Elect a leader first.
  const t0 = performance.now();
  const start = c.now;
  const before = c.checkers.normalApplied;
  let counter = 0;
  while (c.now - start < simMs) {
    const l = c.leader();
    if (l !== undefined)
      for (let i = 0; i < STEADY_BATCH; i++) c.propose(l.id, encoder.encode(`x${counter++}`));
    c.runFor(1);
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const committed = c.checkers.normalApplied - before;
  return {
    nodes,
    simMs,
    committed,
    wallSeconds,
    entriesPerWallSecond: committed / wallSeconds,
    entriesPerSimSecond: committed / (simMs / 1000),
  };
}

export interface ElectionTicks {
  readonly nodes: number;
  readonly trials: number;
  readonly meanTicks: number;
  readonly p50Ticks: number;
  readonly maxTicks: number;
}

/** measureElection crashes the leader of a healthy cluster and counts ticks until a new one leads. */
export function measureElection(nodes: number, trials: number): ElectionTicks {
  const samples: number[] = [];
  const ids: NodeId[] = Array.from({ length: nodes }, (_, i) => i + 1);
  for (let t = 1; t <= trials; t++) {
    const c = new Cluster(defaultClusterOptions({ seed: t, nodeIds: ids, initialVoters: ids }));
    c.runFor(3000);
    const old = c.leader();
    assert(old !== undefined, 'no initial leader');
    const oldTerm = old.rn?.raft.term ?? 0;
    // Let the crash land at a random point of the heartbeat cycle.
    c.runFor(c.prng.int(100));
    c.crash(old.id);
    const crashedAt = c.now;
    for (;;) {
      c.runFor(1);
      const l = c.leader();
      if (l !== undefined && (l.rn?.raft.term ?? 0) > oldTerm) break;
      assert(c.now - crashedAt < ELECTION_WAIT_MS_MAX, `no new leader within ${ELECTION_WAIT_MS_MAX}ms`);
    }
    samples.push((c.now - crashedAt) / TICK_MS);
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return {
    nodes,
    trials,
    meanTicks: mean,
    p50Ticks: samples[Math.floor(samples.length / 2)] ?? 0,
    maxTicks: samples[samples.length - 1] ?? 0,
  };
}
