// Recovery under the rules of docs/hardening.md: it touches only Cairn's own files, an
// interrupted or failing copy to corrupt/ never wedges or loses anything, a torn write is
// possible only at the end of the active file (defects-2026-12.md entries 2, 3 and 9), what it
// shows readers is durable, and `cairn check` verifies records behind hint files (entry 5).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataFiles } from '../../../test/support/data-files.js';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { IoError } from '../errors.js';
import { checkStore } from './check.js';
import { CORRUPT_DIR, dataFileName } from './file-names.js';

const b = (s: string) => Buffer.from(s);

/** flipByte inverts one byte of a file. */
function flipByte(file: string, at: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  fs.writeFileSync(file, bytes);
}

async function values(db: PipelinedCask, keys: readonly string[]): Promise<(string | undefined)[]> {
  return Promise.all(keys.map(async (k) => (await db.get(b(k)))?.toString()));
}

describe('recovery touches only the files Cairn owns', () => {
  it("removes its own leftovers by exact name and leaves a user's *.tmp files alone", async () => {
    const dir = tmpDir('own');
    const db = await openCaskPipelined(dir);
    await db.put(b('k'), b('v'));
    await db.close();
    const mine = ['META-1.tmp', '0000000009.data.tmp', '0000000009.hint.tmp', '0000000010.data.compacting'];
    const users = ['notes.tmp', 'download.tmp', 'META-3.tmp', '12.data.tmp', 'x.data.compacting'];
    for (const name of [...mine, ...users]) fs.writeFileSync(path.join(dir, name), 'x');
    const check = await checkStore(dir);
    expect(check.ok).toBe(true);
    expect(check.report?.problems.map((p) => p.file).sort()).toEqual([...mine].sort());
    const again = await openCaskPipelined(dir);
    expect(again.engine.recovery.problems.map((p) => `${p.kind} ${p.file}`).sort()).toEqual(
      mine.map((m) => `leftover-temp ${m}`).sort(),
    );
    expect(String(await again.get(b('k')))).toBe('v');
    await again.close();
    const left = fs.readdirSync(dir);
    for (const name of users) expect(left).toContain(name);
    for (const name of mine) expect(left).not.toContain(name);
  });
});

describe('the copy of damaged bytes to corrupt/', () => {
  it('an interrupted copy left behind does not stop the next open, and check reports it', async () => {
    const dir = tmpDir('ctmp');
    const db = await openCaskPipelined(dir);
    await db.put(b('a'), b('1'));
    await db.close();
    const file = dataFiles(dir)[0]!;
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, 'garbage-tail');
    // What a killed open (or one on a full disk) leaves: the copy's temporary file.
    fs.mkdirSync(path.join(dir, CORRUPT_DIR));
    const leftover = `${dataFileName(1)}.${size}-${size + 12}.tmp`;
    fs.writeFileSync(path.join(dir, CORRUPT_DIR, leftover), '');
    const check = await checkStore(dir);
    expect(check.report?.problems.map((p) => `${p.kind} ${p.file}`)).toContain(
      `leftover-temp ${CORRUPT_DIR}/${leftover}`,
    );
    const again = await openCaskPipelined(dir);
    expect(String(await again.get(b('a')))).toBe('1');
    await again.close();
    expect(fs.readdirSync(path.join(dir, CORRUPT_DIR))).toEqual([`${dataFileName(1)}.${size}-${size + 12}`]);
  });

  it('cuts nothing it could not save: with corrupt/ on a full disk the open stops, changing nothing, until there is room', async () => {
    const dir = tmpDir('cfull');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCaskPipelined(dir, { fs: faulty });
    await db.put(b('a'), b('1'));
    const end = db.engine.active.size;
    faulty.dieAfter = faulty.mutations; // a crash: nothing more reaches the disk
    await db.close().catch(() => {});
    faulty.clearFaults();
    const file = dataFiles(dir)[0]!;
    fs.truncateSync(file, end);
    fs.appendFileSync(file, 'torn-write');
    faulty.inject({ op: 'write', code: 'ENOSPC', path: /corrupt/, times: 100 });
    const err = await openCaskPipelined(dir, { fs: faulty }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as Error).message).toMatch(
      /could not save the torn tail .*ENOSPC.*nothing was changed: free some space and open again .*readOnly: true/,
    );
    expect(fs.statSync(file).size).toBe(end + 10);
    expect(fs.readdirSync(path.join(dir, CORRUPT_DIR))).toEqual([]);
    // Meanwhile it can be read.
    const ro = await openCaskPipelined(dir, { readOnly: true });
    expect(String(await ro.get(b('a')))).toBe('1');
    await ro.close();
    // With space again the tail is saved and cut, as after any crash.
    faulty.clearFaults();
    const later = await openCaskPipelined(dir);
    expect(later.engine.recovery.problems.map((p) => p.kind)).toEqual(['torn-tail']);
    expect(fs.statSync(file).size).toBe(end);
    expect(await values(later, ['a'])).toEqual(['1']);
    await later.close();
    expect(fs.readdirSync(path.join(dir, CORRUPT_DIR))).toEqual([`${dataFileName(1)}.${end}-${end + 10}`]);
  });
});

describe('a torn write only at the end of the active file (entry 9)', () => {
  async function storeWithBatchAtTheEnd(dir: string): Promise<void> {
    const db = await openCaskPipelined(dir, { dataFileBytes: 8192 });
    for (let i = 0; i < 200; i++)
      await db.put(b(`key${String(i).padStart(4, '0')}`), b(`value-${i}-`.padEnd(60, '-')));
    await db.batch(
      Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: b(`b${i}`), value: b(`bv${i}`) })),
    );
    await db.close();
  }

  it('a flipped byte inside the last batch of a cleanly closed store is damage: intact members applied', async () => {
    const dir = tmpDir('rot-batch');
    await storeWithBatchAtTheEnd(dir);
    const last = dataFiles(dir).at(-1)!;
    const size = fs.statSync(last).size;
    flipByte(last, size - 100); // inside the batch, members follow it
    const check = await checkStore(dir);
    expect(check.ok).toBe(false);
    expect(check.report?.problems.map((p) => p.kind).sort()).toEqual(['corrupt-range', 'damaged-batch']);
    const db = await openCaskPipelined(dir);
    const got = await values(
      db,
      Array.from({ length: 10 }, (_, i) => `b${i}`),
    );
    expect(got.filter((v) => v !== undefined)).toHaveLength(9);
    expect(fs.statSync(last).size).toBe(size); // nothing cut
    await db.close();
    expect((await checkStore(dir)).ok).toBe(false); // and the damage is still reported
  });

  it('a flipped byte in the last record of a sealed file is damage, kept and reported at every check', async () => {
    const dir = tmpDir('rot-sealed');
    await storeWithBatchAtTheEnd(dir);
    const sealed = dataFiles(dir).at(-2)!;
    const size = fs.statSync(sealed).size;
    flipByte(sealed, size - 10);
    // Open scans a sealed file only without its hint file (written before sealed files had
    // one, or a crash before it was); with one, `cairn check` finds the damage (below).
    const hint = sealed.replace(/\.data$/, '.hint');
    const hintBytes = fs.existsSync(hint) ? fs.readFileSync(hint) : undefined;
    fs.rmSync(hint, { force: true });
    const db = await openCaskPipelined(dir);
    expect(db.engine.recovery.problems.map((p) => p.kind)).toEqual(['corrupt-range']);
    expect(db.engine.recovery.problems[0]?.detail).toMatch(/end of a sealed file/);
    expect(fs.statSync(sealed).size).toBe(size);
    await db.close();
    const check = await checkStore(dir);
    expect(check.ok).toBe(false);
    expect(check.report?.problems.map((p) => p.kind)).toEqual(['corrupt-range']);
    // A damaged file is given no hint file, so every open and check reports it.
    expect(fs.existsSync(hint)).toBe(false);
    if (hintBytes !== undefined) {
      // Behind a hint file (put back), check still reads every record and reports it.
      fs.writeFileSync(hint, hintBytes);
      const checked = await checkStore(dir);
      expect(checked.ok).toBe(false);
      expect(checked.report?.problems.map((p) => p.kind)).toContain('corrupt-range');
    }
  });

  it('what recovery shows of a crashed writer is made durable before anyone reads it', async () => {
    const dir = tmpDir('visible');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    // Written to the OS but never fsynced, then the writer dies (its page cache survives).
    const writer = await openCaskPipelined(dir, { fs: faulty, durability: 'never' });
    await writer.put(b('shown'), b('after the crash'));
    const end = writer.engine.active.size;
    faulty.dieAfter = faulty.mutations;
    await writer.close().catch(() => {});
    faulty.clearFaults();
    // Without the zeros preallocated past the record (whose removal syncs the file anyway).
    fs.truncateSync(dataFiles(dir)[0]!, end);
    // The next process shows the value...
    const reader = await openCaskPipelined(dir, { fs: faulty });
    expect(String(await reader.get(b('shown')))).toBe('after the crash');
    faulty.dieAfter = faulty.mutations;
    await reader.close().catch(() => {});
    // ... so a power cut now must not take it back.
    await faulty.powerLoss();
    const after = await openCaskPipelined(dir);
    expect(String(await after.get(b('shown')))).toBe('after the crash');
    await after.close();
  });
});

describe('cairn check verifies records behind hint files (entry 5)', () => {
  it('finds a flipped byte in a compacted file; --fast trusts the hint and does not', async () => {
    const dir = tmpDir('check-deep');
    const db = await openCaskPipelined(dir, { dataFileBytes: 8192 });
    for (let i = 0; i < 200; i++)
      await db.put(b(`key${String(i).padStart(4, '0')}`), b(`value-${i}-`.padEnd(60, '-')));
    for (let i = 0; i < 50; i++)
      await db.put(b(`key${String(i).padStart(4, '0')}`), b(`value-${i}-`.padEnd(60, '-')));
    await db.compact();
    await db.close();
    const hinted = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.hint'))
      .map((n) => path.join(dir, n.replace('.hint', '.data')));
    expect(hinted.length).toBeGreaterThan(0);
    flipByte(hinted[0]!, 3000);
    const deep = await checkStore(dir);
    expect(deep.ok).toBe(false);
    expect(deep.report?.hintFilesUsed).toBe(0);
    expect(deep.report?.problems.map((p) => p.kind)).toContain('corrupt-range');
    const fast = await checkStore(dir, { fast: true });
    expect(fast.report?.hintFilesUsed).toBe(hinted.length);
    expect(fast.ok).toBe(true);
  });

  it('a live store: a half-written record at the end of the active file is in flight, not damage', async () => {
    const dir = tmpDir('check-live');
    const db = await openCaskPipelined(dir, { dataFileBytes: 1 << 20 });
    for (let i = 0; i < 50; i++) await db.put(b(`key${i}`), b(`value-${i}`));
    // What a check racing the writer reads: the start of a record whose rest is not written yet.
    const active = dataFiles(dir).at(-1)!;
    fs.appendFileSync(active, Buffer.from([0x12, 0x34, 0x56, 0x78, 1, 0, 0]));
    const live = await checkStore(dir);
    expect(live.ok).toBe(true);
    expect(live.report?.problems.map((p) => p.kind)).toEqual(['in-flight']);
    expect(live.report?.problems[0]?.detail).toContain(`pid ${process.pid}`);
    await db.close();
    // Closed (and the close did not reach those bytes): the same tail is a torn write.
    const size = fs.statSync(active).size;
    fs.appendFileSync(active, Buffer.from([0x12, 0x34, 0x56]));
    expect(fs.statSync(active).size).toBe(size + 3);
    const closed = await checkStore(dir);
    expect(closed.ok).toBe(false);
    expect(closed.report?.problems.map((p) => p.kind)).toContain('torn-tail');
  });

  it('reports a damaged hint file too, as --fast and an open do (found from outside)', async () => {
    const dir = tmpDir('check-hint');
    const db = await openCaskPipelined(dir, { dataFileBytes: 8192 });
    for (let i = 0; i < 200; i++) await db.put(b(`key${i}`), b(`value-${i}-`.padEnd(60, '-')));
    await db.compact();
    await db.close();
    const hint = fs.readdirSync(dir).find((n) => n.endsWith('.hint'));
    expect(hint).toBeDefined();
    flipByte(path.join(dir, hint!), 40);
    for (const fast of [false, true]) {
      const checked = await checkStore(dir, { fast });
      expect(checked.ok).toBe(false);
      expect(checked.report?.problems.find((p) => p.kind === 'hint-rejected')?.file).toBe(hint);
    }
  });
});
