// PointIndex: the cask key directory's hash index for point lookups (get, getStored, has),
// beside its ordered B+tree (key-dir.ts), which stays for order, scans and recovery.
//
// Why: a B+tree lookup at 1M keys touches 25-40 cache lines (a descent through internal nodes,
// then a binary search over a leaf's keys); here a lookup hashes the key and reads one or two
// adjacent slots. docs/key-dir.md has the design and the measurements.
//
// Layout: 2^PARTITION_BITS partitions, chosen by the top bits of the key's 32-bit hash (hash32),
// each an open-addressing table with linear probing in one Uint32Array of SLOT_WORDS words per
// slot: [hash, file id, value offset, meta], meta = USED | LEGACY? | value length. A key's home
// slot scales the hash's low 24 bits to the partition's size (any size, not only powers of two).
// A partition grows by GROWTH_NUM / GROWTH_DEN on its own when it passes LOAD_MAX_NUM /
// LOAD_MAX_DEN full, so the pause of a rehash is a partition's (1/256 of the keys), never the
// whole index's, and the load stays between 1/2 and 3/4 (doubling would let it fall to 3/8: 43
// bytes per key instead of 32).
//
// What a slot holds is the key directory's location of one key (file, value offset, value
// length, and whether its record predates revisions), and the key's full hash as a fingerprint:
// not the key. A lookup takes the slots whose hash matches as candidates and the caller confirms
// each against the record it reads (which holds the key): two keys with one hash are two slots.
// A mutation finds its key's slot by hash and (file id, value offset), which are unique among
// live records, so no key bytes are needed here at all.
//
// Deletion is by backward shift (Knuth's algorithm R), so no tombstones build up and every
// lookup ends at the first empty slot.
import { assert } from '../../stdx/assert.js';

/** PARTITION_BITS: the index is 2^PARTITION_BITS tables, each resized on its own. */
export const PARTITION_BITS = 8;
const PARTITIONS = 1 << PARTITION_BITS;
const PARTITION_SHIFT = 32 - PARTITION_BITS;
/** PARTITION_SLOTS_MIN: slots of an empty partition. */
const PARTITION_SLOTS_MIN = 8;
/** HOME_SCALE: the hash's low 24 bits choose a key's home slot, scaled to its partition's size. */
const HOME_SCALE = 2 ** 24;
const HOME_MASK = HOME_SCALE - 1;
/**
 * PARTITION_SLOTS_MAX: slots of one partition at most; a slot's position (see `first`) packs the
 * slot and the partition into one small integer: 2^23 * 2^8 = 2^31.
 */
const PARTITION_SLOTS_MAX = 1 << 23;
/** LOAD_MAX_NUM / LOAD_MAX_DEN: a partition doubles when its keys would pass this share of its slots. */
const LOAD_MAX_NUM = 3;
const LOAD_MAX_DEN = 4;
/**
 * LOAD_SIZED_NUM / LOAD_SIZED_DEN: the load a partition is sized for when the key count is known
 * up front (the build after an open): between the limits, so the first writes after an open do
 * not make every partition grow at once.
 */
const LOAD_SIZED_NUM = 5;
const LOAD_SIZED_DEN = 8;
/** GROWTH_NUM / GROWTH_DEN: a full partition's new size over its old. */
const GROWTH_NUM = 3;
const GROWTH_DEN = 2;

// Slot layout, in u32 words.
export const POINT_SLOT_WORDS = 5;
const W_HASH = 0;
const W_FILE = 1;
const W_OFFSET = 2;
const W_META = 3;
/**
 * W_LEAF: a hint of where the key directory holds the key (KeyDir's leaf id and slot), so that a
 * write to an existing key finds it without descending the tree (a cold descent and leaf search
 * is 4-5 µs: most of a SET's key directory cost). Only a hint: the key directory checks that
 * the leaf holds the key at this location, and searches or descends when it does not (an
 * insert shifted it, a split moved it).
 */
const W_LEAF = 4;
const META_USED = 0x8000_0000;
/** META_LEGACY: the record has no revision field (the key directory's version 0; format < 3). */
const META_LEGACY = 0x4000_0000;
/** META_LENGTH_MASK: the value length's bits (VALUE_BYTES_MAX plus a type byte fits easily). */
const META_LENGTH_MASK = 0x3fff_ffff;

/** NO_SLOT: `first` and `next` found no (further) candidate. */
export const NO_SLOT = -1;

/** INDEX_OBJECT_BYTES: allowance for the index's JS objects in memoryBytes (arrays, headers). */
const INDEX_OBJECT_BYTES = PARTITIONS * 96 + 256;

export class PointIndex {
  private readonly tables: Uint32Array[] = [];
  private readonly counts = new Uint32Array(PARTITIONS);
  private entries = 0;

  /** expectedKeys sizes the partitions up front, so that building it for a loaded store never rehashes. */
  constructor(expectedKeys = 0) {
    const perPartition = Math.ceil(expectedKeys / PARTITIONS);
    const slots = Math.min(
      PARTITION_SLOTS_MAX,
      Math.max(PARTITION_SLOTS_MIN, Math.ceil((perPartition * LOAD_SIZED_DEN) / LOAD_SIZED_NUM)),
    );
    for (let p = 0; p < PARTITIONS; p++) this.tables.push(new Uint32Array(slots * POINT_SLOT_WORDS));
  }

  get size(): number {
    return this.entries;
  }

  /** insert adds a key's location; the key must not be in the index (the key directory knows). */
  insert(
    hash: number,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    legacy: boolean,
    leaf: number,
  ): void {
    assert(valueLen <= META_LENGTH_MASK, 'value length beyond the point index slot');
    const part = hash >>> PARTITION_SHIFT;
    const count = (this.counts[part] as number) + 1;
    let table = this.tables[part] as Uint32Array;
    if (count * LOAD_MAX_DEN > (table.length / POINT_SLOT_WORDS) * LOAD_MAX_NUM) table = this.grow(part);
    const slots = table.length / POINT_SLOT_WORDS;
    let s = home(hash, slots);
    while ((table[s * POINT_SLOT_WORDS + W_META] as number) !== 0) s = s + 1 === slots ? 0 : s + 1;
    const o = s * POINT_SLOT_WORDS;
    table[o + W_HASH] = hash;
    table[o + W_FILE] = fileId;
    table[o + W_OFFSET] = valueOffset;
    table[o + W_META] = meta(valueLen, legacy);
    table[o + W_LEAF] = leaf;
    this.counts[part] = count;
    this.entries++;
  }

  /**
   * update moves the key whose slot holds (hash, fileId, valueOffset) to a new location. It
   * asserts that the slot exists: the key directory calls it only for keys the index holds.
   */
  update(
    hash: number,
    fileId: number,
    valueOffset: number,
    newFileId: number,
    newValueOffset: number,
    newValueLen: number,
    newLegacy: boolean,
    leaf: number,
  ): void {
    const pos = this.locate(hash, fileId, valueOffset);
    assert(pos !== NO_SLOT, 'point index: no slot for a key the key directory holds');
    this.updateAt(pos, newFileId, newValueOffset, newValueLen, newLegacy, leaf);
  }

  /** updateAt moves the key of the slot at `pos` (from first/next) to a new location. */
  updateAt(
    pos: number,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    legacy: boolean,
    leaf: number,
  ): void {
    assert(valueLen <= META_LENGTH_MASK, 'value length beyond the point index slot');
    const table = this.tables[pos & (PARTITIONS - 1)] as Uint32Array;
    const o = (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS;
    table[o + W_FILE] = fileId;
    table[o + W_OFFSET] = valueOffset;
    table[o + W_META] = meta(valueLen, legacy);
    table[o + W_LEAF] = leaf;
  }

  /** leafAt: the slot's leaf hint (see W_LEAF). */
  leafAt(pos: number): number {
    return (this.tables[pos & (PARTITIONS - 1)] as Uint32Array)[
      (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS + W_LEAF
    ] as number;
  }

  /** remove deletes the key whose slot holds (hash, fileId, valueOffset); asserted present. */
  remove(hash: number, fileId: number, valueOffset: number): void {
    const pos = this.locate(hash, fileId, valueOffset);
    assert(pos !== NO_SLOT, 'point index: no slot for a key the key directory holds');
    const part = pos & (PARTITIONS - 1);
    const table = this.tables[part] as Uint32Array;
    const slots = table.length / POINT_SLOT_WORDS;
    // Backward shift: walk the run after the hole; an entry whose home is not cyclically in
    // (hole, j] can move back into the hole, which then moves to j. The run ends at an empty slot.
    let hole = pos >>> PARTITION_BITS;
    let j = hole;
    for (;;) {
      j = j + 1 === slots ? 0 : j + 1;
      const oj = j * POINT_SLOT_WORDS;
      if ((table[oj + W_META] as number) === 0) break;
      const h = home(table[oj + W_HASH] as number, slots);
      const stays = hole <= j ? hole < h && h <= j : hole < h || h <= j;
      if (stays) continue;
      table.copyWithin(hole * POINT_SLOT_WORDS, oj, oj + POINT_SLOT_WORDS);
      hole = j;
    }
    table.fill(0, hole * POINT_SLOT_WORDS, (hole + 1) * POINT_SLOT_WORDS);
    this.counts[part] = (this.counts[part] as number) - 1;
    this.entries--;
  }

  /**
   * first returns the position of the first slot whose hash is `hash` (a candidate for the key),
   * or NO_SLOT. Positions are valid until the index next changes; read them with fileAt etc.
   */
  first(hash: number): number {
    const part = hash >>> PARTITION_SHIFT;
    const table = this.tables[part] as Uint32Array;
    return this.scan(table, part, hash, home(hash, table.length / POINT_SLOT_WORDS));
  }

  /**
   * prefetch touches the home slots of `hashes[0..count)` and changes nothing: a hint before a
   * batch of lookups, whose cache misses the CPU then overlaps (see ValueCache.prefetch). Returns
   * a sum of what it read, for the caller to keep.
   */
  prefetch(hashes: Uint32Array, count: number): number {
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const hash = hashes[i] as number;
      const table = this.tables[hash >>> PARTITION_SHIFT] as Uint32Array;
      sum += table[home(hash, table.length / POINT_SLOT_WORDS) * POINT_SLOT_WORDS + W_HASH] as number;
    }
    return sum;
  }

  /** next returns the position of the next candidate after `pos` for `hash`, or NO_SLOT. */
  next(hash: number, pos: number): number {
    const part = pos & (PARTITIONS - 1);
    const table = this.tables[part] as Uint32Array;
    const s = (pos >>> PARTITION_BITS) + 1;
    return this.scan(table, part, hash, s === table.length / POINT_SLOT_WORDS ? 0 : s);
  }

  fileAt(pos: number): number {
    return (this.tables[pos & (PARTITIONS - 1)] as Uint32Array)[
      (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS + W_FILE
    ] as number;
  }

  valueOffsetAt(pos: number): number {
    return (this.tables[pos & (PARTITIONS - 1)] as Uint32Array)[
      (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS + W_OFFSET
    ] as number;
  }

  valueLenAt(pos: number): number {
    const m = (this.tables[pos & (PARTITIONS - 1)] as Uint32Array)[
      (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS + W_META
    ] as number;
    return m & META_LENGTH_MASK;
  }

  /** legacyAt: the record at `pos` has no revision field (written before format 3). */
  legacyAt(pos: number): boolean {
    const m = (this.tables[pos & (PARTITIONS - 1)] as Uint32Array)[
      (pos >>> PARTITION_BITS) * POINT_SLOT_WORDS + W_META
    ] as number;
    return (m & META_LEGACY) !== 0;
  }

  /** holds counts the slots that hold exactly this location under this hash (verify: must be 1). */
  holds(hash: number, fileId: number, valueOffset: number, valueLen: number, legacy: boolean): number {
    let found = 0;
    for (let pos = this.first(hash); pos !== NO_SLOT; pos = this.next(hash, pos)) {
      if (
        this.fileAt(pos) === fileId &&
        this.valueOffsetAt(pos) === valueOffset &&
        this.valueLenAt(pos) === valueLen &&
        this.legacyAt(pos) === legacy
      )
        found++;
    }
    return found;
  }

  /** memoryBytes: the tables' bytes plus an allowance for the objects. */
  memoryBytes(): number {
    let bytes = INDEX_OBJECT_BYTES + this.counts.byteLength;
    for (const t of this.tables) bytes += t.byteLength;
    return bytes;
  }

  /**
   * verify returns what is wrong with the tables themselves (empty: sound): every used slot is
   * in its hash's partition and reachable from its home slot without crossing an empty one, and
   * the counts match. Whether the slots agree with the B+tree is KeyDir.verify's part.
   */
  verify(report: (problem: string) => boolean): void {
    let total = 0;
    for (let part = 0; part < PARTITIONS; part++) {
      const table = this.tables[part] as Uint32Array;
      const slots = table.length / POINT_SLOT_WORDS;
      let used = 0;
      for (let s = 0; s < slots; s++) {
        const o = s * POINT_SLOT_WORDS;
        if ((table[o + W_META] as number) === 0) continue;
        used++;
        const hash = table[o + W_HASH] as number;
        if (
          hash >>> PARTITION_SHIFT !== part &&
          !report(`point index: slot ${s} of partition ${part} is another's`)
        )
          return;
        for (let k = home(hash, slots); k !== s; k = k + 1 === slots ? 0 : k + 1) {
          if ((table[k * POINT_SLOT_WORDS + W_META] as number) === 0) {
            if (
              !report(
                `point index: slot ${s} of partition ${part} unreachable from its home ${home(hash, slots)}`,
              )
            )
              return;
            break;
          }
        }
      }
      if (
        used !== this.counts[part] &&
        !report(`point index: partition ${part} counts ${this.counts[part]}, holds ${used}`)
      )
        return;
      total += used;
    }
    if (total !== this.entries) report(`point index: size ${this.entries}, holds ${total}`);
  }

  /** locate finds the slot of (hash, fileId, valueOffset), or NO_SLOT. */
  private locate(hash: number, fileId: number, valueOffset: number): number {
    for (let pos = this.first(hash); pos !== NO_SLOT; pos = this.next(hash, pos)) {
      if (this.fileAt(pos) === fileId && this.valueOffsetAt(pos) === valueOffset) return pos;
    }
    return NO_SLOT;
  }

  /** scan probes from slot `s` of partition `part` to the first slot with `hash`, stopping at an empty one. */
  private scan(table: Uint32Array, part: number, hash: number, from: number): number {
    const slots = table.length / POINT_SLOT_WORDS;
    for (let s = from; ; s = s + 1 === slots ? 0 : s + 1) {
      const o = s * POINT_SLOT_WORDS;
      if ((table[o + W_META] as number) === 0) return NO_SLOT;
      if ((table[o + W_HASH] as number) === hash) return (s << PARTITION_BITS) | part;
    }
  }

  /** grow enlarges partition `part` by GROWTH_NUM / GROWTH_DEN and reinserts its slots. */
  private grow(part: number): Uint32Array {
    const old = this.tables[part] as Uint32Array;
    const slots = Math.ceil(((old.length / POINT_SLOT_WORDS) * GROWTH_NUM) / GROWTH_DEN);
    assert(slots <= PARTITION_SLOTS_MAX, 'point index partition full');
    const table = new Uint32Array(slots * POINT_SLOT_WORDS);
    for (let o = 0; o < old.length; o += POINT_SLOT_WORDS) {
      if ((old[o + W_META] as number) === 0) continue;
      let s = home(old[o + W_HASH] as number, slots);
      while ((table[s * POINT_SLOT_WORDS + W_META] as number) !== 0) s = s + 1 === slots ? 0 : s + 1;
      table.set(old.subarray(o, o + POINT_SLOT_WORDS), s * POINT_SLOT_WORDS);
    }
    this.tables[part] = table;
    return table;
  }
}

/**
 * home is the slot a hash starts probing at in a partition of `slots` slots: its low 24 bits
 * scaled to the size (monotonic, so probe runs stay runs; exact in doubles).
 */
function home(hash: number, slots: number): number {
  return Math.floor(((hash & HOME_MASK) * slots) / HOME_SCALE);
}

function meta(valueLen: number, legacy: boolean): number {
  return (META_USED | (legacy ? META_LEGACY : 0) | valueLen) >>> 0;
}
