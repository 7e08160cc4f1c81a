// The package version, read at run time from package.json so that `kvs -V` and `cairn -V`
// always agree with what npm installed. The compiled file lives at dist/src/cli/version.js and
// the source at src/cli/version.ts (tsx, tests), so we walk up to the nearest package.json named
// PACKAGE_NAME instead of hard-coding the depth.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** PACKAGE_NAME: Cairn's name on the npm registry (`cairn` there is an unrelated package). */
export const PACKAGE_NAME = 'cairn-db';

/** PACKAGE_SEARCH_LEVELS_MAX: how many parent directories we look through for package.json. */
const PACKAGE_SEARCH_LEVELS_MAX = 6;

let cached: string | undefined;

/** packageVersion returns the version in Cairn's package.json, or '0.0.0-unknown'. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < PACKAGE_SEARCH_LEVELS_MAX; level++) {
    const file = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // No (readable) package.json here: keep walking up.
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return (cached = '0.0.0-unknown');
}
