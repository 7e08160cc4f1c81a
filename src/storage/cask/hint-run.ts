// Cursors, runs and their merge: start-up's load of hint files into the key directory in key order.
// Every hint file lists its keys sorted (compaction outputs and sealed files alike are written
// from a key-order walk), so merging the runs of all hint files yields keys in ascending order
// and the key directory appends them (KeyDir.setIfNewer's fast path) instead of searching for
// each: for 1M keys written in random order, a random insert costs several microseconds of
// cache misses, an append well under one. A run that is not sorted (nothing this build writes)
// costs only speed: the key directory resolves any order by seq.
//
// The merge takes cursors (KeyCursor): a version-2 hint file is decoded entry by entry in step
// with the merge (hint.ts's HintCursor), so its entries are never stored. A scanned file's
// records and a version-1 hint file's entries are kept in a run first (HintRun, behind a
// RunCursor): its entries' fields in typed arrays and its keys as offsets into a buffer (the
// hint file's bytes, or copies), so a million entries are a handful of arrays rather than a
// million objects; a scanned file's run is sorted before the merge.
import { KEY_BYTES_MAX } from '../limits.js';

/** GROW_MIN: a run's arrays start this long and double. */
const GROW_MIN = 1024;
/** WINDOW_BYTES: the bytes of a key one pass of HintRun.sort orders by (a 32-bit word). */
const WINDOW_BYTES = 4;
/**
 * LITTLE_ENDIAN: the platform's byte order, which decides where the halves of a u64 lie in a
 * Uint32Array over it (WindowSorter writes sort keys as two u32 halves, no BigInt per entry).
 */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;
/** INSERTION_SORT_MAX: groups this small are sorted in JS (insertionSort), larger ones natively. */
const INSERTION_SORT_MAX = 24;
/** LINEAR_MERGE_RUNS_MAX: up to this many runs are merged by a linear look at their heads, past it through a heap. */
const LINEAR_MERGE_RUNS_MAX = 8;
/** SCRATCH_COPY_MAX: keys up to this long are copied into the scratch key byte by byte. */
const SCRATCH_COPY_MAX = 64;

/**
 * ScratchKey lends each merged key to the visitor through one reused buffer (a view per key
 * length, made once) instead of a new Buffer view per entry: a million of those were a tenth of
 * the open's time. The visitor must copy what it keeps, as every borrower does.
 */
class ScratchKey {
  private readonly bytes = new Uint8Array(KEY_BYTES_MAX);
  private readonly views: Uint8Array[] = [];

  of(run: HintRun, i: number): Uint8Array {
    const at = run.keyAt[i] as number;
    const len = run.keyLen[i] as number;
    const src = run.bytes;
    const dst = this.bytes;
    if (len <= SCRATCH_COPY_MAX) for (let k = 0; k < len; k++) dst[k] = src[at + k] as number;
    else dst.set(src.subarray(at, at + len));
    let view = this.views[len];
    if (view === undefined) {
      view = dst.subarray(0, len);
      this.views[len] = view;
    }
    return view;
  }
}

export class HintRun {
  count = 0;
  keyAt: Uint32Array;
  keyLen: Uint32Array;
  valueOffset: Uint32Array;
  valueLen: Uint32Array;
  version: Uint32Array;
  seq: Float64Array;
  create: Float64Array;
  /** expiresAt: NaN for an entry without an expiry. */
  expiresAt: Float64Array;

  /** used: bytes of `bytes` holding copied keys (pushCopy); 0 for a hint file's run. */
  private used = 0;

  constructor(
    /** id: the data file the hint describes. */
    readonly id: number,
    /** bytes: the hint file, keys being views into it; or the keys pushCopy copied. */
    public bytes: Buffer,
    /**
     * expected: the entries to make room for at once (a hint file's trailer count), so that a
     * run of a million entries is not grown by doubling: each doubling copied eight columns.
     */
    expected = GROW_MIN,
  ) {
    const n = Math.max(GROW_MIN, expected);
    this.keyAt = new Uint32Array(n);
    this.keyLen = new Uint32Array(n);
    this.valueOffset = new Uint32Array(n);
    this.valueLen = new Uint32Array(n);
    this.version = new Uint32Array(n);
    this.seq = new Float64Array(n);
    this.create = new Float64Array(n);
    this.expiresAt = new Float64Array(n);
  }

  /** minSeq: the smallest seq of the run's entries (Infinity when it has none). */
  minSeq(): number {
    const seqs = this.seq;
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.count; i++) {
      const seq = seqs[i] as number;
      if (seq < min) min = seq;
    }
    return min;
  }

  /**
   * pushCopy adds an entry with a copy of `key` (a scan's records: their keys are views into a
   * read buffer that is refilled). Such a run is sorted by `sort` before it is merged.
   */
  pushCopy(
    key: Uint8Array,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ): void {
    if (this.used + key.length > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(GROW_MIN * 16, (this.used + key.length) * 2));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    this.bytes.set(key, this.used);
    if (this.count === this.keyAt.length) this.grow();
    const i = this.count++;
    this.keyAt[i] = this.used;
    this.keyLen[i] = key.length;
    this.used += key.length;
    this.seq[i] = seq;
    this.valueOffset[i] = valueOffset;
    this.valueLen[i] = valueLen;
    this.expiresAt[i] = expiresAt ?? Number.NaN;
    this.create[i] = create;
    this.version[i] = version;
  }

  /**
   * sort puts the entries in ascending key order (entries of one key keep their order). A
   * comparison sort of a few hundred thousand keys in JS costs as much as inserting them at
   * random, so the entries are ordered by numbers, window by window: first by the 4 bytes after
   * the prefix all keys share (a native sort of 64-bit keys, `word << 32 | index`), then each
   * group of entries whose window is equal by its next 4 bytes, and so on until the keys are
   * told apart or end (then the shorter, a prefix of the longer, comes first).
   */
  sort(): void {
    const n = this.count;
    if (n < 2) return;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const prefix = this.sharedPrefix();
    const sorter = new WindowSorter(this, order, n);
    sorter.sortRange(0, n, prefix);
    // Each stacked group shares its bytes up to `off` (padded with zeros past a key's end).
    const stack: number[] = [];
    sorter.pushTies(0, n, prefix, stack);
    while (stack.length > 0) {
      const off = stack.pop() as number;
      const to = stack.pop() as number;
      const from = stack.pop() as number;
      sorter.resolve(from, to, off, stack);
    }
    const u32 = (a: Uint32Array): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(a.length);
      for (let i = 0; i < n; i++) b[i] = a[order[i] as number] as number;
      return b;
    };
    const f64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(a.length);
      for (let i = 0; i < n; i++) b[i] = a[order[i] as number] as number;
      return b;
    };
    this.remap(u32, f64);
  }

  /** sharedPrefix: how many leading bytes every key has in common with the first (at most `max`). */
  sharedPrefix(max = Number.POSITIVE_INFINITY, ref: HintRun = this): number {
    const b = this.bytes;
    const rb = ref.bytes;
    const first = ref.keyAt[0] as number;
    let shared = Math.min(max, ref.keyLen[0] as number);
    for (let i = 0; i < this.count && shared > 0; i++) {
      const at = this.keyAt[i] as number;
      const n = Math.min(shared, this.keyLen[i] as number);
      let k = 0;
      while (k < n && rb[first + k] === b[at + k]) k++;
      shared = k;
    }
    return shared;
  }

  /**
   * sortedSharedPrefix is sharedPrefix of a sorted run: what its first and last keys share, as
   * every key between them shares it (one comparison instead of a pass over every key, which was
   * a twentieth of a crash open's merge).
   */
  sortedSharedPrefix(): number {
    const b = this.bytes;
    const first = this.keyAt[0] as number;
    const last = this.keyAt[this.count - 1] as number;
    const n = Math.min(this.keyLen[0] as number, this.keyLen[this.count - 1] as number);
    let k = 0;
    while (k < n && b[first + k] === b[last + k]) k++;
    return k;
  }

  /** word: bytes [from, from + 4) of entry i's key as a big-endian number (0 past its end). */
  word(i: number, from: number): number {
    const at = (this.keyAt[i] as number) + from;
    const left = (this.keyLen[i] as number) - from;
    const b = this.bytes;
    let w = 0;
    for (let k = 0; k < 4; k++) w = w * 256 + (k < left ? (b[at + k] as number) : 0);
    return w;
  }

  /** push adds an entry whose key is `bytes[keyAt, keyAt + keyLen)` (a HintVisitor). */
  push(
    keyAt: number,
    keyLen: number,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ): void {
    if (this.count === this.keyAt.length) this.grow();
    const i = this.count++;
    this.keyAt[i] = keyAt;
    this.keyLen[i] = keyLen;
    this.seq[i] = seq;
    this.valueOffset[i] = valueOffset;
    this.valueLen[i] = valueLen;
    this.expiresAt[i] = expiresAt ?? Number.NaN;
    this.create[i] = create;
    this.version[i] = version;
  }

  /** remap replaces every column with `u32` or `f64` of it (sorting, growing). */
  private remap(
    u32: (a: Uint32Array) => Uint32Array<ArrayBuffer>,
    f64: (a: Float64Array) => Float64Array<ArrayBuffer>,
  ): void {
    this.keyAt = u32(this.keyAt);
    this.keyLen = u32(this.keyLen);
    this.valueOffset = u32(this.valueOffset);
    this.valueLen = u32(this.valueLen);
    this.version = u32(this.version);
    this.seq = f64(this.seq);
    this.create = f64(this.create);
    this.expiresAt = f64(this.expiresAt);
  }

  expiresAtOf(i: number): number | undefined {
    const at = this.expiresAt[i] as number;
    return Number.isNaN(at) ? undefined : at;
  }

  private grow(): void {
    const n = this.keyAt.length * 2;
    const u32 = (a: Uint32Array): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(n);
      b.set(a);
      return b;
    };
    const f64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.remap(u32, f64);
  }
}

/**
 * WindowSorter orders `order[from..to)` (entry indexes of `run`) by 4-byte windows of their keys
 * (HintRun.sort). A sort key is a u64, the window's bytes big-endian in the high half and the
 * entry's index in the low half, written as two u32 halves into a buffer sorted as a
 * BigUint64Array: ascending by window, then by index, which keeps entries of one key in order.
 */
class WindowSorter {
  private readonly keys: BigUint64Array;
  private readonly halves: Uint32Array;

  constructor(
    private readonly run: HintRun,
    private readonly order: Uint32Array,
    n: number,
  ) {
    this.keys = new BigUint64Array(n);
    this.halves = new Uint32Array(this.keys.buffer);
  }

  /** sortRange orders order[from..to) by the window at `off`, then by index. */
  sortRange(from: number, to: number, off: number): void {
    const order = this.order;
    const halves = this.halves;
    const run = this.run;
    for (let i = from; i < to; i++) {
      const e = order[i] as number;
      halves[2 * i + HI] = run.word(e, off);
      halves[2 * i + LO] = e;
    }
    if (to - from <= INSERTION_SORT_MAX) insertionSort(halves, from, to);
    else this.keys.subarray(from, to).sort();
    for (let i = from; i < to; i++) order[i] = halves[2 * i + LO] as number;
  }

  /**
   * pushTies stacks every run of two or more entries in order[from..to) whose window at `off`
   * is equal (just sorted by sortRange, so their high halves are in place), to be resolved
   * from the next window.
   */
  pushTies(from: number, to: number, off: number, stack: number[]): void {
    const halves = this.halves;
    for (let i = from; i < to; ) {
      const w = halves[2 * i + HI] as number;
      let j = i + 1;
      while (j < to && halves[2 * j + HI] === w) j++;
      if (j - i > 1) stack.push(i, j, off + WINDOW_BYTES);
      i = j;
    }
  }

  /**
   * resolve orders a group whose keys agree up to `off` (past a key's end counting as zeros):
   * the keys that end by `off` are prefixes of the others, shortest first (one key: by index);
   * the rest go after them, by their next window.
   */
  resolve(from: number, to: number, off: number, stack: number[]): void {
    const order = this.order;
    const run = this.run;
    // Partition, stably: keys that end by `off` first.
    let ended = 0;
    for (let i = from; i < to; i++) if ((run.keyLen[order[i] as number] as number) <= off) ended++;
    if (ended > 0) {
      const group = Array.from(order.subarray(from, to));
      let a = from;
      let b = from + ended;
      for (const e of group) {
        if ((run.keyLen[e] as number) <= off) order[a++] = e;
        else order[b++] = e;
      }
      if (ended > 1) {
        const short = Array.from(order.subarray(from, from + ended));
        short.sort((x, y) => (run.keyLen[x] as number) - (run.keyLen[y] as number) || x - y);
        order.set(short, from);
      }
    }
    if (to - (from + ended) < 2) return;
    this.sortRange(from + ended, to, off);
    this.pushTies(from + ended, to, off, stack);
  }
}

/**
 * insertionSort sorts the u64 sort keys [from, to) of `halves` (u32 pairs, see WindowSorter) in
 * place: a group of ties is usually a few entries, for which a typed array's view and a native
 * sort call cost more than the sort.
 */
function insertionSort(halves: Uint32Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const hi = halves[2 * i + HI] as number;
    const lo = halves[2 * i + LO] as number;
    let j = i - 1;
    for (; j >= from; j--) {
      const h = halves[2 * j + HI] as number;
      if (h < hi || (h === hi && (halves[2 * j + LO] as number) <= lo)) break;
      halves[2 * (j + 1) + HI] = h;
      halves[2 * (j + 1) + LO] = halves[2 * j + LO] as number;
    }
    halves[2 * (j + 1) + HI] = hi;
    halves[2 * (j + 1) + LO] = lo;
  }
}

/**
 * KeyCursor: a position in a sorted run of entries that the open merges: a version-2 hint file
 * decoded one entry at a time (hint.ts's HintCursor) or a HintRun (RunCursor). The current
 * entry's key is `keys[keyAt, keyAt + keyLen)`, its fields the properties below (expiresAt NaN
 * when it has none); `next` moves on (false at the end; call it once before the first entry).
 */
export interface KeyCursor {
  readonly id: number;
  readonly keys: Uint8Array;
  readonly keyAt: number;
  readonly keyLen: number;
  readonly seq: number;
  readonly valueOffset: number;
  readonly valueLen: number;
  readonly expiresAt: number;
  readonly create: number;
  readonly version: number;
  /** prefix: every key of the cursor starts with the same this many bytes. */
  readonly prefix: number;
  next(): boolean;
  /** key: the current key as a view, lent until the next call to next(). */
  key(): Uint8Array;
}

/** RunCursor steps through a HintRun (a scanned file's sorted run, or a version-1 hint file's). */
export class RunCursor implements KeyCursor {
  readonly id: number;
  readonly keys: Uint8Array;
  keyAt = 0;
  keyLen = 0;
  seq = 0;
  valueOffset = 0;
  valueLen = 0;
  expiresAt = Number.NaN;
  create = 0;
  version = 0;
  readonly prefix: number;
  /** i: the current entry of the run (-1 before the first). */
  i = -1;
  private readonly scratch = new ScratchKey();

  constructor(readonly run: HintRun) {
    this.id = run.id;
    this.keys = run.bytes;
    this.prefix = run.count > 0 ? run.sortedSharedPrefix() : 0;
  }

  next(): boolean {
    const run = this.run;
    const i = this.i + 1;
    if (i >= run.count) return false;
    this.i = i;
    this.keyAt = run.keyAt[i] as number;
    this.keyLen = run.keyLen[i] as number;
    this.seq = run.seq[i] as number;
    this.valueOffset = run.valueOffset[i] as number;
    this.valueLen = run.valueLen[i] as number;
    this.expiresAt = run.expiresAt[i] as number;
    this.create = run.create[i] as number;
    this.version = run.version[i] as number;
    return true;
  }

  key(): Uint8Array {
    return this.scratch.of(this.run, this.i);
  }
}

/**
 * mergeRuns visits every entry of every run, in ascending key order across runs when each run
 * is sorted (a k-way merge). The key is lent for the call only (ScratchKey).
 */
export function mergeRuns(
  runs: readonly HintRun[],
  visit: (run: HintRun, key: Uint8Array, i: number) => void,
): void {
  mergeCursors(
    runs.map((r) => new RunCursor(r)),
    (c) => {
      const run = c as RunCursor;
      visit(run.run, run.key(), run.i);
    },
  );
}

/**
 * mergeCursors visits the current entry of every cursor, in ascending key order across them
 * when each is sorted (a k-way merge); entries of equal keys: the older file first (either
 * order resolves by seq; this one is stable). Each cursor is moved to its first entry here.
 */
export function mergeCursors(cursors: readonly KeyCursor[], visit: (cursor: KeyCursor) => void): void {
  const live = cursors.filter((c) => c.next());
  if (live.length === 0) return;
  if (live.length === 1) {
    const c = live[0] as KeyCursor;
    do visit(c);
    while (c.next());
    return;
  }
  // Keys compare by the WORD_BYTES bytes after the prefix all of them share first (one number
  // per cursor; equal words compare whole keys): keys of one store tend to share a long prefix,
  // and counters written as digits (redis-benchmark's `key:000000012345`) differ only in their
  // last few bytes.
  const first = live[0] as KeyCursor;
  let prefix = Number.POSITIVE_INFINITY;
  for (const c of live) prefix = Math.min(prefix, c.prefix, c.keyLen, commonPrefix(c, first));
  if (live.length > LINEAR_MERGE_RUNS_MAX) {
    mergeByHeap(live, prefix, visit);
    return;
  }
  // Few cursors (one per data file): the smallest head is found by looking at each, which costs
  // less than a heap's bookkeeping at these sizes.
  const words = live.map((c) => wordOf(c, prefix));
  while (live.length > 0) {
    let m = 0;
    let mc = live[0] as KeyCursor;
    let mw = words[0] as number;
    for (let k = 1; k < live.length; k++) {
      const c = live[k] as KeyCursor;
      const w = words[k] as number;
      const d = w !== mw ? w - mw : compareCursors(c, mc);
      if (d < 0 || (d === 0 && c.id < mc.id)) {
        m = k;
        mc = c;
        mw = w;
      }
    }
    visit(mc);
    if (mc.next()) words[m] = wordOf(mc, prefix);
    else {
      live.splice(m, 1);
      words.splice(m, 1);
    }
  }
}

/** commonPrefix: how many leading bytes the current keys of `a` and `b` share. */
function commonPrefix(a: KeyCursor, b: KeyCursor): number {
  const n = Math.min(a.keyLen, b.keyLen);
  let k = 0;
  while (k < n && a.keys[a.keyAt + k] === b.keys[b.keyAt + k]) k++;
  return k;
}

/**
 * WORD_BYTES: how many bytes of a key (after the shared prefix) one merge word holds: six, the
 * most a double holds exactly (2^48 < 2^53).
 */
const WORD_BYTES = 6;

/**
 * wordOf: bytes [from, from + WORD_BYTES) of the cursor's current key as a big-endian number,
 * zero past its end. Unequal words order keys as their bytes do (a key that ends is padded with
 * zeros, which never exceed a real byte); equal words say nothing.
 */
function wordOf(c: KeyCursor, from: number): number {
  const at = c.keyAt + from;
  const left = c.keyLen - from;
  const b = c.keys;
  let w = 0;
  for (let k = 0; k < WORD_BYTES; k++) w = w * 256 + (k < left ? (b[at + k] as number) : 0);
  return w;
}

/** compareCursors compares the current keys of two cursors as unsigned bytes. */
function compareCursors(a: KeyCursor, b: KeyCursor): number {
  const ab = a.keys;
  const bb = b.keys;
  const as = a.keyAt;
  const bs = b.keyAt;
  const n = Math.min(a.keyLen, b.keyLen);
  for (let k = 0; k < n; k++) {
    const d = (ab[as + k] as number) - (bb[bs + k] as number);
    if (d !== 0) return d;
  }
  return a.keyLen - b.keyLen;
}

/**
 * mergeByHeap is mergeCursors for many cursors: a binary min-heap of them (ties: older file
 * first), each position's word (wordOf after `prefix`) kept beside it so that most comparisons
 * are of two numbers.
 */
function mergeByHeap(cursors: KeyCursor[], prefix: number, visit: (cursor: KeyCursor) => void): void {
  const heap = cursors;
  const words = new Float64Array(heap.length);
  for (let i = 0; i < heap.length; i++) words[i] = wordOf(heap[i] as KeyCursor, prefix);
  const less = (x: number, y: number): boolean => {
    const wx = words[x] as number;
    const wy = words[y] as number;
    if (wx !== wy) return wx < wy;
    const a = heap[x] as KeyCursor;
    const b = heap[y] as KeyCursor;
    const c = compareCursors(a, b);
    return c < 0 || (c === 0 && a.id < b.id);
  };
  const down = (from: number): void => {
    for (let i = from; ; ) {
      const l = 2 * i + 1;
      let m = i;
      if (l < heap.length && less(l, m)) m = l;
      if (l + 1 < heap.length && less(l + 1, m)) m = l + 1;
      if (m === i) return;
      const c = heap[i] as KeyCursor;
      heap[i] = heap[m] as KeyCursor;
      heap[m] = c;
      const w = words[i] as number;
      words[i] = words[m] as number;
      words[m] = w;
      i = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  while (heap.length > 0) {
    const c = heap[0] as KeyCursor;
    visit(c);
    if (c.next()) words[0] = wordOf(c, prefix);
    else {
      const last = heap.pop() as KeyCursor;
      if (heap.length === 0) return;
      heap[0] = last;
      words[0] = words[heap.length] as number;
    }
    down(0);
  }
}
