// A sealed data file that lost its tail (a truncation, a bad copy, damage at the end) while its
// hint file stayed intact: the hint no longer matches the file's size, so the open scans the file,
// and the records past the cut are simply not there. Before, their keys quietly read as their
// previous versions, and a key whose delete was cut off came back, with nothing but "N bytes at the
// end of a sealed file are not valid records" in the report. The hint file still lists what the
// file held: those keys now read as damaged (CorruptionError), and the report names them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openReporting } from '../../../test/support/damaged-store.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { open } from '../../db/db.js';
import { CorruptionError } from '../errors.js';
import { checkStore } from './check.js';

const FILLERS = 40;
const filler = (i: number, round: number) => `filler-${round}-${i}-`.padEnd(200, 'x');

type Db = Awaited<ReturnType<typeof open>>;

async function fillers(db: Db, round: number): Promise<void> {
  for (let i = 0; i < FILLERS; i++) await db.set(`filler${round}-${i}`, filler(i, round));
}

/** dataFileWith: the name of the data file holding `marker`, and where in it. */
function dataFileWith(dir: string, marker: string): { name: string; at: number } {
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.data'))) {
    const at = fs.readFileSync(path.join(dir, name)).indexOf(marker);
    if (at >= 0) return { name, at };
  }
  throw new Error(`${marker} not found`);
}

describe('a sealed data file that lost its tail, its hint file intact', () => {
  it('marks the keys of the records past the cut damaged, puts and deletes, never older', async () => {
    const dir = tmpDir('lost-tail');
    let db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    await db.set('price', 'price=OLD-1999');
    await db.set('revoked-token', 'token-abc');
    await fillers(db, 0); // seals the first files
    await db.set('before-cut', 'a record before the cut');
    await db.set('price', 'price=NEW-2024');
    await db.delete('revoked-token');
    await db.set('only-here', 'a key no other file holds');
    await fillers(db, 1); // seals the file of the records above, with a hint file
    await db.close();

    const { name, at } = dataFileWith(dir, 'price=NEW-2024');
    const hint = path.join(dir, name.replace('.data', '.hint'));
    expect(fs.existsSync(hint)).toBe(true);
    const lastData = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.data'))
      .sort()
      .at(-1);
    expect(name).not.toBe(lastData); // a sealed file, not the active one
    // Cut inside the new price's record: its header and key stay, its value and all after go.
    fs.truncateSync(path.join(dir, name), at + 3);

    const reopened = await openReporting(dir);
    db = reopened.db;
    const lost = reopened.problems.filter((p) => p.kind === 'lost-records');
    expect(lost).toHaveLength(1);
    expect(lost[0]?.file).toBe(name);
    await expect(db.get('price')).rejects.toBeInstanceOf(CorruptionError);
    await expect(db.get('revoked-token')).rejects.toBeInstanceOf(CorruptionError);
    await expect(db.get('only-here')).rejects.toBeInstanceOf(CorruptionError);
    expect(await db.getString('before-cut')).toBe('a record before the cut');
    for (let i = 0; i < FILLERS; i++) expect(await db.getString(`filler0-${i}`)).toBe(filler(i, 0));
    // The fillers of round 1 that were in the cut-off part are marked too; the others read.
    let readable = 0;
    for (let i = 0; i < FILLERS; i++) {
      try {
        expect(await db.getString(`filler1-${i}`)).toBe(filler(i, 1));
        readable++;
      } catch (err) {
        expect(err).toBeInstanceOf(CorruptionError);
      }
    }
    expect(readable).toBeGreaterThan(0);
    expect(readable).toBeLessThan(FILLERS);
    // The report counts exactly the keys that read as damaged (it names the first few, in key order).
    expect(lost[0]?.detail).toContain(`${3 + FILLERS - readable} records`);
    expect(lost[0]?.detail).toContain(Buffer.from('only-here').toString('hex'));
    expect(lost[0]?.detail).not.toContain(Buffer.from('before-cut').toString('hex'));
    await db.close();

    // Every open and check says so (the hint file is kept: it is what names the keys).
    expect(fs.existsSync(hint)).toBe(true);
    const checked = await checkStore(dir);
    expect(checked.ok).toBe(false);
    expect(checked.report?.problems.some((p) => p.kind === 'lost-records')).toBe(true);

    // A compaction carries the marks; writing or deleting a key clears its mark.
    db = await open(dir, { autoCompact: false });
    await db.compact();
    await expect(db.get('price')).rejects.toBeInstanceOf(CorruptionError);
    await expect(db.get('only-here')).rejects.toBeInstanceOf(CorruptionError);
    await db.set('price', 'price=RESET');
    expect(await db.delete('revoked-token')).toBe(true);
    await db.close();
    db = await open(dir, { autoCompact: false });
    expect(await db.getString('price')).toBe('price=RESET');
    expect(await db.get('revoked-token')).toBeUndefined();
    await expect(db.get('only-here')).rejects.toBeInstanceOf(CorruptionError);
    expect(await db.getString('before-cut')).toBe('a record before the cut');
    await db.close();
  });

  it('a sealed file that lost nothing the hint lists is not reported as losing records', async () => {
    const dir = tmpDir('lost-tail-none');
    let db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    await fillers(db, 0);
    await db.close();
    const names = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.data'))
      .sort();
    const sealed = names[0] as string;
    expect(fs.existsSync(path.join(dir, sealed.replace('.data', '.hint')))).toBe(true);
    // Bytes appended to a sealed file: its size no longer matches the hint, nothing is lost.
    fs.appendFileSync(path.join(dir, sealed), Buffer.alloc(64, 0xab));
    const reopened = await openReporting(dir);
    db = reopened.db;
    expect(reopened.problems.some((p) => p.kind === 'lost-records')).toBe(false);
    expect(reopened.problems.some((p) => p.kind === 'hint-rejected')).toBe(true);
    for (let i = 0; i < FILLERS; i++) expect(await db.getString(`filler0-${i}`)).toBe(filler(i, 0));
    await db.close();
  });
});
