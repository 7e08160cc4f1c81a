// EventLoop: how the storage engine's background work (group commit, compaction, sealed files'
// hints, the point index's build) reads the time and yields the event loop to requests. The
// machine's is performance.now and setImmediate; the replica simulator passes its scheduler's
// (sim/replica-scheduler.ts), so that an engine's background steps run on simulated turns and
// end at simulated times, and a seed replays exactly whatever the machine's speed.
import { performance } from 'node:perf_hooks';

export interface EventLoop {
  /** now: a monotonic reading in milliseconds. */
  now(): number;
  /** nextTurn resolves on a later turn of the loop, after the I/O callbacks pending now. */
  nextTurn(): Promise<void>;
}

export const nodeEventLoop: EventLoop = {
  now: () => performance.now(),
  nextTurn: () => new Promise<void>((resolve) => setImmediate(resolve)),
};
