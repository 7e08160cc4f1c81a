// `cairn repair` (rebuildMeta): a cask store whose metadata copies are both lost (bit flips,
// truncation, deletion) is refused by open with a message naming the repair; the repair rebuilds
// the metadata from the data files, after which the normal open serves every key as it was
// (value, expiry, revision), and refuses to run again. Also: compactions and deletes, the
// format it infers, a compaction input left behind (the case it cannot decide, reported), a
// META-n.tmp it takes over, and what it refuses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import {
  buildTombstoneStore,
  crashPartialCompaction,
  partialCompactionSteps,
  TOMBSTONE_STORE_OPTIONS,
} from '../../../test/support/tombstone-store.js';
import { open } from '../../db/db.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { Prng } from '../../stdx/prng.js';
import type { Stored } from '../engine.js';
import { CorruptionError, IncompatibleError, InvalidArgumentError } from '../errors.js';
import { encodeHash } from '../hash-codec.js';
import {
  FORMAT_EXPIRY,
  FORMAT_NEW_STORE,
  FORMAT_TYPED,
  FORMAT_VERSION,
  META_FILES,
  readMeta,
} from '../meta.js';
import { ValueType } from '../value-type.js';
import { openCask } from './cask-engine.js';
import { checkStore } from './check.js';
import { CORRUPT_DIR, DATA_SUFFIX, dataFileName, hintFileName, parseFileId } from './file-names.js';
import { rebuildMeta } from './rebuild-meta.js';
import { encodeDataHeader, encodeRecord, Kind, recordBytes } from './record.js';

const b = (s: string) => Buffer.from(s);
const hex = (s: string) => b(s).toString('hex');
/** FAR: an expiry that never passes while the tests run. */
/** PAD: makes the records long enough to fill several small data files. */
const PAD = 'x'.repeat(40);
const FAR = Date.now() + 24 * 60 * 60 * 1000;

type Damage = 'bit flip' | 'truncate' | 'delete';

/** loseMeta damages both metadata copies the way named. */
function loseMeta(dir: string, how: Damage): void {
  for (const name of META_FILES) {
    const file = path.join(dir, name);
    if (how === 'delete') fs.unlinkSync(file);
    else if (how === 'truncate') fs.truncateSync(file, 5);
    else {
      const bytes = fs.readFileSync(file);
      const at = bytes.length - 3;
      bytes[at] = (bytes[at] as number) ^ 0x10;
      fs.writeFileSync(file, bytes);
    }
  }
}

/** everything: every live key's stored state, by key. */
async function everything(db: PipelinedCask): Promise<Map<string, Stored>> {
  const out = new Map<string, Stored>();
  for await (const [key] of db.engine.scan({})) {
    const stored = db.engine.getStoredSync(key);
    if (stored !== undefined) out.set(Buffer.from(key).toString('latin1'), stored);
  }
  return out;
}

function dataIds(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((n) => parseFileId(n, DATA_SUFFIX))
    .filter((id): id is number => id !== undefined)
    .sort((x, y) => x - y);
}

/** keysIn: `count` keys in the order named (random: a fixed seed). */
function keysIn(order: 'in order' | 'reverse' | 'random', count: number): string[] {
  const keys = Array.from({ length: count }, (_, i) => `key-${String(i).padStart(4, '0')}`);
  if (order === 'reverse') keys.reverse();
  if (order === 'random') {
    const prng = new Prng(7);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = prng.u32() % (i + 1);
      [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
    }
  }
  return keys;
}

describe('rebuildMeta after both metadata copies are lost', () => {
  for (const order of ['in order', 'reverse', 'random'] as const) {
    for (const how of ['bit flip', 'truncate', 'delete'] as const) {
      it(`keys written ${order}, metadata lost by ${how}: open refuses, repair, open serves every key`, async () => {
        const dir = tmpDir('rebuild');
        const db = await openCaskPipelined(dir, { dataFileBytes: 4096 });
        const keys = keysIn(order, 120);
        for (const [i, key] of keys.entries()) {
          await db.put(b(key), b(`v1-${key}`), i % 3 === 0 ? { expiresAt: FAR + i } : undefined);
        }
        // Second versions (revision version 2) for some, deletes of others.
        for (const [i, key] of keys.entries()) {
          if (i % 4 === 0) await db.put(b(key), b(`v2-${key}`));
          else if (i % 7 === 0) await db.delete(b(key));
        }
        const before = await everything(db);
        expect(before.size).toBe(keys.filter((_, i) => i % 4 === 0 || i % 7 !== 0).length);
        await db.close();
        expect(dataIds(dir).length).toBeGreaterThan(2);
        loseMeta(dir, how);

        await expect(openCask(dir)).rejects.toThrow(CorruptionError);
        await expect(openCask(dir)).rejects.toThrow(/cairn repair/);
        await expect(openCask(dir, { readOnly: true })).rejects.toThrow(/cairn repair/);

        const report = await rebuildMeta(dir);
        expect(report.meta.engine).toBe('cask');
        expect(report.meta.format).toBe(FORMAT_NEW_STORE);
        expect(report.meta.fields.files).toEqual(dataIds(dir));
        expect(report.meta.fields.retired).toEqual([]);
        expect(report.suspects.count).toBe(0);
        expect(report.saved.length).toBe(how === 'delete' ? 0 : 2);
        for (const saved of report.saved) expect(fs.existsSync(path.join(dir, saved))).toBe(true);

        const reopened = await openCaskPipelined(dir);
        try {
          const after = await everything(reopened);
          expect(after).toEqual(before);
          for (const [i, key] of keys.entries()) {
            const stored = reopened.engine.getStoredSync(b(key));
            if (i % 4 === 0) expect(stored?.revision.version).toBe(2);
            else if (i % 7 === 0) expect(stored).toBeUndefined();
            else expect(stored?.expiresAt).toBe(i % 3 === 0 ? FAR + i : undefined);
          }
          // A write after the repair gets a seq above every one before it.
          const lastTs = reopened.engine.lastTs();
          expect(lastTs).toBeGreaterThanOrEqual(Math.max(...[...before.values()].map((s) => s.revision.mod)));
          await reopened.put(b('after'), b('repair'));
          expect(reopened.engine.getStoredSync(b('after'))?.revision.mod).toBeGreaterThan(lastTs);
        } finally {
          await reopened.close();
        }
        expect((await checkStore(dir)).ok).toBe(true);
        await expect(rebuildMeta(dir)).rejects.toThrow(InvalidArgumentError);
        await expect(rebuildMeta(dir)).rejects.toThrow(/nothing to rebuild/);
      });
    }
  }

  it('the embedded API refuses by default, naming the repair', async () => {
    const dir = tmpDir('rebuild');
    const db = await open(dir);
    await db.set('k', 'v');
    await db.close();
    loseMeta(dir, 'delete');
    await expect(open(dir)).rejects.toThrow(/`cairn repair .*`/);
    await rebuildMeta(dir);
    const again = await open(dir);
    expect(await again.getString('k')).toBe('v');
    await again.close();
  });

  it('a store with compactions, hint files and deletes: deleted keys stay deleted', async () => {
    const dir = tmpDir('rebuild');
    const db = await openCaskPipelined(dir, { dataFileBytes: 4096 });
    const live = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 60; i++) {
        const key = `k${i}`;
        if ((i + round) % 5 === 0) {
          await db.delete(b(key));
          live.delete(key);
        } else {
          await db.put(b(key), b(`r${round}-${i}-${PAD}`));
          live.set(key, `r${round}-${i}-${PAD}`);
        }
      }
      // A partial compaction of the two oldest files (which must carry tombstones), then a full one.
      const ids = db.engine.files.ids();
      if (round === 1) await db.engine.compactFiles(ids.slice(0, 2));
      if (round === 2) await db.engine.compact();
    }
    await db.close();
    expect(fs.readdirSync(dir).some((n) => n.endsWith('.hint'))).toBe(true);
    // The compactions ran: the first files are gone, and several remain.
    expect(dataIds(dir)[0]).toBeGreaterThan(2);
    expect(dataIds(dir).length).toBeGreaterThan(2);
    loseMeta(dir, 'bit flip');

    const report = await rebuildMeta(dir);
    expect(report.compactions).toEqual([]);
    expect(report.suspects.count).toBe(0);
    // Opened with the hint files, and with every file scanned.
    for (const scan of [false, true]) {
      if (scan)
        for (const n of fs.readdirSync(dir)) if (n.endsWith('.hint')) fs.unlinkSync(path.join(dir, n));
      const reopened = await openCaskPipelined(dir);
      try {
        for (let i = 0; i < 60; i++) {
          const got = reopened.engine.getSync(b(`k${i}`));
          expect(got === undefined ? undefined : Buffer.from(got).toString()).toBe(live.get(`k${i}`));
        }
      } finally {
        await reopened.close();
      }
    }
  });

  describe('a compaction input left on disk after the commit (its `retired` list lost)', () => {
    /**
     * leftInput: `gone` is put in file 1 and deleted in file 2; a full compaction of both drops
     * the tombstone (no older put survives outside the inputs). Input 1 is then put back: the
     * simplest layout of an input that outlived its compaction's commit while the input holding
     * the tombstone did not. (Inputs are deleted oldest first, so a crash leaves that layout when
     * the older put is in the higher-numbered input, an earlier compaction's output; the cut
     * points of a real compaction are the test below.)
     */
    async function leftInput(): Promise<string> {
      const dir = tmpDir('rebuild');
      const db = await openCaskPipelined(dir);
      await db.put(b('gone'), b('old'));
      await db.put(b('kept'), b('k1'));
      await db.engine.rotate();
      await db.delete(b('gone'));
      await db.put(b('new'), b('n2'));
      await db.engine.rotate();
      const input = fs.readFileSync(path.join(dir, dataFileName(1)));
      await db.engine.compact();
      expect(db.engine.getSync(b('gone'))).toBeUndefined();
      await db.close();
      expect(fs.existsSync(path.join(dir, dataFileName(1)))).toBe(false);
      fs.writeFileSync(path.join(dir, dataFileName(1)), input);
      return dir;
    }

    it('with its metadata, the open deletes the input: the key stays deleted', async () => {
      const dir = await leftInput();
      const db = await openCaskPipelined(dir);
      expect(db.engine.getSync(b('gone'))).toBeUndefined();
      await db.close();
    });

    it('rebuilt: the case cannot be decided, so the input is kept and the key reported', async () => {
      const dir = await leftInput();
      loseMeta(dir, 'delete');
      const report = await rebuildMeta(dir);
      // File 1 is known as an input: `kept`'s current record is in it and in the output.
      expect(report.compactions.map((c) => c.input)).toEqual([1]);
      expect(report.suspects).toEqual({ count: 1, named: [hex('gone')] });
      // Documented, not hidden: nothing was dropped, so the deleted key reads again (an
      // uncommitted compaction leaves the same files, and there the input's records are live).
      const db = await openCaskPipelined(dir);
      try {
        expect(Buffer.from(db.engine.getSync(b('gone')) ?? []).toString()).toBe('old');
        expect(Buffer.from(db.engine.getSync(b('kept')) ?? []).toString()).toBe('k1');
        expect(Buffer.from(db.engine.getSync(b('new')) ?? []).toString()).toBe('n2');
      } finally {
        await db.close();
      }
    });

    it('rebuilt from an intact META-n.tmp: its `retired` list is kept and the key stays deleted', async () => {
      const dir = await leftInput();
      // An update cut after its fdatasync, before its rename, leaves the newest metadata there.
      fs.copyFileSync(path.join(dir, 'META-2'), path.join(dir, 'META-2.tmp'));
      loseMeta(dir, 'truncate');
      const report = await rebuildMeta(dir);
      expect(report.source).toBe('META-2.tmp');
      // Every copy is kept before it is replaced, the temporary one included.
      expect(report.saved.map((n) => path.basename(n).replace(/\.\d+$/, '')).sort()).toEqual([
        'META-1',
        'META-2',
        'META-2.tmp',
      ]);
      expect(report.meta.fields.retired).toEqual([1, 2]);
      expect(report.suspects.count).toBe(0);
      const db = await openCaskPipelined(dir);
      expect(db.engine.getSync(b('gone'))).toBeUndefined();
      expect(db.engine.recovery.problems.map((p) => p.kind)).toContain('retired-file');
      await db.close();
    });
  });

  describe('a partial compaction cut by a power loss at any step, then the metadata lost', () => {
    const OPTIONS = TOMBSTONE_STORE_OPTIONS;
    const _build = buildTombstoneStore;

    it('every put is back; a deleted key is back only if the repair names it', async () => {
      const steps = await partialCompactionSteps(tmpDir('rebuild'));
      expect(steps).toBeGreaterThan(10);

      let reported = 0;
      for (let k = 0; k <= steps; k++) {
        const dir = tmpDir('rebuild');
        const model = await crashPartialCompaction(dir, k);
        for (const name of META_FILES) fs.rmSync(path.join(dir, name), { force: true });
        const report = await rebuildMeta(dir);
        const suspects = new Set(report.suspects.named);
        expect(report.suspects.count).toBe(suspects.size); // all named: the store is small
        reported += suspects.size;
        const reopened = await openCaskPipelined(dir, OPTIONS);
        try {
          for (let i = 0; i < 40; i++) {
            const key = `key${i}`;
            const got = reopened.engine.getSync(b(key));
            const want = model.get(key);
            const where = `crash after step ${k} of ${steps}, ${key}`;
            if (want !== undefined) expect(got && Buffer.from(got).toString(), where).toBe(want);
            else if (got !== undefined)
              expect(suspects.has(hex(key)), `${where} is back unreported`).toBe(true);
          }
        } finally {
          await reopened.close();
        }
      }
      // No cut here brings a key back, nor is any reported: the inputs are deleted oldest first,
      // so a surviving input's tombstones still shadow the older puts of the deleted ones. The
      // case that does bring one back (an older put in a higher-numbered input, e.g. an earlier
      // compaction's output) is made by hand above.
      expect(reported).toBe(0);
    });
  });

  it('a data file lost with the metadata: its hint file keeps it listed, reported missing', async () => {
    const dir = tmpDir('rebuild');
    const db = await openCaskPipelined(dir);
    await db.put(b('a'), b('1'));
    await db.engine.rotate();
    await db.put(b('b'), b('2'));
    // A sealed file's hint is written in the background, and a close gives up one still queued.
    await db.engine.hintsSettled();
    await db.close();
    expect(fs.existsSync(path.join(dir, hintFileName(1)))).toBe(true);
    fs.unlinkSync(path.join(dir, dataFileName(1)));
    loseMeta(dir, 'delete');
    const report = await rebuildMeta(dir);
    expect(report.missing).toEqual([1]);
    expect(report.meta.fields.files).toEqual([1, 2]);
    const reopened = await openCaskPipelined(dir);
    expect(reopened.engine.recovery.problems.map((p) => `${p.kind} ${p.file}`)).toEqual([
      `missing-data-file ${dataFileName(1)}`,
    ]);
    expect(Buffer.from(reopened.engine.getSync(b('b')) ?? []).toString()).toBe('2');
    await reopened.close();
    expect(fs.existsSync(path.join(dir, hintFileName(1)))).toBe(true);
  });
});

describe('the format it infers', () => {
  /** handWritten: a store of one data file whose records are given, without metadata. */
  function handWritten(headerFormat: number, records: Buffer[]): string {
    const dir = tmpDir('rebuild');
    fs.writeFileSync(
      path.join(dir, dataFileName(1)),
      Buffer.concat([encodeDataHeader(headerFormat, 1), ...records]),
    );
    return dir;
  }
  function record(seq: number, key: string, value: string, expiresAt?: number): Buffer {
    const out = Buffer.alloc(recordBytes(key.length, value.length, expiresAt !== undefined));
    encodeRecord(out, 0, seq, Kind.PUT, b(key), b(value), expiresAt);
    return out;
  }

  it('format 1 for records without optional fields, 2 with an expiry; the store opens', async () => {
    const plain = handWritten(1, [record(1, 'a', 'x'), record(2, 'b', 'y')]);
    expect((await rebuildMeta(plain)).meta.format).toBe(1);
    const expiring = handWritten(1, [record(1, 'a', 'x'), record(2, 'b', 'y', FAR)]);
    const report = await rebuildMeta(expiring);
    expect(report.meta.format).toBe(FORMAT_EXPIRY);
    expect(report.formatReasons.join('\n')).toMatch(/expiry/);
    expect(report.meta.fields.seqFloor).toBe(2);
    const db = await openCaskPipelined(expiring);
    expect(db.engine.getStoredSync(b('b'))).toMatchObject({
      expiresAt: FAR,
      revision: { mod: 2, version: 1 },
    });
    await db.close();
  });

  it('a store holding a typed value gets format 4, a string store stays at 3', async () => {
    const dir = tmpDir('rebuild');
    const db = await openCaskPipelined(dir);
    await db.put(b('s'), b('string'));
    await db.engine.rotate();
    await db.pipeline.put(b('h'), encodeHash(new Map([['f', b('v')]])), FAR, ValueType.HASH);
    // The typed record is overwritten: it is dead, yet a format-3 build would still read it as damage.
    await db.put(b('h'), b('now a string'));
    await db.close();
    loseMeta(dir, 'bit flip');
    const report = await rebuildMeta(dir);
    expect(report.meta.format).toBe(FORMAT_TYPED);
    expect(report.formatReasons.at(-1)).toMatch(/typed/);
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_TYPED);
    const reopened = await openCaskPipelined(dir);
    expect(Buffer.from(reopened.engine.getSync(b('h')) ?? []).toString()).toBe('now a string');
    await reopened.close();

    const strings = tmpDir('rebuild');
    const sdb = await openCaskPipelined(strings);
    await sdb.put(b('s'), b('v'), { expiresAt: FAR });
    await sdb.close();
    loseMeta(strings, 'delete');
    expect((await rebuildMeta(strings)).meta.format).toBe(FORMAT_NEW_STORE);
  });

  it('refuses a file of a newer format than this build reads, writing nothing', async () => {
    const dir = handWritten(FORMAT_VERSION + 1, [record(1, 'a', 'x')]);
    await expect(rebuildMeta(dir)).rejects.toThrow(IncompatibleError);
    expect(fs.readdirSync(dir).sort()).toEqual([dataFileName(1)]);
  });
});

describe('what it refuses', () => {
  it('a directory with a valid copy: nothing to rebuild (a damaged other copy is repaired by open)', async () => {
    const dir = tmpDir('rebuild');
    const db = await openCaskPipelined(dir);
    await db.put(b('a'), b('1'));
    await db.close();
    fs.truncateSync(path.join(dir, 'META-1'), 3);
    await expect(rebuildMeta(dir)).rejects.toThrow(/nothing to rebuild.*META-1: (too short|length mismatch)/);
  });

  it('a directory without data files, and an lmdb store', async () => {
    const empty = tmpDir('rebuild');
    await expect(rebuildMeta(empty)).rejects.toThrow(/no data files/);
    expect(fs.readdirSync(empty)).toEqual([]);

    const lmdb = tmpDir('rebuild');
    const db = await open(lmdb, { engine: 'lmdb' });
    await db.set('k', 'v');
    await db.close();
    loseMeta(lmdb, 'delete');
    await expect(rebuildMeta(lmdb)).rejects.toThrow(IncompatibleError);
    await expect(rebuildMeta(lmdb)).rejects.toThrow(/lmdb store.*backup/);
    expect(fs.existsSync(path.join(lmdb, CORRUPT_DIR))).toBe(false);
  });

  it('a store another process has open', async () => {
    const dir = tmpDir('rebuild');
    const db = await openCaskPipelined(dir);
    try {
      await expect(rebuildMeta(dir)).rejects.toThrow(/already open|in use/);
    } finally {
      await db.close();
    }
  });
});
