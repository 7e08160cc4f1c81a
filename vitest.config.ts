import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'sim/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Debug checks in the storage engine (CaskOptions.debugChecks), here and in every process a
    // test spawns: the whole key directory and expiry index verified after recovery and compaction.
    env: { CAIRN_DEBUG_CHECKS: '1' },
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
