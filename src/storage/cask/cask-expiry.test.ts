// Expiry in the cask engine's formats and machinery: the EXPIRES record flag, hint entries with
// an expiry, recovery through data scans and hint files, compaction and the bounded cycle.
// (Engine-level semantics are in ../engine-conformance-expiry.ts, run against every engine.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { EXPIRY_CYCLE_INTERVAL_MS, EXPIRY_CYCLE_KEYS_MAX } from '../expiry-index.js';
import { openLmdb } from '../lmdb/lmdb-engine.js';
import {
  FORMAT_EXPIRY,
  FORMAT_NEW_STORE,
  FORMAT_REVISION,
  FORMAT_TYPED,
  readMeta,
  writeMeta,
} from '../meta.js';
import { dataFileName } from './file-names.js';
import { decodeHint, HintWriter } from './hint.js';
import {
  BATCH_MEMBER,
  DATA_HEADER_BYTES,
  type Decoded,
  decodeRecord,
  EXPIRES,
  EXPIRY_BYTES,
  encodeRecord,
  INVALID,
  Kind,
  RECORD_HEADER_BYTES,
  recordBytes,
  recordBytesAt,
} from './record.js';

const b = (s: string) => Buffer.from(s);

function encodeExpiring(
  seq: number,
  kind: number,
  key: Uint8Array,
  value: Uint8Array,
  expiresAt: number,
): Buffer {
  const buf = Buffer.alloc(recordBytes(key.length, value.length, true));
  expect(encodeRecord(buf, 0, seq, kind, key, value, expiresAt)).toBe(buf.length);
  return buf;
}

describe('record codec with expiry', () => {
  it('round-trips any put with an expiry, batch member or not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 256 }),
        fc.boolean(),
        (seq, expiresAt, key, value, member) => {
          const buf = encodeExpiring(seq, member ? Kind.PUT | BATCH_MEMBER : Kind.PUT, key, value, expiresAt);
          expect(buf[12]! & EXPIRES).toBe(EXPIRES);
          expect(recordBytesAt(buf, 0)).toBe(buf.length);
          const rec = decodeRecord(buf, 0, buf.length) as Decoded;
          expect(rec).not.toBe(INVALID);
          expect(rec.seq).toBe(seq);
          expect(rec.kind).toBe(Kind.PUT);
          expect(rec.member).toBe(member);
          expect(rec.expiresAt).toBe(expiresAt);
          expect(rec.keyStart).toBe(RECORD_HEADER_BYTES + EXPIRY_BYTES);
          expect(Buffer.from(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen))).toEqual(
            Buffer.from(key),
          );
          expect(Buffer.from(buf.subarray(rec.valueStart, rec.valueStart + rec.valueLen))).toEqual(
            Buffer.from(value),
          );
          expect(rec.end).toBe(buf.length);
        },
      ),
    );
  });

  it('detects every single bit flip, the expiry field included', () => {
    const buf = encodeExpiring(7, Kind.PUT, b('key'), b('value'), 1_900_000_000_000);
    for (let bit = 0; bit < buf.length * 8; bit++) {
      const copy = Buffer.from(buf);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      const rec = decodeRecord(copy, 0, copy.length);
      // A flip in a length may also make the record look longer than the buffer (NEED_MORE).
      expect(rec === INVALID || rec === 'need-more', `bit ${bit}`).toBe(true);
    }
  });

  it('reads records without the flag exactly as before (no expiry)', () => {
    const buf = Buffer.alloc(recordBytes(1, 1));
    encodeRecord(buf, 0, 1, Kind.PUT, b('k'), b('v'));
    // The bytes of the original format: header, key, value.
    expect(buf.length).toBe(RECORD_HEADER_BYTES + 2);
    expect(buf[12]).toBe(Kind.PUT);
    const rec = decodeRecord(buf, 0, buf.length) as Decoded;
    expect(rec.expiresAt).toBeUndefined();
    expect(rec.keyStart).toBe(RECORD_HEADER_BYTES);
  });

  it('refuses the flag on anything but a PUT', () => {
    const del = Buffer.alloc(recordBytes(1, 0));
    encodeRecord(del, 0, 1, Kind.DELETE, b('k'), undefined);
    del[12] = Kind.DELETE | EXPIRES;
    expect(decodeRecord(del, 0, del.length)).toBe(INVALID);
  });
});

describe('hint entries with expiry', () => {
  it('round-trip mixed with entries without one, and reject a truncated expiry', () => {
    const w = new HintWriter(1, 3);
    w.add(b('a'), 1, 100, 5, undefined, 0, 0);
    w.add(b('b'), 2, 200, 6, 1_900_000_000_123, 0, 0);
    w.add(b(''), 3, 300, 7, 0, 0, 0);
    const bytes = w.finish(4096);
    const seen: unknown[] = [];
    expect(
      decodeHint(bytes, 3, 4096, (key, seq, off, len, exp) =>
        seen.push([Buffer.from(key).toString(), seq, off, len, exp]),
      ),
    ).toBeUndefined();
    expect(seen).toEqual([
      ['a', 1, 100, 5, undefined],
      ['b', 2, 200, 6, 1_900_000_000_123],
      ['', 3, 300, 7, 0],
    ]);
  });
});

describe('CaskEngine expiry', () => {
  it('restores expiry from a data-file scan and from hint files after compaction', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    let db = await openCaskPipelined(dir, { clock, autoCompact: false });
    await db.put(b('a'), b('1'), { expiresAt: t0 + 100 });
    await db.batch([
      { type: 'put', key: b('b'), value: b('2'), expiresAt: t0 + 200 },
      { type: 'put', key: b('c'), value: b('3') },
    ]);
    await db.put(b('a'), b('1a'), { expiresAt: t0 + 150 }); // overwritten: the newer expiry wins
    await db.close();

    db = await openCaskPipelined(dir, { clock, autoCompact: false });
    expect(db.engine.recovery.hintFilesUsed).toBe(0);
    expect(await db.expiry(b('a'))).toBe(t0 + 150);
    expect(await db.expiry(b('b'))).toBe(t0 + 200);
    expect(await db.expiry(b('c'))).toBeNull();
    await db.compact();
    expect(await db.expiry(b('a'))).toBe(t0 + 150);
    expect(String(await db.get(b('a')))).toBe('1a');
    expect(db.stats().deadBytes).toBe(db.stats().diskBytes - db.stats().liveBytes);
    await db.close();

    db = await openCaskPipelined(dir, { clock, autoCompact: false });
    expect(db.engine.recovery.hintFilesUsed).toBeGreaterThan(0);
    expect(db.engine.recovery.problems).toEqual([]);
    expect(await db.expiry(b('a'))).toBe(t0 + 150);
    expect(await db.expiry(b('b'))).toBe(t0 + 200);
    expect(await db.expiry(b('c'))).toBeNull();
    expect(String(await db.get(b('b')))).toBe('2');
    clock.set(t0 + 175);
    expect(await db.get(b('a'))).toBeUndefined();
    expect(String(await db.get(b('b')))).toBe('2');
    await db.close();
  });

  it('keeps an expired, not yet deleted key through compaction (no resurrection of older versions)', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    let db = await openCaskPipelined(dir, { clock, autoCompact: false });
    await db.put(b('k'), b('old'));
    await db.put(b('k'), b('new'), { expiresAt: t0 + 10 });
    clock.set(t0 + 20); // expired, but no cycle ran: only lazy expiry hides it
    await db.compact();
    await db.close();
    db = await openCaskPipelined(dir, { clock, autoCompact: false });
    expect(await db.get(b('k'))).toBeUndefined();
    clock.set(t0);
    expect(String(await db.get(b('k')))).toBe('new');
    await db.close();
  });

  it('keeps accounting live bytes exactly for records with an expiry', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    let db = await openCaskPipelined(dir, { clock, autoCompact: false });
    await db.put(b('k'), b('v'), { expiresAt: t0 + 1000 });
    const one = db.stats().liveBytes;
    expect(one).toBe(recordBytes(1, 1, true, true));
    await db.put(b('k'), b('v'));
    expect(db.stats().liveBytes).toBe(recordBytes(1, 1, false, true));
    await db.put(b('k'), b('v'), { expiresAt: t0 + 1000 });
    await db.close();
    db = await openCaskPipelined(dir, { clock, autoCompact: false });
    expect(db.stats().liveBytes).toBe(one);
    await db.compact();
    expect(db.stats().liveBytes).toBe(one);
    await db.delete(b('k'));
    expect(db.stats().liveBytes).toBe(0);
    await db.close();
  });

  it('repairs a torn record with an expiry at the tail like any other', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    // The writer crashes (every file operation fails from then on, as if killed): its close
    // leaves no note that the active file was durable, so its tail may be a torn write.
    const faulty = new FaultyFileSystem(nodeFileSystem);
    let db = await openCaskPipelined(dir, { clock, fs: faulty });
    await db.put(b('a'), b('1'), { expiresAt: t0 + 100 });
    await db.put(b('b'), b('2'), { expiresAt: t0 + 100 });
    const size = db.engine.active.size; // the end of the records; preallocated zeros follow
    faulty.dieAfter = faulty.mutations;
    await db.close().catch(() => {});
    const file = path.join(dir, dataFileName(1));
    fs.truncateSync(file, size - 3);
    db = await openCaskPipelined(dir, { clock });
    expect(db.engine.recovery.problems.map((p) => p.kind)).toEqual(['torn-tail']);
    expect(await db.expiry(b('a'))).toBe(t0 + 100);
    expect(await db.has(b('b'))).toBe(false);
    expect(fs.statSync(file).size).toBe(DATA_HEADER_BYTES + recordBytes(1, 1, true, true));
    await db.close();
  });

  it('deletes many expired keys over bounded cycles, each at most EXPIRY_CYCLE_KEYS_MAX', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const db = await openCaskPipelined(dir, { clock });
    const n = 2 * EXPIRY_CYCLE_KEYS_MAX + 10;
    await db.batch(
      Array.from({ length: n }, (_, i) => ({
        type: 'put' as const,
        key: b(`k${String(i).padStart(5, '0')}`),
        value: b('v'),
        expiresAt: t0 + 1 + (i % 7),
      })),
    );
    await db.put(b('stay'), b('v'));
    const writesBefore = db.stats().writes;
    clock.advance(EXPIRY_CYCLE_INTERVAL_MS);
    expect(db.stats().keys).toBe(1);
    // The first cycle takes EXPIRY_CYCLE_KEYS_MAX and chains the next one when its batch is
    // durable; poll (with a deadline) until the index is empty.
    const deadline = Date.now() + 10_000;
    while (db.engine.expiries.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(db.engine.expiries.size).toBe(0);
    expect(db.stats().writes - writesBefore).toBe(Math.ceil(n / EXPIRY_CYCLE_KEYS_MAX));
    db.engine.expiries.checkInvariants();
    expect(db.stats().keys).toBe(1);
    await db.close();
  });

  it('does not let a cycle tombstone overwrite a write queued to the same key', async () => {
    const dir = tmpDir('cask-ttl');
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    let db = await openCaskPipelined(dir, { clock });
    await db.put(b('k'), b('old'), { expiresAt: t0 + 10 });
    const write = db.put(b('k'), b('new')); // queued, not durable yet
    clock.advance(EXPIRY_CYCLE_INTERVAL_MS); // the cycle finds 'k' due but leaves it to the write
    await write;
    expect(String(await db.get(b('k')))).toBe('new');
    await db.close();
    db = await openCaskPipelined(dir, { clock });
    expect(String(await db.get(b('k')))).toBe('new');
    expect(await db.expiry(b('k'))).toBeNull();
    await db.close();
  });
});

describe('store format and expiry', () => {
  /** downgrade rewrites a store's metadata as format 1, as a build from before TTLs left it. */
  async function downgrade(dir: string): Promise<void> {
    const { meta } = await readMeta(nodeFileSystem, dir);
    await writeMeta(nodeFileSystem, dir, { ...meta!, format: 1, generation: meta!.generation + 1 });
  }

  it('creates stores at FORMAT_NEW_STORE, which includes expiry', async () => {
    const dir = tmpDir('cask-ttl');
    const db = await openCaskPipelined(dir);
    await db.close();
    // Not FORMAT_TYPED: a store is raised to 4 only by its first typed value (cask-typed.test.ts).
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_NEW_STORE);
    expect(FORMAT_NEW_STORE).toBeGreaterThanOrEqual(FORMAT_EXPIRY);
  });

  it('raises a format-1 cask store to FORMAT_REVISION before its first write, not before', async () => {
    const dir = tmpDir('cask-ttl');
    let db = await openCaskPipelined(dir);
    await db.close();
    await downgrade(dir);
    db = await openCaskPipelined(dir);
    expect(db.stats().keys).toBe(0);
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(1);
    // Every record this build writes carries a revision, which a format-1 or 2 build cannot read.
    await db.put(b('plain'), b('v'));
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_REVISION);
    await db.batch([{ type: 'put', key: b('b'), value: b('v') }]);
    await db.put(b('ttl'), b('v'), { expiresAt: Date.now() + 60_000 });
    await db.close();
    // The upgrade and a compaction's metadata commit do not trample each other.
    await downgrade(dir);
    db = await openCaskPipelined(dir);
    await Promise.all([db.compact(), db.put(b('ttl2'), b('v'), { expiresAt: Date.now() + 60_000 })]);
    await db.close();
    const read = await readMeta(nodeFileSystem, dir);
    expect(read.problems).toEqual([]);
    expect(read.meta?.format).toBe(FORMAT_REVISION);
    db = await openCaskPipelined(dir);
    expect(db.stats().keys).toBe(4);
    await db.close();
  });

  it('raises a format-1 lmdb store at open (it creates the expiry database)', async () => {
    const dir = tmpDir('lmdb-ttl');
    let db = await openLmdb(dir);
    await db.close();
    await downgrade(dir);
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(1);
    db = await openLmdb(dir);
    // Raised to the newest format at open: lmdb stores hold typed values from format 4 on.
    expect((await readMeta(nodeFileSystem, dir)).meta?.format).toBe(FORMAT_TYPED);
    await db.close();
  });
});

describe('CaskEngine scans over expired keys', () => {
  it('skips long runs of expired keys across chunks, forward and reverse, with limits', async () => {
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const db = await openCaskPipelined(tmpDir('cask-ttl'), { clock, autoCompact: false });
    const n = 10_000; // far more than one chunk's visits
    await db.batch(
      Array.from({ length: n }, (_, i) => ({
        type: 'put' as const,
        key: b(`k${String(i).padStart(5, '0')}`),
        value: b('v'),
        // Every key expires except one in a thousand.
        expiresAt: i % 1000 === 999 ? undefined : t0 + 1,
      })),
    );
    clock.set(t0 + 2); // lazily expired: nothing was deleted
    const keys = async (range: Parameters<typeof db.scan>[0]) => {
      const out: string[] = [];
      for await (const [k] of db.scan(range)) out.push(String(k));
      return out;
    };
    const alive = Array.from({ length: 10 }, (_, j) => `k${String(j * 1000 + 999).padStart(5, '0')}`);
    expect(await keys({})).toEqual(alive);
    expect(await keys({ reverse: true })).toEqual([...alive].reverse());
    expect(await keys({ limit: 3 })).toEqual(alive.slice(0, 3));
    expect(await keys({ start: b('k05000'), end: b('k08000') })).toEqual(alive.slice(5, 8));
    expect(db.stats().keys).toBe(10);
    await db.close();
  });
});
