// Hint files: the compact format (version 2) against the format it replaced (version 1, still
// read), decodeHintAt's two modes (validate then visit: nothing visited from a bad file; one
// pass: the open's, which drops what it collected on failure), and refusal of damaged, foreign
// and unknown-version files (recovery then scans the data file: recovery-hardening.test.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../stdx/crc32c.js';
import type { TimeSlice } from '../../stdx/time-slice.js';
import { decodeHint, decodeHintAt, HINT_MAGIC, HintWriter, hintEntryCount, openHintCursor } from './hint.js';
import { HINT_V1_MAGIC, HintWriterV1 } from './hint-v1.js';
import { recordBytes } from './record.js';

type Writer = HintWriter | HintWriterV1;
const VERSIONS = [
  { name: 'version 2', make: (format: number, id: number): Writer => new HintWriter(format, id) },
  { name: 'version 1', make: (format: number, id: number): Writer => new HintWriterV1(format, id) },
];

function sample(make: (format: number, id: number) => Writer): Buffer {
  const w = make(3, 9);
  w.add(Buffer.from('alpha'), 10, 100, 5, undefined, 0, 0);
  w.add(Buffer.from('beta'), 11, 200, 6, 1_700_000_000_000, 4, 2);
  w.add(Buffer.from('gamma'), 12, 300, 7, undefined, 12, 1);
  w.addTombstone(Buffer.from('zeta'), 13);
  return w.finish(4096);
}

/** withCount rewrites the entry count (and the CRC, so only the structure is wrong). */
function withCount(bytes: Buffer, count: number): Buffer {
  const copy = Buffer.from(bytes);
  const v1 = copy.subarray(0, 8).equals(HINT_V1_MAGIC);
  copy.writeUInt32LE(count, v1 ? copy.length - 12 : 16);
  return resealed(copy);
}

/** resealed: `bytes` with a CRC that holds again (a copy), so that only the fields can refuse it. */
function resealed(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32LE(crc32c(copy.subarray(0, copy.length - 4)), copy.length - 4);
  return copy;
}

function decode(
  bytes: Buffer,
  onePass: boolean,
  dataFileBytes = 4096,
): { reason: string | undefined; keys: string[]; tombstones: string[] } {
  const keys: string[] = [];
  const tombstones: string[] = [];
  const reason = decodeHintAt(
    bytes,
    9,
    dataFileBytes,
    (into, keyAt, keyLen, seq, off, len, exp, create, version) =>
      keys.push(
        `${into.toString('latin1', keyAt, keyAt + keyLen)}/${seq}/${off}/${len}/${exp}/${create}/${version}`,
      ),
    (key, seq) => tombstones.push(`${Buffer.from(key).toString()}/${seq}`),
    onePass,
  );
  return { reason, keys, tombstones };
}

describe.each(VERSIONS)('decodeHintAt, $name', ({ make }) => {
  it('visits the same entries and tombstones in one pass as in two', () => {
    const bytes = sample(make);
    expect(hintEntryCount(bytes)).toBe(3);
    const two = decode(bytes, false);
    expect(two.reason).toBeUndefined();
    expect(two.keys).toEqual([
      'alpha/10/100/5/undefined/0/0',
      'beta/11/200/6/1700000000000/4/2',
      'gamma/12/300/7/undefined/12/1',
    ]);
    expect(two.tombstones).toEqual(['zeta/13']);
    expect(decode(bytes, true)).toEqual(two);
  });

  it('refuses a file whose structure is wrong under a valid checksum; only one pass visits before it knows', () => {
    for (const count of [2, 5, 1000]) {
      const bad = withCount(sample(make), count);
      const two = decode(bad, false);
      expect(two.reason, `count ${count}`).toBeDefined();
      expect(two.keys).toEqual([]);
      expect(two.tombstones).toEqual([]);
      const one = decode(bad, true);
      expect(one.reason, `count ${count}`).toBeDefined();
      expect(one.tombstones).toEqual([]); // tombstones only ever after the whole file is checked
    }
  });

  it('refuses every flipped byte, every truncation, another data file and another size', () => {
    const bytes = sample(make);
    for (let at = 0; at < bytes.length; at++) {
      const bad = Buffer.from(bytes);
      bad[at] = (bad[at] as number) ^ 0x01;
      expect(decode(bad, false).reason, `byte ${at}`).toBeDefined();
    }
    for (let len = 0; len < bytes.length; len++)
      expect(decode(bytes.subarray(0, len), false).reason, `length ${len}`).toBeDefined();
    expect(
      decodeHint(
        bytes,
        8,
        4096,
        () => {},
        () => {},
      ),
    ).toBe('written for another data file');
    expect(
      decodeHint(
        bytes,
        9,
        4097,
        () => {},
        () => {},
      ),
    ).toBe('data file size differs from the hint');
  });

  it('a reader that takes no tombstones refuses a file that lists some, visiting nothing', () => {
    let visited = 0;
    expect(decodeHint(sample(make), 9, 4096, () => visited++)).toBeDefined();
    expect(visited).toBe(0);
  });
});

describe('version 2 (compact) hint files', () => {
  it('round-trips edge values: empty and long keys, no shared prefix, the largest seq, create above seq', () => {
    const w = new HintWriter(4, 9);
    const long = Buffer.alloc(5000, 7);
    const longer = Buffer.concat([long, Buffer.from('x')]);
    const entries: [Buffer, number, number, number, number | undefined, number, number][] = [
      [Buffer.alloc(0), 1, 0, 0, undefined, 0, 0],
      [long, Number.MAX_SAFE_INTEGER, 4000, 96, 0, 1, 0xffff_ffff],
      [longer, 5, 0xffff_0000, 0xffff, Number.MAX_SAFE_INTEGER, 9, 3],
      [Buffer.from('zz'), 2 ** 40, 17, 1, undefined, 2 ** 52, 1],
    ];
    for (const e of entries) w.add(...e);
    w.addTombstone(Buffer.alloc(0), 3);
    w.addTombstone(long, Number.MAX_SAFE_INTEGER);
    const bytes = w.finish(0xffff_ffff);
    const seen: unknown[] = [];
    const gone: unknown[] = [];
    expect(
      decodeHint(
        bytes,
        9,
        0xffff_ffff,
        (key, ...rest) => seen.push([Buffer.from(key), ...rest]),
        (key, seq) => gone.push([Buffer.from(key), seq]),
      ),
    ).toBeUndefined();
    expect(seen).toEqual(entries);
    expect(gone).toEqual([
      [Buffer.alloc(0), 3],
      [long, Number.MAX_SAFE_INTEGER],
    ]);
  });

  it("a cursor's minSeq is the smallest seq listed, Infinity when the file lists nothing", () => {
    const minSeq = (fill: (w: HintWriter) => void): number | string | undefined => {
      const w = new HintWriter(4, 2);
      fill(w);
      const cursor = openHintCursor(w.finish(1000), 2, 1000, () => {});
      return typeof cursor === 'object' ? cursor.minSeq : cursor;
    };
    expect(minSeq(() => {})).toBe(Number.POSITIVE_INFINITY);
    expect(minSeq((w) => w.addTombstone(Buffer.from('t'), 70))).toBe(70);
    expect(
      minSeq((w) => {
        w.add(Buffer.from('a'), 90, 0, 1, undefined, 90, 1);
        w.add(Buffer.from('b'), 80, 10, 1, undefined, 3, 2);
        w.addTombstone(Buffer.from('t'), 85);
      }),
    ).toBe(80);
    const v1 = new HintWriterV1(4, 2);
    expect(openHintCursor(v1.finish(1000), 2, 1000, () => {})).toBeUndefined(); // read by decodeHintAt
  });

  it('an empty file round-trips', () => {
    const bytes = new HintWriter(4, 2).finish(20);
    expect(hintEntryCount(bytes)).toBe(0);
    expect(decode(bytes, true, 20).reason).toBe('written for another data file');
    expect(
      decodeHint(
        bytes,
        2,
        20,
        () => {},
        () => {},
      ),
    ).toBeUndefined();
  });

  it('takes about 15 bytes an entry for sorted 16-byte keys with revisions (version 1: 48)', () => {
    const v2 = new HintWriter(4, 1);
    const v1 = new HintWriterV1(4, 1);
    const n = 10_000;
    const base = 1_764_000_000_000_000; // a hybrid clock's microseconds
    for (let i = 0; i < n; i++) {
      const key = Buffer.alloc(16);
      key.write('cairnkey', 'latin1');
      key.writeUInt32BE(i * 7, 12);
      const seq = base + ((i * 7919) % n) * 37;
      for (const w of [v2, v1]) w.add(key, seq, (i * 104_729) % 60_000_000, 100, undefined, seq, 1);
    }
    const small = v2.finish(64 * 1024 * 1024);
    const large = v1.finish(64 * 1024 * 1024);
    expect(large.length / n).toBeGreaterThan(47);
    expect(small.length / n).toBeLessThan(16);
  });

  it('refuses an unknown version, and fields out of range under a valid checksum', () => {
    const bytes = sample((f, id) => new HintWriter(f, id));
    const future = Buffer.from(bytes);
    future.write('CAIRNHT3', 0, 'latin1');
    expect(decode(resealed(future), false).reason).toMatch(/bad magic/);
    // key_bytes one short and one long.
    for (const delta of [-1, 1]) {
      const bad = Buffer.from(bytes);
      bad.writeUInt32LE(bad.readUInt32LE(24) + delta, 24);
      expect(decode(resealed(bad), false).reason, `key bytes ${delta}`).toBeDefined();
    }
    // A seq base past 2^53.
    const seqBase = Buffer.from(bytes);
    seqBase.writeUInt32LE(2 ** 21, 32);
    expect(decode(resealed(seqBase), false).reason).toBe('seq base out of range');
    // A value past the end of the data file (the file says 4096: gamma's value ends at 307).
    expect(decode(bytes, false, 306).reason).toBe('data file size differs from the hint');
    const small = new HintWriter(3, 9);
    small.add(Buffer.from('k'), 1, 300, 7, undefined, 0, 0);
    expect(decodeHint(small.finish(306), 9, 306, () => {})).toBe('value past the end of the data file');
    // A shared prefix longer than the key before it: the second entry's head claims 6 shared bytes.
    const two = new HintWriter(3, 9);
    two.add(Buffer.from('abcde'), 1, 0, 0, undefined, 0, 0);
    two.add(Buffer.from('abcdef'), 1, 0, 0, undefined, 0, 0);
    const prefixed = two.finish(100);
    const second = 36 + 1 + 1 + 5 + 3; // header, first entry (head, suffix length, suffix, 3 varints)
    expect(prefixed[second]).toBe(5 << 3);
    const overlong = Buffer.from(prefixed);
    overlong[second] = 6 << 3;
    expect(decodeHint(resealed(overlong), 9, 100, () => {})).toBe(
      'shared prefix longer than the key before it',
    );
    expect(HINT_MAGIC.toString('latin1')).toBe('CAIRNHT2');
  });
});

const entryArb = fc.record({
  key: fc.uint8Array({ maxLength: 40 }),
  seq: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  valueOffset: fc.integer({ min: 0, max: 0xffff_0000 }),
  valueLen: fc.integer({ min: 0, max: 0xffff }),
  expiresAt: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
  revision: fc.option(
    fc.record({
      create: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      version: fc.integer({ min: 1, max: 0xffff_ffff }),
    }),
    { nil: undefined },
  ),
});
const tombstoneArb = fc.record({
  key: fc.uint8Array({ maxLength: 40 }),
  seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});

describe('version 2 against version 1 (property)', () => {
  it('decodes every file to what version 1 decodes of the same entries, in one pass and in two', () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 60 }),
        fc.array(tombstoneArb, { maxLength: 8 }),
        fc.boolean(),
        (raw, tombstones, sorted) => {
          // Writers add keys in key order; any order must decode the same, only larger.
          const entries = sorted ? [...raw].sort((a, b) => Buffer.compare(a.key, b.key)) : raw;
          const out: Buffer[] = [];
          for (const w of [new HintWriter(4, 9), new HintWriterV1(4, 9)]) {
            for (const e of entries)
              w.add(
                e.key,
                e.seq,
                e.valueOffset,
                e.valueLen,
                e.expiresAt,
                e.revision?.create ?? 0,
                e.revision?.version ?? 0,
              );
            for (const t of tombstones) w.addTombstone(t.key, t.seq);
            out.push(w.finish(0xffff_ffff));
          }
          const [v2, v1] = out as [Buffer, Buffer];
          const expected = decodeAll(v1);
          expect(expected.reason).toBeUndefined();
          expect(expected.entries).toEqual(
            entries.map((e) =>
              [
                Buffer.from(e.key).toString('hex'),
                e.seq,
                e.valueOffset,
                e.valueLen,
                e.expiresAt,
                e.revision?.create ?? 0,
                e.revision?.version ?? 0,
              ].join('/'),
            ),
          );
          expect(decodeAll(v2)).toEqual(expected);
          expect(decodeAll(v2, true)).toEqual(expected);
          // The merge's way: validated whole, then decoded entry by entry by a cursor.
          const cursorTombstones: string[] = [];
          const cursor = openHintCursor(v2, 9, 0xffff_ffff, (key, seq) =>
            cursorTombstones.push(`${Buffer.from(key).toString('hex')}/${seq}`),
          );
          if (typeof cursor !== 'object') throw new Error(`no cursor: ${cursor}`);
          expect(cursorTombstones).toEqual(expected.tombstones);
          const stepped: string[] = [];
          while (cursor.next())
            stepped.push(
              [
                Buffer.from(cursor.key()).toString('hex'),
                cursor.seq,
                cursor.valueOffset,
                cursor.valueLen,
                Number.isNaN(cursor.expiresAt) ? undefined : cursor.expiresAt,
                cursor.create,
                cursor.version,
              ].join('/'),
            );
          expect(stepped).toEqual(expected.entries);
          for (const e of entries)
            expect(Buffer.from(e.key).subarray(0, cursor.prefix)).toEqual(
              Buffer.from(entries[0]?.key ?? []).subarray(0, cursor.prefix),
            );
          expect(hintEntryCount(v2)).toBe(entries.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

function decodeAll(
  bytes: Buffer,
  onePass = false,
): { reason: string | undefined; entries: string[]; tombstones: string[] } {
  const entries: string[] = [];
  const tombstones: string[] = [];
  const reason = decodeHintAt(
    bytes,
    9,
    0xffff_ffff,
    (keys, keyAt, keyLen, ...rest) =>
      entries.push([keys.toString('hex', keyAt, keyAt + keyLen), ...rest].join('/')),
    (key, seq) => tombstones.push(`${Buffer.from(key).toString('hex')}/${seq}`),
    onePass,
  );
  return { reason, entries, tombstones };
}

describe('HintWriter in steps (compaction and sealed files on a shared event loop)', () => {
  const entry = fc.record({
    key: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    seq: fc.integer({ min: 0, max: 2 ** 40 }),
    valueOffset: fc.integer({ min: 0, max: 2 ** 31 }),
    valueLen: fc.integer({ min: 0, max: 2 ** 20 }),
    expiresAt: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
    create: fc.integer({ min: 0, max: 2 ** 40 }),
    version: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  });

  it('finishInSteps writes the bytes finish writes, however the steps fall', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { maxLength: 3000 }),
        fc.double({ min: 0, max: 1 }),
        async (entries, p) => {
          const whole = new HintWriter(3, 9);
          const stepped = new HintWriter(3, 9);
          for (const w of [whole, stepped]) {
            for (const e of entries)
              w.add(e.key, e.seq, e.valueOffset, e.valueLen, e.expiresAt, e.create, e.version);
            w.addTombstone(Buffer.from('gone'), 5);
          }
          // A slice whose clock says "spent" at random: as many steps as the entries allow.
          let pauses = 0;
          const slice = { start: () => slice, over: () => Math.random() < p } as unknown as TimeSlice;
          const bytes = await stepped.finishInSteps(1 << 30, slice, async () => {
            pauses++;
          });
          expect(bytes.equals(whole.finish(1 << 30))).toBe(true);
          if (p === 1) expect(pauses).toBe(Math.max(0, Math.ceil(entries.length / 1024) - 1));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('lends each entry back as the hint file says it (what relocation reads)', () => {
    const FILE_BYTES = 2 ** 32 - 1;
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 200 }), (entries) => {
        const w = new HintWriter(3, 9);
        for (const e of entries)
          w.add(e.key, e.seq, e.valueOffset, e.valueLen, e.expiresAt, e.create, e.version);
        expect(w.entries).toBe(entries.length);
        const decoded: { key: string; valueAt: number; size: number }[] = [];
        const reason = decodeHint(
          w.finish(FILE_BYTES),
          9,
          FILE_BYTES,
          (key, _seq, valueAt, valueLen, expiresAt, _create, version) =>
            decoded.push({
              key: Buffer.from(key).toString('hex'),
              valueAt,
              size: recordBytes(key.length, valueLen, expiresAt !== undefined, version !== 0),
            }),
          () => {},
        );
        expect(reason).toBeUndefined();
        expect(
          entries.map((_, i) => ({
            key: Buffer.from(w.entryKey(i)).toString('hex'),
            valueAt: w.entryValueOffset(i),
            size: w.entryRecordBytes(i),
          })),
        ).toEqual(decoded);
      }),
      { numRuns: 50 },
    );
  });
});
