// The shape of the Db crash test's data, shared by the writer (db-writer.ts), the verifier
// (db-verify.ts) and the test (db-crash.test.ts).
//
// Keys are `crash:NNNNNNNNNN` (ten digits), numbered from a counter every writer of a run shares,
// so that in `ascending` order each new key is above every earlier one: the key directory's
// append path, and the order in which recovery then reads them back. `descending` counts down;
// `random` scatters them. Values are `KEY@GEN` padded with `~` to VALUE_BYTES, GEN a number the
// writer never reuses for a key, so a value names both its key and the write that stored it.
export type KeyOrder = 'ascending' | 'descending' | 'random';
export const KEY_ORDERS: readonly KeyOrder[] = ['ascending', 'descending', 'random'];

/** KEYS_PER_CYCLE_MAX: key numbers of cycle c are c * KEYS_PER_CYCLE_MAX + 0, 1, 2, ... */
export const KEYS_PER_CYCLE_MAX = 1_000_000;
const KEY_SPACE = 10_000_000_000;
/** SCATTER: Knuth's multiplicative hash constant, a prime. */
const SCATTER = 2_654_435_761n;
/**
 * VALUE_BYTES: values are padded to this length, so that within a few cycles the active data
 * file outgrows recovery's 8 MiB read buffer (SCAN_CHUNK_BYTES in recovery.ts), which is what
 * let the key directory keep views that the next chunk overwrote (issue 10).
 */
export const VALUE_BYTES = 700;
/**
 * Store options of the writer and the verifier: data files of 16 MiB (two read chunks and more),
 * sealed and compacted (with hint files) within a run of 20 cycles.
 */
export const STORE_OPTIONS = {
  dataFileBytes: 16 * 1024 * 1024,
  compactionMinDeadBytes: 4 * 1024 * 1024,
  compactionDeadRatio: 0.4,
} as const;

/** keyName is the name of the n-th key of a cycle, in the given order. */
export function keyName(order: KeyOrder, cycle: number, n: number): string {
  const index = cycle * KEYS_PER_CYCLE_MAX + n;
  let number: number;
  if (order === 'ascending') number = index;
  else if (order === 'descending') number = KEY_SPACE - 1 - index;
  // A bijection of [0, KEY_SPACE) (the multiplier is prime to 10): scattered, never repeated.
  else number = Number((BigInt(index) * SCATTER + 12_345n) % BigInt(KEY_SPACE));
  return `crash:${String(number).padStart(10, '0')}`;
}

export function valueFor(key: string, gen: number): string {
  return `${key}@${gen}`.padEnd(VALUE_BYTES, '~');
}

/** parseValue returns the key and generation a value names, or undefined if it is not one. */
export function parseValue(value: string): { key: string; gen: number } | undefined {
  const m = /^(crash:\d{10})@(\d+)~*$/.exec(value);
  return m === null ? undefined : { key: m[1]!, gen: Number(m[2]) };
}
