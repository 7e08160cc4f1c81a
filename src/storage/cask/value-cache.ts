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
// - a ring of bytes (the arena) holds each entry as a record `slot:u32 size:u32 key value`,
//   appended at `head` and retired from `tail` (FIFO);
// - one slot record per slot holds its record offset, key and value lengths, key hash, value
//   type, "referenced" bit and revision: SLOT_BYTES in one ArrayBuffer, seen as u32 words and
//   as f64s (for the revision). It was one typed array per field: a lookup or a set touched
//   nine arrays at a random index, a cache miss each at 100k entries; now one or two lines;
// - an open-addressing hash table (linear probing, backward-shift deletion) maps a key's hash to
//   its slot.
// Eviction is FIFO with reinsertion (second chance, as CLOCK): a hit only sets its slot's bit;
// the record at the tail is retired unless its bit is set, in which case it is copied to the
// head (when there is room) and its bit cleared. A rewrite of a value with the same length
// overwrites the record in place, so a hot key rewritten by SET moves nothing.
//
// A record is live when its slot's offset is its own position: a rewrite elsewhere or a delete
// leaves the old record behind as dead bytes that the tail skips. No new record can be placed
// where a dead one still lies (records are only placed at the head, outside [tail, head)), so a
// dead record is never mistaken for a live one.
//
// Buffers: `set` copies the value into the arena; `lookup` returns a view of the arena that is
// valid only until the next change to the cache (callers copy it at once); `get` copies.
import { assert } from '../../stdx/assert.js';
import { hash32 as hashBytes } from '../../stdx/hash32.js';

/** RECORD_HEADER_BYTES: slot (u32) and record size (u32) before the key. */
const RECORD_HEADER_BYTES = 8;
/**
 * PAD: the slot field of padding that fills the end of the ring when a record does not fit,
 * and the offset of a free slot. MOVING: the offset of a slot whose record is being replaced
 * (so that making room for the new one retires the old one as dead bytes). Neither is a
 * record's position: the capacity is below both.
 */
const PAD = 0xffff_ffff;
const MOVING = 0xffff_fffe;
/** VALUE_SHARE_MAX: a value larger than this share of the capacity is never cached. */
const VALUE_SHARE_MAX = 1 / 16;
/** SLOTS_INITIAL: slots the cache starts with; it doubles them as entries are added. */
const SLOTS_INITIAL = 1024;
/** EMPTY: a free hash table bucket. */
const EMPTY = -1;

// A slot record: SLOT_BYTES (a cache line), u32 words then f64s.
const SLOT_BYTES = 64;
const SLOT_U32 = SLOT_BYTES / 4;
const SLOT_F64 = SLOT_BYTES / 8;
/** u32 words: the record's offset in the arena (PAD: free, MOVING), key and value lengths, hash, type, bit. */
const U_OFFSET = 0;
const U_KEY_LEN = 1;
const U_VALUE_LEN = 2;
const U_HASH = 3;
const U_TYPE = 4;
const U_REFERENCED = 5;
/** f64s, after the u32 words: the revision (seq, create, version as in the key directory). */
const F_SEQ = 4;
const F_CREATE = 5;
const F_VERSION = 6;

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
  private arena: Buffer | undefined;
  /** head: where the next record goes; tail: the oldest record; used: bytes in [tail, head) incl. padding. */
  private head = 0;
  private tail = 0;
  private used = 0;
  /** liveBytes: keys and values of live entries (sizeBytes). */
  private liveBytes = 0;

  private slotCount = 0;
  /** slots, slotsF: the slot records (see SLOT_BYTES), as u32 words and as f64s. */
  private slots = new Uint32Array(0);
  private slotsF = new Float64Array(0);
  /** freeSlots: a stack of unused slot numbers below slotCount. */
  private freeSlots = new Int32Array(0);
  private freeCount = 0;
  /** table: slot numbers by hash bucket (EMPTY: free); its size is a power of two, > 2x the slots. */
  private table = new Int32Array(0);
  private entries = 0;

  private readonly found = new Found();
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {
    assert(Number.isInteger(capacityBytes) && capacityBytes >= 0, 'cache capacity must be a byte count');
    assert(capacityBytes < MOVING, 'cache capacity must fit 32-bit offsets');
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
    const slot = this.entries === 0 ? EMPTY : this.find(key, hashBytes(key));
    if (slot === EMPTY) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.slots[slot * SLOT_U32 + U_REFERENCED] = 1;
    return this.answer(slot);
  }

  /**
   * peek is lookup without touching anything: no hit or miss counted, no referenced bit set (a
   * compaction copying every record must not make them all look recently used).
   */
  peek(key: Uint8Array): Cached | undefined {
    const slot = this.entries === 0 ? EMPTY : this.find(key, hashBytes(key));
    return slot === EMPTY ? undefined : this.answer(slot);
  }

  /** answer fills the reused Found with `slot`'s entry. */
  private answer(slot: number): Found {
    const u = slot * SLOT_U32;
    const f = slot * SLOT_F64;
    const slots = this.slots;
    const found = this.found;
    found.arena = this.arena as Buffer;
    found.valueAt = (slots[u + U_OFFSET] as number) + RECORD_HEADER_BYTES + (slots[u + U_KEY_LEN] as number);
    found.valueLen = slots[u + U_VALUE_LEN] as number;
    found.seq = this.slotsF[f + F_SEQ] as number;
    found.create = this.slotsF[f + F_CREATE] as number;
    found.version = this.slotsF[f + F_VERSION] as number;
    found.valueType = slots[u + U_TYPE] as number;
    return found;
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
    const size = RECORD_HEADER_BYTES + key.length + value.length;
    if (value.length > this.capacityBytes * VALUE_SHARE_MAX || size > this.capacityBytes) {
      this.delete(key);
      return;
    }
    const hash = hashBytes(key);
    let slot = this.entries === 0 ? EMPTY : this.find(key, hash);
    if (slot !== EMPTY && this.slots[slot * SLOT_U32 + U_VALUE_LEN] === value.length) {
      // In place: same record, same size; the entry keeps its age and its bit.
      const arena = this.arena as Buffer;
      arena.set(value, (this.slots[slot * SLOT_U32 + U_OFFSET] as number) + RECORD_HEADER_BYTES + key.length);
      this.setRevision(slot, seq, create, version, valueType);
      return;
    }
    if (slot !== EMPTY) {
      // The old record becomes dead bytes (its offset is no longer the slot's); the slot stays
      // in the table and takes the new record.
      const u = slot * SLOT_U32;
      this.liveBytes -= (this.slots[u + U_KEY_LEN] as number) + (this.slots[u + U_VALUE_LEN] as number);
      this.slots[u + U_OFFSET] = MOVING;
    }
    const at = this.reserve(size);
    if (slot === EMPTY) {
      slot = this.newSlot();
      this.slots[slot * SLOT_U32 + U_HASH] = hash;
      this.insertBucket(slot, hash);
      this.slots[slot * SLOT_U32 + U_REFERENCED] = 0;
      this.entries++;
    }
    const arena = this.arena as Buffer;
    arena.writeUInt32LE(slot, at);
    arena.writeUInt32LE(size, at + 4);
    arena.set(key, at + RECORD_HEADER_BYTES);
    arena.set(value, at + RECORD_HEADER_BYTES + key.length);
    const u = slot * SLOT_U32;
    const slots = this.slots;
    slots[u + U_OFFSET] = at;
    slots[u + U_KEY_LEN] = key.length;
    slots[u + U_VALUE_LEN] = value.length;
    this.setRevision(slot, seq, create, version, valueType);
    this.liveBytes += key.length + value.length;
  }

  delete(key: Uint8Array): void {
    if (this.entries === 0) return;
    const slot = this.find(key, hashBytes(key));
    if (slot !== EMPTY) this.drop(slot);
  }

  // ---- internals -------------------------------------------------------------------------------

  private setRevision(slot: number, seq: number, create: number, version: number, valueType: number): void {
    const f = slot * SLOT_F64;
    this.slotsF[f + F_SEQ] = seq;
    this.slotsF[f + F_CREATE] = create;
    this.slotsF[f + F_VERSION] = version;
    this.slots[slot * SLOT_U32 + U_TYPE] = valueType;
  }

  /** find returns the slot holding `key` (hash `hash`), or EMPTY. */
  private find(key: Uint8Array, hash: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const arena = this.arena as Buffer;
    const slots = this.slots;
    for (let b = hash & mask; ; b = (b + 1) & mask) {
      const slot = table[b] as number;
      if (slot === EMPTY) return EMPTY;
      const u = slot * SLOT_U32;
      if (slots[u + U_HASH] !== hash || slots[u + U_KEY_LEN] !== key.length) continue;
      const at = (slots[u + U_OFFSET] as number) + RECORD_HEADER_BYTES;
      let same = true;
      for (let i = 0; i < key.length; i++) {
        if (arena[at + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (same) return slot;
    }
  }

  /** drop forgets a slot's entry (its record stays as dead bytes until the tail passes it). */
  private drop(slot: number): void {
    this.removeBucket(slot);
    const u = slot * SLOT_U32;
    this.liveBytes -= (this.slots[u + U_KEY_LEN] as number) + (this.slots[u + U_VALUE_LEN] as number);
    this.slots[u + U_OFFSET] = PAD;
    this.freeSlots[this.freeCount++] = slot;
    this.entries--;
  }

  /** reserve makes room for a record of `size` bytes at the head and returns its offset. */
  private reserve(size: number): number {
    this.arena ??= Buffer.allocUnsafeSlow(this.capacityBytes);
    const capacity = this.capacityBytes;
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

  /** pad fills [head, end) with padding and moves the head to the start of the ring. */
  private pad(): void {
    const arena = this.arena as Buffer;
    const rest = this.capacityBytes - this.head;
    if (rest >= RECORD_HEADER_BYTES) {
      arena.writeUInt32LE(PAD, this.head);
      arena.writeUInt32LE(rest, this.head + 4);
    }
    this.used += rest;
    this.head = 0;
  }

  /**
   * retire moves the tail past its record: a dead record or padding is dropped, a live one
   * evicted, or (referenced, with room at the head) copied to the head with its bit cleared.
   */
  private retire(): void {
    const arena = this.arena as Buffer;
    const capacity = this.capacityBytes;
    const at = this.tail;
    const rest = capacity - at;
    let size: number;
    if (rest < RECORD_HEADER_BYTES) size = rest;
    else {
      const slot = arena.readUInt32LE(at);
      size = arena.readUInt32LE(at + 4);
      assert(size >= RECORD_HEADER_BYTES && size <= rest, 'value cache record size out of range');
      const u = slot * SLOT_U32;
      if (slot !== PAD && this.slots[u + U_OFFSET] === at) {
        if (this.slots[u + U_REFERENCED] === 1 && this.head <= at) {
          // Second chance: the record moves to the head, which is at or before it (the records
          // wrap), so the free space stays as it was; copyWithin copies overlapping ranges
          // correctly.
          this.slots[u + U_REFERENCED] = 0;
          arena.copyWithin(this.head, at, at + size);
          this.slots[u + U_OFFSET] = this.head;
          this.head += size;
          this.used += size;
        } else this.drop(slot);
      }
    }
    this.used -= size;
    this.tail = at + size === capacity ? 0 : at + size;
    if (this.used === 0) {
      this.head = 0;
      this.tail = 0;
    }
  }

  private newSlot(): number {
    if (this.freeCount > 0) return this.freeSlots[--this.freeCount] as number;
    if (this.slotCount === this.freeSlots.length) this.grow();
    return this.slotCount++;
  }

  /** grow doubles the slot arrays and rebuilds the hash table for them. */
  private grow(): void {
    const n = Math.max(SLOTS_INITIAL, this.freeSlots.length * 2);
    const records = new ArrayBuffer(n * SLOT_BYTES);
    new Uint8Array(records).set(
      new Uint8Array(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength),
    );
    this.slots = new Uint32Array(records);
    this.slotsF = new Float64Array(records);
    this.freeSlots = grown(this.freeSlots, new Int32Array(n));
    this.table = new Int32Array(n * 4).fill(EMPTY);
    for (let slot = 0; slot < this.slotCount; slot++) {
      const u = slot * SLOT_U32;
      if (this.slots[u + U_OFFSET] !== PAD) this.insertBucket(slot, this.slots[u + U_HASH] as number);
    }
  }

  private insertBucket(slot: number, hash: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let b = hash & mask;
    while (table[b] !== EMPTY) b = (b + 1) & mask;
    table[b] = slot;
  }

  /** removeBucket deletes a slot from the table, shifting later entries of its run back. */
  private removeBucket(slot: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let b = (this.slots[slot * SLOT_U32 + U_HASH] as number) & mask;
    while (table[b] !== slot) {
      assert(table[b] !== EMPTY, 'value cache slot missing from its table');
      b = (b + 1) & mask;
    }
    let hole = b;
    for (let next = (hole + 1) & mask; table[next] !== EMPTY; next = (next + 1) & mask) {
      const home = (this.slots[(table[next] as number) * SLOT_U32 + U_HASH] as number) & mask;
      // An entry may move into the hole when its home bucket does not lie in (hole, next].
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        table[hole] = table[next] as number;
        hole = next;
      }
    }
    table[hole] = EMPTY;
  }
}

function grown<T extends Int32Array>(old: T, fresh: T): T {
  fresh.set(old as never);
  return fresh;
}
