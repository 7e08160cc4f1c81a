// Clock is the only source of time above `io/`: tests and the simulator substitute their own.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** nowMs returns milliseconds since the Unix epoch. */
  nowMs(): number;
  /** monotonicMs returns a monotonic millisecond counter for measuring durations. */
  monotonicMs(): number;
  /** every runs `fn` every `ms` milliseconds until cancelled; it never keeps the process alive. */
  every(ms: number, fn: () => void): Timer;
  /** after runs `fn` once after `ms` milliseconds unless cancelled; it never keeps the process alive. */
  after(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  every(ms, fn) {
    const handle = setInterval(fn, ms);
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
  after(ms, fn) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
