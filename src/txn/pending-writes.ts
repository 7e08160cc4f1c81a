// PendingWrites: the writes queued to the engine but not yet settled (durable or failed), by key.
// The write pipeline (write-pipeline.ts) is their only keeper: the engines keep no overlay of
// their own. Readers of the newest state look here first, then at the engine's durable state.
//
// Each key with pending writes has a doubly linked list of them, the newest in the map (issue
// 14: no list object per key, no wrapper per node; a write settles with O(1) work per key). A
// write that becomes durable drops itself and every older write of its keys (the engine applies
// writes in order, so the engine now shows them): it cuts the list below its newer neighbour; a
// write that fails drops only itself, so readers fall back to the older pending value or the
// engine's.
//
// Keys are latin1 strings (one UTF-16 unit per byte: binary-safe, copies by construction); the
// values kept are the pipeline's own copies (docs/ARCHITECTURE.md, "Who owns a buffer").
import type { Revision } from '../storage/engine.js';

/** PendingWrite: one queued write to one key. */
export interface PendingWrite {
  /** k: the key string. */
  readonly k: string;
  /** ts: the write's commit timestamp. */
  readonly ts: number;
  /**
   * value: the value put, or undefined for a delete. value, revision and durable are cleared when
   * the write leaves its key's list (see `dropped`).
   */
  value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** valueType: a put's value type (storage/value-type.ts; 0: a string, and for a delete). */
  readonly valueType: number;
  /** revision: a put's revision; undefined for a delete. */
  revision: Revision | undefined;
  /** durable: this write's durability, joined with that of the values it was computed from. */
  durable: Promise<void> | undefined;
  older: PendingWrite | undefined;
  newer: PendingWrite | undefined;
  /** listed: still in its key's list (false once settled, or dropped by a newer durable write). */
  listed: boolean;
}

/** Queued: what `add` returns, for `settle`: one write's place in queue order and its nodes. */
export interface Queued {
  readonly count: number;
  readonly ts: number;
  readonly ks: readonly string[];
  readonly nodes: readonly PendingWrite[];
}

export class PendingWrites {
  /** byKey: each key's newest pending write (older ones through `older`). */
  private readonly byKey = new Map<string, PendingWrite>();
  /**
   * queuedCount: writes added so far (each write's count is its place in queue order).
   * settledCount: every write up to it has settled. settledEarly: counts above it that settled
   * before an older write did (a write the engine refuses at once settles ahead of writes still
   * in its group commit), so settledCount advances only over a settled prefix, as Mvcc's
   * watermark does.
   */
  private queuedCount = 0;
  private settledCount = 0;
  private readonly settledEarly = new Set<number>();
  private waiters: { count: number; resolve: () => void }[] = [];

  /** keys counts keys with pending writes (for tests and stats). */
  get keys(): number {
    return this.byKey.size;
  }

  /** newest returns the newest pending write to `k`, or undefined when it has none. */
  newest(k: string): PendingWrite | undefined {
    return this.byKey.size === 0 ? undefined : this.byKey.get(k);
  }

  has(k: string): boolean {
    return this.byKey.size > 0 && this.byKey.has(k);
  }

  /**
   * add records one write at `ts` to keys `ks` (values undefined for deletes) and returns it
   * for `settle`. `types`: the values' types, undefined when every value is a string (so a
   * string write allocates no array for them).
   */
  add(
    ks: readonly string[],
    ts: number,
    values: readonly (Buffer | undefined)[],
    expiries: readonly (number | undefined)[],
    revisions: readonly (Revision | undefined)[],
    durable: Promise<void>,
    types?: readonly number[] | undefined,
  ): Queued {
    const nodes: PendingWrite[] = new Array(ks.length);
    for (let i = 0; i < ks.length; i++) {
      const valueType = types === undefined ? 0 : (types[i] ?? 0);
      nodes[i] = this.link(ks[i]!, ts, values[i], expiries[i], valueType, revisions[i], durable);
    }
    return { count: ++this.queuedCount, ts, ks, nodes };
  }

  /**
   * addOne is `add` for a write of one key, `ks` being `[k]` (put and update: no arrays of
   * one value each).
   */
  addOne(
    ks: readonly [string],
    ts: number,
    value: Buffer | undefined,
    expiresAt: number | undefined,
    valueType: number,
    revision: Revision | undefined,
    durable: Promise<void>,
  ): Queued {
    const node = this.link(ks[0], ts, value, expiresAt, valueType, revision, durable);
    return { count: ++this.queuedCount, ts, ks, nodes: [node] };
  }

  /** link makes a write's node for key `k` its key's newest. */
  private link(
    k: string,
    ts: number,
    value: Buffer | undefined,
    expiresAt: number | undefined,
    valueType: number,
    revision: Revision | undefined,
    durable: Promise<void>,
  ): PendingWrite {
    const older = this.byKey.get(k);
    const node: PendingWrite = {
      k,
      ts,
      value,
      expiresAt,
      valueType,
      revision,
      durable,
      older,
      newer: undefined,
      listed: true,
    };
    if (older !== undefined) older.newer = node;
    this.byKey.set(k, node);
    return node;
  }

  /**
   * settle drops a settled write. Durable: the engine shows it and every write queued before it,
   * so those go too. Failed: only this write goes.
   */
  settle(write: Queued, durable: boolean): void {
    const count = write.count;
    // In order with nothing settled early (the common case): no set (issue 14).
    if (count === this.settledCount + 1 && this.settledEarly.size === 0) this.settledCount = count;
    else {
      this.settledEarly.add(count);
      while (this.settledEarly.delete(this.settledCount + 1)) this.settledCount++;
    }
    for (const node of write.nodes) {
      // Dropped already by a newer durable write of this key (or named twice in this write).
      if (!node.listed) continue;
      const newer = node.newer;
      if (durable) {
        // Drop `node` and everything older: the list now ends at its newer neighbour.
        for (let old: PendingWrite | undefined = node; old !== undefined; ) {
          const next: PendingWrite | undefined = old.older;
          dropped(old);
          old = next;
        }
        if (newer === undefined) this.byKey.delete(node.k);
        else newer.older = undefined;
      } else {
        const older = node.older;
        dropped(node);
        if (older !== undefined) older.newer = newer;
        if (newer !== undefined) newer.older = older;
        else if (older !== undefined) this.byKey.set(node.k, older);
        else this.byKey.delete(node.k);
      }
    }
    if (this.waiters.length > 0) {
      const keep: typeof this.waiters = [];
      for (const w of this.waiters) {
        if (w.count <= this.settledCount) w.resolve();
        else keep.push(w);
      }
      this.waiters = keep;
    }
  }

  /** settled resolves once every write added before the call has settled (durable or failed). */
  settled(): Promise<void> {
    if (this.settledCount >= this.queuedCount) return Promise.resolve();
    const count = this.queuedCount;
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
}

/**
 * dropped marks a write that left its key's list and lets go of everything it holds. Nothing
 * reads it again (readers reach listed writes only, through the map), but something may still
 * hold it: a server's SET left about 150 B per write (its value's copy, its revision) reachable
 * past its settling, so they survived two young-generation collections and were promoted to the
 * old generation (the sampling heap profiler, objects not collected by a scavenge: 415 B per SET
 * before, 269 B after; docs/benchmarks.md).
 */
function dropped(node: PendingWrite): void {
  node.listed = false;
  node.older = undefined;
  node.newer = undefined;
  node.value = undefined;
  node.revision = undefined;
  node.durable = undefined;
}
