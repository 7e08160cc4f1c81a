// Pacer: the time slices of one background job (a compaction, a sealed file's hint) on an event
// loop it shares with requests, sized to the load between its steps (issue 14).
//
// A step used to take the whole step budget (compactionStepMs, 1 ms) every turn of the loop. On a
// loop kept busy by reads alone, that gave the background job a third of it: 100k GETs at -P 16
// right after 100k SETs ran at 200-250k/s against 290-300k/s once the compaction the SETs left
// due had finished (2.3 µs of compaction per GET over the run; docs/benchmarks.md). The rule now:
//
// - While writes are being published (the store's publish count moved since the last step), a
//   step takes the whole budget, as before: the work behind it (dead bytes to reclaim, files to
//   hint) grows with the writes, and a job that fell behind them would let the disk grow.
// - When the turn between two steps was short (at most IDLE_GAP_MS), nothing else was waiting:
//   the whole budget too, so an idle store compacts at full speed.
// - Otherwise (only reads keep the loop busy) a step takes PACED_SHARE of the loop: its budget is
//   the last turn's length times PACED_SHARE / (1 - PACED_SHARE), at least MIN_STEP_MS (so the
//   job always progresses) and at most the whole budget.
//
// The job then finishes later under a read load; nothing it does is needed by a read.
import { performance } from 'node:perf_hooks';
import { TimeSlice } from './time-slice.js';

/** PACED_SHARE: the share of a loop busy with reads only that a background job takes. */
export const PACED_SHARE = 0.2;
/** IDLE_GAP_MS: a turn between two steps at most this long means no request was waiting. */
export const IDLE_GAP_MS = 0.2;
/** MIN_STEP_MS: the shortest step (unless the whole budget is shorter). */
export const MIN_STEP_MS = 0.1;

export class Pacer extends TimeSlice {
  private published: number;
  /** budgets: the budget decided at each pause, kept for tests when `record` is set. */
  readonly budgets: number[] | undefined;

  /**
   * `stepMs`: the whole budget of a step; `publishes`: the store's count of writes published;
   * `now`: milliseconds (performance.now; a test's clock).
   */
  constructor(
    private readonly stepMs: number,
    private readonly publishes: () => number,
    private readonly now: () => number = () => performance.now(),
    record = false,
  ) {
    super(stepMs);
    this.published = publishes();
    this.budgets = record ? [] : undefined;
  }

  /** budget: what the next step may take (milliseconds). */
  get budget(): number {
    return this.budgetMs;
  }

  /**
   * pause yields one turn of the event loop, then sizes the next step from how long that turn
   * took and whether writes were published (a bound function, to pass as a callback).
   */
  readonly pause = async (): Promise<void> => {
    const from = this.now();
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.decide(this.now() - from);
  };

  /** decide sets the next step's budget after a turn of `gapMs` (see the rule at the top). */
  decide(gapMs: number): void {
    const published = this.publishes();
    const writing = published !== this.published;
    this.published = published;
    this.budgetMs =
      writing || gapMs <= IDLE_GAP_MS
        ? this.stepMs
        : Math.min(this.stepMs, Math.max(MIN_STEP_MS, (gapMs * PACED_SHARE) / (1 - PACED_SHARE)));
    this.budgets?.push(this.budgetMs);
  }
}
