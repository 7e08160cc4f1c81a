// ExpiryIndex: the keys that carry an expiry time, kept beside an engine's main index so that a
// store without TTLs pays nothing for them (an empty Map and an empty array).
//
// - `byName` maps a key (as a latin1 string: one UTF-16 unit per byte, binary-safe) to its
//   current entry: the lazy check at read time is one Map lookup, done only when the Map is
//   not empty.
// - `heap` is a binary min-heap of entries by time, for the active expiry cycle (Redis samples
//   keys with TTLs at random; a heap finds exactly the due ones in O(log n) each). Entries are
//   never removed from the middle: an entry whose key was overwritten or deleted is stale (it is
//   no longer the object `byName` holds) and is dropped when it reaches the top. The heap is
//   rebuilt when stale entries outnumber live ones, so it stays within a constant factor of the
//   keys with an expiry.
//
// Buffers: keys are held as latin1 strings, which are copies by construction; no byte array
// passed in is kept.
//
// Memory per key with an expiry: the Map entry and the key string, one small entry object and
// one heap slot (roughly 100 bytes plus the key; stores without TTLs pay nothing).
import { assert } from '../stdx/assert.js';

/**
 * EXPIRY_CYCLE_INTERVAL_MS: how often an engine's active expiry cycle runs (Redis's default
 * `hz 10`). EXPIRY_CYCLE_KEYS_MAX: expired keys one cycle deletes at most, as one batch of
 * tombstones, so a cycle holds the event loop for well under a millisecond of work plus one
 * write; a cycle that hit the limit runs again as soon as its batch is durable.
 */
export const EXPIRY_CYCLE_INTERVAL_MS = 100;
export const EXPIRY_CYCLE_KEYS_MAX = 1000;

/** HEAP_STALE_FACTOR, HEAP_SLACK_ENTRIES: the heap is rebuilt past factor * live + slack entries. */
const HEAP_STALE_FACTOR = 2;
const HEAP_SLACK_ENTRIES = 1024;

/** ExpiryEntry: one key's expiry. Identity matters: only the entry `byName` holds is current. */
export interface ExpiryEntry {
  readonly name: string;
  readonly expiresAt: number;
}

/** isExpired is the one rule for "expired" (Redis keyIsExpired: now > when). */
export function isExpired(expiresAt: number, nowMs: number): boolean {
  return nowMs > expiresAt;
}

export class ExpiryIndex {
  private readonly byName = new Map<string, ExpiryEntry>();
  private heap: ExpiryEntry[] = [];
  /** taken: entries handed out by takeDue whose deletes are not settled yet. */
  private readonly taken = new Set<ExpiryEntry>();
  /**
   * offsetSum: the sum of (expiresAt - base) over current entries, for avgTtlMs. The base (the
   * first expiry seen) keeps the terms small, so a float sum stays exact far longer.
   */
  private offsetSum = 0;
  private base: number | undefined;

  /** size: keys with an expiry, expired or not. */
  get size(): number {
    return this.byName.size;
  }

  /** get returns the expiry of the key named `name`, or undefined when it has none. */
  get(name: string): number | undefined {
    return this.byName.get(name)?.expiresAt;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** set gives `name` an expiry, replacing any earlier one; undefined removes it. */
  set(name: string, expiresAt: number | undefined): void {
    const old = this.byName.get(name);
    if (old !== undefined) this.offsetSum -= old.expiresAt - (this.base as number);
    if (expiresAt === undefined) {
      this.byName.delete(name);
      if (this.byName.size === 0) this.offsetSum = 0;
      this.maybeRebuild();
      return;
    }
    this.base ??= expiresAt;
    this.offsetSum += expiresAt - this.base;
    const entry: ExpiryEntry = { name, expiresAt };
    this.byName.set(name, entry);
    this.push(entry);
    this.maybeRebuild();
  }

  delete(name: string): void {
    this.set(name, undefined);
  }

  /**
   * takeDue removes from the heap and returns up to `max` current entries that are expired at
   * `nowMs`, earliest first. They stay in `byName` (the key still exists until its tombstone is
   * durable); the caller deletes them through its write path, or hands back with `requeue` those
   * it could not.
   */
  takeDue(nowMs: number, max: number): ExpiryEntry[] {
    const out: ExpiryEntry[] = [];
    while (out.length < max && this.heap.length > 0) {
      const top = this.heap[0] as ExpiryEntry;
      if (this.byName.get(top.name) !== top) {
        this.pop();
        continue;
      }
      if (!isExpired(top.expiresAt, nowMs)) break;
      const entry = this.pop();
      this.taken.add(entry);
      out.push(entry);
    }
    return out;
  }

  /**
   * peekDue returns up to `max` current entries expired at `nowMs`, soonest first, without
   * changing the index: a best-first walk of the heap from its top (an entry's children are not
   * earlier than it), O(k log k) for the k entries visited. Entries taken by takeDue are not
   * among them.
   */
  peekDue(nowMs: number, max: number): ExpiryEntry[] {
    const out: ExpiryEntry[] = [];
    const heap = this.heap;
    const at = (i: number): number => (heap[i] as ExpiryEntry).expiresAt;
    // frontier: heap positions not yet visited whose parents were, a min-heap by expiry.
    const frontier = new IndexHeap(at);
    if (heap.length > 0) frontier.push(0);
    while (out.length < max && frontier.size > 0) {
      const i = frontier.pop();
      const e = heap[i] as ExpiryEntry;
      if (!isExpired(e.expiresAt, nowMs)) break; // every other candidate expires no earlier
      if (this.byName.get(e.name) === e) out.push(e);
      const left = 2 * i + 1;
      if (left < heap.length) frontier.push(left);
      if (left + 1 < heap.length) frontier.push(left + 1);
    }
    return out;
  }

  /** requeue puts an entry taken by takeDue back (its delete was not made), if it is still current. */
  requeue(entry: ExpiryEntry): void {
    this.taken.delete(entry);
    if (this.byName.get(entry.name) === entry) this.push(entry);
  }

  /** deleteEntry removes a key's expiry only if `entry` is still its current one. */
  deleteEntry(entry: ExpiryEntry): void {
    if (this.byName.get(entry.name) === entry) this.delete(entry.name);
  }

  /** done forgets an entry taken by takeDue once its delete is durable. */
  done(entry: ExpiryEntry): void {
    this.taken.delete(entry);
  }

  /**
   * expiredCount counts current entries expired at `nowMs`, visiting only the part of the heap
   * at or before `nowMs` (plus their children): O(expired) rather than O(keys with a TTL).
   */
  expiredCount(nowMs: number): number {
    let count = 0;
    const stack: number[] = this.heap.length > 0 ? [0] : [];
    // Stale entries count 0, but their children are visited: an entry's children are not earlier
    // than it, so a subtree whose root is not expired holds nothing expired.
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const e = this.heap[i] as ExpiryEntry;
      if (!isExpired(e.expiresAt, nowMs)) continue;
      if (this.byName.get(e.name) === e) count++;
      const left = 2 * i + 1;
      if (left < this.heap.length) stack.push(left);
      if (left + 1 < this.heap.length) stack.push(left + 1);
    }
    // Entries taken by takeDue whose tombstones are still on their way are out of the heap.
    for (const e of this.taken) if (this.byName.get(e.name) === e && isExpired(e.expiresAt, nowMs)) count++;
    return count;
  }

  /**
   * avgTtlMs: the mean time to expiry of the keys that carry one, in ms (0 when none, never
   * negative): INFO's avg_ttl, exact rather than Redis's sampled estimate.
   */
  avgTtlMs(nowMs: number): number {
    if (this.byName.size === 0 || this.base === undefined) return 0;
    return Math.max(0, Math.round(this.base + this.offsetSum / this.byName.size - nowMs));
  }

  /** names iterates the keys that carry an expiry. */
  names(): IterableIterator<string> {
    return this.byName.keys();
  }

  /** checkInvariants verifies the heap order and that every current entry is in the heap (tests). */
  checkInvariants(): void {
    for (let i = 1; i < this.heap.length; i++) {
      const parent = this.heap[(i - 1) >> 1] as ExpiryEntry;
      assert(parent.expiresAt <= (this.heap[i] as ExpiryEntry).expiresAt, 'expiry heap out of order');
    }
    const inHeap = new Set<ExpiryEntry>([...this.heap, ...this.taken]);
    for (const entry of this.byName.values()) assert(inHeap.has(entry), 'expiry entry missing from the heap');
  }

  private maybeRebuild(): void {
    if (this.heap.length <= HEAP_STALE_FACTOR * this.byName.size + HEAP_SLACK_ENTRIES) return;
    // Entries taken by takeDue are left out too: they are requeued if their delete fails.
    const live = this.heap.filter((e) => this.byName.get(e.name) === e);
    live.sort((a, b) => a.expiresAt - b.expiresAt); // a sorted array is a valid min-heap
    this.heap = live;
  }

  private push(entry: ExpiryEntry): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as ExpiryEntry;
      if (p.expiresAt <= entry.expiresAt) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): ExpiryEntry {
    const heap = this.heap;
    const top = heap[0] as ExpiryEntry;
    const last = heap.pop() as ExpiryEntry;
    if (heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      let child = left;
      if (
        right < heap.length &&
        (heap[right] as ExpiryEntry).expiresAt < (heap[left] as ExpiryEntry).expiresAt
      )
        child = right;
      const c = heap[child] as ExpiryEntry;
      if (c.expiresAt >= last.expiresAt) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/** IndexHeap: a binary min-heap of numbers ordered by `keyOf` (peekDue's frontier of heap positions). */
class IndexHeap {
  private readonly items: number[] = [];

  constructor(private readonly keyOf: (item: number) => number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: number): void {
    const items = this.items;
    const key = this.keyOf(item);
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as number;
      if (this.keyOf(p) <= key) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  /** pop removes and returns the item with the smallest key; call only when size > 0. */
  pop(): number {
    const items = this.items;
    const top = items[0] as number;
    const last = items.pop() as number;
    if (items.length === 0) return top;
    const key = this.keyOf(last);
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= items.length) break;
      if (
        child + 1 < items.length &&
        this.keyOf(items[child + 1] as number) < this.keyOf(items[child] as number)
      )
        child++;
      const c = items[child] as number;
      if (this.keyOf(c) >= key) break;
      items[i] = c;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
