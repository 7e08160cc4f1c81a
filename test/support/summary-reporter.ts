// Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own
// summary, so that any CI that reads a runner's last line can count the run without knowing vitest.
// Before it, the slowest test files (SLOWEST_SHOWN), to keep CI inside its time budget.
import type { Reporter, TestModule } from 'vitest/node';

/** SLOWEST_SHOWN: test files listed by duration at the end of a run. */
const SLOWEST_SHOWN = 12;

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const slowest = testModules
      .map((m) => ({ file: m.moduleId, ms: m.diagnostic().duration }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, SLOWEST_SHOWN);
    if (slowest.length > 1) {
      const root = process.cwd();
      process.stdout.write('\nslowest test files:\n');
      for (const x of slowest)
        process.stdout.write(
          `  ${(x.ms / 1000).toFixed(1).padStart(6)} s  ${x.file.replace(`${root}/`, '')}\n`,
        );
    }
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A module that failed to load has no tests but must still count as a failure.
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) failed++;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
