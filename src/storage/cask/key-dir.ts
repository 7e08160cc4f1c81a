// KeyDir is the cask engine's in-memory ordered key directory: for every live key, where its
// newest value lives (data file id, value offset, value length) and its sequence number.
//
// It is a B+tree whose leaves pack their entries into two typed arrays instead of one object per
// key: a byte arena holding the keys back to back, and a Uint32Array of fixed-size slots. A JS
// object per key would cost 100+ bytes before the key itself (an object, a Buffer and its
// backing store); a packed leaf costs SLOT_WORDS * 4 = 36 bytes plus the key, divided by the fill
// factor. docs/format.md records the measured budget.
//
// Keys compare as unsigned bytes. All operations are synchronous: callers never hold a position
// across an `await`; scans re-seek by key for each chunk (see `collect`).
//
// Point lookups can go through a hash index beside the tree (point-index.ts), which every
// mutation here keeps exactly in step with the tree (docs/key-dir.md). It is off in a new KeyDir
// (recovery loads the tree without it: an insert into a table of 1M keys is a cache miss each)
// and built afterwards by `startPointIndex` and `buildPointIndex`, in chunks, while the tree
// keeps serving; until it is complete `pointIndex` is undefined and lookups use the tree.
//
// Buffer ownership (docs/ARCHITECTURE.md, "Who owns a buffer"): every key passed in is borrowed.
// The directory copies what it keeps (key bytes into a leaf's arena, separators into arrays of
// their own) and hands out copies (`walk`'s keys), so no caller can change the tree's order.
import { assert } from '../../stdx/assert.js';
import { compareBytes } from '../../stdx/bytes.js';
import { hash32 } from '../../stdx/hash32.js';
import { u64FromHalves } from '../../stdx/u64.js';
import { NO_SLOT, PointIndex } from './point-index.js';

/** LEAF_SLOTS_MAX: entries per leaf. Larger leaves amortize overhead; inserts shift up to this many. */
export const LEAF_SLOTS_MAX = 128;
/** INTERNAL_CHILDREN_MAX: children per internal node. */
export const INTERNAL_CHILDREN_MAX = 128;
/** LEAF_MERGE_BELOW: a leaf with fewer entries than this is merged into its right sibling when they fit. */
const LEAF_MERGE_BELOW = LEAF_SLOTS_MAX / 4;
const LEAF_MERGE_FILL_MAX = (LEAF_SLOTS_MAX * 3) / 4;
const ARENA_BYTES_MIN = 64;
/** APPEND_COPY_MAX: an appended key up to this long is copied into the arena byte by byte. */
const APPEND_COPY_MAX = 32;

// Allowances for memoryBytes(), from V8's object layouts on 64-bit (pointer compression off):
// a leaf is 3 objects (Leaf, Uint32Array, Uint8Array) plus 2 ArrayBuffers (the slots' and the
// heads' slabs are shared, counted by the bytes a leaf takes of them); an internal node is an
// object and 2 arrays; a separator is a Buffer object with its own backing store.
const LEAF_OBJECTS_BYTES = 400;
const INTERNAL_OBJECTS_BYTES = 160;
const BUFFER_OBJECT_BYTES = 160;
const POINTER_BYTES = 8;

// Slot layout, in u32 words.
const SLOT_WORDS = 9;
const S_KEY_END = 0;
const S_FILE = 1;
const S_OFFSET = 2;
const S_LENGTH = 3;
const S_SEQ_LO = 4;
const S_SEQ_HI = 5;
// The revision (engine.ts): the seq is the key's mod timestamp; these are the rest of it.
const S_CREATE_LO = 6;
const S_CREATE_HI = 7;
const S_VERSION = 8;

/**
 * Location is where a key's newest value lives, the sequence number (commit timestamp) that
 * wrote it, and the rest of its revision: `version` 0 marks a record written before revisions
 * were stored (format < 3), whose record has no revision field.
 */
export interface Location {
  fileId: number;
  valueOffset: number;
  valueLen: number;
  seq: number;
  create: number;
  version: number;
}

/** U32: 2^32, the weight of a slot's high half. */
const U32 = 0x1_0000_0000;
/** LEAF_WORDS: the u32 words of one leaf's slots. */
const LEAF_WORDS = LEAF_SLOTS_MAX * SLOT_WORDS;
/** LEAF_HEADS_BYTES: the bytes of a leaf's heads (u32s) in their shared slab. */
const LEAF_HEADS_BYTES = LEAF_SLOTS_MAX * 4;
/**
 * SLAB_LEAVES: leaves whose slots are carved out of one ArrayBuffer. A typed array of a leaf's
 * 4.5 KiB is allocated outside V8's heap with its own zeroed backing store and external-memory
 * accounting; at start-up (thousands of leaves in a row) that was a tenth of an open and drove
 * the garbage collector. A leaf's slots are never replaced, so a slab lives exactly as long as
 * its last leaf: a free leaf pins at most SLAB_LEAVES - 1 others' worth (leaves are freed
 * only by merges of sparse neighbours).
 */
const SLAB_LEAVES = 64;
let slab = new Uint32Array(0);
let slabAt = 0;

/** leafSlots hands out a fresh, zeroed slot array for a leaf. */
function leafSlots(): Uint32Array {
  if (slabAt + LEAF_WORDS > slab.length) {
    slab = new Uint32Array(LEAF_WORDS * SLAB_LEAVES);
    slabAt = 0;
  }
  const slots = slab.subarray(slabAt, slabAt + LEAF_WORDS);
  slabAt += LEAF_WORDS;
  return slots;
}

/**
 * HEAD_SLAB_LEAVES: leaves whose heads (LEAF_SLOTS_MAX u32s each) lie in one Uint32Array. A
 * leaf keeps the slab and its offset in it, not a view of its own: a view is an object of ~80
 * bytes, most of a key's worth of the memory budget per leaf. (Two-byte heads would save 2.9
 * bytes per key at the fill random inserts leave, but tied often enough on keys like
 * redis-benchmark's to give back a third of the gain: docs/benchmarks.md.)
 */
const HEAD_SLAB_LEAVES = 256;
let headSlab = new Uint32Array(0);
let headSlabAt = 0;

/** NO_HEADS: a leaf's plen when its heads are not computed (its next search computes them). */
const NO_HEADS = -1;

/**
 * headOf: the four bytes of `bytes` from `start` (a key's bytes after its node's common prefix,
 * the key ending at `end`), big-endian, zero past the end. For two keys with the same prefix,
 * unequal heads order them as their bytes do (a key that ends sorts before any longer one, and
 * its zeros never exceed a real byte); equal heads say nothing, and the keys are compared.
 */
function headOf(bytes: Uint8Array, start: number, end: number): number {
  const b0 = start < end ? (bytes[start] as number) : 0;
  const b1 = start + 1 < end ? (bytes[start + 1] as number) : 0;
  const b2 = start + 2 < end ? (bytes[start + 2] as number) : 0;
  const b3 = start + 3 < end ? (bytes[start + 3] as number) : 0;
  return ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0;
}

class Leaf {
  /** id: the leaf's number in its KeyDir's registry (the point index's leaf hints name it). */
  id = NO_LEAF;
  n = 0;
  slots = leafSlots();
  /**
   * plen and heads (issue 14: a cold search compared keys in the arena, a cache miss for the
   * slot's bounds and another for the bytes at each of its seven steps): every key of the leaf
   * begins with the same `plen` bytes (the first key's, at the arena's start), and
   * heads[headsAt + i] is key i's next four bytes (headOf). A search compares heads, one
   * contiguous run, and keys only where heads are equal. plen need not be the longest common
   * prefix; NO_HEADS: not computed (a leaf filled by an open's sorted load, or a change that
   * broke the prefix).
   */
  plen = NO_HEADS;
  readonly heads: Uint32Array;
  readonly headsAt: number;
  arena: Uint8Array;
  next: Leaf | null = null;
  prev: Leaf | null = null;

  constructor(arenaBytes = ARENA_BYTES_MIN) {
    this.arena = new Uint8Array(arenaBytes);
    if (headSlabAt + LEAF_SLOTS_MAX > headSlab.length) {
      headSlab = new Uint32Array(LEAF_SLOTS_MAX * HEAD_SLAB_LEAVES);
      headSlabAt = 0;
    }
    this.heads = headSlab;
    this.headsAt = headSlabAt;
    headSlabAt += LEAF_SLOTS_MAX;
  }

  keyStart(i: number): number {
    return i === 0 ? 0 : (this.slots[(i - 1) * SLOT_WORDS + S_KEY_END] as number);
  }

  keyEnd(i: number): number {
    return this.slots[i * SLOT_WORDS + S_KEY_END] as number;
  }

  used(): number {
    return this.n === 0 ? 0 : this.keyEnd(this.n - 1);
  }

  /** key returns a copy of the key at slot i, as a Buffer for the convenience of callers. */
  key(i: number): Buffer {
    const start = this.keyStart(i);
    return Buffer.copyBytesFrom(this.arena, start, this.keyEnd(i) - start);
  }

  /** compareAt compares the key at slot i with `key`. */
  compareAt(i: number, key: Uint8Array): number {
    const arena = this.arena;
    const start = this.keyStart(i);
    const len = this.keyEnd(i) - start;
    const n = Math.min(len, key.length);
    for (let j = 0; j < n; j++) {
      const d = (arena[start + j] as number) - (key[j] as number);
      if (d !== 0) return d;
    }
    return len - key.length;
  }

  /** search returns the index of `key` if present, else -(insertion point) - 1. */
  search(key: Uint8Array): number {
    const n = this.n;
    if (n === 0) return -1;
    if (this.plen === NO_HEADS) this.computeHeads();
    const plen = this.plen;
    if (plen > 0) {
      // Outside the shared prefix, the key sorts before or after every key of the leaf.
      const arena = this.arena;
      const m = Math.min(plen, key.length);
      for (let j = 0; j < m; j++) {
        const d = (arena[j] as number) - (key[j] as number);
        if (d !== 0) return d > 0 ? -1 : -n - 1;
      }
      if (key.length < plen) return -1;
    }
    const h = headOf(key, plen, key.length);
    const heads = this.heads;
    const at = this.headsAt;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const hm = heads[at + mid] as number;
      const c = hm < h ? -1 : hm > h ? 1 : this.compareAt(mid, key);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** computeHeads sets plen to the keys' common prefix (the first's and last's) and every head. */
  private computeHeads(): void {
    const n = this.n;
    const arena = this.arena;
    let plen = 0;
    if (n > 0) {
      const last = this.keyStart(n - 1);
      const m = Math.min(this.keyEnd(0), this.keyEnd(n - 1) - last);
      while (plen < m && arena[plen] === arena[last + plen]) plen++;
    }
    const heads = this.heads;
    const at = this.headsAt;
    for (let i = 0; i < n; i++) heads[at + i] = headOf(arena, this.keyStart(i) + plen, this.keyEnd(i));
    this.plen = plen;
  }

  /** sharesPrefix: `key` begins with the leaf's prefix (heads computed, at least one key). */
  private sharesPrefix(key: Uint8Array): boolean {
    const plen = this.plen;
    if (key.length < plen) return false;
    const arena = this.arena;
    for (let j = 0; j < plen; j++) if (arena[j] !== key[j]) return false;
    return true;
  }

  location(i: number): Location {
    const s = i * SLOT_WORDS;
    const slots = this.slots;
    return {
      fileId: slots[s + S_FILE] as number,
      valueOffset: slots[s + S_OFFSET] as number,
      valueLen: slots[s + S_LENGTH] as number,
      seq: u64FromHalves(slots[s + S_SEQ_HI] as number, slots[s + S_SEQ_LO] as number),
      create: u64FromHalves(slots[s + S_CREATE_HI] as number, slots[s + S_CREATE_LO] as number),
      version: slots[s + S_VERSION] as number,
    };
  }

  setLocation(
    i: number,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    seq: number,
    create: number,
    version: number,
  ): void {
    const s = i * SLOT_WORDS;
    const slots = this.slots;
    slots[s + S_FILE] = fileId;
    slots[s + S_OFFSET] = valueOffset;
    slots[s + S_LENGTH] = valueLen;
    // u64Lo/u64Hi's `%` and Math.floor on doubles were a tenth of an open's key directory
    // load; for a safe non-negative integer `>>> 0` is the same low half (ToUint32 is modulo
    // 2^32) and the rest divides exactly.
    const seqLo = seq >>> 0;
    const createLo = create >>> 0;
    slots[s + S_SEQ_LO] = seqLo;
    slots[s + S_SEQ_HI] = (seq - seqLo) / U32;
    slots[s + S_CREATE_LO] = createLo;
    slots[s + S_CREATE_HI] = (create - createLo) / U32;
    slots[s + S_VERSION] = version;
  }

  /** insertAt makes room at slot i and stores `key` there (location fields are left to the caller). */
  insertAt(i: number, key: Uint8Array): void {
    assert(this.n < LEAF_SLOTS_MAX, 'leaf overflow');
    // The heads first, while the arena still starts with the prefix.
    if (this.plen !== NO_HEADS) {
      if (this.n > 0 && this.sharesPrefix(key)) {
        const at = this.headsAt;
        this.heads.copyWithin(at + i + 1, at + i, at + this.n);
        this.heads[at + i] = headOf(key, this.plen, key.length);
      } else this.plen = NO_HEADS;
    }
    const used = this.used();
    const start = this.keyStart(i);
    if (used + key.length > this.arena.length) {
      const grown = new Uint8Array(Math.max(ARENA_BYTES_MIN, (used + key.length) * 1.5) | 0);
      grown.set(this.arena.subarray(0, used));
      this.arena = grown;
    }
    if (i === this.n) {
      // An append (every key of an open's sorted load): nothing to shift, and a short key is
      // copied byte by byte rather than through a builtin call.
      const arena = this.arena;
      if (key.length <= APPEND_COPY_MAX)
        for (let k = 0; k < key.length; k++) arena[start + k] = key[k] as number;
      else arena.set(key, start);
      this.slots[i * SLOT_WORDS + S_KEY_END] = start + key.length;
      this.n++;
      return;
    }
    this.arena.copyWithin(start + key.length, start, used);
    this.arena.set(key, start);
    const slots = this.slots;
    slots.copyWithin((i + 1) * SLOT_WORDS, i * SLOT_WORDS, this.n * SLOT_WORDS);
    this.n++;
    slots[i * SLOT_WORDS + S_KEY_END] = start + key.length;
    for (let j = i + 1; j < this.n; j++) {
      slots[j * SLOT_WORDS + S_KEY_END] = (slots[j * SLOT_WORDS + S_KEY_END] as number) + key.length;
    }
  }

  removeAt(i: number): void {
    // The prefix still holds for the keys that stay (perhaps no longer the longest).
    if (this.plen !== NO_HEADS) {
      const at = this.headsAt;
      this.heads.copyWithin(at + i, at + i + 1, at + this.n);
    }
    const used = this.used();
    const start = this.keyStart(i);
    const len = this.keyEnd(i) - start;
    this.arena.copyWithin(start, start + len, used);
    const slots = this.slots;
    slots.copyWithin(i * SLOT_WORDS, (i + 1) * SLOT_WORDS, this.n * SLOT_WORDS);
    this.n--;
    for (let j = i; j < this.n; j++)
      slots[j * SLOT_WORDS + S_KEY_END] = (slots[j * SLOT_WORDS + S_KEY_END] as number) - len;
    if (this.arena.length > ARENA_BYTES_MIN && used - len < this.arena.length / 4) {
      this.arena = this.arena.slice(0, Math.max(ARENA_BYTES_MIN, (used - len) * 2));
    }
  }

  /** moveTail moves slots [from, n) to the front of the empty leaf `to`. */
  moveTail(from: number, to: Leaf): void {
    assert(to.n === 0, 'moveTail into a non-empty leaf');
    const base = this.keyStart(from);
    const used = this.used();
    to.arena = this.arena.slice(base, Math.max(base + ARENA_BYTES_MIN, used + ((used - base) >> 1)));
    const count = this.n - from;
    to.slots.set(this.slots.subarray(from * SLOT_WORDS, this.n * SLOT_WORDS));
    for (let j = 0; j < count; j++)
      to.slots[j * SLOT_WORDS + S_KEY_END] = (to.slots[j * SLOT_WORDS + S_KEY_END] as number) - base;
    to.n = count;
    // Both halves keep the prefix (perhaps no longer the longest) and their heads.
    if (this.plen !== NO_HEADS)
      for (let j = 0; j < count; j++)
        to.heads[to.headsAt + j] = this.heads[this.headsAt + from + j] as number;
    to.plen = this.plen;
    this.n = from;
    this.arena = this.arena.slice(0, Math.max(ARENA_BYTES_MIN, base + (base >> 2)));
  }

  /** appendAll moves every entry of `other` (all greater than ours) to our end. */
  appendAll(other: Leaf): void {
    const used = this.used();
    const extra = other.used();
    if (used + extra > this.arena.length) {
      const grown = new Uint8Array(used + extra + ((used + extra) >> 2));
      grown.set(this.arena.subarray(0, used));
      this.arena = grown;
    }
    this.arena.set(other.arena.subarray(0, extra), used);
    this.slots.set(other.slots.subarray(0, other.n * SLOT_WORDS), this.n * SLOT_WORDS);
    for (let j = this.n; j < this.n + other.n; j++)
      this.slots[j * SLOT_WORDS + S_KEY_END] = (this.slots[j * SLOT_WORDS + S_KEY_END] as number) + used;
    this.n += other.n;
    other.n = 0;
    // The two prefixes may differ: the next search computes the merged leaf's heads.
    this.plen = NO_HEADS;
    other.plen = NO_HEADS;
  }

  /** headsProblem: what is wrong with the leaf's prefix and heads, if they are computed. */
  headsProblem(): string | undefined {
    const plen = this.plen;
    if (plen === NO_HEADS) return undefined;
    for (let i = 0; i < this.n; i++) {
      const start = this.keyStart(i);
      const end = this.keyEnd(i);
      if (end - start < plen) return `key ${i} is shorter than the leaf's prefix (${plen})`;
      for (let j = 0; j < plen; j++)
        if (this.arena[start + j] !== this.arena[j]) return `key ${i} does not share the leaf's prefix`;
      if (this.heads[this.headsAt + i] !== headOf(this.arena, start + plen, end)) return `head ${i} is stale`;
    }
    return undefined;
  }
}

class Internal {
  /**
   * keys[i] separates children[i] (keys < keys[i]) from children[i + 1] (keys >= keys[i]). Who
   * changes `keys` calls `changed`.
   */
  keys: Uint8Array[] = [];
  children: Node[] = [];
  /**
   * plen and heads: as a leaf's (Leaf.plen), over the separators: a descent compares the heads
   * in one array instead of chasing each separator's buffer. NO_HEADS after a change (a leaf
   * split or merge below: rare); the next descent computes them.
   */
  private plen = NO_HEADS;
  private heads: Uint32Array | undefined;

  get headsBytes(): number {
    return this.heads?.byteLength ?? 0;
  }

  /** changed: `keys` changed; the heads are computed again when next needed. */
  changed(): void {
    this.plen = NO_HEADS;
  }

  /** childIndex returns the child whose range holds `key`: the number of separators <= key. */
  childIndex(key: Uint8Array): number {
    const keys = this.keys;
    const n = keys.length;
    if (n === 0) return 0;
    if (this.plen === NO_HEADS) this.computeHeads();
    const plen = this.plen;
    if (plen > 0) {
      // The leaf's check, spelled out again: one shared helper (arena and separator bytes, key
      // Buffers through one function) made redis-style descents 30-50% slower in
      // bench/key-dir.ts, its element loads no longer specialized per call site.
      const first = keys[0] as Uint8Array;
      const m = Math.min(plen, key.length);
      for (let j = 0; j < m; j++) {
        const d = (first[j] as number) - (key[j] as number);
        if (d !== 0) return d > 0 ? 0 : n;
      }
      if (key.length < plen) return 0;
    }
    const h = headOf(key, plen, key.length);
    const heads = this.heads as Uint32Array;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const hm = heads[mid] as number;
      if (hm < h || (hm === h && compare(keys[mid] as Uint8Array, key) <= 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private computeHeads(): void {
    const keys = this.keys;
    const n = keys.length;
    const first = keys[0] as Uint8Array;
    const last = keys[n - 1] as Uint8Array;
    const m = Math.min(first.length, last.length);
    let plen = 0;
    while (plen < m && first[plen] === last[plen]) plen++;
    if (this.heads === undefined || this.heads.length < n)
      this.heads = new Uint32Array(Math.max(n, INTERNAL_CHILDREN_MAX));
    for (let i = 0; i < n; i++) {
      const sep = keys[i] as Uint8Array;
      this.heads[i] = headOf(sep, plen, sep.length);
    }
    this.plen = plen;
  }

  /** headsProblem: what is wrong with the separators' prefix and heads, if they are computed. */
  headsProblem(): string | undefined {
    const plen = this.plen;
    if (plen === NO_HEADS) return undefined;
    const first = this.keys[0] as Uint8Array;
    for (let i = 0; i < this.keys.length; i++) {
      const sep = this.keys[i] as Uint8Array;
      if (sep.length < plen) return `separator ${i} is shorter than the node's prefix (${plen})`;
      for (let j = 0; j < plen; j++)
        if (sep[j] !== first[j]) return `separator ${i} does not share the prefix`;
      if (this.heads?.[i] !== headOf(sep, plen, sep.length)) return `head ${i} is stale`;
    }
    return undefined;
  }
}

type Node = Leaf | Internal;

/** NO_LEAF: the id of a leaf not (or no longer) in a registry. */
const NO_LEAF = 0xffff_ffff;
/**
 * LEAF_IDS_MAX: leaf ids fit a point index hint (a u32) beside a slot: 2^25 leaves, billions of
 * keys.
 */
const LEAF_IDS_MAX = 2 ** 32 / LEAF_SLOTS_MAX;

/** hintOf: the point index's hint for slot i of `leaf`: the leaf's id and the slot. */
function hintOf(leaf: Leaf, i: number): number {
  return leaf.id * LEAF_SLOTS_MAX + i;
}

const compare = compareBytes;

/** VERIFY_PROBLEMS_MAX: verify() stops after reporting this many problems. */
const VERIFY_PROBLEMS_MAX = 20;

/** hexOf names a key in a problem report: its first bytes, in hex. */
function hexOf(key: Uint8Array): string {
  const hex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
  return hex.length > 64 ? `${hex.slice(0, 64)}...` : hex;
}

/** Visitor receives each entry of a walk; returning false stops it. The key is a copy. */
export type Visitor = (key: Uint8Array, location: Location) => boolean;

/** WalkResume: where a walkFiles resumes: at `key`, or after it when `exclusive`. */
export interface WalkResume {
  readonly key: Uint8Array;
  readonly exclusive: boolean;
}

/** WALK_CLOCK_EVERY: entries walkFiles looks at between two questions to its time slice. */
const WALK_CLOCK_EVERY = 64;

export class KeyDir {
  /**
   * leaves: the live leaves by id (ids of unlinked leaves are reused), for the point index's
   * leaf hints. A hint may name a leaf that no longer holds the key (a split moved it, the id
   * was reused): every use checks that the leaf holds the key at the indexed location. An
   * unlinked leaf is empty, so it never answers for a key.
   */
  private readonly leaves: (Leaf | undefined)[] = [];
  private readonly freeLeafIds: number[] = [];
  private root: Node = this.newLeaf();
  private count = 0;
  /** foundLeaf, foundSlot: where the last successful viaPoint found its key. */
  private foundLeaf: Leaf | undefined;
  private foundSlot = 0;
  /** The previous location of the key touched by the last `set` or `remove` that found one. */
  readonly previous: Location = { fileId: 0, valueOffset: 0, valueLen: 0, seq: 0, create: 0, version: 0 };
  // Reused descent path, so that lookups allocate nothing.
  private readonly pathNodes: Internal[] = [];
  private readonly pathIndexes: number[] = [];
  /** point: the point-lookup index, complete or being built; undefined when not started. */
  private point: PointIndex | undefined;
  /** pointComplete: the index holds every key (else keys up to pointBuiltTo). */
  private pointComplete = false;
  /**
   * pointBuiltTo: while the index is built, the last key it holds (a copy; keys at or below it
   * are in the index, and mutations of them update it); undefined: none yet.
   */
  private pointBuiltTo: Uint8Array | undefined;

  get size(): number {
    return this.count;
  }

  /** pointIndex: the point-lookup index once it holds every key; undefined before. */
  get pointIndex(): PointIndex | undefined {
    return this.pointComplete ? this.point : undefined;
  }

  /**
   * prefetch touches what lookups of the keys whose hashes are `hashes[0..count)` will read, and
   * changes nothing: their point index slots, then (given `leafSlots`, scratch of at least
   * `count`: for writes, which update the tree) the leaf slots those hint at, then the keys' bytes
   * in the leaves. Each pass's loads do not depend on one another, so the CPU overlaps their
   * cache misses (ValueCache.prefetch). Nothing before the point index is complete. Returns a
   * sum of what it read (the caller keeps it).
   */
  prefetch(hashes: Uint32Array, count: number, leafSlots: Int32Array | undefined): number {
    const point = this.pointIndex;
    if (point === undefined) return 0;
    let sum = point.prefetch(hashes, count);
    if (leafSlots === undefined) return sum;
    const leaves = this.leaves;
    for (let i = 0; i < count; i++) {
      const pos = point.first(hashes[i] as number);
      leafSlots[i] = pos === NO_SLOT ? -1 : point.leafAt(pos);
      const hint = leafSlots[i] as number;
      const leaf = hint < 0 ? undefined : leaves[Math.floor(hint / LEAF_SLOTS_MAX)];
      if (leaf !== undefined) sum += leaf.slots[(hint % LEAF_SLOTS_MAX) * SLOT_WORDS + S_KEY_END] as number;
    }
    for (let i = 0; i < count; i++) {
      const hint = leafSlots[i] as number;
      const leaf = hint < 0 ? undefined : leaves[Math.floor(hint / LEAF_SLOTS_MAX)];
      const slot = hint % LEAF_SLOTS_MAX;
      if (leaf !== undefined && slot < leaf.n) sum += leaf.arena[leaf.keyStart(slot)] as number;
    }
    return sum;
  }

  /**
   * startPointIndex begins a point-lookup index of the keys present (none are in it yet: the
   * tree keeps answering until buildPointIndex has completed it). Calling it again starts over.
   */
  startPointIndex(): void {
    this.point = new PointIndex(this.count);
    this.pointComplete = false;
    this.pointBuiltTo = undefined;
  }

  /**
   * startAt: the leaf and slot of the first key at `from` (after it when `exclusive`), or the
   * first key of all when `from` is undefined.
   */
  private startAt(from: Uint8Array | undefined, exclusive: boolean): [Leaf | null, number] {
    if (from === undefined) return [this.firstLeaf(), 0];
    const leaf = this.findLeaf(from, false);
    const found = leaf.search(from);
    return [leaf, found >= 0 ? (exclusive ? found + 1 : found) : -found - 1];
  }

  /**
   * buildPointIndex adds up to `maxEntries` more keys, in key order, to the index that
   * startPointIndex began (or begins it, at the first call without one), and returns true once
   * it holds every key. Between calls the
   * directory may change as it likes: a change to a key at or below pointBuiltTo goes to the
   * index at once, one above it is picked up by a later call.
   */
  buildPointIndex(maxEntries: number): boolean {
    if (this.point === undefined) this.startPointIndex();
    const point = this.point as PointIndex;
    if (this.pointComplete) return true;
    const from = this.pointBuiltTo;
    let [leaf, i] = this.startAt(from, true);
    let added = 0;
    while (leaf !== null) {
      const slots = leaf.slots;
      for (; i < leaf.n; i++) {
        if (added === maxEntries) {
          // Resume after the last key added (leaf slot i - 1, or the previous leaf's last).
          this.pointBuiltTo = i > 0 ? leaf.key(i - 1) : (leaf.prev as Leaf).key((leaf.prev as Leaf).n - 1);
          return false;
        }
        const s = i * SLOT_WORDS;
        point.insert(
          hash32(leaf.arena, leaf.keyStart(i), leaf.keyEnd(i)),
          slots[s + S_FILE] as number,
          slots[s + S_OFFSET] as number,
          slots[s + S_LENGTH] as number,
          slots[s + S_VERSION] === 0,
          hintOf(leaf, i),
        );
        added++;
      }
      leaf = leaf.next;
      i = 0;
    }
    this.pointComplete = true;
    this.pointBuiltTo = undefined;
    return true;
  }

  /** newLeaf makes a leaf and gives it an id. */
  private newLeaf(arenaBytes = ARENA_BYTES_MIN): Leaf {
    const leaf = new Leaf(arenaBytes);
    const id = this.freeLeafIds.pop() ?? this.leaves.length;
    assert(id < LEAF_IDS_MAX, 'key directory leaf ids exhausted');
    leaf.id = id;
    this.leaves[id] = leaf;
    return leaf;
  }

  /** freeLeaf takes an unlinked (empty) leaf out of the registry. */
  private freeLeaf(leaf: Leaf): void {
    assert(
      leaf.n === 0 && this.leaves[leaf.id] === leaf,
      'freeing a leaf that holds keys or is not registered',
    );
    this.leaves[leaf.id] = undefined;
    this.freeLeafIds.push(leaf.id);
    leaf.id = NO_LEAF;
  }

  /**
   * viaPoint finds `key` through the point index's leaf hints, without descending the tree: the
   * slot position of its point index entry, with its leaf and slot in foundLeaf and foundSlot;
   * NO_SLOT when no hint leads to it (not indexed, or a stale hint: descend instead).
   */
  private viaPoint(key: Uint8Array, hash: number): number {
    const point = this.point as PointIndex;
    for (let pos = point.first(hash); pos !== NO_SLOT; pos = point.next(hash, pos)) {
      const hint = point.leafAt(pos);
      const leaf = this.leaves[Math.floor(hint / LEAF_SLOTS_MAX)];
      if (leaf === undefined) continue;
      // The slot first (it moves only when a key is inserted or removed before it in its leaf),
      // then a search of the leaf.
      const slot = hint % LEAF_SLOTS_MAX;
      const i = slot < leaf.n && leaf.compareAt(slot, key) === 0 ? slot : leaf.search(key);
      if (i < 0) continue;
      // The entry must be this key's: another key with the same hash may live in the same leaf.
      const s = i * SLOT_WORDS;
      if (
        leaf.slots[s + S_FILE] !== point.fileAt(pos) ||
        leaf.slots[s + S_OFFSET] !== point.valueOffsetAt(pos)
      )
        continue;
      this.foundLeaf = leaf;
      this.foundSlot = i;
      return pos;
    }
    return NO_SLOT;
  }

  /** pointHolds: `key`'s entry is in the point index (so a change to it must go there too). */
  private pointHolds(key: Uint8Array): boolean {
    if (this.point === undefined) return false;
    if (this.pointComplete) return true;
    return this.pointBuiltTo !== undefined && compare(key, this.pointBuiltTo) <= 0;
  }

  /** get returns the location of `key`, or undefined. */
  get(key: Uint8Array): Location | undefined {
    if (this.pointComplete) {
      const hash = hash32(key);
      if (this.viaPoint(key, hash) !== NO_SLOT) return (this.foundLeaf as Leaf).location(this.foundSlot);
      // The complete index holds every key: no entry with its hash, no key.
      if ((this.point as PointIndex).first(hash) === NO_SLOT) return undefined;
    }
    const leaf = this.findLeaf(key, false);
    const i = leaf.search(key);
    return i >= 0 ? leaf.location(i) : undefined;
  }

  has(key: Uint8Array): boolean {
    if (this.pointComplete) {
      const hash = hash32(key);
      if (this.viaPoint(key, hash) !== NO_SLOT) return true;
      if ((this.point as PointIndex).first(hash) === NO_SLOT) return false;
    }
    return this.findLeaf(key, false).search(key) >= 0;
  }

  /**
   * set stores `key`'s location. It returns true when the key existed, with its old location
   * in `previous`.
   */
  set(
    key: Uint8Array,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    seq: number,
    create: number,
    version: number,
  ): boolean {
    if (this.pointComplete) {
      // An existing key, found through its leaf hint: no descent.
      const pos = this.viaPoint(key, hash32(key));
      if (pos !== NO_SLOT) {
        const found = this.foundLeaf as Leaf;
        this.copyPrevious(found, this.foundSlot);
        found.setLocation(this.foundSlot, fileId, valueOffset, valueLen, seq, create, version);
        (this.point as PointIndex).updateAt(
          pos,
          fileId,
          valueOffset,
          valueLen,
          version === 0,
          hintOf(found, this.foundSlot),
        );
        return true;
      }
    }
    const leaf = this.findLeaf(key, true);
    const i = leaf.search(key);
    if (i >= 0) {
      this.copyPrevious(leaf, i);
      leaf.setLocation(i, fileId, valueOffset, valueLen, seq, create, version);
      if (this.pointHolds(key)) {
        const p = this.previous;
        (this.point as PointIndex).update(
          hash32(key),
          p.fileId,
          p.valueOffset,
          fileId,
          valueOffset,
          valueLen,
          version === 0,
          hintOf(leaf, i),
        );
      }
      return true;
    }
    this.insert(leaf, -i - 1, key, fileId, valueOffset, valueLen, seq, create, version);
    return false;
  }

  /** insert adds a new key at slot i of `leaf` (found by the last recorded findLeaf). */
  private insert(
    leaf: Leaf,
    i: number,
    key: Uint8Array,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    seq: number,
    create: number,
    version: number,
  ): void {
    let target = leaf;
    let index = i;
    if (leaf.n === LEAF_SLOTS_MAX) [target, index] = this.split(leaf, i, key);
    target.insertAt(index, key);
    target.setLocation(index, fileId, valueOffset, valueLen, seq, create, version);
    this.count++;
    if (this.pointHolds(key))
      (this.point as PointIndex).insert(
        hash32(key),
        fileId,
        valueOffset,
        valueLen,
        version === 0,
        hintOf(target, index),
      );
  }

  /**
   * setIfNewer stores `key`'s location unless the key already has one with a sequence number at
   * or above `seq` (recovery applies records from many files in any order this way). It returns
   * true when it stored the location; `previous` then holds the replaced one if `replaced`.
   */
  setIfNewer(
    key: Uint8Array,
    fileId: number,
    valueOffset: number,
    valueLen: number,
    seq: number,
    create: number,
    version: number,
  ): boolean {
    // Fast path for loads in key order (hint files are sorted, compaction outputs are disjoint
    // key ranges): a key above the last key appends to the last leaf without a search.
    // The path is recorded only when the append must split the leaf (what split needs).
    let tail = this.lastLeaf();
    const last = tail.n === 0 ? (this.count === 0 ? -1 : 1) : tail.compareAt(tail.n - 1, key);
    if (last < 0) {
      if (tail.n === LEAF_SLOTS_MAX) tail = this.lastLeafRecorded();
      this.insert(tail, tail.n, key, fileId, valueOffset, valueLen, seq, create, version);
      return true;
    }
    // The same key again (a merge visits a key's entries from several files one after another):
    // it is the last key, so no descent.
    const leaf = last === 0 ? tail : this.findLeaf(key, true);
    const i = last === 0 ? tail.n - 1 : leaf.search(key);
    if (i >= 0) {
      const s = i * SLOT_WORDS;
      const existing = u64FromHalves(leaf.slots[s + S_SEQ_HI] as number, leaf.slots[s + S_SEQ_LO] as number);
      if (existing >= seq) return false;
      const oldFile = leaf.slots[s + S_FILE] as number;
      const oldOffset = leaf.slots[s + S_OFFSET] as number;
      leaf.setLocation(i, fileId, valueOffset, valueLen, seq, create, version);
      if (this.pointHolds(key))
        (this.point as PointIndex).update(
          hash32(key),
          oldFile,
          oldOffset,
          fileId,
          valueOffset,
          valueLen,
          version === 0,
          hintOf(leaf, i),
        );
      return true;
    }
    this.insert(leaf, -i - 1, key, fileId, valueOffset, valueLen, seq, create, version);
    return true;
  }

  /**
   * relocate moves `key` to a new location only if it still lives at (fileId, valueOffset):
   * compaction uses it so that a write racing the copy always wins.
   */
  relocate(
    key: Uint8Array,
    fileId: number,
    valueOffset: number,
    newFileId: number,
    newValueOffset: number,
  ): boolean {
    let leaf: Leaf;
    let i: number;
    let pos = NO_SLOT;
    if (this.pointComplete) pos = this.viaPoint(key, hash32(key));
    if (pos !== NO_SLOT) {
      leaf = this.foundLeaf as Leaf;
      i = this.foundSlot;
    } else {
      leaf = this.findLeaf(key, false);
      i = leaf.search(key);
      if (i < 0) return false;
    }
    const s = i * SLOT_WORDS;
    if (leaf.slots[s + S_FILE] !== fileId || leaf.slots[s + S_OFFSET] !== valueOffset) return false;
    leaf.slots[s + S_FILE] = newFileId;
    leaf.slots[s + S_OFFSET] = newValueOffset;
    const valueLen = leaf.slots[s + S_LENGTH] as number;
    const legacy = leaf.slots[s + S_VERSION] === 0;
    if (pos !== NO_SLOT)
      (this.point as PointIndex).updateAt(pos, newFileId, newValueOffset, valueLen, legacy, hintOf(leaf, i));
    else if (this.pointHolds(key))
      (this.point as PointIndex).update(
        hash32(key),
        fileId,
        valueOffset,
        newFileId,
        newValueOffset,
        valueLen,
        legacy,
        hintOf(leaf, i),
      );
    return true;
  }

  /** remove deletes `key`; it returns true when the key existed, with its old location in `previous`. */
  remove(key: Uint8Array): boolean {
    const leaf = this.findLeaf(key, true);
    const i = leaf.search(key);
    if (i < 0) return false;
    this.copyPrevious(leaf, i);
    leaf.removeAt(i);
    this.count--;
    if (this.pointHolds(key))
      (this.point as PointIndex).remove(hash32(key), this.previous.fileId, this.previous.valueOffset);
    this.rebalance(leaf);
    return true;
  }

  /**
   * walk visits entries in key order starting at `from` (inclusive unless `exclusive`), or at
   * the first (last, when reverse) key when `from` is undefined, until the visitor returns false.
   * The visitor must not modify the KeyDir.
   */
  walk(from: Uint8Array | undefined, exclusive: boolean, reverse: boolean, visit: Visitor): void {
    let leaf: Leaf | null;
    let i: number;
    if (from === undefined) {
      leaf = reverse ? this.lastLeaf() : this.firstLeaf();
      i = reverse ? leaf.n - 1 : 0;
    } else {
      leaf = this.findLeaf(from, false);
      const found = leaf.search(from);
      if (found >= 0) i = exclusive ? (reverse ? found - 1 : found + 1) : found;
      else i = reverse ? -found - 2 : -found - 1;
    }
    while (leaf !== null) {
      if (reverse) {
        for (; i >= 0; i--) if (!visit(leaf.key(i), leaf.location(i))) return;
        leaf = leaf.prev;
        i = leaf === null ? 0 : leaf.n - 1;
      } else {
        for (; i < leaf.n; i++) if (!visit(leaf.key(i), leaf.location(i))) return;
        leaf = leaf.next;
        i = 0;
      }
    }
  }

  /**
   * walkFiles visits, in key order after `from` (exclusive; from the first key when undefined),
   * the entries that live in one of the data files `files`. The key is a view into the tree,
   * lent for the call only (compaction and sealed files' hints walk the whole directory for
   * the few entries of their files, and would otherwise copy every other key). The walk stops
   * when `visit` returns false (that entry not taken: it resumes at it), after `maxVisits`
   * entries looked at (those of other files count too), or when `over()`, asked every
   * WALK_CLOCK_EVERY entries looked at, says the caller's time slice is spent. It returns where
   * to resume, or undefined when it reached the end.
   */
  walkFiles(
    files: ReadonlySet<number>,
    from: WalkResume | undefined,
    maxVisits: number,
    over: () => boolean,
    visit: (key: Uint8Array, location: Location) => boolean,
  ): WalkResume | undefined {
    let [leaf, i] = this.startAt(from?.key, from?.exclusive ?? false);
    let visits = 0;
    while (leaf !== null) {
      const slots = leaf.slots;
      for (; i < leaf.n; i++) {
        if (files.has(slots[i * SLOT_WORDS + S_FILE] as number)) {
          const start = leaf.keyStart(i);
          if (!visit(leaf.arena.subarray(start, leaf.keyEnd(i)), leaf.location(i)))
            return { key: leaf.key(i), exclusive: false };
        }
        visits++;
        if (visits >= maxVisits || (visits % WALK_CLOCK_EVERY === 0 && over())) {
          return i + 1 < leaf.n || leaf.next !== null ? { key: leaf.key(i), exclusive: true } : undefined;
        }
      }
      leaf = leaf.next;
      i = 0;
    }
    return undefined;
  }

  /**
   * memoryBytes estimates the key directory's footprint from its structure: typed-array bytes
   * plus an allowance for each JS object and array slot. Deterministic, unlike heap deltas, so
   * tests can hold it to the budget; the benchmark measures the real heap in a fresh process.
   */
  memoryBytes(): number {
    let bytes = 0;
    const visit = (node: Node): void => {
      if (node instanceof Leaf) {
        bytes += node.slots.byteLength + LEAF_HEADS_BYTES + node.arena.byteLength + LEAF_OBJECTS_BYTES;
        return;
      }
      bytes += INTERNAL_OBJECTS_BYTES + node.children.length * POINTER_BYTES * 2 + node.headsBytes;
      for (const key of node.keys) bytes += key.length + BUFFER_OBJECT_BYTES;
      for (const child of node.children) visit(child);
    };
    visit(this.root);
    return bytes + (this.point?.memoryBytes() ?? 0);
  }

  /**
   * verify checks the whole structure and returns what is wrong with it (empty: sound). It is
   * O(n), for `cairn check`, for the engine's debug checks after recovery and compaction, and
   * for tests. A damaged directory is a bug, never a disk problem (it is rebuilt at every open),
   * but its symptoms are silent: lookups that miss keys a walk still finds, walks that repeat
   * keys. What it checks:
   * - every internal node has one more child than separators, its separators strictly increase,
   *   and all leaves are at the same depth;
   * - every key of a leaf lies within the separators above it (so a lookup descends to it);
   * - the leaves' next/prev links visit exactly the tree's leaves, in the tree's order;
   * - keys strictly increase across the whole walk, slot offsets stay inside their arenas, only
   *   a root leaf may be empty, and the count matches the entries.
   * It stops after VERIFY_PROBLEMS_MAX problems.
   */
  verify(): string[] {
    const problems: string[] = [];
    const report = (problem: string): boolean => {
      if (problems.length < VERIFY_PROBLEMS_MAX) problems.push(problem);
      return problems.length < VERIFY_PROBLEMS_MAX;
    };
    // The tree's leaves in order, with the bounds their ancestors' separators give them.
    const leaves: Leaf[] = [];
    let leafDepth = -1;
    const visit = (
      node: Node,
      lo: Uint8Array | undefined,
      hi: Uint8Array | undefined,
      depth: number,
    ): void => {
      if (node instanceof Leaf) {
        if (leafDepth === -1) leafDepth = depth;
        else if (depth !== leafDepth) report(`a leaf at depth ${depth}, others at ${leafDepth}`);
        leaves.push(node);
        if (node.n === 0 && node !== this.root) report('an empty leaf below the root');
        const heads = node.headsProblem();
        if (heads !== undefined) report(`a leaf's search heads: ${heads}`);
        let end = 0;
        for (let i = 0; i < node.n; i++) {
          const keyEnd = node.keyEnd(i);
          if (keyEnd < end || keyEnd > node.arena.length) {
            report(`leaf slot ${i} ends its key at ${keyEnd}, outside [${end}, ${node.arena.length}]`);
            return;
          }
          end = keyEnd;
          const key = node.key(i);
          if (lo !== undefined && compare(key, lo) < 0)
            report(`key ${hexOf(key)} below its separator ${hexOf(lo)}`);
          if (hi !== undefined && compare(key, hi) >= 0)
            report(`key ${hexOf(key)} at or above the next separator ${hexOf(hi)}`);
        }
        return;
      }
      const heads = node.headsProblem();
      if (heads !== undefined) report(`an internal node's search heads: ${heads}`);
      if (node.children.length !== node.keys.length + 1 || node.children.length === 0) {
        report(`an internal node with ${node.children.length} children and ${node.keys.length} separators`);
        return;
      }
      for (let c = 0; c < node.keys.length; c++) {
        const sep = node.keys[c] as Uint8Array;
        if (
          (c > 0 && compare(node.keys[c - 1] as Uint8Array, sep) >= 0) ||
          (lo !== undefined && compare(sep, lo) < 0) ||
          (hi !== undefined && compare(sep, hi) >= 0)
        ) {
          report(`separator ${hexOf(sep)} out of order`);
        }
      }
      for (let c = 0; c < node.children.length; c++) {
        visit(
          node.children[c] as Node,
          c === 0 ? lo : node.keys[c - 1],
          c < node.keys.length ? node.keys[c] : hi,
          depth + 1,
        );
      }
    };
    visit(this.root, undefined, undefined, 0);
    // The linked list must be the same leaves in the same order, linked both ways.
    let prevLeaf: Leaf | null = null;
    let index = 0;
    let seen = 0;
    let prevKey: Uint8Array | undefined;
    for (let leaf: Leaf | null = leaves[0] ?? null; leaf !== null; leaf = leaf.next) {
      if (index >= leaves.length) {
        report(`the linked list of leaves runs past the tree's ${leaves.length} leaves`);
        break;
      }
      if (leaf !== leaves[index]) {
        report(`leaf ${index} of the linked list is not the tree's leaf ${index}`);
        break;
      }
      if (leaf.prev !== prevLeaf) report(`leaf ${index} links back to the wrong leaf`);
      for (let i = 0; i < leaf.n; i++) {
        const key = leaf.key(i);
        if (prevKey !== undefined && compare(prevKey, key) >= 0)
          report(`key ${hexOf(key)} follows ${hexOf(prevKey)}`);
        prevKey = key;
        seen++;
      }
      prevLeaf = leaf;
      index++;
    }
    if (index !== leaves.length) report(`the linked list has ${index} leaves, the tree ${leaves.length}`);
    if (seen !== this.count) report(`count ${this.count} but ${seen} entries`);
    if (this.point !== undefined && problems.length === 0) this.verifyPoint(this.point, leaves, report);
    return problems;
  }

  /**
   * verifyPoint checks the point index against the tree: every entry the index should hold
   * (all of them once complete, else those up to pointBuiltTo) has exactly one slot with its
   * key's hash and its location, and the index holds nothing else (its size is that count).
   */
  private verifyPoint(
    point: PointIndex,
    leaves: readonly Leaf[],
    report: (problem: string) => boolean,
  ): void {
    point.verify(report);
    let expected = 0;
    for (const leaf of leaves) {
      for (let i = 0; i < leaf.n; i++) {
        const key = leaf.key(i);
        if (!this.pointHolds(key)) continue;
        expected++;
        const s = i * SLOT_WORDS;
        const found = point.holds(
          hash32(key),
          leaf.slots[s + S_FILE] as number,
          leaf.slots[s + S_OFFSET] as number,
          leaf.slots[s + S_LENGTH] as number,
          leaf.slots[s + S_VERSION] === 0,
        );
        if (found !== 1 && !report(`point index: key ${hexOf(key)} has ${found} slots with its location`))
          return;
      }
    }
    if (point.size !== expected) report(`point index: ${point.size} entries, the tree ${expected} to index`);
  }

  /** checkInvariants asserts that verify() finds nothing (tests and debug checks). */
  checkInvariants(): void {
    const problems = this.verify();
    assert(problems.length === 0, `key directory damaged: ${problems.join('; ')}`);
  }

  private copyPrevious(leaf: Leaf, i: number): void {
    const s = i * SLOT_WORDS;
    const p = this.previous;
    p.fileId = leaf.slots[s + S_FILE] as number;
    p.valueOffset = leaf.slots[s + S_OFFSET] as number;
    p.valueLen = leaf.slots[s + S_LENGTH] as number;
    p.seq = u64FromHalves(leaf.slots[s + S_SEQ_HI] as number, leaf.slots[s + S_SEQ_LO] as number);
    p.create = u64FromHalves(leaf.slots[s + S_CREATE_HI] as number, leaf.slots[s + S_CREATE_LO] as number);
    p.version = leaf.slots[s + S_VERSION] as number;
  }

  /** findLeaf descends to the leaf for `key`, recording the path when `record` is set. */
  private findLeaf(key: Uint8Array, record: boolean): Leaf {
    let node = this.root;
    if (record) {
      this.pathNodes.length = 0;
      this.pathIndexes.length = 0;
    }
    while (node instanceof Internal) {
      const i = node.childIndex(key);
      if (record) {
        this.pathNodes.push(node);
        this.pathIndexes.push(i);
      }
      node = node.children[i] as Node;
    }
    return node;
  }

  /** lastLeafRecorded descends to the last leaf, recording the path as findLeaf does. */
  private lastLeafRecorded(): Leaf {
    this.pathNodes.length = 0;
    this.pathIndexes.length = 0;
    let node = this.root;
    while (node instanceof Internal) {
      const i = node.children.length - 1;
      this.pathNodes.push(node);
      this.pathIndexes.push(i);
      node = node.children[i] as Node;
    }
    return node;
  }

  /**
   * forEachSize visits the key length and location fields of every entry, in key order,
   * without copying keys (start-up uses it for live-byte accounting).
   */
  forEachSize(visit: (keyLen: number, fileId: number, valueLen: number, version: number) => void): void {
    for (let leaf: Leaf | null = this.firstLeaf(); leaf !== null; leaf = leaf.next) {
      for (let i = 0; i < leaf.n; i++) {
        const s = i * SLOT_WORDS;
        visit(
          leaf.keyEnd(i) - leaf.keyStart(i),
          leaf.slots[s + S_FILE] as number,
          leaf.slots[s + S_LENGTH] as number,
          leaf.slots[s + S_VERSION] as number,
        );
      }
    }
  }

  private firstLeaf(): Leaf {
    let node = this.root;
    while (node instanceof Internal) node = node.children[0] as Node;
    return node;
  }

  private lastLeaf(): Leaf {
    let node = this.root;
    while (node instanceof Internal) node = node.children[node.children.length - 1] as Node;
    return node;
  }

  /**
   * split makes room in a full leaf for an insert at `index`, using the path recorded by the
   * last findLeaf. It returns the leaf and index the insert goes to. An append at the end of the
   * last leaf starts a fresh leaf instead of halving, so sequential loads fill leaves completely.
   */
  private split(leaf: Leaf, index: number, key: Uint8Array): [Leaf, number] {
    let right: Leaf;
    let target: [Leaf, number];
    let at: number;
    if (index === leaf.n && leaf.next === null) {
      // An append (a load in key order): the full leaf's key bytes are the best guess of the
      // next one's, so its arena starts at that size instead of growing from the minimum.
      right = this.newLeaf(Math.max(ARENA_BYTES_MIN, leaf.used()));
      at = leaf.n;
      target = [right, 0];
    } else {
      right = this.newLeaf();
      at = leaf.n >>> 1;
      leaf.moveTail(at, right);
      target = index <= at ? [leaf, index] : [right, index - at];
    }
    right.next = leaf.next;
    if (right.next !== null) right.next.prev = right;
    right.prev = leaf;
    leaf.next = right;
    // The separator is the right leaf's first key; a fresh append leaf's first key is the one
    // being inserted. Both are copies the tree owns: `key` is borrowed (recovery hands in views
    // of a read buffer it refills, callers may reuse theirs), and a separator that changes
    // under the tree misroutes lookups. (`key.slice()` would not do: Buffer#slice is a view.)
    this.insertSeparator(right.n > 0 ? right.key(0) : new Uint8Array(key), right);
    return target;
  }

  private insertSeparator(separator: Uint8Array, right: Node): void {
    let depth = this.pathNodes.length - 1;
    let sep = separator;
    let child: Node = right;
    while (depth >= 0) {
      const parent = this.pathNodes[depth] as Internal;
      const i = this.pathIndexes[depth] as number;
      parent.keys.splice(i, 0, sep);
      parent.changed();
      parent.children.splice(i + 1, 0, child);
      if (parent.children.length <= INTERNAL_CHILDREN_MAX) return;
      // Split the internal node: the middle separator moves up.
      const mid = parent.keys.length >>> 1;
      const sibling = new Internal();
      sep = parent.keys[mid] as Uint8Array;
      sibling.keys = parent.keys.splice(mid + 1);
      parent.keys.length = mid;
      sibling.children = parent.children.splice(mid + 1);
      child = sibling;
      depth--;
    }
    const newRoot = new Internal();
    newRoot.keys = [sep];
    newRoot.children = [this.root, child];
    this.root = newRoot;
  }

  /** rebalance removes an empty leaf or merges a sparse one into its right sibling. */
  private rebalance(leaf: Leaf): void {
    const depth = this.pathNodes.length - 1;
    if (depth < 0) return; // the root leaf may be anything
    const parent = this.pathNodes[depth] as Internal;
    const i = this.pathIndexes[depth] as number;
    if (leaf.n === 0) {
      this.unlinkLeaf(leaf);
      this.removeChild(depth, i);
      return;
    }
    if (leaf.n >= LEAF_MERGE_BELOW || i + 1 >= parent.children.length) return;
    const right = parent.children[i + 1] as Leaf;
    if (leaf.n + right.n > LEAF_MERGE_FILL_MAX) return;
    leaf.appendAll(right);
    this.unlinkLeaf(right);
    this.removeChild(depth, i + 1);
  }

  private unlinkLeaf(leaf: Leaf): void {
    if (leaf.prev !== null) leaf.prev.next = leaf.next;
    if (leaf.next !== null) leaf.next.prev = leaf.prev;
    leaf.prev = null;
    leaf.next = null;
    this.freeLeaf(leaf);
  }

  /** removeChild drops child i of the node at path depth `depth`, collapsing empty ancestors. */
  private removeChild(depth: number, i: number): void {
    const parent = this.pathNodes[depth] as Internal;
    parent.children.splice(i, 1);
    parent.keys.splice(i === 0 ? 0 : i - 1, 1);
    parent.changed();
    if (parent.children.length === 0) {
      if (depth === 0) this.root = this.newLeaf();
      else this.removeChild(depth - 1, this.pathIndexes[depth - 1] as number);
      return;
    }
    if (depth === 0 && parent.children.length === 1) {
      this.root = parent.children[0] as Node;
    }
  }
}
