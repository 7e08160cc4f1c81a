// Revisions in the cask engine's formats: the REVISION record flag, hint entries with a
// revision, and stores written before revisions existed (format < 3), which must read unchanged
// and report legacy revisions until rewritten. (Engine-level semantics are in
// ../engine-conformance-revision.ts, run against every engine.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { crc32cRange } from '../../stdx/crc32c.js';
import { readMeta, writeMeta } from '../meta.js';
import { legacyRevision } from '../revision.js';
import { dataFileName, hintFileName } from './file-names.js';
import { decodeHint, HintWriter } from './hint.js';
import {
  BATCH_MEMBER,
  DATA_HEADER_BYTES,
  decodeRecord,
  EXPIRES,
  encodeDataHeader,
  encodeRecord,
  INVALID,
  Kind,
  REVISION,
  REVISION_BYTES,
  recordBytes,
  recordBytesAt,
} from './record.js';

const b = (s: string): Buffer => Buffer.from(s);

describe('records with a revision', () => {
  it('round-trip with and without an expiry, in and out of a batch', () => {
    for (const expiresAt of [undefined, 1_900_000_000_123]) {
      for (const member of [false, true]) {
        const size = recordBytes(3, 5, expiresAt !== undefined, true);
        const buf = Buffer.alloc(size);
        const seq = 2 ** 50 + 7;
        const kind = member ? Kind.PUT | BATCH_MEMBER : Kind.PUT;
        expect(
          encodeRecord(buf, 0, seq, kind, b('key'), b('value'), expiresAt, 2 ** 45 + 1, 0xffff_fffe),
        ).toBe(size);
        expect(recordBytesAt(buf, 0)).toBe(size);
        const rec = decodeRecord(buf, 0, size);
        if (rec === INVALID || rec === 'need-more') throw new Error(`decode failed: ${rec}`);
        expect(rec).toMatchObject({
          seq,
          kind: Kind.PUT,
          member,
          expiresAt,
          create: 2 ** 45 + 1,
          version: 0xffff_fffe,
        });
        expect(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen).toString()).toBe('key');
        expect(buf.subarray(rec.valueStart, rec.valueStart + rec.valueLen).toString()).toBe('value');
      }
    }
  });

  it('leaves records without one byte for byte in the original format', () => {
    const buf = Buffer.alloc(recordBytes(1, 1));
    encodeRecord(buf, 0, 9, Kind.PUT, b('k'), b('v'));
    expect((buf[12] as number) & REVISION).toBe(0);
    const rec = decodeRecord(buf, 0, buf.length);
    if (rec === INVALID || rec === 'need-more') throw new Error('decode failed');
    expect([rec.create, rec.version]).toEqual([0, 0]);
    expect(recordBytes(1, 1, false, true) - recordBytes(1, 1)).toBe(REVISION_BYTES);
  });

  it('refuses the flag on a DELETE and a zero version, even with a matching CRC', () => {
    const del = Buffer.alloc(recordBytes(1, 0, false, true));
    encodeRecord(del, 0, 1, Kind.PUT, b('k'), Buffer.alloc(0), undefined, 1, 1);
    del[12] = Kind.DELETE | REVISION;
    expect(decodeRecord(del, 0, del.length)).toBe(INVALID);

    const put = Buffer.alloc(recordBytes(1, 1, true, true));
    encodeRecord(put, 0, 5, Kind.PUT, b('k'), b('v'), 10, 3, 1);
    expect((put[12] as number) & (EXPIRES | REVISION)).toBe(EXPIRES | REVISION);
    put.writeUInt32LE(0, 21 + 8 + 8); // version 0
    // Re-seal the CRC so that only the field check can refuse the record.
    put.writeUInt32LE(crc32cRange(put, 4, put.length), 0);
    expect(decodeRecord(put, 0, put.length)).toBe(INVALID);
  });
});

describe('hint entries with a revision', () => {
  it('round-trip mixed with legacy entries and entries with an expiry', () => {
    const w = new HintWriter(3, 4);
    w.add(b('a'), 10, 100, 5, undefined, 0, 0);
    w.add(b('b'), 2 ** 50, 200, 6, 1_900_000_000_123, 2 ** 49, 42);
    w.add(b(''), 12, 300, 7, undefined, 11, 2);
    const bytes = w.finish(4096);
    const seen: unknown[] = [];
    expect(
      decodeHint(bytes, 4, 4096, (key, seq, off, len, exp, create, version) =>
        seen.push([Buffer.from(key).toString(), seq, off, len, exp, create, version]),
      ),
    ).toBeUndefined();
    expect(seen).toEqual([
      ['a', 10, 100, 5, undefined, 0, 0],
      ['b', 2 ** 50, 200, 6, 1_900_000_000_123, 2 ** 49, 42],
      ['', 12, 300, 7, undefined, 11, 2],
    ]);
  });
});

describe('cask stores from before revisions', () => {
  /** legacyStore writes a format-2 store by hand: records without revisions, as 2 wrote them. */
  async function legacyStore(): Promise<string> {
    const dir = tmpDir('cask-rev');
    const db = await openCaskPipelined(dir);
    await db.close();
    const { meta } = await readMeta(nodeFileSystem, dir);
    await writeMeta(nodeFileSystem, dir, { ...meta!, format: 2, generation: meta!.generation + 1 });
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith('.data') || name.endsWith('.hint')) fs.rmSync(path.join(dir, name));
    }
    const records: Buffer[] = [encodeDataHeader(2, 1)];
    const put = (seq: number, key: string, value: string, expiresAt?: number) => {
      const rec = Buffer.alloc(recordBytes(key.length, value.length, expiresAt !== undefined));
      encodeRecord(rec, 0, seq, Kind.PUT, b(key), b(value), expiresAt);
      records.push(rec);
    };
    put(1, 'a', 'x');
    put(2, 'a', 'y');
    put(3, 'b', 'z', Date.now() + 3_600_000);
    put(4, 'c', 'w');
    fs.writeFileSync(path.join(dir, dataFileName(1)), Buffer.concat(records));
    return dir;
  }

  it('reads old records with legacy revisions, and counts on from them once rewritten', async () => {
    const dir = await legacyStore();
    // A clock at 0: the write pipeline's commit timestamps are then lastTs + 1 (mvcc.ts, nextTs),
    // the sequence numbers this test counts on.
    const clock = new ManualClock(0);
    let db = await openCaskPipelined(dir, { autoCompact: false, clock });
    expect(db.engine.recovery.problems).toEqual([]);
    expect(String(await db.get(b('a')))).toBe('y');
    expect(db.revisionSync(b('a'))).toEqual(legacyRevision(2));
    expect((await db.getStored(b('b')))?.revision).toEqual(legacyRevision(3));
    expect(db.lastTs()).toBe(4);
    await db.put(b('a'), b('new'));
    expect(db.revisionSync(b('a'))).toEqual({ mod: 5, create: 2, version: 2 });
    expect(db.stats().liveBytes).toBe(
      recordBytes(1, 3, false, true) + recordBytes(1, 1, true) + recordBytes(1, 1),
    );
    // Compaction keeps old records old (no revision invented for them) and writes hint files
    // that recovery reads back to the same revisions.
    await db.compact();
    expect(db.revisionSync(b('c'))).toEqual(legacyRevision(4));
    expect(String(await db.get(b('b')))).toBe('z');
    const live = db.stats().liveBytes;
    await db.close();
    expect(fs.readdirSync(dir).some((n) => n.endsWith('.hint'))).toBe(true);
    db = await openCaskPipelined(dir, { autoCompact: false, clock });
    expect(db.engine.recovery.hintFilesUsed).toBeGreaterThan(0);
    expect(db.revisionSync(b('a'))).toEqual({ mod: 5, create: 2, version: 2 });
    expect(db.revisionSync(b('b'))).toEqual(legacyRevision(3));
    expect(db.revisionSync(b('c'))).toEqual(legacyRevision(4));
    expect(db.stats().liveBytes).toBe(live);
    expect(String(await db.get(b('c')))).toBe('w');
    await db.close();
    // Without the hint files recovery scans the data files and finds the same.
    for (const name of fs.readdirSync(dir)) {
      const id = Number.parseInt(name, 10);
      if (name.endsWith('.hint')) expect(name).toBe(hintFileName(id));
      if (name.endsWith('.hint')) fs.rmSync(path.join(dir, name));
    }
    db = await openCaskPipelined(dir, { autoCompact: false, clock });
    expect(db.revisionSync(b('a'))).toEqual({ mod: 5, create: 2, version: 2 });
    expect(db.revisionSync(b('c'))).toEqual(legacyRevision(4));
    expect(db.stats().liveBytes).toBe(live);
    await db.close();
  });

  it('raises the metadata to format 3 before the first record with a revision', async () => {
    const dir = await legacyStore();
    const db = await openCaskPipelined(dir);
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(2);
    await db.put(b('d'), b('1'));
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(3);
    expect(fs.statSync(path.join(dir, dataFileName(1))).size).toBeGreaterThan(DATA_HEADER_BYTES);
    await db.close();
  });
});
