// The replica simulator's one seeded scheduler (docs/replica-sim.md). Every timer, every
// message delivery and every I/O completion of every member is an event in one heap ordered by
// (simulated time, sequence); nothing reads the wall clock or waits on real I/O, so a seed replays
// exactly.
//
// Between two events the scheduler yields one real event-loop turn (setImmediate), so that the
// promise chains an event started settle before the next event runs, exactly as they would
// before the next setImmediate callback in production (the Replica's per-turn step relies on
// that: a turn's proposals, messages and reads share one Ready). With no real I/O and no real
// timers in play, what runs in that turn is a deterministic function of the events so far.
//
// Processes: each member incarnation is a SimProcess. A crash kills it: its timers, deferred
// steps and pending I/O completions are then skipped, as a killed process runs nothing more.
import type { Clock, Timer } from '../src/io/clock.js';
import { assert } from '../src/stdx/assert.js';
import type { EventLoop } from '../src/stdx/event-loop.js';
import { MinHeap } from './heap.js';

/** SIM_EPOCH_MS: the wall-clock time at simulated time 0 (any fixed date; 2030-01-01). */
export const SIM_EPOCH_MS = Date.UTC(2030, 0, 1);
/** MAX_EVENTS_PER_RUN bounds one runUntil call: more means a runaway loop (a simulator bug). */
export const MAX_EVENTS_PER_RUN = 5_000_000;

interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class SimScheduler {
  /** now: simulated milliseconds since the start of the run. */
  now = 0;
  /** events: events run so far (cancelled ones excluded). */
  events = 0;
  private seq = 0;
  private readonly heap = new MinHeap<SimEvent>();
  /** failure: the first exception an event threw; the run stops at it. */
  failure: Error | undefined;
  /** afterEvent: runs once each event's promise chains settled (the per-step checkers). */
  afterEvent: (() => void) | undefined;

  /** at runs fn after delayMs of simulated time (0: after every event already due now). */
  at(delayMs: number, fn: () => void): Timer {
    assert(delayMs >= 0 && Number.isFinite(delayMs), `bad delay ${delayMs}`);
    const ev: SimEvent = { at: this.now + delayMs, seq: this.seq++, fn, cancelled: false };
    this.heap.push(ev);
    return {
      cancel: () => {
        ev.cancelled = true;
      },
    };
  }

  /**
   * runUntil processes events up to simulated time `end` (or until `stop` says so, checked after
   * each event), letting the promise chains of each event settle before the next.
   */
  async runUntil(end: number, stop?: () => boolean): Promise<void> {
    for (let n = 0; ; n++) {
      assert(n < MAX_EVENTS_PER_RUN, 'runaway simulation: too many events in one run');
      if (this.failure !== undefined) throw this.failure;
      if (stop?.() === true) return;
      const ev = this.heap.peek();
      if (ev === undefined || ev.at > end) {
        this.now = Math.max(this.now, end);
        return;
      }
      this.heap.pop();
      if (ev.cancelled) continue;
      this.now = ev.at;
      this.events++;
      try {
        ev.fn();
      } catch (err) {
        this.fail(err);
      }
      await nextTurn();
      try {
        this.afterEvent?.();
      } catch (err) {
        this.fail(err);
      }
    }
  }

  /** fail records a failure found outside an event (a checker in a promise callback). */
  fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
  }
}

/** SimProcess: one incarnation of a member; everything it scheduled dies with it. */
export class SimProcess {
  alive = true;
  /** deathWatchers: run once when the process dies (what its peers' sockets would see). */
  private deathWatchers: (() => void)[] = [];

  constructor(
    readonly sched: SimScheduler,
    /** name: for traces ("n2#3": member 2, third incarnation). */
    readonly name: string,
  ) {}

  /** defer: the process's setImmediate (the Replica's and the transport's `defer`). */
  readonly defer = (fn: () => void): void => {
    this.after(0, fn);
  };

  /** after runs fn after delayMs unless the process died meanwhile. */
  after(delayMs: number, fn: () => void): Timer {
    return this.sched.at(delayMs, () => {
      if (this.alive) fn();
    });
  }

  kill(): void {
    this.alive = false;
    const watchers = this.deathWatchers;
    this.deathWatchers = [];
    for (const fn of watchers) fn();
  }

  /**
   * onDeath runs fn when the process dies (at once if it is dead): how another process learns
   * that a connection to this one was reset. Returns a function that cancels the watch.
   */
  onDeath(fn: () => void): () => void {
    if (!this.alive) {
      fn();
      return () => {};
    }
    this.deathWatchers.push(fn);
    return () => {
      this.deathWatchers = this.deathWatchers.filter((f) => f !== fn);
    };
  }
}

/**
 * simEventLoop: a process's event loop for the cask engine's background work (CaskOptions.loop):
 * simulated time, and turns that are the process's deferred steps (they die with it).
 */
export function simEventLoop(proc: SimProcess): EventLoop {
  return {
    now: () => proc.sched.now,
    nextTurn: () => new Promise<void>((resolve) => proc.defer(resolve)),
  };
}

/**
 * SimClock: a process's Clock. Wall time is the simulated time plus a skew (members' clocks
 * disagree, as real ones do); monotonic time is the simulated time. Timers die with the process.
 */
export class SimClock implements Clock {
  constructor(
    private readonly proc: SimProcess,
    /** skewMs: this member's wall clock minus the true time. */
    private readonly skewMs: number,
  ) {}

  nowMs(): number {
    return SIM_EPOCH_MS + this.proc.sched.now + this.skewMs;
  }

  monotonicMs(): number {
    return this.proc.sched.now;
  }

  after(ms: number, fn: () => void): Timer {
    return this.proc.after(Math.max(ms, 0), fn);
  }

  every(ms: number, fn: () => void): Timer {
    const period = Math.max(ms, 1);
    let current: Timer;
    let cancelled = false;
    const arm = (): void => {
      current = this.proc.after(period, () => {
        if (cancelled) return;
        arm();
        fn();
      });
    };
    arm();
    return {
      cancel: () => {
        cancelled = true;
        current.cancel();
      },
    };
  }
}
