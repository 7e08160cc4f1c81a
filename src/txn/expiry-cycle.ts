// ExpiryCycle: the one active expiry cycle, for every engine. Reads already treat an expired key
// as absent (lazy expiry, in the engines and the pipeline); the cycle reclaims them: every
// EXPIRY_CYCLE_INTERVAL_MS (Redis's `hz 10`) it asks the engine for up to EXPIRY_CYCLE_KEYS_MAX
// due keys and deletes them through the write pipeline with one batch of ordinary tombstones
// (Redis propagates a DEL for the same reason: a tombstone shadows every older version of the
// key, in any file, so nothing expired can come back at recovery, and the deletes get commit
// timestamps like any write, so snapshots and WATCH see them in order).
//
// Keys with pending writes are left to those writes: a tombstone queued now would land after
// them and delete a value written with a later expiry (or none). Any other due key has no write
// between the engine's answer and the tombstone (both happen in one synchronous step), so the
// tombstone removes exactly the expired value. A cycle that hit the limit runs again as soon as
// its batch is durable; a failed batch is reported and its keys are simply due again next time.
import type { Clock, Timer } from '../io/clock.js';
import { AssertionError } from '../stdx/assert.js';
import { keyString } from '../stdx/key-string.js';
import type { Engine } from '../storage/engine.js';
import { EXPIRY_CYCLE_INTERVAL_MS, EXPIRY_CYCLE_KEYS_MAX } from '../storage/expiry-index.js';

export interface ExpiryCycleStats {
  /** expiredKeys: keys the cycle deleted since open (INFO's `expired_keys`). */
  readonly expiredKeys: number;
}

export interface ExpiryCycleHooks {
  /** isPending: whether the key (a latin1 string) has writes queued but not settled. */
  readonly isPending: (k: string) => boolean;
  /** deleteKeys queues one atomic batch of tombstones; resolves once durable. */
  readonly deleteKeys: (keys: readonly Uint8Array[]) => Promise<void>;
  readonly onFailure?: ((err: unknown) => void) | undefined;
}

export class ExpiryCycle {
  private readonly timer: Timer;
  private running: Promise<void> | undefined;
  private stopped = false;
  private expired = 0;

  constructor(
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly hooks: ExpiryCycleHooks,
  ) {
    this.timer = clock.every(EXPIRY_CYCLE_INTERVAL_MS, () => this.run());
  }

  stats(): ExpiryCycleStats {
    return { expiredKeys: this.expired };
  }

  stop(): void {
    this.stopped = true;
    this.timer.cancel();
  }

  /** run deletes up to EXPIRY_CYCLE_KEYS_MAX due keys unless a run is still in flight. */
  run(): void {
    if (this.running !== undefined || this.stopped) return;
    let due: Uint8Array[];
    try {
      due = this.engine.dueExpiries(this.clock.nowMs(), EXPIRY_CYCLE_KEYS_MAX);
    } catch (err) {
      // A closed or failed store has nothing to expire; a broken invariant is a bug.
      if (err instanceof AssertionError) throw err;
      return;
    }
    if (due.length === 0) return;
    const keys = due.filter((key) => !this.hooks.isPending(keyString(key)));
    if (keys.length === 0) return;
    const again = due.length === EXPIRY_CYCLE_KEYS_MAX;
    this.running = this.hooks.deleteKeys(keys).then(
      () => {
        this.expired += keys.length;
        this.running = undefined;
        if (again) this.run();
      },
      (err: unknown) => {
        this.running = undefined;
        this.hooks.onFailure?.(err);
      },
    );
  }
}
