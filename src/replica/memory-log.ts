// MemoryLog: a ReplicaLog kept in memory (the core's MemoryStorage plus the save step), for
// tests of the driver that do not need the disk. Saves resolve on the next microtask.
import { type Entry, type HardState, MemoryStorage, type Snapshot } from '../raft/index.js';
import type { ReplicaLog } from './replica.js';

export class MemoryLog extends MemoryStorage implements ReplicaLog {
  saves = 0;

  save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
  ): Promise<void> {
    if (snapshot !== undefined) this.applySnapshot(snapshot);
    this.append(entries);
    if (hardState !== undefined) this.setHardState(hardState);
    this.saves++;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
