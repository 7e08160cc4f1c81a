// ValueCache keeps recently written and read values in memory, so that a hot key is served
// without a key-directory search and a pread. Bounded by bytes, evicting the least recently used.
//
// Correctness: the engine updates the cache only where it updates the key directory (publish,
// after a write is durable) and on reads of durable records, so a cached value is always the
// value the key directory points at. Buffers handed out are copies: callers may modify them.
import { assert } from '../../stdx/assert.js';

/** ENTRY_OVERHEAD_BYTES: estimated cost of one entry beyond key and value (Map slot, Buffer object). */
const ENTRY_OVERHEAD_BYTES = 96;
/** VALUE_SHARE_MAX: a value larger than this share of the capacity is never cached. */
const VALUE_SHARE_MAX = 1 / 16;

export class ValueCache {
  // A Map iterates in insertion order: re-inserting on a hit makes the first entry the LRU one.
  private readonly entries = new Map<string, Buffer>();
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

  /** get returns a copy of the cached value of `key` (a latin1 string), or undefined. */
  get(key: string): Buffer | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, value);
    return Buffer.from(value);
  }

  /** set caches `value` (copied when it is a view into a much larger buffer). */
  set(key: string, value: Uint8Array): void {
    if (!this.enabled) return;
    this.delete(key);
    if (value.length > this.capacityBytes * VALUE_SHARE_MAX) return;
    const own =
      value.byteLength * 2 + ENTRY_OVERHEAD_BYTES < value.buffer.byteLength
        ? Buffer.from(value)
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.entries.set(key, own);
    this.bytes += cost(key, own);
    while (this.bytes > this.capacityBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  delete(key: string): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.entries.delete(key);
    this.bytes -= cost(key, old);
  }
}

function cost(key: string, value: Buffer): number {
  return key.length + value.length + ENTRY_OVERHEAD_BYTES;
}
