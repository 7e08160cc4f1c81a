// TimeSlice: a budget of wall-clock time for one step of background work that shares the event
// loop with requests (compaction, sealed files' hints). Every request that arrives during a step
// waits for it, so a step's length is a floor under request latency, whatever the work costs in
// total (issue 14, "reads while writes are durable": steps of 10-50 ms were the GET p99). A
// Pacer (pacer.ts) is a TimeSlice whose budget follows the load.
import { type EventLoop, nodeEventLoop } from './event-loop.js';

export class TimeSlice {
  private end = 0;

  /** `loop`: where the time comes from (the machine's; the replica simulator's). */
  constructor(
    protected budgetMs: number,
    protected readonly loop: EventLoop = nodeEventLoop,
  ) {}

  /** start begins a slice now. */
  start(): this {
    this.end = this.loop.now() + this.budgetMs;
    return this;
  }

  /** over: the slice begun by the last start is spent (a bound function, to pass as a callback). */
  readonly over = (): boolean => this.loop.now() >= this.end;
}
