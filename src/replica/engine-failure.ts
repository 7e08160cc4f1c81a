// EngineFailureLatch: how a member learns that its engine failed in the background. Cask reports
// a store that stopped taking writes outside any write (a periodic fdatasync, a compaction's
// sync, an I/O error) only as a `write-failed` event with `failed`; the Replica would otherwise
// find out at its next apply, which an idle leader never makes, and meanwhile it leads with an
// engine that can send no follower a snapshot (the replica simulator on cask, seed 296490866: a
// follower behind the compacted log waited forever). The latch turns the event into
// Replica.engineFailed, holding one that comes before the Replica exists (during the open).
import type { CaskEvent } from '../storage/cask/cask-options.js';
import { IoError } from '../storage/errors.js';

export class EngineFailureLatch {
  private failReplica: ((err: Error) => void) | undefined;
  private early: Error | undefined;

  /** observe: the engine's event listener's part (CaskOptions.onEvent). */
  observe(event: CaskEvent): void {
    if (event.type !== 'write-failed' || event.detail.failed !== true) return;
    const err = new IoError(
      `the engine failed and takes no more writes: ${String(event.detail.error)}`,
      event.detail.error,
    );
    if (this.failReplica === undefined) this.early ??= err;
    else this.failReplica(err);
  }

  /** attach: from now on a failure fails the Replica (at once, if one came before). */
  attach(replica: { engineFailed(err: unknown): void }): void {
    this.failReplica = (err) => replica.engineFailed(err);
    if (this.early !== undefined) replica.engineFailed(this.early);
  }
}
