// A record damaged where recovery reads records one by one (the active file, a sealed file whose
// hint file is missing): when the damage is one record whose framing is sound and only its
// checksum fails, its key reads as damaged (CorruptionError), exactly as the same damage behind a
// hint file does. Found from outside: the key quietly served the value before the acknowledged
// one, and an acknowledged delete was undone (the tombstone's damage revived the key), with no
// error on any read and `cairn check` calling the store intact once a compaction had run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openReporting } from '../../../test/support/damaged-store.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { open } from '../../db/db.js';
import { CorruptionError } from '../errors.js';
import { checkStore } from './check.js';
import { Kind } from './record.js';

const FILLERS = 40;
const filler = (i: number) => `filler-${i}-`.padEnd(200, 'x');

/** flipIn flips one byte `offset` bytes into the first occurrence of `marker` in the store's data files. */
function flipIn(
  dir: string,
  marker: string,
  offset: number,
  when?: (bytes: Buffer, at: number) => boolean,
): string {
  for (const name of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .sort()) {
    const file = path.join(dir, name);
    const bytes = fs.readFileSync(file);
    for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
      if (when !== undefined && !when(bytes, at)) continue;
      bytes[at + offset] = (bytes[at + offset] as number) ^ 0x01;
      fs.writeFileSync(file, bytes);
      return name;
    }
  }
  throw new Error(`${marker} not found`);
}

async function fillers(db: Awaited<ReturnType<typeof open>>): Promise<void> {
  for (let i = 0; i < FILLERS; i++) await db.set(`filler${i}`, filler(i));
}

async function expectFillers(db: Awaited<ReturnType<typeof open>>): Promise<void> {
  for (let i = 0; i < FILLERS; i++) expect(await db.getString(`filler${i}`)).toBe(filler(i));
}

describe('a damaged record in a file recovery scans', () => {
  it('marks the key of a damaged put and of a damaged tombstone damaged, never older', async () => {
    const dir = tmpDir('damaged-scan');
    let db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    await db.set('price', 'price=OLD-1999');
    await db.set('revoked-token', 'token-abc');
    await fillers(db); // seals the first files
    await db.set('price', 'price=NEW-2024');
    await db.delete('revoked-token');
    await db.set('after', 'a record after the damage');
    await db.close();
    // The newest 'price' (in the active file, which has no hint) and the tombstone of
    // 'revoked-token' (a DELETE's kind byte, key length 13 and value length 0 sit just before
    // its key).
    flipIn(dir, 'price=NEW-2024', 7);
    // (Its checksum: a flipped bit in the key's own bytes would mark a key of another name.)
    flipIn(
      dir,
      'revoked-token',
      -21,
      (b, at) => b[at - 9] === Kind.DELETE && b.readUInt32LE(at - 8) === 13 && b.readUInt32LE(at - 4) === 0,
    );

    const reopened = await openReporting(dir);
    db = reopened.db;
    const problems = reopened.problems;
    // The two records are adjacent: one damaged range, both keys named.
    const damaged = problems.filter((p) => p.kind === 'corrupt-range');
    expect(damaged).toHaveLength(1);
    expect(damaged[0]?.detail).toContain(Buffer.from('price').toString('hex'));
    expect(damaged[0]?.detail).toContain(Buffer.from('revoked-token').toString('hex'));
    await expect(db.get('price')).rejects.toBeInstanceOf(CorruptionError);
    await expect(db.get('revoked-token')).rejects.toBeInstanceOf(CorruptionError);
    expect(await db.getString('after')).toBe('a record after the damage');
    await expectFillers(db);
    // A compaction carries the damage (the keys stay damaged, the store stays damaged)...
    await db.compact();
    await expect(db.get('price')).rejects.toBeInstanceOf(CorruptionError);
    await db.close();
    expect((await checkStore(dir)).ok).toBe(false);
    // ...until the keys are deleted or written again.
    db = await open(dir, { autoCompact: false });
    await expect(db.get('revoked-token')).rejects.toBeInstanceOf(CorruptionError);
    expect(await db.delete('revoked-token')).toBe(true);
    await db.set('price', 'price=RESET');
    await db.compact();
    await db.close();
    expect((await checkStore(dir)).ok).toBe(true);
    db = await open(dir);
    expect(await db.get('revoked-token')).toBeUndefined();
    expect(await db.getString('price')).toBe('price=RESET');
    await expectFillers(db);
    await db.close();
  });

  it('a sealed file without its hint file, and a damaged member of a batch', async () => {
    const dir = tmpDir('damaged-scan-sealed');
    let db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    await db.set('k1', 'k1-old');
    await db.set('k2', 'k2-old');
    await fillers(db);
    await db.batch([
      { type: 'set', key: 'k1', value: 'k1-new-in-batch' },
      { type: 'set', key: 'k2', value: 'k2-new-in-batch' },
    ]);
    await fillers(db); // seals the batch's file too
    await db.close();
    const name = flipIn(dir, 'k1-new-in-batch', 3);
    // Its hint file gone: the open reads the sealed file record by record.
    const hint = path.join(dir, name.replace('.data', '.hint'));
    expect(fs.existsSync(hint)).toBe(true);
    fs.rmSync(hint);

    const reopened = await openReporting(dir);
    db = reopened.db;
    const problems = reopened.problems;
    expect(problems.some((p) => p.kind === 'corrupt-range')).toBe(true);
    await expect(db.get('k1')).rejects.toBeInstanceOf(CorruptionError);
    // The batch's other member is intact: it reads, and the batch is not left half old.
    expect(await db.getString('k2')).toBe('k2-new-in-batch');
    await expectFillers(db);
    await db.close();
  });

  // Found from outside: deleting a damaged key in a transaction failed with the key's
  // CorruptionError (the write read the value it replaced for snapshots), and so did a plain SET
  // of it whenever any snapshot or transaction was open: the one way to clear the damage failed.
  it('a damaged key is cleared by a transaction, and by a write while a snapshot is open', async () => {
    const dir = tmpDir('damaged-scan-txn');
    let db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    await db.set('d1', 'd1-value-acked');
    await db.set('d2', 'd2-value-acked');
    await db.close();
    flipIn(dir, 'd1-value-acked', 3);
    flipIn(dir, 'd2-value-acked', 3);
    db = (await openReporting(dir)).db;
    await expect(db.get('d1')).rejects.toBeInstanceOf(CorruptionError);
    await expect(db.get('d2')).rejects.toBeInstanceOf(CorruptionError);

    // A blind delete in a transaction clears the damage.
    await db.transaction(async (tx) => {
      tx.delete('d1');
    });
    expect(await db.get('d1')).toBeUndefined();

    // A plain write while a snapshot is open: it goes ahead, and the snapshot, which would read
    // the damaged version, fails as the engine's read did, never answering absent or the new value.
    const snap = await db.snapshot();
    await db.set('d2', 'd2-rewritten');
    expect(await db.getString('d2')).toBe('d2-rewritten');
    await expect(snap.get('d2')).rejects.toBeInstanceOf(CorruptionError);
    await expect(
      (async () => {
        for await (const _ of snap.scan({ prefix: 'd' })) {
          // drains the scan
        }
      })(),
    ).rejects.toBeInstanceOf(CorruptionError);
    snap.release();
    await db.close();
    db = await open(dir, { autoCompact: false });
    expect(await db.get('d1')).toBeUndefined();
    expect(await db.getString('d2')).toBe('d2-rewritten');
    await db.close();
  });
});
