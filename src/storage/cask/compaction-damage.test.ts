// Compaction meeting a damaged record (docs/hardening.md, "Damage behind a hint file"): a record
// damaged inside a sealed, hinted data file is not seen at open, so the first to read it may be
// a compaction. It carries the record into its output as it is and reports it: the key keeps
// failing its reads (never silently absent), every other key is copied, the damaged input
// retires, and the store goes on reclaiming space. (It failed every compaction that picked the
// file, for ever, before.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DAMAGED_DATA_FILE_BYTES,
  DAMAGED_KEYS,
  damagedKeyName,
  damagedKeyValue,
  damagedStore,
} from '../../../test/support/damaged-store.js';
import { open } from '../../db/db.js';
import { CorruptionError } from '../errors.js';
import type { CaskEvent } from './cask-options.js';
import { checkStore } from './check.js';

const KEYS = DAMAGED_KEYS;
const DATA_FILE_BYTES = DAMAGED_DATA_FILE_BYTES;
const name = damagedKeyName;
const valueFor = damagedKeyValue;

async function expectIntact(db: Awaited<ReturnType<typeof open>>, except: number): Promise<void> {
  for (let i = 0; i < KEYS; i++) {
    if (i === except) continue;
    expect(await db.getString(name(i))).toBe(valueFor(i));
  }
}

describe('compaction and a damaged record behind a hint file', () => {
  it('carries the record as it is, reports it, copies the rest and retires the input', async () => {
    const dir = await damagedStore('compaction-damage', { autoCompact: false });
    const events: CaskEvent[] = [];
    let db = await open(dir, {
      dataFileBytes: DATA_FILE_BYTES,
      autoCompact: false,
      onEvent: (e) => events.push(e),
    });
    await expect(db.get(name(10))).rejects.toBeInstanceOf(CorruptionError);
    // Overwrites leave dead bytes in the first files, so a compaction has reason to take them.
    for (let i = 0; i < 100; i++) await db.set(name(i + 20), valueFor(i + 20));
    await db.compact();
    const damaged = events.filter((e) => e.type === 'record-damaged');
    expect(damaged).toHaveLength(1);
    const detail = damaged[0]?.detail as { key: string; fileId: number; offset: number; error: string };
    expect(detail).toMatchObject({ key: Buffer.from(name(10)).toString('hex'), fileId: 1 });
    // The offset reported is the record's, the one the read's error names.
    expect(detail.error).toContain(`0000000001.data:${detail.offset} `);
    const done = events.find((e) => e.type === 'compaction-done');
    expect(done?.detail).toMatchObject({ damagedCarried: 1 });
    expect(fs.existsSync(path.join(dir, '0000000001.data'))).toBe(false);
    // The key still fails as before (not absent, not another value); every other key reads.
    await expect(db.get(name(10))).rejects.toBeInstanceOf(CorruptionError);
    expect(db.stats().keys).toBe(KEYS);
    await expectIntact(db, 10);
    await db.close();

    // `cairn check` still calls the store damaged (the damage moved with the key), and a reopen
    // serves the same: the key fails, the others read.
    expect((await checkStore(dir)).ok).toBe(false);
    db = await open(dir, { dataFileBytes: DATA_FILE_BYTES, autoCompact: false });
    await expect(db.get(name(10))).rejects.toBeInstanceOf(CorruptionError);
    await expectIntact(db, 10);
    // Deleting the key makes the damaged record dead: the next compaction drops it.
    expect(await db.delete(name(10))).toBe(true);
    await db.compact();
    await db.close();
    expect((await checkStore(dir)).ok).toBe(true);
    db = await open(dir);
    expect(await db.get(name(10))).toBeUndefined();
    await expectIntact(db, 10);
    await db.close();
  });
});
