import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes } from '../../stdx/bytes.js';
import { hash32 } from '../../stdx/hash32.js';
import { Prng } from '../../stdx/prng.js';
import { KeyDir, type Location } from './key-dir.js';
import { NO_SLOT, PointIndex } from './point-index.js';

const hex = (k: Uint8Array) => Buffer.from(k).toString('hex');

/** candidates lists what the index holds under `hash`, in probe order. */
function candidates(index: PointIndex, hash: number): [number, number, number, boolean, number][] {
  const out: [number, number, number, boolean, number][] = [];
  for (let pos = index.first(hash); pos !== NO_SLOT; pos = index.next(hash, pos))
    out.push([
      index.fileAt(pos),
      index.valueOffsetAt(pos),
      index.valueLenAt(pos),
      index.legacyAt(pos),
      index.leafAt(pos),
    ]);
  return out;
}

function problems(index: PointIndex): string[] {
  const found: string[] = [];
  index.verify((p) => {
    found.push(p);
    return true;
  });
  return found;
}

describe('PointIndex', () => {
  it('keeps entries that share a hash apart, and finds each by its location', () => {
    const index = new PointIndex();
    index.insert(7, 1, 100, 5, false, 40);
    index.insert(7, 1, 200, 6, true, 41);
    index.insert(7 + 8, 2, 300, 7, false, 42); // the same home slot (small hashes all start at slot 0)
    expect(candidates(index, 7)).toEqual([
      [1, 100, 5, false, 40],
      [1, 200, 6, true, 41],
    ]);
    index.update(7, 1, 200, 3, 30, 9, false, 43);
    expect(candidates(index, 7)).toEqual([
      [1, 100, 5, false, 40],
      [3, 30, 9, false, 43],
    ]);
    index.updateAt(index.first(7), 1, 110, 4, true, 44);
    expect(candidates(index, 7)).toEqual([
      [1, 110, 4, true, 44],
      [3, 30, 9, false, 43],
    ]);
    index.remove(7, 1, 110);
    expect(candidates(index, 7)).toEqual([[3, 30, 9, false, 43]]);
    expect(candidates(index, 15)).toEqual([[2, 300, 7, false, 42]]);
    expect(index.size).toBe(2);
    expect(problems(index)).toEqual([]);
    expect(() => index.remove(7, 1, 110)).toThrow(/no slot/);
  });

  // The model: the index against a map of locations, with hashes drawn from a few values that
  // share partitions and home slots (collisions, runs that wrap around a partition's end,
  // backward shifts over them, partitions that grow while holding runs).
  it('agrees with a model under random inserts, updates and removes with colliding hashes', () => {
    const hashes = [
      0, 1, 6, 7, 15, 0x0080_0000, 0x00ff_ffff, 0x0100_0007, 0xff00_0000, 0xff00_0007, 0xffff_ffff,
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 0, max: 5000 }),
        (seed, presize) => {
          const rng = new Prng(seed);
          const index = new PointIndex(rng.chance(0.5) ? presize : 0);
          // model: "file:offset" -> [hash, file, offset, length, legacy, leaf]
          const model = new Map<string, [number, number, number, number, boolean, number]>();
          let nextOffset = 1;
          for (let step = 0; step < 1500; step++) {
            const live = [...model.values()];
            const r = rng.float();
            if (live.length === 0 || r < 0.5) {
              const entry: [number, number, number, number, boolean, number] = [
                rng.pick(hashes),
                rng.range(1, 4),
                nextOffset++,
                rng.int(1 << 20),
                rng.chance(0.2),
                rng.int(1 << 20),
              ];
              index.insert(...entry);
              model.set(`${entry[1]}:${entry[2]}`, entry);
            } else if (r < 0.75) {
              const [hash, file, offset] = rng.pick(live);
              const moved: [number, number, number, number, boolean, number] = [
                hash,
                rng.range(1, 4),
                nextOffset++,
                rng.int(1 << 20),
                rng.chance(0.2),
                rng.int(1 << 20),
              ];
              index.update(hash, file, offset, moved[1], moved[2], moved[3], moved[4], moved[5]);
              model.delete(`${file}:${offset}`);
              model.set(`${moved[1]}:${moved[2]}`, moved);
            } else {
              const [hash, file, offset] = rng.pick(live);
              index.remove(hash, file, offset);
              model.delete(`${file}:${offset}`);
            }
          }
          expect(problems(index)).toEqual([]);
          expect(index.size).toBe(model.size);
          for (const hash of hashes) {
            const want = [...model.values()]
              .filter((e) => e[0] === hash)
              .map((e) => e.slice(1).join(','))
              .sort();
            expect(
              candidates(index, hash)
                .map((c) => c.join(','))
                .sort(),
            ).toEqual(want);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** indexLookup finds `key`'s location through the point index as the engine does, by location. */
function indexHolds(dir: KeyDir, key: Uint8Array, loc: Location): boolean {
  const index = dir.pointIndex;
  if (index === undefined) throw new Error('the point index is not complete');
  return candidates(index, hash32(key)).some(
    ([file, offset, len, legacy]) =>
      file === loc.fileId &&
      offset === loc.valueOffset &&
      len === loc.valueLen &&
      legacy === (loc.version === 0),
  );
}

describe('KeyDir with its point index', () => {
  // The required model test: random sequences of every mutation the key directory has (set,
  // setIfNewer including its in-order append path, relocate, remove), with the index started
  // on a loaded directory and built in chunks of random sizes between the mutations, then
  // checked against the B+tree: KeyDir.verify compares every entry with the index, and every
  // lookup through the index finds the tree's location; absent keys have no slot but other
  // keys' (hash collisions).
  it('stays exactly in step with the B+tree under random operations while it is built', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
        const rng = new Prng(seed);
        const dir = new KeyDir();
        const model = new Map<string, Location>();
        const keySpace = rng.pick([40, 400, 4000]);
        const keyOf = () => Buffer.from(`${'k'.repeat(rng.int(3))}${rng.int(keySpace)}`, 'latin1');
        let offset = 1;
        const location = (seq: number): Location => ({
          fileId: rng.range(1, 6),
          valueOffset: offset++,
          valueLen: rng.int(2000),
          seq,
          create: seq,
          version: rng.chance(0.1) ? 0 : rng.range(1, 100),
        });
        const startAt = rng.int(1500);
        let started = false;
        let complete = false;
        for (let step = 1; step <= 2500; step++) {
          if (step === startAt) {
            dir.startPointIndex();
            started = true;
          }
          if (started && !complete && rng.chance(0.05)) complete = dir.buildPointIndex(rng.range(1, 300));
          if (rng.chance(0.05)) {
            // A prefetch of a batch of keys, present or not, with hints fresh or stale: a hint
            // only, so the model checks below must hold as if it had not been made.
            const batch = Uint32Array.from({ length: 8 }, () => hash32(keyOf()));
            dir.prefetch(batch, batch.length, new Int32Array(batch.length));
          }
          const key = keyOf();
          const r = rng.float();
          if (r < 0.4) {
            const loc = location(step);
            expect(
              dir.set(key, loc.fileId, loc.valueOffset, loc.valueLen, loc.seq, loc.create, loc.version),
            ).toBe(model.has(hex(key)));
            model.set(hex(key), loc);
          } else if (r < 0.55) {
            // A seq at or below the stored one is refused, as recovery's older records are.
            const seq = rng.chance(0.3) ? rng.int(step) : step;
            const loc = location(seq);
            const prev = model.get(hex(key));
            const stored = dir.setIfNewer(
              key,
              loc.fileId,
              loc.valueOffset,
              loc.valueLen,
              seq,
              seq,
              loc.version,
            );
            expect(stored).toBe(prev === undefined || prev.seq < seq);
            if (stored) model.set(hex(key), loc);
          } else if (r < 0.6) {
            // Keys above every other: setIfNewer's append path (recovery's sorted runs).
            const big = Buffer.from(`~${String(step).padStart(6, '0')}`, 'latin1');
            const loc = location(step);
            expect(
              dir.setIfNewer(big, loc.fileId, loc.valueOffset, loc.valueLen, step, step, loc.version),
            ).toBe(true);
            model.set(hex(big), loc);
          } else if (r < 0.75) {
            const prev = model.get(hex(key));
            const from = prev ?? location(step);
            const to = { fileId: rng.range(1, 6), valueOffset: offset++ };
            // Relocating from a stale location is refused (a write raced the compaction).
            const stale = prev !== undefined && rng.chance(0.2);
            const moved = dir.relocate(
              key,
              from.fileId,
              stale ? from.valueOffset + 0.5 : from.valueOffset,
              to.fileId,
              to.valueOffset,
            );
            expect(moved).toBe(prev !== undefined && !stale);
            if (moved && prev !== undefined) model.set(hex(key), { ...prev, ...to });
          } else {
            expect(dir.remove(key)).toBe(model.delete(hex(key)));
          }
          if (step % 500 === 0) dir.checkInvariants();
        }
        if (!started) dir.startPointIndex();
        while (!dir.buildPointIndex(rng.range(1, 1000))) dir.checkInvariants();
        dir.checkInvariants();
        expect(dir.pointIndex?.size).toBe(model.size);
        const sorted = [...model.entries()].sort((a, b) =>
          compareBytes(Buffer.from(a[0], 'hex'), Buffer.from(b[0], 'hex')),
        );
        for (const [k, loc] of sorted) {
          const key = Buffer.from(k, 'hex');
          expect(dir.get(key)).toEqual(loc);
          expect(indexHolds(dir, key, loc), k).toBe(true);
        }
        // An absent key's candidates are other keys' slots under the same hash, never stale ones.
        const index = dir.pointIndex as PointIndex;
        const hashOf = new Map(
          sorted.map(([k]) => [hex(Buffer.from(k, 'hex')), hash32(Buffer.from(k, 'hex'))]),
        );
        for (let i = 0; i < 200; i++) {
          const key = keyOf();
          if (model.has(hex(key))) continue;
          const hash = hash32(key);
          const sharing = [...hashOf.values()].filter((h) => h === hash).length;
          expect(candidates(index, hash).length).toBe(sharing);
        }
      }),
      { numRuns: 30 },
    );
  });

  // Writes to existing keys go through the index's leaf hints (KeyDir.viaPoint), which splits,
  // merges and reused leaf ids leave stale: every answer must still be the tree's.
  it('finds keys through leaf hints that splits, merges and reused leaf ids made stale', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
        const rng = new Prng(seed);
        const dir = new KeyDir();
        dir.startPointIndex();
        expect(dir.buildPointIndex(1)).toBe(true);
        const model = new Map<string, Location>();
        const keySpace = rng.pick([300, 3000]);
        // Same-length keys in runs: leaves fill, split, empty out and merge.
        const keyOf = () => Buffer.from(`key${String(rng.int(keySpace)).padStart(6, '0')}`, 'latin1');
        let offset = 1;
        for (let step = 1; step <= 6000; step++) {
          const key = keyOf();
          const r = rng.float();
          const phase = Math.floor(step / 1500) % 2; // grow, then shrink, then grow...
          if (r < (phase === 0 ? 0.6 : 0.3)) {
            const loc: Location = {
              fileId: rng.range(1, 6),
              valueOffset: offset++,
              valueLen: rng.int(2000),
              seq: step,
              create: step,
              version: rng.range(1, 100),
            };
            expect(
              dir.set(key, loc.fileId, loc.valueOffset, loc.valueLen, loc.seq, loc.create, loc.version),
            ).toBe(model.has(hex(key)));
            model.set(hex(key), loc);
          } else if (r < 0.7) {
            const prev = model.get(hex(key));
            const to = { fileId: rng.range(1, 6), valueOffset: offset++ };
            const moved = dir.relocate(
              key,
              prev?.fileId ?? 1,
              prev?.valueOffset ?? 0,
              to.fileId,
              to.valueOffset,
            );
            expect(moved).toBe(prev !== undefined);
            if (prev !== undefined) model.set(hex(key), { ...prev, ...to });
          } else {
            expect(dir.remove(key)).toBe(model.delete(hex(key)));
          }
          const probe = keyOf();
          expect(dir.get(probe)).toEqual(model.get(hex(probe)));
          expect(dir.has(probe)).toBe(model.has(hex(probe)));
          if (step % 1000 === 0) dir.checkInvariants();
        }
        dir.checkInvariants();
        for (const [k, loc] of model) expect(dir.get(Buffer.from(k, 'hex'))).toEqual(loc);
      }),
      { numRuns: 10 },
    );
  });

  it('starts over when started again, and counts its tables in memoryBytes', () => {
    const dir = new KeyDir();
    for (let i = 0; i < 1000; i++) dir.set(Buffer.from(`key${i}`), 1, i + 1, 10, i + 1, i + 1, 1);
    const treeBytes = dir.memoryBytes();
    dir.startPointIndex();
    expect(dir.pointIndex).toBeUndefined();
    expect(dir.buildPointIndex(600)).toBe(false);
    expect(dir.pointIndex).toBeUndefined();
    dir.checkInvariants();
    dir.startPointIndex();
    expect(dir.buildPointIndex(10_000)).toBe(true);
    expect(dir.pointIndex?.size).toBe(1000);
    dir.checkInvariants();
    expect(dir.memoryBytes()).toBeGreaterThan(treeBytes + 1000 * 16);
  });

  it('keeps the key directory with its index within the memory budget', () => {
    // As key-dir.test.ts's budget test (100 bytes per key plus the key, random inserts), with
    // the point index built and maintained.
    const dir = new KeyDir();
    dir.startPointIndex();
    dir.buildPointIndex(1);
    const n = 200_000;
    const keyBytes = 16;
    const rng = new Prng(1);
    for (let i = 0; i < n; i++) dir.set(Buffer.from(rng.bytes(keyBytes)), 1, i + 1, 100, i, i, 1);
    expect(dir.pointIndex?.size).toBe(n);
    expect(dir.memoryBytes() / n).toBeLessThan(100 + keyBytes);
  });
});

describe('PointIndex.prefetch', () => {
  it('touches home slots and changes nothing', () => {
    const index = new PointIndex();
    const hashes = Uint32Array.from({ length: 200 }, (_, i) => hash32(Buffer.from(`k${i}`)));
    for (let i = 0; i < hashes.length; i += 2) index.insert(hashes[i]!, 1, i * 10, 5, false, 0);
    const before = Array.from(hashes, (h) => candidates(index, h));
    index.prefetch(hashes, hashes.length);
    expect(Array.from(hashes, (h) => candidates(index, h))).toEqual(before);
    expect(problems(index)).toEqual([]);
  });
});
