// Pacer: the time slices of one background job (a compaction, a sealed file's hint) on an event
// loop it shares with requests, sized to the load between its steps (issue 14).
//
// A step used to take the whole step budget (compactionStepMs, 1 ms) every turn of the loop. On a
// loop kept busy by reads alone, that gave the background job a third of it: 100k GETs at -P 16
// right after 100k SETs ran at 200-250k/s against 290-300k/s once the compaction the SETs left
// due had finished (2.3 µs of compaction per GET over the run; docs/benchmarks.md). The rule now,
// after each turn of the loop between two steps:
//
// - A turn of at most IDLE_GAP_MS: nothing else was waiting; the whole budget, so an idle store
//   compacts at full speed.
// - Otherwise a step takes PACED_SHARE of the loop: the last turn's length times
//   PACED_SHARE / (1 - PACED_SHARE), at least MIN_STEP_MS (so the job always progresses).
// - And while writes are published, at least the time to keep up with them: the bytes published
//   since the last step times the job's work per written byte, at the rate its last steps did
//   that work (`worked`). A job that reports no rate (or before its first), or says it is behind
//   (a compaction whose dead bytes are far past its trigger), gets the whole budget whenever
//   writes were published: the work behind it grows with the writes, and a job that fell behind
//   them would let the disk grow. Without writes nothing grows, so a backlog is paid at the
//   loop's share.
//
// Every budget is at most the whole step budget.
import { type EventLoop, nodeEventLoop } from './event-loop.js';
import { TimeSlice } from './time-slice.js';

/** PACED_SHARE: the share of a busy loop that a background job takes beyond keeping up. */
export const PACED_SHARE = 0.2;
/** IDLE_GAP_MS: a turn between two steps at most this long means no request was waiting. */
export const IDLE_GAP_MS = 0.2;
/** MIN_STEP_MS: the shortest step (unless the whole budget is shorter). */
export const MIN_STEP_MS = 0.1;
/** RATE_WEIGHT: the weight of the latest step in the job's measured rate (a moving average). */
const RATE_WEIGHT = 0.25;
/** RATE_MIN_MS: steps shorter than this say too little about the rate to count. */
const RATE_MIN_MS = 0.02;

/** PaceSource: what a pacer watches. */
export interface PaceSource {
  /** publishedBytes: the bytes of the writes the store has published so far. */
  publishedBytes(): number;
  /** behind: the job has fallen behind the writes; its steps take the whole budget. */
  behind?(): boolean;
  /**
   * workPerByte: the work (in the units the job gives `worked`) each byte written makes for the
   * job; undefined: the job reports no rate, and any write gives it the whole budget.
   */
  readonly workPerByte?: number;
}

export class Pacer extends TimeSlice {
  private published: number;
  private startedAt = 0;
  /** rate: work per millisecond of the job's recent steps (undefined until measured). */
  private rate: number | undefined;
  /** budgets: the budget decided at each pause, kept for tests when `record` is set. */
  readonly budgets: number[] | undefined;

  /**
   * `stepMs`: the whole budget of a step; `source`: the store's published bytes and the job's
   * state; `loop`: the time and the turns (the machine's; a test's or the simulator's).
   */
  constructor(
    private readonly stepMs: number,
    private readonly source: PaceSource,
    loop: EventLoop = nodeEventLoop,
    record = false,
  ) {
    super(stepMs, loop);
    this.published = source.publishedBytes();
    this.budgets = record ? [] : undefined;
  }

  /** budget: what the next step may take (milliseconds). */
  get budget(): number {
    return this.budgetMs;
  }

  override start(): this {
    this.startedAt = this.loop.now();
    return super.start();
  }

  /**
   * worked reports the work a step begun by `start` has done (for a compaction: the bytes it
   * copied), so that the pacer knows how long keeping up with a write takes.
   */
  worked(work: number): void {
    const ms = this.loop.now() - this.startedAt;
    if (work <= 0 || ms < RATE_MIN_MS) return;
    const rate = work / ms;
    this.rate = this.rate === undefined ? rate : this.rate + RATE_WEIGHT * (rate - this.rate);
  }

  /**
   * pause yields one turn of the event loop, then sizes the next step from how long that turn
   * took and what was written meanwhile (a bound function, to pass as a callback).
   */
  readonly pause = async (): Promise<void> => {
    const from = this.loop.now();
    await this.loop.nextTurn();
    this.decide(this.loop.now() - from);
  };

  /** decide sets the next step's budget after a turn of `gapMs` (see the rule at the top). */
  decide(gapMs: number): void {
    const published = this.source.publishedBytes();
    const written = published - this.published;
    this.published = published;
    this.budgetMs = this.budgetFor(gapMs, written);
    this.budgets?.push(this.budgetMs);
  }

  private budgetFor(gapMs: number, written: number): number {
    const whole = this.stepMs;
    if (gapMs <= IDLE_GAP_MS) return whole;
    let budget = Math.max(MIN_STEP_MS, (gapMs * PACED_SHARE) / (1 - PACED_SHARE));
    if (written > 0) {
      const perByte = this.source.workPerByte;
      if (perByte === undefined || this.rate === undefined || this.source.behind?.() === true) return whole;
      budget = Math.max(budget, (written * perByte) / this.rate);
    }
    return Math.min(whole, budget);
  }
}
