// DiskLog is the durable LogStorage of a replica: the Raft core reads it synchronously from a
// LogCache in memory; every change is written to the WAL (wal.ts) as one batch. The in-memory
// view changes at the call, before the write completes, so that a leader can send MsgApp for its
// entries while its own fsync runs (etcd does the same; docs/raft.md, "The Ready contract").
//
// Snapshot markers and compaction: compact() writes a marker (the current snapshot and the new
// log start) and the current hard state into the active segment and syncs it BEFORE it deletes
// any sealed segment, so a restart knows the snapshot, the log start and the hard state even
// when the segments that first recorded them are gone (no separate META file).
import type { FileSystem } from '../io/file-system.js';
import type { LogStorage } from '../raft/log-storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import { LimitError } from '../storage/errors.js';
import type { LogCache } from './log-cache.js';
import { Wal, type WalOptions, type WalRecovery } from './wal.js';
import {
  encodeBatch,
  MAX_CONF_NODES,
  MAX_ENTRY_BYTES,
  MAX_SNAPSHOT_DATA_BYTES,
  type WalFrame,
} from './wal-format.js';

/** MAX_BATCH_BYTES bounds the entry data of one save: the batch is encoded into one buffer. */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;

/** QueuedBatch: one change's encoded frames waiting for the WAL writer. */
interface QueuedBatch {
  readonly batch: Uint8Array | undefined;
  readonly sync: boolean;
  /** nextIndex: the log's lastIndex + 1 after this change (a rotation names the next segment by it). */
  readonly nextIndex: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class DiskLog implements LogStorage {
  /**
   * busy: a createSnapshot or compact is in flight (the caller runs them alone: no save may be
   * queued beside one).
   */
  private busy = false;
  /**
   * queue: saves whose memory change is made and whose frames wait for the WAL. Saves may be
   * queued while earlier ones are being written (the pipelined driver, docs/cluster.md): the
   * writer takes everything queued at once, one write and one fdatasync, and resolves the
   * saves in order. A batch is written only after the previous write (and its fdatasync) is
   * done, so the file never holds an unsynced batch behind another unsynced one: a power cut
   * can only tear the tail (wal.md), never leave a hole before later frames.
   */
  private queue: QueuedBatch[] = [];
  /** writing: the writer loop is running (it ends when the queue is empty). */
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly wal: Wal,
    private readonly log: LogCache,
    /** recovery: what open found and repaired. */
    readonly recovery: WalRecovery,
  ) {}

  /** open recovers the log in dir (see Wal.open); a WalCorruptError means it refused. */
  static async open(fs: FileSystem, dir: string, options?: WalOptions): Promise<DiskLog> {
    const { wal, log, recovery } = await Wal.open(fs, dir, options);
    return new DiskLog(wal, log, recovery);
  }

  // ---- LogStorage, answered from memory ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.log.initialState();
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.log.entries(lo, hi, maxSize);
  }

  term(i: number): number | undefined {
    return this.log.term(i);
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  snapshot(): Snapshot {
    return this.log.snapshot();
  }

  hardState(): HardState {
    return this.log.hardState();
  }

  /** segmentCount is the number of segment files (for tests and status). */
  segmentCount(): number {
    return this.wal.segmentCount();
  }

  // ---- changes ----

  /**
   * save persists one Ready's persistence part: a snapshot installed from the leader (ignored if
   * not newer than the current one), entries (an entry at an existing index replaces it and the
   * suffix; entries inside the snapshot are skipped) and the hard state. Memory changes now; the
   * frames and a commit frame go to disk in one write, datasynced if sync (Ready.mustSync). The
   * entries and the snapshot are kept, not copied: the caller hands them over.
   */
  save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
    sync: boolean,
  ): Promise<void> {
    // Checked before anything changes, so that a refused save leaves the log as it was.
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (e.data.length > MAX_ENTRY_BYTES) {
        return Promise.reject(
          new LimitError(`entry ${e.index} has ${e.data.length} bytes (max ${MAX_ENTRY_BYTES})`),
        );
      }
      assert(
        i === 0 ? e.index >= 1 : e.index === (entries[i - 1] as Entry).index + 1,
        'save: entries not contiguous',
      );
      bytes += e.data.length;
    }
    if (bytes > MAX_BATCH_BYTES) {
      return Promise.reject(new LimitError(`save of ${bytes} bytes of entries (max ${MAX_BATCH_BYTES})`));
    }
    if (snapshot !== undefined) {
      const err = snapshotLimitError(snapshot.metadata.confState, snapshot.data);
      if (err !== undefined) return Promise.reject(err);
    }
    return this.write(() => {
      const frames: WalFrame[] = [];
      // A snapshot from the leader is always synced: the Ready's mustSync does not count it
      // (etcd's MustSync neither; its WAL syncs snapshots on its own), yet the acknowledgement
      // that follows tells the leader this member holds everything up to the snapshot's index.
      // (Found by the replica simulator: a power cut after an unsynced install left a log
      // shorter than the commit index the leader then sent.)
      let mustSync = sync;
      if (snapshot !== undefined && this.log.applySnapshot(snapshot)) {
        frames.push({ type: 'snapshot', marker: { snapshot, logStart: snapshot.metadata, reset: true } });
        mustSync = true;
      }
      for (const entry of this.log.append(entries)) frames.push({ type: 'entry', entry });
      if (hardState !== undefined) {
        this.log.setHardState(hardState);
        frames.push({ type: 'hardState', hardState });
      }
      return { frames, sync: mustSync };
    });
  }

  /**
   * createSnapshot records the application's snapshot at applied index i (at most lastIndex) with
   * its membership and small data (a manifest id), durably, as MemoryStorage.createSnapshot does:
   * an index not newer than the current snapshot returns the current one and writes nothing.
   */
  async createSnapshot(i: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    const err = snapshotLimitError(confState, data);
    if (err !== undefined) throw err;
    let snap: Snapshot | undefined;
    await this.enqueue(() => {
      snap = this.log.createSnapshot(i, confState, data);
      if (snap === undefined) return { frames: [], sync: false };
      return {
        frames: [
          { type: 'snapshot', marker: { snapshot: snap, logStart: this.log.logStart(), reset: false } },
        ],
        sync: true,
      };
    }, true);
    return snap ?? this.log.snapshot();
  }

  /**
   * compact drops the entries up to index from memory (index becomes the log start, its term
   * still known), records that durably with the snapshot and the hard state (a marker batch),
   * and then deletes the sealed segments before the marker's that hold nothing above index.
   */
  async compact(index: number): Promise<void> {
    let changed = false;
    const markerSeq = this.wal.activeSeq(); // the batch below may fill the segment and rotate
    await this.enqueue(() => {
      changed = this.log.compact(index);
      if (!changed) return { frames: [], sync: false };
      const marker = { snapshot: this.log.snapshot(), logStart: this.log.logStart(), reset: false };
      return {
        frames: [
          { type: 'snapshot', marker },
          { type: 'hardState', hardState: this.log.hardState() },
        ],
        sync: true,
      };
    }, true);
    if (!changed) return;
    this.begin();
    try {
      await this.wal.dropSegmentsThrough(index, markerSeq);
    } finally {
      this.busy = false;
    }
  }

  /** close syncs what was written (unless the log failed) and closes the files. */
  async close(): Promise<void> {
    assert(!this.busy && this.writing === undefined, 'close while a write is in flight');
    await this.wal.close();
  }

  /** idle resolves once no save is queued or being written (failed ones included). */
  async idle(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  /** save's queueing: see `queue`. createSnapshot and compact go alone (`exclusive`). */
  private write(change: () => { frames: WalFrame[]; sync: boolean }): Promise<void> {
    return this.enqueue(change, false);
  }

  /**
   * enqueue runs one change: `change` updates memory synchronously and says what to write; the
   * batch is then queued for the writer. A failed WAL refuses before memory changes. An
   * exclusive change (a snapshot marker, a compaction) may only start with nothing queued and
   * keeps saves out until it is done.
   */
  private enqueue(change: () => { frames: WalFrame[]; sync: boolean }, exclusive: boolean): Promise<void> {
    assert(!this.busy, 'DiskLog: a save during a createSnapshot or compact');
    if (exclusive) {
      assert(this.writing === undefined, 'DiskLog: createSnapshot or compact while saves are in flight');
      this.busy = true;
    }
    let done: Promise<void>;
    try {
      this.wal.checkUsable();
      const { frames, sync } = change();
      const batch = frames.length > 0 ? encodeBatch(frames) : undefined;
      if (batch === undefined && !sync) {
        // Nothing to write; still resolved after every earlier save (callers count on order).
        done = this.writing === undefined ? Promise.resolve() : this.idle();
      } else {
        const nextIndex = this.log.lastIndex() + 1;
        done = new Promise<void>((resolve, reject) => {
          this.queue.push({ batch, sync, nextIndex, resolve, reject });
        });
        this.writing ??= this.drain();
      }
    } catch (err) {
      if (exclusive) this.busy = false;
      return Promise.reject(err);
    }
    if (!exclusive) return done;
    return done.finally(() => {
      this.busy = false;
    });
  }

  /** drain writes queued batches, everything queued at each step in one append, until none is left. */
  private async drain(): Promise<void> {
    // Start on a later microtask: saves queued in the same synchronous step join this write.
    await Promise.resolve();
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        const parts: Uint8Array[] = [];
        let sync = false;
        for (const q of group) {
          if (q.batch !== undefined) parts.push(q.batch);
          sync ||= q.sync;
        }
        const bytes = parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts);
        try {
          await this.wal.append(bytes, sync, (group[group.length - 1] as QueuedBatch).nextIndex);
        } catch (err) {
          // The WAL refuses everything from now on (Wal.fail): fail this group and the rest.
          for (const q of group) q.reject(err);
          const rest = this.queue;
          this.queue = [];
          for (const q of rest) q.reject(err);
          return;
        }
        for (const q of group) q.resolve();
      }
    } finally {
      this.writing = undefined;
    }
  }

  private begin(): void {
    assert(!this.busy && this.writing === undefined, 'DiskLog: a compaction while a write is in flight');
    this.busy = true;
  }
}

function snapshotLimitError(cs: ConfState, data: Uint8Array): LimitError | undefined {
  if (data.length > MAX_SNAPSHOT_DATA_BYTES) {
    return new LimitError(`snapshot data has ${data.length} bytes (max ${MAX_SNAPSHOT_DATA_BYTES})`);
  }
  for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) {
    if (list.length > MAX_CONF_NODES) return new LimitError(`conf state lists over ${MAX_CONF_NODES} nodes`);
  }
  return undefined;
}
