// GroupCommit: the cask engine's write queue. A write is encoded at once (encodeWrite: its
// records, their seq being the write's commit timestamp) and queued; a single flush loop appends
// every queued write with one `write` and one `fdatasync`, then applies them to the store state
// in queue order and resolves their promises. So in `always` mode a reader never sees a value
// before it is durable, and a crash loses only writes that were never acknowledged.
//
// Barriers share the queue so that they happen in write order: `sync` (fdatasync for the
// `interval` timer and flush()) and `rotate` (seal the active file, for compaction).
//
// Failure: a failed append is cut off again (truncate, fdatasync) so the file ends at its last
// acknowledged record, and only the writes of that append fail. If even the repair fails the
// file's end is unknown: the store is failed (StoreFailedError) for every later write until a
// reopen runs recovery; reads go on.
import type { Clock, Timer } from '../../io/clock.js';
import { assert } from '../../stdx/assert.js';
import { bytesEqual } from '../../stdx/bytes.js';
import type { EventLoop } from '../../stdx/event-loop.js';
import { keyString } from '../../stdx/key-string.js';
import type { Durability, WriteOp } from '../engine.js';
import { IoError, StoreFailedError } from '../errors.js';
import { FORMAT_REVISION, FORMAT_TYPED } from '../meta.js';
import type { CaskEvent } from './cask-options.js';
import type { DataFile } from './data-file-set.js';
import {
  BATCH_MEMBER,
  DATA_HEADER_BYTES,
  encodeRecord,
  extraBytes,
  Kind,
  RECORD_HEADER_BYTES,
  recordBytes,
  VALUE_TYPE_BYTES,
} from './record.js';
import type { CaskStore, DurableOp, DurableWrite } from './store-state.js';

/** GROUP_BYTES_MAX: the most bytes one group commit appends; larger queues take several. */
const GROUP_BYTES_MAX = 32 * 1024 * 1024;
/**
 * PREALLOCATE_BYTES: the active file is extended with zeros this far ahead of its appends.
 * fdatasync of an append that grows a file must also commit the new size to the file system's
 * journal; overwriting already-allocated zeros does not. Measured on this machine under load:
 * 3.9 ms per append+fdatasync against 1.0 ms per overwrite+fdatasync. (PostgreSQL pre-zeroes
 * its WAL segments for the same reason.) Recovery treats a zero tail as unused space.
 */
const PREALLOCATE_BYTES = 2 * 1024 * 1024;
const ZEROS = Buffer.alloc(PREALLOCATE_BYTES);

/**
 * Part: consecutive queued writes that are appended together and settle together, with one
 * promise (issue 14: a promise and two closures per write were a measurable share of a SET's
 * cost). A part never spans a barrier, is never split between appends (a part that does not fit
 * the active file goes whole to the next one), and stops taking writes once the flush loop has
 * taken it, so its promise resolves exactly when every write in it is durable and applied.
 */
interface Part {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  /** bytes: the encoded bytes of its writes (at most partBytesMax, unless one write is larger). */
  bytes: number;
  /**
   * buf: its writes' records, encoded here one after another as they are queued (`bytes` of it
   * used), so that a part is appended with one `write` of one buffer: no buffer per write and no
   * concatenation per group (issue 14: 0.5 KB of a SET's allocations). It grows by
   * PART_BUFFER_GROWTH; the writes queued before a growth keep the older buffer, whose bytes are
   * the same.
   */
  buf: Buffer;
}

/**
 * PART_BUFFER_MIN: the smallest first buffer of a part (a lone write's part at a light load: one
 * Buffer from Node's pool).
 */
const PART_BUFFER_MIN = 2 * 1024;
/**
 * PART_BUFFER_SLACK: a part's first buffer is the size of the part before it times this, so a
 * steady load fills one buffer per part.
 */
const PART_BUFFER_SLACK = 1.25;
/** PART_BUFFER_GROWTH: a full part buffer is replaced by one this many times larger. */
const PART_BUFFER_GROWTH = 4;

/**
 * PUBLISH_PREFETCH_KEYS: publish prefetches the keys of about this many operations at a time
 * before it applies them (CaskStore.prefetchWrites): enough misses to overlap, few enough that
 * what it touched is still cached when their turn comes. Counted in keys, not writes: a write
 * may hold one key or many (MSET, a server's run of SETs).
 */
const PUBLISH_PREFETCH_KEYS = 16;

/** A queued write: its encoded records, and the part it settles with. */
interface QueuedWrite extends DurableWrite {
  readonly part: Part;
}

function newPart(buf: Buffer): Part {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, bytes: 0, buf };
}

/**
 * reserve makes room for `len` more bytes in `part`'s buffer and returns that buffer (the bytes
 * already used are copied into a larger one when they must). A buffer grows past `max` (the
 * largest part) only to hold a single write that is larger.
 */
function reserve(part: Part, len: number, max: number): Buffer {
  const need = part.bytes + len;
  if (need <= part.buf.length) return part.buf;
  const grown = Buffer.allocUnsafe(
    Math.max(need, Math.min(max, Math.max(PART_BUFFER_MIN, part.buf.length * PART_BUFFER_GROWTH))),
  );
  part.buf.copy(grown, 0, 0, part.bytes);
  part.buf = grown;
  return grown;
}

/** A queued request for the flush loop other than a write. */
interface Barrier {
  readonly barrier: 'rotate' | 'sync';
  /**
   * atDone: run synchronously once the barrier is done, before any later write is applied: it
   * sees the store exactly as of the barrier (a backup cuts its file list there).
   */
  readonly atDone?: (() => void) | undefined;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type QueueItem = QueuedWrite | Barrier;

export interface GroupCommitOptions {
  readonly durability: Durability;
  /** syncInline: fdatasync with a synchronous call on the event loop (CaskOptions.syncOnEventLoop). */
  readonly syncInline: boolean;
  /** afterCall: the flush loop runs in a microtask, not the check phase (CaskOptions.commitAfterCall). */
  readonly afterCall: boolean;
  /** syncIntervalMs: in `interval` mode, how often dirty bytes are fsynced; undefined: no timer. */
  readonly syncIntervalMs: number | undefined;
  readonly clock: Clock;
  /** loop: the turn the flush loop waits for (CaskOptions.loop). */
  readonly loop: EventLoop;
  readonly onEvent: ((event: CaskEvent) => void) | undefined;
  /** afterGroup: told after every group committed (the engine's compaction trigger). */
  readonly afterGroup: () => void;
  /** onSealed: told the id of each data file sealed by a rotation (for its hint file). */
  readonly onSealed?: (id: number) => void;
}

/**
 * encodedSize is the size of the records of a write of `kept` (lastOpPerKey's): one BATCH record
 * first when it has several ops.
 */
function encodedSize(kept: readonly WriteOp[]): number {
  let size = kept.length > 1 ? recordBytes(0, 4) : 0;
  for (const op of kept) {
    size +=
      op.type === 'put'
        ? recordBytes(
            op.key.length,
            op.value.length + (op.valueType ? VALUE_TYPE_BYTES : 0),
            op.expiresAt !== undefined,
            true,
          )
        : recordBytes(op.key.length, 0);
  }
  return size;
}

/**
 * encodeInto encodes a stamped write's records (seq `ts`) at `at` in `bytes` (`size` bytes, from
 * encodedSize). Ops a later op on the same key overrides were dropped (`kept`: see lastOpPerKey).
 * The keys and values are copied into the records here, so the caller may reuse its buffers at
 * once.
 */
function encodeInto(
  bytes: Buffer,
  at: number,
  size: number,
  ts: number,
  kept: readonly WriteOp[],
): DurableOp[] {
  const asBatch = kept.length > 1;
  let pos = at;
  if (asBatch) {
    const count = Buffer.alloc(4);
    count.writeUInt32LE(kept.length, 0);
    pos = encodeRecord(bytes, pos, ts, Kind.BATCH, new Uint8Array(0), count);
  }
  const durable: DurableOp[] = [];
  for (let i = 0; i < kept.length; i++) {
    const op = kept[i] as WriteOp;
    const kind = op.type === 'put' ? Kind.PUT : Kind.DELETE;
    const value = op.type === 'put' ? op.value : undefined;
    const expiresAt = op.type === 'put' ? op.expiresAt : undefined;
    const create = op.type === 'put' ? op.create : 0;
    const version = op.type === 'put' ? op.version : 0;
    const valueType = op.type === 'put' ? (op.valueType ?? 0) : 0;
    const valueAt =
      pos + RECORD_HEADER_BYTES + extraBytes(expiresAt !== undefined, version !== 0) + op.key.length;
    const rawKind = asBatch ? kind | BATCH_MEMBER : kind;
    pos = encodeRecord(bytes, pos, ts, rawKind, op.key, value, expiresAt, create, version, valueType);
    // The key is read back from `bytes`, so the caller may reuse its buffer at once. This view
    // keeps the part's buffer alive while queued; the key directory's insert copies it, so
    // nothing keeps the buffer afterwards but the value cache's own copy.
    const key = bytes.subarray(valueAt - op.key.length, valueAt);
    durable.push({
      key,
      kind,
      valueAt: valueAt - at,
      valueLen: (value?.length ?? 0) + (valueType === 0 ? 0 : VALUE_TYPE_BYTES),
      expiresAt,
      create,
      version,
      valueType,
    });
  }
  assert(pos === at + size, 'encoded size mismatch');
  return durable;
}

/**
 * DISTINCT_BY_COMPARE_MAX: a write of up to this many operations is checked for repeated keys
 * by comparing their bytes pairwise (at most 120 comparisons, most ended by the length or the
 * last byte) instead of a key string and a set entry per key: a pipelined run of SETs or an
 * MSET of a few keys (issue 14).
 */
const DISTINCT_BY_COMPARE_MAX = 16;

/** distinctKeys: no two of `ops` name the same key. */
function distinctKeys(ops: readonly WriteOp[]): boolean {
  for (let i = 1; i < ops.length; i++) {
    const key = (ops[i] as WriteOp).key;
    for (let j = 0; j < i; j++) {
      const other = (ops[j] as WriteOp).key;
      // The last byte first: keys that share a prefix (counters, ids) differ at their ends.
      if (
        other.length === key.length &&
        other[other.length - 1] === key[key.length - 1] &&
        bytesEqual(other, key)
      )
        return false;
    }
  }
  return true;
}

/**
 * lastOpPerKey drops operations that a later operation on the same key in the same write
 * overrides. Members of a batch share one sequence number, so on disk "later in the batch"
 * could not otherwise be told apart from "earlier" once recovery reads them back.
 */
function lastOpPerKey(ops: readonly WriteOp[]): readonly WriteOp[] {
  if (ops.length === 1) return ops;
  if (ops.length <= DISTINCT_BY_COMPARE_MAX && distinctKeys(ops)) return ops;
  const seen = new Set<string>();
  const kept: WriteOp[] = [];
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i] as WriteOp;
    const name = keyString(op.key);
    if (seen.has(name)) continue;
    seen.add(name);
    kept.push(op);
  }
  return kept.length === ops.length ? ops : kept.reverse();
}

export class GroupCommit {
  private queue: QueueItem[] = [];
  /** open: the part the next write joins, if any (the newest part still in the queue). */
  private open: Part | undefined;
  /** closedBytes: the size of the last part closed to writes (it sizes the next one's buffer). */
  private closedBytes = 0;
  /**
   * partBytesMax: a part that size or smaller fits a fresh data file, so an append never has to
   * split one (GROUP_BYTES_MAX, or less for small data files).
   */
  private readonly partBytesMax: number;
  private flushing: Promise<void> | undefined;
  /** chained: the commit of a group started by chainNext, which the flush loop awaits next. */
  private chained: Promise<void> | undefined;
  private failure: StoreFailedError | undefined;
  /** dirty: bytes were written to the active file since its last fdatasync. */
  private dirty = false;
  private readonly syncTimer: Timer | undefined;
  /** preallocateOff: the id of the data file where preallocation failed (and is not tried again). */
  private preallocateOff: number | undefined;
  /** writes: writes made durable and visible since open. */
  writes = 0;
  fsyncs = 0;
  groupCommits = 0;

  constructor(
    private readonly store: CaskStore,
    private readonly options: GroupCommitOptions,
  ) {
    this.partBytesMax = Math.max(1, Math.min(GROUP_BYTES_MAX, store.dataFileBytes - DATA_HEADER_BYTES));
    if (options.durability === 'interval' && options.syncIntervalMs !== undefined) {
      this.syncTimer = options.clock.every(options.syncIntervalMs, () => {
        if (this.dirty) this.sync().catch(() => {});
      });
    }
  }

  /** failed: the StoreFailedError that refuses every write, once a failed append could not be undone. */
  get failed(): StoreFailedError | undefined {
    return this.failure;
  }

  /** busy: writes or barriers are queued or being committed. */
  get busy(): boolean {
    return this.flushing !== undefined;
  }

  /**
   * enqueue encodes a stamped write (seq `ts`) and queues it; it resolves once the write is
   * durable and applied. Writes queued together share the promise (see Part): callers must not
   * tell writes apart by it.
   */
  enqueue(ts: number, ops: readonly WriteOp[]): Promise<void> {
    const kept = lastOpPerKey(ops);
    const len = encodedSize(kept);
    let part = this.open;
    if (part === undefined || (part.bytes > 0 && part.bytes + len > this.partBytesMax)) {
      this.closeOpen(); // a full part
      const hinted = Math.min(this.partBytesMax, Math.ceil(this.closedBytes * PART_BUFFER_SLACK));
      part = newPart(Buffer.allocUnsafe(Math.max(len, PART_BUFFER_MIN, hinted)));
      this.open = part;
    }
    const bytes = reserve(part, len, this.partBytesMax);
    const at = part.bytes;
    const durable = encodeInto(bytes, at, len, ts, kept);
    let typed = false;
    for (const op of durable) if (op.valueType !== 0) typed = true;
    part.bytes += len;
    // One object shape for every queued write (a spread copy measured ~1.5 µs per write in the
    // profile of 64 durable writers).
    this.queue.push({ bytes, at, len, seq: ts, ops: durable, typed, part });
    this.kick();
    return part.promise;
  }

  /** closeOpen: the open part takes no more writes (the next write starts a part). */
  private closeOpen(): void {
    if (this.open !== undefined) this.closedBytes = this.open.bytes;
    this.open = undefined;
  }

  /** sync fdatasyncs the active file after every write queued before it (if anything is unsynced). */
  sync(): Promise<void> {
    return this.enqueueBarrier('sync');
  }

  /**
   * rotate seals the active data file and starts a new one, in write order; `atDone` runs in the
   * same synchronous step as the new file takes over (see Barrier.atDone).
   */
  rotate(atDone?: () => void): Promise<void> {
    return this.enqueueBarrier('rotate', atDone);
  }

  /**
   * close waits for everything queued, then leaves the active file durable and trimmed of its
   * preallocated zeros (unless the store failed: recovery will find its end). It returns
   * whether the file is known good (so its end may be noted in the metadata).
   */
  async close(): Promise<boolean> {
    this.syncTimer?.cancel();
    while (this.flushing !== undefined) await this.flushing;
    if (this.failure !== undefined) return false;
    await this.trimActive();
    if (this.dirty) {
      await this.store.active.file.datasync();
      this.fsyncs++;
    }
    return true;
  }

  /** cancelTimer stops the interval sync (a store closed without writing anything). */
  cancelTimer(): void {
    this.syncTimer?.cancel();
  }

  private enqueueBarrier(barrier: Barrier['barrier'], atDone?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Writes after the barrier form a new part: a part settles in one append.
      this.closeOpen();
      this.queue.push({ barrier, atDone, resolve, reject });
      this.kick();
    });
  }

  /**
   * kick schedules the flush loop for the check phase of this event-loop turn, so that every
   * write issued during the turn (and the microtasks it spawns) joins one group commit; with
   * `afterCall`, for the microtask after the current synchronous call (its writes form the group).
   */
  private kick(): void {
    if (this.flushing !== undefined) return;
    const start = this.options.afterCall ? Promise.resolve() : this.options.loop.nextTurn();
    this.flushing = start
      .then(() => this.flushLoop())
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.kick();
      });
  }

  /**
   * flushLoop commits what is queued now; writes queued meanwhile wait for the next turn, except
   * that a group whose fdatasync ran in the thread pool starts the next one as it publishes (see
   * chainNext).
   */
  private async flushLoop(): Promise<void> {
    let items = this.queue.length;
    while (items > 0 && this.queue.length > 0) {
      const group = this.takeGroup();
      items -= group.length;
      const first = group[0] as QueueItem;
      if ('barrier' in first) await this.runBarrier(first);
      else await this.commitGroup(group as QueuedWrite[]);
      // Groups chained by commitGroup ran outside `items`; each one waited for the disk, so
      // whatever is queued now came in meanwhile.
      while (this.chained !== undefined) {
        const chained = this.chained;
        this.chained = undefined;
        await chained;
        items = this.queue.length;
      }
    }
  }

  /**
   * takeGroup takes the next group off the queue: a barrier alone, or whole parts of writes up to
   * GROUP_BYTES_MAX (at least one part).
   */
  private takeGroup(): QueueItem[] {
    let bytes = 0;
    let n = 0;
    let part: Part | undefined;
    while (n < this.queue.length) {
      const item = this.queue[n] as QueueItem;
      if ('barrier' in item) {
        if (n === 0) n = 1;
        break;
      }
      // Whole parts only; a new part is taken while the group is under GROUP_BYTES_MAX.
      if (item.part !== part && n > 0 && bytes >= GROUP_BYTES_MAX) break;
      part = item.part;
      bytes += item.len;
      n++;
    }
    // A part the loop has taken takes no more writes: they would settle with an append that
    // does not hold them.
    this.closeOpen();
    return this.queue.splice(0, n);
  }

  /**
   * chainNext starts the next group of writes, if any is queued, right after a group that waited
   * for an fdatasync in the thread pool has published, in the same synchronous step: the next
   * group's append and fdatasync are then under way while the published group's replies are
   * written (its parts' callbacks run as microtasks, after this step). Started a turn later, as
   * the loop otherwise would, every group waited for the previous one's replies: measured with
   * `redis-benchmark -t set -c 50 -P 1` against `--sync always`, 0.6 ms between one fdatasync's
   * end and the next one's start, beside 0.8 ms for the fdatasync itself. Barriers wait for the
   * loop, in queue order. The cost: a writer in this process that writes again as soon as its
   * write settles (a callback on the promise) now joins the group after the chained one, where it
   * used to join the next; network clients' next commands arrive in later turns either way, and
   * writers that all settle together (64 embedded writers, `bench/engine-durable-ab.mjs`) still
   * form one group each round.
   */
  private chainNext(): void {
    if (this.failure !== undefined || this.chained !== undefined) return;
    const head = this.queue[0];
    if (head === undefined || 'barrier' in head) return;
    this.chained = this.commitGroup(this.takeGroup() as QueuedWrite[]);
  }

  private async runBarrier(item: Barrier): Promise<void> {
    try {
      if (this.failure !== undefined) throw this.failure;
      if (item.barrier === 'rotate') await this.rotateNow();
      else if (this.dirty) {
        this.dirty = false;
        const covered = this.store.durableTs;
        await this.datasyncDirty(this.store.active);
        this.synced(covered);
        this.fsyncs++;
      }
      item.atDone?.();
      item.resolve();
    } catch (err) {
      item.reject(
        err instanceof StoreFailedError ? err : new IoError(`${item.barrier} failed: ${String(err)}`, err),
      );
    }
  }

  /** commitGroup appends a group of writes, makes them durable, then applies them. */
  private async commitGroup(group: QueuedWrite[]): Promise<void> {
    if (this.failure !== undefined) {
      rejectAll(group, this.failure);
      return;
    }
    // A store of an older format is raised to FORMAT_REVISION before its first write by this
    // build (every PUT carries a revision field), so that an older build refuses the store
    // rather than "repair" records it cannot read.
    // Likewise a store is raised to FORMAT_TYPED before the group that writes its first typed
    // record (a hash): a format-3 build would take the TYPED flag for damage. Stores that hold
    // only strings stay readable by format-3 builds.
    const current = this.store.meta.format;
    const format =
      current < FORMAT_TYPED && group.some((item) => item.typed) ? FORMAT_TYPED : FORMAT_REVISION;
    if (current < format) {
      try {
        await this.store.upgradeFormat(format);
      } catch (err) {
        rejectAll(group, new IoError(`could not raise the store format: ${String(err)}`, err));
        return;
      }
    }
    // Writes that do not fit the active file go to a fresh one; a group never straddles files
    // except by sealing the first file durably before the rest is written.
    const dataFileBytes = this.store.dataFileBytes;
    let from = 0;
    while (from < group.length) {
      const start = this.store.active.size;
      let end = start;
      let to = from;
      while (to < group.length) {
        // A whole part at a time (parts are consecutive in the queue).
        const part = (group[to] as QueuedWrite).part;
        let next = to;
        let len = 0;
        while (next < group.length && (group[next] as QueuedWrite).part === part) {
          len += (group[next] as QueuedWrite).len;
          next++;
        }
        if (end + len > dataFileBytes && end > DATA_HEADER_BYTES) break;
        end += len;
        to = next;
      }
      if (to === from) {
        if (!(await this.tryRotate(group.slice(from)))) return;
        continue;
      }
      const part = group.slice(from, to);
      const ok = await this.appendDurably(part, start, end);
      if (!ok) {
        rejectAll(
          group.slice(to),
          this.failure ?? new IoError('an earlier write in the group failed', undefined),
        );
        return;
      }
      this.publish(part, start);
      if (this.options.durability === 'always') this.synced(this.store.durableTs);
      from = to;
      if (from < group.length && !(await this.tryRotate(group.slice(from)))) return;
    }
    this.groupCommits++;
    this.options.afterGroup();
    // Its fdatasync ran in the thread pool: this is a later turn, and what is queued came in
    // meanwhile.
    if (this.options.durability === 'always' && !this.options.syncInline) this.chainNext();
  }

  private async appendDurably(part: QueuedWrite[], start: number, end: number): Promise<boolean> {
    const data = this.store.active;
    const always = this.options.durability === 'always';
    const bytes = appendBytes(part, end - start);
    try {
      // Extend the file with zeros when the append passes the allocated end (best effort: see
      // preallocate).
      let zeros: Buffer | undefined;
      if (end > data.allocated && this.preallocateOff !== data.id) {
        const target = Math.max(end, Math.min(data.allocated + PREALLOCATE_BYTES, this.store.dataFileBytes));
        zeros = target > end ? ZEROS.subarray(0, target - end) : undefined;
      }
      // The append itself is a synchronous write (into the page cache: microseconds), so the
      // group's bytes are in the file before anything else runs. The fdatasync either runs on
      // the event loop too (syncInline) or in libuv's thread pool, where the loop meanwhile
      // serves reads and parses the commands that will form the next group.
      // Before the bytes land: a file's minSeq may err low, never high (a failed append that is
      // cut off again leaves it low, which only keeps a tombstone longer). The part is in seq order.
      const firstSeq = (part[0] as QueuedWrite).seq;
      if (firstSeq < data.minSeq) data.minSeq = firstSeq;
      data.file.writeSync(bytes, start);
      data.size = end;
      data.allocated = Math.max(data.allocated, end);
      if (zeros !== undefined) this.preallocateSync(data, zeros, end);
      if (always) {
        if (this.options.syncInline) data.file.datasyncSync();
        else await data.file.datasync();
      }
      if (always) this.fsyncs++;
      else this.dirty = true;
      return true;
    } catch (err) {
      // Undo the partial append so that the file ends at its last acknowledged record again;
      // if even that fails the write path cannot be trusted until recovery runs.
      try {
        if (this.options.syncInline) {
          data.file.truncateSync(start);
          data.file.datasyncSync();
        } else {
          await data.file.truncate(start);
          await data.file.datasync();
        }
        data.size = start;
        data.allocated = start;
        rejectAll(part, new IoError(`write failed: ${String((err as Error).message ?? err)}`, err));
        this.options.onEvent?.({ type: 'write-failed', detail: { error: String(err), failed: false } });
      } catch (repairErr) {
        rejectAll(part, this.failStore(repairErr, err));
      }
      return false;
    }
  }

  /**
   * preallocateSync writes `zeros` past the data at `end`. It is an optimization (an fdatasync
   * that need not commit a new file size is ~4x cheaper), so a failure (a disk with less than
   * PREALLOCATE_BYTES free) must not fail the write: the zeros are cut off again and the file
   * grows append by append until it is sealed.
   */
  private preallocateSync(data: DataFile, zeros: Buffer, end: number): void {
    try {
      data.file.writeSync(zeros, end);
      data.allocated = Math.max(data.allocated, end + zeros.length);
    } catch {
      this.preallocateOff = data.id;
      try {
        data.file.truncateSync(end);
      } catch {
        // Some zeros may remain past `end`: free space to recovery, cut at sealing.
        data.allocated = Math.max(data.allocated, end + zeros.length);
      }
    }
  }

  private async tryRotate(rest: QueuedWrite[]): Promise<boolean> {
    try {
      await this.rotateNow();
      return true;
    } catch (err) {
      rejectAll(rest, new IoError(`could not start a new data file: ${String(err)}`, err));
      return false;
    }
  }

  private async rotateNow(): Promise<void> {
    const old = this.store.active;
    if (old.size === DATA_HEADER_BYTES) return; // nothing to seal
    await this.trimActive();
    if (this.dirty) {
      const covered = this.store.durableTs;
      await this.datasyncDirty(old);
      this.synced(covered);
      this.fsyncs++;
      this.dirty = false;
    }
    await this.store.startDataFile();
    this.options.onSealed?.(old.id);
  }

  /**
   * datasyncDirty fdatasyncs a data file that holds acknowledged writes not yet on stable storage
   * (`interval` and `never`, or a file being sealed). If that fails the store fails: Linux may
   * drop the dirty pages and their error after reporting it once, so a later fdatasync could
   * succeed without those writes ever reaching the disk, and syncedTs (a cluster member's replay
   * floor) would then count writes a power cut takes away (PostgreSQL's "fsyncgate" lesson).
   */
  private async datasyncDirty(data: DataFile): Promise<void> {
    try {
      await data.file.datasync();
    } catch (err) {
      throw this.failStore(err, err);
    }
  }

  /**
   * failStore refuses every later write (and the queued ones) until a reopen runs recovery:
   * the end or the durability of the active file is no longer known. `cause` is what failed,
   * `first` the error that started it (reported in the event).
   */
  private failStore(cause: unknown, first: unknown): StoreFailedError {
    this.failure ??= new StoreFailedError(cause);
    const failure = this.failure;
    this.closeOpen();
    for (const item of this.queue.splice(0)) {
      if ('barrier' in item) item.reject(failure);
      else item.part.reject(failure);
    }
    this.options.onEvent?.({ type: 'write-failed', detail: { error: String(first), failed: true } });
    return failure;
  }

  /** synced: every write published up to `ts` is now fdatasynced. */
  private synced(ts: number): void {
    if (ts > this.store.syncedTs) this.store.syncedTs = ts;
  }

  /** trimActive cuts the active file's preallocated zeros off, for sealing or closing. */
  private async trimActive(): Promise<void> {
    const data = this.store.active;
    if (data.allocated === data.size) return;
    await data.file.truncate(data.size);
    data.allocated = data.size;
    this.dirty = true;
  }

  /**
   * publish applies durable writes to the store, in queue order, and resolves their parts (each
   * once its last write is applied; the promise callbacks run later, as microtasks).
   */
  private publish(writes: QueuedWrite[], start: number): void {
    let at = start;
    const fileId = this.store.active.id;
    // writes[i..prefetchedTo) have had their keys prefetched. A lone write of one key has nothing
    // to overlap with.
    let prefetchedTo = 0;
    const prefetch = writes.length > 1 || (writes[0] as QueuedWrite).ops.length > 1;
    for (let i = 0; i < writes.length; i++) {
      // The next writes' keys first, so that their lookups' cache misses overlap (prefetchWrites).
      if (i === prefetchedTo && prefetch)
        prefetchedTo = this.store.prefetchWrites(writes, i, PUBLISH_PREFETCH_KEYS);
      const w = writes[i] as QueuedWrite;
      this.store.apply(w, fileId, at);
      this.store.durableTs = w.seq;
      at += w.len;
      this.writes++;
      if (i + 1 === writes.length || (writes[i + 1] as QueuedWrite).part !== w.part) w.part.resolve();
    }
  }
}

/**
 * appendBytes: the records of `writes` (whole parts, in queue order; `size` bytes in all) as one
 * buffer: a view of its part's buffer when they are one part (no copy), else a concatenation of
 * their parts' buffers.
 */
function appendBytes(writes: readonly QueuedWrite[], size: number): Buffer {
  const first = writes[0] as QueuedWrite;
  const last = writes[writes.length - 1] as QueuedWrite;
  if (first.part === last.part) {
    assert(first.at === 0 && first.part.bytes === size, 'an append holds whole parts');
    return first.part.buf.subarray(0, size);
  }
  const parts: Buffer[] = [];
  for (const w of writes) {
    if (w.at === 0) parts.push(w.part.buf.subarray(0, w.part.bytes));
  }
  const bytes = Buffer.concat(parts, size);
  assert(bytes.length === size, 'an append holds whole parts');
  return bytes;
}

/** rejectAll fails the parts of `writes` (whole parts: see Part). */
function rejectAll(writes: readonly QueuedWrite[], err: unknown): void {
  let last: Part | undefined;
  for (const w of writes) {
    if (w.part === last) continue;
    last = w.part;
    w.part.reject(err);
  }
}
