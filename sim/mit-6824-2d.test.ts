// MIT 6.824 lab 2D (log compaction), adapted to the simulator. Every node snapshots after
// SNAPSHOT_INTERVAL applied entries and compacts its log; lagging followers catch up through
// InstallSnapshot (MsgSnap).

import { describe, expect, it } from 'vitest';
import { Harness, next, scenarioSeeds } from './harness.js';

/** SNAPSHOT_INTERVAL is the course's snapshot frequency, in applied entries. */
const SNAPSHOT_INTERVAL = 10;
/** MAX_LOG_ENTRIES bounds the durable log after compaction (the course bounds it in bytes). */
const MAX_LOG_ENTRIES = 4 * SNAPSHOT_INTERVAL;

function snapCommon(opts: { disconnect: boolean; reliable: boolean; crash: boolean }, seed: number): Harness {
  const iters = 30;
  const n = 3;
  const h = new Harness(n, seed, { snapshotEvery: SNAPSHOT_INTERVAL, snapshotKeep: 0 });
  h.setUnreliable(!opts.reliable);
  h.one(String(h.rand(1e9)), n, true);
  let leader1 = h.checkOneLeader();
  for (let i = 0; i < iters; i++) {
    let victim = next(leader1, 1, n);
    let sender = leader1;
    if (i % 3 === 1) {
      sender = next(leader1, 1, n);
      victim = leader1;
    }
    if (opts.disconnect) {
      h.disconnect(victim);
      h.one(String(h.rand(1e9)), n - 1, true);
    }
    if (opts.crash) {
      h.crash(victim);
      h.one(String(h.rand(1e9)), n - 1, true);
    }
    // Perhaps send enough to get a snapshot.
    const nn = SNAPSHOT_INTERVAL / 2 + h.rand(SNAPSHOT_INTERVAL);
    for (let j = 0; j < nn; j++) h.startCmd(sender, String(h.rand(1e9)));
    if (!opts.disconnect && !opts.crash) {
      // Make sure all followers caught up, so no InstallSnapshot is required.
      h.one(String(h.rand(1e9)), n, true);
    } else {
      h.one(String(h.rand(1e9)), n - 1, true);
    }
    expect(h.c.logSizeMax()).toBeLessThan(MAX_LOG_ENTRIES);
    if (opts.disconnect) {
      // Reconnect a follower, which may be behind and need a snapshot to catch up.
      h.connect(victim);
      h.one(String(h.rand(1e9)), n, true);
      leader1 = h.checkOneLeader();
    }
    if (opts.crash) {
      h.start(victim);
      h.connect(victim);
      h.one(String(h.rand(1e9)), n, true);
      leader1 = h.checkOneLeader();
    }
  }
  return h;
}

describe('6.824 2D: log compaction', () => {
  it.each(scenarioSeeds(2301))('snapshots basic (seed %i)', (seed) => {
    const h = snapCommon({ disconnect: false, reliable: true, crash: false }, seed);
    // Two iterations in three start commands on the leader (the third on a follower, refused).
    expect(h.c.checkers.normalApplied).toBeGreaterThan(150);
  });

  it.each(scenarioSeeds(2302))('install snapshots (disconnect) (seed %i)', (seed) => {
    const h = snapCommon({ disconnect: true, reliable: true, crash: false }, seed);
    expect(h.c.net.snapshots).toBeGreaterThan(0);
  });

  it.each(scenarioSeeds(2303))('install snapshots (disconnect + unreliable) (seed %i)', (seed) => {
    const h = snapCommon({ disconnect: true, reliable: false, crash: false }, seed);
    expect(h.c.net.snapshots).toBeGreaterThan(0);
  });

  it.each(scenarioSeeds(2304))('install snapshots (crash) (seed %i)', (seed) => {
    const h = snapCommon({ disconnect: false, reliable: true, crash: true }, seed);
    expect(h.c.net.snapshots).toBeGreaterThan(0);
  });

  it.each(scenarioSeeds(2305))('install snapshots (unreliable + crash) (seed %i)', (seed) => {
    const h = snapCommon({ disconnect: false, reliable: false, crash: true }, seed);
    expect(h.c.net.snapshots).toBeGreaterThan(0);
  });
});
