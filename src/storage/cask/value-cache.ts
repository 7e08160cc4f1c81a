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
// Buffers: `set` copies the value it is given (publish passes a view into the write's record
// buffer, a read its own buffer); `lookup` returns the cache's own copy, which callers copy
// again before handing it out; `get` copies. The cache never shares a buffer with anyone.
//
// Eviction is second-chance FIFO (CLOCK): a hit only marks its entry as referenced; eviction
// takes entries from the old end and gives referenced ones one more round at the new end. A hit
// thus touches one object instead of relinking three (measured: moving every hit to the front
// of an LRU list cost about as much as the pread it saved, at 100k keys under load).
import { assert } from '../../stdx/assert.js';
import { copyBytes } from '../../stdx/bytes.js';

/**
 * ENTRY_OVERHEAD_BYTES: estimated cost of one entry beyond key and value bytes: the Map slot,
 * the entry object, the Buffer object and the key string's header.
 */
const ENTRY_OVERHEAD_BYTES = 160;
/** VALUE_SHARE_MAX: a value larger than this share of the capacity is never cached. */
const VALUE_SHARE_MAX = 1 / 16;

/** Cached: one cached value and the revision of its record (the key directory's seq/create/version). */
export interface Cached {
  readonly key: string;
  readonly value: Buffer;
  readonly seq: number;
  readonly create: number;
  readonly version: number;
  /** valueType: the record's value type (0: a string). */
  readonly valueType: number;
}

/** Node: one entry in the FIFO (newest at the head). */
interface Node extends Cached {
  value: Buffer;
  seq: number;
  create: number;
  version: number;
  valueType: number;
  referenced: boolean;
  newer: Node | undefined;
  older: Node | undefined;
}

export class ValueCache {
  // A Map for lookup and a doubly linked list for age. (Evicting through a Map's insertion
  // order instead was quadratic: V8 keeps deleted slots until a rehash, and every new iterator
  // walks over them; measured 78 s for 1M inserts into a full 64 MiB cache.)
  private readonly entries = new Map<string, Node>();
  private newest: Node | undefined;
  private oldest: Node | undefined;
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {
    assert(Number.isInteger(capacityBytes) && capacityBytes >= 0, 'cache capacity must be a byte count');
  }

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /**
   * lookup returns the entry of `key` (a latin1 string) or undefined. The entry's value is the
   * cache's own: copy it before handing it out.
   */
  lookup(key: string): Cached | undefined {
    const node = this.entries.get(key);
    if (node === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    node.referenced = true;
    return node;
  }

  /** get returns a copy of the cached value of `key`, or undefined. */
  get(key: string): Buffer | undefined {
    const node = this.lookup(key);
    return node === undefined ? undefined : copyBytes(node.value);
  }

  /**
   * set caches `value` with its record's revision (seq, create, version as in the key
   * directory). The value is copied: the cache never shares a buffer with anyone.
   */
  set(key: string, value: Uint8Array, seq = 0, create = 0, version = 0, valueType = 0): void {
    if (!this.enabled) return;
    if (value.length > this.capacityBytes * VALUE_SHARE_MAX) {
      this.delete(key);
      return;
    }
    const own = copyBytes(value);
    const node = this.entries.get(key);
    if (node !== undefined) {
      // In place: the entry keeps its age (a write is not a reason to keep a key longer).
      this.bytes += own.length - node.value.length;
      node.value = own;
      node.seq = seq;
      node.create = create;
      node.version = version;
      node.valueType = valueType;
    } else {
      const added: Node = {
        key,
        value: own,
        seq,
        create,
        version,
        valueType,
        referenced: false,
        newer: undefined,
        older: undefined,
      };
      this.entries.set(key, added);
      this.pushNewest(added);
      this.bytes += cost(key, own);
    }
    this.evict();
  }

  delete(key: string): void {
    const node = this.entries.get(key);
    if (node === undefined) return;
    this.entries.delete(key);
    this.unlink(node);
    this.bytes -= cost(key, node.value);
  }

  /** evict drops entries from the old end until the cache fits, sparing referenced ones once. */
  private evict(): void {
    while (this.bytes > this.capacityBytes) {
      const victim = this.oldest;
      if (victim === undefined) return;
      if (victim.referenced && victim !== this.newest) {
        victim.referenced = false;
        this.unlink(victim);
        this.pushNewest(victim);
        continue;
      }
      this.delete(victim.key);
    }
  }

  private pushNewest(node: Node): void {
    node.older = this.newest;
    node.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = node;
    this.newest = node;
    this.oldest ??= node;
  }

  private unlink(node: Node): void {
    if (node.newer !== undefined) node.newer.older = node.older;
    else this.newest = node.older;
    if (node.older !== undefined) node.older.newer = node.newer;
    else this.oldest = node.newer;
    node.newer = undefined;
    node.older = undefined;
  }
}

function cost(key: string, value: Buffer): number {
  return key.length + value.length + ENTRY_OVERHEAD_BYTES;
}
