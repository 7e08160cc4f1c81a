// Store files by kind, oldest first, as paths (for tests that inspect or damage them): the data
// files of a cask directory, the segments of a WAL directory.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** filesEndingIn: the files in `dir` whose names end in `suffix`, in name order (oldest first). */
function filesEndingIn(dir: string, suffix: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith(suffix))
    .sort()
    .map((n) => path.join(dir, n));
}

export function dataFiles(dir: string): string[] {
  return filesEndingIn(dir, '.data');
}

/** segmentFiles: the segments of a WAL directory. */
export function segmentFiles(dir: string): string[] {
  return filesEndingIn(dir, '.wal');
}
