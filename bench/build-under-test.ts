// Shared by the in-process write benchmarks (db-writes.ts, put-path.ts, engine-write.ts,
// write-path-floor.ts): their flags, their workload's keys and order, and the
// build they measure: src/ through tsx, or with `--dist DIR` the built tree `DIR/dist/src`, for
// A/B runs of two builds (a worktree of the build before a change).
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Api from '../src/index.js';

/**
 * The write workload of put-path.ts, engine-write.ts and write-path-floor.ts: redis-benchmark's
 * `-r 100000 -d 100`, writes in turns of WORKLOAD_TURN (a read of pipelined commands from many
 * clients).
 */
export const WORKLOAD_KEYS = 100_000;
export const WORKLOAD_TURN = 800;
export const WORKLOAD_VALUE_BYTES = 100;

/** argValue: the value after flag `name` on the command line, if given. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

/** loadApi imports the public API of src/, or of `dist`'s built tree. */
export async function loadApi(dist: string | undefined): Promise<typeof Api> {
  return (
    dist === undefined
      ? await import('../src/index.js')
      : await import(pathToFileURL(path.resolve(dist, 'dist/src/index.js')).href)
  ) as typeof Api;
}

/** loadCask imports the cask engine's opener from src/, or from `dist`'s built tree. */
export async function loadCask(
  dist: string | undefined,
): Promise<typeof import('../src/storage/cask/cask-engine.js')> {
  return (
    dist === undefined
      ? await import('../src/storage/cask/cask-engine.js')
      : await import(pathToFileURL(path.resolve(dist, 'dist/src/storage/cask/cask-engine.js')).href)
  ) as typeof import('../src/storage/cask/cask-engine.js');
}

/** redisStyleKeys: `key:` and 12 digits, as redis-benchmark -r writes them, for 0..n-1. */
export function redisStyleKeys(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(`key:${String(i).padStart(12, '0')}`));
}

/**
 * fixedOrder: `count` key indexes below `keyCount` in a fixed pseudo-random order (xorshift), the
 * same for every build and every benchmark that uses it.
 */
export function fixedOrder(count: number, keyCount: number): Uint32Array {
  let seed = 2463534242;
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    order[i] = (seed >>> 0) % keyCount;
  }
  return order;
}

/**
 * workloadSize reads `--keys N` (default WORKLOAD_KEYS) and the count of writes after
 * `countFlag` (default `countDefault`) from the command line.
 */
export function workloadSize(countFlag: string, countDefault: number): { keyCount: number; count: number } {
  return {
    keyCount: Number(argValue('--keys') ?? WORKLOAD_KEYS),
    count: Number(argValue(countFlag) ?? countDefault),
  };
}
