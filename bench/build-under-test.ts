// Shared by the in-process write benchmarks (db-writes.ts, put-path.ts): their flags, and the
// build they measure: src/ through tsx, or with `--dist DIR` the built tree `DIR/dist/src`, for
// A/B runs of two builds (a worktree of the build before a change).
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Api from '../src/index.js';

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
