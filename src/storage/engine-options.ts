// Options shared by every engine, with their defaults, units and validation. The embedded API,
// the server's flags and the CLI all pass these through unchanged.
//
// Validation (docs/hardening.md, rule 7): a value of the wrong type or out of range is an
// InvalidArgumentError that names the option, what it accepts and what it got, raised before
// anything is opened. JavaScript callers and options built from configuration are not protected
// by the TypeScript types: `durability: 'Always'` must not quietly mean "no fsync".
import type { Clock } from '../io/clock.js';
import type { FileSystem } from '../io/file-system.js';
import type { Durability } from './engine.js';
import { InvalidArgumentError } from './errors.js';

export interface EngineOptions {
  /** durability: when a write is acknowledged. Default 'always' (after fdatasync). */
  readonly durability?: Durability;
  /** syncIntervalMs: with durability 'interval', how often written data is fsynced. Default 100 ms. */
  readonly syncIntervalMs?: number;
  /** fs: the file system to use; tests pass a fault-injecting one. Default: node:fs. */
  readonly fs?: FileSystem;
  /** clock: the time source; tests pass their own. Default: the system clock. */
  readonly clock?: Clock;
  /**
   * readOnly: open an existing store for reading only: nothing in the directory is created,
   * changed or repaired (recovery only reports), and every write fails with ReadOnlyError. For a
   * read-only file system, a backup or a snapshot. The cask engine only. Default false.
   */
  readonly readOnly?: boolean;
}

export const DEFAULT_DURABILITY: Durability = 'always';
export const DEFAULT_SYNC_INTERVAL_MS = 100;
/** DURABILITIES: every durability mode (engine.ts, Durability). */
export const DURABILITIES: readonly Durability[] = ['always', 'interval', 'never'];
/** SYNC_INTERVAL_MS_MAX: the longest interval a timer takes (setInterval's limit, about 24.8 days). */
export const SYNC_INTERVAL_MS_MAX = 2 ** 31 - 1;
/** ENGINE_OPTION_NAMES: the options every engine takes. */
export const ENGINE_OPTION_NAMES: readonly string[] = [
  'durability',
  'syncIntervalMs',
  'fs',
  'clock',
  'readOnly',
];

/** shown renders a value for an error message, so that `'5'` and `5` read differently. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** optionError: `option NAME must be ACCEPTED, got VALUE`. */
export function optionError(name: string, accepted: string, got: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`option ${name} must be ${accepted}, got ${shown(got)}`);
}

/** checkOneOf accepts undefined or one of `choices`. */
export function checkOneOf(name: string, value: unknown, choices: readonly string[]): void {
  if (value !== undefined && !(typeof value === 'string' && choices.includes(value))) {
    throw optionError(name, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  }
}

/** checkBoolean accepts undefined, true or false. */
export function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw optionError(name, 'true or false', value);
}

/** checkInteger accepts undefined or a safe integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw optionError(name, `an integer in [${min}, ${max}]`, value);
  }
}

/**
 * CLOCK_METHODS, FILE_SYSTEM_METHODS: every method of an injected Clock or FileSystem
 * (io/clock.ts, io/file-system.ts); the engines call each of them.
 */
export const CLOCK_METHODS: readonly string[] = ['nowMs', 'monotonicMs', 'every', 'after'];
export const FILE_SYSTEM_METHODS: readonly string[] = [
  'open',
  'readdir',
  'mkdir',
  'rename',
  'link',
  'unlink',
  'syncDir',
  'exists',
  'kind',
  'readFile',
];

/**
 * checkMethods accepts undefined or an object (an injected file system, clock) on which every
 * one of `methods` is a function: a missing one would otherwise fail as a TypeError deep inside
 * open, after the directory was created, or inside close, with the directory still locked.
 */
export function checkMethods(name: string, value: unknown, methods: readonly string[]): void {
  if (value === undefined) return;
  const accepted = `an object with the methods ${methods.join(', ')}`;
  if (value === null || typeof value !== 'object') throw optionError(name, accepted, value);
  const missing = methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw new InvalidArgumentError(
      `option ${name} must be ${accepted}; ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not a function`,
    );
  }
}

/** checkKnown refuses option names outside `known` (a misspelt option would otherwise be ignored). */
export function checkKnown(options: object, known: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new InvalidArgumentError(
        `unknown option ${name}; the options are ${[...known].sort().join(', ')}`,
      );
    }
  }
}

/** checkOptionsObject: options are an object (or undefined). */
export function checkOptionsObject(options: unknown): void {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw new InvalidArgumentError(`options must be an object, got ${shown(options)}`);
  }
}

/** validateEngineOptions checks the options every engine takes. */
export function validateEngineOptions(options: EngineOptions): void {
  checkOptionsObject(options);
  checkOneOf('durability', options.durability, DURABILITIES);
  const interval = options.syncIntervalMs;
  if (
    interval !== undefined &&
    !(typeof interval === 'number' && interval > 0 && interval <= SYNC_INTERVAL_MS_MAX)
  ) {
    throw optionError('syncIntervalMs', `a number of milliseconds in (0, ${SYNC_INTERVAL_MS_MAX}]`, interval);
  }
  checkMethods('fs', options.fs, FILE_SYSTEM_METHODS);
  checkMethods('clock', options.clock, CLOCK_METHODS);
  checkClockReadings(options.clock);
  checkBoolean('readOnly', options.readOnly);
}

/**
 * checkClockReadings asks an injected clock for the time once: nowMs() must be a number of ms
 * since the epoch and monotonicMs() a finite number. Found from outside: a clock whose nowMs
 * returned a Date, a string or NaN was taken, and the new store's metadata was written with
 * that time in it, so every later open refused the directory ("no valid metadata copy").
 */
function checkClockReadings(clock: Clock | undefined): void {
  if (clock === undefined) return;
  const now: unknown = clock.nowMs();
  if (!(typeof now === 'number' && Number.isFinite(now) && now >= 0 && now <= Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError(
      `option clock: nowMs() must return the time as a number of milliseconds since the Unix epoch (as Date.now() does), got ${shown(now)}`,
    );
  }
  const monotonic: unknown = clock.monotonicMs();
  if (!(typeof monotonic === 'number' && Number.isFinite(monotonic))) {
    throw new InvalidArgumentError(
      `option clock: monotonicMs() must return a finite number of milliseconds (as performance.now() does), got ${shown(monotonic)}`,
    );
  }
}
