// Every limit of the storage layer, in one place. Units are last in the names.
import { assert } from '../stdx/assert.js';

/** KEY_BYTES_MAX: the longest key. Keys live in memory (key directory), so this is modest. */
export const KEY_BYTES_MAX = 64 * 1024;
/** VALUE_BYTES_MAX: the largest value (Redis's proto-max-bulk-len defaults to 512 MiB; we choose less). */
export const VALUE_BYTES_MAX = 64 * 1024 * 1024;
/** BATCH_OPS_MAX: operations in one atomic batch. */
export const BATCH_OPS_MAX = 100_000;
/** BATCH_BYTES_MAX: keys plus values in one atomic batch. */
export const BATCH_BYTES_MAX = 256 * 1024 * 1024;
/** DATA_FILE_BYTES_MAX: the largest data file size a store may be configured with (offsets are u32). */
export const DATA_FILE_BYTES_MAX = 2 ** 31;
/** DATA_FILE_BYTES_MIN: the smallest rotation size, so that one record of each limit still fits. */
export const DATA_FILE_BYTES_MIN = 4096;

assert(KEY_BYTES_MAX + VALUE_BYTES_MAX < DATA_FILE_BYTES_MAX, 'a maximal record must fit a data file');
assert(BATCH_BYTES_MAX < DATA_FILE_BYTES_MAX, 'a maximal batch must fit a data file');
/**
 * EXPIRES_AT_MAX: the latest expiry time a key may carry, in ms since the Unix epoch. Times are
 * JS numbers, so they stay integers below 2^53 (year 287,396); on disk they take a u64.
 */
export const EXPIRES_AT_MAX = Number.MAX_SAFE_INTEGER;
