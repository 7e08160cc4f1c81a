// ManualClock: a Clock whose time moves only when a test says so, so expiry and timers can be
// tested without sleeping. `advance` fires due timers in time order, synchronously.
import type { Clock, Timer } from './clock.js';

interface Scheduled {
  at: number;
  readonly periodMs: number | undefined;
  readonly fn: () => void;
  cancelled: boolean;
}

/** ADVANCE_FIRINGS_MAX: timer callbacks one advance() may run (guards against a runaway loop). */
const ADVANCE_FIRINGS_MAX = 1_000_000;

export class ManualClock implements Clock {
  private now: number;
  private monotonic = 0;
  private readonly timers: Scheduled[] = [];

  constructor(startMs = Date.UTC(2030, 0, 1)) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  monotonicMs(): number {
    return this.monotonic;
  }

  every(ms: number, fn: () => void): Timer {
    return this.schedule(ms, ms, fn);
  }

  after(ms: number, fn: () => void): Timer {
    return this.schedule(ms, undefined, fn);
  }

  /** set jumps to an absolute time without firing timers (a wall-clock step). */
  set(nowMs: number): void {
    this.now = nowMs;
  }

  /** advance moves time forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (let fired = 0; ; fired++) {
      if (fired >= ADVANCE_FIRINGS_MAX) throw new Error('ManualClock.advance: too many timer firings');
      let next: Scheduled | undefined;
      for (const t of this.timers)
        if (!t.cancelled && t.at <= target && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.monotonic += next.at - this.now;
      this.now = next.at;
      if (next.periodMs === undefined) next.cancelled = true;
      else next.at += next.periodMs;
      next.fn();
    }
    this.monotonic += target - this.now;
    this.now = target;
    for (let i = this.timers.length - 1; i >= 0; i--)
      if (this.timers[i]?.cancelled === true) this.timers.splice(i, 1);
  }

  private schedule(ms: number, periodMs: number | undefined, fn: () => void): Timer {
    const t: Scheduled = {
      at: this.now + Math.max(ms, 1),
      periodMs: periodMs === undefined ? undefined : Math.max(periodMs, 1),
      fn,
      cancelled: false,
    };
    this.timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }
}
