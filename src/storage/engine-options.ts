// Options shared by every engine, with their defaults and units. The embedded API, the server's
// flags and the CLI all pass these through unchanged.
import type { Clock } from '../io/clock.js';
import type { FileSystem } from '../io/file-system.js';
import type { Durability } from './engine.js';

export interface EngineOptions {
  /** durability: when a write is acknowledged. Default 'always' (after fdatasync). */
  readonly durability?: Durability;
  /** syncIntervalMs: with durability 'interval', how often written data is fsynced. Default 100 ms. */
  readonly syncIntervalMs?: number;
  /** fs: the file system to use; tests pass a fault-injecting one. Default: node:fs. */
  readonly fs?: FileSystem;
  /** clock: the time source; tests pass their own. Default: the system clock. */
  readonly clock?: Clock;
}

export const DEFAULT_DURABILITY: Durability = 'always';
export const DEFAULT_SYNC_INTERVAL_MS = 100;
