// Child process of the Db crash test: after the writer was killed, a fresh process checks the
// store with `cairn check`'s checkStore (read-only), then opens it and reads every key back
// twice, by one full scan and by get, and prints what it found as one JSON line (see Verified).
//
//   node --import tsx test/crash/db-verify.ts DIR KEYS_FILE
//
// KEYS_FILE holds a JSON array of the keys the parent knows of; scanned keys are read by get
// too. A scan is stopped (and reported) once it yielded more entries than could exist, so a
// store whose scans never end fails the test instead of hanging it.
import * as fs from 'node:fs';
import { open } from '../../src/db/db.js';
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

const [dir, keysFile] = process.argv.slice(2);
if (dir === undefined || keysFile === undefined) throw new Error('usage: db-verify DIR KEYS_FILE');
const known = JSON.parse(fs.readFileSync(keysFile, 'utf8')) as string[];
const strip = (v: Buffer): string => v.toString('latin1').replace(/~+$/, '');

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
  recovery: (db.engine as CaskEngine).recovery.problems.map((p) => ({ kind: p.kind, detail: p.detail })),
  scan,
  scanError,
  gets,
};
await db.close();
process.stdout.write(`${JSON.stringify(verified)}\n`);
