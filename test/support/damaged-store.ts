// damagedStore: a store with a record damaged behind a hint file, as the tests of damage need it
// (test/server/damaged-record.test.ts, src/storage/cask/compaction-damage.test.ts): DAMAGED_KEYS
// keys of about 1 KB in data files of DAMAGED_DATA_FILE_BYTES, closed (so the first file is
// sealed with its hint file), then one byte flipped in the value of key `damagedKeyName(10)`.
// The open trusts the hint and does not see the damage: only a read of that record does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Db, open } from '../../src/db/db.js';
import type { Problem } from '../../src/storage/cask/recovery.js';
import { tmpDir } from './tmp-dir.js';

export const DAMAGED_KEYS = 600;
export const DAMAGED_DATA_FILE_BYTES = 128 * 1024;
/** DAMAGED_INDEX: the key whose record is damaged. */
export const DAMAGED_INDEX = 10;

export const damagedKeyName = (i: number): string => `k${String(i).padStart(4, '0')}`;
export const damagedKeyValue = (i: number): string => `value-${i}-`.padEnd(1000, 'x');

export async function damagedStore(name: string, options: { autoCompact?: boolean } = {}): Promise<string> {
  const dir = tmpDir(name);
  const db = await open(dir, { dataFileBytes: DAMAGED_DATA_FILE_BYTES, ...options });
  for (let i = 0; i < DAMAGED_KEYS; i++) await db.set(damagedKeyName(i), damagedKeyValue(i));
  await db.close();
  const data = path.join(dir, '0000000001.data');
  if (!fs.existsSync(path.join(dir, '0000000001.hint')))
    throw new Error('the first data file has no hint file');
  const bytes = fs.readFileSync(data);
  const at = bytes.indexOf(`value-${DAMAGED_INDEX}-`);
  if (at <= 0) throw new Error('the damaged value is not in the first data file');
  bytes[at + 20] = (bytes[at + 20] as number) ^ 0xff;
  fs.writeFileSync(data, bytes);
  return dir;
}

/** openReporting opens `dir` (no background compaction) and returns the problems its recovery reported. */
export async function openReporting(dir: string): Promise<{ db: Db; problems: Problem[] }> {
  let problems: Problem[] = [];
  const db = await open(dir, {
    autoCompact: false,
    onEvent: (e) => {
      if (e.type === 'recovered') problems = (e.detail as { problems: Problem[] }).problems;
    },
  });
  return { db, problems };
}
