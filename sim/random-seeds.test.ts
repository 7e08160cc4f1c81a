// CI's share of the randomized simulation: RANDOM_SEEDS_CI fixed seeds and FRESH_SEEDS_CI fresh
// ones (a random start, printed) for each cluster size, every checker on. `npm run sim --
// --seeds N` runs as many more as you like; a failure prints the seed, and `npm run sim --
// --seed S --nodes K --trace` replays it exactly.

import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CHAOS_MS_DEFAULT, runSeed } from './random-run.js';

/** RANDOM_SEEDS_CI is the number of fixed seeds (1..N) per cluster size run on every commit. */
const RANDOM_SEEDS_CI = 500;
/**
 * FRESH_SEEDS_CI: seeds per cluster size from a random start on every run (about 1 s each size):
 * fixed seeds alone never explore anything new (seed 7005876 was found by a long run).
 */
const FRESH_SEEDS_CI = 300;
/** SEED_SPACE: fresh seeds are drawn below this. */
const SEED_SPACE = 2 ** 31;
/** STALE_APPEND_SEED: a 5-node seed where a deposed leader's Ready carried appends it overwrote. */
const STALE_APPEND_SEED = 7005876;

function runSeeds(from: number, count: number, nodes: number): string[] {
  const failures: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed({ seed, nodes, chaosMs: CHAOS_MS_DEFAULT });
    if (!r.ok)
      failures.push(
        `seed ${seed}: ${r.error} (replay: npm run sim -- --seed ${seed} --nodes ${nodes} --trace)`,
      );
  }
  return failures;
}

describe('randomized simulation', () => {
  for (const nodes of [3, 5]) {
    it(`${RANDOM_SEEDS_CI} seeds, ${nodes} nodes: safety checkers hold and the healed cluster makes progress`, () => {
      expect(runSeeds(1, RANDOM_SEEDS_CI, nodes)).toEqual([]);
    });

    it(`${FRESH_SEEDS_CI} fresh seeds, ${nodes} nodes: the same, from a random start`, () => {
      const from = randomInt(RANDOM_SEEDS_CI + 1, SEED_SPACE - FRESH_SEEDS_CI);
      console.log(`raft simulator, ${nodes} nodes: seeds ${from}..${from + FRESH_SEEDS_CI - 1}`);
      expect(runSeeds(from, FRESH_SEEDS_CI, nodes)).toEqual([]);
    });
  }

  // A deposed leader's Ready carried appends for entries that the same Ready overwrote with its
  // successor's; the harness sent them after the save and its persisted-before-send check
  // failed. The core now drops a deposed leader's messages from its Readys.
  it('a deposed leader does not send appends of entries it overwrote (seed 7005876, once a finding)', () => {
    expect(runSeeds(STALE_APPEND_SEED, 1, 5)).toEqual([]);
  });

  it('a seed replays exactly', () => {
    const a = runSeed({ seed: 12345, nodes: 5, chaosMs: CHAOS_MS_DEFAULT });
    const b = runSeed({ seed: 12345, nodes: 5, chaosMs: CHAOS_MS_DEFAULT });
    expect(b).toEqual(a);
  });
});
