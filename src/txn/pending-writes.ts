// PendingWrites: the writes queued to the engine but not yet settled (durable or failed), by key.
// The write pipeline (write-pipeline.ts) is their only keeper: the engines keep no overlay of
// their own. Readers of the newest state look here first, then at the engine's durable state.
//
// Each key with pending writes has a doubly linked list of them, oldest first. A write that
// becomes durable drops itself and every older write of its keys (the engine applies writes in
// order, so the engine now shows them); a write that fails drops only itself, so readers fall
// back to the older pending value or the engine's.
//
// Keys are latin1 strings (one UTF-16 unit per byte: binary-safe, copies by construction); the
// values kept are the pipeline's own copies (docs/ARCHITECTURE.md, "Who owns a buffer").
import type { Revision } from '../storage/engine.js';

/** PendingWrite: one queued write to one key. */
export interface PendingWrite {
  /** ts: the write's commit timestamp. */
  readonly ts: number;
  /** value: the value put, or undefined for a delete. */
  readonly value: Buffer | undefined;
  readonly expiresAt: number | undefined;
  /** valueType: a put's value type (storage/value-type.ts; 0: a string, and for a delete). */
  readonly valueType: number;
  /** revision: a put's revision; undefined for a delete. */
  readonly revision: Revision | undefined;
  /** durable: this write's durability, joined with that of the values it was computed from. */
  readonly durable: Promise<void>;
  older: PendingWrite | undefined;
  newer: PendingWrite | undefined;
}

interface KeyList {
  oldest: PendingWrite | undefined;
  newest: PendingWrite | undefined;
}

/** Queued: what `add` returns, for `settle`: the nodes of one write, by key. */
export type Queued = readonly { readonly k: string; readonly node: PendingWrite }[];

export class PendingWrites {
  private readonly byKey = new Map<string, KeyList>();
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
    return this.byKey.size === 0 ? undefined : this.byKey.get(k)?.newest;
  }

  has(k: string): boolean {
    return this.byKey.size > 0 && this.byKey.has(k);
  }

  /**
   * add records one write at `ts` to keys `ks` (values undefined for deletes) and returns its
   * nodes and its count (its place in queue order) for `settle`. `types`: the values' types,
   * undefined when every value is a string (so a string write allocates no array for them).
   */
  add(
    ks: readonly string[],
    ts: number,
    values: readonly (Buffer | undefined)[],
    expiries: readonly (number | undefined)[],
    revisions: readonly (Revision | undefined)[],
    durable: Promise<void>,
    types?: readonly number[] | undefined,
  ): { count: number; nodes: Queued } {
    const nodes: { k: string; node: PendingWrite }[] = new Array(ks.length);
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i]!;
      let list = this.byKey.get(k);
      if (list === undefined) {
        list = { oldest: undefined, newest: undefined };
        this.byKey.set(k, list);
      }
      const node: PendingWrite = {
        ts,
        value: values[i],
        expiresAt: expiries[i],
        valueType: types === undefined ? 0 : (types[i] ?? 0),
        revision: revisions[i],
        durable,
        older: list.newest,
        newer: undefined,
      };
      if (list.newest !== undefined) list.newest.newer = node;
      else list.oldest = node;
      list.newest = node;
      nodes[i] = { k, node };
    }
    return { count: ++this.queuedCount, nodes };
  }

  /**
   * settle drops a settled write. Durable: the engine shows it and every write queued before it,
   * so those go too. Failed: only this write goes.
   */
  settle(count: number, nodes: Queued, durable: boolean): void {
    this.settledEarly.add(count);
    while (this.settledEarly.delete(this.settledCount + 1)) this.settledCount++;
    for (const { k, node } of nodes) {
      const list = this.byKey.get(k);
      if (list === undefined) continue; // an earlier durable write of this key dropped it already
      if (durable) {
        // Drop everything up to and including `node`, if it is still listed.
        if (node.older === undefined && node.newer === undefined && list.oldest !== node) continue;
        while (list.oldest !== undefined) {
          const old = list.oldest;
          list.oldest = old.newer;
          old.newer = undefined;
          if (list.oldest !== undefined) list.oldest.older = undefined;
          if (old === node) break;
        }
        if (list.oldest === undefined) list.newest = undefined;
      } else if (node.older !== undefined || node.newer !== undefined || list.oldest === node) {
        if (node.older !== undefined) node.older.newer = node.newer;
        else list.oldest = node.newer;
        if (node.newer !== undefined) node.newer.older = node.older;
        else list.newest = node.older;
        node.older = undefined;
        node.newer = undefined;
      }
      if (list.newest === undefined) this.byKey.delete(k);
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
