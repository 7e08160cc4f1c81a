// ValueCache keeps recently written and read values in memory, with their revisions, so that a
// hot key is served without a key-directory search and a pread (reads, getStored, revisionSync).
// Bounded by bytes.
//
// Correctness: the engine updates the cache only where it updates the key directory (publish,
// after a write is durable) and on reads of durable records, so a cached value and revision are
// always those of the record the key directory points at. (Compaction moves records without
// changing value or revision, so it leaves the cache alone.) Values handed out by the engine are
// copies: callers may modify them.
//
// Layout (issue 14): nothing per entry lives on the JavaScript heap. The cache was a Map of
// entry objects, each with a Buffer and list links; with 100k entries under a write load, every
// young-generation GC had to trace the new entries those old structures pointed at, and the
// server's scavenges took 4x as long as with the cache off (docs/benchmarks.md). Now:
// - a ring of bytes (the arena) holds each entry as one record, 8-byte aligned:
//     record := header key value padding(to a multiple of 8)
//     header := flags:u32 keyLen:u32 valueLen:u32 version:u32 seq:f64 create:f64   (32 bytes)
//   appended at `head` and retired from `tail` (FIFO). `flags` holds the value type (low 8
//   bits), the "referenced" bit, the DEAD bit (a record deleted or rewritten elsewhere, skipped
//   by the tail) and the PAD bit (the rest of the ring when a record did not fit; its span is in
//   the keyLen word);
// - an open-addressing hash table (linear probing, backward-shift deletion, at most half full)
//   maps a key to its record: two u32 words per bucket, the record's offset and the key's hash.
// A lookup reads one bucket and then one record, whose header, key and value lie together: two
// places in memory that a cache miss each, where it was three (bucket, a 64-byte slot record
// beside the arena, the record's key) before (docs/benchmarks.md: at 100k keys each is a cache
// and TLB miss, about 150-200 ns here, and the lookup was a fifth of a GET's CPU at -P 16).
// A bucket's hash spares the records of other keys in the same run.
// Eviction is FIFO with reinsertion (second chance, as CLOCK): a hit only sets its record's bit;
// the record at the tail is retired unless its bit is set, in which case it is copied to the
// head (when there is room), its bit cleared and its bucket pointed at the copy. A rewrite of a
// value with the same length overwrites the record in place, so a hot key rewritten by SET moves
// nothing.
//
// Buffers: `set` copies the value into the arena; `lookup` returns a view of the arena that is
// valid only until the next change to the cache (callers copy it at once); `get` copies.
import { assert } from '../../stdx/assert.js';
import { hash32 as hashBytes } from '../../stdx/hash32.js';

/** CACHE_RECORD_HEADER_BYTES: a record's header (see the top of the file); records are 8-byte aligned. */
export const CACHE_RECORD_HEADER_BYTES = 32;
/** ALIGN: records start at multiples of this (the header's f64 fields are read through a Float64Array). */
const ALIGN = 8;
// Header words (u32 index from the record's start / 4) and f64 fields (f64 index / 8).
const W_FLAGS = 0;
const W_KEY_LEN = 1;
const W_VALUE_LEN = 2;
const W_VERSION = 3;
const F_SEQ = 2;
const F_CREATE = 3;
/** Flags: the value type's bits, and the record's state bits above them. */
const TYPE_MASK = 0xff;
const REFERENCED = 0x100;
const DEAD = 0x200;
const PAD = 0x400;
/** VALUE_SHARE_MAX: a value larger than this share of the capacity is never cached. */
const VALUE_SHARE_MAX = 1 / 16;
/** BUCKETS_INITIAL: hash table buckets the cache starts with; it doubles them past half full. */
const BUCKETS_INITIAL = 1024;
/** EMPTY: the offset word of a free bucket (no record starts there: the capacity is below it). */
const EMPTY = 0xffff_ffff;
/** CAPACITY_MAX: the largest capacity (offsets are u32 and EMPTY is not one). */
const CAPACITY_MAX = EMPTY - ALIGN;

/** cacheRecordBytes: the arena bytes of an entry with a key and value of these lengths. */
export function cacheRecordBytes(keyLen: number, valueLen: number): number {
  return align(CACHE_RECORD_HEADER_BYTES + keyLen + valueLen);
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** Cached: one cached value and the revision of its record (the key directory's seq/create/version). */
export interface Cached {
  /** value: a view of the cache's arena, valid until the cache next changes: copy it at once. */
  readonly value: Buffer;
  readonly seq: number;
  readonly create: number;
  readonly version: number;
  /** valueType: the record's value type (0: a string). */
  readonly valueType: number;
}

/**
 * Found: the reused answer of lookup (one object). The value's view is made only when read: a
 * write's revision lookup (revisionSync) reads only the revision, and allocates nothing.
 */
class Found implements Cached {
  arena: Buffer = Buffer.alloc(0);
  valueAt = 0;
  valueLen = 0;
  seq = 0;
  create = 0;
  version = 0;
  valueType = 0;

  get value(): Buffer {
    return this.arena.subarray(this.valueAt, this.valueAt + this.valueLen);
  }
}

export class ValueCache {
  /** arena: the ring of records, and the same bytes as u32 words and f64s (for the headers). */
  private arena: Buffer | undefined;
  private words = new Uint32Array(0);
  private floats = new Float64Array(0);
  /** capacity: capacityBytes rounded down to ALIGN (the ring's size). */
  private readonly capacity: number;
  /** head: where the next record goes; tail: the oldest record; used: bytes in [tail, head) incl. padding. */
  private head = 0;
  private tail = 0;
  private used = 0;
  /** liveBytes: keys and values of live entries (sizeBytes). */
  private liveBytes = 0;
  /** table: two u32 words per bucket, a record's offset (EMPTY: free) and its key's hash. */
  private table = new Uint32Array(0);
  private entries = 0;

  private readonly found = new Found();
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {
    assert(Number.isInteger(capacityBytes) && capacityBytes >= 0, 'cache capacity must be a byte count');
    assert(capacityBytes <= CAPACITY_MAX, 'cache capacity must fit 32-bit offsets');
    this.capacity = capacityBytes - (capacityBytes % ALIGN);
  }

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  /** sizeBytes: the keys and values cached (record headers and dead records not counted). */
  get sizeBytes(): number {
    return this.liveBytes;
  }

  /** size: entries cached. */
  get size(): number {
    return this.entries;
  }

  /**
   * lookup returns the entry of `key`, or undefined. The answer (and its value view) is valid
   * until the cache next changes: copy the value before handing it out.
   */
  lookup(key: Uint8Array): Cached | undefined {
    const at = this.entries === 0 ? EMPTY : this.offsetOf(this.find(key, hashBytes(key)));
    if (at === EMPTY) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.words[at >>> 2] = (this.words[at >>> 2] as number) | REFERENCED;
    return this.answer(at);
  }

  /**
   * peek is lookup without touching anything: no hit or miss counted, no referenced bit set (a
   * compaction copying every record must not make them all look recently used).
   */
  peek(key: Uint8Array): Cached | undefined {
    const at = this.entries === 0 ? EMPTY : this.offsetOf(this.find(key, hashBytes(key)));
    return at === EMPTY ? undefined : this.answer(at);
  }

  /** answer fills the reused Found with the entry of the record at `at`. */
  private answer(at: number): Found {
    const w = at >>> 2;
    const f = at >>> 3;
    const words = this.words;
    const found = this.found;
    found.arena = this.arena as Buffer;
    found.valueAt = at + CACHE_RECORD_HEADER_BYTES + (words[w + W_KEY_LEN] as number);
    found.valueLen = words[w + W_VALUE_LEN] as number;
    found.seq = this.floats[f + F_SEQ] as number;
    found.create = this.floats[f + F_CREATE] as number;
    found.version = words[w + W_VERSION] as number;
    found.valueType = (words[w + W_FLAGS] as number) & TYPE_MASK;
    return found;
  }

  /**
   * prefetch touches the buckets of the keys whose hashes are `hashes[0..count)`, then the records
   * they point at, and changes nothing: a hint before a batch of lookups (a pipelined read of
   * commands). The loads of one pass do not depend on one another, so the CPU overlaps their
   * cache misses, where the lookups after them would take each miss in turn (issue 14; Redis 8
   * prefetches its dictionary entries for a pipelined batch the same way). Returns a sum of what
   * it read, which the caller keeps, so that the loads are not optimized away.
   */
  prefetch(hashes: Uint32Array, count: number): number {
    if (this.entries === 0) return 0;
    const table = this.table;
    const mask = table.length / 2 - 1;
    let sum = 0;
    for (let i = 0; i < count; i++) sum += table[((hashes[i] as number) & mask) * 2] as number;
    const words = this.words;
    for (let i = 0; i < count; i++) {
      const at = table[((hashes[i] as number) & mask) * 2] as number;
      if (at !== EMPTY) sum += words[(at >>> 2) + W_KEY_LEN] as number;
    }
    return sum;
  }

  /** get returns a copy of the cached value of `key`, or undefined. */
  get(key: Uint8Array): Buffer | undefined {
    const found = this.lookup(key);
    return found === undefined ? undefined : Buffer.from(found.value);
  }

  /**
   * set caches `value` with its record's revision (seq, create, version as in the key
   * directory). The value is copied: the cache never shares a buffer with anyone.
   */
  set(key: Uint8Array, value: Uint8Array, seq = 0, create = 0, version = 0, valueType = 0): void {
    if (!this.enabled) return;
    const size = cacheRecordBytes(key.length, value.length);
    if (value.length > this.capacityBytes * VALUE_SHARE_MAX || size > this.capacity) {
      this.delete(key);
      return;
    }
    const hash = hashBytes(key);
    let referenced = 0;
    if (this.entries > 0) {
      const b = this.find(key, hash);
      if (b !== EMPTY) {
        const old = this.table[b * 2] as number;
        const w = old >>> 2;
        if (this.words[w + W_VALUE_LEN] === value.length) {
          // In place: same record, same size; the entry keeps its age and its bit.
          (this.arena as Buffer).set(value, old + CACHE_RECORD_HEADER_BYTES + key.length);
          this.stamp(old, (this.words[w + W_FLAGS] as number) & REFERENCED, valueType, seq, create, version);
          return;
        }
        // Another size: the old record becomes dead bytes and the entry moves to a new one,
        // keeping its bit.
        referenced = (this.words[w + W_FLAGS] as number) & REFERENCED;
        this.drop(b);
      }
    }
    const at = this.reserve(size);
    const words = this.words;
    const w = at >>> 2;
    words[w + W_KEY_LEN] = key.length;
    words[w + W_VALUE_LEN] = value.length;
    this.stamp(at, referenced, valueType, seq, create, version);
    const arena = this.arena as Buffer;
    arena.set(key, at + CACHE_RECORD_HEADER_BYTES);
    arena.set(value, at + CACHE_RECORD_HEADER_BYTES + key.length);
    if ((this.entries + 1) * 2 > this.table.length / 2) this.grow();
    this.insertBucket(at, hash);
    this.entries++;
    this.liveBytes += key.length + value.length;
  }

  delete(key: Uint8Array): void {
    if (this.entries === 0) return;
    const b = this.find(key, hashBytes(key));
    if (b !== EMPTY) this.drop(b);
  }

  // ---- internals -------------------------------------------------------------------------------

  /** stamp writes a live record's flags and revision. */
  private stamp(
    at: number,
    referenced: number,
    valueType: number,
    seq: number,
    create: number,
    version: number,
  ): void {
    const w = at >>> 2;
    const f = at >>> 3;
    this.words[w + W_FLAGS] = (valueType & TYPE_MASK) | referenced;
    this.words[w + W_VERSION] = version;
    this.floats[f + F_SEQ] = seq;
    this.floats[f + F_CREATE] = create;
  }

  /** offsetOf: the record offset of bucket `b`, or EMPTY for EMPTY. */
  private offsetOf(b: number): number {
    return b === EMPTY ? EMPTY : (this.table[b * 2] as number);
  }

  /** find returns the bucket holding `key` (hash `hash`), or EMPTY. */
  private find(key: Uint8Array, hash: number): number {
    const table = this.table;
    const mask = table.length / 2 - 1;
    const arena = this.arena as Buffer;
    const words = this.words;
    for (let b = hash & mask; ; b = (b + 1) & mask) {
      const at = table[b * 2] as number;
      if (at === EMPTY) return EMPTY;
      if (table[b * 2 + 1] !== hash || words[(at >>> 2) + W_KEY_LEN] !== key.length) continue;
      const from = at + CACHE_RECORD_HEADER_BYTES;
      let same = true;
      for (let i = 0; i < key.length; i++) {
        if (arena[from + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (same) return b;
    }
  }

  /** bucketAt returns the bucket that points at the live record at `at` (its key's hash `hash`). */
  private bucketAt(at: number, hash: number): number {
    const table = this.table;
    const mask = table.length / 2 - 1;
    for (let b = hash & mask; ; b = (b + 1) & mask) {
      const o = table[b * 2] as number;
      assert(o !== EMPTY, 'value cache record missing from its table');
      if (o === at) return b;
    }
  }

  /** hashAt: the hash of the key of the record at `at`. */
  private hashAt(at: number): number {
    const from = at + CACHE_RECORD_HEADER_BYTES;
    return hashBytes(this.arena as Buffer, from, from + (this.words[(at >>> 2) + W_KEY_LEN] as number));
  }

  /** drop forgets bucket `b`'s entry (its record stays as dead bytes until the tail passes it). */
  private drop(b: number): void {
    const at = this.table[b * 2] as number;
    const w = at >>> 2;
    this.removeBucket(b);
    this.liveBytes -= (this.words[w + W_KEY_LEN] as number) + (this.words[w + W_VALUE_LEN] as number);
    this.words[w + W_FLAGS] = (this.words[w + W_FLAGS] as number) | DEAD;
    this.entries--;
  }

  /** reserve makes room for a record of `size` bytes at the head and returns its offset. */
  private reserve(size: number): number {
    if (this.arena === undefined) {
      const arena = Buffer.allocUnsafeSlow(this.capacity);
      this.arena = arena;
      this.words = new Uint32Array(arena.buffer, arena.byteOffset, this.capacity / 4);
      this.floats = new Float64Array(arena.buffer, arena.byteOffset, this.capacity / 8);
    }
    const capacity = this.capacity;
    for (;;) {
      if (this.used === 0) {
        this.head = 0;
        this.tail = 0;
      }
      if (this.head > this.tail || this.used === 0) {
        // Records lie in [tail, head): the free space is [head, end), then [0, tail).
        if (capacity - this.head >= size) return this.take(size);
        this.pad();
        continue;
      }
      // Records wrap: the free space is [head, tail).
      if (this.tail - this.head >= size) return this.take(size);
      this.retire();
    }
  }

  private take(size: number): number {
    const at = this.head;
    this.head += size;
    this.used += size;
    return at;
  }

  /** pad fills [head, end) with a padding record and moves the head to the start of the ring. */
  private pad(): void {
    const rest = this.capacity - this.head;
    if (rest > 0) {
      // rest is a multiple of ALIGN, so at least the flags and span words fit.
      const w = this.head >>> 2;
      this.words[w + W_FLAGS] = PAD;
      this.words[w + W_KEY_LEN] = rest;
    }
    this.used += rest;
    this.head = 0;
  }

  /**
   * retire moves the tail past its record: a dead record or padding is dropped, a live one
   * evicted, or (referenced, with room at the head) copied to the head with its bit cleared.
   */
  private retire(): void {
    const capacity = this.capacity;
    const at = this.tail;
    const w = at >>> 2;
    const flags = this.words[w + W_FLAGS] as number;
    let size: number;
    if ((flags & PAD) !== 0) size = this.words[w + W_KEY_LEN] as number;
    else {
      size = cacheRecordBytes(this.words[w + W_KEY_LEN] as number, this.words[w + W_VALUE_LEN] as number);
      if ((flags & DEAD) === 0) {
        const b = this.bucketAt(at, this.hashAt(at));
        if ((flags & REFERENCED) !== 0 && this.head <= at) {
          // Second chance: the record moves to the head, which is at or before it (the records
          // wrap), so the free space stays as it was; copyWithin copies overlapping ranges
          // correctly.
          const to = this.head;
          (this.arena as Buffer).copyWithin(to, at, at + size);
          this.words[(to >>> 2) + W_FLAGS] = flags & ~REFERENCED;
          this.table[b * 2] = to;
          this.head += size;
          this.used += size;
        } else this.drop(b);
      }
    }
    assert(size >= ALIGN && size <= capacity - at, 'value cache record size out of range');
    this.used -= size;
    this.tail = at + size === capacity ? 0 : at + size;
    if (this.used === 0) {
      this.head = 0;
      this.tail = 0;
    }
  }

  /** grow doubles the hash table (BUCKETS_INITIAL at first) and re-inserts every bucket. */
  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(Math.max(BUCKETS_INITIAL, old.length) * 2).fill(EMPTY);
    for (let b = 0; b < old.length; b += 2) {
      const at = old[b] as number;
      if (at !== EMPTY) this.insertBucket(at, old[b + 1] as number);
    }
  }

  private insertBucket(at: number, hash: number): void {
    const table = this.table;
    const mask = table.length / 2 - 1;
    let b = hash & mask;
    while (table[b * 2] !== EMPTY) b = (b + 1) & mask;
    table[b * 2] = at;
    table[b * 2 + 1] = hash;
  }

  /** removeBucket frees bucket `b`, shifting later entries of its run back. */
  private removeBucket(b: number): void {
    const table = this.table;
    const mask = table.length / 2 - 1;
    let hole = b;
    for (let next = (hole + 1) & mask; table[next * 2] !== EMPTY; next = (next + 1) & mask) {
      const home = (table[next * 2 + 1] as number) & mask;
      // An entry may move into the hole when its home bucket does not lie in (hole, next].
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        table[hole * 2] = table[next * 2] as number;
        table[hole * 2 + 1] = table[next * 2 + 1] as number;
        hole = next;
      }
    }
    table[hole * 2] = EMPTY;
  }
}
