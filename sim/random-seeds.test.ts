// CI's share of the randomized simulation: RANDOM_SEEDS_CI seeds for each cluster size, every
// checker on. `npm run sim -- --seeds N` runs as many more as you like; a failure prints the
// seed, and `npm run sim -- --seed S --nodes K --trace` replays it exactly.

import { describe, expect, it } from 'vitest';
import { CHAOS_MS_DEFAULT, runSeed } from './random-run.js';

/** RANDOM_SEEDS_CI is the number of seeds per cluster size run on every commit. */
const RANDOM_SEEDS_CI = 500;

describe('randomized simulation', () => {
  for (const nodes of [3, 5]) {
    it(`${RANDOM_SEEDS_CI} seeds, ${nodes} nodes: safety checkers hold and the healed cluster makes progress`, () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= RANDOM_SEEDS_CI; seed++) {
        const r = runSeed({ seed, nodes, chaosMs: CHAOS_MS_DEFAULT });
        if (!r.ok)
          failures.push(
            `seed ${seed}: ${r.error} (replay: npm run sim -- --seed ${seed} --nodes ${nodes} --trace)`,
          );
      }
      expect(failures).toEqual([]);
    });
  }

  it('a seed replays exactly', () => {
    const a = runSeed({ seed: 12345, nodes: 5, chaosMs: CHAOS_MS_DEFAULT });
    const b = runSeed({ seed: 12345, nodes: 5, chaosMs: CHAOS_MS_DEFAULT });
    expect(b).toEqual(a);
  });
});
