// Options of the cask engine, with defaults and units. See README.md for the user-facing table.
import type { EventLoop } from '../../stdx/event-loop.js';
import {
  checkBoolean,
  checkInteger,
  ENGINE_OPTION_NAMES,
  type EngineOptions,
  optionError,
  validateEngineOptions,
} from '../engine-options.js';
import { DATA_FILE_BYTES_MAX, DATA_FILE_BYTES_MIN } from '../limits.js';

export interface CaskEvent {
  readonly type:
    | 'recovered'
    | 'compaction-start'
    | 'compaction-done'
    | 'compaction-failed'
    | 'write-failed'
    /** hint-failed: a sealed file's hint file could not be written (it is scanned at open instead). */
    | 'hint-failed'
    /**
     * record-damaged: compaction read a live key's record and it failed verification; the record
     * was carried into the output as it is (the key still fails its reads until it is deleted or
     * written again). Detail: key (hex prefix), fileId, offset, toFile, toOffset, error.
     */
    | 'record-damaged';
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface CaskOptions extends EngineOptions {
  /** dataFileBytes: a data file is sealed and a new one started past this size. Default 64 MiB. */
  readonly dataFileBytes?: number;
  /** autoCompact: compact in the background when the dead-bytes trigger fires. Default true. */
  readonly autoCompact?: boolean;
  /** compactionDeadRatio: compact when dead bytes / all bytes reach this. Default 0.25. */
  readonly compactionDeadRatio?: number;
  /** compactionMinDeadBytes: ... and dead bytes reach this many. Default 4 MiB. */
  readonly compactionMinDeadBytes?: number;
  /**
   * compactionStepMs: background work on the event loop (compaction, sealed files' hint files)
   * runs in steps of about this many milliseconds, between which requests are served. Every
   * request that arrives during a step waits for it: smaller steps favour request latency,
   * larger ones the background work's throughput. 0 cuts the work as finely as it goes (tests).
   * On a busy event loop steps are shorter: a fifth of the loop, or while writes are published
   * at least the time to keep up with them; on an idle loop the whole budget (stdx/pacer.ts,
   * docs/compaction.md "Pacing").
   * Default 1.
   */
  readonly compactionStepMs?: number;
  /**
   * syncOnEventLoop: the group commit's fdatasync runs with a synchronous call on the event loop
   * (as Redis does with appendfsync always) instead of in libuv's thread pool. The append itself
   * is always a synchronous write (page cache). Inline, a lone writer's commit is a little
   * quicker (no thread-pool round trip), but the whole process stops for every fsync: no read is
   * served and no command parsed meanwhile. In the pool, the loop serves reads and gathers the
   * next group while the disk works, which is what a server with many clients needs (issue 14:
   * 8 writers beside 42 readers; docs/benchmarks.md). Default false.
   */
  readonly syncOnEventLoop?: boolean;
  /**
   * loop: where the engine's background work (group commit, compaction, hint files) reads the
   * time and waits for the next turn of the event loop (stdx/event-loop.ts). Default: the
   * machine's (performance.now, setImmediate). The replica simulator passes its scheduler's.
   */
  readonly loop?: EventLoop;
  /**
   * commitAfterCall: a group commit gathers the writes of one synchronous call and runs in the
   * microtask after it, instead of gathering every write of the event-loop turn and running in
   * its check phase. For a caller whose writes come together in one call (a Raft member applies
   * a Ready's committed entries in one loop) the writes then become visible before the rest of
   * the turn, which on a busy member is every client's and peer's I/O. A server's writes arrive
   * one socket read at a time, so for it this would split the turn's group. Default false.
   */
  readonly commitAfterCall?: boolean;
  /**
   * cacheBytes: memory for recently written and read values (second-chance FIFO, value-cache.ts),
   * so hot keys are served without a key-directory search and a disk read; 0 turns it off.
   * Default 80 MiB, as for servers. The ring is allocated at the first insert and uninitialised,
   * so a store touches only the pages its cached values fill. The count covers the records
   * (values, keys and a 32-byte header each); the hash table beside them adds 8-16 bytes per
   * entry. Measured (docs/benchmarks.md,
   * "The value cache on by default"): uniform random reads of 1M keys 0.62x -> 0.80x lmdb, since
   * the point index made a miss cheap enough that a hit shows; durable writes from 64 writers
   * unchanged within noise (the old Map-based cache cost fills ~30%, which is why it was off).
   */
  readonly cacheBytes?: number;
  /** onEvent: receives recovery reports, compaction progress and write failures (for logging). */
  readonly onEvent?: (event: CaskEvent) => void;
  /**
   * debugChecks: after recovery and after every compaction, verify the whole key directory and
   * expiry index (O(keys)) and fail loudly on a broken invariant. Default: on when the
   * environment has CAIRN_DEBUG_CHECKS=1 (the test suites set it), else off.
   */
  readonly debugChecks?: boolean;
}

/** DEBUG_CHECKS_ENV: the environment variable that turns debugChecks on by default. */
export const DEBUG_CHECKS_ENV = 'CAIRN_DEBUG_CHECKS';

/** debugChecksOn resolves the debugChecks option against its environment default. */
export function debugChecksOn(options: CaskOptions): boolean {
  return options.debugChecks ?? process.env[DEBUG_CHECKS_ENV] === '1';
}

/**
 * DEFAULT_DATA_FILE_BYTES: where a data file is sealed by default. It bounds what an open after a
 * crash must scan, decode and sort record by record: every sealed file gets a hint file, the
 * active one has none. At 64 MiB a crash with a full active file (about 440k records of 100-byte
 * values) opened 1M keys in 1.2-1.6 s; at 16 MiB in 0.75-0.8 s, with the same space and write
 * throughput in `bench/engine-startup.ts --space` (docs/benchmarks.md, 2026-12-07). Smaller files
 * also leave compaction needing less free space (one file's live records).
 */
export const DEFAULT_DATA_FILE_BYTES = 16 * 1024 * 1024;
/**
 * DEFAULT_COMPACTION_DEAD_RATIO, DEFAULT_COMPACTION_MIN_DEAD_BYTES: since compaction rewrites
 * only the most fragmented files (compaction-plan.ts), a lower trigger costs little in writes:
 * issue 14's space benchmark (200k keys rewritten 10 times) ended at 2.37x the live bytes with
 * write amplification 4.28 at 0.3 and 4 MiB, against 3.39x / 3.19 at 0.5 and 16 MiB, and 3.23x /
 * 4.03 when every sealed file was rewritten. With compact hint files (format.md, version 2) 0.3
 * ended at 2.01x / 3.85 and 0.25 at 1.50-1.79x (at most 1.86x after a pass) / 4.20-4.23, still
 * below the 4.28 of the older build at 0.3 (docs/benchmarks.md).
 */
export const DEFAULT_COMPACTION_DEAD_RATIO = 0.25;
export const DEFAULT_COMPACTION_MIN_DEAD_BYTES = 4 * 1024 * 1024;
/**
 * DEFAULT_CACHE_BYTES: 80 MiB holds as many 16-byte keys with 100-byte values (550k) as 64 MiB
 * did before the revision moved into each record's header: then a 64-byte slot record per entry
 * and a table of four words per slot lived outside the count (144 MiB in all at 541k entries,
 * against about 88 MiB now). docs/benchmarks.md, "The value cache: two places per lookup".
 */
export const DEFAULT_CACHE_BYTES = 80 * 1024 * 1024;
/** DEFAULT_COMPACTION_STEP_MS: see compactionStepMs (steps of 10-50 ms were issue 14's GET p99). */
export const DEFAULT_COMPACTION_STEP_MS = 1;
/** COMPACTION_STEP_MS_MAX: a step longer than a second would stall every client. */
const COMPACTION_STEP_MS_MAX = 1000;

/** CASK_OPTION_NAMES: every option the cask engine takes. */
export const CASK_OPTION_NAMES: readonly string[] = [
  ...ENGINE_OPTION_NAMES,
  'dataFileBytes',
  'autoCompact',
  'compactionDeadRatio',
  'compactionMinDeadBytes',
  'compactionStepMs',
  'syncOnEventLoop',
  'loop',
  'commitAfterCall',
  'cacheBytes',
  'onEvent',
  'debugChecks',
];

/**
 * validateCaskOptions checks every cask option (engine-options.ts: InvalidArgumentError naming
 * the option). Unknown option names are left to the caller: Db.open passes its own as well.
 */
export function validateCaskOptions(options: CaskOptions): void {
  validateEngineOptions(options);
  checkInteger('dataFileBytes', options.dataFileBytes, DATA_FILE_BYTES_MIN, DATA_FILE_BYTES_MAX);
  checkBoolean('autoCompact', options.autoCompact);
  const ratio = options.compactionDeadRatio;
  if (ratio !== undefined && !(typeof ratio === 'number' && ratio > 0 && ratio <= 1)) {
    throw optionError('compactionDeadRatio', 'a number in (0, 1]', ratio);
  }
  checkInteger('compactionMinDeadBytes', options.compactionMinDeadBytes, 0);
  checkInteger('compactionStepMs', options.compactionStepMs, 0, COMPACTION_STEP_MS_MAX);
  checkBoolean('syncOnEventLoop', options.syncOnEventLoop);
  const loop: unknown = options.loop;
  if (
    loop !== undefined &&
    !(
      typeof loop === 'object' &&
      loop !== null &&
      typeof (loop as EventLoop).now === 'function' &&
      typeof (loop as EventLoop).nextTurn === 'function'
    )
  ) {
    throw optionError('loop', 'an object with now() and nextTurn() functions', loop);
  }
  checkBoolean('commitAfterCall', options.commitAfterCall);
  checkInteger('cacheBytes', options.cacheBytes, 0);
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw optionError('onEvent', 'a function', options.onEvent);
  }
  checkBoolean('debugChecks', options.debugChecks);
}

/**
 * guardedListener wraps an `onEvent` listener so that an error it throws never reaches the step
 * that emitted the event: that step carries on as if the listener had returned, and the error is
 * reported as a process warning (code CAIRN_ON_EVENT_THREW) naming the event. Unguarded, a
 * listener's bug failed open() at 'recovered', every compaction at 'compaction-start', and
 * turned a failed write that had been undone into StoreFailedError.
 */
export function guardedListener(
  onEvent: ((event: CaskEvent) => void) | undefined,
): ((event: CaskEvent) => void) | undefined {
  if (onEvent === undefined) return undefined;
  return (event) => {
    try {
      onEvent(event);
    } catch (err) {
      process.emitWarning(
        `the onEvent listener threw on a '${event.type}' event (the store carries on unaffected): ${err instanceof Error ? err.message : String(err)}`,
        { code: 'CAIRN_ON_EVENT_THREW' },
      );
    }
  };
}
