// dataFiles: the data files of a cask directory, oldest first, as paths (for tests that damage them).
import * as fs from 'node:fs';
import * as path from 'node:path';

export function dataFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.data'))
    .sort()
    .map((n) => path.join(dir, n));
}
