// The verification half of the Db crash test (db-crash.test.ts), run by db-writer.ts in a fresh
// process right after its predecessor was killed, before it writes anything: check the store
// with `cairn check`'s checkStore (read-only), then open it and read every key back twice, by
// one full scan and by get. The result goes to the parent as one JSON line (Verified).
//
// A scan is stopped (and reported) once it yielded more entries than could exist, so a store
// whose scans never end fails the test instead of hanging it.
import * as fs from 'node:fs';
import { type Db, open } from '../../src/db/db.js';
import type { CaskEngine } from '../../src/storage/cask/cask-engine.js';
import { checkStore } from '../../src/storage/cask/check.js';
import { STORE_OPTIONS } from './db-shape.js';

export interface Verified {
  readonly check: { readonly ok: boolean; readonly problems: readonly { kind: string; detail: string }[] };
  readonly recovery: readonly { kind: string; detail: string }[];
  /** scan: [key, value without its padding] in the order the scan yielded them. */
  readonly scan: readonly [string, string][];
  readonly scanError: string | undefined;
  /** gets: every known and scanned key, its value without padding, or null when absent. */
  readonly gets: Readonly<Record<string, string | null>>;
}

const strip = (v: Buffer): string => v.toString('latin1').replace(/~+$/, '');

/**
 * openVerified checks and opens the store in `dir`, reads back the keys listed in `keysFile` (a
 * JSON array: every key the parent knows of) and every key a scan finds, and returns the open
 * store with what it read.
 */
export async function openVerified(dir: string, keysFile: string): Promise<{ db: Db; verified: Verified }> {
  const known = JSON.parse(fs.readFileSync(keysFile, 'utf8')) as string[];
  const checked = await checkStore(dir);
  const db = await open(dir, STORE_OPTIONS);
  const scan: [string, string][] = [];
  let scanError: string | undefined;
  const scanMax = 2 * known.length + 1000;
  try {
    for await (const [k, v] of db.scan()) {
      scan.push([k.toString('latin1'), strip(v)]);
      if (scan.length > scanMax) {
        scanError = `the scan yielded over ${scanMax} entries: it does not end`;
        break;
      }
    }
  } catch (err) {
    scanError = String(err);
  }
  const gets: Record<string, string | null> = {};
  for (const key of [...known, ...scan.map(([k]) => k)]) {
    if (key in gets) continue;
    const v = await db.get(key);
    gets[key] = v === undefined ? null : strip(v);
  }
  const verified: Verified = {
    check: {
      ok: checked.ok,
      problems: (checked.report?.problems ?? []).map((p) => ({ kind: p.kind, detail: p.detail })),
    },
    recovery: (db.pipeline.engine as unknown as CaskEngine).recovery.problems.map((p) => ({
      kind: p.kind,
      detail: p.detail,
    })),
    scan,
    scanError,
    gets,
  };
  return { db, verified };
}
