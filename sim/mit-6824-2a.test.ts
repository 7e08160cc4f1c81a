// MIT 6.824 lab 2A (leader election), adapted to the simulator. Each test keeps the course's
// name and structure; server ids are 1-based and time is simulated.

import { describe, expect, it } from 'vitest';
import { ELECTION_TIMEOUT_MS, Harness, next, scenarioSeeds } from './harness.js';

describe('6.824 2A: leader election', () => {
  it.each(scenarioSeeds(2001))('initial election (seed %i)', (seed) => {
    const h = new Harness(3, seed);
    h.checkOneLeader();
    // Everyone agrees on the term, and the term stays put with no failures.
    h.sleep(50);
    const term1 = h.checkTerms();
    expect(term1).toBeGreaterThanOrEqual(1);
    h.sleep(2 * ELECTION_TIMEOUT_MS);
    const term2 = h.checkTerms();
    expect(term2).toBe(term1);
    h.checkOneLeader();
  });

  it.each(scenarioSeeds(2002))('re-election (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    const leader1 = h.checkOneLeader();
    // If the leader disconnects, a new one is elected.
    h.disconnect(leader1);
    h.checkOneLeader();
    // The old leader rejoining does not disturb the new one.
    h.connect(leader1);
    const leader2 = h.checkOneLeader();
    // No quorum: no leader.
    h.disconnect(leader2);
    h.disconnect(next(leader2, 1, n));
    h.sleep(2 * ELECTION_TIMEOUT_MS);
    h.checkNoLeader();
    // A quorum arises: it elects a leader.
    h.connect(next(leader2, 1, n));
    h.checkOneLeader();
    // Re-joining the last node does not prevent a leader from existing.
    h.connect(leader2);
    h.checkOneLeader();
  });

  it.each(scenarioSeeds(2003))('many elections (7 nodes) (seed %i)', (seed) => {
    const n = 7;
    const h = new Harness(n, seed);
    h.checkOneLeader();
    for (let ii = 1; ii < 10; ii++) {
      const i1 = h.rand(n) + 1;
      const i2 = h.rand(n) + 1;
      const i3 = h.rand(n) + 1;
      h.disconnect(i1);
      h.disconnect(i2);
      h.disconnect(i3);
      // Either the current leader is still alive, or the remaining four elect a new one.
      h.checkOneLeader();
      h.connect(i1);
      h.connect(i2);
      h.connect(i3);
    }
    h.checkOneLeader();
  });
});
