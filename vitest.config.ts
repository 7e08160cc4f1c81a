import { defineConfig } from 'vitest/config';

/**
 * MULTI_PROCESS: suites that start several Cairn processes each (three-member clusters, SIGKILL
 * crash loops, the built command lines, the packed tarball, third-party client libraries against
 * a server and redis-server). Their tests run concurrently within a file and time elections,
 * kills and restarts: they get the machine's cores to themselves, one file at a time.
 */
const MULTI_PROCESS = [
  'test/cluster/**/*.test.ts',
  'test/crash/**/*.test.ts',
  'test/cli/**/*.test.ts',
  'test/packaging/**/*.test.ts',
  'test/compat/**/*.test.ts',
];

/**
 * IN_PROCESS_WORKERS: the other suites run in process (servers on loopback, simulators, engines
 * on temporary directories) and share two cores well: two files at a time took about 130 s
 * where one took about 210 s (CI's Node 24 pass has run them so since 2026-12-05).
 */
const IN_PROCESS_WORKERS = 2;

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Debug checks in the storage engine (CaskOptions.debugChecks), here and in every process a
    // test spawns: the whole key directory and expiry index verified after recovery and compaction.
    env: { CAIRN_DEBUG_CHECKS: '1' },
    // Byte arrays compare by their bytes in one call (test/support/byte-equality.ts).
    setupFiles: ['./test/support/byte-equality.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Two groups, one after the other (sequence.groupOrder): the in-process suites two files at
    // a time, then the multi-process suites one file at a time.
    projects: [
      {
        extends: true,
        test: {
          name: 'in-process',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'sim/**/*.test.ts'],
          exclude: MULTI_PROCESS,
          maxWorkers: IN_PROCESS_WORKERS,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'multi-process',
          include: MULTI_PROCESS,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
